"""C2SP signed notes and tlog checkpoints with Ed25519: pure functions (stdlib + cryptography).

A checkpoint body is ``<origin>\\n<tree size>\\n<base64 root hash>\\n`` (C2SP tlog-checkpoint).
A signed note is the body, a blank line, and one line per signature:
``— <key name> <base64(4-byte key id || 64-byte signature)>\\n`` (C2SP signed-note), so that
standard verifiers such as Go's ``golang.org/x/mod/sumdb/note`` accept it. Key ids are the first
four bytes of SHA-256(name || 0x0A || 0x01 || 32-byte public key); a verifier key is published
as ``<name>+<8 hex digits key id>+<base64(0x01 || public key)>``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from functools import cached_property

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

ED25519_ALG = b"\x01"
SIGNATURE_PREFIX = "\u2014 "  # em dash and a space


class NoteError(ValueError):
    """A note, verifier key or checkpoint is malformed or does not verify."""


def key_id(name: str, public_key: bytes) -> str:
    """Return the signed-note key id of PUBLIC_KEY under NAME, as 8 hex digits."""
    return hashlib.sha256(name.encode() + b"\n" + ED25519_ALG + public_key).digest()[:4].hex()


def verifier_key(name: str, public_key: bytes) -> str:
    """Return the note verifier key text ``<name>+<keyid>+<base64(0x01 || key)>``."""
    return f"{name}+{key_id(name, public_key)}+{base64.b64encode(ED25519_ALG + public_key).decode()}"


@dataclass(frozen=True)
class Verifier:
    """A parsed verifier key: the name, key id and raw Ed25519 public key."""

    name: str
    key_id: str
    public_key: bytes

    @property
    def text(self) -> str:
        return verifier_key(self.name, self.public_key)

    @cached_property
    def _key(self) -> Ed25519PublicKey:
        return Ed25519PublicKey.from_public_bytes(self.public_key)

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            self._key.verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True


def _valid_name(name: str) -> bool:
    return bool(name) and all(c.isprintable() and not c.isspace() and c != "+" for c in name)


def parse_verifier_key(text: str) -> Verifier:
    """Parse ``<name>+<keyid>+<base64 key>``; raise NoteError unless it is a consistent Ed25519 key."""
    parts = text.strip().split("+", 2)  # the base64 key may itself contain "+"
    if len(parts) != 3 or not _valid_name(parts[0]):
        raise NoteError("A verifier key has the form <name>+<8 hex digits>+<base64 key>.")
    name, kid, encoded = parts
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise NoteError("The verifier key is not valid base64.") from exc
    if len(raw) != 33 or raw[:1] != ED25519_ALG:
        raise NoteError("The verifier key is not an Ed25519 key (algorithm byte 0x01, 32 bytes).")
    if key_id(name, raw[1:]) != kid.lower():
        raise NoteError("The verifier key's id does not match its name and public key.")
    return Verifier(name=name, key_id=kid.lower(), public_key=raw[1:])


def raise_if_bad_name(name: str) -> None:
    if not _valid_name(name):
        raise NoteError(f"Key name {name!r} must be non-empty, without spaces or '+'.")


def raise_if_not_note_chars(text: str) -> None:
    """Refuse what Go's note.Open rejects in a whole note: invalid UTF-8, or a control character but newline.

    A tab or a carriage return (a CRLF line ending) signs and verifies fine byte for byte, but
    standard verifiers refuse the note as malformed, so Custos neither signs nor accepts one.
    """
    bad = next((c for c in text if c < " " and c != "\n"), None)
    if bad is not None:
        raise NoteError(f"A note may hold no control character but newline (found {bad!r}).")
    try:
        text.encode()
    except UnicodeEncodeError as exc:
        raise NoteError("A note must be valid UTF-8.") from exc


def sign_note(text: str, name: str, private_key) -> str:
    """Return TEXT signed as a note by an Ed25519 private key object under NAME."""
    if not text.endswith("\n"):
        raise NoteError("A note's text must end with a newline.")
    raise_if_not_note_chars(text)
    raise_if_bad_name(name)
    public = private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    signature = private_key.sign(text.encode())
    blob = bytes.fromhex(key_id(name, public)) + signature
    return f"{text}\n{SIGNATURE_PREFIX}{name} {base64.b64encode(blob).decode()}\n"


@dataclass(frozen=True)
class NoteSignature:
    name: str
    key_id: str
    signature: bytes


def parse_note(note: str) -> tuple[str, list[NoteSignature]]:
    """Split a signed note into its text and signatures; raise NoteError when malformed."""
    if not isinstance(note, str) or not note.endswith("\n"):
        raise NoteError("A signed note ends with a newline.")
    raise_if_not_note_chars(note)
    sep = note.rfind("\n\n")
    if sep < 0:
        raise NoteError("A signed note has a blank line between its text and its signatures.")
    text, sig_block = note[: sep + 1], note[sep + 2 :]
    signatures = []
    for line in sig_block.splitlines():
        if not line.startswith(SIGNATURE_PREFIX):
            raise NoteError("Every signature line starts with an em dash and a space.")
        try:
            name, encoded = line[len(SIGNATURE_PREFIX) :].split(" ")
            blob = base64.b64decode(encoded, validate=True)
        except (ValueError, binascii.Error) as exc:
            raise NoteError("A signature line is '— <name> <base64 signature>'.") from exc
        if len(blob) < 5 or not _valid_name(name):
            raise NoteError("A signature line is too short or names an invalid key.")
        signatures.append(NoteSignature(name=name, key_id=blob[:4].hex(), signature=blob[4:]))
    if not signatures:
        raise NoteError("The note carries no signature.")
    return text, signatures


def verify_note(note: str, verifiers) -> tuple[str, list[Verifier]]:
    """Return the note's text and the verifiers that signed it; raise NoteError if none of VERIFIERS did.

    Like the Go implementation, a signature by a known key that does not verify is an error,
    and signatures by unknown keys are ignored.
    """
    text, signatures = parse_note(note)
    known = {(v.name, v.key_id): v for v in verifiers}
    good = []
    for sig in signatures:
        v = known.get((sig.name, sig.key_id))
        if v is None:
            continue
        if not v.verify(text.encode(), sig.signature):
            raise NoteError(f"The signature by {sig.name}+{sig.key_id} does not verify.")
        good.append(v)
    if not good:
        raise NoteError("The note is not signed by any of the trusted keys.")
    return text, good


@dataclass(frozen=True)
class Checkpoint:
    """A parsed C2SP tlog checkpoint body (TIME: Custos's signed time extension line, if any)."""

    origin: str
    size: int
    root: bytes
    time: str | None = None

    @property
    def text(self) -> str:
        return checkpoint_text(self.origin, self.size, self.root, time=self.time)


# Custos signs when it signed a checkpoint as an extension line of the body (C2SP tlog-checkpoint
# allows extension lines after the root; standard verifiers ignore them): "time <ISO 8601 UTC>".
TIME_EXTENSION = "time "


def checkpoint_text(origin: str, size: int, root: bytes, *, time: str | None = None) -> str:
    """Return the checkpoint body for ORIGIN, tree SIZE and ROOT hash (and the signing TIME, if given)."""
    if not origin or "\n" in origin:
        raise NoteError("A checkpoint origin is one non-empty line.")
    body = f"{origin}\n{size}\n{base64.b64encode(root).decode()}\n"
    if time is not None:
        if "\n" in time or not time:
            raise NoteError("A checkpoint's time is one non-empty line.")
        body += f"{TIME_EXTENSION}{time}\n"
    return body


def parse_checkpoint(text: str) -> Checkpoint:
    """Parse a checkpoint body (extension lines after the root are allowed and ignored)."""
    lines = text.split("\n")
    if len(lines) < 4 or lines[-1] != "" or not lines[0]:
        raise NoteError("A checkpoint body has an origin line, a size line and a root hash line.")
    origin, size_text, root_text = lines[0], lines[1], lines[2]
    if not size_text.isdigit() or (len(size_text) > 1 and size_text[0] == "0"):
        raise NoteError("A checkpoint's tree size is a decimal number without leading zeros.")
    try:
        root = base64.b64decode(root_text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise NoteError("A checkpoint's root hash is base64.") from exc
    if len(root) != 32:
        raise NoteError("A checkpoint's root hash has 32 bytes.")
    times = [line[len(TIME_EXTENSION):] for line in lines[3:-1] if line.startswith(TIME_EXTENSION)]
    return Checkpoint(origin=origin, size=int(size_text), root=root, time=times[0] if len(times) == 1 else None)


def open_checkpoint(note: str, verifiers, origin: str | None = None) -> Checkpoint:
    """Verify a signed checkpoint note with VERIFIERS and return its parsed body."""
    text, _ = verify_note(note, verifiers)
    checkpoint = parse_checkpoint(text)
    if origin is not None and checkpoint.origin != origin:
        raise NoteError(f"The checkpoint is for log {checkpoint.origin!r}, not {origin!r}.")
    return checkpoint
