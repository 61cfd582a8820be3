"""Manage API tokens of service accounts: ``tokens create|list|revoke``."""

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from config.commands import CustosCommand
from django.utils import timezone

from ...models import ServiceToken
from ...selectors.access import business_units_for, users_with_unit_access
from ...services.access import (
    DEFAULT_TOKEN_DAYS,
    business_unit_grant,
    service_account_create,
    token_create,
    token_revoke,
)
from .access import unit_by_slug


class Command(CustosCommand):
    help = "Create, list and revoke API tokens. A token is shown once, at creation."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="Issue a token for a service account.")
        create.add_argument("username")
        create.add_argument("--name", default="api", help="What the token is for.")
        create.add_argument("--days", type=int, default=DEFAULT_TOKEN_DAYS, help="Lifetime in days.")
        create.add_argument(
            "--create-account", action="store_true", help="Create the service account (Pipeline role) first."
        )
        create.add_argument(
            "--unit", action="append", default=[], metavar="SLUG",
            help="Grant the account access to this business unit (repeatable). Without access to a unit "
                 "the account sees nothing: every model version is 'not found'.",
        )
        lst = sub.add_parser("list", help="List tokens (never their secrets).")
        lst.add_argument("--user", help="Only this account's tokens.")
        revoke = sub.add_parser("revoke", help="Revoke a token by its prefix.")
        revoke.add_argument("prefix")

    def handle(self, *args, action, **opts):
        getattr(self, f"_{action}")(**opts)

    def _create(self, username, name, days, create_account, unit, **_):
        User = get_user_model()
        units = [unit_by_slug(slug) for slug in unit]  # all known before anything is created
        if create_account:
            user = service_account_create(username=username)
        else:
            user = User.objects.filter(username=username).first()
            if user is None:
                raise CommandError(f"No user {username!r} (use --create-account to create a service account).")
        token, plain = token_create(user=user, name=name, days=days)
        for u in units:
            if not users_with_unit_access(u).filter(pk=user.pk).exists():
                business_unit_grant(unit=u, user=user)
        self.stdout.write(f"Token for {username} (prefix {token.prefix}, expires {token.expires_at:%Y-%m-%d}):")
        self.stdout.write(plain)
        self.stderr.write("Store it now: it is shown only once and cannot be recovered.")
        reached = sorted(business_units_for(user).values_list("slug", flat=True))
        if reached:
            self.stderr.write(f"{username} works in: {', '.join(reached)}.")
        else:
            self.stderr.write(f"{username} has access to no business unit yet, so every call finds nothing: "
                              f"add --unit SLUG, or run `manage.py access grant {username} SLUG`.")

    def _list(self, user=None, **_):
        qs = ServiceToken.objects.select_related("user")
        if user:
            qs = qs.filter(user__username=user)
        now = timezone.now()
        self.stdout.write(f"{'PREFIX':14} {'USER':20} {'NAME':20} {'EXPIRES':11} STATE")
        for t in qs:
            state = "revoked" if t.revoked_at else ("expired" if t.expires_at <= now else "active")
            self.stdout.write(f"{t.prefix:14} {t.user.username:20} {t.name[:20]:20} {t.expires_at:%Y-%m-%d}  {state}")

    def _revoke(self, prefix, **_):
        token = ServiceToken.objects.filter(prefix=prefix).first()
        if token is None:
            raise CommandError(f"No token with prefix {prefix!r}.")
        token_revoke(token=token)
        self.stdout.write(f"Revoked {prefix}.")
