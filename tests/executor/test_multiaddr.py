"""Multiaddrs: the binary vectors were produced by PyPI `multiaddr` 0.2.0, an independent
implementation; the URL rules are those of a storage provider's HTTP retrieval address."""

from __future__ import annotations

import pytest

from executor.multiaddr import (
    MultiaddrError,
    decode,
    from_base64,
    http_url,
    parse_text,
    to_binary,
    to_text,
)

VECTORS = [
    ("/ip4/127.0.0.1/tcp/8080/http", "047f000001061f90e003", "http://127.0.0.1:8080"),
    ("/dns/sp.example/tcp/443/https", "350a73702e6578616d706c650601bbbb03", "https://sp.example"),
    (
        "/dns/sp.example/tcp/443/tls/http",
        "350a73702e6578616d706c650601bbc003e003",
        "https://sp.example",
    ),
    (
        "/ip4/1.2.3.4/tcp/80/http/http-path/piece%2Fx",
        "0401020304060050e003e1030770696563652f78",
        "http://1.2.3.4/piece/x",
    ),
]


@pytest.mark.parametrize(("text", "binary", "url"), VECTORS, ids=[v[0] for v in VECTORS])
def test_binary_and_text_forms_agree_with_an_independent_implementation(
    text: str, binary: str, url: str
) -> None:
    assert to_text(decode(bytes.fromhex(binary))) == text
    assert to_binary(parse_text(text)).hex() == binary
    assert http_url(parse_text(text)) == url


def test_lotus_gives_them_in_base64() -> None:
    assert http_url(from_base64("BH8AAAEGH5DgAw==")) == "http://127.0.0.1:8080"
    with pytest.raises(MultiaddrError, match="not base64"):
        from_base64("not base64!")


@pytest.mark.parametrize(
    ("text", "url"),
    [
        ("/ip6/::1/tcp/8080/http", "http://[::1]:8080"),
        ("/dns4/sp.example/tcp/443/tls/http/p2p/abc", "https://sp.example"),
        ("/ip4/1.2.3.4/tcp/4001", None),  # a libp2p listen address: no scheme to guess
        ("/ip4/1.2.3.4/udp/4001/quic-v1", None),
        ("/ip4/1.2.3.4/tcp/80/ws", None),
        ("/dns/evil.example@attacker/tcp/80/http", None),  # a name that would change the host
    ],
)
def test_only_http_addresses_name_a_url(text: str, url: str | None) -> None:
    assert http_url(parse_text(text)) == url


@pytest.mark.parametrize(
    ("binary", "message"),
    [
        (bytes.fromhex("047f0000"), "/ip4 is truncated"),
        (bytes.fromhex("ff7f"), "unknown protocol code"),
        (bytes.fromhex("80"), "bad varint"),
        (b"", "an empty multiaddr"),
        (bytes(2000), "too long"),
        (bytes.fromhex("3520") + b"a" * 10, "/dns is truncated"),
    ],
)
def test_malformed_bytes_are_refused_by_name(binary: bytes, message: str) -> None:
    with pytest.raises(MultiaddrError, match=message):
        decode(binary)
