"""When and how far novelty is measured: by the worker after a result, never on the request
that records it; again once a result reaches the store; within its bounds against hostile
results (a decompression bomb, too many files, too many bytes)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from django.test import Client

from dashboard.content import index
from dashboard.keys.services import create_api_key
from dashboard.models import IndexedContent, Novelty
from dashboard.novelty import services as novelty
from dashboard.worker import run_once
from tests.base import Personas
from tests.dashboard.novelty.test_bands import (
    add_file,
    add_result,
    data,
    measure_all,
    record,
    store,
    submitted,
)

pytestmark = pytest.mark.django_db
__all__ = ["store"]  # the fixture


def test_recording_a_result_only_queues_it_and_the_worker_measures_it(
    store, tmp_path: Path
) -> None:
    body = data(30)
    source = add_file(store, body)
    job = submitted("queued-novelty", [source])
    record(job, add_result(store, tmp_path, {"copy.bin": body}))
    row = Novelty.objects.get(job=job)
    assert row.state == Novelty.State.QUEUED and row.novel_bytes is None
    # Nothing was read on the request: the result and input are noted, not indexed.
    assert set(IndexedContent.objects.values_list("state", flat=True)) == {"pending"}
    assert run_once("worker-1") == f"novelty {job.id}"
    row.refresh_from_db()
    assert row.state == Novelty.State.MEASURED and row.lease_owner == "" and row.attempts == 1
    assert row.sources[0]["cid"] == source
    assert run_once("worker-1") is None


def test_a_result_not_in_the_store_is_measured_once_it_gets_there(store, tmp_path: Path) -> None:
    body = data(31)
    source = add_file(store, body)
    job = submitted("external", [source])
    elsewhere = add_result(store.__class__(tmp_path / "node"), tmp_path, {"copy.bin": body})
    record(job, elsewhere)
    assert Novelty.objects.get(job=job).state == Novelty.State.NOT_IN_STORE
    assert novelty.claim_next(worker="w") is None
    # A re-execution that matched wrote the same result into our store.
    assert add_result(store, tmp_path, {"copy.bin": body}) == elsewhere
    assert novelty.remeasure(job.id) is True
    assert novelty.remeasure(job.id) is False  # queued already
    measure_all()
    row = Novelty.objects.get(job=job)
    assert row.state == Novelty.State.MEASURED and row.novel_bytes is not None
    assert row.novel_bytes < 0.01 * row.total_bytes


def test_a_decompression_bomb_is_read_only_up_to_the_jobs_input_limit(
    store, tmp_path: Path, settings
) -> None:
    settings.EXECUTOR_MAX_INPUT_BYTES = 4 << 20
    bomb = gzip.compress(bytes(64 << 20))  # 64 MiB of zeros in about 64 KiB
    source = add_file(store, data(32, 4096))
    job = submitted("bomb", [source])
    record(job, add_result(store, tmp_path, {"bomb.gz": bomb}))
    measure_all()
    row = Novelty.objects.get(job=job)
    assert row.state == Novelty.State.MEASURED  # measured as it is stored
    assert row.total_bytes == len(bomb) + len(b"done\n") + len(b"0")  # stdout and exitCode


def test_a_result_larger_than_novelty_max_bytes_fails_with_a_reason(
    store, tmp_path: Path, settings
) -> None:
    settings.NOVELTY_MAX_BYTES = 1 << 20
    job = submitted("huge", [])
    record(job, add_result(store, tmp_path, {"a.bin": data(33, 2 << 20)}))
    measure_all()
    row = Novelty.objects.get(job=job)
    assert row.state == Novelty.State.FAILED
    assert "NOVELTY_MAX_BYTES" in row.error


def test_too_many_files_fail_the_measurement(store, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(index, "MAX_FILES", 3)
    job = submitted("many", [])
    record(job, add_result(store, tmp_path, {f"f{i}": bytes([i]) for i in range(5)}))
    measure_all()
    row = Novelty.objects.get(job=job)
    assert row.state == Novelty.State.FAILED and "more than 3" in row.error


def test_an_upload_is_noted_and_indexed_off_the_request(
    store, client: Client, personas: Personas
) -> None:
    body = data(34, 100_000)
    response = client.post(
        "/api/v1/content",
        data=body,
        content_type="application/octet-stream",
        HTTP_AUTHORIZATION=f"Bearer {personas.node_key}",
    )
    assert response.status_code == 201, response.content
    cid = json.loads(response.content)["cid"]
    item = IndexedContent.objects.get(cid=cid)
    assert item.origin == "upload" and item.state == "pending"
    index.index_pending()
    item.refresh_from_db()
    assert item.state == "indexed" and item.bytes == len(body) and item.chunks > 0


def test_the_notary_is_told_how_new_a_result_is(
    store, tmp_path: Path, client: Client, personas: Personas
) -> None:
    _, notary = create_api_key(scope="notary", name="evergreen", actor="test")
    body = data(35)
    source = add_file(store, body)
    job = submitted("for-notary", [source])
    result = add_result(store, tmp_path, {"copy.bin": body})
    record(job, result)
    measure_all()
    answer = client.get(
        f"/api/v1/notary/verifications/{result}", HTTP_AUTHORIZATION=f"Bearer {notary}"
    )
    assert answer.status_code == 200, answer.content
    found = answer.json()["novelty"]
    assert found["state"] == "measured" and found["percent"] < 1
    assert found["sources"][0] == {
        "cid": source,
        "kind": "input",
        "job_id": None,
        "bytes": len(body),
    }


def test_a_chunk_held_by_many_items_costs_a_few_queries(
    store, tmp_path: Path, django_assert_max_num_queries
) -> None:
    """A hostile node may upload the same bytes in a thousand wrappers: the items holding a
    fingerprint are classified a batch at a time, not one query each."""
    common = data(36, 64 * 1024)
    for n in range(300):
        index.note([add_file(store, common + data(100 + n, 3000))], IndexedContent.Origin.UPLOAD)
    index.index_pending()
    job = submitted("common", [])
    record(job, add_result(store, tmp_path, {"c.bin": common}))
    index.index_pending()
    row = novelty.claim_next(worker="w")
    assert row is not None
    with django_assert_max_num_queries(20):
        fields = novelty.measure(row)
    assert fields["novel_bytes"] == fields["total_bytes"]  # unblessed uploads are no source
