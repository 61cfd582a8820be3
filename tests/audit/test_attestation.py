"""Release attestations: DSSE signing and offline verification of in-toto statements."""

import base64
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit import attestation
from audit.attestation import (
    PAYLOAD_TYPE,
    PREDICATE_TYPE,
    AttestationError,
    load_envelope,
    pae,
    sign_statement,
    statement,
    verify_artifact,
    verify_envelope,
)
from audit.keys import SigningKey, signing_key
from audit.verifier import load_verifier_keys

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def artifact(tmp_path):
    path = tmp_path / "model.skops"
    path.write_bytes(b"not really a model, but bytes with a digest")
    return path


def release_envelope(artifact, *, environment="production", model="credit-scoring", version="3"):
    """An attestation signed with the ledger key, its predicate shaped as release_statement makes it."""
    digest = hashlib.sha256(artifact.read_bytes()).hexdigest()
    stmt = statement(
        artifact_name=f"{model}@{version}",
        sha256=digest,
        predicate={
            "release_id": 7,
            "environment": environment,
            "model": {"id": 1, "name": model, "version": version, "model_version_id": 3, "business_unit": "retail"},
            "artifact": {"sha256": digest, "format": "skops", "framework": "sklearn"},
            "approvals": [],
        },
    )
    return sign_statement(stmt)


@pytest.fixture
def envelope(artifact):
    return release_envelope(artifact)


@pytest.fixture
def keys():
    return load_verifier_keys([signing_key().verifier_key])


def test_pae_matches_the_dsse_spec_example():
    # protocol.md of secure-systems-lab/dsse: PAE("http://example.com/HelloWorld", "hello world")
    assert pae("http://example.com/HelloWorld", b"hello world") == b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    # lengths are byte lengths, not character counts
    assert pae("t", "é".encode()) == b"DSSEv1 1 t 2 \xc3\xa9"


def test_a_valid_attestation_verifies(envelope, keys, artifact):
    stmt = verify_artifact(envelope, keys, artifact)
    assert stmt["_type"] == "https://in-toto.io/Statement/v1"
    assert stmt["predicateType"] == PREDICATE_TYPE
    assert stmt["subject"][0]["name"] == "credit-scoring@3"
    assert envelope["payloadType"] == PAYLOAD_TYPE
    assert envelope["signatures"][0]["keyid"] == signing_key().key_id


def test_the_signature_is_over_the_pae_not_the_bare_payload(envelope):
    key = signing_key().private_key.public_key()
    payload = base64.b64decode(envelope["payload"])
    sig = base64.b64decode(envelope["signatures"][0]["sig"])
    key.verify(sig, pae(PAYLOAD_TYPE, payload))  # raises if not
    with pytest.raises(Exception):
        key.verify(sig, payload)


def test_a_tampered_payload_fails(envelope, keys, artifact):
    stmt = json.loads(base64.b64decode(envelope["payload"]))
    stmt["predicate"]["environment"] = "staging"
    forged = {**envelope, "payload": base64.b64encode(json.dumps(stmt).encode()).decode()}
    with pytest.raises(AttestationError, match="No signature verifies"):
        verify_artifact(forged, keys, artifact)


def test_a_changed_payload_type_fails(envelope, keys):
    with pytest.raises(AttestationError):
        verify_envelope({**envelope, "payloadType": "application/json"}, keys)


def test_the_wrong_key_fails(envelope, artifact):
    other = SigningKey(name=signing_key().name, private_key=Ed25519PrivateKey.generate())
    with pytest.raises(AttestationError, match="No signature verifies"):
        verify_artifact(envelope, load_verifier_keys([other.verifier_key]), artifact)


def test_a_signature_by_another_key_under_our_key_id_fails(envelope, keys, artifact):
    stmt = json.loads(base64.b64decode(envelope["payload"]))
    impostor = SigningKey(name=signing_key().name, private_key=Ed25519PrivateKey.generate())
    forged = sign_statement(stmt, key=impostor)
    forged["signatures"][0]["keyid"] = signing_key().key_id
    with pytest.raises(AttestationError):
        verify_artifact(forged, keys, artifact)


def test_the_wrong_artifact_fails(envelope, keys, tmp_path):
    other = tmp_path / "other.skops"
    other.write_bytes(b"a different model")
    with pytest.raises(AttestationError, match="not the attested one"):
        verify_artifact(envelope, keys, other)


@pytest.mark.parametrize(
    "broken",
    [
        None,
        [],
        {"payloadType": PAYLOAD_TYPE},
        {"payloadType": PAYLOAD_TYPE, "payload": "!!!", "signatures": [{"sig": "AA=="}]},
        {"payloadType": PAYLOAD_TYPE, "payload": "e30=", "signatures": []},
        {"payloadType": PAYLOAD_TYPE, "payload": "e30=", "signatures": ["x"]},
    ],
)
def test_malformed_envelopes_are_refused_cleanly(broken, keys):
    with pytest.raises(AttestationError):
        verify_envelope(broken, keys)


def test_a_signed_non_statement_is_refused(keys):
    env = sign_statement({"_type": "something else"})
    with pytest.raises(AttestationError, match="Statement v1"):
        verify_envelope(env, keys)


def test_statement_refuses_a_bad_digest():
    with pytest.raises(ValueError):
        statement(artifact_name="m", sha256="ABC", predicate={})


BLOCK_DJANGO = (
    "import sys, runpy\n"
    # the project's editable install would find audit's other modules in the checkout: a deploy
    # image has only the copied files
    "sys.meta_path = [f for f in sys.meta_path if 'editable' not in getattr(f, '__module__', '')]\n"
    "class Block:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name == 'django' or name.startswith('django.'):\n"
    "            raise ImportError('Django is not available here')\n"
    "sys.meta_path.insert(0, Block())\n"
    "sys.argv = ['audit.verifier'] + sys.argv[1:]\n"
    "runpy.run_module('audit.verifier', run_name='__main__')\n"
)


def _cli(tmp_path, envelope, key, artifact, *extra, environment="production"):
    env_file = tmp_path / "release.dsse.json"
    env_file.write_text(json.dumps(envelope))
    where = ["--environment", environment] if environment else []
    return subprocess.run(
        [sys.executable, "-c", BLOCK_DJANGO, "--attestation", str(env_file), "--key", key, "--artifact", str(artifact),
         *where, *extra],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )


def test_verifier_command_checks_an_attestation_without_django(tmp_path, envelope, artifact):
    result = _cli(tmp_path, envelope, signing_key().verifier_key, artifact)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK: credit-scoring@3")


def test_verifier_command_accepts_a_key_file_and_the_saved_status_answer(tmp_path, envelope, artifact):
    key_file = tmp_path / "custos.vkey"
    key_file.write_text(signing_key().verifier_key + "\n")
    assert _cli(tmp_path, {"approved": True, "attestation": envelope}, str(key_file), artifact).returncode == 0


def test_verifier_command_fails_on_the_wrong_artifact(tmp_path, envelope):
    other = tmp_path / "other.bin"
    other.write_bytes(b"other")
    result = _cli(tmp_path, envelope, signing_key().verifier_key, other)
    assert result.returncode == 1 and "FAILED" in result.stdout


def test_verifier_command_fails_on_a_tampered_envelope(tmp_path, envelope, artifact):
    stmt = json.loads(base64.b64decode(envelope["payload"]))
    stmt["predicate"]["environment"] = "staging"
    forged = {**envelope, "payload": base64.b64encode(json.dumps(stmt).encode()).decode()}
    assert _cli(tmp_path, forged, signing_key().verifier_key, artifact).returncode == 1


def test_verifier_command_fails_with_the_wrong_key(tmp_path, envelope, artifact):
    other = SigningKey(name=signing_key().name, private_key=Ed25519PrivateKey.generate())
    assert _cli(tmp_path, envelope, other.verifier_key, artifact).returncode == 1


def test_verifier_command_refuses_unusable_input(tmp_path, envelope, artifact):
    assert _cli(tmp_path, envelope, signing_key().verifier_key, tmp_path / "absent").returncode == 2
    env_file = tmp_path / "release.dsse.json"
    env_file.write_text(json.dumps(envelope))
    missing_artifact = subprocess.run(
        [sys.executable, "-m", "audit.verifier", "--attestation", str(env_file), "--key", signing_key().verifier_key,
         "--environment", "production"],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert missing_artifact.returncode == 2


def test_load_envelope_reads_both_shapes(tmp_path, envelope):
    bare, wrapped = tmp_path / "a.json", tmp_path / "b.json"
    bare.write_text(json.dumps(envelope))
    wrapped.write_text(json.dumps({"approved": True, "attestation": envelope}))
    assert load_envelope(bare) == load_envelope(wrapped) == envelope
    (tmp_path / "c.json").write_text("not json")
    with pytest.raises(AttestationError):
        load_envelope(tmp_path / "c.json")


def test_verify_path_imports_no_django():
    src = Path(attestation.__file__).read_text()
    top = [line for line in src.splitlines() if line.startswith(("import ", "from "))]
    assert not any("django" in line or ".keys" in line or ".canonical" in line for line in top)


VERIFIER_FILES = ["__init__.py", "verifier.py", "attestation.py", "note.py", "chain.py", "merkle.py", "pdf.py"]


def test_the_seven_verifier_files_alone_verify_an_attestation(tmp_path, envelope, artifact):
    """The README's deploy step carries only these files of audit/ (and no Django)."""
    package = tmp_path / "tools" / "audit"
    package.mkdir(parents=True)
    for name in VERIFIER_FILES:
        (package / name).write_text((ROOT / "audit" / name).read_text())
    env_file = tmp_path / "release.dsse.json"
    env_file.write_text(json.dumps(envelope))
    # Every audit module that runs must come from the copy (an installed Custos must not fill gaps).
    runner = BLOCK_DJANGO.replace(
        "runpy.run_module('audit.verifier', run_name='__main__')\n",
        "try:\n"
        "    runpy.run_module('audit.verifier', run_name='__main__')\n"
        "finally:\n"
        f"    outside = [n for n, m in sys.modules.items() if n.startswith('audit') and not getattr(m, '__file__', '').startswith({str(package)!r})]\n"
        "    if outside:\n"
        "        print('loaded from elsewhere:', outside)\n"
        "        sys.exit(3)\n",
    )
    result = subprocess.run(
        [sys.executable, "-c", runner, "--attestation", str(env_file), "--key", signing_key().verifier_key,
         "--artifact", str(artifact), "--environment", "production", "--model", "credit-scoring",
         "--model-version", "3"],
        cwd=tmp_path, capture_output=True, text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path / "tools")},
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- an attestation binds its environment, model and version offline (issue #13, item 2) ----------


def test_a_staging_attestation_does_not_open_production(tmp_path, artifact):
    """The outside attacker's case: a genuine staging approval, presented to a production deploy."""
    staging = release_envelope(artifact, environment="staging")
    result = _cli(tmp_path, staging, signing_key().verifier_key, artifact, environment="production")
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.startswith("FAILED") and "environment 'staging', not 'production'" in result.stdout
    assert _cli(tmp_path, staging, signing_key().verifier_key, artifact, environment="staging").returncode == 0


def test_the_environment_is_required(tmp_path, envelope, artifact):
    result = _cli(tmp_path, envelope, signing_key().verifier_key, artifact, environment=None)
    assert result.returncode == 2 and "--environment" in result.stderr and not result.stdout


@pytest.mark.parametrize(
    "flags, named",
    [
        (["--model", "hiring-screen"], "model 'credit-scoring', not 'hiring-screen'"),
        (["--model-version", "4"], "model version '3', not '4'"),
        (["--model", "credit-scoring", "--model-version", "3.0"], "model version '3', not '3.0'"),
    ],
)
def test_another_model_or_version_is_refused(tmp_path, envelope, artifact, flags, named):
    result = _cli(tmp_path, envelope, signing_key().verifier_key, artifact, *flags)
    assert result.returncode == 1 and named in result.stdout, result.stdout + result.stderr


def test_matching_model_and_version_verify_and_are_printed(tmp_path, envelope, artifact):
    result = _cli(tmp_path, envelope, signing_key().verifier_key, artifact, "--model", "credit-scoring", "--model-version", "3")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "model 'credit-scoring' version '3'" in result.stdout and "approved for production" in result.stdout


def test_an_attestation_without_release_facts_is_refused(tmp_path, artifact):
    digest = hashlib.sha256(artifact.read_bytes()).hexdigest()
    bare = sign_statement(statement(artifact_name="m", sha256=digest, predicate={"release_id": 1}))
    result = _cli(tmp_path, bare, signing_key().verifier_key, artifact)
    assert result.returncode == 1 and "environment None, not 'production'" in result.stdout


def test_release_flags_without_an_attestation_are_refused(tmp_path, artifact):
    result = subprocess.run(
        [sys.executable, "-m", "audit.verifier", str(tmp_path / "bundle.json"), "--key", signing_key().verifier_key,
         "--environment", "production"],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert result.returncode == 2 and "go with --attestation" in result.stderr


def test_verify_release_checks_each_fact(envelope, keys, artifact):
    from audit.attestation import verify_release

    stmt = verify_release(envelope, keys, artifact, environment="production", model="credit-scoring", version="3")
    assert stmt["predicate"]["release_id"] == 7
    with pytest.raises(AttestationError, match="environment 'production', not 'staging'"):
        verify_release(envelope, keys, artifact, environment="staging")
    with pytest.raises(AttestationError, match="Name the environment"):
        verify_release(envelope, keys, artifact, environment="")
