"""API conventions shared by every app: RFC 9457 problem details and pagination.

``problem_exception_handler`` is the one error mapping of the API: DRF's own exceptions, the
domain's (``config.errors.DomainError`` and its kinds, each with its status) and Django's
``ValidationError``, ``Http404`` and ``PermissionDenied`` all become problem documents here, so
views call services and let refusals propagate.
"""

from http import HTTPStatus

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions, serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import exception_handler

from .errors import DomainError

PROBLEM_CONTENT_TYPE = "application/problem+json"


class BodyTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is larger than the server accepts (DATA_UPLOAD_MAX_MEMORY_SIZE)."
    default_code = "payload_too_large"


class ProblemSerializer(serializers.Serializer):
    """An RFC 9457 problem details document, as every error of the API is."""

    type = serializers.CharField(help_text="'about:blank'")
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField(required=False, allow_null=True)
    instance = serializers.CharField(required=False, help_text="The path of the request.")
    code = serializers.CharField(required=False, help_text="A stable machine-readable code.")
    errors = serializers.JSONField(required=False, help_text="Per field, the reasons it was refused.")


PROBLEM_DESCRIPTIONS = {
    400: "Invalid input (problem+json, with `errors` per field).",
    401: "Not authenticated.",
    403: "Not allowed (permission, unit or segregation of duties).",
    404: "No such object in the caller's business units (or no such page of a list).",
    406: "The Accept header asks for a media type the API does not serve (it serves JSON).",
    409: "Conflicts with the state of things.",
    411: "A request body sent in chunks (send it with Content-Length).",
    413: "Larger than the configured limit.",
    415: "Unsupported media type.",
    422: "The Idempotency-Key was used for a different request.",
    429: "Too many requests (Retry-After says when to come back).",
}


def problem_responses(*codes) -> dict:
    """``extend_schema(responses=...)`` entries for the problem documents a view may answer with.

    401 and 429 apply to every authenticated, throttled view and are always included.
    """
    wanted = sorted({401, 429, *codes})
    return {
        (code, PROBLEM_CONTENT_TYPE): OpenApiResponse(response=ProblemSerializer, description=PROBLEM_DESCRIPTIONS[code])
        for code in wanted
    }


class Pagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 500


def problem(status_code, *, title, detail=None, type_="about:blank", instance=None, **extra):
    """Return an RFC 9457 problem details body (a dict)."""
    body = {"type": type_, "title": title, "status": status_code}
    if detail is not None:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    body.update(extra)
    return body


def _flatten(detail):
    if isinstance(detail, dict):
        return {k: _flatten(v) for k, v in detail.items()}
    if isinstance(detail, list):
        return [_flatten(v) for v in detail]
    return str(detail)


class DomainProblem(exceptions.APIException):
    """A DomainError carried through DRF's handler with its own status, title and code."""

    def __init__(self, error: DomainError):
        self.status_code = error.status_code
        self.default_detail = error.title
        self.default_code = error.code
        self.message = error.message
        super().__init__({error.field: [error.message]} if error.field else error.message, error.code)


def _validation_error(exc: DjangoValidationError) -> exceptions.ValidationError:
    if hasattr(exc, "error_dict"):
        return exceptions.ValidationError({"detail" if k == "__all__" else k: v for k, v in exc.message_dict.items()})
    return exceptions.ValidationError(exc.messages)


def problem_exception_handler(exc, context):
    """Render every API error, including validation errors, as problem details."""
    if isinstance(exc, DomainError):
        exc = DomainProblem(exc)
    elif isinstance(exc, DjangoValidationError):
        exc = _validation_error(exc)
    elif isinstance(exc, RequestDataTooBig):  # a JSON or form body past DATA_UPLOAD_MAX_MEMORY_SIZE
        exc = BodyTooLarge()
    elif isinstance(exc, Http404):
        # Custos's own 404s say what is missing ("Several units have this model; name the
        # business_unit."); they name nothing the caller may not read.
        exc = exceptions.NotFound(str(exc) or None)
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    response = exception_handler(exc, context)
    request = context.get("request")
    instance = request.get_full_path() if request is not None else None
    if response is None:
        return None  # an unexpected error: Django's handler500 answers (see problem_500)
    code = response.status_code
    title = str(getattr(exc, "default_detail", None) or "")
    if not title or "{" in title:  # a template such as 'Method "{method}" not allowed.'
        title = HTTPStatus(code).phrase + "."
    extra = {}
    if isinstance(exc, exceptions.ValidationError):
        title = "Invalid input."
        detail = "The request has invalid fields; see 'errors'."
        extra["errors"] = _flatten(exc.detail)
    else:
        detail = _flatten(getattr(exc, "detail", str(exc)))
        if isinstance(detail, dict):
            extra["errors"] = detail
            detail = getattr(exc, "message", None)  # a domain refusal about one field says it in words too
    if getattr(exc, "default_code", None):
        extra["code"] = getattr(exc, "get_codes", lambda: exc.default_code)()
        if not isinstance(extra["code"], str):
            extra["code"] = exc.default_code
    body = problem(code, title=str(title), detail=detail, instance=instance, **extra)
    headers = {k: v for k, v in response.items() if k.lower() in ("www-authenticate", "retry-after", "allow")}
    return Response(body, status=code, headers=headers, content_type=PROBLEM_CONTENT_TYPE)


def problem_response(request, status_code, title, detail=None):
    return JsonResponse(
        problem(status_code, title=title, detail=detail, instance=request.get_full_path()),
        status=status_code,
        content_type=PROBLEM_CONTENT_TYPE,
    )
