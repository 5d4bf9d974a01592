"""Multiaddrs as storage providers publish them, and the HTTP base URL one may name.

A miner's on-chain `Multiaddrs` (`Filecoin.StateMinerInfo`) are binary multiaddrs, base64 in
Lotus' JSON; delegated routing answers them as text. Both are read here, by one table of the
protocols a storage provider's address is made of; anything else is refused by name. Most
on-chain addresses are libp2p listen addresses (`/ip4/…/tcp/…` with no `/http`): those are
not HTTP endpoints, and `http_url` says so with None rather than guessing a scheme.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from urllib.parse import quote, unquote

from executor.unixfs import UnixFSError, decode_varint, encode_varint

__all__ = ["MultiaddrError", "decode", "from_base64", "http_url", "parse_text", "to_text"]

MAX_MULTIADDR_BYTES = 1024  # far above any real address; a hostile miner's bytes are bounded

# code: (name, value size in bytes, 0 for none, -1 for a varint-length prefix)
_PROTOCOLS: dict[int, tuple[str, int]] = {
    4: ("ip4", 4),
    6: ("tcp", 2),
    41: ("ip6", 16),
    53: ("dns", -1),
    54: ("dns4", -1),
    55: ("dns6", -1),
    56: ("dnsaddr", -1),
    273: ("udp", 2),
    421: ("p2p", -1),
    443: ("https", 0),
    448: ("tls", 0),
    449: ("sni", -1),
    460: ("quic", 0),
    461: ("quic-v1", 0),
    477: ("ws", 0),
    478: ("wss", 0),
    480: ("http", 0),
    481: ("http-path", -1),
}
_HOST_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")
_CODES = {name: code for code, (name, _) in _PROTOCOLS.items()}

Part = tuple[str, str | None]  # (protocol name, value as multiaddr text writes it, or None)


class MultiaddrError(ValueError):
    """Bytes or text that are not a multiaddr we can read."""


def _value_text(name: str, raw: bytes) -> str | None:
    if name == "ip4":
        return str(ipaddress.IPv4Address(raw))
    if name == "ip6":
        return str(ipaddress.IPv6Address(raw))
    if name in ("tcp", "udp"):
        return str(int.from_bytes(raw, "big"))
    if name == "p2p":
        return base64.b32encode(raw).decode().lower().rstrip("=")  # only its presence matters
    if name == "http-path":
        return quote(raw.decode("utf-8", "strict"), safe="")
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError:
        raise MultiaddrError(f"/{name} is not ASCII") from None


def decode(binary: bytes) -> list[Part]:
    """The parts of a binary multiaddr; MultiaddrError naming what is wrong."""
    if len(binary) > MAX_MULTIADDR_BYTES:
        raise MultiaddrError(f"a multiaddr of {len(binary)} bytes is too long")
    parts: list[Part] = []
    pos = 0
    try:
        while pos < len(binary):
            code, pos = decode_varint(binary, pos)
            if code not in _PROTOCOLS:
                raise MultiaddrError(f"unknown protocol code {code}")
            name, size = _PROTOCOLS[code]
            if size == -1:
                size, pos = decode_varint(binary, pos)
            if pos + size > len(binary):
                raise MultiaddrError(f"/{name} is truncated")
            raw = binary[pos : pos + size]
            pos += size
            try:
                parts.append((name, _value_text(name, raw) if _PROTOCOLS[code][1] else None))
            except UnicodeDecodeError:
                raise MultiaddrError(f"/{name} is not UTF-8") from None
    except UnixFSError as exc:
        raise MultiaddrError(f"bad varint: {exc}") from None
    if not parts:
        raise MultiaddrError("an empty multiaddr")
    return parts


def from_base64(text: str) -> list[Part]:
    """The parts of one entry of Lotus' `Multiaddrs` (base64 of the binary form)."""
    try:
        binary = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise MultiaddrError("not base64") from None
    return decode(binary)


def parse_text(text: str) -> list[Part]:
    """The parts of a text multiaddr (`/dns/sp.example/tcp/443/https`)."""
    if len(text) > MAX_MULTIADDR_BYTES * 3 or not text.startswith("/"):
        raise MultiaddrError(f"{text[:80]!r} is not a multiaddr")
    words = text[1:].split("/")
    parts: list[Part] = []
    i = 0
    while i < len(words):
        name = words[i]
        if name not in _CODES:
            raise MultiaddrError(f"unknown protocol /{name}")
        if _PROTOCOLS[_CODES[name]][1] == 0:
            parts.append((name, None))
            i += 1
            continue
        if i + 1 >= len(words) or words[i + 1] == "":
            raise MultiaddrError(f"/{name} has no value")
        parts.append((name, words[i + 1]))
        i += 2
    return parts


def to_text(parts: list[Part]) -> str:
    return "".join(f"/{name}" if value is None else f"/{name}/{value}" for name, value in parts)


def to_binary(parts: list[Part]) -> bytes:
    """The binary form of `parts` (for tests and the fake chain)."""
    out = bytearray()
    for name, value in parts:
        code = _CODES[name]
        size = _PROTOCOLS[code][1]
        out += encode_varint(code)
        if size == 0:
            continue
        if value is None:
            raise MultiaddrError(f"/{name} needs a value")
        if name == "ip4":
            raw = ipaddress.IPv4Address(value).packed
        elif name == "ip6":
            raw = ipaddress.IPv6Address(value).packed
        elif name in ("tcp", "udp"):
            raw = int(value).to_bytes(2, "big")
        elif name == "http-path":
            raw = unquote(value).encode()
        else:
            raw = value.encode()
        if size == -1:
            out += encode_varint(len(raw))
        out += raw
    return bytes(out)


def http_url(parts: list[Part]) -> str | None:
    """The base URL an HTTP multiaddr names, or None when it names no HTTP endpoint.

    Host (`ip4`, `ip6`, `dns`, `dns4`, `dns6`), then `tcp` port, then `/http`, `/https` or
    `/tls/http`, then optionally `/http-path`, and a trailing `/p2p` is allowed; anything else
    (QUIC, websockets, a bare libp2p address) is not a URL we may fetch from.
    """
    rest = [p for p in parts if p[0] != "p2p"] if parts and parts[-1][0] == "p2p" else parts
    if len(rest) < 3:
        return None
    (host_kind, host), (port_kind, port), *tail = rest
    if host_kind not in ("ip4", "ip6", "dns", "dns4", "dns6") or port_kind != "tcp":
        return None
    path = ""
    if tail and tail[-1][0] == "http-path":
        path = "/" + unquote(tail[-1][1] or "").lstrip("/")
        tail = tail[:-1]
    names = [name for name, _ in tail]
    if names == ["http"]:
        scheme = "http"
    elif names in (["https"], ["tls", "http"]):
        scheme = "https"
    else:
        return None
    if host is None or port is None:
        return None
    if host_kind.startswith("dns") and not _HOST_NAME.fullmatch(host):
        return None  # a hostile miner's "name" may carry '@', '/' or '?' into the URL
    shown = f"[{host}]" if host_kind == "ip6" else host
    default = {"http": "80", "https": "443"}[scheme]
    netloc = shown if port == default else f"{shown}:{port}"
    return f"{scheme}://{netloc}{path.rstrip('/')}"
