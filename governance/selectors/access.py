"""Which business units a user may see or act in (the rule itself is in ``models.access``)."""

from guardian.shortcuts import get_users_with_perms

from ..models import BusinessUnit
from ..models.access import UNIT_ACCESS_PERM, granted_units, sees_all_units

__all__ = ["UNIT_ACCESS_PERM", "business_units_for", "can_access_unit", "granted_units", "sees_all_units",
           "users_with_unit_access"]


def business_units_for(user, *, write: bool = False):
    """Return the units USER may read (or, with WRITE, act in)."""
    return BusinessUnit.objects.for_user(user, write=write)


def can_access_unit(user, unit, *, write: bool = False) -> bool:
    return business_units_for(user, write=write).filter(pk=unit.pk).exists()


def users_with_unit_access(unit):
    """The people and service accounts granted UNIT itself (not those who see every unit).

    Who may work where is read by administrators and operators, for the unit's page and the
    ``access`` command: the caller decides who may ask (the unit's page is scoped, the command is
    an operator's)."""
    codename = UNIT_ACCESS_PERM.split(".")[1]
    return get_users_with_perms(unit, only_with_perms_in=[codename], with_group_users=False)
