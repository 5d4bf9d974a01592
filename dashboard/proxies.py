"""Who a request comes from: its peer's address, or, when the peer is one of our own proxies
(TRUSTED_PROXIES), the address that proxy says it got the request from."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from django.conf import settings

__all__ = ["client_address"]


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def _trusted(address: ipaddress.IPv4Address | ipaddress.IPv6Address | None) -> bool:
    return address is not None and any(address in net for net in settings.TRUSTED_PROXIES)


def client_address(meta: Mapping[str, Any]) -> str:
    """REMOTE_ADDR, unless it is a trusted proxy: then X-Forwarded-For read from the right,
    where each proxy appended the address it got the request from, up to the first address
    that is not a trusted proxy. Whatever stands left of that was written by the client and
    proves nothing; with no trusted proxies the header is not read at all."""
    remote = str(meta.get("REMOTE_ADDR") or "")
    peer = _address(remote)
    if not _trusted(peer):
        return str(peer) if peer is not None else remote
    for hop in reversed(str(meta.get("HTTP_X_FORWARDED_FOR") or "").split(",")):
        address = _address(hop)
        if address is None:  # not an address: the last proxy that we trust is the client
            break
        peer = address
        if not _trusted(address):
            break
    return str(peer)
