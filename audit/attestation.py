"""Signed release attestations: an in-toto Statement v1 in a DSSE envelope, signed with Ed25519.

A deployment pipeline receives the envelope with an approved release and checks it offline::

    python -m audit.verifier --attestation release.dsse.json \\
        --key 'custos.local/ledger+1a2b3c4d+AeX…' --artifact model.skops \\
        --environment production --model credit-scoring --model-version 1.4.0

An attestation approves one artifact for one environment: ``verify_release`` checks the
signature, the artifact's digest and the environment (and, when given, the model and version)
the pipeline is deploying to, so that a staging approval cannot open the way to production.

The verify path (``verify_envelope``, ``verify_artifact``, ``verify_release``, and that command)
needs only the Python standard library and ``cryptography``: no Django, no database, no network. Verifier keys
are the ledger's note verifier keys (``audit.note``). Only ``sign_statement`` touches Django, to
load the ledger's signing key, and imports it lazily. The format is documented in
docs/attestation.md.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from pathlib import Path

from .note import Verifier

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
PREDICATE_TYPE = "https://custos.dev/attestation/release/v1"


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
    # Only signing needs rfc8785 and Django: the verify path (this file in a deploy image) does not.
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


def verify_envelope(envelope, verifiers: list[Verifier]) -> dict:
    """Return the Statement if a signature verifies with one of VERIFIERS; else raise AttestationError."""
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
    # The keyid is an unauthenticated hint: every trusted key is tried on every signature.
    sigs = [_b64decode(sig.get("sig", "")) for sig in signatures if isinstance(sig, dict)]
    if not any(v.verify(message, raw) for raw in sigs for v in verifiers):
        raise AttestationError("No signature verifies with the given key(s).")
    try:
        stmt = json.loads(payload)
    except (ValueError, RecursionError) as exc:
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
    """Verify ENVELOPE and that ARTIFACT_PATH's SHA-256 is an attested subject; return the Statement.

    It says nothing of the environment: a deployment checks with ``verify_release``.
    """
    stmt = verify_envelope(envelope, keys)
    actual = file_sha256(artifact_path)
    attested = [s.get("digest", {}).get("sha256") for s in stmt["subject"] if isinstance(s, dict)]
    if actual not in attested:
        raise AttestationError(
            f"The artifact's SHA-256 {actual} is not the attested one ({', '.join(map(str, attested))})."
        )
    return stmt


def release_facts(stmt: dict) -> dict:
    """The environment, model name and model version a release Statement's predicate attests."""
    predicate = stmt.get("predicate")
    predicate = predicate if isinstance(predicate, dict) else {}
    model = predicate.get("model")
    model = model if isinstance(model, dict) else {}
    return {"environment": predicate.get("environment"), "model": model.get("name"), "version": model.get("version")}


_FACT_NAMES = {"environment": "environment", "model": "model", "version": "model version"}


def verify_release(
    envelope, keys, artifact_path, *, environment: str, model: str | None = None, version: str | None = None
) -> dict:
    """Verify ENVELOPE, that ARTIFACT_PATH is the attested artifact, and that the release is for ENVIRONMENT.

    MODEL and VERSION, when given, must be the model name and version the predicate names too.
    Raises AttestationError naming the first fact that differs; returns the Statement.
    """
    if not isinstance(environment, str) or not environment:
        raise AttestationError("Name the environment the artifact is being deployed to.")
    stmt = verify_artifact(envelope, keys, artifact_path)
    attested = release_facts(stmt)
    for fact, wanted in (("environment", environment), ("model", model), ("version", version)):
        if wanted is not None and attested[fact] != wanted:
            raise AttestationError(
                f"The attestation approves {_FACT_NAMES[fact]} {attested[fact]!r}, not {wanted!r}: "
                "it does not approve this deployment."
            )
    return stmt


def load_envelope(path) -> dict:
    """Read an envelope from PATH: a bare DSSE envelope, or the release-status answer saved whole."""
    try:
        data = json.loads(Path(path).read_text())
    except (ValueError, RecursionError) as exc:  # json recurses per level: a deep file is unusable input
        raise AttestationError(f"{path} is not JSON: {exc}") from None
    if isinstance(data, dict) and "payload" not in data and isinstance(data.get("attestation"), dict):
        data = data["attestation"]
    return data
