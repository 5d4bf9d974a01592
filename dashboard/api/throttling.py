"""Rate limits: every request counts on its client's address (API_ADDRESS_RATE_LIMIT), and
on its key (API_RATE_LIMIT): a Bearer key, a moderator's session, or a key that rides in a
URL or a body (a Bacalhau probe's, a legacy client's id), which its view counts with
`count_on`. "0" turns either off."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from django.conf import settings
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from dashboard.api.permissions import api_key
from dashboard.proxies import client_address

if TYPE_CHECKING:
    from rest_framework.views import APIView

__all__ = ["AddressRateThrottle", "KeyRateThrottle", "count_on", "key_counter"]


class AddressRateThrottle(SimpleRateThrottle):
    """Per client address, X-Forwarded-For read only from TRUSTED_PROXIES (DRF's own
    get_ident believes any client's header). An IPv6 client counts by its /64, the least
    a network hands one subscriber, so it cannot count afresh from each of its addresses."""

    scope = "address"

    def get_rate(self) -> str | None:
        return settings.API_ADDRESS_RATE_LIMIT

    def get_ident(self, request: Request) -> str:
        address = client_address(request.META)
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return address[:100]
        if ip.version == 6 and ip.ipv4_mapped is None:
            return str(ipaddress.ip_network(f"{ip}/64", strict=False))
        return str(ip)

    def get_cache_key(self, request: Request, view: APIView) -> str:
        return f"throttle:ip:{self.get_ident(request)}"


class KeyRateThrottle(SimpleRateThrottle):
    """Per Bearer key or moderator session; requests with neither count by address only."""

    scope = "api_key"

    def get_rate(self) -> str | None:
        return settings.API_RATE_LIMIT

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        key = api_key(request)
        if key is not None:
            return key_counter(key.prefix)
        if getattr(request.user, "pk", None):
            return f"throttle:user:{request.user.pk}"
        return None


def key_counter(prefix: str) -> str:
    """A key's one counter, whether it came as a Bearer header or in a probe URL."""
    return f"throttle:key:{prefix}"


class _Named(KeyRateThrottle):
    def __init__(self, counter: str) -> None:
        self.counter = counter
        super().__init__()

    def get_cache_key(self, request: Request, view: APIView) -> str:
        return self.counter


def count_on(request: Request, view: APIView, counter: str) -> None:
    """Count a request at API_RATE_LIMIT on `counter`, for a key that rides in its URL or
    its body, once the view knows it is one (a probe's key, a bound legacy client): 429
    rate_limited beyond it."""
    throttle = _Named(counter)
    if not throttle.allow_request(request, view):
        view.throttled(request, throttle.wait() or 1.0)
