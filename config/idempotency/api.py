"""``Idempotency-Key`` for POSTs: the same request with the same key gets the same answer once.

Follows the IETF draft "The Idempotency-Key HTTP Header Field": a repeat of a successful POST
with the same key replays the stored response (marked ``Idempotent-Replayed: true``) instead
of acting again; reusing a key for a different request is a 422; a repeat that races the first
is a 409. Keys are scoped to the caller. Failed requests are not stored, so they can be retried.
The stored answer lives in ``IdempotencyRecord`` (not governed evidence: the ledger holds that).
"""

import hashlib
import json

from django.db import IntegrityError, transaction
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import exceptions
from rest_framework.response import Response

from ..errors import Conflict, DomainError
from .models import IdempotencyRecord

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 200
IN_FLIGHT = 0  # status_code of a claimed key whose request has not finished
IN_FLIGHT_MESSAGE = "A request with this Idempotency-Key is being processed; retry shortly."

IDEMPOTENCY_PARAMETER = OpenApiParameter(
    HEADER,
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=False,
    description="A unique key per intended action (e.g. a UUID). Repeating the POST with the same "
    "key returns the first answer instead of acting twice.",
)


class KeyReused(DomainError):
    status_code = 422
    title = "Idempotency key reused."
    code = "idempotency_key_reused"


class KeyInFlight(Conflict):
    code = "idempotency_key_in_flight"


def _request_digest(request) -> str:
    body = json.dumps(request.data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{request.method} {request.path}\n{body}".encode()).hexdigest()


def idempotent(request, endpoint: str, handler) -> Response:
    """Run HANDLER (returns a Response) at most once per (caller, Idempotency-Key).

    The key is claimed first, in its own transaction, so a concurrent repeat sees it and gets a
    409 instead of acting too. HANDLER then runs as it would without a key (its services
    commit, and their on-commit steps run); its answer is stored if it succeeded, and the
    claim is released if it failed, so that a failed request can be retried with its key.
    """
    key = request.headers.get(HEADER)
    if key is None:
        return handler()
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH:
        raise exceptions.ValidationError({HEADER: [f"Give 1 to {MAX_KEY_LENGTH} characters."]})
    digest = _request_digest(request)
    try:
        with transaction.atomic():
            claim, created = IdempotencyRecord.objects.get_or_create(
                user=request.user,
                key=key,
                defaults={"endpoint": endpoint, "request_sha256": digest, "status_code": IN_FLIGHT, "response": {}},
            )
    except IntegrityError:  # claimed by a concurrent request between our read and our insert
        raise KeyInFlight(IN_FLIGHT_MESSAGE) from None
    if not created:
        if claim.endpoint != endpoint or claim.request_sha256 != digest:
            raise KeyReused("This Idempotency-Key was used for a different request.")
        if claim.status_code == IN_FLIGHT:
            raise KeyInFlight(IN_FLIGHT_MESSAGE)
        return Response(claim.response, status=claim.status_code, headers={"Idempotent-Replayed": "true"})
    try:
        response = handler()
    except BaseException:
        IdempotencyRecord.objects.filter(pk=claim.pk).delete()
        raise
    if 200 <= response.status_code < 300:
        IdempotencyRecord.objects.filter(pk=claim.pk).update(status_code=response.status_code, response=response.data)
    else:
        IdempotencyRecord.objects.filter(pk=claim.pk).delete()
    return response
