"""`manage.py backfill_novelty`: results recorded before measuring began are measured, with
progress output; running it again (as after a restart) indexes and measures nothing twice."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connections

from dashboard.models import ContentChunk, IndexedContent, JobResult, Novelty
from tests.dashboard.novelty.test_bands import add_file, add_result, data, store, submitted

pytestmark = pytest.mark.django_db
__all__ = ["store"]  # the fixture


def backfill(*args: str) -> str:
    out = io.StringIO()
    call_command("backfill_novelty", *args, stdout=out)
    return out.getvalue()


def test_backfill_measures_old_results_and_runs_again_without_duplicates(
    store, tmp_path: Path
) -> None:
    body = data(20)
    source = add_file(store, body)
    job = submitted("old-copy", [source])
    # Recorded the way results were before novelty: no Novelty row, nothing noted.
    JobResult.objects.create(
        job=job,
        result_cid=add_result(store, tmp_path, {"copy.bin": body}),
        exit_code=0,
        stdout_cid="",
        stderr_cid="",
        outputs_cid="",
        size_bytes=len(body),
        car_bytes=len(body),
        runtime_ms=1,
    )
    gone = submitted("gone", [])
    JobResult.objects.create(
        job=gone,
        result_cid="bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy",
        exit_code=0,
        stdout_cid="",
        stderr_cid="",
        outputs_cid="",
        runtime_ms=1,
    )
    first = backfill()
    assert (
        "to index" in first
        and "indexed 1/" in first
        and "measured 1/1: job old-copy measured" in first
    )
    row = Novelty.objects.get(job=job)
    assert row.state == Novelty.State.MEASURED
    assert row.novel_bytes is not None and row.novel_bytes <= 0.01 * len(body) + 5
    assert row.sources[0]["cid"] == source and row.sources[0]["kind"] == "input"
    assert Novelty.objects.get(job=gone).state == Novelty.State.NOT_IN_STORE
    chunks = ContentChunk.objects.count()
    items = IndexedContent.objects.count()
    assert chunks > 0 and IndexedContent.objects.filter(state="indexed").count() >= 2

    connections.close_all()  # as a restarted process finds the database
    again = backfill()
    assert (
        "0 results queued" in again
        and "measured" not in again.split("queued")[-1].split("index:")[0]
    )
    assert ContentChunk.objects.count() == chunks
    assert IndexedContent.objects.count() == items
    assert Novelty.objects.get(job=job).measured_at == row.measured_at
