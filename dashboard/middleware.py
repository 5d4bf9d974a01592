"""Our own middleware: the Content-Security-Policy header on HTML answers."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse


def content_security_policy(
    get_response: Callable[[HttpRequest], HttpResponse],
) -> Callable[[HttpRequest], HttpResponse]:
    """CONTENT_SECURITY_POLICY on every HTML answer (Django 5.2 has no CSP of its own). The
    API docs' Swagger UI sets inline styles as it renders, so that one page may; its scripts
    are still our static files only."""
    from django.conf import settings

    strict = settings.CONTENT_SECURITY_POLICY
    docs = strict.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")

    def middleware(request: HttpRequest) -> HttpResponse:
        response = get_response(request)
        if response.get("Content-Type", "").startswith("text/html"):
            policy = docs if request.path_info.startswith("/api/docs/") else strict
            response.setdefault("Content-Security-Policy", policy)
        return response

    return middleware
