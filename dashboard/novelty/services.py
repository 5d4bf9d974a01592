"""How much of a job's result is new data, measured after the job, never on a request.

When a result is recorded (`queue_measurement`), its job gets a Novelty row: queued when the
result is in this dashboard's store, `not_in_store` otherwise (queued again once a
re-execution put it there: `remeasure`). A worker claims the row under a lease (the one
queue helper, dashboard/queue.py), and `measure`:
1. indexes what is pending in the copy index (dashboard/content/index.py), the job's own
   inputs first, so that everything noted before is looked up;
2. fingerprints each distinct file of the result (and its decompressed view, when it is a
   compressed stream) and looks the fingerprints up;
3. names the source of every copied byte: the job's own `input`, `blessed` content (an input
   of a job submitted before the result came, or content whose CID is blessed now), or an
   earlier `result` of another job (never the job's own result, nor a later one);
4. stores `novel_bytes` (bytes found in no source), `total_bytes` and the sources.

A byte found in several sources counts once, for the first of input, blessed, result. A
compressed file counts as new only as far as both its stored and its decompressed bytes are:
gzip of an input is a copy. Each distinct file counts once, as the result's CAR holds it once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from dashboard.content import index
from dashboard.content.fingerprints import METHOD, TooLarge, pieces
from dashboard.content.services import storage
from dashboard.eligibility import selectors as eligibility
from dashboard.models import IndexedContent, Job, JobInput, JobResult, Novelty
from dashboard.queue import MEASURE_NOVELTY_TASK, Queue
from executor.cids import InvalidCID, normalize_cid
from executor.spec import SpecError, parse_spec
from executor.storage import ContentNotFound, Storage, StorageError

__all__ = [
    "MAX_SOURCES",
    "NOVELTY",
    "claim",
    "claim_next",
    "measure",
    "measure_queued",
    "queue_measurement",
    "recover_expired",
    "remeasure",
]

log = logging.getLogger(__name__)

NOVELTY = Queue(Novelty, MEASURE_NOVELTY_TASK)
MAX_SOURCES = 20  # sources kept per measurement, most bytes first
# The order a byte found in several sources is counted in.
KINDS = ("input", "blessed", "result")


def _inputs_of(job: Job) -> list[str]:
    """The CIDs a job read: its inputs and its WASM module (a job that writes its own module
    out copies it), canonical."""
    cids = list(JobInput.objects.filter(job=job).values_list("cid", flat=True))
    wasm = job.spec.get("wasm") if isinstance(job.spec, dict) else None
    if isinstance(wasm, dict) and isinstance(wasm.get("module"), str):
        cids.append(wasm["module"])
    canonical = []
    for cid in cids:
        try:
            canonical.append(normalize_cid(cid))
        except InvalidCID:
            continue
    return canonical


def queue_measurement(job: Job, result: JobResult, *, in_store: bool) -> None:
    """A result was recorded: measure it once it is in the store. Notes the job's inputs
    and its result for the copy index."""
    index.note([result.result_cid], IndexedContent.Origin.RESULT)
    index.note(_inputs_of(job), IndexedContent.Origin.INPUT)
    state = Novelty.State.QUEUED if in_store else Novelty.State.NOT_IN_STORE
    _, created = Novelty.objects.get_or_create(
        job=job, defaults={"result_cid": result.result_cid, "state": state}
    )
    if created and in_store:
        NOVELTY.enqueue(job.pk)


def remeasure(job_id: str) -> bool:
    """The result of a job whose novelty waits for the store may be there now (a
    re-execution put it there): queue it again. Whether it was."""
    with transaction.atomic():
        updated = Novelty.objects.filter(job_id=job_id, state=Novelty.State.NOT_IN_STORE).update(
            state=Novelty.State.QUEUED, created_at=timezone.now(), error=""
        )
        if updated:
            index.note(_inputs_of(Job.objects.get(pk=job_id)), IndexedContent.Origin.INPUT)
            NOVELTY.enqueue(job_id)
    return bool(updated)


def claim(*, job_id: str, worker: str) -> Novelty | None:
    if not NOVELTY.claim(job_id, worker=worker):
        return None
    return Novelty.objects.select_related("job").get(pk=job_id)


def claim_next(*, worker: str) -> Novelty | None:
    job_id = NOVELTY.claim_oldest(worker=worker)
    return Novelty.objects.select_related("job").get(pk=job_id) if job_id is not None else None


def renew_lease(*, job_id: str, worker: str) -> bool:
    return NOVELTY.renew(job_id, worker=worker)


def recover_expired() -> dict[str, list[Any]]:
    return NOVELTY.recover_expired(
        lost=lambda attempts: f"the worker measuring this was lost {attempts} times"
    ).as_json()


@dataclass(frozen=True)
class Source:
    cid: str
    kind: str
    job_id: str | None = None

    @property
    def rank(self) -> int:
        return KINDS.index(self.kind)


class _Sources:
    """What each indexed item is to the job measured (a Source), or None when it does not
    count: the job's own result, a later result, an upload nobody blessed. Items are
    classified a batch at a time, in four queries, however many hold a fingerprint."""

    def __init__(self, job: Job, result: JobResult) -> None:
        self.job = job
        self.result = result
        self.inputs = set(_inputs_of(job))
        self.known: dict[int, Source | None] = {}

    def of(self, content_id: int) -> Source | None:
        return self.known.get(content_id)

    def learn(self, content_ids: set[int]) -> None:
        new = content_ids - self.known.keys()
        if not new:
            return
        before = self.result.recorded_at
        cids = dict(IndexedContent.objects.filter(pk__in=new).values_list("pk", "cid"))
        wanted = set(cids.values())
        read_before = set(
            JobInput.objects.filter(cid__in=wanted, job__created_at__lte=before)
            .exclude(job=self.job)
            .values_list("cid", flat=True)
        )
        # Blessed on chain now: DataCap was given for these bytes, whenever that was.
        statuses = eligibility.statuses(wanted, eligibility.as_of_epoch()) if wanted else {}
        earlier: dict[str, str] = {}
        results = (
            JobResult.objects.filter(result_cid__in=wanted, recorded_at__lte=before)
            .exclude(job=self.job)
            .order_by("-recorded_at", "-job_id")  # the earliest written last, so it stays
            .values_list("result_cid", "job_id")
        )
        for result_cid, job_id in results:
            earlier[result_cid] = job_id
        for content_id in new:
            cid = cids.get(content_id)
            self.known[content_id] = (
                None
                if cid is None
                else self._classify(
                    cid, cid in read_before, statuses.get(cid) == "active", earlier.get(cid)
                )
            )

    def _classify(
        self, cid: str, read_before: bool, blessed: bool, earlier: str | None
    ) -> Source | None:
        if cid == self.result.result_cid:  # itself, unless another job gave it first
            return Source(cid, "result", earlier) if earlier is not None else None
        if cid in self.inputs:
            return Source(cid, "input")
        if read_before or blessed:
            return Source(cid, "blessed")
        if earlier is not None:
            return Source(cid, "result", earlier)
        return None


@dataclass
class _View:
    """One way of reading a file, measured: its bytes, and those found in each source."""

    total: int = 0
    found: dict[Source, int] = field(default_factory=dict)

    @property
    def copied(self) -> int:
        return sum(self.found.values())


def _measure_view(stream: Any, sources: _Sources) -> _View:
    view = _View()
    matched: list[tuple[int, int, int, Source]] = []  # start, end, rank, source
    for batch in pieces(stream):
        view.total = max(view.total, max(p.end for p in batch))
        holders = index.owners(p.fingerprint for p in batch)
        sources.learn({content_id for held in holders.values() for content_id in held})
        for piece in batch:
            best: Source | None = None
            for content_id in holders.get(piece.fingerprint, ()):
                source = sources.of(content_id)
                if source is not None and (best is None or source.rank < best.rank):
                    best = source
            if best is None:
                continue
            last = matched[-1] if matched else None
            if last is not None and last[3] == best and last[0] <= piece.start <= last[1]:
                matched[-1] = (last[0], max(last[1], piece.end), last[2], best)
            else:
                matched.append((piece.start, piece.end, best.rank, best))
    matched.sort(key=lambda m: (m[0], m[2]))
    covered = 0
    for start, end, _rank, source in matched:
        added = end - max(start, covered)
        if added > 0:
            view.found[source] = view.found.get(source, 0) + added
            covered = end
    return view


def _unpack_limit(job: Job) -> int:
    """A decompressed view is read up to the job's input limit: more than its inputs cannot
    be a copy of them (and NOVELTY_MAX_BYTES bounds it in any case)."""
    try:
        declared = parse_spec(job.spec).limits.input_bytes
    except SpecError:
        declared = None
    return min(declared or settings.EXECUTOR_MAX_INPUT_BYTES, settings.NOVELTY_MAX_BYTES)


def _measure_file(
    store: Storage, file_cid: str, size: int, sources: _Sources, unpack_limit: int
) -> dict[Source, int]:
    """The bytes of one file found in each source, in the file's stored bytes."""
    best: dict[Source, int] = {}
    for name, stream in index.views(store, file_cid, unpack_limit=unpack_limit):
        try:
            view = _measure_view(stream, sources)
        except (TooLarge, ValueError) as exc:  # a decompressed view only
            log.info("novelty: %s not unpacked: %s", file_cid, exc)
            continue
        if name == "stored":
            best = view.found
        elif view.total and view.copied * size > sum(best.values()) * view.total:
            # A larger share of the decompressed bytes is a copy: count that share of the
            # stored ones.
            best = {s: n * size // view.total for s, n in view.found.items()}
    return best


def measure(novelty: Novelty) -> dict[str, Any]:
    """Measure a claimed row's result; the fields to store."""
    job = novelty.job
    result = JobResult.objects.get(job=job)
    store = storage()
    index.index_pending(cids=_inputs_of(job))
    index.index_pending()
    files = index.files_of(store, result.result_cid, max_bytes=settings.NOVELTY_MAX_BYTES)
    sources = _Sources(job, result)
    found: dict[Source, int] = {}
    unpack_limit = _unpack_limit(job)
    for file_cid, size in files.sizes.items():
        for source, count in _measure_file(store, file_cid, size, sources, unpack_limit).items():
            found[source] = found.get(source, 0) + count
    total = files.total
    copied = min(total, sum(found.values()))
    ranked = sorted(found.items(), key=lambda item: (-item[1], item[0].rank, item[0].cid))
    return {
        "novel_bytes": total - copied,
        "total_bytes": total,
        "sources": [
            {"cid": s.cid, "kind": s.kind, "job_id": s.job_id, "bytes": count}
            for s, count in ranked[:MAX_SOURCES]
        ],
        "method": METHOD,
        "measured_at": timezone.now(),
    }


def run_measurement(novelty: Novelty, *, worker: str) -> str:
    """Measure a row this worker claimed and record the outcome under its lease."""
    try:
        fields = measure(novelty)
        state = Novelty.State.MEASURED
    except ContentNotFound:
        fields, state = {}, Novelty.State.NOT_IN_STORE
    except (index.TooMuch, StorageError) as exc:
        fields, state = {"error": str(exc)[:500]}, Novelty.State.FAILED
    except Exception as exc:  # a bug must not leave the row running
        log.exception("measuring the novelty of job %s failed", novelty.job_id)
        fields = {"error": f"{type(exc).__name__}: {exc}"[:500]}
        state = Novelty.State.FAILED
    NOVELTY.end(novelty.pk, worker=worker, state=state, **fields)
    return state


def waiting() -> Q:
    """Rows a moderator is told are still being measured."""
    return Q(state__in=(Novelty.State.QUEUED, Novelty.State.RUNNING))


def queue_unmeasured() -> int:
    """A Novelty row for each result that has none (recorded before measuring began):
    queued when the result is in the store. How many were made."""
    store = storage()
    made = 0
    for result in JobResult.objects.filter(job__novelty__isnull=True).select_related("job"):
        try:
            in_store = store.has(result.result_cid)
        except StorageError:
            in_store = False
        with transaction.atomic():
            queue_measurement(result.job, result, in_store=in_store)
        made += 1
    return made


def backfill_notes() -> int:
    """Note every job's inputs and results, and what the embedded store pins (uploads among
    them), for the copy index; how many CIDs were looked at."""
    inputs = list(JobInput.objects.values_list("cid", flat=True).distinct())
    results = list(JobResult.objects.values_list("result_cid", flat=True).distinct())
    index.note(inputs, IndexedContent.Origin.INPUT)
    index.note(results, IndexedContent.Origin.RESULT)
    pinned: list[str] = []
    pins = getattr(storage(), "pins", None)  # the embedded store lists them; Kubo is not asked
    if pins is not None:
        pinned = list(pins())
        index.note(pinned, IndexedContent.Origin.UPLOAD)
    return len(set(inputs) | set(results) | set(pinned))


def measure_queued(
    *, worker: str, measure_one: Callable[[Novelty], str], progress: Callable[[str, str], None]
) -> int:
    """Measure every queued result here, one after the other, with `measure_one` (the
    worker's, which renews the lease); `progress(job_id, state)` after each. How many."""
    count = 0
    while (row := claim_next(worker=worker)) is not None:
        count += 1
        progress(row.pk, measure_one(row))
    return count
