"""Reads for the moderator pages: the queue, one job, the audit log and the overview.

Every function here runs a fixed number of SQL queries whatever the table sizes (the page
tests assert it), so the pages cost the same with ten jobs or a hundred thousand.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.core.paginator import Page, Paginator
from django.db import connection
from django.db.models import (
    BigIntegerField,
    Case,
    Count,
    F,
    Func,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Substr, TruncDate
from django.utils import timezone

from chain_scanner.models import Claim, Deal, ProviderAddress
from dashboard.eligibility.locations import provider_urls
from dashboard.models import (
    ApiKey,
    AuditEvent,
    Award,
    Decision,
    Job,
    JobInput,
    JobPiece,
    JobResult,
    Reexecution,
)
from dashboard.notary.selectors import awards_of_job
from executor.cids import InvalidCID, normalize_cid

__all__ = [
    "AuditFilters",
    "JobDetail",
    "QueueFilters",
    "audit_page",
    "datacap_per_day",
    "job_detail",
    "jobs_per_day",
    "node_choices",
    "queue_page",
    "flagged_jobs",
]

QUEUE_PAGE_SIZE = 25
REEXECUTIONS_SHOWN = 20
AUDIT_PAGE_SIZE = 50


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min), timezone.get_current_timezone())


@dataclass
class QueueFilters:
    """What the queue's filter form asks for; every field optional."""

    blessed: str = ""  # "yes": all inputs blessed, "no": not all blessed, "": any
    engine: str = ""
    node: str = ""  # an ApiKey prefix, or "bundled" for the dashboard's own executor
    since: date | None = None
    until: date | None = None
    annotation: str = ""
    q: str = ""  # a job id, or an input or result CID in any form
    state: str = ""  # a key of STATE_FILTERS; "" awaiting a decision, or "all" for a search


# The queue's order: jobs whose inputs are all blessed, then those with an unblessed input,
# then those with no inputs (null), each newest first.
SEGMENTS: tuple[bool | None, ...] = (True, False, None)
MAX_SEARCH_MATCHES = 1000


AWAITING = Q(state=Job.State.COMPLETED, moderation_state=Job.Moderation.PENDING)
# What each state of the jobs list's filter selects.
STATE_FILTERS: dict[str, Q] = {
    "awaiting": AWAITING,
    "verified": Q(moderation_state=Job.Moderation.VERIFIED),
    "rejected": Q(moderation_state=Job.Moderation.REJECTED),
    "revoked": Q(moderation_state=Job.Moderation.REVOKED),
    "failed": Q(state=Job.State.FAILED),
    "all": Q(),
    "awaiting_second_approval": Q(moderation_state=Job.Moderation.AWAITING_SECOND_APPROVAL),
}


def list_state(filters: QueueFilters) -> str:
    """The state the list shows: the one asked for; else every state for a search (a decided
    job is found), else the jobs awaiting a decision."""
    if filters.state in STATE_FILTERS:
        return filters.state
    return "all" if filters.q else "awaiting"


def queue_jobs(filters: QueueFilters) -> QuerySet[Job]:
    """Jobs in the list's state that match the filters, in no particular order."""
    jobs = Job.objects.filter(STATE_FILTERS[list_state(filters)]).select_related(
        "node", "result", "novelty"
    )
    if filters.blessed == "yes":
        jobs = jobs.filter(inputs_blessed=True)
    elif filters.blessed == "no":
        jobs = jobs.filter(Q(inputs_blessed=False) | Q(inputs_blessed__isnull=True))
    if filters.engine:
        jobs = jobs.filter(engine=filters.engine)
    if filters.node == "bundled":
        jobs = jobs.filter(node__isnull=True)
    elif filters.node:
        jobs = jobs.filter(node__prefix=filters.node)
    if filters.since:
        jobs = jobs.filter(finished_at__gte=_day_start(filters.since))
    if filters.until:
        jobs = jobs.filter(finished_at__lt=_day_start(filters.until + timedelta(days=1)))
    if filters.annotation:
        # annotation_index is "|a|b|": a whole-annotation match on every database.
        jobs = jobs.filter(annotation_index__contains=f"|{filters.annotation}|")
    if filters.q:
        jobs = jobs.filter(id__in=_search(filters.q))
    return jobs


def _search(text: str) -> list[str]:
    """Job ids a search names: the id itself, or the jobs with that input or result CID
    (one query, on the CID indexes)."""
    text = text.strip()
    try:
        cid = normalize_cid(text)
    except InvalidCID:
        return [text]
    by_input = JobInput.objects.filter(cid=cid).order_by().values_list("job_id")
    by_result = JobResult.objects.filter(result_cid=cid).order_by().values_list("job_id")
    matches = by_input.union(by_result)[:MAX_SEARCH_MATCHES]
    return [text, *(job_id for (job_id,) in matches)]


class QueueList:
    """The filtered queue as the Paginator sees it: a count and slices.

    Ordering by inputs_blessed with nulls last in one query defeats the job_moderation_queue
    index on PostgreSQL (its DESC column keeps nulls first), so 100,000 rows were sorted on
    every page view. Instead each blessed value is its own segment, read from the index
    newest first: one query for the counts, then one query per segment a page overlaps
    (at most three, usually one).
    """

    ordered = True  # for the Paginator: the order is defined, see SEGMENTS

    def __init__(self, jobs: QuerySet[Job]) -> None:
        self.jobs = jobs
        self._counts: dict[bool | None, int] | None = None

    def counts(self) -> dict[bool | None, int]:
        if self._counts is None:
            # One row of filtered COUNT(*)s rather than a GROUP BY: COUNT(*) reads the index
            # alone on PostgreSQL, and without a GROUP BY SQLite's planner is free to look a
            # searched job up by its key instead of walking the queue index for the grouping.
            # (Counting inputs_blessed, a column of the index, keeps that true.)
            totals = self.jobs.order_by().aggregate(
                all=Count("*"),
                blessed=Count("inputs_blessed", filter=Q(inputs_blessed=True)),
                unblessed=Count("inputs_blessed", filter=Q(inputs_blessed=False)),
            )
            self._counts = {
                True: totals["blessed"],
                False: totals["unblessed"],
                None: totals["all"] - totals["blessed"] - totals["unblessed"],
            }
        return self._counts

    def count(self) -> int:
        return sum(self.counts().values())

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, window: slice) -> list[Job]:
        start, stop = window.start or 0, window.stop
        found: list[Job] = []
        offset = 0
        for value in SEGMENTS:
            size = self.counts().get(value, 0)
            low, high = max(start - offset, 0), min(stop - offset, size)
            if low < high:
                segment = self.jobs.filter(inputs_blessed__isnull=value is None)
                if value is not None:
                    segment = segment.filter(inputs_blessed=value)
                # inputs_blessed is constant within a segment, but naming it lets PostgreSQL
                # read the rows in index order (an IS NULL condition alone does not).
                order = ("-inputs_blessed", "-finished_at", "-id")
                # The page's ids first, then their rows with node and result: a deep page
                # then skips index entries, not joined rows.
                ids = segment.order_by(*order).values("pk")[low:high]
                # The ids carry every filter; the outer query only looks them up by key.
                rows = Job.objects.select_related("node", "result", "novelty").filter(pk__in=ids)
                found.extend(rows.order_by(*order))
            offset += size
        return found


def queue_page(filters: QueueFilters, page: int | str | None) -> Page:
    """One page of the queue: the segment counts, then the page's rows with node and result."""
    # The Paginator only counts and slices, which is all QueueList does.
    queue = QueueList(queue_jobs(filters))
    return Paginator(queue, QUEUE_PAGE_SIZE).get_page(page)  # type: ignore[arg-type]


def node_choices() -> list[tuple[str, str]]:
    """The compute nodes a queue can be filtered by: every node key, revoked ones too."""
    keys = (
        ApiKey.objects.filter(scope=ApiKey.Scope.NODE)
        .order_by("name")
        .values_list("prefix", "name")
    )
    return [("bundled", "bundled executor"), *((p, f"{n} ({p}…)") for p, n in keys)]


@dataclass
class JobDetail:
    job: Job
    result: JobResult | None
    inputs: list[JobInput]
    decisions: list[Decision]
    awarded_bytes: int
    award_count: int
    reexecutions: list[Reexecution]
    pieces: list[JobPiece]
    awards: list[tuple[Award, int]]  # each with this job's share of it


def job_detail(job_id: str) -> JobDetail | None:
    """A job with its submitter, result, inputs, decision history, pieces, awards and
    re-executions: six queries."""
    job = (
        Job.objects.select_related(
            "node",
            "owner",
            "owner__user",
            "result",
            "novelty",
            "bacalhau",
            "bacalhau__orchestrator",
        )
        .filter(id=job_id)
        .first()
    )
    if job is None:
        return None
    try:
        result: JobResult | None = job.result
    except JobResult.DoesNotExist:
        result = None
    awards = awards_of_job(job.id)
    return JobDetail(
        job=job,
        result=result,
        inputs=list(JobInput.objects.filter(job_id=job.id).order_by("position")),
        decisions=list(Decision.objects.filter(job_id=job.id).order_by("created_at", "id")),
        awarded_bytes=sum(share for _, share in awards),
        award_count=len(awards),
        reexecutions=list(
            job.reexecutions.select_related("verifier", "overrun_by").order_by(
                "-created_at", "-id"
            )[:REEXECUTIONS_SHOWN]
        ),
        pieces=list(
            JobPiece.objects.filter(job_id=job.id)
            .select_related("node")
            .order_by("created_at", "id")
        ),
        awards=awards,
    )


def with_epochs(storage: dict[str, Any]) -> dict[str, Any]:
    """`notary.services.chain_storage`'s deals and claims with the epochs they start and end
    at (`start_epoch`, `end_epoch`), which the job page shows with their dates: one query
    for the deals, one for the claims, none when there are none. The API's answer is left
    as it is."""
    deal_ids = [row["id"] for row in storage["deals"]]
    claim_ids = [row["id"] for row in storage["claims"]]
    deals = (
        {
            deal_id: (start, end)
            for deal_id, start, end in Deal.objects.filter(deal_id__in=deal_ids).values_list(
                "deal_id", "start_epoch", "end_epoch"
            )
        }
        if deal_ids
        else {}
    )
    claims = (
        {
            claim_id: (start, start + term_max)
            for claim_id, start, term_max in Claim.objects.filter(
                claim_id__in=claim_ids
            ).values_list("claim_id", "term_start", "term_max")
        }
        if claim_ids
        else {}
    )
    for rows, epochs in ((storage["deals"], deals), (storage["claims"], claims)):
        for row in rows:
            row["start_epoch"], row["end_epoch"] = epochs.get(row["id"], (None, None))
    return storage


def provider_urls_known(providers: list[str]) -> dict[str, list[str]]:
    """The HTTP URLs storage providers publish on chain, as last read (ProviderAddress): one
    query, never a call to Lotus from a page."""
    rows = ProviderAddress.objects.in_bulk([p for p in dict.fromkeys(providers) if p])
    return {provider: provider_urls(row) for provider, row in rows.items()}


@dataclass
class AuditFilters:
    actor: str = ""
    action: str = ""
    job: str = ""  # a job id: the events whose target is that job
    since: date | None = None
    until: date | None = None


def audit_page(filters: AuditFilters, page: int | str | None) -> Page:
    events = AuditEvent.objects.all()
    if filters.actor:
        # People type "mona"; the log says "user:mona" (or "api_key:…", "test").
        events = events.filter(Q(actor=filters.actor) | Q(actor=f"user:{filters.actor}"))
    if filters.action:
        events = events.filter(action=filters.action)
    if filters.job:
        events = events.filter(target=f"job:{filters.job}")
    if filters.since:
        events = events.filter(created_at__gte=_day_start(filters.since))
    if filters.until:
        events = events.filter(created_at__lt=_day_start(filters.until + timedelta(days=1)))
    return Paginator(events.order_by("-created_at", "-id"), AUDIT_PAGE_SIZE).get_page(page)


def audit_actions() -> list[str]:
    return list(AuditEvent.objects.order_by("action").values_list("action", flat=True).distinct())


def _day(field: str) -> Func:
    """The UTC day of a timestamp column, grouped on by the overview.

    TruncDate on SQLite calls a Python function per row (slow with many jobs, bench_pages);
    SQLite stores timestamps as UTC text, so its first ten characters are the
    day. TIME_ZONE is UTC, so both give the same days.
    """
    if connection.vendor == "sqlite":
        return Substr(field, 1, 10)
    return TruncDate(field)


def _as_date(value: date | str) -> date:
    return date.fromisoformat(value) if isinstance(value, str) else value


def jobs_per_day(days: int) -> tuple[list[date], dict[str, list[int]]]:
    """Jobs created per day over the last `days` days, one series per state."""
    today = timezone.localdate()
    first = today - timedelta(days=days - 1)
    rows = (
        Job.objects.filter(created_at__gte=_day_start(first))
        .annotate(day=_day("created_at"))
        .values("day", "state")
        .annotate(n=Count("id"))
    )
    axis = [first + timedelta(days=i) for i in range(days)]
    series = {state: [0] * days for state in Job.State.values}
    for row in rows:
        index = (_as_date(row["day"]) - first).days
        if 0 <= index < days:
            series[row["state"]][index] += row["n"]
    return axis, series


def datacap_per_day(days: int) -> tuple[list[date], list[int], list[int]]:
    """DataCap verified per day (revocations subtracted) and its running total, which starts
    from everything verified before the window."""
    today = timezone.localdate()
    first = today - timedelta(days=days - 1)
    signed = Case(
        When(action=Decision.Action.VERIFY, then=F("datacap_bytes")),
        # A revocation withdraws the amount the job was verified with.
        When(action=Decision.Action.REVOKE, then=-F("job__datacap_bytes")),
        default=Value(0),
        output_field=BigIntegerField(),
    )
    decisions = Decision.objects.filter(action__in=[Decision.Action.VERIFY, Decision.Action.REVOKE])
    before = decisions.filter(created_at__lt=_day_start(first)).aggregate(total=Sum(signed))
    rows = (
        decisions.filter(created_at__gte=_day_start(first))
        .annotate(day=_day("created_at"))
        .values("day")
        .annotate(total=Sum(signed))
    )
    axis = [first + timedelta(days=i) for i in range(days)]
    daily = [0] * days
    for row in rows:
        index = (_as_date(row["day"]) - first).days
        if 0 <= index < days:
            daily[index] += row["total"] or 0
    running: list[int] = []
    total = before["total"] or 0
    for amount in daily:
        total += amount
        running.append(total)
    return axis, daily, running


def moderation_counts() -> dict[str, Any]:
    """Jobs awaiting a decision and decided, for the overview's headline numbers."""
    counts = Job.objects.aggregate(
        pending=Count(
            "id",
            filter=Q(state=Job.State.COMPLETED, moderation_state=Job.Moderation.PENDING),
        ),
        verified=Count("id", filter=Q(moderation_state=Job.Moderation.VERIFIED)),
        rejected=Count("id", filter=Q(moderation_state=Job.Moderation.REJECTED)),
        revoked=Count("id", filter=Q(moderation_state=Job.Moderation.REVOKED)),
        verified_bytes=Sum("datacap_bytes", filter=Q(moderation_state=Job.Moderation.VERIFIED)),
    )
    counts["verified_bytes"] = counts["verified_bytes"] or 0
    return counts


def api_keys() -> list[ApiKey]:
    return list(ApiKey.objects.select_related("user").order_by("revoked_at", "-created_at"))


FLAGGED_SHOWN = 20


def caught_nodes() -> set[int]:
    """Node keys with a WASM job whose latest re-execution mismatched: one query."""
    return set(
        Job.objects.filter(
            engine=Job.Engine.WASM,
            reexecution_verdict=Reexecution.State.MISMATCH,
            node__isnull=False,
        )
        .order_by()
        .values_list("node_id", flat=True)
        .distinct()
    )


def flagged_jobs() -> list[Job]:
    """Jobs (decided or not) whose storage on chain needs a look, and verified jobs back in
    the queue because a re-execution mismatched after their verification: one query, newest
    first."""
    return list(
        Job.objects.filter(~Q(chain_flags="") | Q(mismatch_review=True))
        .only("id", "moderation_state", "chain_flags", "mismatch_review", "decided_at")
        .order_by("-decided_at", "-id")[:FLAGGED_SHOWN]
    )


def awaiting_approval() -> list[Job]:
    """Verifications over DATACAP_SECOND_APPROVAL_BYTES waiting for a second moderator: one
    query, oldest first (they hold DataCap back longest)."""
    return list(
        Job.objects.filter(moderation_state=Job.Moderation.AWAITING_SECOND_APPROVAL)
        .only("id", "datacap_bytes", "decided_at")
        .order_by("decided_at", "id")[:FLAGGED_SHOWN]
    )
