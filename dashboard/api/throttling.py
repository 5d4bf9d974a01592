"""Per-key rate limit (API_RATE_LIMIT, e.g. "1200/min"; "0" turns it off)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from dashboard.api.permissions import api_key

if TYPE_CHECKING:
    from rest_framework.views import APIView


class KeyRateThrottle(SimpleRateThrottle):
    scope = "api_key"

    def get_rate(self) -> str | None:
        return settings.API_RATE_LIMIT

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        key = api_key(request)
        if key is not None:
            return f"throttle:key:{key.prefix}"
        if getattr(request.user, "pk", None):
            return f"throttle:user:{request.user.pk}"
        return f"throttle:ip:{self.get_ident(request)}"
