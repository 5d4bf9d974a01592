"""The job page gives the context of a decision: who submitted what module, the decision
history, the pieces, the awards and the storage on chain without contradiction, the re-run
diff with the two versions' content, and every time in UTC."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from django.test import Client

from chain_scanner.models import Claim, ProviderAddress
from dashboard.keys.services import create_api_key
from dashboard.models import Decision, Job, JobPiece, Reexecution
from executor.multiaddr import parse_text, to_binary
from tests.awards import award
from tests.base import Personas
from tests.dashboard.pages.test_pages import client_for, text
from tests.e2e.page_data import BLESSED_CID, make_job, stored_result

PIECE = "baga6ea4seaqao7s73y24kcutaosvacpdjgfe5pw76ooefnyqw4ynr3d2y6x2mpq"


@pytest.fixture
def store(settings, tmp_path):  # type: ignore[no-untyped-def]
    settings.DATA_DIR = tmp_path / "data"
    settings.IPFS_API_URL = None
    return settings


@pytest.fixture
def mona(personas: Personas) -> Client:
    return client_for(personas.moderator)


def awarded_job(personas: Personas) -> Job:
    """A verified job whose piece was registered and awarded, with nothing on chain yet."""
    job = make_job("job-awarded", moderation=Job.Moderation.VERIFIED, node=personas.node)
    job.datacap_bytes = 2048
    job.decided_at = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
    job.save()
    Decision.objects.create(
        job=job, action="verify", datacap_bytes=2048, reason="looks right", actor="user:mona",
        user=personas.moderator,
    )  # fmt: skip
    JobPiece.objects.create(
        job=job, piece_cid=PIECE, piece_size=2048, payload_cid="bafyresultjob-awarded",
        node=personas.node,
    )  # fmt: skip
    notary, _ = create_api_key(scope="notary", name="evergreen", actor="test")
    award(job, piece_cid=PIECE, provider="f01234", piece_size=2048, notary=notary)
    return job


def test_after_an_award_the_page_shows_history_pieces_and_awards(
    mona: Client, personas: Personas
) -> None:
    awarded_job(personas)
    body = text(mona.get("/jobs/job-awarded/"))
    history = body.split('id="decision-history"')[1].split("</ol>")[0]
    assert "verify" in history and "mona" in history and "looks right" in history
    assert "2 KiB (2048 bytes)" in history and " UTC" in history
    pieces = body.split('id="pieces"')[1].split("</table>")[0]
    assert PIECE in pieces and "2 KiB" in pieces
    assert personas.node.name in pieces and " UTC" in pieces  # who registered it, when
    awards = body.split('id="awards"')[1].split("</table>")[0]
    assert "evergreen" in awards and "f01234" in awards and "2048 bytes" in awards
    assert " UTC" in awards


def test_no_deal_count_beside_no_verified_deal(mona: Client, personas: Personas) -> None:
    awarded_job(personas)
    body = text(mona.get("/jobs/job-awarded/"))
    assert "No verified deal or claim stores this job's results yet" in body
    # An award is the notary's grant, not a deal: the page must not count it as one.
    assert " 1 deal" not in body and "in 1 deal" not in body
    assert "1 award" in body


def test_claims_show_dates_and_providers_their_address(mona: Client, personas: Personas) -> None:
    awarded_job(personas)
    Claim.objects.create(
        claim_id=99, provider=1234, client=5678, piece_cid=PIECE, piece_size=2048,
        term_min=518400, term_max=1_500_000, term_start=4_000_000, sector=7, height=4_000_000,
    )  # fmt: skip
    url = base64.b64encode(to_binary(parse_text("/ip4/127.0.0.1/tcp/7777/http"))).decode()
    ProviderAddress.objects.create(
        provider="f01234", multiaddrs=[url], checked_at=datetime(2026, 1, 1, tzinfo=UTC)
    )
    body = text(mona.get("/jobs/job-awarded/"))
    chain = body.split('id="chain-storage"')[1].split("</table>")[0]
    assert "4000000" in chain and "2024-06-13 19:20 UTC" in chain  # the claim's start
    assert "2025-11-16 15:20 UTC" in chain  # its end: term_start + term_max
    assert "http://127.0.0.1:7777" in chain  # where f01234 says it serves
    # The input's claim and the epoch its status was read at: epochs with their dates too.
    inputs = body.split('id="inputs"')[1].split("</table>")[0]
    assert "2024-06-13 19:20 UTC" in inputs
    assert "as of epoch 4900000 (2025-04-22 07:20 UTC)" in inputs


def test_the_page_names_the_submitter_and_the_module(
    mona: Client,
    personas: Personas,
    store,  # type: ignore[no-untyped-def]
) -> None:
    module = stored_result(stdout=b"\0asm module bytes")["stdout_cid"]
    key, _ = create_api_key(scope="submitter", name="lab-pipeline", actor="test")
    key.user = personas.moderator
    key.save()
    job = make_job("job-module")
    job.owner = key
    job.spec = {"engine": "wasm", "wasm": {"module": module, "entry_point": "_start"}}
    job.save()
    body = text(mona.get("/jobs/job-module/"))
    facts = body.split('id="job-facts"')[1].split("</dl>")[0]
    assert "lab-pipeline" in facts and key.prefix in facts and "mona" in facts
    assert f'href="/ipfs/{module}"' in facts and "17 bytes" in facts
    assert " UTC" in facts  # created and finished say their zone


def test_the_rerun_diff_shows_both_versions(mona: Client, store) -> None:  # type: ignore[no-untyped-def]
    reported = stored_result(stdout=b"reported <b>bold</b> line\n")
    rerun = stored_result(stdout=b"what the job really prints\n")
    job = make_job("job-diff", cids=reported)
    Reexecution.objects.create(
        job=job, state=Reexecution.State.MISMATCH, reason="policy", requested_by="policy",
        ran_by="host:1", result_cid=rerun["result_cid"], exit_code=0, runtime_ms=3,
        diff=[{"path": "stdout", "reported": reported["stdout_cid"], "rerun": rerun["stdout_cid"]}],
    )  # fmt: skip
    body = text(mona.get("/jobs/job-diff/"))
    diff = body.split('id="reexecution-diff"')[1].split("</table>")[0]
    assert "reported &lt;b&gt;bold&lt;/b&gt; line" in diff  # escaped, never markup
    assert "what the job really prints" in diff
    assert reported["stdout_cid"] in diff and rerun["stdout_cid"] in diff  # whole CIDs


def test_a_diff_shows_at_most_4_kib_a_side(mona: Client, store) -> None:  # type: ignore[no-untyped-def]
    reported = stored_result(stdout=b"a" * 10_000)
    rerun = stored_result(stdout=b"b" * 10_000)
    job = make_job("job-diff", cids=reported)
    Reexecution.objects.create(
        job=job, state=Reexecution.State.MISMATCH, reason="policy", requested_by="policy",
        result_cid=rerun["result_cid"],
        diff=[{"path": "stdout", "reported": reported["stdout_cid"], "rerun": rerun["stdout_cid"]}],
    )  # fmt: skip
    body = text(mona.get("/jobs/job-diff/"))
    diff = body.split('id="reexecution-diff"')[1].split("</table>")[0]
    assert "a" * 4096 in diff and "a" * 4097 not in diff
    assert "b" * 4096 in diff and "b" * 4097 not in diff
    assert "only the first 4 KiB shown" in diff


def test_input_cid_is_on_the_page(mona: Client) -> None:
    make_job("job-1")
    assert BLESSED_CID in text(mona.get("/jobs/job-1/"))


def test_a_failed_job_says_how_its_run_ended(mona: Client) -> None:
    make_job("job-slow", state=Job.State.FAILED)
    make_job("job-trap", state=Job.State.FAILED)
    Job.objects.filter(id="job-slow").update(outcome="timed_out", error="wall-time limit")
    Job.objects.filter(id="job-trap").update(outcome="failed_in_program", error="trapped")
    slow = mona.get("/jobs/job-slow/").content.decode()
    trap = mona.get("/jobs/job-trap/").content.decode()
    assert 'class="pill warn" id="job-outcome"' in slow and ">timed_out<" in slow
    assert "another machine may not end the same way" in slow
    assert 'class="pill" id="job-outcome"' in trap and ">failed_in_program<" in trap
    make_job("job-done")  # completed: the state says it all
    assert 'id="job-outcome"' not in mona.get("/jobs/job-done/").content.decode()


def test_the_job_page_costs_the_same_with_many_pieces_and_awards(
    mona: Client, personas: Personas
) -> None:
    from dashboard.eligibility.selectors import forget_epoch
    from tests.dashboard.pages.test_pages import queries

    job = awarded_job(personas)
    forget_epoch()
    one = queries(mona, "/jobs/job-awarded/")
    notary, _ = create_api_key(scope="notary", name="other-notary", actor="test")
    for n in range(20):
        JobPiece.objects.create(
            job=job, piece_cid=f"{PIECE}{n}", piece_size=2048, payload_cid="x", node=personas.node
        )
        award(job, piece_cid=PIECE, provider=f"f0{n}", piece_size=1, notary=notary)
    forget_epoch()
    assert queries(mona, "/jobs/job-awarded/") == one


def test_an_input_source_provider_shows_its_address(mona: Client) -> None:
    make_job("job-1")
    url = base64.b64encode(to_binary(parse_text("/ip4/127.0.0.1/tcp/7777/http"))).decode()
    ProviderAddress.objects.create(
        provider="f01234", multiaddrs=[url], checked_at=datetime(2026, 1, 1, tzinfo=UTC)
    )
    inputs = text(mona.get("/jobs/job-1/")).split('id="inputs"')[1].split("</table>")[0]
    assert "http://127.0.0.1:7777" in inputs


def test_epochs_convert_from_mainnet_genesis_30_s_each() -> None:
    from dashboard.eligibility.selectors import epoch_time
    from dashboard.templatetags.pages import epoch_utc, utc

    assert epoch_time(0) == datetime(2020, 8, 24, 22, 0, tzinfo=UTC)
    assert epoch_time(2880) == datetime(2020, 8, 25, 22, 0, tzinfo=UTC)  # a day of epochs
    assert epoch_utc(1) == "2020-08-24 22:00 UTC" and epoch_utc(None) == ""
    assert utc(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2026-01-02 03:04:05 UTC"


def test_deals_show_their_epochs_and_dates(mona: Client, personas: Personas) -> None:
    from chain_scanner.models import Deal

    awarded_job(personas)
    Deal.objects.create(
        deal_id=77, piece_cid=PIECE, piece_size=2048, client="f05678", provider="f01234",
        label="", start_epoch=2880, end_epoch=5760, sector_start_epoch=2880,
    )  # fmt: skip
    chain = text(mona.get("/jobs/job-awarded/")).split('id="chain-storage"')[1]
    chain = chain.split("</table>")[0]
    assert "2880" in chain and "2020-08-25 22:00 UTC" in chain
    assert "5760" in chain and "2020-08-26 22:00 UTC" in chain
