"""One scanner pass: `scan_once()` reads a consistent, finalized view of the chain and brings
the deal, claim and blessed-CID tables up to it. Each step commits its data together with
the checkpoint, so a pass killed anywhere resumes where it committed and, run again, ends
with exactly the tables an uninterrupted pass would have written.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from django.conf import settings
from django.db import close_old_connections, transaction
from django.utils import timezone

from chain_scanner import store
from chain_scanner.decode import (
    BadChainData,
    ClaimEventRow,
    DealRow,
    claim_kinds_filter,
    decode_claim_event,
    parse_deal,
)
from chain_scanner.lease import acquire_lease, get_checkpoint, release_lease, renew
from chain_scanner.lotus import LotusClient, LotusError, LotusRPCError, TipSet
from chain_scanner.models import ClaimEvent, Deal, ScannerCheckpoint
from chain_scanner.status import lag_behind_head

log = logging.getLogger(__name__)

FINALITY = 900
VERIFIED_REGISTRY = "f06"
MARKET_ACTOR = "f05"
# A deal not activated a day after its StartEpoch never will be (Spade's rule).
ACTIVATION_GRACE = 2880


class Progress(Protocol):
    def __call__(self, step: str, done: int, total: int) -> None: ...


def _no_progress(step: str, done: int, total: int) -> None:
    pass


@dataclass
class ScanReport:
    skipped: bool = False
    processing_height: int | None = None
    head_height: int | None = None
    claims_height: int | None = None
    next_deal_id: int | None = None
    deals_stored: int = 0
    unverified_skipped: int = 0
    deals_missing: int = 0
    deals_rechecked: int = 0
    deals_changed: int = 0
    claim_events: int = 0
    reverted_events: int = 0
    blessed_refreshed: int = 0
    bad_items: int = 0
    rewound_to: int | None = None
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        if self.skipped:
            return "scan skipped: another pass holds the scanner lease"
        lag = lag_behind_head(self.head_height, self.processing_height)
        return (
            f"height={self.processing_height} head={self.head_height} lag={lag} "
            f"claims_height={self.claims_height} next_deal_id={self.next_deal_id} "
            f"deals_stored={self.deals_stored} unverified_skipped={self.unverified_skipped} "
            f"missing={self.deals_missing} rechecked={self.deals_rechecked} "
            f"changed={self.deals_changed} claim_events={self.claim_events} "
            f"reverted={self.reverted_events} blessed_refreshed={self.blessed_refreshed} "
            f"bad={self.bad_items} errors={len(self.errors)}"
        )


def make_client(sleep: Callable[[float], object] = time.sleep) -> LotusClient:
    return LotusClient(
        settings.LOTUS_RPC_URL,
        settings.LOTUS_RPC_TOKEN,
        timeout=settings.LOTUS_RPC_TIMEOUT_S,
        retries=settings.LOTUS_RPC_RETRIES,
        sleep=sleep,
    )


# --- the pass ---------------------------------------------------------------------------------


def scan_once(
    client: LotusClient | None = None,
    *,
    progress: Progress = _no_progress,
    should_stop: Callable[[], bool] = lambda: False,
) -> ScanReport:
    """Run one pass. Raises LotusError when the endpoint fails; the checkpoint then keeps
    everything committed so far and records the error."""
    own_client = client is None
    client = client or make_client()
    report = ScanReport()
    if not acquire_lease():
        report.skipped = True
        return report
    ScannerCheckpoint.objects.filter(name="default").update(last_pass_started_at=timezone.now())
    try:
        tipset, head = client.finalized_tipset(FINALITY)
        head = head or client.chain_head()
        report.processing_height = tipset.height
        report.head_height = head.height
        scanner = _Pass(client, tipset, report, progress, should_stop)
        scanner.claims()
        scanner.new_deals()
        scanner.recheck_deals()
        ScannerCheckpoint.objects.filter(name="default").update(
            processing_height=tipset.height,
            head_height=head.height,
            last_pass_finished_at=timezone.now(),
            last_error="",
        )
        return report
    except LotusError as exc:
        ScannerCheckpoint.objects.filter(name="default").update(
            last_error=str(exc)[:2000], last_error_at=timezone.now()
        )
        raise
    finally:
        release_lease()
        if own_client:
            client.close()


class _Pass:
    def __init__(
        self,
        client: LotusClient,
        tipset: TipSet,
        report: ScanReport,
        progress: Progress,
        should_stop: Callable[[], bool],
    ) -> None:
        self.client = client
        self.tipset = tipset
        self.report = report
        self.progress = progress
        self.should_stop = should_stop
        # Bad items seen since the last commit: counted on the checkpoint with that commit.
        self._pending_bad = 0

    # --- verified-registry claims ---------------------------------------------------------

    def claims(self) -> None:
        checkpoint = get_checkpoint()
        target = self.tipset.height
        if checkpoint.claims_height is not None and checkpoint.claims_tipset_key:
            self._check_reorg(checkpoint)
            checkpoint.refresh_from_db()
        done = (
            checkpoint.claims_height
            if checkpoint.claims_height is not None
            else settings.SCANNER_START_EPOCH - 1
        )
        first = done
        while done < target and not self.should_stop():
            start = done + 1
            end = min(target, done + settings.SCANNER_EVENT_RANGE)
            events = self._claim_events(start, end)
            key = self.tipset.key_str if end == target else self._key_at(end)
            self._commit_claims(events, end, key)
            done = end
            self.progress("claims", done - first, target - first)
        self.report.claims_height = done

    def _check_reorg(self, checkpoint: ScannerCheckpoint) -> None:
        height = checkpoint.claims_height
        assert height is not None
        if height > self.tipset.height:
            return
        if self._key_at(height) == checkpoint.claims_tipset_key:
            return
        rewind_to = self._fork_point(height)
        log.warning("tipset at %s changed: re-reading claim events above %s", height, rewind_to)
        with transaction.atomic():
            touched = store.rewind_claim_events(rewind_to)
            self.report.blessed_refreshed += store.refresh_blessed(touched)
            ScannerCheckpoint.objects.filter(name="default").update(
                claims_height=rewind_to, claims_tipset_key=""
            )
        self.report.rewound_to = rewind_to

    def _fork_point(self, below: int) -> int:
        """The highest height at which a stored event's tipset is still on the chain: our
        view and the chain agree up to there. Reorgs are shallow, so few heights are read."""
        floor = settings.SCANNER_START_EPOCH - 1
        heights = (
            ClaimEvent.objects.filter(height__lt=below, height__gt=floor)
            .values_list("height", "tipset_hash")
            .order_by("-height")
            .distinct()
        )
        checked: dict[int, str] = {}
        for height, stored in heights.iterator():
            if height not in checked:
                checked[height] = store.tipset_hash(self._key_at(height))
            if checked[height] == stored:
                return height
        return floor

    def _key_at(self, height: int) -> str:
        return self.client.tipset_by_height(height, self.tipset).key_str

    def _claim_events(self, start: int, end: int) -> list[ClaimEventRow]:
        query: dict[str, Any] = {
            "addresses": [VERIFIED_REGISTRY],
            "fields": claim_kinds_filter(),
            "fromHeight": start,
            "toHeight": end,
        }
        try:
            raw = self.client.call("GetActorEventsRaw", query)
        except LotusRPCError as exc:
            # More events than the node returns in one answer: split the range.
            if "too many" in exc.message.lower() and end > start:
                middle = (start + end) // 2
                return self._claim_events(start, middle) + self._claim_events(middle + 1, end)
            raise
        if raw is None:
            return []
        if not isinstance(raw, list):
            self._bad(f"GetActorEventsRaw {start}-{end}: result is not a list")
            return []
        rows: list[ClaimEventRow] = []
        for event in raw:
            try:
                row = decode_claim_event(event)
            except BadChainData as exc:
                self._bad(f"claim event in {start}-{end}: {exc}")
                continue
            if row is not None:
                rows.append(row)
        return rows

    def _commit_claims(self, events: list[ClaimEventRow], height: int, key: str) -> None:
        with transaction.atomic():
            checkpoint = ScannerCheckpoint.objects.select_for_update().get(name="default")
            touched = store.apply_claim_events(events)
            self.report.blessed_refreshed += store.refresh_blessed(touched)
            checkpoint.claims_height = height
            checkpoint.claims_tipset_key = key
            checkpoint.claim_events += len(events)
            checkpoint.bad_items += self._pending_bad
            renew(checkpoint)
            checkpoint.save()
        self.report.claim_events += len(events)
        self.report.reverted_events += sum(1 for e in events if e.reverted)
        self._pending_bad = 0

    # --- market deals ---------------------------------------------------------------------

    def _bad(self, message: str) -> None:
        log.warning("bad chain data: %s", message)
        self.report.bad_items += 1
        self._pending_bad += 1
        if len(self.report.errors) < 100:
            self.report.errors.append(message)

    def new_deals(self) -> None:
        state = self.client.call("StateReadState", MARKET_ACTOR, self.tipset.key)
        next_id = (state or {}).get("State", {}).get("NextID") if isinstance(state, dict) else None
        if isinstance(next_id, bool) or not isinstance(next_id, int):
            self._bad(f"StateReadState({MARKET_ACTOR}) has no integer NextID")
            return
        checkpoint = get_checkpoint()
        cursor = checkpoint.next_deal_id
        if cursor is None:
            # No checkpoint: continue after an imported dump, else start at the tip
            # (history then comes from a dump).
            cursor = (
                checkpoint.dump_last_deal_id + 1
                if checkpoint.dump_last_deal_id is not None
                else next_id
            )
            ScannerCheckpoint.objects.filter(pk=checkpoint.pk).update(next_deal_id=cursor)
        stop_at = min(next_id, cursor + settings.SCANNER_MAX_DEALS_PER_PASS)
        first = cursor
        while cursor < stop_at and not self.should_stop():
            ids = list(range(cursor, min(stop_at, cursor + settings.SCANNER_DEAL_BATCH)))
            rows, unverified, missing = self._fetch_deals(ids)
            with transaction.atomic():
                checkpoint = ScannerCheckpoint.objects.select_for_update().get(name="default")
                store.upsert_deals(rows, checked_epoch=self.tipset.height)
                self.report.blessed_refreshed += store.refresh_blessed(_row_cids(rows))
                checkpoint.next_deal_id = ids[-1] + 1
                checkpoint.deals_fetched += len(ids)
                checkpoint.unverified_skipped += unverified
                checkpoint.deals_missing += len(missing)
                checkpoint.bad_items += self._pending_bad
                renew(checkpoint)
                checkpoint.save()
            self._pending_bad = 0
            self.report.deals_stored += len(rows)
            self.report.unverified_skipped += unverified
            self.report.deals_missing += len(missing)
            cursor = ids[-1] + 1
            self.progress("deals", cursor - first, stop_at - first)
        self.report.next_deal_id = cursor

    def _fetch_deals(self, ids: list[int]) -> tuple[list[DealRow], int, list[int]]:
        """Fetch deals in one batch: (verified rows, unverified count, ids not in state)."""
        answers = self.client.batch(
            [("StateMarketStorageDeal", (deal_id, self.tipset.key)) for deal_id in ids]
        )
        rows: list[DealRow] = []
        unverified = 0
        missing: list[int] = []
        for deal_id, answer in zip(ids, answers, strict=True):
            if isinstance(answer, LotusRPCError) and "not found" in answer.message:
                missing.append(deal_id)
                continue
            if isinstance(answer, LotusError):
                # Not a verdict on this deal: stop here and retry the batch next pass.
                raise answer
            try:
                row = parse_deal(deal_id, answer)
            except BadChainData as exc:
                self._bad(str(exc))
                continue
            if row is None:
                unverified += 1
            else:
                rows.append(row)
        return rows, unverified, missing

    def recheck_deals(self) -> None:
        """Re-read tracked deals: every pending one for activation, and a rotating slice of
        the active ones for slashing and removal. Expiry needs no RPC: EndEpoch is known."""
        height = self.tipset.height
        pending = list(
            Deal.objects.filter(
                sector_start_epoch__lte=0,
                slash_epoch=-1,
                removed_epoch__isnull=True,
                start_epoch__gte=height - ACTIVATION_GRACE,
                checked_epoch__lt=height,
            )
            .order_by("deal_id")
            .values_list("deal_id", flat=True)
        )
        self._recheck(pending, update_cursor=None)
        checkpoint = get_checkpoint()
        if checkpoint.recheck_height != height:
            self._plan_rotation(checkpoint)
            checkpoint.refresh_from_db()
        active = list(
            _active_deals(height)
            .filter(deal_id__gt=checkpoint.recheck_cursor, deal_id__lte=checkpoint.recheck_end)
            .order_by("deal_id")
            .values_list("deal_id", flat=True)
        )
        self._recheck(active, update_cursor=checkpoint.recheck_end)

    def _plan_rotation(self, checkpoint: ScannerCheckpoint) -> None:
        """Fix this height's slice of active deals before checking it, so a pass re-run
        after a kill checks exactly the same deals."""
        active = _active_deals(self.tipset.height)
        start = checkpoint.recheck_end
        if not active.filter(deal_id__gt=start).exists():
            start = 0  # went round: begin again
        ids = list(
            active.filter(deal_id__gt=start)
            .order_by("deal_id")
            .values_list("deal_id", flat=True)[: settings.SCANNER_RECHECK_PER_PASS]
        )
        ScannerCheckpoint.objects.filter(pk=checkpoint.pk).update(
            recheck_height=self.tipset.height,
            recheck_cursor=start,
            recheck_end=ids[-1] if ids else start,
        )

    def _recheck(self, deal_ids: list[int], *, update_cursor: int | None) -> None:
        batch = settings.SCANNER_DEAL_BATCH
        total = len(deal_ids)
        for offset in range(0, total, batch):
            if self.should_stop():
                return
            ids = deal_ids[offset : offset + batch]
            rows, _unverified, missing = self._fetch_deals(ids)
            before = {d.deal_id: d for d in Deal.objects.filter(deal_id__in=ids)}
            changed = [r for r in rows if _changed(before.get(r.deal_id), r)]
            with transaction.atomic():
                checkpoint = ScannerCheckpoint.objects.select_for_update().get(name="default")
                touched = store.deal_cids([r.deal_id for r in changed] + missing)
                store.upsert_deals(rows, checked_epoch=self.tipset.height)
                store.mark_deals_removed(missing, epoch=self.tipset.height)
                touched |= _row_cids(changed)
                self.report.blessed_refreshed += store.refresh_blessed(touched)
                if update_cursor is not None:
                    checkpoint.recheck_cursor = ids[-1]
                checkpoint.bad_items += self._pending_bad
                renew(checkpoint)
                checkpoint.save()
            self._pending_bad = 0
            self.report.deals_rechecked += len(ids)
            self.report.deals_changed += len(changed) + len(missing)
            self.progress("recheck", offset + len(ids), total)
        if update_cursor is not None:
            ScannerCheckpoint.objects.filter(name="default").update(recheck_cursor=update_cursor)


def _active_deals(height: int) -> Any:
    return Deal.objects.filter(
        sector_start_epoch__gt=0, slash_epoch=-1, removed_epoch__isnull=True, end_epoch__gt=height
    )


def _changed(old: Deal | None, new: DealRow) -> bool:
    if old is None:
        return True
    return (
        old.sector_start_epoch != new.sector_start_epoch
        or old.slash_epoch != new.slash_epoch
        or old.end_epoch != new.end_epoch
        or old.removed_epoch is not None
    )


def _row_cids(rows: list[DealRow]) -> set[str]:
    cids = {r.piece_cid for r in rows}
    cids.update(r.payload_cid for r in rows if r.payload_cid)
    return cids


BACKOFF_CAP_S = 600.0  # a failing endpoint is tried at least every ten minutes


def follow(
    stop: threading.Event,
    *,
    interval: float | None = None,
    on_report: Callable[[ScanReport], None] = lambda report: None,
    on_error: Callable[[LotusError, float], None] = lambda exc, pause: None,
    progress: Progress = _no_progress,
) -> None:
    """Run passes until `stop` is set, pausing `interval` seconds between them (healthchecks'
    sendalerts loop). A failed pass is reported once, with the pause before the next one,
    which doubles with each failure in a row up to BACKOFF_CAP_S. Setting `stop` ends a
    retry's wait at once."""
    pause = settings.SCANNER_INTERVAL_S if interval is None else interval
    failures = 0
    with make_client(sleep=stop.wait) as client:
        while not stop.is_set():
            wait = pause
            try:
                on_report(scan_once(client, progress=progress, should_stop=stop.is_set))
                failures = 0
            except LotusError as exc:
                if stop.is_set():
                    break
                failures += 1
                wait = min(BACKOFF_CAP_S, max(pause, 1.0) * 2 ** (failures - 1))
                on_error(exc, wait)
            finally:
                close_old_connections()
            stop.wait(wait)
