"""The demo's business units and accounts: the first demo step, light enough for every run
(no scientific stack), so that a re-run with nothing else to do stays fast."""

import secrets

from django.contrib.auth import get_user_model

from ..models import BusinessUnit
from ..rules import roles
from ..selectors.access import can_access_unit
from ..services.access import (
    business_unit_create,
    business_unit_grant,
    service_account_create,
    user_create,
    user_roles_set,
)

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
    # Two Data Protection Officers: an erasure plan is approved by a second officer.
    ("dora.dpo", roles.DATA_PROTECTION_OFFICER, [], False),
    ("piet.privacy", roles.DATA_PROTECTION_OFFICER, [], False),
    ("pipeline.credit", roles.PIPELINE, ["retail-credit"], False),
]


def users_and_units(out, *, reset_passwords=False, credentials=None):
    """The demo's business units and one person per role (and the pipeline's service account),
    created through the access services like any other, so each is ledgered.

    CREDENTIALS (a list) receives one (username, role, unit slugs, password or None) per demo
    account, for the table the command prints last."""
    User = get_user_model()
    units = {}
    for name, slug, description in DEMO_UNITS:
        unit = BusinessUnit.objects.filter(slug=slug).first()
        units[slug] = unit or business_unit_create(name=name, slug=slug, description=description)
    for username, role, unit_slugs, superuser in DEMO_USERS:
        user = User.objects.filter(username=username).first()
        created = user is None
        password = None
        if created and role == roles.PIPELINE:
            user = service_account_create(username=username)
        elif created:
            password = secrets.token_urlsafe(12)
            user = user_create(username=username, password=password, is_superuser=superuser)
        if role and role != roles.PIPELINE:
            user_roles_set(user=user, roles=[role])
        for slug in unit_slugs:
            if not can_access_unit(user, units[slug], write=True):
                business_unit_grant(unit=units[slug], user=user)
        if not created and reset_passwords and role != roles.PIPELINE:
            password = secrets.token_urlsafe(12)
            user.set_password(password)  # a credential, not governed evidence: never ledgered
            user.save(update_fields=["password"])
        if credentials is not None:
            credentials.append((username, role or "superuser", list(unit_slugs), password))
