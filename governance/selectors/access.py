"""Which business units a user may see or act in."""

from guardian.shortcuts import get_objects_for_user

from ..models import BusinessUnit
from ..rules.roles import GLOBAL_READ_ROLES

UNIT_ACCESS_PERM = "governance.access_businessunit"


def sees_all_units(user) -> bool:
    """Superusers and global read roles (Auditor) see every unit, read-only for the latter."""
    if not user.is_authenticated:
        return False
    return user.is_superuser or user.groups.filter(name__in=GLOBAL_READ_ROLES).exists()


def _granted_units(user):
    """The units granted to USER or one of its groups (guardian object permissions)."""
    return get_objects_for_user(user, UNIT_ACCESS_PERM, klass=BusinessUnit, accept_global_perms=False)


def business_units_for(user, *, write: bool = False):
    """Return the units USER may read (or, with WRITE, act in)."""
    if not user.is_authenticated or not user.is_active:
        return BusinessUnit.objects.none()
    if user.is_superuser or (not write and sees_all_units(user)):
        return BusinessUnit.objects.all()
    return _granted_units(user)


def restrict_to_units(queryset, user, *, field: str = "business_unit", write: bool = False):
    """Filter QUERYSET to rows whose FIELD (a path to a BusinessUnit) the user may read."""
    if user.is_authenticated and (user.is_superuser or (not write and sees_all_units(user))):
        return queryset
    if not user.is_authenticated or not user.is_active:
        return queryset.none()
    return queryset.filter(**{f"{field}__in": _granted_units(user)})  # the role check above is not repeated


def can_access_unit(user, unit, *, write: bool = False) -> bool:
    return business_units_for(user, write=write).filter(pk=unit.pk).exists()
