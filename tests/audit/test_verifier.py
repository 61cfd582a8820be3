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
