"""Every registered admin page, of every app (governance, monitoring, reports, audit), opens for every role: the list, add, change, history and delete
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
from tests.governance.monitoring.conftest import (  # noqa: F401  (fixtures: a production plan with its windows)
    PLAN_ORIGIN,
    monitoring_people,
    production_plan,
)
from tests.governance.monitoring.test_services import WEEK, _feed

STANDARD = ("changelist", "add", "change", "history", "delete", "autocomplete")
WHY = "Checked the fairness figures by group and the explanation; independent of development."


@pytest.fixture
def every_kind_of_record(production_plan, monitoring_people, make_credit_model_version, make_user, unit,
                         pipeline_token, django_capture_on_commit_callbacks):
    """At least one row of every registered admin's model, in `unit`: a release awaiting a second
    decision (with its gate run, policies and one approval), lineage, a token, a checkpoint; a
    production plan with a closed window, a finding and an incident; a completed erasure with its
    review; a human section and an issued report."""
    from governance.monitoring.services import incident_open, windows_close
    from governance.services import erasure
    from reports.services.reports import report_render, report_request
    from reports.services.sections import human_section_record

    _feed(production_plan, monitoring_people, 1, shift_from=0)
    windows_close(now=PLAN_ORIGIN + WEEK)
    incident_open(finding=production_plan.findings.first(), category="widespread", aware_at=PLAN_ORIGIN + WEEK,
                  description="Applicants' amounts shifted.", actor=monitoring_people["validator"])
    credit_model_version = make_credit_model_version(unit, version="2.0")
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
    first, second = make_user(roles.DATA_PROTECTION_OFFICER), make_user(roles.DATA_PROTECTION_OFFICER)
    request = erasure.erasure_request_record(subject_id="applicant-0006", ground="b", actor=first)
    request = erasure.erasure_identity_verify(request=request, evidence_reference="DPO ticket 1", actor=first)
    request = erasure.erasure_plan(request=request, actor=first)
    request = erasure.erasure_plan_approve(request=request, plan_sha256=request.plan_sha256, actor=second)
    with django_capture_on_commit_callbacks(execute=True):
        erasure.erasure_execute(request=request, actor=second)
    human_section_record(model=credit_model_version.model, key="1e", text="Runs on the bank's scoring cluster.",
                         actor=requester)
    report_render(report_id=report_request(kind="inventory", subject=f"governance.businessunit:{unit.pk}",
                                           actor=make_user(roles.AUDITOR), dispatch=False).pk)
    checkpoint_create()
    return release


def _argument(name, obj):
    """A URL argument that names a real row: the object's pk, or a person with access to it."""
    if name == "pk":
        return obj.pk
    if name == "user_pk":
        return users_with_unit_access(obj).order_by("pk").first().pk
    if name == "step":  # an erasure request's confirmation pages
        return "execute"
    if hasattr(obj, name):  # e.g. an erasure request's `reference`, a report's `kind`
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
