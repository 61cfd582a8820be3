"""Request checks that every view relies on."""

from django.http import HttpResponse, HttpResponseBadRequest

from .api import problem_response


class RefuseNulInQueryMiddleware:
    """Answer 400 to a query string holding a NUL character (%00).

    PostgreSQL cannot compare text with NUL, so such a parameter reaching a filter (an API
    list's ?artifact_sha256=, an admin list filter, the admin autocomplete's term) was a 500.
    No legitimate parameter holds one.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if "\x00" in request.META.get("QUERY_STRING", "") or any(
            "\x00" in key or any("\x00" in v for v in values) for key, values in request.GET.lists()
        ):
            detail = "The query string may not contain NUL characters."
            if request.path.startswith("/api/"):
                return problem_response(request, 400, "Bad Request.", detail)
            return HttpResponseBadRequest(detail)
        return self.get_response(request)


class RefuseChunkedBodyMiddleware:
    """Answer 411 Length Required to a request body sent in chunks (Transfer-Encoding: chunked).

    Django reads a body only up to its Content-Length, so a chunked body arrived empty and the
    view answered a misleading 400 ("field required"). A buffering reverse proxy (nginx's default
    ``proxy_request_buffering on``) forwards such a body with its Content-Length, and this never
    triggers; without one, the client is told to send the length.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
            detail = "Send the request body with a Content-Length header; chunked bodies are not read."
            if request.path.startswith("/api/"):
                return problem_response(request, 411, "Length Required.", detail)
            return HttpResponse(detail, status=411, content_type="text/plain")
        return self.get_response(request)
