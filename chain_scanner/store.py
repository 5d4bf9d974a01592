"""Writes to the scanner's tables: deal upserts (bulk, PostgreSQL and SQLite), deal events,
claim event folding, and the blessed-CID cache derived from deals and claims.

Every function here is idempotent: writing the same input twice leaves the same tables.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import psycopg
from django.db import IntegrityError, connection, transaction

from chain_scanner.active import (
    CLAIM_ACTIVE_UNTIL_SQL,
    DEAL_ACTIVE_UNTIL_SQL,
    DEAL_PENDING_UNTIL_SQL,
)
from chain_scanner.decode import ClaimEventRow, DealEventRow, DealRow
from chain_scanner.models import BlessedCid, Claim, ClaimEvent, Deal, DealEvent

DEAL_TABLE = Deal._meta.db_table
CLAIM_TABLE = Claim._meta.db_table
BLESSED_TABLE = BlessedCid._meta.db_table

_DEAL_COLUMNS = (
    "deal_id",
    "piece_cid",
    "piece_size",
    "client",
    "provider",
    "label",
    "payload_cid",
    "start_epoch",
    "end_epoch",
    "sector_start_epoch",
    "last_updated_epoch",
    "slash_epoch",
    "sector_number",
    "verified_claim",
    "removed_epoch",
    "checked_epoch",
)
_DEAL_UPDATE = ", ".join(f"{c} = excluded.{c}" for c in _DEAL_COLUMNS[1:])
# Older data (a dump, checked_epoch 0) never overwrites what a later pass read from chain.
_DEAL_UPSERT_TAIL = (
    f"ON CONFLICT (deal_id) DO UPDATE SET {_DEAL_UPDATE} "
    f"WHERE {DEAL_TABLE}.checked_epoch <= excluded.checked_epoch"
)


def _deal_tuple(row: DealRow, checked_epoch: int) -> tuple:
    return (
        row.deal_id,
        row.piece_cid,
        row.piece_size,
        row.client,
        row.provider,
        row.label,
        row.payload_cid,
        row.start_epoch,
        row.end_epoch,
        row.sector_start_epoch,
        row.last_updated_epoch,
        row.slash_epoch,
        row.sector_number,
        row.verified_claim,
        None,
        checked_epoch,
    )


def upsert_deals(rows: Sequence[DealRow], *, checked_epoch: int, fresh: bool = False) -> None:
    """Insert or refresh verified deals. `fresh`: the caller believes none of these deals
    is stored yet (a bulk load into an empty table), so plain COPY is tried first."""
    if not rows:
        return
    # One statement may not upsert the same row twice: a repeated deal id keeps its last row.
    rows = list({r.deal_id: r for r in rows}.values())
    if connection.vendor == "postgresql":
        # The staging table empties on commit: COPY and upsert must share a transaction.
        if fresh and _copy_new_deals(rows, checked_epoch):
            return
        with transaction.atomic():
            _upsert_deals_postgres(rows, checked_epoch)
    else:
        columns = ", ".join(_DEAL_COLUMNS)
        marks = ", ".join("%s" for _ in _DEAL_COLUMNS)
        sql = f"INSERT INTO {DEAL_TABLE} ({columns}) VALUES ({marks}) {_DEAL_UPSERT_TAIL}"
        with connection.cursor() as cursor:
            cursor.executemany(sql, [_deal_tuple(r, checked_epoch) for r in rows])


def _copy_new_deals(rows: Sequence[DealRow], checked_epoch: int) -> bool:
    """COPY straight into the deal table; False (and nothing written) when a deal id is
    already there, e.g. a dump that repeats an id across batches."""
    columns = ", ".join(_DEAL_COLUMNS)
    try:
        with (
            transaction.atomic(),
            connection.cursor() as cursor,
            cursor.cursor.copy(f"COPY {DEAL_TABLE} ({columns}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(_deal_tuple(row, checked_epoch))
    except (IntegrityError, psycopg.IntegrityError):  # COPY runs on psycopg's own cursor
        return False
    return True


def _upsert_deals_postgres(rows: Sequence[DealRow], checked_epoch: int) -> None:
    # COPY into a temporary table, then one set-based upsert: one round trip and one
    # statement a batch, where executemany would send a statement a row.
    columns = ", ".join(_DEAL_COLUMNS)
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS deal_stage "
            f"(LIKE {DEAL_TABLE} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        cursor.execute("TRUNCATE deal_stage")
        raw = cursor.cursor  # the psycopg cursor under Django's wrapper
        with raw.copy(f"COPY deal_stage ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(_deal_tuple(row, checked_epoch))
        cursor.execute(
            f"INSERT INTO {DEAL_TABLE} ({columns}) SELECT {columns} FROM deal_stage "
            f"{_DEAL_UPSERT_TAIL}"
        )


def apply_deal_events(
    events: Sequence[DealEventRow],
    rows: Sequence[DealRow],
    missing: Sequence[int],
    *,
    skip: set[int],
    checked_epoch: int,
) -> set[str]:
    """Record market events (and forget reverted ones), then write what state says of the
    deals they name: `rows` as read at `checked_epoch`, `missing` ended (end_missing_deals).
    Events of deals in `skip` (read as unverified) are not kept. Returns the CIDs whose
    blessed status may have changed. Call inside a transaction."""
    _record_events(
        DealEvent,
        [e for e in events if e.deal_id not in skip],
        lambda e: {"deal_id": e.deal_id},
    )
    touched = deal_cids([r.deal_id for r in rows] + list(missing))
    upsert_deals(rows, checked_epoch=checked_epoch)
    end_missing_deals(missing, epoch=checked_epoch)
    return touched | {c for r in rows for c in (r.piece_cid, r.payload_cid) if c}


def end_missing_deals(deal_ids: Iterable[int], *, epoch: int) -> None:
    """Deals no longer in market state at `epoch`: how each ended comes from its last
    stored event. Terminated at H: slashed at H (the market actor takes an early-terminated
    deal out of state at once). Completed at H: gone at H. No such event (a pending deal
    that timed out, or history before market events): gone at `epoch`."""
    ids = sorted(set(deal_ids))
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        endings: dict[int, tuple[str, int]] = {}
        for deal_id, kind, height in (
            DealEvent.objects.filter(
                deal_id__in=chunk,
                kind__in=[DealEvent.Kind.TERMINATED, DealEvent.Kind.COMPLETED],
            )
            .order_by("height", "pk")
            .values_list("deal_id", "kind", "height")
        ):
            endings[deal_id] = (kind, height)  # the last one wins
        unexplained = [i for i in chunk if i not in endings]
        if unexplained:
            Deal.objects.filter(deal_id__in=unexplained, removed_epoch__isnull=True).update(
                removed_epoch=epoch
            )
            Deal.objects.filter(deal_id__in=unexplained).update(checked_epoch=epoch)
        for deal_id, (kind, height) in endings.items():
            slash = height if kind == DealEvent.Kind.TERMINATED else -1
            Deal.objects.filter(deal_id=deal_id).update(
                slash_epoch=slash, removed_epoch=height, checked_epoch=epoch
            )


def deal_cids(deal_ids: Iterable[int]) -> set[str]:
    """Piece and payload CIDs of the given deals (as stored now)."""
    cids: set[str] = set()
    ids = list(deal_ids)
    for start in range(0, len(ids), 500):
        for piece, payload in Deal.objects.filter(deal_id__in=ids[start : start + 500]).values_list(
            "piece_cid", "payload_cid"
        ):
            cids.add(piece)
            if payload:
                cids.add(payload)
    return cids


# --- claims -------------------------------------------------------------------------------

_KIND_RANK = {"claim": 0, "claim-updated": 1, "claim-removed": 2}
_EVENT_FIELDS = (
    "provider",
    "client",
    "piece_cid",
    "piece_size",
    "term_min",
    "term_max",
    "term_start",
    "sector",
)


def tipset_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:16]


_Event = TypeVar("_Event", ClaimEvent, DealEvent)


def _record_events(
    model: type[_Event],
    rows: Sequence[ClaimEventRow] | Sequence[DealEventRow],
    fields: Callable[[Any], dict[str, Any]],
) -> None:
    """Store events as seen on chain, and delete the ones now reported reverted. An event
    is known by its height, message, kind and the claim or deal it names (`fields`)."""
    model.objects.bulk_create(
        [
            model(
                kind=r.kind,
                height=r.height,
                msg_cid=r.msg_cid,
                tipset_hash=tipset_hash(r.tipset_key),
                **fields(r),
            )
            for r in rows
            if not r.reverted
        ],
        ignore_conflicts=True,
        batch_size=500,
    )
    for r in rows:
        if r.reverted:
            named = {k: v for k, v in fields(r).items() if k in ("claim_id", "deal_id")}
            model.objects.filter(height=r.height, msg_cid=r.msg_cid, kind=r.kind, **named).delete()


def apply_claim_events(rows: Sequence[ClaimEventRow]) -> set[str]:
    """Record claim events (and undo reverted ones), then re-fold the claims they touch.

    Returns the piece CIDs whose blessed status may have changed. Call inside a transaction.
    """
    if not rows:
        return set()
    _record_events(
        ClaimEvent,
        rows,
        lambda r: {"claim_id": r.claim_id, **{f: getattr(r, f) for f in _EVENT_FIELDS}},
    )
    touched = {r.piece_cid for r in rows}
    touched |= refold_claims({r.claim_id for r in rows})
    return touched


def rewind_events(above_height: int) -> set[str]:
    """Forget every claim and deal event above a height (a reorg reached below our
    checkpoint). Claims are re-folded from what is left; the deals those events named are
    marked for a re-read from state (checked_epoch 0). Returns the CIDs touched."""
    doomed = ClaimEvent.objects.filter(height__gt=above_height)
    claim_ids = set(doomed.values_list("claim_id", flat=True))
    touched = set(doomed.values_list("piece_cid", flat=True))
    doomed.delete()
    deal_events = DealEvent.objects.filter(height__gt=above_height)
    deal_ids = sorted(set(deal_events.values_list("deal_id", flat=True)))
    deal_events.delete()
    for start in range(0, len(deal_ids), 500):
        Deal.objects.filter(deal_id__in=deal_ids[start : start + 500]).update(checked_epoch=0)
    return touched | refold_claims(claim_ids)


def refold_claims(claim_ids: set[int]) -> set[str]:
    """Rebuild Claim rows from their stored events; returns old and new piece CIDs."""
    touched: set[str] = set()
    ids = sorted(claim_ids)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        existing = {c.claim_id: c for c in Claim.objects.filter(claim_id__in=chunk)}
        touched.update(c.piece_cid for c in existing.values())
        events: dict[int, list[ClaimEvent]] = {}
        for event in ClaimEvent.objects.filter(claim_id__in=chunk):
            events.setdefault(event.claim_id, []).append(event)
        upserts: list[Claim] = []
        gone: list[int] = []
        for claim_id in chunk:
            history = sorted(
                events.get(claim_id, []), key=lambda e: (e.height, _KIND_RANK[e.kind], e.pk)
            )
            if not history:
                if claim_id in existing:
                    gone.append(claim_id)
                continue
            last = history[-1]
            upserts.append(
                Claim(
                    claim_id=claim_id,
                    removed=last.kind == ClaimEvent.Kind.REMOVED,
                    height=last.height,
                    **{f: getattr(last, f) for f in _EVENT_FIELDS},
                )
            )
            touched.add(last.piece_cid)
        if gone:
            Claim.objects.filter(claim_id__in=gone).delete()
        if upserts:
            Claim.objects.bulk_create(
                upserts,
                update_conflicts=True,
                unique_fields=["claim_id"],
                update_fields=[*_EVENT_FIELDS, "removed", "height"],
            )
    return touched


# --- blessed CIDs ---------------------------------------------------------------------------


def _sources_sql(where_payload: str, where_piece: str, where_claim: str) -> str:
    deal_cols = (
        f"{DEAL_ACTIVE_UNTIL_SQL} AS active_until, {DEAL_PENDING_UNTIL_SQL} AS pending_until, "
        "1 AS deals, 0 AS claims"
    )
    return (
        "SELECT cid, MAX(active_until), MAX(pending_until), SUM(deals), SUM(claims) FROM ("
        f"SELECT payload_cid AS cid, {deal_cols} FROM {DEAL_TABLE} WHERE {where_payload} "
        f"UNION ALL SELECT piece_cid AS cid, {deal_cols} FROM {DEAL_TABLE} WHERE {where_piece} "
        f"UNION ALL SELECT piece_cid AS cid, {CLAIM_ACTIVE_UNTIL_SQL} AS active_until, "
        f"NULL AS pending_until, 0 AS deals, 1 AS claims FROM {CLAIM_TABLE} WHERE {where_claim}"
        ") sources GROUP BY cid"
    )


_INSERT_BLESSED = (
    f"INSERT INTO {BLESSED_TABLE} (cid, active_until, pending_until, deal_count, claim_count) "
)


def refresh_blessed(cids: Iterable[str]) -> int:
    """Recompute the blessed-CID rows of these CIDs from deals and claims."""
    todo = sorted(set(cids))
    if not todo:
        return 0
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # One array parameter rather than thousands of placeholders: psycopg builds and
            # PostgreSQL plans the statement in a fraction of the time.
            where = "= ANY(%s)"
            cursor.execute(f"DELETE FROM {BLESSED_TABLE} WHERE cid {where}", [todo])
            sql = _sources_sql(f"payload_cid {where}", f"piece_cid {where}", f"piece_cid {where}")
            cursor.execute(_INSERT_BLESSED + sql, [todo, todo, todo])
            return len(todo)
        for start in range(0, len(todo), 300):
            chunk = todo[start : start + 300]
            where = f"IN ({', '.join(['%s'] * len(chunk))})"
            cursor.execute(f"DELETE FROM {BLESSED_TABLE} WHERE cid {where}", chunk)
            sql = _sources_sql(f"payload_cid {where}", f"piece_cid {where}", f"piece_cid {where}")
            cursor.execute(_INSERT_BLESSED + sql, chunk * 3)
    return len(todo)


def rebuild_blessed() -> int:
    """Recompute the whole blessed-CID cache in one set-based statement. Call inside a
    transaction: readers see the old cache until it commits."""
    everything = _sources_sql("payload_cid IS NOT NULL", "1 = 1", "1 = 1")
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            cursor.execute(f"DELETE FROM {BLESSED_TABLE}")
            cursor.execute(_INSERT_BLESSED + everything)
            return BlessedCid.objects.count()
        # Fill a fresh table without indexes, index it once, and swap it in: about twice as
        # fast as refilling the indexed table row by row, which matters at 100 M CIDs.
        cursor.execute("SET LOCAL work_mem = '256MB'")
        cursor.execute("DROP TABLE IF EXISTS blessed_rebuild")
        cursor.execute(f"CREATE TABLE blessed_rebuild (LIKE {BLESSED_TABLE} INCLUDING DEFAULTS)")
        cursor.execute(
            "INSERT INTO blessed_rebuild (cid, active_until, pending_until, deal_count, "
            f"claim_count) {everything}"
        )
        cursor.execute(
            "ALTER TABLE blessed_rebuild ADD CONSTRAINT blessed_rebuild_pkey PRIMARY KEY (cid)"
        )
        cursor.execute(f"DROP TABLE {BLESSED_TABLE}")
        cursor.execute(f"ALTER TABLE blessed_rebuild RENAME TO {BLESSED_TABLE}")
        cursor.execute(
            f"ALTER TABLE {BLESSED_TABLE} RENAME CONSTRAINT blessed_rebuild_pkey "
            f"TO {BLESSED_TABLE}_pkey"
        )
        cursor.execute(f"SELECT COUNT(*) FROM {BLESSED_TABLE}")
        return cursor.fetchone()[0]
