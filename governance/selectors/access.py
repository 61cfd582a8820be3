"""Which business units a user may see or act in (the rule itself is in ``models.access``)."""

from ..models import BusinessUnit
from ..models.access import UNIT_ACCESS_PERM, granted_units, sees_all_units

__all__ = ["UNIT_ACCESS_PERM", "business_units_for", "can_access_unit", "granted_units", "sees_all_units"]


def business_units_for(user, *, write: bool = False):
    """Return the units USER may read (or, with WRITE, act in)."""
    return BusinessUnit.objects.for_user(user, write=write)


def can_access_unit(user, unit, *, write: bool = False) -> bool:
    return business_units_for(user, write=write).filter(pk=unit.pk).exists()
