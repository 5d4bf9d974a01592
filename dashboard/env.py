"""Typed readers for environment variables: a bad value stops start-up naming the variable.

Every reader takes the raw value from `_raw`, so every variable NAME may instead be given as
NAME_FILE, the path of a file holding the value (for secrets kept in files, as Docker and
systemd credentials are).
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from typing import overload

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_HTTP_URL = re.compile(r"https?://[^\s/?#]+(/[^\s?#]*)?")
_RATE_PERIODS = ("s", "sec", "m", "min", "h", "hour", "d", "day")


def _raw(name: str) -> str | None:
    """NAME's raw value: the text of the file NAME_FILE names, without its trailing newline,
    when NAME_FILE is not empty; else NAME as the environment gives it (None when unset).
    A non-empty NAME beside a non-empty NAME_FILE is refused."""
    path = os.environ.get(f"{name}_FILE")
    if not path:
        return os.environ.get(name)
    if os.environ.get(name):
        raise ImproperlyConfigured(f"{name} and {name}_FILE are both set: set one of them")
    unreadable = f"{name}_FILE: cannot read {name} from {path!r}"
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ImproperlyConfigured(f"{unreadable}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ImproperlyConfigured(f"{unreadable}: not UTF-8 text") from None
    return text.rstrip("\r\n")


@overload
def env_str(name: str, default: str) -> str: ...
@overload
def env_str(name: str, default: None = None) -> str | None: ...
def env_str(name: str, default: str | None = None) -> str | None:
    value = _raw(name)
    if value is None:
        return default
    value = value.strip()
    return value or default


def env_bool(name: str, default: bool) -> bool:
    raw = _raw(name)
    if raw is None:
        return default
    lowered = raw.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false/1/0), got {raw!r}")


def env_int(
    name: str, default: int, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    raw = _raw(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None
    if minimum is not None and maximum is not None:
        if not minimum <= value <= maximum:
            raise ImproperlyConfigured(f"{name} must be {minimum} to {maximum}, got {value}")
    elif minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be >= {minimum}, got {value}")
    elif maximum is not None and value > maximum:
        raise ImproperlyConfigured(f"{name} must be <= {maximum}, got {value}")
    return value


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    """One of `choices`, e.g. a policy's name."""
    value = env_str(name, default)
    if value not in choices:
        expected = ", ".join(choices[:-1]) + " or " + choices[-1]
        raise ImproperlyConfigured(f"{name} must be {expected}, got {value!r}")
    return value


@overload
def env_match(name: str, default: str, *, pattern: re.Pattern[str], expected: str) -> str: ...
@overload
def env_match(
    name: str, default: None = None, *, pattern: re.Pattern[str], expected: str
) -> str | None: ...
def env_match(
    name: str, default: str | None = None, *, pattern: re.Pattern[str], expected: str
) -> str | None:
    """A value the whole of which `pattern` matches; `expected` says what that is in words."""
    value = env_str(name, default)
    if value is not None and not pattern.fullmatch(value):
        raise ImproperlyConfigured(f"{name} must be {expected}, got {value!r}")
    return value


def _masked(url: str) -> str:
    """`url` with the password of its user part (user:password@host) masked: a start-up
    error is logged where more people read it than the secret store."""
    at = url.rfind("@")
    if at < 0:
        return url
    start = url.find("://") + 3 if "://" in url[:at] else 0
    user, colon, _ = url[start:at].partition(":")
    return f"{url[:start]}{user}:***{url[at:]}" if colon else url


@overload
def env_url(name: str, default: str, *, schemes: tuple[str, ...]) -> str: ...
@overload
def env_url(name: str, default: None = None, *, schemes: tuple[str, ...]) -> str | None: ...
def env_url(name: str, default: str | None = None, *, schemes: tuple[str, ...]) -> str | None:
    value = env_str(name, default)
    if value is None:
        return None
    scheme = value.split("://", 1)[0].lower() if "://" in value else ""
    if scheme not in schemes:
        raise ImproperlyConfigured(
            f"{name} must be a URL starting with one of {', '.join(s + '://' for s in schemes)}"
            f", got {_masked(value)!r}"
        )
    return value


def env_url_or_off(name: str, default: str, *, schemes: tuple[str, ...]) -> str | None:
    """A URL with a default, where NAME set but empty turns the feature off (None)."""
    raw = _raw(name)
    if raw is not None and not raw.strip():
        return None
    return env_url(name, default, schemes=schemes)


def env_list(name: str) -> list[str]:
    """Comma-separated items, each stripped; empty items are dropped (unset: none)."""
    return [item.strip() for item in (env_str(name) or "").split(",") if item.strip()]


def env_choices(name: str, default: str, choices: tuple[str, ...]) -> list[str]:
    """A comma-separated list of `choices`, none twice, at least one."""
    values = env_list(name) or [item.strip() for item in default.split(",")]
    wrong = [value for value in values if value not in choices]
    if wrong or len(set(values)) != len(values):
        raise ImproperlyConfigured(
            f"{name} must be one or more of {', '.join(choices)}, each once; got {values!r}"
        )
    return values


def env_http_urls(name: str) -> list[str]:
    """Comma-separated http(s) base URLs of at most 500 characters, without a trailing /."""
    urls = [item.rstrip("/") for item in env_list(name)]
    for url in urls:
        if len(url) > 500 or not _HTTP_URL.fullmatch(url):
            raise ImproperlyConfigured(f"{name}: {_masked(url)!r} is not an http(s) URL")
    return urls


def env_networks(name: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """Comma-separated IP addresses or CIDR networks (`10.0.0.0/8`, `::1`); unset: none."""
    networks = []
    for item in env_list(name):
        try:
            networks.append(ipaddress.ip_network(item))
        except ValueError as exc:
            raise ImproperlyConfigured(
                f"{name}: {item!r} is not an IP address or a CIDR network ({exc})"
            ) from None
    return tuple(networks)


def env_rate(name: str, default: str) -> str | None:
    """A rate limit as DRF takes it, e.g. 1200/min; None for 0 (no limit)."""
    value = env_str(name, default) or "0"
    if value == "0":
        return None
    number, _, period = value.partition("/")
    if not number.isdigit() or int(number) < 1 or period not in _RATE_PERIODS:
        raise ImproperlyConfigured(
            f"{name} must look like 1200/min (or 0 for no limit), got {value!r}"
        )
    return value
