"""Evidence bundles: `manage.py ledger export` and the stand-alone `python -m audit.verifier`."""

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from audit.keys import generate_key_file, load_key_file, signing_key
from audit.note import NoteError, checkpoint_text, parse_verifier_key, sign_note, verify_note
from audit.verifier import main

ROOT = Path(__file__).resolve().parents[2]
NO_DJANGO = "import sys; sys.modules['django'] = None; from audit.verifier import main; sys.exit(main(sys.argv[1:]))"


def run_offline(*args):
    """Run the verifier in a fresh interpreter in which importing Django fails."""
    return subprocess.run(
        [sys.executable, "-c", NO_DJANGO, *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def bundle_path(append, tmp_path):
    append(8, subject="governance.modelversion:7")
    append(5)
    path = tmp_path / "bundle.json"
    call_command("ledger", "export", "--out", str(path), "--subject", "governance.modelversion:7")
    return path


def test_subject_bundle_verifies_offline_without_django(bundle_path):
    bundle = json.loads(bundle_path.read_text())
    assert not bundle["complete"] and bundle["tree_size"] == 14
    subjects = {json.loads(base64.b64decode(e["canonical"]))["subject"] for e in bundle["entries"]}
    assert subjects == {"governance.modelversion:7", f"audit.key:{signing_key().key_id}"}
    result = run_offline(bundle_path, "--key", signing_key().verifier_key)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK: 9 entries verified (inclusion proofs)" in result.stdout


def test_complete_bundle_verifies_offline(append, tmp_path):
    append(6)
    path = tmp_path / "all.json"
    call_command("ledger", "export", "--out", str(path))
    key_file = tmp_path / "custos.vkey"
    key_file.write_text(signing_key().verifier_key + "\n")
    result = run_offline(path, "--key", key_file, "--quiet")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK: 7 entries verified (complete chain)" in result.stdout


def test_bundle_spanning_a_rotation_verifies_with_the_current_key(own_key, append, tmp_path):
    append(3, subject="governance.modelversion:7")
    call_command("ledger", "keys", "rotate")
    append(2, subject="governance.modelversion:7")
    path = tmp_path / "b.json"
    call_command("ledger", "export", "--out", str(path), "--subject", "governance.modelversion:7")
    assert main([str(path), "--key", signing_key().verifier_key, "--quiet"]) == 0


def _edit(path, mutate):
    bundle = json.loads(path.read_text())
    mutate(bundle)
    path.write_text(json.dumps(bundle))


def _content(item):
    return json.loads(base64.b64decode(item["canonical"]))


def _recanonical(item, **changes):
    from audit.canonical import canonical_json

    content = {**_content(item), **changes}
    item["canonical"] = base64.b64encode(canonical_json(content)).decode()
    return item


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda b: _recanonical(b["entries"][3], payload={"i": 99}), "does not match its hash"),
        (lambda b: b["entries"][3].update(inclusion_proof=b["entries"][4]["inclusion_proof"]), "not included"),
        (lambda b: b["entries"][3].update(signature=b["entries"][4]["signature"]), "signature does not verify"),
        (lambda b: b["entries"].pop(0), "key entries"),
        (lambda b: b.update(checkpoint=b["checkpoint"].replace("\n14\n", "\n15\n")), "checkpoint"),
        (lambda b: b.update(format="something-else"), "not a Custos evidence bundle"),
    ],
    ids=["edited-entry", "wrong-proof", "swapped-signature", "key-entry-removed", "edited-checkpoint", "format"],
)
def test_tampered_bundles_fail(bundle_path, mutate, expected, capsys):
    _edit(bundle_path, mutate)
    assert main([str(bundle_path), "--key", signing_key().verifier_key]) == 1
    out = capsys.readouterr().out
    assert out.startswith("FAILED") and expected in out


def test_bundle_rehashed_and_resigned_by_another_key_fails(bundle_path, tmp_path, capsys):
    """An attacker re-hashes an entry and re-signs it: the checkpoint's proofs still catch it."""
    other = tmp_path / "m.key"
    generate_key_file(other)
    mallory = load_key_file(other, signing_key().name)

    def forge(bundle):
        from audit.merkle import leaf_hash

        item = _recanonical(bundle["entries"][2], payload={"approved": True}, key_id=mallory.key_id)
        data = base64.b64decode(item["canonical"])
        item.update(entry_hash=leaf_hash(data).hex(), signature=base64.b64encode(mallory.sign(data)).decode())
        item["key_id"] = mallory.key_id

    _edit(bundle_path, forge)
    assert main([str(bundle_path), "--key", signing_key().verifier_key]) == 1
    assert "not included" in capsys.readouterr().out


def test_untrusted_checkpoint_key_fails(bundle_path, tmp_path):
    other = tmp_path / "o.key"
    generate_key_file(other)
    result = run_offline(bundle_path, "--key", load_key_file(other, signing_key().name).verifier_key)
    assert result.returncode == 1 and "not signed by any of the trusted keys" in result.stdout


def test_bad_arguments_exit_2(bundle_path, tmp_path):
    assert run_offline(bundle_path, "--key", "not-a-key").returncode == 2
    assert run_offline("--key", signing_key().verifier_key).returncode == 2  # nothing to verify
    assert run_offline(tmp_path / "absent.json", "--key", signing_key().verifier_key).returncode == 2


def test_verifier_key_format_and_note_round_trip():
    key = signing_key()
    name, kid, encoded = key.verifier_key.split("+", 2)
    assert name == key.name and len(kid) == 8 and base64.b64decode(encoded)[:1] == b"\x01"
    v = parse_verifier_key(key.verifier_key)
    note = sign_note(checkpoint_text(key.name, 3, bytes(32)), key.name, key.private_key)
    text, signers = verify_note(note, [v])
    assert text == f"{key.name}\n3\n{base64.b64encode(bytes(32)).decode()}\n" and signers == [v]
    with pytest.raises(NoteError):
        verify_note(note.replace("\n3\n", "\n4\n"), [v])
    with pytest.raises(NoteError):
        parse_verifier_key(key.verifier_key.replace(kid, "00000000"))


def test_note_matches_the_signed_note_spec_byte_for_byte():
    """Signature line = em dash, space, name, space, base64(key id || Ed25519 signature) — per C2SP."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    key = signing_key()
    text = checkpoint_text(key.name, 1, b"\x01" * 32)
    note = sign_note(text, key.name, key.private_key)
    assert note.startswith(text + "\n")
    line = note[len(text) + 1 :]
    assert line.startswith("\u2014 " + key.name + " ") and line.endswith("\n")
    blob = base64.b64decode(line.rsplit(" ", 1)[1])
    assert blob[:4].hex() == key.key_id and len(blob) == 68
    Ed25519PublicKey.from_public_bytes(key.public_key).verify(blob[4:], text.encode())


# --- every header field is verified or absent (issue #13, item 3) ---------------------------------


def _verify_edited(path, mutate, capsys):
    _edit(path, mutate)
    status = main([str(path), "--key", signing_key().verifier_key, "--quiet"])
    return status, capsys.readouterr().out


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda b: b.update(tree_size=15), "tree size 15, but the signed checkpoint's is 14"),
        (lambda b: b.update(tree_size="14"), "tree size '14'"),
        (lambda b: b.update(root_hash="00" * 32), "root hash"),
        (lambda b: b.update(root_hash="not hex"), "root hash"),
        (lambda b: _set_subject(b, "governance.modelversion:8"), "not a subject the bundle names"),
        (lambda b: b.update(subjects=[]), "non-empty list"),
        (lambda b: b.update(subject="governance.modelversion:7"), "both `subject` and `subjects`"),
        (lambda b: b.update(origin="other.example/log"), "not 'other.example/log'"),
        (lambda b: (_set_subject(b, None), b.update(complete=True)), "carry no inclusion proofs"),
        (lambda b: b.update(complete="no"), "`complete` must be true or false"),
        (lambda b: b.pop("subjects"), "must name the subject"),
        (lambda b: b["keys"].append(_other_key()), "listed but declared by no entry"),
        (lambda b: b.update(keys=[]), "declared but not listed"),
        (lambda b: b.update(approved=True), "fields no verifier checks: approved"),
        (lambda b: b["entries"][2].update(note="approved by the board"), "entry 2: malformed"),
        (lambda b: b["entries"].append(dict(b["entries"][3])), "appears twice"),
        (lambda b: b["entries"][3].update(seq=True), "malformed"),
    ],
    ids=[
        "tree-size", "tree-size-text", "root-hash", "root-hash-malformed", "subject", "subjects-empty",
        "subject-and-subjects", "origin", "complete-claimed", "complete-not-bool", "subjects-dropped",
        "foreign-key-listed", "keys-dropped", "unknown-field", "unknown-entry-field", "duplicate-entry", "seq-bool",
    ],
)
def test_tampered_bundle_headers_fail(bundle_path, mutate, expected, capsys):
    status, out = _verify_edited(bundle_path, mutate, capsys)
    assert status == 1 and out.startswith("FAILED") and expected in out, out


def _set_subject(bundle, subject):
    """Replace the subject a bundle names, in whichever form it names it (or drop it for None)."""
    bundle.pop("subject", None)
    bundle.pop("subjects", None)
    if subject is not None:
        bundle["subjects"] = [subject]


def _other_key():
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from audit.keys import SigningKey

    return SigningKey(name=signing_key().name, private_key=Ed25519PrivateKey.generate()).verifier_key


def test_an_entry_about_another_subject_is_refused_even_with_a_valid_proof(append, tmp_path, capsys):
    """Real entries of the same ledger, proven in the same tree, must not pass as the subject's."""
    from audit.selectors import checkpoint_latest, evidence_bundle
    from audit.services import checkpoint_create

    append(4, subject="governance.modelversion:7")
    append(3, subject="governance.modelversion:8")
    checkpoint = checkpoint_create()
    ours = evidence_bundle(checkpoint=checkpoint, subject="governance.modelversion:7")
    theirs = evidence_bundle(checkpoint=checkpoint_latest(), subject="governance.modelversion:8")
    smuggled = [e for e in theirs["entries"] if e["seq"] > 0][0]
    ours["entries"].append(smuggled)
    path = tmp_path / "smuggled.json"
    path.write_text(json.dumps(ours))
    assert main([str(path), "--key", signing_key().verifier_key, "--quiet"]) == 1
    out = capsys.readouterr().out
    assert f"entry {smuggled['seq']}: it is about 'governance.modelversion:8'" in out


def test_a_bundle_about_several_subjects_verifies_and_says_what_it_proves(append, tmp_path, capsys):
    from audit.selectors import evidence_bundle
    from audit.services import checkpoint_create
    from audit.verifier import verify_bundle

    append(3, subject="governance.modelversion:7")
    append(2, subject="governance.gaterun:4")
    append(2, subject="governance.dataset:9")
    bundle = evidence_bundle(
        checkpoint=checkpoint_create(), subjects=["governance.modelversion:7", "governance.gaterun:4"]
    )
    assert bundle["subjects"] == ["governance.gaterun:4", "governance.modelversion:7"] and "subject" not in bundle
    report = verify_bundle(bundle, [parse_verifier_key(signing_key().verifier_key)])
    assert not report.complete and report.subjects == bundle["subjects"]
    assert {e["subject"] for e in report.entries} == {*bundle["subjects"], f"audit.key:{signing_key().key_id}"}
    assert report.keys == [signing_key().verifier_key]
    path = tmp_path / "several.json"
    path.write_text(json.dumps(bundle))
    assert main([str(path), "--key", signing_key().verifier_key, "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "OK: 6 entries verified (inclusion proofs)" in out
    assert "does not prove that no entry about governance.gaterun:4, governance.modelversion:7 was left out" in out


def test_a_complete_bundle_says_it_holds_every_entry(append, tmp_path, capsys):
    append(3)
    path = tmp_path / "all.json"
    call_command("ledger", "export", "--out", str(path))
    bundle = json.loads(path.read_text())
    assert bundle["complete"] is True and "subjects" not in bundle and "subject" not in bundle
    assert main([str(path), "--key", signing_key().verifier_key, "--quiet"]) == 0
    assert "(complete chain): every entry of the ledger up to the checkpoint" in capsys.readouterr().out
    _edit(path, lambda b: b.update(subjects=["governance.modelversion:1"]))
    assert main([str(path), "--key", signing_key().verifier_key, "--quiet"]) == 1
    assert "a complete bundle holds every entry; it names no subject" in capsys.readouterr().out


def test_bundle_keys_stop_at_the_checkpoint(own_key, append):
    """A bundle at an older checkpoint lists the keys of its own entries, not keys declared later."""
    from audit.selectors import evidence_bundle
    from audit.services import checkpoint_create
    from audit.verifier import verify_bundle

    append(2, subject="governance.modelversion:7")
    old_checkpoint = checkpoint_create()
    old_key = signing_key().verifier_key
    call_command("ledger", "keys", "rotate")
    checkpoint_create()
    for subject in ("governance.modelversion:7", None):
        bundle = evidence_bundle(checkpoint=old_checkpoint, subject=subject)
        assert bundle["keys"] == [old_key]
        assert verify_bundle(bundle, [parse_verifier_key(old_key)]).keys == [old_key]


@pytest.mark.parametrize("name", ["legacy-subject-bundle.json", "legacy-complete-bundle.json"])
def test_bundles_exported_before_the_header_checks_still_verify(name):
    """Written by `ledger export` as it was before issue #13 (legacy `subject`, a key rotation inside)."""
    data = ROOT / "tests" / "audit" / "data"
    result = run_offline(data / name, "--key", data / "legacy-bundle.vkey", "--quiet")
    assert result.returncode == 0, result.stdout + result.stderr
    if name.startswith("legacy-subject"):
        assert json.loads((data / name).read_text())["subject"] == "governance.modelversion:7"
        assert "OK: 9 entries verified (inclusion proofs)" in result.stdout
    else:
        assert "OK: 11 entries verified (complete chain)" in result.stdout


def test_a_deeply_nested_file_is_unusable_input_not_a_crash(tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    bundle = run_offline(deep, "--key", signing_key().verifier_key)
    assert bundle.returncode == 2 and "cannot read bundle" in bundle.stderr and "Traceback" not in bundle.stderr
    artifact = tmp_path / "model.skops"
    artifact.write_bytes(b"model")
    attestation = run_offline(
        "--attestation", deep, "--key", signing_key().verifier_key, "--artifact", artifact, "--environment", "production"
    )
    assert attestation.returncode == 2 and "is not JSON" in attestation.stderr and "Traceback" not in attestation.stderr
