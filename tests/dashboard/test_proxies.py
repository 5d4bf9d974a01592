"""Who a request comes from: REMOTE_ADDR, or behind TRUSTED_PROXIES the last address in
X-Forwarded-For that no trusted proxy wrote."""

from __future__ import annotations

from ipaddress import ip_network

import pytest

from dashboard.proxies import client_address

PROXIES = (ip_network("10.0.0.0/8"), ip_network("2001:db8::/32"))


@pytest.mark.parametrize(
    ("remote", "forwarded", "proxies", "client"),
    [
        # no proxy is trusted: the header is the client's to invent
        ("203.0.113.9", "198.51.100.1", (), "203.0.113.9"),
        ("10.0.0.1", "198.51.100.1", (), "10.0.0.1"),
        # a request that did not come through a trusted proxy: its header proves nothing
        ("203.0.113.9", "198.51.100.1", PROXIES, "203.0.113.9"),
        # through one trusted proxy, and through two
        ("10.0.0.1", "198.51.100.1", PROXIES, "198.51.100.1"),
        ("10.0.0.1", "198.51.100.1, 10.0.0.2", PROXIES, "198.51.100.1"),
        # what the client wrote before the proxies' entries is passed over
        ("10.0.0.1", "1.2.3.4, 5.6.7.8, 198.51.100.1", PROXIES, "198.51.100.1"),
        ("10.0.0.1", " 1.2.3.4 ,198.51.100.1 ", PROXIES, "198.51.100.1"),
        # IPv6, in the address's one spelling
        ("2001:db8::1", "2001:DB8:0:0:1::7", (ip_network("::1/128"),), "2001:db8::1"),
        ("2001:db8::1", "2A00:1450:0000::0007", PROXIES, "2a00:1450::7"),
        ("2001:db8::1", "2a00:1450::1, 2001:db8::5", PROXIES, "2a00:1450::1"),
        # a trusted proxy that forwarded nothing, or only trusted proxies, or garbage
        ("10.0.0.1", "", PROXIES, "10.0.0.1"),
        ("10.0.0.1", "10.0.0.3, 10.0.0.2", PROXIES, "10.0.0.3"),
        ("10.0.0.1", "unknown, 10.0.0.2", PROXIES, "10.0.0.2"),
        ("10.0.0.1", "1.2.3.4, garbage", PROXIES, "10.0.0.1"),
    ],
)
def test_the_client_address(settings, remote, forwarded, proxies, client) -> None:  # type: ignore[no-untyped-def]
    settings.TRUSTED_PROXIES = proxies
    meta = {"REMOTE_ADDR": remote}
    if forwarded:
        meta["HTTP_X_FORWARDED_FOR"] = forwarded
    assert client_address(meta) == client
