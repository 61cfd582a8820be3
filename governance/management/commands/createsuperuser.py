"""Django's ``createsuperuser``, ledgered: a superuser is the largest grant of all.

Every other way to add a person goes through ``services.access.user_create``; Django's own
command writes the row itself, so this one wraps it and ledgers the account it created in the
same transaction (the password never reaches the ledger).
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.management.commands import createsuperuser
from django.db import transaction

from audit.services import ledger_append

from ...rules.kinds import GovernanceKind


class Command(createsuperuser.Command):
    def handle(self, *args, **options):
        User = get_user_model()
        with transaction.atomic(durable=True):
            before = User.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
            result = super().handle(*args, **options)
            for user in User.objects.filter(pk__gt=before).order_by("pk"):
                ledger_append(
                    kind=GovernanceKind.USER_CREATED,
                    subject=f"auth.user:{user.pk}",
                    payload={"username": user.get_username(), "is_active": user.is_active, "is_staff": user.is_staff,
                             "is_superuser": user.is_superuser, "password_set": user.has_usable_password(),
                             "via": "createsuperuser"},
                    actor=None,
                )
        return result
