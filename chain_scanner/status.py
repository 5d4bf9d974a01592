"""What the scanner has done and how far behind the chain it is (`GET /scanner`, /healthz)."""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.db.models import Model

from chain_scanner.models import BlessedCid, Claim, Deal, ScannerCheckpoint

EXACT_COUNT_LIMIT = 200_000


def approximate_count(model: type[Model]) -> int:
    """COUNT(*) is a full scan on PostgreSQL: above a few hundred thousand rows the
    planner's estimate is close enough for a status page."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                [model._meta.db_table],
            )
            row = cursor.fetchone()
        if row and row[0] > EXACT_COUNT_LIMIT:
            return int(row[0])
    return model.objects.count()


def scanner_status() -> dict[str, Any]:
    checkpoint = ScannerCheckpoint.objects.filter(name="default").first()
    if checkpoint is None:
        checkpoint = ScannerCheckpoint(name="default")
    lag = (
        checkpoint.head_height - checkpoint.processing_height
        if checkpoint.head_height is not None and checkpoint.processing_height is not None
        else None
    )
    return {
        "processing_height": checkpoint.processing_height,
        "head_height": checkpoint.head_height,
        "lag_epochs": lag,
        "claims_height": checkpoint.claims_height,
        "next_deal_id": checkpoint.next_deal_id,
        "dump_last_deal_id": checkpoint.dump_last_deal_id,
        "last_pass_started_at": checkpoint.last_pass_started_at,
        "last_pass_finished_at": checkpoint.last_pass_finished_at,
        "last_error": checkpoint.last_error or None,
        "last_error_at": checkpoint.last_error_at,
        "counts": {
            "deals": approximate_count(Deal),
            "claims": approximate_count(Claim),
            "blessed_cids": approximate_count(BlessedCid),
            "deals_fetched": checkpoint.deals_fetched,
            "unverified_skipped": checkpoint.unverified_skipped,
            "deals_missing": checkpoint.deals_missing,
            "claim_events": checkpoint.claim_events,
            "bad_items": checkpoint.bad_items,
        },
    }
