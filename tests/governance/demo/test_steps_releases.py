"""The demo's release step: one approved (with an attestation that verifies), one awaiting, one rejected."""

import json

from django.core.management import call_command

from audit.attestation import load_envelope, verify_artifact
from audit.verifier import load_verifier_keys
from audit.keys import signing_key
from governance.storage.artifacts import artifact_bytes
from governance.demo.steps import releases
from governance.models import ReleaseRequest


def test_demo_releases(db, tmp_path):
    call_command("demo")  # users, registry, gate runs, then the releases (attested at once by the step)
    states = sorted(ReleaseRequest.objects.filter(model__name="credit-scoring-gbm").values_list("state", flat=True))
    assert states == ["approved", "awaiting_approval", "gate_failed", "rejected"]
    approved = ReleaseRequest.objects.get(state="approved")
    assert approved.gate_verdict == "passed" and approved.gate_run.status == "passed"
    envelope = tmp_path / "release.dsse.json"
    envelope.write_text(json.dumps(approved.attestation))
    key = tmp_path / "custos.vkey"
    key.write_text(signing_key().verifier_key)
    artifact = tmp_path / "model.skops"
    artifact.write_bytes(artifact_bytes(approved.model_version))
    stmt = verify_artifact(load_envelope(envelope), load_verifier_keys([str(key)]), artifact)
    assert stmt["predicate"]["release_id"] == approved.pk
    again = []
    releases(again.append)
    assert again == ["  releases: exist"] and ReleaseRequest.objects.filter(model__name="credit-scoring-gbm").count() == 4
