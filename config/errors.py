"""The domain's refusals, each knowing its HTTP status: raised by services and rules, rendered once.

Services and pure rules raise these (or Django's own ``ValidationError``, ``PermissionDenied``
and ``Http404``); ``config.api.problem_exception_handler`` turns every one of them into an RFC
9457 problem document, so no view maps errors of its own. The admin and the management
commands show the same message. Plain Python: the pure packages may raise them too.
"""


class DomainError(Exception):
    """A refusal a caller can act on; the message names what is wrong and never quotes personal data."""

    status_code = 400
    title = "Invalid request."
    code = "invalid"

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field  # the input field the refusal is about, if one

    @property
    def messages(self) -> list[str]:  # the shape of Django's ValidationError, for the admin
        return [self.message]


class Conflict(DomainError):
    """The request collides with the state of things (already registered, not in a state that allows it)."""

    status_code = 409
    title = "Conflict."
    code = "conflict"


class Refused(DomainError):
    """The caller may not do this, for a reason of the domain (segregation of duties, a rule)."""

    status_code = 403
    title = "Refused."
    code = "refused"


class TooLarge(DomainError):
    """The upload or body is larger than the configured limit."""

    status_code = 413
    title = "Payload too large."
    code = "payload_too_large"


def refusal_text(exc: Exception) -> str:
    """The words of a refusal (a DomainError, Django's ValidationError or PermissionDenied) for a
    person: what the admin shows as a message and a management command prints."""
    messages = getattr(exc, "messages", None)
    if messages:
        return " ".join(str(m) for m in messages)
    return str(exc) or type(exc).__name__
