"""Put deals and claims straight into the scanner's tables, for API tests."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from chain_scanner import store
from chain_scanner.decode import parse_deal
from chain_scanner.models import Claim, ScannerCheckpoint
from dashboard.eligibility.selectors import forget_epoch
from tests.chain_data import make_deal, synthetic_payload_cid, synthetic_piece_cid

EPOCH = 5_000_000


def scanned_at(epoch: int = EPOCH, *, lag: int = 900, finished: datetime | None = None) -> None:
    """A checkpoint as a pass at `epoch` that finished at `finished` (default: now) leaves it."""
    ScannerCheckpoint.objects.update_or_create(
        name="default",
        defaults={
            "processing_height": epoch,
            "head_height": epoch + lag,
            "last_pass_finished_at": finished or timezone.now(),
        },
    )
    forget_epoch()  # the API keeps the epoch for a second


def deal(deal_id: int, *, state: str = "active", **kwargs: object) -> tuple[str, str]:
    """A verified deal whose label is synthetic_payload_cid(deal_id); returns (payload, piece)."""
    epochs = {
        "active": {"start_epoch": 100, "end_epoch": EPOCH + 10**6, "sector_start_epoch": 90},
        "pending": {"start_epoch": EPOCH + 500, "end_epoch": EPOCH + 10**6},
        "expired": {"start_epoch": 100, "end_epoch": EPOCH - 1, "sector_start_epoch": 90},
    }[state]
    value = make_deal(deal_id, **{**epochs, **kwargs})  # type: ignore[arg-type]
    row = parse_deal(deal_id, value)
    assert row is not None
    store.upsert_deals([row], checked_epoch=EPOCH)
    store.refresh_blessed({row.piece_cid, row.payload_cid or ""})
    return synthetic_payload_cid(deal_id), synthetic_piece_cid(deal_id)


def claim(claim_id: int, *, piece_cid: str, term_max: int = 10**6) -> None:
    Claim.objects.create(
        claim_id=claim_id,
        provider=1234,
        client=5678,
        piece_cid=piece_cid,
        piece_size=2**35,
        term_min=518400,
        term_max=term_max,
        term_start=EPOCH - 100,
        sector=1,
        height=EPOCH - 100,
    )
    store.refresh_blessed({piece_cid})
