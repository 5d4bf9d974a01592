"""Snapshots of the scanner's tables, to compare runs row for row."""

from __future__ import annotations

from typing import Any

from chain_scanner.models import BlessedCid, Claim, ClaimEvent, Deal, DealEvent, ScannerCheckpoint

CHECKPOINT_POSITION = (
    "next_deal_id",
    "events_height",
    "events_tipset_key",
    "dump_last_deal_id",
    "deals_fetched",
    "unverified_skipped",
    "deals_missing",
    "claim_events",
    "event_counts",
    "bad_items",
)


def snapshot() -> dict[str, Any]:
    checkpoint = ScannerCheckpoint.objects.filter(name="default").values(*CHECKPOINT_POSITION)
    return {
        "deals": list(Deal.objects.order_by("deal_id").values()),
        "claims": list(Claim.objects.order_by("claim_id").values()),
        # Event ids depend on insertion history; their identity and content do not.
        "events": sorted(
            tuple(sorted((k, v) for k, v in e.items() if k != "id"))
            for e in ClaimEvent.objects.values()
        ),
        "deal_events": sorted(
            tuple(sorted((k, v) for k, v in e.items() if k != "id"))
            for e in DealEvent.objects.values()
        ),
        "blessed": list(BlessedCid.objects.order_by("cid").values()),
        "checkpoint": list(checkpoint),
    }
