"""The environment variables an executor process reads: one typed reader per variable.

Each is read when called, not at import, so that a test may set a variable for itself. An empty
value counts as unset. The dashboard reads the same variables into its Django settings and
passes them to the functions that take them as arguments; the CLI, which has no Django, gets
them from here. `docker.from_env()` reads DOCKER_HOST (and Docker's TLS variables) itself:
`docker_host` is for naming the engine in messages.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

__all__ = [
    "DEFAULT_MAX_INPUT_BYTES",
    "DOCKER_PULL",
    "BadSetting",
    "api_key",
    "api_url",
    "data_dir",
    "docker_host",
    "docker_pull",
    "ipfs_api_url",
    "ipfs_find_timeout_s",
    "ipfs_gateways",
    "ipni_url",
    "max_input_bytes",
    "retrieval_timeout_s",
]

# A node's limit on what one job's inputs may write to its disk.
DEFAULT_MAX_INPUT_BYTES = 4 << 30
# How long a node may look for a block before we call it absent: 2 s suits an offline node; an
# online Kubo searching the network needs longer.
DEFAULT_IPFS_FIND_TIMEOUT_S = 2.0
# Delegated routing (IPNI) that names the storage providers serving a CID over HTTP.
DEFAULT_IPNI_URL = "https://cid.contact"
# One request to one provider, whatever it sends: a stalled or dripping peer is given up on.
DEFAULT_RETRIEVAL_TIMEOUT_S = 600.0
# Named in the message that tells how to switch pulls on.
DOCKER_PULL = "EXECUTOR_DOCKER_PULL"


class BadSetting(ValueError):
    """A variable's value cannot be used; the message names the variable and the value."""


def _value(name: str) -> str | None:
    return os.environ.get(name) or None


def api_url() -> str | None:
    """FILPLUS_API_URL: the dashboard the CLI works against; None: it runs locally."""
    return _value("FILPLUS_API_URL")


def api_key() -> str | None:
    """FILPLUS_API_KEY: the CLI's key for that dashboard."""
    return _value("FILPLUS_API_KEY")


def data_dir() -> Path:
    """DATA_DIR (default `data`, relative to the working directory): the embedded store's and
    the compiled modules' parent."""
    return Path(_value("DATA_DIR") or "data")


def ipfs_api_url() -> str | None:
    """IPFS_API_URL: a Kubo-compatible RPC; None: the embedded store."""
    return _value("IPFS_API_URL")


def ipfs_find_timeout_s() -> float:
    """IPFS_FIND_TIMEOUT_S (default 2): seconds the RPC node may look for a block."""
    raw = _value("IPFS_FIND_TIMEOUT_S")
    if raw is None:
        return DEFAULT_IPFS_FIND_TIMEOUT_S
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    # nan, infinite and negative values parse as floats but break the RPC client's timeouts.
    if not 0 <= seconds < math.inf:
        raise BadSetting(f"IPFS_FIND_TIMEOUT_S must be a number of seconds, got {raw!r}")
    return seconds


def docker_host() -> str | None:
    """DOCKER_HOST: the Docker engine; None: Docker's default socket."""
    return _value("DOCKER_HOST")


def docker_pull() -> bool:
    """EXECUTOR_DOCKER_PULL: whether a missing image may be pulled (1, true or yes)."""
    return os.environ.get(DOCKER_PULL, "").strip().lower() in ("1", "true", "yes")


def max_input_bytes() -> int:
    """EXECUTOR_MAX_INPUT_BYTES (default 4 GiB): what one job's inputs may write to disk."""
    raw = _value("EXECUTOR_MAX_INPUT_BYTES") or str(DEFAULT_MAX_INPUT_BYTES)
    try:
        # isdigit() refuses signs and spaces, which int() would take; int() refuses the
        # superscripts and the over-long numbers that isdigit() lets through.
        limit = int(raw) if raw.isdigit() else 0
    except ValueError:
        limit = 0
    if limit < 1:
        raise BadSetting(
            f"EXECUTOR_MAX_INPUT_BYTES must be a positive number of bytes, got {raw!r}"
        )
    return limit


def ipni_url() -> str | None:
    """IPNI_URL (default https://cid.contact): delegated routing (`/routing/v1/providers/`)
    asked for providers of a missing input. Set but empty: no routing."""
    raw = os.environ.get("IPNI_URL")
    if raw is None:
        return DEFAULT_IPNI_URL
    raw = raw.strip().rstrip("/")
    if raw and not raw.startswith(("http://", "https://")):
        raise BadSetting(f"IPNI_URL must be an http(s) URL or empty, got {raw!r}")
    return raw or None


def ipfs_gateways() -> tuple[str, ...]:
    """IPFS_GATEWAYS (default none): comma-separated trustless gateways' base URLs, asked last
    for a missing payload CID (`/ipfs/{cid}?format=car`)."""
    urls = tuple(u.strip().rstrip("/") for u in os.environ.get("IPFS_GATEWAYS", "").split(","))
    urls = tuple(u for u in urls if u)
    for url in urls:
        if not url.startswith(("http://", "https://")):
            raise BadSetting(f"IPFS_GATEWAYS must be http(s) URLs, got {url!r}")
    return urls


def retrieval_timeout_s() -> float:
    """EXECUTOR_RETRIEVAL_TIMEOUT_S (default 600): the most one request to one provider may
    take, start to last byte; the job's own wall time bounds it too."""
    raw = _value("EXECUTOR_RETRIEVAL_TIMEOUT_S")
    if raw is None:
        return DEFAULT_RETRIEVAL_TIMEOUT_S
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not 0 < seconds < math.inf:
        raise BadSetting(
            f"EXECUTOR_RETRIEVAL_TIMEOUT_S must be a positive number of seconds, got {raw!r}"
        )
    return seconds
