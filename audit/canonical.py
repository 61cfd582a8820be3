"""RFC 8785 (JSON Canonicalization Scheme) serialisation of ledger entries."""

import rfc8785


def canonical_json(value) -> bytes:
    """Return the RFC 8785 canonical bytes of VALUE (raises on NaN, infinities, non-JSON types)."""
    return rfc8785.dumps(value)
