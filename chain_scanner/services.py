"""One scanner pass: `scan_once()` reads a consistent, finalized view of the chain and brings
the deal, claim and blessed-CID tables up to it. Each step commits its data together with
the checkpoint, so a pass killed anywhere resumes where it committed and, run again, ends
with exactly the tables an uninterrupted pass would have written.

The steps: actor events (verified-registry claims and market deals, one height window at a
time, each deal an event names read from state in the same window), the deal ids below
`NextID` no event announced, and a one-time re-read of deals that came from a dump.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from django.conf import settings
from django.db import close_old_connections, transaction
from django.utils import timezone

from chain_scanner import store
from chain_scanner.decode import (
    CLAIM_KINDS,
    DEAL_KINDS,
    BadChainData,
    ClaimEventRow,
    DealEventRow,
    DealRow,
    decode_event,
    kinds_filter,
    parse_deal,
)
from chain_scanner.leases import get_checkpoint, release_scanner, renew_on_save, take_scanner
from chain_scanner.lotus import LotusClient, LotusError, LotusRPCError, TipSet
from chain_scanner.models import ClaimEvent, Deal, DealEvent, ScannerCheckpoint
from chain_scanner.status import lag_behind_head

log = logging.getLogger(__name__)

FINALITY = 900
VERIFIED_REGISTRY = "f06"
MARKET_ACTOR = "f05"
EVENT_KINDS = CLAIM_KINDS + DEAL_KINDS


class Progress(Protocol):
    def __call__(self, step: str, done: int, total: int) -> None: ...


def _no_progress(step: str, done: int, total: int) -> None:
    pass


@dataclass
class ScanReport:
    skipped: bool = False
    processing_height: int | None = None
    head_height: int | None = None
    events_height: int | None = None
    next_deal_id: int | None = None
    deals_stored: int = 0
    unverified_skipped: int = 0
    deals_missing: int = 0
    # Deal ids below NextID that no deal-published event announced (read all the same).
    not_in_events: int = 0
    deals_rechecked: int = 0
    deals_changed: int = 0
    events: Counter[str] = field(default_factory=Counter)  # events read, by $type
    reverted_events: int = 0
    blessed_refreshed: int = 0
    bad_items: int = 0
    rewound_to: int | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def claim_events(self) -> int:
        return sum(self.events[k] for k in CLAIM_KINDS)

    @property
    def deal_events(self) -> int:
        return sum(self.events[k] for k in DEAL_KINDS)

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "events": dict(self.events),
            "claim_events": self.claim_events,
            "deal_events": self.deal_events,
        }

    def summary(self) -> str:
        if self.skipped:
            return "scan skipped: another pass holds the scanner lease"
        lag = lag_behind_head(self.head_height, self.processing_height)
        by_kind = ",".join(f"{k}:{self.events[k]}" for k in EVENT_KINDS)
        return (
            f"height={self.processing_height} head={self.head_height} lag={lag} "
            f"events_height={self.events_height} next_deal_id={self.next_deal_id} "
            f"deals_stored={self.deals_stored} unverified_skipped={self.unverified_skipped} "
            f"missing={self.deals_missing} not_in_events={self.not_in_events} "
            f"rechecked={self.deals_rechecked} changed={self.deals_changed} "
            f"claim_events={self.claim_events} deal_events={self.deal_events} "
            f"events={by_kind} reverted={self.reverted_events} "
            f"blessed_refreshed={self.blessed_refreshed} bad={self.bad_items} "
            f"errors={len(self.errors)}"
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
    if not take_scanner():
        report.skipped = True
        return report
    ScannerCheckpoint.objects.filter(name="default").update(last_pass_started_at=timezone.now())
    try:
        tipset, head = client.finalized_tipset(FINALITY)
        head = head or client.chain_head()
        report.processing_height = tipset.height
        report.head_height = head.height
        scanner = _Pass(client, tipset, report, progress, should_stop)
        scanner.events()
        scanner.new_deals()
        scanner.reread_deals()
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
        release_scanner()
        if own_client:
            client.close()


# What reading a deal at the processing tipset gave: a verified deal (its row written), an
# unverified one, none (not in state), or an answer that could not be read (counted).
STORED = "stored"
UNVERIFIED = "unverified"
MISSING = "missing"
BAD = "bad"
# Deals remembered as read in one pass, so an id is not read twice (a bound on memory in a
# first pass over millions of deals; forgetting only costs a second read of the same state).
READ_MEMORY = 1_000_000


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
        # Deals read at this pass's tipset, and what that gave.
        self._read: dict[int, str] = {}

    # --- actor events -----------------------------------------------------------------------

    def events(self) -> None:
        """Read claim and deal events in height windows up to the processing tipset's
        parent: the state at the processing tipset is the result of exactly those messages,
        so a deal an event names, read there, shows what the event did."""
        checkpoint = get_checkpoint()
        target = self.tipset.height - 1
        if checkpoint.events_height is not None and checkpoint.events_tipset_key:
            self._check_reorg(checkpoint)
            checkpoint.refresh_from_db()
        done = (
            checkpoint.events_height
            if checkpoint.events_height is not None
            else settings.SCANNER_START_EPOCH - 1
        )
        first = done
        while done < target and not self.should_stop():
            start = done + 1
            end = min(target, done + settings.SCANNER_EVENT_RANGE)
            claims, deals = self._read_events(start, end)
            rows, outcomes = self._deals([e.deal_id for e in deals])
            parents = self.tipset.parents_str if end == target else None
            self._commit_events(claims, deals, rows, outcomes, end, parents or self._key_at(end))
            done = end
            self.progress("events", done - first, target - first)
        self.report.events_height = done

    def _check_reorg(self, checkpoint: ScannerCheckpoint) -> None:
        height = checkpoint.events_height
        assert height is not None
        if height >= self.tipset.height:
            return
        if self._key_at(height) == checkpoint.events_tipset_key:
            return
        rewind_to = self._fork_point(height)
        log.warning("tipset at %s changed: re-reading events above %s", height, rewind_to)
        with transaction.atomic():
            touched = store.rewind_events(rewind_to)
            self.report.blessed_refreshed += store.refresh_blessed(touched)
            ScannerCheckpoint.objects.filter(name="default").update(
                events_height=rewind_to, events_tipset_key=""
            )
        self.report.rewound_to = rewind_to

    def _fork_point(self, below: int) -> int:
        """The highest height at which a stored event's tipset is still on the chain: our
        view and the chain agree up to there. Reorgs are shallow, so few heights are read."""
        floor = settings.SCANNER_START_EPOCH - 1
        checked: dict[int, str] = {}
        for height, stored in _stored_event_heights(below, floor):
            if height not in checked:
                checked[height] = store.tipset_hash(self._key_at(height))
            if checked[height] == stored:
                return height
        return floor

    def _key_at(self, height: int) -> str:
        return self.client.tipset_by_height(height, self.tipset).key_str

    def _read_events(self, start: int, end: int) -> tuple[list[ClaimEventRow], list[DealEventRow]]:
        query: dict[str, Any] = {
            "addresses": [VERIFIED_REGISTRY, MARKET_ACTOR],
            "fields": kinds_filter(EVENT_KINDS),
            "fromHeight": start,
            "toHeight": end,
        }
        try:
            raw = self.client.call("GetActorEventsRaw", query)
        except LotusRPCError as exc:
            # More events than the node returns in one answer: split the range.
            if "too many" in exc.message.lower() and end > start:
                middle = (start + end) // 2
                low, high = self._read_events(start, middle), self._read_events(middle + 1, end)
                return low[0] + high[0], low[1] + high[1]
            raise
        claims: list[ClaimEventRow] = []
        deals: list[DealEventRow] = []
        if raw is None:
            return claims, deals
        if not isinstance(raw, list):
            self._bad(f"GetActorEventsRaw {start}-{end}: result is not a list")
            return claims, deals
        for event in raw:
            try:
                row = decode_event(event)
            except BadChainData as exc:
                self._bad(f"actor event in {start}-{end}: {exc}")
                continue
            if isinstance(row, ClaimEventRow):
                claims.append(row)
            elif isinstance(row, DealEventRow):
                deals.append(row)
        return claims, deals

    def _commit_events(
        self,
        claims: list[ClaimEventRow],
        deals: list[DealEventRow],
        rows: list[DealRow],
        outcomes: dict[int, str],
        height: int,
        key: str,
    ) -> None:
        unverified = {i for i, o in outcomes.items() if o == UNVERIFIED}
        missing = [i for i, o in outcomes.items() if o == MISSING]
        counts = Counter([e.kind for e in claims] + [e.kind for e in deals])
        with transaction.atomic():
            checkpoint = ScannerCheckpoint.objects.select_for_update().get(name="default")
            touched = store.apply_claim_events(claims)
            touched |= store.apply_deal_events(
                deals, rows, missing, skip=unverified, checked_epoch=self.tipset.height
            )
            self.report.blessed_refreshed += store.refresh_blessed(touched)
            checkpoint.events_height = height
            checkpoint.events_tipset_key = key
            checkpoint.claim_events += len(claims)
            checkpoint.event_counts = _add_counts(checkpoint.event_counts, counts)
            checkpoint.bad_items += self._pending_bad
            renew_on_save(checkpoint)
            checkpoint.save()
        self.report.events.update(counts)
        self.report.reverted_events += sum(e.reverted for e in claims) + sum(
            e.reverted for e in deals
        )
        self._pending_bad = 0

    # --- market deals ---------------------------------------------------------------------

    def _bad(self, message: str) -> None:
        log.warning("bad chain data: %s", message)
        self.report.bad_items += 1
        self._pending_bad += 1
        if len(self.report.errors) < 100:
            self.report.errors.append(message)

    def _deals(
        self, deal_ids: list[int], *, count: bool = True
    ) -> tuple[list[DealRow], dict[int, str]]:
        """Read, in batched requests, the deals this pass has not read yet: the rows of the
        verified ones just read, and what reading each of `deal_ids` gave. `count`: add
        the deals just read to the report (stored, unverified, missing)."""
        wanted = sorted(set(deal_ids))
        known = {i: self._read[i] for i in wanted if i in self._read}
        todo = [i for i in wanted if i not in known]
        rows: list[DealRow] = []
        batch = settings.SCANNER_DEAL_BATCH
        for offset in range(0, len(todo), batch):
            for deal_id, outcome in self._fetch_deals(todo[offset : offset + batch]).items():
                if isinstance(outcome, DealRow):
                    rows.append(outcome)
                    known[deal_id] = STORED
                else:
                    known[deal_id] = outcome
        if len(self._read) + len(todo) > READ_MEMORY:
            self._read.clear()
        self._read.update((i, known[i]) for i in todo)
        if count:
            fresh = [known[i] for i in todo]
            self.report.deals_stored += len(rows)
            self.report.unverified_skipped += fresh.count(UNVERIFIED)
            self.report.deals_missing += fresh.count(MISSING)
        return rows, known

    def new_deals(self) -> None:
        """Every deal id up to NextID, once: most were read when their deal-published event
        was, and the rest (published before market events existed, or missed) here."""
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
            unannounced = sum(1 for i in ids if i not in self._read)
            rows, outcomes = self._deals(ids)
            unverified = sum(1 for o in outcomes.values() if o == UNVERIFIED)
            missing = sum(1 for o in outcomes.values() if o == MISSING)
            with transaction.atomic():
                checkpoint = ScannerCheckpoint.objects.select_for_update().get(name="default")
                store.upsert_deals(rows, checked_epoch=self.tipset.height)
                self.report.blessed_refreshed += store.refresh_blessed(_row_cids(rows))
                checkpoint.next_deal_id = ids[-1] + 1
                checkpoint.deals_fetched += len(ids)
                checkpoint.unverified_skipped += unverified
                checkpoint.deals_missing += missing
                checkpoint.bad_items += self._pending_bad
                renew_on_save(checkpoint)
                checkpoint.save()
            self._pending_bad = 0
            self.report.not_in_events += unannounced
            cursor = ids[-1] + 1
            self.progress("deals", cursor - first, stop_at - first)
        self.report.next_deal_id = cursor

    def _fetch_deals(self, ids: list[int]) -> dict[int, DealRow | str]:
        """Read deals in one batch. A deal whose answer cannot be read is BAD (and counted);
        any other failure is not a verdict on the deal: the batch is retried next pass."""
        if not ids:
            return {}
        answers = self.client.batch(
            [("StateMarketStorageDeal", (deal_id, self.tipset.key)) for deal_id in ids]
        )
        outcomes: dict[int, DealRow | str] = {}
        for deal_id, answer in zip(ids, answers, strict=True):
            if isinstance(answer, LotusRPCError) and "not found" in answer.message:
                outcomes[deal_id] = MISSING
                continue
            if isinstance(answer, LotusError):
                raise answer
            try:
                row = parse_deal(deal_id, answer)
            except BadChainData as exc:
                self._bad(str(exc))
                outcomes[deal_id] = BAD
                continue
            outcomes[deal_id] = UNVERIFIED if row is None else row
        return outcomes

    def reread_deals(self) -> None:
        """Read once, from state, the deals marked for it (checked_epoch 0): rows from a dump,
        since whatever happened to them between the dump's unknown epoch and the first event
        window is in no event we read, and deals a reorg undid events of. Events cover
        every other change."""
        ids = list(
            Deal.objects.filter(checked_epoch=0)
            .order_by("deal_id")
            .values_list("deal_id", flat=True)[: settings.SCANNER_RECHECK_PER_PASS]
        )
        batch = settings.SCANNER_DEAL_BATCH
        for offset in range(0, len(ids), batch):
            if self.should_stop():
                return
            chunk = ids[offset : offset + batch]
            rows, outcomes = self._deals(chunk, count=False)
            missing = [i for i, o in outcomes.items() if o == MISSING]
            before = {d.deal_id: d for d in Deal.objects.filter(deal_id__in=chunk)}
            changed = [r for r in rows if _changed(before.get(r.deal_id), r)]
            with transaction.atomic():
                checkpoint = ScannerCheckpoint.objects.select_for_update().get(name="default")
                touched = store.deal_cids([r.deal_id for r in changed] + missing)
                store.upsert_deals(rows, checked_epoch=self.tipset.height)
                store.end_missing_deals(missing, epoch=self.tipset.height)
                touched |= _row_cids(changed)
                self.report.blessed_refreshed += store.refresh_blessed(touched)
                checkpoint.bad_items += self._pending_bad
                renew_on_save(checkpoint)
                checkpoint.save()
            self._pending_bad = 0
            self.report.deals_rechecked += len(chunk)
            self.report.deals_changed += len(changed) + len(missing)
            self.progress("recheck", offset + len(chunk), len(ids))


def _stored_event_heights(below: int, floor: int) -> Iterator[tuple[int, str]]:
    """(height, tipset hash) of stored claim and deal events in (floor, below), highest
    first."""
    streams = [
        model.objects.filter(height__lt=below, height__gt=floor)
        .values_list("height", "tipset_hash")
        .order_by("-height")
        .distinct()
        .iterator()
        for model in (ClaimEvent, DealEvent)
    ]
    return heapq.merge(*streams, key=lambda row: -row[0])


def _add_counts(stored: Any, counts: Counter[str]) -> dict[str, int]:
    total = Counter(stored if isinstance(stored, dict) else {})
    total.update(counts)
    return dict(sorted(total.items()))


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
