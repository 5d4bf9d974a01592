"""Is a CID FIL+ blessed? Read from the scanner's blessed-CID cache.

Every answer costs a constant number of queries, whatever the number of CIDs: one for the
epoch the answer is valid at, one for all the CIDs together.
"""

from __future__ import annotations

import time
from typing import Any

from django.db import connection

from chain_scanner.models import BlessedCid, Claim, Deal, ScannerCheckpoint
from dashboard.errors import DomainError
from executor.cids import InvalidCID, normalize_cid

MAX_BATCH = 1000
MAX_SOURCES = 100
MAINNET_GENESIS = 1598306400  # unix time of epoch 0; 30 s an epoch


_epoch_cache: tuple[float, int] | None = None
EPOCH_CACHE_S = 1.0  # the scanner moves every 30 s: a second of staleness is harmless


def as_of_epoch() -> int:
    """The epoch answers are valid at: the scanner's last processing height, or, before its
    first pass (a dump only), the epoch the wall clock says. Kept for a second per process,
    which saves a query on every request of a busy API."""
    global _epoch_cache
    now = time.monotonic()
    if _epoch_cache is not None and now - _epoch_cache[0] < EPOCH_CACHE_S:
        return _epoch_cache[1]
    height = (
        ScannerCheckpoint.objects.filter(name="default")
        .values_list("processing_height", flat=True)
        .first()
    )
    if height is None:
        height = int((time.time() - MAINNET_GENESIS) // 30)
    _epoch_cache = (now, height)
    return height


def forget_epoch() -> None:
    global _epoch_cache
    _epoch_cache = None


def canonical(cid: Any, *, field: str = "cid", index: int | None = None) -> str:
    """The one CID normaliser, with the API's error for a bad value."""
    try:
        if not isinstance(cid, str):
            raise InvalidCID("not a string")
        return normalize_cid(cid)
    except InvalidCID:
        where = f" at index {index}" if index is not None else ""
        fields: dict[str, Any] = {field: cid if isinstance(cid, str) else repr(cid)}
        if index is not None:
            fields["index"] = index
        raise DomainError(
            "invalid_cid", f"{str(cid)[:100]!r}{where} is not a valid CID", fields=fields
        ) from None


_TABLE = BlessedCid._meta.db_table
# Raw SQL on the hot paths: the ORM's query compiler costs more than these queries.
_ONE = f"SELECT active_until, pending_until, deal_count, claim_count FROM {_TABLE} WHERE cid = %s"


def statuses(canonical_cids: set[str], epoch: int) -> dict[str, str]:
    """status per canonical CID (active, pending, expired; absent ones are unknown)."""
    cids = list(canonical_cids)
    if connection.vendor == "postgresql":
        # One array parameter: psycopg spends milliseconds expanding 1000 placeholders.
        sql = f"SELECT cid, active_until, pending_until FROM {_TABLE} WHERE cid = ANY(%s)"
        params: list[object] = [cids]
    else:
        marks = ", ".join(["%s"] * len(cids))
        sql = f"SELECT cid, active_until, pending_until FROM {_TABLE} WHERE cid IN ({marks})"
        params = cids
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return {
        cid: BlessedCid(cid=cid, active_until=active, pending_until=pending).status_at(epoch)
        for cid, active, pending in rows
    }


def cid_batch(data: Any) -> list[str]:
    """The `cids` list of an eligibility request body, or the API error that names it."""
    if not isinstance(data, dict) or "cids" not in data:
        raise DomainError(
            "invalid_request",
            "the body must be an object with a 'cids' list",
            fields={"cids": "required"},
        )
    cids = data["cids"]
    if not isinstance(cids, list):
        raise DomainError(
            "invalid_request", "'cids' must be a list of CIDs", fields={"cids": "must be a list"}
        )
    if not cids:
        raise DomainError(
            "invalid_request", "'cids' must hold at least one CID", fields={"cids": "empty"}
        )
    if len(cids) > MAX_BATCH:
        raise DomainError(
            "too_many_cids",
            f"at most {MAX_BATCH} CIDs a request, got {len(cids)}",
            status=413,
            fields={"cids": len(cids)},
        )
    return cids


def eligibility(cids: list[str]) -> dict[str, Any]:
    """`POST /eligibility`: per CID in request order, and `eligible` when all are blessed."""
    normalised = [canonical(c, field="cids", index=i) for i, c in enumerate(cids)]
    epoch = as_of_epoch()
    found = statuses(set(normalised), epoch)
    results = []
    for sent, canon in zip(cids, normalised, strict=True):
        status = found.get(canon, "unknown")
        results.append(
            {"cid": sent, "canonical": canon, "blessed": status == "active", "status": status}
        )
    return {
        "eligible": all(r["blessed"] for r in results),
        "as_of_epoch": epoch,
        "results": results,
    }


_DEAL_COLUMNS = [
    "deal_id",
    "provider",
    "client",
    "piece_cid",
    "payload_cid",
    "start_epoch",
    "end_epoch",
    "sector_start_epoch",
    "slash_epoch",
    "removed_epoch",
]
_DEALS = (
    f"SELECT {', '.join(_DEAL_COLUMNS)} FROM {Deal._meta.db_table} "
    "WHERE payload_cid = %s OR piece_cid = %s ORDER BY end_epoch DESC LIMIT %s"
)
_CLAIM_COLUMNS = [
    "claim_id",
    "provider",
    "client",
    "piece_cid",
    "term_start",
    "term_max",
    "removed",
]
_CLAIMS = (
    f"SELECT {', '.join(_CLAIM_COLUMNS)} FROM {Claim._meta.db_table} "
    "WHERE piece_cid = %s ORDER BY term_start DESC LIMIT %s"
)


def _rows(sql: str, params: list[object]) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def cid_report(cid: str) -> dict[str, Any]:
    """`GET /cids/{cid}`: the status and the deals and claims behind it."""
    canon = canonical(cid)
    epoch = as_of_epoch()
    # Plain cursors on this path: the ORM's query compiler costs more than these queries.
    found = _rows(_ONE, [canon])
    status = "unknown"
    sources: list[dict[str, Any]] = []
    if found:
        active_until, pending_until, deal_count, claim_count = found[0]
        status = BlessedCid(active_until=active_until, pending_until=pending_until).status_at(epoch)
        # The cache counts each CID's deals and claims: skip the look-ups that would find none.
        if deal_count:
            for row in _rows(_DEALS, [canon, canon, MAX_SOURCES]):
                deal = Deal.from_db(connection.alias, _DEAL_COLUMNS, row)
                sources.append(
                    {
                        "kind": "deal",
                        "id": deal.deal_id,
                        "provider": deal.provider,
                        "client": deal.client,
                        "piece_cid": deal.piece_cid,
                        "payload_cid": deal.payload_cid,
                        "start_epoch": deal.start_epoch,
                        "end_epoch": deal.end_epoch,
                        "status": deal.status_at(epoch),
                    }
                )
        if claim_count:
            for row in _rows(_CLAIMS, [canon, MAX_SOURCES]):
                claim = Claim.from_db(connection.alias, _CLAIM_COLUMNS, row)
                sources.append(
                    {
                        "kind": "claim",
                        "id": claim.claim_id,
                        "provider": f"f0{claim.provider}",
                        "client": f"f0{claim.client}",
                        "piece_cid": claim.piece_cid,
                        "payload_cid": None,
                        "start_epoch": claim.term_start,
                        "end_epoch": claim.end_epoch,
                        "status": claim.status_at(epoch),
                    }
                )
    return {
        "cid": canon,
        "blessed": status == "active",
        "status": status,
        "sources": sources,
        "as_of_epoch": epoch,
    }
