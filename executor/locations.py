"""Where a CID may be fetched from: the one shape the dashboard answers (`GET
/api/v1/locations/{cid}`), the dashboard's worker passes its bundled executor, and the
executor's retrieval reads. A location is a hint, never trusted: whatever it serves is
verified (a piece by its CommP, a DAG block by block) before it is used.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["Location", "LocationError", "locations_from_json"]

MAX_LOCATIONS = 64  # what one answer may name; a hostile dashboard or router is bounded


class LocationError(ValueError):
    """An answer that is not a list of locations."""


@dataclass(frozen=True)
class Location:
    url: str  # an HTTP(S) base URL: `{url}/piece/{piece_cid}`, `{url}/ipfs/{cid}?format=car`
    provider: str | None = None  # `f0…` when the chain names it, else None
    piece_cid: str | None = None  # the piece that holds the CID there, when known
    piece_size: int | None = None  # its padded size, when known (the chain knows it)
    payload_cid: str | None = None  # the deal label's root, a hint to cross-check a CAR with
    source: str = ""  # why we think it is there: "claim 7", "deal 123", "routing", "gateway"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _optional(item: dict[str, Any], name: str, kind: type) -> Any:
    value = item.get(name)
    if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
        raise LocationError(f"locations: {name} is not a {kind.__name__}")
    return value


def locations_from_json(answer: Any) -> list[Location]:
    """The locations of an API answer's `locations` member; LocationError when malformed."""
    if not isinstance(answer, list):
        raise LocationError("locations is not a list")
    found = []
    for item in answer[:MAX_LOCATIONS]:
        if not isinstance(item, dict):
            raise LocationError("a location is not an object")
        url = item.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise LocationError("a location's url is not an HTTP(S) URL")
        found.append(
            Location(
                url=url.rstrip("/"),
                provider=_optional(item, "provider", str),
                piece_cid=_optional(item, "piece_cid", str),
                piece_size=_optional(item, "piece_size", int),
                payload_cid=_optional(item, "payload_cid", str),
                source=_optional(item, "source", str) or "",
            )
        )
    return found
