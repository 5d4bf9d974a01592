"""Is a CID FIL+ blessed? Read from the scanner's blessed-CID cache.

Every answer costs a constant number of queries, whatever the number of CIDs: one for the
epoch the answer is valid at, one for all the CIDs together.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from django.db import connection

from chain_scanner.active import claim_window, deal_window, status_at
from chain_scanner.models import BlessedCid, Claim, Deal, ScannerCheckpoint
from chain_scanner.status import Freshness, freshness
from dashboard.addresses import id_address
from dashboard.errors import DomainError
from dashboard.sql import prepared_cursor
from executor.cids import InvalidCID, normalize_cid

MAX_BATCH = 1000
MAX_SOURCES = 100
MAINNET_GENESIS = 1598306400  # unix time of epoch 0 (2020-08-24 22:00:00 UTC); 30 s an epoch
EPOCH_SECONDS = 30


def epoch_time(epoch: int) -> datetime:
    """When a Filecoin mainnet epoch began, in UTC: the one conversion the pages use."""
    return datetime.fromtimestamp(MAINNET_GENESIS + EPOCH_SECONDS * epoch, tz=UTC)


_epoch_cache: tuple[float, int, Freshness] | None = None
EPOCH_CACHE_S = 1.0  # the scanner moves every 30 s: a second of staleness is harmless


def _scanner_view() -> tuple[int, Freshness]:
    """The epoch answers are valid at (the scanner's last processing height, or, before its
    first pass, the epoch the wall clock says) and whether the scanner's view is complete.
    Kept for a second per process, which saves a query on every request of a busy API."""
    global _epoch_cache
    now = time.monotonic()
    if _epoch_cache is not None and now - _epoch_cache[0] < EPOCH_CACHE_S:
        return _epoch_cache[1], _epoch_cache[2]
    row = (
        ScannerCheckpoint.objects.filter(name="default")
        .values_list("processing_height", "head_height", "last_pass_finished_at")
        .first()
    )
    checkpoint = None
    if row is not None:
        checkpoint = ScannerCheckpoint(
            processing_height=row[0], head_height=row[1], last_pass_finished_at=row[2]
        )
    height = row[0] if row is not None and row[0] is not None else None
    if height is None:
        height = int((time.time() - MAINNET_GENESIS) // EPOCH_SECONDS)
    view = freshness(checkpoint)
    _epoch_cache = (now, height, view)
    return height, view


def as_of_epoch() -> int:
    return _scanner_view()[0]


def scanner_freshness() -> dict[str, Any]:
    """`scanner` of every blessed-status answer: until it is complete, "not blessed" means
    "not known to be blessed"."""
    return _scanner_view()[1].as_json()


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


def statuses(canonical_cids: set[str], epoch: int) -> dict[str, str]:
    """status per canonical CID (active, pending, expired; absent ones are unknown)."""
    cids = list(canonical_cids)
    if connection.vendor == "postgresql":
        # One text parameter split on the server: canonical CIDs are base32, never hold a
        # comma, and psycopg is slow quoting the items of a 1000-CID array parameter (and
        # slower expanding 1000 placeholders).
        sql = (
            f"SELECT cid, active_until, pending_until FROM {_TABLE} "
            "WHERE cid = ANY(string_to_array(%s, ','))"
        )
        params: list[str] = [",".join(cids)]
    else:
        marks = ", ".join(["%s"] * len(cids))
        sql = f"SELECT cid, active_until, pending_until FROM {_TABLE} WHERE cid IN ({marks})"
        params = list(cids)
    with prepared_cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    # The rule applied to plain rows: building a BlessedCid per row cost a large share of a
    # 1000-CID batch (benchmarks/README.md, bench_api).
    return {cid: status_at(active, pending, epoch) for cid, active, pending in rows}


def check_batch_size(count: int, *, field: str = "cids") -> None:
    """413 too_many_cids for a request that names more than MAX_BATCH CIDs, before any is
    read: an eligibility request's `cids`, a Bacalhau probe's job."""
    if count > MAX_BATCH:
        raise DomainError(
            "too_many_cids",
            f"at most {MAX_BATCH} CIDs a request, got {count}",
            status=413,
            fields={field: count},
        )


def cid_batch(cids: Any) -> list[tuple[str, str]]:
    """An eligibility request's `cids` as (sent, canonical) pairs in request order, or the
    API error that names what is wrong (invalid_cid naming the index; 413 too_many_cids)."""
    if not isinstance(cids, list):
        raise DomainError(
            "invalid_request", "'cids' must be a list of CIDs", fields={"cids": "must be a list"}
        )
    if not cids:
        raise DomainError(
            "invalid_request", "'cids' must hold at least one CID", fields={"cids": "empty"}
        )
    check_batch_size(len(cids))
    return [(sent, canonical(sent, field="cids", index=i)) for i, sent in enumerate(cids)]


def eligibility(*, cids: list[tuple[str, str]]) -> dict[str, Any]:
    """`POST /eligibility`: per (sent, canonical) CID in request order, and `eligible` when
    all are blessed."""
    epoch = as_of_epoch()
    found = statuses({canon for _, canon in cids}, epoch)
    results = []
    for sent, canon in cids:
        status = found.get(canon, "unknown")
        results.append(
            {"cid": sent, "canonical": canon, "blessed": status == "active", "status": status}
        )
    return {
        "eligible": all(r["blessed"] for r in results),
        "as_of_epoch": epoch,
        "scanner": scanner_freshness(),
        "results": results,
    }


# `GET /cids/{cid}` in one round trip: the cache row (kind 0), then the deals (1) and
# claims (2) behind the CID, newest first, at most MAX_SOURCES of each; one row layout:
# kind, id, start, end, a, b, c, provider, client, piece_cid, payload_cid, rank.
_INT, _TEXT = "CAST(NULL AS BIGINT)", "CAST(NULL AS VARCHAR(128))"  # typed for PostgreSQL
_REPORT = f"""
SELECT 0, {_INT}, {_INT}, {_INT}, active_until, pending_until, {_INT},
       {_TEXT}, {_TEXT}, {_TEXT}, {_TEXT}, 0
  FROM {_TABLE} WHERE cid = %s
UNION ALL SELECT * FROM (
  SELECT 1, deal_id, start_epoch, end_epoch, sector_start_epoch, slash_epoch, removed_epoch,
         provider, client, piece_cid, payload_cid, end_epoch
    FROM {Deal._meta.db_table} WHERE payload_cid = %s OR piece_cid = %s
   ORDER BY end_epoch DESC LIMIT {MAX_SOURCES}) AS deals
UNION ALL SELECT * FROM (
  SELECT 2, claim_id, term_start, term_start + term_max, CASE WHEN removed THEN 1 ELSE 0 END,
         {_INT}, {_INT}, CAST(provider AS VARCHAR(128)), CAST(client AS VARCHAR(128)),
         piece_cid, {_TEXT}, term_start
    FROM {Claim._meta.db_table} WHERE piece_cid = %s
   ORDER BY term_start DESC LIMIT {MAX_SOURCES}) AS claims
ORDER BY 1, 12 DESC
"""


def cid_report(cid: str) -> dict[str, Any]:
    """`GET /cids/{cid}`: the status and the deals and claims behind it."""
    canon = canonical(cid)
    epoch = as_of_epoch()
    # A plain cursor: the ORM's query compiler costs more than this query (bench_api).
    with prepared_cursor() as cursor:
        cursor.execute(_REPORT, [canon] * 4)
        rows = cursor.fetchall()
    status = "unknown"
    sources: list[dict[str, Any]] = []
    for kind, id_, start, end, a, b, c, provider, client, piece_cid, payload_cid, _ in rows:
        if kind == 0:
            status = status_at(a, b, epoch)
            continue
        if kind == 1:
            window = deal_window(
                start_epoch=start,
                end_epoch=end,
                sector_start_epoch=a,
                slash_epoch=b,
                removed_epoch=c,
            )
            slash_epoch = b if b != -1 else None
        else:
            window = claim_window(term_start=start, term_max=end - start, removed=bool(a))
            provider, client = id_address(provider), id_address(client)
            slash_epoch = None
        source_status = status_at(*window, epoch)
        sources.append(
            {
                "kind": "deal" if kind == 1 else "claim",
                "id": id_,
                "provider": provider,
                "client": client,
                "piece_cid": piece_cid,
                "payload_cid": payload_cid,
                "start_epoch": start,
                "end_epoch": end,
                "status": source_status,
                "slash_epoch": slash_epoch,
            }
        )
    return {
        "cid": canon,
        "blessed": status == "active",
        "status": status,
        "sources": sources,
        "as_of_epoch": epoch,
        "scanner": scanner_freshness(),
    }


def blessed_by(sources: Any) -> list[str]:
    """The active claims and deals among the sources an input's FIL+ status was read from
    (what jobs.services.mark_inputs_blessed recorded): "claim 7", "deal 12"."""
    return [
        f"{source['kind']} {source['id']}"
        for source in sources or []
        if isinstance(source, dict) and source.get("status") == "active"
    ]
