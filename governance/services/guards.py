"""The one permission guard every service calls, and who a change is recorded as made by."""

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied

from ..models import BusinessUnit


def require(actor, perm: str, unit=None, *, what: str = "do this", reading: bool = False) -> None:
    """Refuse unless ACTOR holds the model permission PERM and, given UNIT, may act in that unit.

    ACTOR None is the system itself (a worker, a command run by an operator, a migration).
    Acting in a unit needs a grant on it; an action that only READS the unit's evidence (such as
    re-computing a gate run) is open to those who read every unit too (the Auditor).
    """
    if actor is None:
        return
    if not actor.has_perm(perm):
        raise PermissionDenied(f"You may not {what}.")
    if unit is not None and not BusinessUnit.objects.for_user(actor, write=not reading).filter(pk=unit.pk).exists():
        raise PermissionDenied(f"You may not {what} in business unit {unit.slug!r}.")


def recorded_user(actor):
    """The person to record as the author of a row (created_by, submitted_by): None for the system."""
    return actor if isinstance(actor, get_user_model()) and actor.is_authenticated else None
