"""Celery tasks for jobs: thin wrappers over dashboard.jobs and dashboard.job_worker."""

from __future__ import annotations

from celery import shared_task

from dashboard import jobs
from dashboard.job_worker import execute_job, worker_name


@shared_task(name="dashboard.run_job", acks_late=True, ignore_result=True)
def run_job(job_id: str) -> str | None:
    """Run one queued job; a duplicate delivery finds it claimed and does nothing."""
    worker = worker_name()
    job = jobs.claim_job(job_id=job_id, worker=worker)
    if job is None:
        return None
    return execute_job(job, worker=worker)


@shared_task(name="dashboard.recover_jobs", ignore_result=True)
def recover_jobs() -> dict[str, list[str]]:
    """Beat: send jobs whose worker died back to the queue (or fail them after N tries)."""
    return jobs.recover_expired()


@shared_task(name="dashboard.refresh_chain_flags", ignore_result=True)
def refresh_chain_flags() -> int:
    """Beat, after the scanner: flag jobs whose storage on chain needs a moderator's look."""
    from dashboard.notary import refresh_chain_flags as refresh

    return refresh()
