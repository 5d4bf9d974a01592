"""Queues of work run under a lease: bundled jobs, re-executions and novelty measurements, one
helper for all.

A row waits `queued`. A worker claims it (the oldest first) with a conditional UPDATE that
moves it to `running` under a lease of EXECUTOR_LEASE_S and counts the attempt; a thread
renews the lease while the work runs (`LeaseKeeper`); the outcome is written with a
conditional UPDATE that holds only while the worker's lease does, so a worker that lost its
lease (killed, or too slow) never records anything. `recover_expired` sends rows whose
worker stopped renewing back to the queue, or fails them after EXECUTOR_MAX_ATTEMPTS.

Queued work is handed to a worker once the transaction commits (`dispatch`): embedded mode
(no broker) has executor threads in `manage.py serve` that poll the tables, which this
wakes; with a broker, the queue's Celery task is sent by name, so that the services that
queue work never import the tasks that run it. The lease columns are written by
chain_scanner.leases, as the scanner's passes are.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import close_old_connections, transaction
from django.db.models import F, Model, Q, QuerySet
from django.utils import timezone

from chain_scanner import leases

__all__ = [
    "MEASURE_NOVELTY_TASK",
    "REEXECUTE_TASK",
    "RUN_JOB_TASK",
    "LeaseKeeper",
    "Queue",
    "Recovered",
    "dispatch",
    "lease_length",
    "wait_for_work",
    "wake_worker",
]

RUN_JOB_TASK = "dashboard.run_job"  # runs one queued job (dashboard/tasks.py)
REEXECUTE_TASK = "dashboard.reexecute"  # runs one queued re-execution (its own queue)
MEASURE_NOVELTY_TASK = "dashboard.measure_novelty"  # measures one result's novelty

# The states every queued model spells these ways (Job.State, Reexecution.State).
QUEUED, RUNNING, FAILED = "queued", "running", "failed"
CLAIM_AMONG = 5  # queued rows tried per claim: another worker may take the oldest first

_work_queued = threading.Event()


def wait_for_work(timeout: float) -> None:
    """The embedded worker's sleep: until work is queued or `timeout` seconds pass."""
    _work_queued.wait(timeout)
    _work_queued.clear()


def wake_worker() -> None:
    """Let the embedded worker look for work now rather than at its next poll."""
    _work_queued.set()


def dispatch(task: str, arg: str | int) -> None:
    """Hand queued work to a worker once the transaction commits."""
    if settings.CELERY_TASK_ALWAYS_EAGER:
        # Running the task eagerly would run the work inside the web request.
        transaction.on_commit(wake_worker)
        return
    transaction.on_commit(lambda: current_app.send_task(task, args=[arg]))


def lease_length() -> timedelta:
    """How long a worker holds running work without renewing it (EXECUTOR_LEASE_S)."""
    return timedelta(seconds=settings.EXECUTOR_LEASE_S)


@dataclass(frozen=True)
class Recovered:
    requeued: list[Any] = field(default_factory=list)
    failed: list[Any] = field(default_factory=list)

    def as_json(self) -> dict[str, list[Any]]:
        return {"requeued": self.requeued, "failed": self.failed}


@dataclass(frozen=True)
class Queue:
    """The rows of `model` that `members` selects, run by the Celery task `task`. A row must
    also match `runnable` to be claimed or to keep its lease (jobs: not asked to cancel)."""

    model: type[Model]
    task: str
    members: Q = field(default_factory=Q)
    runnable: Q = field(default_factory=Q)

    def _rows(self, pk: Any = None) -> QuerySet[Any]:
        rows = self.model._default_manager.all()
        return rows if pk is None else rows.filter(pk=pk)

    def enqueue(self, pk: Any) -> None:
        """A row was queued (or queued again) in this transaction: wake a worker for it."""
        dispatch(self.task, pk)

    def claim(self, pk: Any, *, worker: str, **changes: Any) -> bool:
        """Take the queued row `pk` for `worker` (with `changes` in the same UPDATE); False
        when someone else has it."""
        now = timezone.now()
        queued = self._rows(pk).filter(self.members, self.runnable, state=QUEUED)
        taken = leases.take(
            queued,
            owner=worker,
            length=lease_length(),
            state=RUNNING,
            started_at=now,
            attempts=F("attempts") + 1,
            **changes,
        )
        return taken == 1

    def claim_oldest(self, *, worker: str, among: Q | None = None, **changes: Any) -> Any | None:
        """The key of the oldest queued row (of those `among` selects) this worker claimed;
        None when none is queued."""
        queued = self._rows().filter(self.members, among or Q(), state=QUEUED)
        for pk in queued.order_by("created_at").values_list("pk", flat=True)[:CLAIM_AMONG]:
            if self.claim(pk, worker=worker, **changes):
                return pk
        return None

    def waiting(self) -> bool:
        """Whether a row is queued that a worker could claim now."""
        return self._rows().filter(self.members, self.runnable, state=QUEUED).exists()

    def renew(self, pk: Any, *, worker: str, among: Q | None = None) -> bool:
        """Extend `worker`'s lease (while the row matches `among`); False when the row is no
        longer its to run."""
        running = self._rows(pk).filter(self.runnable, among or Q(), state=RUNNING)
        return leases.renew(running, owner=worker, length=lease_length())

    def give_back(self, pk: Any, *, worker: str, **changes: Any) -> bool:
        """Put a running row back in the queue, with `changes`, because its worker stopped it
        on purpose (not lost: the caller says what to count); only while `worker` holds it."""
        running = self._rows(pk).filter(state=RUNNING)
        if not leases.release(running, owner=worker, state=QUEUED, **changes):
            return False
        self.enqueue(pk)
        return True

    def end(self, pk: Any, *, worker: str | None, **outcome: Any) -> bool:
        """Write a running row's outcome (its final state among it) and give its lease back,
        only while `worker` holds the lease (None: whoever does)."""
        running = self._rows(pk).filter(state=RUNNING)
        return leases.release(running, owner=worker, finished_at=timezone.now(), **outcome)

    def recover_expired(
        self,
        *,
        lost: Callable[[int], str],
        on_failed: Callable[[Any, str], None] | None = None,
        now: datetime | None = None,
        overdue: Q | None = None,
        on_taken: Callable[[Any], None] | None = None,
        **changes: Any,
    ) -> Recovered:
        """Running rows whose worker stopped renewing (or, with `overdue`, the running rows
        it selects, renewed or not): back to the queue, or failed with the error
        `lost(attempts)` once EXECUTOR_MAX_ATTEMPTS workers were lost running them
        (`on_failed(pk, error)` in the same transaction). `changes` go in the same UPDATE, and
        `on_taken(pk)` is called in its transaction."""
        now = now or timezone.now()
        found = Recovered()

        def due(rows: QuerySet[Any]) -> QuerySet[Any]:
            return rows.filter(overdue) if overdue is not None else leases.expired(rows, now=now)

        running = self._rows().filter(self.members, state=RUNNING)
        for pk, attempts, owner in due(running).values_list("pk", "attempts", "lease_owner"):
            # Still the same lease: a worker that renewed in the meantime keeps it.
            stale = due(self._rows(pk).filter(state=RUNNING))
            with transaction.atomic():
                if attempts < settings.EXECUTOR_MAX_ATTEMPTS:
                    if leases.release(stale, owner=owner, state=QUEUED, **changes):
                        found.requeued.append(pk)
                        self.enqueue(pk)
                        if on_taken is not None:
                            on_taken(pk)
                    continue
                error = lost(attempts)
                failed = {"state": FAILED, "finished_at": now, "error": error, **changes}
                if leases.release(stale, owner=owner, **failed):
                    found.failed.append(pk)
                    if on_taken is not None:
                        on_taken(pk)
                    if on_failed is not None:
                        on_failed(pk, error)
        return found


class LeaseKeeper(threading.Thread):
    """Renews a lease every third of it, and looks for a cancel every second, while work
    runs; either a cancel or a lost lease (the work was recovered elsewhere) sets
    `stop_run`, and `lost` tells which."""

    def __init__(self, name: str, renew: Callable[[], bool], cancelled: Callable[[], bool]) -> None:
        super().__init__(name=f"lease-{name}", daemon=True)
        self.renew = renew
        self.cancelled = cancelled
        self.stopped = threading.Event()
        self.stop_run = threading.Event()
        self.lost = False

    def run(self) -> None:
        renew_every = max(0.2, settings.EXECUTOR_LEASE_S / 3)
        look_every = min(1.0, renew_every)
        renewed = time.monotonic()
        try:
            while not self.stopped.wait(look_every):
                if time.monotonic() - renewed >= renew_every:
                    if not self.renew():
                        self.lost = not self.cancelled()
                        self.stop_run.set()
                        return
                    renewed = time.monotonic()
                elif self.cancelled():
                    self.stop_run.set()
                    return
        finally:
            close_old_connections()

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=5)
