"""Grant and revoke access to business units: ``access grant|revoke USERNAME UNIT_SLUG``,
``access list [UNIT_SLUG]``. Each change goes through the access services and is ledgered."""

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from config.commands import CustosCommand

from ...models import BusinessUnit
from ...services.access import business_unit_grant, business_unit_revoke
from ...selectors.access import users_with_unit_access


def unit_by_slug(slug):
    unit = BusinessUnit.objects.filter(slug=slug).first()
    if unit is None:
        known = ", ".join(BusinessUnit.objects.order_by("slug").values_list("slug", flat=True)) or "none"
        raise CommandError(f"No business unit {slug!r} (units: {known}).")
    return unit


def user_by_name(username):
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise CommandError(f"No user {username!r}.")
    return user


class Command(CustosCommand):
    help = "Grant or revoke a person's or service account's access to a business unit (ledgered)."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        for name, what in [("grant", "Give USERNAME access to the unit."), ("revoke", "Take USERNAME's access away.")]:
            p = sub.add_parser(name, help=what)
            p.add_argument("username")
            p.add_argument("unit", metavar="UNIT_SLUG")
            self.add_actor_argument(p)
        lst = sub.add_parser("list", help="Who has access to each unit (or to UNIT_SLUG).")
        lst.add_argument("unit", nargs="?", metavar="UNIT_SLUG")
        self.add_json_argument(lst)

    def handle(self, *args, action, **opts):
        if action == "list":
            return self._list(opts)
        unit, user = unit_by_slug(opts["unit"]), user_by_name(opts["username"])
        if action == "grant":
            business_unit_grant(unit=unit, user=user, actor=self.actor(opts))
            self.stdout.write(f"{user.get_username()} now has access to {unit.slug}.")
        else:
            business_unit_revoke(unit=unit, user=user, actor=self.actor(opts))
            self.stdout.write(f"{user.get_username()} no longer has access to {unit.slug}.")

    def _list(self, opts):
        units = [unit_by_slug(opts["unit"])] if opts.get("unit") else BusinessUnit.objects.order_by("slug")
        rows = {u.slug: sorted(users_with_unit_access(u).values_list("username", flat=True)) for u in units}
        if opts.get("json"):
            return self.print_json(rows)
        for slug, names in rows.items():
            self.stdout.write(f"{slug}: {', '.join(names) or 'nobody'}")
