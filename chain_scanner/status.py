"""What the scanner has done and how far behind the chain it is (`GET /scanner`, /healthz)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Model
from django.utils import timezone

from chain_scanner.decode import CLAIM_KINDS, DEAL_KINDS
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
    return model._default_manager.count()


EPOCH_S = 30


def lag_behind_head(head_height: int | None, processing_height: int | None) -> int | None:
    """Epochs between the chain head and the tipset a pass worked on (None before a pass)."""
    if head_height is None or processing_height is None:
        return None
    return head_height - processing_height


@dataclass(frozen=True)
class Freshness:
    """Whether the scanner's tables can be trusted as "the chain now": a pass has finished,
    recently, and its processing tipset is close enough to the head."""

    complete: bool
    lag_epochs: int | None  # behind the head at the last pass, plus the epochs since it ended
    last_pass_at: datetime | None
    reasons: tuple[str, ...]  # why it is not complete, for /healthz and the logs

    def as_json(self) -> dict[str, Any]:
        return {
            "complete": self.complete,
            "lag_epochs": self.lag_epochs,
            "last_pass_at": _iso(self.last_pass_at),
        }


def _iso(when: datetime | None) -> str | None:
    return when.isoformat().replace("+00:00", "Z") if when else None


def freshness(checkpoint: ScannerCheckpoint | None, now: datetime | None = None) -> Freshness:
    now = now or timezone.now()
    if checkpoint is None or checkpoint.last_pass_finished_at is None:
        return Freshness(False, None, None, ("no scanner pass has finished yet",))
    finished = checkpoint.last_pass_finished_at
    reasons = []
    since = max(0, int((now - finished).total_seconds()))
    lag = lag_behind_head(checkpoint.head_height, checkpoint.processing_height)
    if lag is not None:
        lag += since // EPOCH_S
        if lag > settings.SCANNER_STALE_EPOCHS:
            reasons.append(
                f"{lag} epochs behind the chain head (more than SCANNER_STALE_EPOCHS, "
                f"{settings.SCANNER_STALE_EPOCHS})"
            )
    # Passes run every SCANNER_INTERVAL_S: ten missed ones mean the scanner is stuck.
    stale_after = timedelta(seconds=10 * settings.SCANNER_INTERVAL_S + 600)
    if now - finished > stale_after:
        reasons.append(
            f"the last pass finished {_ago(since)} ago (passes run every "
            f"{settings.SCANNER_INTERVAL_S} s)"
        )
    return Freshness(not reasons, lag, finished, tuple(reasons))


def _ago(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h"


def scanner_status() -> dict[str, Any]:
    checkpoint = ScannerCheckpoint.objects.filter(name="default").first()
    if checkpoint is None:
        checkpoint = ScannerCheckpoint(name="default")
    lag = lag_behind_head(checkpoint.head_height, checkpoint.processing_height)
    stored = checkpoint.event_counts if isinstance(checkpoint.event_counts, dict) else {}
    events = {kind: int(stored.get(kind, 0)) for kind in (*CLAIM_KINDS, *DEAL_KINDS)}
    return {
        "processing_height": checkpoint.processing_height,
        "head_height": checkpoint.head_height,
        "lag_epochs": lag,
        "events_height": checkpoint.events_height,
        "claims_height": checkpoint.events_height,
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
            "deal_events": sum(events[kind] for kind in DEAL_KINDS),
            # Served by the partial index deal_to_reread: cheap at any table size.
            "deals_to_reread": Deal.objects.filter(checked_epoch=0).count(),
            "bad_items": checkpoint.bad_items,
        },
        "events": events,
    }
