"""Business units and grants of access to them, people and their roles, service accounts and tokens.

Every change here is ledgered: who may act where is evidence too. Only administrators
(superusers) make these changes; ``actor=None`` is an operator's command.
"""

import hashlib
import secrets
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from guardian.shortcuts import assign_perm, remove_perm

from audit.services import ledger_append

from ..models import BusinessUnit, ServiceToken
from ..models.access import UNIT_ACCESS_PERM
from ..rules.kinds import GovernanceKind
from ..rules.limits import quoted_list
from ..rules.roles import PIPELINE, ROLE_PERMISSIONS, ROLES
from ..selectors.access import users_with_unit_access
from .guards import require

# Administering units, people and tokens: superusers (who hold every permission).
ADMINISTER = "governance.change_businessunit"
TOKEN_PREFIX = "custos"
DEFAULT_TOKEN_DAYS = 90


@transaction.atomic(durable=True)
def business_unit_create(*, name: str, slug: str, description: str = "", actor=None) -> BusinessUnit:
    """Create a business unit."""
    require(actor, ADMINISTER, what="change business units, people and tokens")
    unit = BusinessUnit(name=name, slug=slug, description=description)
    unit.full_clean()
    unit.save()
    ledger_append(
        kind=GovernanceKind.UNIT_CREATED, subject=unit.ledger_subject, payload={"name": name, "slug": slug}, actor=actor
    )
    return unit


@transaction.atomic(durable=True)
def business_unit_grant(*, unit: BusinessUnit, user, actor=None) -> None:
    """Give USER access to UNIT and everything in it (their role decides what they may do there)."""
    require(actor, ADMINISTER, what="change business units, people and tokens")
    if users_with_unit_access(unit).filter(pk=user.pk).exists():
        raise ValidationError(f"{user.get_username()} already has access to {unit.slug}.")
    assign_perm(UNIT_ACCESS_PERM, user, unit)
    ledger_append(
        kind=GovernanceKind.UNIT_GRANTED,
        subject=unit.ledger_subject,
        payload={"user_id": user.pk, "username": user.get_username()},
        actor=actor,
    )


@transaction.atomic(durable=True)
def business_unit_revoke(*, unit: BusinessUnit, user, actor=None) -> None:
    """Take away USER's access to UNIT."""
    require(actor, ADMINISTER, what="change business units, people and tokens")
    if not users_with_unit_access(unit).filter(pk=user.pk).exists():
        raise ValidationError(f"{user.get_username()} has no access to {unit.slug}.")
    remove_perm(UNIT_ACCESS_PERM, user, unit)
    ledger_append(
        kind=GovernanceKind.UNIT_REVOKED,
        subject=unit.ledger_subject,
        payload={"user_id": user.pk, "username": user.get_username()},
        actor=actor,
    )


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def parse_token(token: str) -> str | None:
    """Return the prefix of a well-formed token, or None."""
    parts = token.split("_", 2)  # the secret part may itself contain "_"
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1]


@transaction.atomic(durable=True)
def service_account_create(*, username: str, actor=None):
    """Create a service account: no password, in the Pipeline group."""
    require(actor, ADMINISTER, what="change business units, people and tokens")
    User = get_user_model()
    if User.objects.filter(username=username).exists():
        raise ValidationError(f"User {username!r} already exists.")
    user = User(username=username)
    user.set_unusable_password()
    user.save()
    user.groups.add(Group.objects.get(name=PIPELINE))
    ledger_append(
        kind=GovernanceKind.SERVICE_ACCOUNT_CREATED,
        subject=f"auth.user:{user.pk}",
        payload={"username": username},
        actor=actor,
    )
    return user


@transaction.atomic(durable=True)
def token_create(*, user, name: str, days: int = DEFAULT_TOKEN_DAYS, actor=None) -> tuple[ServiceToken, str]:
    """Issue a token for USER; return (record, plain token). The plain token is never stored."""
    require(actor, ADMINISTER, what="change business units, people and tokens")
    if days < 1 or days > 3650:
        raise ValidationError("A token lives between 1 and 3650 days.")
    if not user.is_active:
        raise ValidationError("Tokens are only issued to active accounts.")
    # A bearer token is a long-lived credential that skips the session and its CSRF check; a
    # person's (let alone a superuser's) would outlive their session and act with all their rights.
    if user.is_superuser or not user.groups.filter(name=PIPELINE).exists():
        raise ValidationError(
            f"Tokens are issued only to service accounts (Pipeline role, not superuser); "
            f"{user.get_username()!r} is not one. People sign in with a session."
        )
    prefix = secrets.token_hex(6)
    plain = f"{TOKEN_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    token = ServiceToken.objects.create(
        user=user,
        name=name,
        prefix=prefix,
        digest=token_digest(plain),
        expires_at=timezone.now() + timedelta(days=days),
    )
    ledger_append(
        kind=GovernanceKind.TOKEN_CREATED,
        subject=token.ledger_subject,
        payload={"user_id": user.pk, "prefix": prefix, "name": name, "expires_at": token.expires_at.isoformat()},
        actor=actor,
    )
    return token, plain


@transaction.atomic(durable=True)
def token_revoke(*, token: ServiceToken, actor=None) -> ServiceToken:
    """Revoke TOKEN at once; a revoked token never authenticates again."""
    require(actor, ADMINISTER, what="change business units, people and tokens")
    token = ServiceToken.objects.select_for_update().get(pk=token.pk)
    if token.revoked_at is not None:
        raise ValidationError(f"Token {token.prefix} is already revoked.")
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    ledger_append(
        kind=GovernanceKind.TOKEN_REVOKED, subject=token.ledger_subject, payload={"prefix": token.prefix}, actor=actor
    )
    return token


PROFILE_FIELDS = ("username", "first_name", "last_name", "email")


@transaction.atomic(durable=True)
def user_create(*, username: str, password: str | None = None, first_name: str = "", last_name: str = "",
                email: str = "", is_staff: bool = True, is_superuser: bool = False, actor=None):
    """Create a person's account (no roles yet: ``user_roles_set`` gives them), ledgered with its flags.

    Without PASSWORD the account cannot sign in until one is set. The password is never ledgered.
    """
    require(actor, ADMINISTER, what="change business units, people and tokens")
    User = get_user_model()
    if User.objects.filter(username=username).exists():
        raise ValidationError({"username": f"User {username!r} already exists."})
    user = User(username=username, first_name=first_name, last_name=last_name, email=email,
                is_staff=is_staff, is_superuser=is_superuser)
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.full_clean(exclude=["password"])
    user.save()
    ledger_append(
        kind=GovernanceKind.USER_CREATED,
        subject=f"auth.user:{user.pk}",
        payload={"username": username, "is_active": user.is_active, "is_staff": is_staff, "is_superuser": is_superuser,
                 "password_set": bool(password)},
        actor=actor,
    )
    return user


@transaction.atomic(durable=True)
def user_profile_set(*, user, actor=None, **fields) -> None:
    """Change a person's user name, names or e-mail; ledgered with the fields that changed.

    The ledger names the fields (and a changed user name before and after, as it names actors),
    not the new names or e-mail address: the table holds those, and can forget them.
    """
    require(actor, ADMINISTER, what="change business units, people and tokens")
    unknown = set(fields) - set(PROFILE_FIELDS)
    if unknown:
        raise ValueError(f"Not profile fields: {sorted(unknown)}.")
    User = get_user_model()
    stored = User.objects.select_for_update().values(*PROFILE_FIELDS).get(pk=user.pk)
    changed = {k: v for k, v in fields.items() if stored[k] != v}
    if not changed:
        return
    if "username" in changed and User.objects.filter(username=changed["username"]).exclude(pk=user.pk).exists():
        raise ValidationError({"username": f"User {changed['username']!r} already exists."})
    User.objects.filter(pk=user.pk).update(**changed)
    for name, value in changed.items():
        setattr(user, name, value)
    ledger_append(
        kind=GovernanceKind.USER_PROFILE_CHANGED,
        subject=f"auth.user:{user.pk}",
        payload={"username": user.get_username(), "fields": sorted(changed),
                 **({"username_before": stored["username"]} if "username" in changed else {})},
        actor=actor,
    )


@transaction.atomic(durable=True)
def user_roles_set(*, user, roles: list[str], actor=None) -> None:
    """Give USER exactly ROLES (group names); the change is ledgered with before and after."""
    require(actor, ADMINISTER, what="change business units, people and tokens")
    groups = list(Group.objects.filter(name__in=roles))
    unknown = set(roles) - {g.name for g in groups}
    if unknown:
        raise ValidationError(f"Unknown roles: {quoted_list(sorted(unknown))}.")
    before = sorted(user.groups.values_list("name", flat=True))
    after = sorted(g.name for g in groups)
    if before == after:
        return
    user.groups.set(groups)
    ledger_append(
        kind=GovernanceKind.ROLES_CHANGED,
        subject=f"auth.user:{user.pk}",
        payload={"username": user.get_username(), "before": before, "after": after},
        actor=actor,
    )


USER_STATUS_FLAGS = ("is_active", "is_staff", "is_superuser")


@transaction.atomic(durable=True)
def user_status_set(*, user, is_active: bool, is_staff: bool, is_superuser: bool, actor=None) -> None:
    """Set who may log in, reach the admin and do everything; a change is ledgered with before
    and after, like a change of roles (making someone a superuser is the largest grant of all)."""
    require(actor, ADMINISTER, what="change business units, people and tokens")
    User = get_user_model()
    before = User.objects.select_for_update().values(*USER_STATUS_FLAGS).get(pk=user.pk)
    after = {"is_active": bool(is_active), "is_staff": bool(is_staff), "is_superuser": bool(is_superuser)}
    for flag, value in after.items():
        setattr(user, flag, value)
    if before == after:
        return
    User.objects.filter(pk=user.pk).update(**after)
    ledger_append(
        kind=GovernanceKind.USER_STATUS_CHANGED,
        subject=f"auth.user:{user.pk}",
        payload={"username": user.get_username(), "before": before, "after": after},
        actor=actor,
    )


def _permissions(names):
    perms = []
    for name in names:
        app_label, codename = name.split(".")
        perm = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
        if perm is not None:  # absent only mid-migration, before its model exists
            perms.append(perm)
    return perms


def role_permissions_sync(sender=None, **kwargs):
    """Create the role groups if needed and give each exactly its model permissions (post_migrate).

    Roles are defined in code (``governance.rules.roles``), like a migration: this is setup, not a
    governed change, so it is not ledgered; the admin shows roles read-only.
    """
    for role in ROLES:
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.set(_permissions(ROLE_PERMISSIONS.get(role, [])))
