"""The DRF exception handler: every API error in the one shape, with a stable code."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler

from dashboard.errors import DomainError, error_body

_CODES: list[tuple[type[Exception], str]] = [
    (exceptions.NotAuthenticated, "not_authenticated"),
    (exceptions.AuthenticationFailed, "invalid_api_key"),
    (exceptions.PermissionDenied, "forbidden"),
    (exceptions.NotFound, "not_found"),
    (exceptions.MethodNotAllowed, "method_not_allowed"),
    (exceptions.NotAcceptable, "not_acceptable"),
    (exceptions.UnsupportedMediaType, "unsupported_media_type"),
    (exceptions.ParseError, "malformed_json"),
    (exceptions.Throttled, "rate_limited"),
    (exceptions.ValidationError, "invalid_request"),
]


def handle(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DomainError):
        return Response(exc.body(), status=exc.status, headers=exc.headers)
    if isinstance(exc, RequestDataTooBig):
        return Response(error_body("body_too_large", "the request body is too large"), status=413)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = exception_handler(exc, context)  # status and headers (WWW-Authenticate, …)
    if response is None:
        return None
    code = next((c for kind, c in _CODES if isinstance(exc, kind)), "error")
    if isinstance(exc, exceptions.ValidationError):
        response.data = error_body(code, "the request is invalid", _fields(exc.detail))
    elif isinstance(exc, exceptions.Throttled):
        wait = getattr(exc, "wait", None) or 1  # seconds; DRF sets it, its stubs miss it
        response.data = error_body(code, f"rate limit exceeded; retry in {wait:.0f} s")
        response["Retry-After"] = str(max(1, int(wait + 0.999)))
    else:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        response.data = error_body(code, str(detail))
    return response


def _fields(detail: Any) -> dict[str, Any]:
    if isinstance(detail, dict):
        return {
            str(k): [str(m) for m in v] if isinstance(v, list) else str(v)
            for k, v in detail.items()
        }
    return {
        "non_field_errors": [str(m) for m in detail] if isinstance(detail, list) else [str(detail)]
    }
