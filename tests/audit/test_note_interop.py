"""Custos's signed checkpoints and verifier keys, as Go's reference golang.org/x/mod/sumdb/note sees them.

Issue 3 asks that standard note verifiers accept Custos's checkpoints. The Go tests build
tests/audit/go/noteverify (note.NewVerifier + note.Open) offline from Debian's x/mod source
(packages golang-go and golang-golang-x-mod-dev) and skip when Go is absent, except under CI.
"""

import base64
import os
import shutil
import subprocess
from io import StringIO
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import call_command

from audit import merkle
from audit.keys import public_bytes, signing_key
from audit.models import LedgerEntry
from audit.note import NoteError, checkpoint_text, key_id, parse_verifier_key, sign_note, verifier_key, verify_note

PROGRAM = Path(__file__).parent / "go" / "noteverify"
GOPATHS = ["/usr/share/gocode"]  # where Debian's golang-golang-x-mod-dev puts the x/mod source

# The example in x/mod's sumdb/note/example_test.go: a note and verifier key made by Go itself.
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
GO_NOTE = (
    GO_TEXT + "\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)


@pytest.fixture(scope="session")
def noteverify(tmp_path_factory):
    """Build the Go verifier offline once; return run(verifier_key, note_text) -> CompletedProcess."""
    go = shutil.which("go")
    sources = [p for p in GOPATHS if (Path(p) / "src/golang.org/x/mod/sumdb/note/note.go").is_file()]
    if go is None or not sources:
        missing = "go" if go is None else "the x/mod source (golang-golang-x-mod-dev)"
        if os.environ.get("CI"):
            pytest.fail(f"CI must check checkpoints with Go's note verifier, but {missing} is not installed.")
        pytest.skip(f"{missing} is not installed (apt-get install golang-go golang-golang-x-mod-dev)")
    work = tmp_path_factory.mktemp("noteverify")
    binary = work / "noteverify"
    env = {
        **os.environ,
        "GO111MODULE": "off",  # GOPATH mode: imports come from the Debian source tree, no proxy
        "GOPATH": os.pathsep.join(sources),
        "GOCACHE": str(work / "cache"),
        "GOPROXY": "off",
        "GOFLAGS": "",
        "CGO_ENABLED": "0",
    }
    built = subprocess.run(
        [go, "build", "-o", str(binary), "."], cwd=PROGRAM, env=env, capture_output=True, text=True, timeout=300
    )
    assert built.returncode == 0, f"building the Go note verifier failed:\n{built.stderr}"

    def run(vkey, note):
        note_file = work / "note.txt"
        note_file.write_bytes(note.encode() if isinstance(note, str) else note)
        return subprocess.run([str(binary), vkey, str(note_file)], capture_output=True, text=True, timeout=60)

    return run


def ledger(*args):
    out = StringIO()
    call_command("ledger", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def listed_keys():
    """{status: verifier key} from `manage.py ledger keys list`."""
    keys = {}
    for line in ledger("keys", "list").splitlines():
        vkey, status = line.split()[:2]
        keys.setdefault(status, []).append(vkey)
    return keys


def expected_body(origin):
    """The checkpoint body recomputed from the stored entry hashes (and the row's signing time)."""
    from audit.chain import TIME_FORMAT
    from audit.models import Checkpoint

    hashes = [bytes(h) for h in LedgerEntry.objects.order_by("seq").values_list("entry_hash", flat=True)]
    signed_at = Checkpoint.objects.get(tree_size=len(hashes)).created_at.strftime(TIME_FORMAT)
    return checkpoint_text(origin, len(hashes), merkle.root(hashes), time=signed_at)


def test_go_accepts_the_checkpoint_from_the_command_with_the_listed_key(append, noteverify):
    append(5)
    note = ledger("checkpoint")
    [vkey] = listed_keys()["active"]
    result = noteverify(vkey, note)
    assert result.returncode == 0, result.stderr
    assert result.stdout == expected_body(signing_key().name)
    assert result.stdout.splitlines()[1] == "6"  # entry 0 declares the key, then the five appended


def test_go_accepts_the_api_checkpoint_note_with_the_api_key(append, noteverify, token_client):
    append(3)
    ledger("checkpoint")
    [key] = token_client.get("/api/v1/ledger/keys").json()
    note = token_client.get("/api/v1/ledger/checkpoint/note", HTTP_ACCEPT="text/plain").content.decode()
    result = noteverify(key["verifier_key"], note)
    assert result.returncode == 0, result.stderr
    assert result.stdout == expected_body(signing_key().name)


def test_go_rejects_a_tampered_checkpoint_and_a_wrong_key(append, noteverify):
    append(4)
    note = ledger("checkpoint")
    vkey = signing_key().verifier_key
    origin, size, root, blank, signature = note.split("\n", 4)
    other_root = base64.b64encode(bytes([base64.b64decode(root)[0] ^ 1]) + base64.b64decode(root)[1:]).decode()
    for tampered in (
        "\n".join([origin, size, other_root, blank, signature]),
        "\n".join([origin, str(int(size) + 1), root, blank, signature]),
    ):
        result = noteverify(vkey, tampered)
        assert result.returncode == 1 and "invalid signature" in result.stderr, result
    # The same name with another key: the signature's key id is unknown to Go, so nothing verifies.
    stranger = verifier_key(signing_key().name, public_bytes(Ed25519PrivateKey.generate().public_key()))
    result = noteverify(stranger, note)
    assert result.returncode == 1 and "no verifiable signatures" in result.stderr, result
    # A verifier key whose id does not match its key is refused by Go as by Custos.
    name, kid, encoded = vkey.split("+", 2)
    forged_id = f"{name}+{int(kid, 16) ^ 1:08x}+{encoded}"
    assert noteverify(forged_id, note).returncode == 2
    with pytest.raises(NoteError):
        parse_verifier_key(forged_id)
    assert noteverify(vkey, note).returncode == 0  # the untouched note still verifies


def test_go_verifies_each_checkpoint_with_the_key_that_was_active(own_key, append, noteverify):
    append(2)
    before = ledger("checkpoint")
    old = signing_key().verifier_key
    ledger("keys", "rotate")
    new = signing_key().verifier_key
    assert listed_keys() == {"retired": [old], "active": [new]}
    append(1)
    after = ledger("checkpoint")
    assert after != before

    result = noteverify(new, after)
    assert result.returncode == 0, result.stderr
    assert result.stdout == expected_body(signing_key().name)
    assert noteverify(old, after).returncode == 1  # the retired key did not sign the new checkpoint
    assert noteverify(old, before).returncode == 0  # and what it signed still verifies with it
    assert noteverify(new, before).returncode == 1


def test_custos_accepts_the_note_go_signed():
    """The other direction, without Go installed: x/mod's own example note and key."""
    v = parse_verifier_key(GO_VKEY)
    assert v.key_id == "c74f20a3" and key_id(v.name, v.public_key) == "c74f20a3"
    text, signers = verify_note(GO_NOTE, [v])
    assert text == GO_TEXT and signers == [v]
    with pytest.raises(NoteError):
        verify_note(GO_NOTE.replace("answer", "question"), [v])


def hand_signed(text):
    """TEXT signed exactly as sign_note would, without its checks."""
    key = signing_key()
    blob = bytes.fromhex(key.key_id) + key.sign(text.encode())
    return f"{text}\n\u2014 {key.name} {base64.b64encode(blob).decode()}\n"


CONTROL = ["\t", "\r", "\x00", "\x1b"]


@pytest.mark.parametrize("bad", CONTROL)
def test_custos_neither_signs_nor_accepts_a_control_character(bad):
    """Go's note.Open refuses any control character but newline; Custos used to sign and accept them."""
    key = signing_key()
    text = f"{key.name}\n1{bad}\n{base64.b64encode(bytes(32)).decode()}\n"
    with pytest.raises(NoteError, match="control character"):
        sign_note(text, key.name, key.private_key)
    with pytest.raises(NoteError, match="control character"):
        verify_note(hand_signed(text), [parse_verifier_key(key.verifier_key)])


@pytest.mark.parametrize("bad", CONTROL)
def test_go_calls_a_note_with_a_control_character_malformed(bad, noteverify):
    key = signing_key()
    text = f"{key.name}\n1{bad}\n{base64.b64encode(bytes(32)).decode()}\n"
    result = noteverify(key.verifier_key, hand_signed(text))
    assert result.returncode == 1 and "malformed note" in result.stderr, result
    assert noteverify(key.verifier_key, hand_signed(text.replace(bad, ""))).returncode == 0
