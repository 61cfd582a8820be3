"""Signed release attestations: an in-toto Statement v1 in a DSSE envelope, signed with Ed25519.

A deployment pipeline receives the envelope with an approved release and checks it offline::

    python -m audit.attestation verify --attestation release.dsse.json \\
        --key 'custos.local/ledger+1a2b3c4d+AeX…' --artifact model.skops

The verify path (``verify_envelope``, ``verify_artifact``, the command line) needs only the
Python standard library and ``cryptography``: no Django, no database, no network. Only
``sign_statement`` touches Django, to load the ledger's signing key, and imports it lazily.
The format is documented in docs/attestation.md.
"""

import argparse
import base64
import binascii
import hashlib
import json
import sys
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
PREDICATE_TYPE = "https://custos.dev/attestation/release/v1"
ED25519_ALG = b"\x01"


class AttestationError(Exception):
    """The envelope is malformed, its signature does not verify, or it is about another file."""


# --- DSSE -----------------------------------------------------------------------------------


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: the exact bytes that are signed.

    ``"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`` with LEN the ASCII decimal byte
    length (https://github.com/secure-systems-lab/dsse/blob/master/protocol.md).
    """
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def _b64decode(text: str) -> bytes:
    """Decode standard or URL-safe base64, padded or not, as DSSE asks verifiers to accept."""
    if not isinstance(text, str):
        raise AttestationError("Expected a base64 string.")
    s = text.strip().replace("-", "+").replace("_", "/")
    s += "=" * (-len(s) % 4)
    try:
        return base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise AttestationError(f"Invalid base64: {exc}") from None


# --- keys (the note verifier-key form the ledger publishes) -----------------------------------


def note_key_id(name: str, public_key: bytes) -> str:
    """Signed-note key id: first 4 bytes of SHA-256(name || 0x0A || 0x01 || key), as hex."""
    return hashlib.sha256(name.encode() + b"\n" + ED25519_ALG + public_key).digest()[:4].hex()


def parse_verifier_key(text: str) -> tuple[str, Ed25519PublicKey]:
    """Parse ``<name>+<8 hex key id>+<base64(0x01 || 32-byte key)>``; return (key id, key)."""
    parts = text.strip().split("+", 2)  # the name has no "+", the base64 may
    if len(parts) != 3:
        raise AttestationError("A verifier key looks like '<name>+<keyid>+<base64 key>'.")
    name, kid, b64 = parts
    raw = _b64decode(b64)
    if len(raw) != 33 or raw[:1] != ED25519_ALG:
        raise AttestationError("The verifier key is not an Ed25519 key (0x01 followed by 32 bytes).")
    if note_key_id(name, raw[1:]) != kid.lower():
        raise AttestationError("The verifier key's id does not match its name and key.")
    return kid.lower(), Ed25519PublicKey.from_public_bytes(raw[1:])


def load_verifier_keys(spec: str) -> dict[str, Ed25519PublicKey]:
    """Keys from SPEC: a verifier-key text, or a file holding one per line."""
    path = Path(spec)
    lines = path.read_text().splitlines() if "+" not in spec and path.is_file() else [spec]
    keys = dict(parse_verifier_key(line) for line in lines if line.strip() and not line.startswith("#"))
    if not keys:
        raise AttestationError(f"No verifier key in {spec!r}.")
    return keys


# --- building and signing ---------------------------------------------------------------------


def statement(*, artifact_name: str, sha256: str, predicate: dict) -> dict:
    """Return an in-toto Statement v1 about one artifact with Custos's release predicate."""
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise ValueError("sha256 must be 64 lower-case hex digits.")
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": artifact_name, "digest": {"sha256": sha256}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": predicate,
    }


def sign_statement(stmt: dict, key=None) -> dict:
    """Serialise STMT canonically, sign its PAE with KEY (default: the ledger key), return the envelope."""
    from .canonical import canonical_json

    if key is None:
        from .keys import signing_key

        key = signing_key()
    payload = canonical_json(stmt)
    return {
        "payloadType": PAYLOAD_TYPE,
        "payload": base64.b64encode(payload).decode(),
        "signatures": [{"keyid": key.key_id, "sig": base64.b64encode(key.sign(pae(PAYLOAD_TYPE, payload))).decode()}],
    }


# --- verification (standard library + cryptography only) ------------------------------------


def verify_envelope(envelope, keys: dict[str, Ed25519PublicKey]) -> dict:
    """Return the Statement if some signature verifies with one of KEYS; else raise AttestationError."""
    if not isinstance(envelope, dict):
        raise AttestationError("The attestation is not a DSSE envelope (a JSON object).")
    payload_type = envelope.get("payloadType")
    if payload_type != PAYLOAD_TYPE:
        raise AttestationError(f"Unexpected payloadType {payload_type!r}; expected {PAYLOAD_TYPE!r}.")
    payload = _b64decode(envelope.get("payload"))
    signatures = envelope.get("signatures")
    if not isinstance(signatures, list) or not signatures:
        raise AttestationError("The envelope carries no signature.")
    message = pae(payload_type, payload)
    verified = False
    for sig in signatures:
        if not isinstance(sig, dict):
            continue
        candidates = [keys[sig["keyid"]]] if sig.get("keyid") in keys else list(keys.values())
        raw = _b64decode(sig.get("sig", ""))
        for key in candidates:
            try:
                key.verify(raw, message)
            except InvalidSignature:
                continue
            verified = True
            break
        if verified:
            break
    if not verified:
        raise AttestationError("No signature verifies with the given key(s).")
    try:
        stmt = json.loads(payload)
    except ValueError as exc:
        raise AttestationError(f"The signed payload is not JSON: {exc}") from None
    if not isinstance(stmt, dict) or stmt.get("_type") != STATEMENT_TYPE:
        raise AttestationError(f"The payload is not an in-toto Statement v1 ({STATEMENT_TYPE}).")
    if stmt.get("predicateType") != PREDICATE_TYPE:
        raise AttestationError(f"Unexpected predicateType {stmt.get('predicateType')!r}.")
    if not isinstance(stmt.get("subject"), list) or not stmt["subject"]:
        raise AttestationError("The statement names no subject.")
    return stmt


def file_sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_artifact(envelope, keys, artifact_path) -> dict:
    """Verify ENVELOPE and that ARTIFACT_PATH's SHA-256 is an attested subject; return the Statement."""
    stmt = verify_envelope(envelope, keys)
    actual = file_sha256(artifact_path)
    attested = [s.get("digest", {}).get("sha256") for s in stmt["subject"] if isinstance(s, dict)]
    if actual not in attested:
        raise AttestationError(
            f"The artifact's SHA-256 {actual} is not the attested one ({', '.join(map(str, attested))})."
        )
    return stmt


def verify_files(*, attestation: str, key: str, artifact: str) -> dict:
    """Load the envelope file and the key(s) and run ``verify_artifact``."""
    try:
        envelope = json.loads(Path(attestation).read_text())
    except ValueError as exc:
        raise AttestationError(f"{attestation} is not JSON: {exc}") from None
    if isinstance(envelope, dict) and "envelope" in envelope and "payload" not in envelope:
        envelope = envelope["envelope"]  # accept the API's release-status document as saved
    return verify_artifact(envelope, load_verifier_keys(key), artifact)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m audit.attestation", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    v = sub.add_parser("verify", help="verify an attestation against a model file, offline")
    v.add_argument("--attestation", required=True, help="DSSE envelope (JSON file)")
    v.add_argument("--key", required=True, help="note verifier key, or a file of them (one per line)")
    v.add_argument("--artifact", required=True, help="the model file about to be deployed")
    args = parser.parse_args(argv)
    try:
        stmt = verify_files(attestation=args.attestation, key=args.key, artifact=args.artifact)
    except (AttestationError, OSError) as exc:
        print(f"FAIL: {exc}", file=sys.stderr)
        return 1
    pred = stmt.get("predicate", {})
    print(
        f"OK: {stmt['subject'][0]['name']} sha256:{stmt['subject'][0]['digest']['sha256']} "
        f"release {pred.get('release_id')} approved for {pred.get('environment')}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
