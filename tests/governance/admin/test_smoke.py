"""Every registered admin page opens for every role: the list, add, change, history and delete
pages and each admin's own URLs, for an existing object of each model, as each role and as the
superuser. A 5xx anywhere fails, naming every page that gave one (a page a role may not open is a
403 or 404, never a crash)."""

import uuid

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import URLPattern, reverse

from audit.models import LedgerEntry
from audit.services import checkpoint_create
from governance.rules import roles
from governance.selectors.access import users_with_unit_access
from governance.services.gates import gate_policy_assign
from governance.services.openlineage import openlineage_event_ingest
from governance.services.releases import release_decide, release_request
from tests.gate_verdicts import record_gate_verdict

STANDARD = ("changelist", "add", "change", "history", "delete", "autocomplete")
WHY = "Checked the fairness figures by group and the explanation; independent of development."


@pytest.fixture
def every_kind_of_record(credit_model_version, make_user, unit, pipeline_token):
    """At least one row of every registered admin's model, in `unit`: a release awaiting a second
    decision (with its gate run, policies and one approval), lineage, a token, a checkpoint."""
    requester = make_user(roles.DATA_SCIENTIST, [unit])
    release = record_gate_verdict(
        release_request(model_version=credit_model_version, environment="production", actor=requester), "passed"
    )
    validator = make_user(roles.MODEL_RISK_VALIDATOR, [unit])
    release_decide(release=release, actor=validator, role=roles.MODEL_RISK_VALIDATOR, decision="approve",
                   justification=WHY)
    gate_policy_assign(policy_name=release.gate_run.policy.name, model=credit_model_version.model)
    openlineage_event_ingest(unit=unit, body={
        "eventType": "START", "eventTime": "2026-06-01T10:00:00Z", "producer": "https://example.com/smoke",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": str(uuid.uuid4())}, "job": {"namespace": unit.slug, "name": "smoke"},
        "inputs": [], "outputs": [],
    })
    checkpoint_create()
    return release


def _argument(name, obj):
    """A URL argument that names a real row: the object's pk, or a person with access to it."""
    if name == "pk":
        return obj.pk
    if name == "user_pk":
        return users_with_unit_access(obj).order_by("pk").first().pk
    if hasattr(obj, name):  # e.g. an erasure request's `reference`
        return getattr(obj, name)
    raise AssertionError(f"the smoke test does not know what the URL argument {name!r} names: say it in _argument")


def _pages(model, model_admin):
    """(name, url) of every page of MODEL_ADMIN, for the model's first row."""
    obj = model._default_manager.order_by("pk").first()
    assert obj is not None, f"the fixture made no {model._meta.label}"
    info = model._meta.app_label, model._meta.model_name
    pages = [("changelist", reverse("admin:{}_{}_changelist".format(*info))),
             ("search", reverse("admin:{}_{}_changelist".format(*info)) + "?q=1"),
             ("add", reverse("admin:{}_{}_add".format(*info)))]
    for suffix in ("change", "history", "delete"):
        pages.append((suffix, reverse(f"admin:{info[0]}_{info[1]}_{suffix}", args=[obj.pk])))
    for pattern in model_admin.get_urls():
        if not isinstance(pattern, URLPattern) or not pattern.name or pattern.name.endswith(STANDARD):
            continue
        kwargs = {name: _argument(name, obj) for name in getattr(pattern.pattern, "converters", {})}
        pages.append((pattern.name, reverse(f"admin:{pattern.name}", kwargs=kwargs)))
    return pages


def test_every_admin_page_opens_for_every_role(every_kind_of_record, make_user, unit):
    people = {"superuser": make_user(superuser=True)}
    people.update({role: make_user(role, [unit]) for role in roles.ROLES})
    people["no unit (officer)"] = make_user(roles.COMPLIANCE_OFFICER)
    assert LedgerEntry.objects.exists()
    client = Client(raise_request_exception=False)
    crashes, opened = [], 0
    for who, user in people.items():
        client.force_login(user)
        for page in ["/admin/", *[url for model, model_admin in admin.site._registry.items()
                                   for _, url in _pages(model, model_admin)]]:
            response = client.get(page)
            opened += 1
            if response.status_code >= 500:
                crashes.append(f"{who}: GET {page} -> {response.status_code}")
    assert not crashes, "\n".join(crashes)
    assert opened > 100
