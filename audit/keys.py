"""The ledger's Ed25519 signing key: loaded from the file named in settings, never stored.

Key ids follow the C2SP signed-note spec: the first four bytes of
SHA-256(key name || 0x0A || 0x01 || 32-byte public key), written as 8 hex digits.
"""

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .note import key_id, verifier_key  # noqa: F401  (the one definition; re-exported here)


def public_bytes(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@dataclass(frozen=True)
class SigningKey:
    name: str
    private_key: Ed25519PrivateKey

    @property
    def public_key(self) -> bytes:
        return public_bytes(self.private_key.public_key())

    @property
    def key_id(self) -> str:
        return key_id(self.name, self.public_key)

    @property
    def verifier_key(self) -> str:
        return verifier_key(self.name, self.public_key)

    def sign(self, message: bytes) -> bytes:
        return self.private_key.sign(message)

    def __repr__(self):  # never print key material
        return f"SigningKey(name={self.name!r}, key_id={self.key_id})"


def generate_key_file(path) -> Path:
    """Write a new Ed25519 private key (PKCS#8 PEM, mode 0600) to PATH; refuse to overwrite."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with open(path, "xb") as fh:  # "x": never overwrite an existing key
        fh.write(pem)
    path.chmod(0o600)
    return path


def load_key_file(path, name: str) -> SigningKey:
    """Load the Ed25519 private key in PATH (PKCS#8 PEM) as a SigningKey named NAME."""
    p = Path(path)
    return _load(str(p), p.stat().st_mtime_ns, name)


@lru_cache(maxsize=8)
def _load(path: str, mtime_ns: int, name: str) -> SigningKey:
    private = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    if not isinstance(private, Ed25519PrivateKey):
        raise ImproperlyConfigured("CUSTOS_SIGNING_KEY_FILE does not hold an Ed25519 private key.")
    return SigningKey(name=name, private_key=private)


def signing_key() -> SigningKey:
    """Return the current signing key, or raise ImproperlyConfigured naming what is missing."""
    path = settings.CUSTOS_SIGNING_KEY_FILE
    if not path:
        raise ImproperlyConfigured("CUSTOS_SIGNING_KEY_FILE is not set: the ledger cannot sign.")
    p = Path(path)
    if not p.is_file():
        raise ImproperlyConfigured(f"CUSTOS_SIGNING_KEY_FILE names a file that does not exist: {path}")
    return _load(str(p), p.stat().st_mtime_ns, settings.CUSTOS_LOG_ORIGIN)
