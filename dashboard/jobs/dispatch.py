"""Handing queued work (a job, a re-execution) to a worker once the transaction commits.

Embedded mode (no broker) has executor threads in `manage.py serve` that poll the tables;
this wakes them. With a broker, a Celery task is sent by name, so that the services that
queue work never import the tasks that call them.
"""

from __future__ import annotations

import threading
from datetime import timedelta

from celery import current_app
from django.conf import settings
from django.db import transaction

__all__ = ["RUN_JOB_TASK", "REEXECUTE_TASK", "dispatch", "lease", "wait_for_work", "wake_worker"]

RUN_JOB_TASK = "dashboard.run_job"  # runs one queued job (dashboard/tasks.py)
REEXECUTE_TASK = "dashboard.reexecute"  # runs one queued re-execution (its own queue)

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


def lease() -> timedelta:
    """How long a worker holds running work without renewing it (EXECUTOR_LEASE_S)."""
    return timedelta(seconds=settings.EXECUTOR_LEASE_S)
