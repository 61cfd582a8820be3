"""Service-level views: health, and error pages that speak problem details under /api/."""

from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.defaults import page_not_found, server_error

from .api import problem_response

HEALTH_CHECKS = []  # (name, callable) pairs; apps add theirs in AppConfig.ready()


def register_health_check(name, check):
    """Add CHECK (a callable returning None or raising) to /healthz under NAME."""
    HEALTH_CHECKS.append((name, check))


def _database():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


@never_cache
def healthz(request):
    """Report whether each dependency is usable, without revealing any configuration."""
    results = {}
    for name, check in [("database", _database), *HEALTH_CHECKS]:
        try:
            check()
            results[name] = "ok"
        except Exception:  # a health probe reports failure, it does not raise
            results[name] = "fail"
    healthy = all(v == "ok" for v in results.values())
    return JsonResponse({"status": "ok" if healthy else "fail", "checks": results}, status=200 if healthy else 503)


def api_root(request):
    """What /api/v1/ holds: where its description and docs are (a newcomer's first request)."""
    base = request.build_absolute_uri("/api/v1/")
    return JsonResponse({
        "name": "Custos API", "version": "1",
        "docs": base + "docs/", "schema": base + "schema/", "redoc": base + "redoc/",
        "who_am_i": base + "me", "health": request.build_absolute_uri("/healthz"),
        "authentication": "an admin session, or 'Authorization: Bearer <token>' (manage.py tokens create)",
    })


def handler404(request, exception=None):
    if request.path.startswith("/api/"):
        return problem_response(request, 404, "Not found.")
    return page_not_found(request, exception)


def handler500(request):
    if request.path.startswith("/api/"):
        return problem_response(request, 500, "Internal server error.", "The error was logged.")
    return server_error(request)
