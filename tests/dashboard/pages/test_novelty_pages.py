"""What the pages say of a result's novelty: the job page's section with its sources, the
risks box and the decision's suggestion, and the queue's column."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from dashboard.models import Novelty
from tests.base import Personas
from tests.dashboard.pages.test_pages import client_for, text
from tests.e2e.page_data import BLESSED_CID, make_job

pytestmark = pytest.mark.django_db


@pytest.fixture
def mona(personas: Personas) -> Client:
    return client_for(personas.moderator)


def copied(job_id: str = "copy-job") -> None:
    make_job("origin-job", size=1000)
    make_job(job_id, size=1000)
    Novelty.objects.filter(job_id=job_id).update(
        novel_bytes=100,
        sources=[
            {"cid": BLESSED_CID, "kind": "input", "job_id": None, "bytes": 600},
            {"cid": "bafyresultorigin-job", "kind": "result", "job_id": "origin-job", "bytes": 300},
        ],
    )


def test_the_job_page_names_the_sources_of_a_copy(mona: Client) -> None:
    copied()
    page = text(mona.get("/jobs/copy-job/"))
    assert "10.0 % new" in page
    assert "100 B of the result's 1000 B" in page
    assert "Less than the 50 % NOVELTY_MIN_PERCENT asks" in page
    assert re.search(r'data-kind="input">.*?this job\'s input.*?60.0 %', page)
    assert re.search(r'the result of job <a class="mono" href="/jobs/origin-job/">', page)
    assert f'href="/ipfs/{BLESSED_CID}"' in page
    assert 'data-risk="novelty_low"' in page
    assert "New data in the result: <strong>100 B</strong> of 1000 B (10.0 %)" in page


@pytest.mark.parametrize(
    ("state", "says"),
    [
        ("queued", "Still being measured (queued)"),
        ("running", "Still being measured (running)"),
        ("not_in_store", "the result is not in this dashboard's store"),
        ("failed", "Measuring failed: too big"),
    ],
)
def test_the_job_page_says_when_novelty_is_not_measured(
    mona: Client, state: str, says: str
) -> None:
    make_job("waiting", size=1000)
    Novelty.objects.filter(job_id="waiting").update(state=state, novel_bytes=None, error="too big")
    page = text(mona.get("/jobs/waiting/"))
    assert says in page
    assert 'data-risk="novelty_not_measured"' in page


def test_the_queue_shows_the_percentage(mona: Client) -> None:
    copied()
    page = text(mona.get("/"))
    assert re.search(
        r'class="novelty"><span class="pill warn">10.0 % new</span> \(most copied from its input\)',
        page,
    )
    assert "<span>100.0 % new</span>" in page  # origin-job, all new
