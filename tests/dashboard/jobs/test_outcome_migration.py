"""Migration 0024 gives every completed job the outcome `completed` and leaves a failed job's
empty (its outcome was only in its error text); going back drops the column."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("dashboard", "0023_receipts")]
AFTER = [("dashboard", "0024_job_outcome")]


@pytest.mark.django_db(transaction=True)
def test_completed_jobs_completed_failed_ones_unknown_and_back() -> None:
    executor = MigrationExecutor(connection)
    try:
        executor.migrate(BEFORE)
        jobs = executor.loader.project_state(BEFORE).apps.get_model("dashboard", "Job").objects
        for job_id, state in (("done", "completed"), ("broke", "failed"), ("waits", "queued")):
            jobs.create(id=job_id, engine="wasm", spec={}, spec_digest=job_id, state=state)
        executor = MigrationExecutor(connection)
        executor.migrate(AFTER)
        jobs = executor.loader.project_state(AFTER).apps.get_model("dashboard", "Job").objects
        assert dict(jobs.values_list("id", "outcome")) == {
            "done": "completed",
            "broke": "",
            "waits": "",
        }
        executor = MigrationExecutor(connection)
        executor.migrate(BEFORE)
        jobs = executor.loader.project_state(BEFORE).apps.get_model("dashboard", "Job").objects
        assert jobs.count() == 3
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
