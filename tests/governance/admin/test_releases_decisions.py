"""The decision forms the review page shows are exactly the decisions the service accepts, per role.

The admin asks ``decisions_open_to`` and the service enforces ``check_decision``: one rule. This
drives both through the real page: for every role, what is offered equals what a POST gets
recorded, on a passed and on an inconclusive gate.
"""

import pytest
from django.test import Client

from governance.models import Approval
from governance.rules import roles
from governance.services.releases import release_request
from tests.gate_verdicts import record_gate_verdict

WHY = "Reviewed the gate evidence and the lineage."
DECISIONS = ("approve", "reject", "override")


def _offered(page: str) -> set[str]:
    return {d for d in DECISIONS if f'/{d}/" id="{d}"' in page}


@pytest.mark.parametrize("verdict", ["passed", "inconclusive"])
@pytest.mark.parametrize("role", [roles.COMPLIANCE_OFFICER, roles.MODEL_RISK_VALIDATOR, roles.DATA_SCIENTIST,
                                  roles.AUDITOR, roles.HEAD_OF_MODEL_RISK])
def test_the_forms_shown_are_what_the_service_accepts(make_user, unit, credit_model_version, role, verdict):
    requester = make_user(roles.DATA_SCIENTIST, [unit])
    person = make_user(role, [unit])
    client = Client()
    client.force_login(person)
    accepted = set()
    for decision in DECISIONS:
        # a request of its own per decision, so that one decision does not change what the next may do
        version = _new_version(credit_model_version, decision)
        release = record_gate_verdict(release_request(model_version=version, environment="staging", actor=requester),
                                      verdict)
        url = f"/admin/governance/releaserequest/{release.pk}/review/"
        offered = _offered(client.get(url).content.decode())
        response = client.post(f"/admin/governance/releaserequest/{release.pk}/{decision}/", {"role": role, "justification": WHY})
        recorded = Approval.objects.filter(release=release, approver=person, decision=decision).exists()
        assert response.status_code in (302, 403)
        assert (decision in offered) == recorded, (role, verdict, decision, offered)
        if recorded:
            accepted.add(decision)
    expected = {
        (roles.COMPLIANCE_OFFICER, "passed"): {"approve", "reject"},
        (roles.MODEL_RISK_VALIDATOR, "passed"): {"approve", "reject"},
        (roles.COMPLIANCE_OFFICER, "inconclusive"): {"reject"},  # may not override; nobody approves first
        (roles.MODEL_RISK_VALIDATOR, "inconclusive"): {"reject", "override"},
    }.get((role, verdict), set())
    assert accepted == expected


def _new_version(model_version, suffix):
    """Another version of the same model (the same artifact), for a request of its own."""
    from governance.services.registry import model_version_register
    from governance.storage.artifacts import artifact_bytes

    return model_version_register(model=model_version.model, version=f"{model_version.version}-{suffix}",
                                  artifact=artifact_bytes(model_version), artifact_format=model_version.artifact_format)
