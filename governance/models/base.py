"""What every governed record shares: its name in the ledger and its path to a business unit.

A governed model declares once where its business unit is (``unit_path``, a lookup path such
as ``"model__business_unit"``); ``Model.objects.for_user(user)`` derives the restriction from
it, and the ledger's read scope uses the same declarations, so an app that adds governed models
(monitoring, say) is scoped without editing governance. Reading every unit's rows is spelled
``unrestricted()``: scoping fails closed when a caller forgets the user.
"""

from django.apps import apps
from django.db import models
from guardian.shortcuts import get_objects_for_user

from ..rules.roles import GLOBAL_READ_ROLES

# A grant of this object permission on a BusinessUnit (to a user or one of their groups) says
# where a person may work; their role says what they may do there.
UNIT_ACCESS_PERM = "governance.access_businessunit"


def sees_all_units(user) -> bool:
    """Superusers and global read roles (Auditor) see every unit, read-only for the latter."""
    if not user.is_authenticated:
        return False
    return user.is_superuser or user.groups.filter(name__in=GLOBAL_READ_ROLES).exists()


def granted_units(user):
    """The units granted to USER or one of its groups (guardian object permissions)."""
    unit = apps.get_model("governance", "BusinessUnit")  # by name: BusinessUnit is itself a GovernedModel
    return get_objects_for_user(user, UNIT_ACCESS_PERM, klass=unit, accept_global_perms=False)


class GovernedQuerySet(models.QuerySet):
    def for_user(self, user, *, write: bool = False):
        """The rows USER may read (or, with WRITE, act on): those of the units they may see."""
        if user is None:
            raise TypeError("for_user() needs the asking user; the system reads everything with unrestricted().")
        model = self.model
        if not user.is_authenticated or not user.is_active:
            return self.none()
        if user.is_superuser or (not write and (model.institution_wide or sees_all_units(user))):
            return self.all()
        if model.unit_path is None:
            if model.institution_wide:
                return self.none()  # changing institution-wide records takes institution-wide authority
            raise TypeError(f"{model.__name__} belongs to no business unit: use unrestricted() or a rule of its own.")
        visible = models.Q(**{f"{model.unit_path}__in": granted_units(user)})
        shared = model.institution_wide_rows()
        if shared is not None and not write:
            visible |= shared
        return self.filter(visible)

    def for_units(self, units):
        """The rows of the business units in UNITS (a queryset of units)."""
        return self.filter(**{f"{self.model.unit_path}__in": units})

    def unrestricted(self):
        """Every row, whatever unit: for the system itself (a worker, a migration, a check)."""
        return self.all()


class GovernedModel(models.Model):
    """A record whose changes are ledgered; it names itself as ``app_label.model:pk`` there.

    ``unit_path`` is the lookup path from a row to its BusinessUnit (None: the record belongs
    to no unit). ``institution_wide`` marks records every reader may read (the shared policies);
    ``institution_wide_rows()`` names the rows that are so although the model is per unit.
    """

    unit_path: str | None = None
    institution_wide: bool = False

    objects = GovernedQuerySet.as_manager()

    class Meta:
        abstract = True

    @property
    def ledger_subject(self) -> str:
        return f"{self._meta.label_lower}:{self.pk}"

    @classmethod
    def institution_wide_rows(cls) -> models.Q | None:
        return None
