"""`manage.py backfill_novelty`: results recorded before measuring began are measured, with
progress output; running it again, in the same process or in a new one on the same database
(a restart), indexes and measures nothing twice."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from django.core.management import call_command

from dashboard.models import ContentChunk, IndexedContent, JobResult, Novelty
from tests.dashboard.novelty.test_bands import add_file, add_result, data, store, submitted
from tests.helpers import database_urls, manage, process_env

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

    again = backfill()
    assert "0 results queued" in again
    assert re.search(r"^measured \d", again, re.M) is None  # nothing measured twice
    # Only what was missing from the store is looked for again; nothing is indexed twice.
    looked = re.findall(r"^indexed \d+/\d+: (\S+) (\w+)", again, re.M)
    assert looked == [(gone.result.result_cid, "missing")]
    assert ContentChunk.objects.count() == chunks
    assert IndexedContent.objects.count() == items
    assert Novelty.objects.get(job=job).measured_at == row.measured_at


SEED = """
from pathlib import Path
from django.conf import settings
from dashboard.models import Job, JobInput, JobResult
from executor.embedded_store import EmbeddedStore
import random
store = EmbeddedStore(Path(settings.DATA_DIR) / "ipfs")
body = random.Random(40).randbytes(1 << 20)
source = store.add_bytes(body)
result = store.add_bytes(body + b"!")
job = Job.objects.create(id="before", engine="wasm", spec={"engine": "wasm"}, spec_digest="0" * 64,
    state="completed")
JobInput.objects.create(job=job, position=0, cid=source, path="/in")
JobResult.objects.create(job=job, result_cid=result, exit_code=0, stdout_cid="", stderr_cid="",
    outputs_cid="", runtime_ms=1)
"""
COUNTS = """
from dashboard.models import ContentChunk, IndexedContent, Novelty
row = Novelty.objects.get(job_id="before")
print(ContentChunk.objects.count(), IndexedContent.objects.count(), row.state, row.novel_bytes,
    row.measured_at.isoformat())
"""


def counts(env: dict[str, str]) -> list[str]:
    done = manage(env, "shell", "--no-imports", "-c", COUNTS)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1].split()


def test_the_index_survives_a_restart_and_a_second_backfill(tmp_path: Path) -> None:
    urls = database_urls(tmp_path)
    try:
        env = process_env(tmp_path, DATABASE_URL=next(urls), IPFS_API_URL="")
        for step in (("migrate", "--noinput"), ("shell", "--no-imports", "-c", SEED)):
            done = manage(env, *step)
            assert done.returncode == 0, done.stderr
        first = manage(env, "backfill_novelty")
        assert first.returncode == 0, first.stderr
        assert "measured 1/1: job before measured" in first.stdout
        chunks, items, state, novel, at = counts(env)
        assert int(chunks) > 100 and int(items) == 2 and state == "measured" and int(novel) <= 1
        second = manage(env, "backfill_novelty")  # a new process: only the database remembers
        assert second.returncode == 0, second.stderr
        assert "0 to index" in second.stdout and "0 results queued" in second.stdout
        assert counts(env) == [chunks, items, state, novel, at]
    finally:
        urls.close()
