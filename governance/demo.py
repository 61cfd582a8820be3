"""Demo data for a first run (``manage.py demo``): idempotent, safe to run twice.

Each step is a function taking the command's ``out`` (a writer) and returning nothing; later
features append their step to STEPS.
"""

import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from . import roles
from .models import BusinessUnit
from .selectors.access import can_access_unit
from .services.access import business_unit_create, business_unit_grant

DEMO_UNITS = [
    ("Retail Credit", "retail-credit", "Consumer lending: credit-scoring models (EU AI Act high risk)."),
    ("People Analytics", "people-analytics", "Hiring and workforce models."),
]

# username, role, business-unit slugs, superuser
DEMO_USERS = [
    ("admin", None, [], True),
    ("dana.scientist", roles.DATA_SCIENTIST, ["retail-credit"], False),
    ("colin.compliance", roles.COMPLIANCE_OFFICER, ["retail-credit"], False),
    ("vera.validator", roles.MODEL_RISK_VALIDATOR, ["retail-credit"], False),
    ("olga.officer", roles.COMPLIANCE_OFFICER, ["people-analytics"], False),
    ("aude.auditor", roles.AUDITOR, [], False),
    ("pipeline.credit", roles.PIPELINE, ["retail-credit"], False),
]


@transaction.atomic
def users_and_units(out, *, reset_passwords=False):
    User = get_user_model()
    units = {}
    for name, slug, description in DEMO_UNITS:
        unit = BusinessUnit.objects.filter(slug=slug).first()
        units[slug] = unit or business_unit_create(name=name, slug=slug, description=description)
    for username, role, unit_slugs, superuser in DEMO_USERS:
        user = User.objects.filter(username=username).first()
        created = user is None
        if created:
            user = User(username=username, is_staff=role != roles.PIPELINE, is_superuser=superuser)
            user.save()
        if role:
            user.groups.add(Group.objects.get(name=role))
        for slug in unit_slugs:
            if not can_access_unit(user, units[slug], write=True):
                business_unit_grant(unit=units[slug], user=user)
        if role == roles.PIPELINE:
            if created:
                user.set_unusable_password()
                user.save()
            continue
        if created or reset_passwords:
            password = secrets.token_urlsafe(12)
            user.set_password(password)
            user.save()
            out(f"  {username:18} {role or 'superuser':22} password: {password}")
        else:
            out(f"  {username:18} {role or 'superuser':22} (exists; password shown when created)")


STEPS = [users_and_units]
