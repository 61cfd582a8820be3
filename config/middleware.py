"""Request checks that every view relies on."""

from django.http import HttpResponseBadRequest

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
