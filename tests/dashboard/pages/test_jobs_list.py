"""The jobs list: the queue is its default view; a state filter and a search find decided
jobs too, at a constant number of queries."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client

from dashboard.models import Job
from tests.base import Personas
from tests.dashboard.pages.test_pages import client_for, queries, queue_ids, text
from tests.e2e.page_data import BLESSED_CID, make_job, stored_result


@pytest.fixture
def store(settings, tmp_path):  # type: ignore[no-untyped-def]
    settings.DATA_DIR = tmp_path / "data"
    settings.IPFS_API_URL = None
    return settings


@pytest.fixture
def mona(personas: Personas) -> Client:
    return client_for(personas.moderator)


def some_jobs() -> None:
    make_job("waiting", finished_ago=timedelta(minutes=1))
    make_job("verified", moderation=Job.Moderation.VERIFIED, finished_ago=timedelta(minutes=2))
    make_job("rejected", moderation=Job.Moderation.REJECTED, finished_ago=timedelta(minutes=3))
    make_job("revoked", moderation=Job.Moderation.REVOKED, finished_ago=timedelta(minutes=4))
    make_job("failed", state=Job.State.FAILED, blessed=None, finished_ago=timedelta(minutes=5))


def test_the_list_shows_jobs_awaiting_a_decision_by_default(mona: Client) -> None:
    some_jobs()
    assert queue_ids(mona.get("/")) == ["waiting"]
    assert queue_ids(mona.get("/", {"state": "awaiting"})) == ["waiting"]


def test_the_state_filter_finds_decided_and_failed_jobs(mona: Client) -> None:
    some_jobs()

    def ids(state: str) -> set[str]:
        response = mona.get("/", {"state": state})
        assert response.status_code == 200
        return set(queue_ids(response))

    assert ids("verified") == {"verified"}
    assert ids("rejected") == {"rejected"}
    assert ids("revoked") == {"revoked"}
    assert ids("failed") == {"failed"}
    assert ids("all") == {"waiting", "verified", "rejected", "revoked", "failed"}
    body = text(mona.get("/", {"state": "verified"}))
    assert "1 job matches these filters" in body
    assert 'class="pill state-verified"' in body  # each row says where the job stands


def test_the_state_filter_finds_verifications_awaiting_a_second_approval(mona: Client) -> None:
    some_jobs()
    make_job(
        "held",
        moderation=Job.Moderation.AWAITING_SECOND_APPROVAL,
        finished_ago=timedelta(minutes=6),
    )
    response = mona.get("/", {"state": "awaiting_second_approval"})
    assert response.status_code == 200
    assert queue_ids(response) == ["held"]
    assert "held" not in queue_ids(mona.get("/"))  # not awaiting a first decision


def test_a_search_finds_decided_jobs(mona: Client, store) -> None:  # type: ignore[no-untyped-def]
    cids = stored_result()
    make_job("decided-job", moderation=Job.Moderation.VERIFIED, cids=cids)
    make_job("open-job", blessed=False)
    assert queue_ids(mona.get("/", {"q": "decided-job"})) == ["decided-job"]
    assert queue_ids(mona.get("/", {"q": BLESSED_CID})) == ["decided-job"]
    assert queue_ids(mona.get("/", {"q": cids["result_cid"]})) == ["decided-job"]
    # An explicit state still narrows a search.
    assert queue_ids(mona.get("/", {"q": "decided-job", "state": "awaiting"})) == []
    body = text(mona.get("/", {"q": "decided-job", "state": "awaiting"}))
    assert 'href="/jobs/decided-job/"' in body and "already decided" in body


def test_the_state_filter_keeps_the_query_budget(mona: Client) -> None:
    for n in range(5):
        make_job(f"v-{n}", moderation=Job.Moderation.VERIFIED, finished_ago=timedelta(minutes=n))
    small = queries(mona, "/?state=verified"), queries(mona, "/?state=all&q=v-1")
    for n in range(5, 60):
        make_job(f"v-{n}", moderation=Job.Moderation.VERIFIED, finished_ago=timedelta(minutes=n))
    large = queries(mona, "/?state=verified&page=2"), queries(mona, "/?state=all&q=v-1")
    assert small == large
