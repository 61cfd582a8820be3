"""Grants of business-unit access and the lifecycle of API tokens."""

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
from ..rules.roles import PIPELINE, ROLE_PERMISSIONS, ROLES

UNIT_ACCESS_PERM = "governance.access_businessunit"
TOKEN_PREFIX = "custos"
DEFAULT_TOKEN_DAYS = 90


def _require_admin(actor):
    if actor is not None and not (actor.is_superuser or actor.has_perm("governance.change_businessunit")):
        raise PermissionDenied("Only administrators may change business-unit access.")


@transaction.atomic
def business_unit_create(*, name: str, slug: str, description: str = "", actor=None) -> BusinessUnit:
    """Create a business unit."""
    _require_admin(actor)
    unit = BusinessUnit(name=name, slug=slug, description=description)
    unit.full_clean()
    unit.save()
    ledger_append(
        kind="access.unit_created", subject=unit.ledger_subject, payload={"name": name, "slug": slug}, actor=actor
    )
    return unit


@transaction.atomic
def business_unit_grant(*, unit: BusinessUnit, user, actor=None) -> None:
    """Give USER access to UNIT and everything in it (their role decides what they may do there)."""
    _require_admin(actor)
    assign_perm(UNIT_ACCESS_PERM, user, unit)
    ledger_append(
        kind="access.unit_granted",
        subject=unit.ledger_subject,
        payload={"user_id": user.pk, "username": user.get_username()},
        actor=actor,
    )


@transaction.atomic
def business_unit_revoke(*, unit: BusinessUnit, user, actor=None) -> None:
    """Take away USER's access to UNIT."""
    _require_admin(actor)
    remove_perm(UNIT_ACCESS_PERM, user, unit)
    ledger_append(
        kind="access.unit_revoked",
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


@transaction.atomic
def service_account_create(*, username: str, actor=None):
    """Create a service account: no password, in the Pipeline group."""
    _require_admin(actor)
    User = get_user_model()
    if User.objects.filter(username=username).exists():
        raise ValidationError(f"User {username!r} already exists.")
    user = User(username=username)
    user.set_unusable_password()
    user.save()
    user.groups.add(Group.objects.get(name=PIPELINE))
    ledger_append(
        kind="access.service_account_created",
        subject=f"auth.user:{user.pk}",
        payload={"username": username},
        actor=actor,
    )
    return user


@transaction.atomic
def token_create(*, user, name: str, days: int = DEFAULT_TOKEN_DAYS, actor=None) -> tuple[ServiceToken, str]:
    """Issue a token for USER; return (record, plain token). The plain token is never stored."""
    _require_admin(actor)
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
        kind="access.token_created",
        subject=token.ledger_subject,
        payload={"user_id": user.pk, "prefix": prefix, "name": name, "expires_at": token.expires_at.isoformat()},
        actor=actor,
    )
    return token, plain


@transaction.atomic
def token_revoke(*, token: ServiceToken, actor=None) -> ServiceToken:
    """Revoke TOKEN at once; a revoked token never authenticates again."""
    _require_admin(actor)
    token = ServiceToken.objects.select_for_update().get(pk=token.pk)
    if token.revoked_at is not None:
        raise ValidationError(f"Token {token.prefix} is already revoked.")
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    ledger_append(
        kind="access.token_revoked", subject=token.ledger_subject, payload={"prefix": token.prefix}, actor=actor
    )
    return token


@transaction.atomic
def user_roles_set(*, user, roles: list[str], actor=None) -> None:
    """Give USER exactly ROLES (group names); the change is ledgered with before and after."""
    _require_admin(actor)
    groups = list(Group.objects.filter(name__in=roles))
    unknown = set(roles) - {g.name for g in groups}
    if unknown:
        raise ValidationError(f"Unknown roles: {', '.join(sorted(unknown))}.")
    before = sorted(user.groups.values_list("name", flat=True))
    after = sorted(g.name for g in groups)
    if before == after:
        return
    user.groups.set(groups)
    ledger_append(
        kind="access.roles_changed",
        subject=f"auth.user:{user.pk}",
        payload={"username": user.get_username(), "before": before, "after": after},
        actor=actor,
    )


USER_STATUS_FLAGS = ("is_active", "is_staff", "is_superuser")


@transaction.atomic
def user_status_set(*, user, is_active: bool, is_staff: bool, is_superuser: bool, actor=None) -> None:
    """Set who may log in, reach the admin and do everything; a change is ledgered with before
    and after, like a change of roles (making someone a superuser is the largest grant of all)."""
    _require_admin(actor)
    User = get_user_model()
    before = User.objects.select_for_update().values(*USER_STATUS_FLAGS).get(pk=user.pk)
    after = {"is_active": bool(is_active), "is_staff": bool(is_staff), "is_superuser": bool(is_superuser)}
    for flag, value in after.items():
        setattr(user, flag, value)
    if before == after:
        return
    User.objects.filter(pk=user.pk).update(**after)
    ledger_append(
        kind="access.user_status_changed",
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
