"""Django's browser middleware, skipped by machine calls to the API.

Sessions, CSRF, the session user and flash messages serve the moderator pages, and the
moderators' browser sessions that read the API. A request to /api/ that carries an
`Authorization` header is a machine: the API authenticates it by that header alone (a bad
header is a 401, never a fall-back to the session), so these have nothing to do for it. On
the single-CID GET they cost about a tenth of a gunicorn worker's time (bench_api, py-spy;
the message middleware alone imports its storage class on every request).

Subclasses rather than a wrapper: Django's system checks (the admin's) look for these
classes in MIDDLEWARE, and Django collects the process_view hooks (CSRF's check) from there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.middleware.csrf import CsrfViewMiddleware

API_PREFIX = "/api/"


def is_machine_api_call(request: HttpRequest) -> bool:
    return request.path_info.startswith(API_PREFIX) and "HTTP_AUTHORIZATION" in request.META


class _BrowserOnly:
    """Pass machine API calls straight to the next middleware (WSGI; under ASGI, or for any
    other request, the middleware runs as Django wrote it)."""

    get_response: Any  # the middleware class's own: sync here (async_mode is False)
    async_mode: bool

    def __call__(self, request: HttpRequest) -> Any:
        if not self.async_mode and is_machine_api_call(request):
            return self.get_response(request)
        return super().__call__(request)  # type: ignore[misc]


class BrowserSessionMiddleware(_BrowserOnly, SessionMiddleware):
    pass


class BrowserCsrfViewMiddleware(_BrowserOnly, CsrfViewMiddleware):
    def process_view(
        self,
        request: HttpRequest,
        callback: Callable[..., Any],
        callback_args: tuple[Any, ...],
        callback_kwargs: dict[str, Any],
    ) -> HttpResponseForbidden | None:
        if is_machine_api_call(request):
            return None
        return super().process_view(request, callback, callback_args, callback_kwargs)


class BrowserAuthenticationMiddleware(_BrowserOnly, AuthenticationMiddleware):
    pass


class BrowserMessageMiddleware(_BrowserOnly, MessageMiddleware):
    pass


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
