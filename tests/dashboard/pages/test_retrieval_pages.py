"""The pages show where inputs came from: per input on the job page (what blessed it, which
provider and URL served it, how it was verified, bytes and time, every attempt), and per
provider on the Nodes page (the record nodes reported, labelled as theirs)."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from dashboard.jobs import provenance
from dashboard.models import JobInput, JobResult
from tests.base import Personas
from tests.e2e.page_data import BLESSED_CID, SOURCE, make_job

pytestmark = pytest.mark.django_db

URL = "http://127.0.0.1:7777/piece/baga6ea4seaqao7s73y24kcutaosvacpdjgfe5pw76ooefnyqw4ynr3d2y6x2mpq"


def text(response) -> str:  # type: ignore[no-untyped-def]
    return re.sub(r"\s+", " ", response.content.decode())


@pytest.fixture
def mona(personas: Personas) -> Client:
    client = Client()
    client.force_login(personas.moderator)
    return client


def reported(verified: str = "piece") -> list[dict]:
    inputs = provenance.read_inputs(
        [
            {
                "cid": BLESSED_CID,
                "path": "/data/in.txt",
                "verified": verified,
                "provider": "f01234",
                "url": URL,
                "bytes": 2048,
                "seconds": 0.25,
                "attempts": [
                    {"provider": "f09", "url": "http://10.0.0.9/piece/x", "ok": False,
                     "reason": "http 404", "bytes": 0, "seconds": 0.1},
                    {"provider": "f01234", "url": URL, "ok": True, "reason": None,
                     "bytes": 2048, "seconds": 0.25},
                ],
            }
        ]
    )  # fmt: skip
    assert inputs is not None
    return inputs


def test_the_job_page_shows_each_input_s_provenance(mona: Client) -> None:
    make_job("job-1")
    JobInput.objects.filter(job_id="job-1").update(sources=[{**SOURCE, "status": "active"}])
    JobResult.objects.filter(job_id="job-1").update(inputs=reported())
    body = text(mona.get("/jobs/job-1/"))
    assert "by claim 12345" in body  # what blessed it when the job ran
    assert "verified as a piece" in body
    assert "provider f01234" in body and URL in body
    assert "2 KiB in 0.25 s" in body
    assert "2 attempts" in body
    assert "failed: http 404 — f09" in body and "ok — f01234" in body


def test_an_input_fetched_block_by_block_or_not_reported(mona: Client) -> None:
    make_job("job-1")
    make_job("job-2")
    JobResult.objects.filter(job_id="job-1").update(inputs=reported("blocks"))
    assert "verified block by block" in text(mona.get("/jobs/job-1/"))
    body = text(mona.get("/jobs/job-2/"))
    assert "not reported" in body and "verified as" not in body


def test_a_report_that_is_not_this_input_is_not_shown_as_it(mona: Client) -> None:
    make_job("job-1")
    other = reported()
    other[0]["path"] = "/elsewhere"  # stored before a spec changed, say: not this input
    JobResult.objects.filter(job_id="job-1").update(inputs=other)
    assert "not reported" in text(mona.get("/jobs/job-1/"))


def test_the_nodes_page_shows_what_nodes_reported_per_provider(mona: Client) -> None:
    empty = text(mona.get("/nodes/"))
    assert "No node has reported fetching an input from a provider yet" in empty
    provenance.record_retrievals(reported())
    provenance.record_retrievals(reported())
    body = text(mona.get("/nodes/"))
    assert "(reported by nodes)" in body
    table = body.split('id="provider-retrievals"')[1].split("</table>")[0]
    rows = re.findall(r"<tr>(.*?)</tr>", table)
    cells = [c for c in (re.findall(r"<td[^>]*>(.*?)</td>", row) for row in rows) if c]
    # most tried first: f01234 two successes, 4 KiB in 0.5 s; f09 two failures
    assert [c[0] for c in cells] == ["f01234", "f09"]
    assert cells[0][1:4] == ["2", "2", "none"]
    assert cells[0][4] == "4 KiB" and cells[0][5] == "8192"
    assert cells[1][1:3] == ["2", "0"] and "http 404: 2" in cells[1][3]
    assert cells[1][5] == "—"
