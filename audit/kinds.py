"""The closed vocabulary of ledger kinds: each app declares its kinds once and registers them.

Like Django's admin ``LogEntry`` action flags and Zulip's ``AuditLogEventType``, a ledger kind
is never a free string: an app declares its kinds as a ``StrEnum`` and registers it in its
``AppConfig.ready()``; ``ledger_append`` refuses a kind nobody registered. The ledger itself
knows nothing of the apps above it, so it keeps a registry instead of importing their enums.
Plain Python (the offline verifier never needs it).
"""

from enum import StrEnum

from .chain import KEY_REGISTERED, KEY_REVOKED, KEY_ROTATED

_KNOWN: dict[str, StrEnum] = {}


class LedgerKind(StrEnum):
    """The ledger's own kinds: its keys' lifecycle (written only by the key services)."""

    KEY_REGISTERED = KEY_REGISTERED
    KEY_ROTATED = KEY_ROTATED
    KEY_REVOKED = KEY_REVOKED


def register_kinds(kinds: type[StrEnum]) -> None:
    """Make every member of KINDS an accepted ledger kind; a value may belong to one enum only."""
    for member in kinds:
        other = _KNOWN.get(member.value)
        if other is not None and type(other) is not kinds:
            raise ValueError(f"Ledger kind {member.value!r} is declared by {type(other).__name__} and {kinds.__name__}.")
        _KNOWN[member.value] = member


def is_registered(kind: str) -> bool:
    return str(kind) in _KNOWN


def registered_kinds() -> list[str]:
    return sorted(_KNOWN)


register_kinds(LedgerKind)
