"""Pieces and the notary API: every refusal path, auth, idempotency, and racing awards."""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path

import pytest
from django.db import close_old_connections, connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from chain_scanner.models import Claim
from dashboard.errors import DomainError
from dashboard.jobs import services as jobs
from dashboard.models import AuditEvent, Award, Job, JobPiece
from dashboard.moderation import services as moderation
from dashboard.notary import awards
from dashboard.notary import services as notary
from dashboard.notary.selectors import awarded_bytes
from dashboard.worker import execute_job
from executor.commp import commp
from executor.embedded_store import EmbeddedStore
from executor.spec import parse_spec
from tests.awards import award
from tests.base import ACCEPT_RISKS, Personas
from tests.dashboard.chain_rows import deal, scanned_at
from tests.executor import wat_modules as wat

HOLDER = "f01234"  # the node persona's provider


@pytest.fixture(autouse=True)
def uncapped(settings) -> None:  # type: ignore[no-untyped-def]
    """These tests are about awards, not DATACAP_MAX_OVER_SUGGESTION: any amount goes."""
    settings.DATACAP_MAX_OVER_SUGGESTION = 1 << 40


@pytest.fixture
def store(settings, tmp_path: Path) -> EmbeddedStore:
    settings.DATA_DIR = tmp_path / "data"
    settings.IPFS_API_URL = None
    settings.EXECUTOR_PROVIDER = HOLDER
    return EmbeddedStore(settings.DATA_DIR / "ipfs")


def completed_job(personas: Personas, store: EmbeddedStore, code: int = 0) -> Job:
    """A bundled job run for real, its result held by HOLDER."""
    module = store.add_bytes(wat.exit_with(code))
    spec = parse_spec({"engine": "wasm", "wasm": {"module": module}})
    job, _ = jobs.submit_job(key=personas.node, spec=spec)
    claimed = jobs.claim_job(job_id=job.id, worker="w")
    assert claimed is not None and execute_job(claimed, worker="w") == "completed"
    return Job.objects.select_related("result").get(id=job.id)


def piece_of(store: EmbeddedStore, cid: str, size: int | None = None):  # type: ignore[no-untyped-def]
    car = io.BytesIO()
    store.export_car(cid, car)
    return commp(car.getvalue(), piece_size=size)


def post(client: Client, key: str, path: str, body: object):  # type: ignore[no-untyped-def]
    return client.post(
        path,
        data=json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )


def get(client: Client, key: str, path: str):  # type: ignore[no-untyped-def]
    return client.get(path, HTTP_AUTHORIZATION=f"Bearer {key}")


@pytest.mark.django_db
def test_piece_registration_recomputes_commp(client: Client, personas: Personas, store) -> None:
    job = completed_job(personas, store)
    result_cid = job.result.result_cid
    piece = piece_of(store, result_cid)
    path = f"/api/v1/jobs/{job.id}/pieces"
    body = {"piece_cid": piece.cid, "piece_size": piece.size, "payload_cid": result_cid}
    assert post(client, personas.other_node_key, path, body).status_code == 403
    assert post(client, personas.notary_key, path, body).status_code == 403
    wrong = piece_of(store, job.result.stdout_cid)
    refused = post(client, personas.node_key, path, dict(body, piece_cid=wrong.cid))
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "piece_mismatch")
    assert piece.cid in refused.json()["error"]["message"]
    assert AuditEvent.objects.filter(action="piece.refuse", target=f"job:{job.id}").count() == 1
    other_payload = post(
        client, personas.node_key, path, dict(body, payload_cid=job.result.stdout_cid)
    )
    assert other_payload.json()["error"]["code"] == "payload_mismatch"
    too_small = post(client, personas.node_key, path, dict(body, piece_size=128))
    assert too_small.json()["error"]["code"] in ("piece_size_mismatch", "piece_mismatch")
    not_pow2 = post(client, personas.node_key, path, dict(body, piece_size=1000))
    assert not_pow2.status_code == 400 and "piece_size" in not_pow2.json()["error"]["fields"]
    not_piece = post(client, personas.node_key, path, dict(body, piece_cid=result_cid))
    assert not_piece.status_code == 400
    ok = post(client, personas.node_key, path, body)
    assert ok.status_code == 201 and ok.json()["piece_cid"] == piece.cid
    assert post(client, personas.node_key, path, body).status_code == 200
    # padding earns no DataCap: a larger piece of the same CAR is refused, naming the size
    bigger = piece_of(store, result_cid, piece.size * 4)
    padded = post(
        client, personas.node_key, path, dict(body, piece_cid=bigger.cid, piece_size=bigger.size)
    )
    assert (padded.status_code, padded.json()["error"]["code"]) == (409, "piece_too_large")
    assert padded.json()["error"]["fields"] == {"piece_size": piece.size}
    assert JobPiece.objects.filter(job=job).count() == 1


@pytest.mark.django_db
def test_awards_and_every_refusal(client: Client, personas: Personas, store) -> None:
    job = completed_job(personas, store)
    result_cid = job.result.result_cid
    piece = piece_of(store, result_cid)
    award = {
        "cid": result_cid,
        "provider": HOLDER,
        "piece_cid": piece.cid,
        "piece_size": piece.size,
    }

    def award_code(body: dict, key: str = personas.notary_key) -> tuple[int, str | None]:
        response = post(client, key, "/api/v1/notary/awards", body)
        return response.status_code, response.json().get("error", {}).get("code")

    assert award_code(award) == (409, "not_verified")  # pending
    verification = get(client, personas.notary_key, f"/api/v1/notary/verifications/{result_cid}")
    assert verification.status_code == 200 and verification.json()["verified"] is False
    assert verification.json()["reason"]["code"] == "not_moderated"
    moderation.decide(
        job_id=job.id,
        user=personas.moderator,
        decision="verify",
        datacap=piece.size * 2,
        **ACCEPT_RISKS,
    )
    assert award_code(award) == (409, "unknown_piece")
    post(client, personas.node_key, f"/api/v1/jobs/{job.id}/pieces",
         {"piece_cid": piece.cid, "piece_size": piece.size, "payload_cid": result_cid})  # fmt: skip
    assert award_code(dict(award, provider="f09")) == (409, "wrong_provider")
    assert award_code(dict(award, piece_size=piece.size * 2)) == (409, "piece_size_mismatch")
    assert award_code(award, personas.node_key)[0] == 403
    assert award_code(award, personas.moderator_key)[0] == 403
    assert post(client, "fpk_nope", "/api/v1/notary/awards", award).status_code == 401
    assert award_code(dict(award, provider="t01")) == (400, "invalid_request")
    assert award_code(dict(award, cid="nope"))[0] == 400
    first = post(client, personas.notary_key, "/api/v1/notary/awards", award)
    assert first.status_code == 201
    assert (first.json()["awarded_bytes"], first.json()["remaining_bytes"]) == (
        piece.size,
        piece.size,
    )
    again = post(client, personas.notary_key, "/api/v1/notary/awards", award)
    assert again.status_code == 200 and Award.objects.count() == 1
    # the same piece by its piece CID, looked up from the piece side
    answer = get(
        client, personas.notary_key, f"/api/v1/notary/verifications/{piece.cid}?provider={HOLDER}"
    ).json()
    assert answer["job_id"] == job.id and answer["verified"] is True and answer["reason"] is None
    assert (answer["awarded_bytes"], answer["remaining_bytes"]) == (piece.size, piece.size)
    assert answer["provider"] == HOLDER and answer["provider_matches"] is True
    elsewhere = get(
        client, personas.notary_key, f"/api/v1/notary/verifications/{result_cid}?provider=f05"
    ).json()
    assert elsewhere["verified"] is False and elsewhere["provider_matches"] is False
    assert elsewhere["reason"] == {
        "code": "other_provider",
        "message": f"the results are held by {HOLDER}, not f05",
    }
    # a larger piece registered before padding was refused still cannot pass the allowance
    big = piece_of(store, result_cid, piece.size * 2)
    JobPiece.objects.create(
        job=job, piece_cid=big.cid, piece_size=big.size, payload_cid=result_cid, node=personas.node
    )
    assert award_code(dict(award, piece_cid=big.cid, piece_size=big.size)) == (
        409,
        "exceeds_remaining",
    )
    assert AuditEvent.objects.filter(action="notary.award").count() == 1
    with pytest.raises(DomainError) as err:
        moderation.revoke(job_id=job.id, user=personas.admin, reason="x")
    assert err.value.code == "has_awards"
    missing = get(
        client,
        personas.notary_key,
        "/api/v1/notary/verifications/" + piece_of(store, job.result.stderr_cid).cid,
    )
    assert missing.status_code == 404


@pytest.mark.django_db
def test_revoked_jobs_get_no_datacap(client: Client, personas: Personas, store) -> None:
    job = completed_job(personas, store)
    result_cid = job.result.result_cid
    piece = piece_of(store, result_cid)
    post(client, personas.node_key, f"/api/v1/jobs/{job.id}/pieces",
         {"piece_cid": piece.cid, "piece_size": piece.size, "payload_cid": result_cid})  # fmt: skip
    moderation.decide(
        job_id=job.id, user=personas.moderator, decision="verify", datacap="1 GiB", **ACCEPT_RISKS
    )
    moderation.revoke(job_id=job.id, user=personas.admin, reason="wrong data")
    body = {"cid": result_cid, "provider": HOLDER, "piece_cid": piece.cid, "piece_size": piece.size}
    response = post(client, personas.notary_key, "/api/v1/notary/awards", body)
    assert (response.status_code, response.json()["error"]["code"]) == (409, "revoked")
    answer = get(client, personas.notary_key, f"/api/v1/notary/verifications/{result_cid}").json()
    assert answer["verified"] is False and answer["moderation_state"] == "revoked"
    assert answer["reason"]["code"] == "revoked"


@pytest.mark.django_db
def test_results_no_provider_holds_are_not_verified_and_the_answer_says_why(
    client: Client, personas: Personas, store, settings
) -> None:  # type: ignore[no-untyped-def]
    """The bundled executor on the defaults (no EXECUTOR_PROVIDER): verified by a moderator,
    yet no DataCap can go anywhere, and the notary is told why."""
    settings.EXECUTOR_PROVIDER = None
    job = completed_job(personas, store)
    assert job.result.provider == ""
    moderation.decide(
        job_id=job.id, user=personas.moderator, decision="verify", datacap="1 KiB", **ACCEPT_RISKS
    )
    path = f"/api/v1/notary/verifications/{job.result.result_cid}"
    answer = get(client, personas.notary_key, path).json()
    assert answer["moderation_state"] == "verified" and answer["verified"] is False
    assert answer["provider"] is None and answer["reason"]["code"] == "no_holder"
    assert "EXECUTOR_PROVIDER" in answer["reason"]["message"]


@pytest.mark.django_db
def test_chain_storage_links_deals_and_flags(personas: Personas, store) -> None:
    scanned_at()
    job = completed_job(personas, store)
    result_cid = job.result.result_cid
    piece = piece_of(store, result_cid)
    JobPiece.objects.create(
        job=job, piece_cid=piece.cid, piece_size=piece.size, payload_cid=result_cid
    )
    deal(10, label=result_cid, piece_cid=piece.cid, piece_size=piece.size, provider=HOLDER)
    view = notary.chain_storage(job)
    assert [d["id"] for d in view["deals"]] == [10] and view["deals"][0]["status"] == "active"
    assert view["on_chain_bytes"] == piece.size
    assert view["flags"] == ["more_on_chain_than_awarded"]  # nothing awarded yet
    award(job, piece_cid=piece.cid, provider=HOLDER, piece_size=piece.size)
    assert notary.chain_storage(job)["flags"] == []
    deal(11, label="unrelated", piece_cid=piece.cid, piece_size=piece.size, provider="f05555")
    Claim.objects.create(
        claim_id=9, provider=1234, client=1, piece_cid=piece.cid, piece_size=piece.size,
        term_min=1, term_max=10**7, term_start=100, sector=1, height=100,
    )  # fmt: skip
    view = notary.chain_storage(job)
    assert [c["id"] for c in view["claims"]] == [9]
    assert view["flags"] == ["other_provider"]  # deal 11 is with f05555
    # deal 10 and claim 9 are one storage of the piece by f01234: counted once
    assert view["on_chain_bytes"] == piece.size
    Claim.objects.create(
        claim_id=12, provider=1234, client=1, piece_cid=piece.cid, piece_size=piece.size,
        term_min=1, term_max=10**7, term_start=200, sector=2, height=200,
    )  # fmt: skip
    view = notary.chain_storage(job)
    assert view["on_chain_bytes"] == piece.size * 2  # a second sector: more than awarded
    assert view["flags"] == ["more_on_chain_than_awarded", "other_provider"]


@pytest.mark.django_db(transaction=True)
def test_racing_awards_never_exceed_the_datacap(personas: Personas, store) -> None:
    if connection.vendor == "sqlite":
        pytest.skip(
            "the in-memory SQLite test database cannot take writes from two threads; "
            "on SQLite, transactions are serialised by the database file lock anyway"
        )
    job = completed_job(personas, store)
    result_cid = job.result.result_cid
    pieces = [piece_of(store, result_cid, size) for size in (1024, 2048, 4096, 8192)]
    for p in pieces:
        JobPiece.objects.create(job=job, piece_cid=p.cid, piece_size=p.size, payload_cid=result_cid)
    moderation.decide(
        job_id=job.id, user=personas.moderator, decision="verify", datacap=8192, **ACCEPT_RISKS
    )
    from dashboard.models import ApiKey

    notary_key = ApiKey.objects.get(scope="notary")
    start = threading.Barrier(len(pieces))
    outcomes: list[str] = []

    def take(p) -> None:  # type: ignore[no-untyped-def]
        try:
            start.wait()
            awards.record_award(
                key=notary_key, cid=result_cid, provider=HOLDER, piece_cid=p.cid, piece_size=p.size
            )
            outcomes.append("ok")
        except DomainError as exc:
            outcomes.append(exc.code)
        finally:
            close_old_connections()

    threads = [threading.Thread(target=take, args=(p,)) for p in pieces]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    total = awarded_bytes(job.id)
    assert total <= 8192
    assert outcomes.count("ok") >= 1 and set(outcomes) <= {"ok", "exceeds_remaining"}
    assert AuditEvent.objects.filter(action="notary.award").count() == outcomes.count("ok")


@pytest.mark.django_db
def test_chain_flags_for_a_page_match_the_job_view(personas: Personas, store) -> None:
    scanned_at()
    flagged = completed_job(personas, store)
    clean = completed_job(personas, store, code=1)
    for job, provider in ((flagged, "f05555"), (clean, HOLDER)):
        result_cid = job.result.result_cid
        piece = piece_of(store, result_cid)
        JobPiece.objects.create(
            job=job, piece_cid=piece.cid, piece_size=piece.size, payload_cid=result_cid
        )
        award(job, piece_cid=piece.cid, provider=HOLDER, piece_size=piece.size)
        deal(int(job.result.exit_code) + 20, label="x", piece_cid=piece.cid,
             piece_size=piece.size, provider=provider)  # fmt: skip
    ids = [flagged.id, clean.id]
    with CaptureQueriesContext(connection) as queries:
        page = notary.chain_flags(ids)
    assert page == {flagged.id: ["other_provider"]}
    assert len(queries) <= 6
    for job in (flagged, clean):
        assert notary.chain_storage(job)["flags"] == page.get(job.id, [])
