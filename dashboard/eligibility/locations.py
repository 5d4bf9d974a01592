"""Where a CID may be fetched from: the storage providers whose active FIL+ claims and deals
hold it (chain_scanner.active's one rule), at the HTTP addresses they publish on chain.

`locate(cid)` is what the bundled executor's worker calls in-process; `GET
/api/v1/locations/{cid}` answers `location_report(cid)`, the same locations with what the
chain says of the CID. Both are `executor.locations.Location`, the one shape. A location is a
hint: the executor verifies whatever it fetches.

A piece CID (`baga6ea4seaq…`) is found by the claims and deals of that piece; any other CID by
the deals whose label names it as their payload, each with its piece. Providers' addresses
come from chain_scanner.providers, read lazily and kept; when Lotus cannot tell, the answer
is what is kept, or no locations.
"""

from __future__ import annotations

from typing import Any

from django.db.models.expressions import RawSQL

from chain_scanner.active import CLAIM_ACTIVE_UNTIL_SQL, DEAL_ACTIVE_UNTIL_SQL
from chain_scanner.models import Claim, Deal, ProviderAddress
from chain_scanner.providers import provider_addresses
from dashboard.addresses import PIECE_PREFIX, id_address
from dashboard.eligibility.selectors import MAX_SOURCES, as_of_epoch, canonical, statuses
from executor.locations import MAX_LOCATIONS, Location
from executor.multiaddr import MultiaddrError, from_base64, http_url

__all__ = ["locate", "location_report", "provider_urls"]

# (provider, piece_cid, piece_size, payload_cid, source): one active claim or deal
Holding = tuple[str, str, int, str | None, str]


def _active_holdings(canon: str, *, piece: bool, epoch: int) -> list[Holding]:
    """The claims (of a piece) and deals holding `canon` that are active at `epoch`, by the
    SQL form of chain_scanner.active's one rule; claims first, each newest first, at most
    MAX_SOURCES of each."""
    found: list[Holding] = []
    if piece:
        claims = (
            Claim.objects.filter(piece_cid=canon)
            .annotate(active_until=RawSQL(CLAIM_ACTIVE_UNTIL_SQL, []))
            .filter(active_until__gt=epoch)
            .order_by("-term_start", "-claim_id")
        )
        for claim in claims[:MAX_SOURCES]:
            source = f"claim {claim.claim_id}"
            found.append(
                (id_address(claim.provider), claim.piece_cid, claim.piece_size, None, source)
            )
    deals = (
        Deal.objects.filter(**{"piece_cid" if piece else "payload_cid": canon})
        .annotate(active_until=RawSQL(DEAL_ACTIVE_UNTIL_SQL, []))
        .filter(active_until__gt=epoch)
        .order_by("-end_epoch", "-deal_id")
    )
    for deal in deals[:MAX_SOURCES]:
        source = f"deal {deal.deal_id}"
        found.append((deal.provider, deal.piece_cid, deal.piece_size, deal.payload_cid, source))
    return found


def provider_urls(row: ProviderAddress | None) -> list[str]:
    """The HTTP(S) base URLs among a provider's kept multiaddrs, in its order, once each;
    libp2p-only and unreadable addresses are skipped."""
    urls: list[str] = []
    for text in row.multiaddrs if row is not None and isinstance(row.multiaddrs, list) else []:
        try:
            url = http_url(from_base64(text)) if isinstance(text, str) else None
        except MultiaddrError:
            continue
        if url is not None and url not in urls:
            urls.append(url)
    return urls


def _locations(holdings: list[Holding]) -> list[Location]:
    """One location per provider URL and piece, in the holdings' order: the first source
    that names it, and the payload CID of any deal of it whose label is a CID."""
    merged: dict[tuple[str, str], list[Any]] = {}
    for provider, piece_cid, piece_size, payload_cid, source in holdings:
        slot = merged.setdefault((provider, piece_cid), [piece_size, payload_cid, source])
        if slot[1] is None:
            slot[1] = payload_cid
    addresses = provider_addresses(provider for provider, _ in merged)
    found: list[Location] = []
    for (provider, piece_cid), (piece_size, payload_cid, source) in merged.items():
        for url in provider_urls(addresses.get(provider)):
            found.append(
                Location(
                    url=url,
                    provider=provider,
                    piece_cid=piece_cid,
                    piece_size=piece_size,
                    payload_cid=payload_cid,
                    source=source,
                )
            )
            if len(found) >= MAX_LOCATIONS:
                return found
    return found


def _kind(canon: str) -> str:
    return "piece" if canon.startswith(PIECE_PREFIX) else "payload"


def locate(cid: str) -> list[Location]:
    """Where `cid` (any form) may be fetched from, at most MAX_LOCATIONS; DomainError
    invalid_cid when it is not a CID. For the bundled executor's worker, in-process."""
    canon = canonical(cid)
    return _locations(_active_holdings(canon, piece=_kind(canon) == "piece", epoch=as_of_epoch()))


def _piece_size(canon: str) -> int | None:
    """A piece's padded size as the chain states it (any claim or deal of it), else None."""
    for model in (Claim, Deal):
        size = model.objects.filter(piece_cid=canon).values_list("piece_size", flat=True).first()
        if size is not None:
            return int(size)
    return None


def location_report(cid: str) -> dict[str, Any]:
    """`GET /locations/{cid}`: the canonical CID, whether it is a piece or a payload, the
    piece's size (a piece's; null for a payload, whose locations each name theirs), whether
    it is blessed now, and its locations."""
    canon = canonical(cid)
    kind = _kind(canon)
    return {
        "cid": canon,
        "kind": kind,
        "piece_size": _piece_size(canon) if kind == "piece" else None,
        "blessed": statuses({canon}, as_of_epoch()).get(canon) == "active",
        "locations": [location.to_json() for location in locate(canon)],
    }
