"""A result registered inside an FRC-0058 aggregate: the inclusion proof is verified, a
wrong one refused naming what failed, and registering again changes nothing."""

from __future__ import annotations

import threading

import pytest
from django.db import close_old_connections, connection
from django.db.models import Sum
from django.test import Client

from dashboard.errors import DomainError
from dashboard.models import ApiKey, AuditEvent, Award, AwardShare, JobPiece, PieceInAggregate
from dashboard.moderation import services as moderation
from dashboard.notary import awards
from dashboard.notary.selectors import awarded_bytes
from executor.aggregate import build_aggregate
from executor.commp import commp
from tests.base import ACCEPT_RISKS, Personas
from tests.dashboard.notary.test_notary import (
    HOLDER,
    completed_job,
    get,
    piece_of,
    post,
    store,
    uncapped,
)

__all__ = ["store", "uncapped"]  # the fixtures

pytestmark = pytest.mark.django_db
AGGREGATE_SIZE = 8192


def registration(job, store) -> tuple[dict, dict]:  # type: ignore[no-untyped-def]
    """The body `executor aggregate` writes for the job's result, inside an aggregate with
    another piece ahead of it; and that aggregate's proof of the other piece."""
    piece = piece_of(store, job.result.result_cid)
    other = commp(b"another result's CAR" * 20)
    aggregate = build_aggregate([(other.cid, other.size), (piece.cid, piece.size)], AGGREGATE_SIZE)
    body = {
        "piece_cid": piece.cid,
        "piece_size": piece.size,
        "payload_cid": job.result.result_cid,
        "aggregate": {
            "piece_cid": aggregate.cid,
            "piece_size": AGGREGATE_SIZE,
            "proof": aggregate.proof(piece.cid).to_json(),
        },
    }
    return body, aggregate.proof(other.cid).to_json()


def test_a_result_registered_inside_an_aggregate(client: Client, personas: Personas, store) -> None:
    job = completed_job(personas, store)
    body, _ = registration(job, store)
    path = f"/api/v1/jobs/{job.id}/pieces"
    made = post(client, personas.node_key, path, body)
    assert made.status_code == 201, made.json()
    assert made.json()["aggregate"] == {
        "piece_cid": body["aggregate"]["piece_cid"],
        "piece_size": 8192,
    }
    link = PieceInAggregate.objects.get()
    assert link.piece.piece_cid == body["piece_cid"] and link.proof == body["aggregate"]["proof"]
    assert AuditEvent.objects.filter(action="piece.aggregate").count() == 1
    # again: nothing new
    assert post(client, personas.node_key, path, body).status_code == 200
    assert PieceInAggregate.objects.count() == 1 and JobPiece.objects.count() == 1
    # the plain piece registered before stays, and gains its aggregate later
    plain = {k: v for k, v in body.items() if k != "aggregate"}
    assert post(client, personas.node_key, path, plain).status_code == 200


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ("other_piece", 409, "offset"),
        ("other_aggregate", 409, "wrong_aggregate"),
        ("size", 409, "size_mismatch"),
        ("node", 409, "subtree"),
        ("garbage", 400, "malformed"),
    ],
)
def test_a_wrong_proof_is_refused_naming_what_failed(
    client: Client, personas: Personas, store, change: str, status: int, code: str
) -> None:
    job = completed_job(personas, store)
    body, others = registration(job, store)
    aggregate = body["aggregate"]
    if change == "other_piece":  # the proof of the piece beside it
        aggregate["proof"] = others
    elif change == "other_aggregate":
        aggregate["piece_cid"] = commp(b"x" * 5000, piece_size=AGGREGATE_SIZE).cid
    elif change == "size":
        aggregate["piece_size"] = AGGREGATE_SIZE * 2
    elif change == "node":
        path = aggregate["proof"]["tree"]["path"]
        path[0] = ("0" if path[0][0] != "0" else "1") + path[0][1:]
    else:
        aggregate["proof"] = {"tree": "nothing"}
    refused = post(client, personas.node_key, f"/api/v1/jobs/{job.id}/pieces", body)
    error = refused.json()["error"]
    assert (refused.status_code, error["fields"]) == (status, {"aggregate.proof": code}), error
    assert not JobPiece.objects.exists() and not PieceInAggregate.objects.exists()


def test_the_notary_on_an_aggregate_counts_only_verified_sub_pieces(
    client: Client, personas: Personas, store
) -> None:
    """Three results in one aggregate: verified, pending and rejected. The answer lists each
    and offers the verified one's remaining DataCap only, at most the aggregate's size."""
    made = [completed_job(personas, store, code) for code in (0, 1, 2)]
    cid, pieces = aggregate_of(client, personas, made, store)
    path = f"/api/v1/notary/aggregates/{cid}"
    pending = get(client, personas.notary_key, path).json()
    assert (
        pending["awardable_bytes"] == 0 and [j["verified"] for j in pending["jobs"]] == [False] * 3
    )
    verified, _, rejected = made
    moderation.decide(job_id=verified.id, user=personas.moderator, decision="verify",
                      datacap=pieces[0].size, **ACCEPT_RISKS)  # fmt: skip
    moderation.decide(job_id=rejected.id, user=personas.moderator, decision="reject",
                      reason="not this one")  # fmt: skip
    found = get(client, personas.notary_key, f"{path}?provider={HOLDER}")
    assert found.status_code == 200, found.json()
    answer = found.json()
    assert answer["piece_cid"] == cid and answer["piece_size"] == AGGREGATE_SIZE
    states = {j["job_id"]: (j["verified"], j["moderation_state"]) for j in answer["jobs"]}
    assert states == {
        made[0].id: (True, "verified"),
        made[1].id: (False, "pending"),
        made[2].id: (False, "rejected"),
    }
    assert answer["awardable_bytes"] == pieces[0].size
    assert answer["jobs"][0]["reexecution"]["state"] and "novelty" in answer["jobs"][0]
    assert get(client, personas.node_key, path).status_code == 403  # notary keys only
    unknown = get(client, personas.notary_key, f"/api/v1/notary/aggregates/{pieces[0].cid}")
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "not_found")


# --- awards of an aggregate --------------------------------------------------------------------


def aggregate_of(client: Client, personas: Personas, made: list, store) -> tuple[str, list]:  # type: ignore[type-arg]
    """The jobs' results registered inside one aggregate, in order; its CID and the pieces."""
    pieces = [piece_of(store, job.result.result_cid) for job in made]
    aggregate = build_aggregate([(p.cid, p.size) for p in pieces], AGGREGATE_SIZE)
    for job, piece in zip(made, pieces, strict=True):
        body = {
            "piece_cid": piece.cid,
            "piece_size": piece.size,
            "payload_cid": job.result.result_cid,
            "aggregate": {
                "piece_cid": aggregate.cid,
                "piece_size": AGGREGATE_SIZE,
                "proof": aggregate.proof(piece.cid).to_json(),
            },
        }
        made_ = post(client, personas.node_key, f"/api/v1/jobs/{job.id}/pieces", body)
        assert made_.status_code == 201, made_.json()
    return aggregate.cid, pieces


def test_an_award_of_an_aggregate_spends_the_verified_sub_pieces_only(
    client: Client, personas: Personas, store
) -> None:
    """Verified (two), pending and rejected sub-pieces: the award covers the verified ones'
    remaining DataCap, records whose, is idempotent, and nothing more may go afterwards."""
    made = [completed_job(personas, store, code) for code in (0, 1, 2, 3)]
    cid, pieces = aggregate_of(client, personas, made, store)
    first, second, pending, rejected = made
    for job, amount in ((first, 1000), (second, 700)):
        moderation.decide(job_id=job.id, user=personas.moderator, decision="verify",
                          datacap=amount, **ACCEPT_RISKS)  # fmt: skip
    moderation.decide(job_id=rejected.id, user=personas.moderator, decision="reject",
                      reason="not this one")  # fmt: skip
    body = {"provider": HOLDER, "piece_cid": cid, "piece_size": AGGREGATE_SIZE}
    taken = post(client, personas.notary_key, "/api/v1/notary/awards", body)
    assert taken.status_code == 201, taken.json()
    award = taken.json()
    assert award["aggregate"] is True and award["datacap_bytes"] == 1700
    assert award["job_id"] is None and award["awarded_bytes"] is None
    assert [
        (s["job_id"], s["piece_cid"], s["bytes"], s["remaining_bytes"]) for s in award["shares"]
    ] == [
        (first.id, pieces[0].cid, 1000, 0),
        (second.id, pieces[1].cid, 700, 0),
    ]
    assert award["chain"]["state"] == "awaiting"
    assert AuditEvent.objects.filter(action="notary.award").count() == 2  # one per job
    # again: the same award, nothing new
    again = post(client, personas.notary_key, "/api/v1/notary/awards", body)
    assert again.status_code == 200 and again.json()["shares"] == award["shares"]
    assert Award.objects.count() == 1 and AwardShare.objects.count() == 2
    # the jobs' DataCap is spent: nothing goes to the aggregate with another provider either
    answer = get(client, personas.notary_key, f"/api/v1/notary/aggregates/{cid}").json()
    assert answer["awardable_bytes"] == 0
    assert [j["awarded_bytes"] for j in answer["jobs"]] == [1000, 700, 0, 0]
    one = get(client, personas.notary_key, f"/api/v1/notary/verifications/{pieces[0].cid}")
    assert one.json()["awards"] == [{"piece_cid": cid, "provider": HOLDER, "aggregate": True,
                                     "bytes": 1000, "chain_state": "awaiting"}]  # fmt: skip
    # the pending one is verified later: a second award, to another deal, covers it alone
    moderation.decide(job_id=pending.id, user=personas.moderator, decision="verify",
                      datacap=300, **ACCEPT_RISKS)  # fmt: skip
    # revoking a job whose DataCap was awarded is refused
    with pytest.raises(DomainError) as refused:
        moderation.revoke(job_id=first.id, user=personas.admin, reason="too late")
    assert refused.value.code == "has_awards"


def test_an_aggregate_award_is_refused_clearly(client: Client, personas: Personas, store) -> None:
    made = [completed_job(personas, store, code) for code in (0, 1)]
    cid, pieces = aggregate_of(client, personas, made, store)

    def refusal(**changes: object) -> tuple[int, str, dict | None]:  # type: ignore[type-arg]
        body = {"provider": HOLDER, "piece_cid": cid, "piece_size": AGGREGATE_SIZE, **changes}
        answer = post(client, personas.notary_key, "/api/v1/notary/awards", body)
        error = answer.json()["error"]
        return answer.status_code, error["code"], error.get("fields")

    assert refusal()[:2] == (409, "nothing_to_award")  # nothing verified yet
    moderation.decide(job_id=made[0].id, user=personas.moderator, decision="verify",
                      datacap=1000, **ACCEPT_RISKS)  # fmt: skip
    assert refusal(datacap_bytes=1001) == (409, "exceeds_remaining", {"datacap_bytes": 1000})
    assert refusal(piece_size=AGGREGATE_SIZE * 2)[:2] == (409, "piece_size_mismatch")
    assert refusal(cid=pieces[0].cid) == (400, "invalid_request", {"cid": "not_the_aggregate"})
    assert refusal(provider="f09999")[:2] == (409, "nothing_to_award")  # not the holder
    assert not Award.objects.exists()
    # part of it, then the same again with another amount: a conflict
    part = post(client, personas.notary_key, "/api/v1/notary/awards",
                {"provider": HOLDER, "piece_cid": cid, "piece_size": AGGREGATE_SIZE,
                 "datacap_bytes": 400})  # fmt: skip
    assert part.status_code == 201 and part.json()["datacap_bytes"] == 400
    assert refusal(datacap_bytes=600)[:2] == (409, "award_conflict")
    # a job's own piece takes its piece_size, never another amount
    assert refusal(piece_cid=pieces[0].cid, piece_size=pieces[0].size, datacap_bytes=5)[:2] == (
        400,
        "invalid_request",
    )


@pytest.mark.django_db(transaction=True)
def test_fifty_racing_aggregate_awards_never_exceed_what_was_verified(
    client: Client, personas: Personas, store
) -> None:
    """25 aggregates holding the same two verified results, awarded at once, each twice (50
    awards racing):
    the two jobs' DataCap is spent once, by whichever awards win, and every retry is
    idempotent."""
    if connection.vendor == "sqlite":
        pytest.skip(
            "the in-memory SQLite test database cannot take writes from two threads; "
            "the PostgreSQL pass of .ci/run races these awards"
        )
    made = [completed_job(personas, store, code) for code in (0, 1)]
    pieces = [piece_of(store, job.result.result_cid) for job in made]
    for job, piece in zip(made, pieces, strict=True):
        JobPiece.objects.create(job=job, piece_cid=piece.cid, piece_size=piece.size,
                                payload_cid=job.result.result_cid)  # fmt: skip
        moderation.decide(job_id=job.id, user=personas.moderator, decision="verify",
                          datacap=5000, **ACCEPT_RISKS)  # fmt: skip
    aggregates = []
    for n in range(25):
        filler = commp(f"filler {n}".encode() * 40)
        built = build_aggregate([(filler.cid, filler.size), *((p.cid, p.size) for p in pieces)],
                                AGGREGATE_SIZE * 2)  # fmt: skip
        aggregates.append(built.cid)
        for piece in JobPiece.objects.filter(job__in=made):
            proof = built.proof(piece.piece_cid).to_json()
            PieceInAggregate.objects.create(
                piece=piece, aggregate_cid=built.cid, aggregate_size=AGGREGATE_SIZE * 2, proof=proof
            )
    key = ApiKey.objects.get(scope="notary")
    start = threading.Barrier(50)
    outcomes: list[str] = []

    def take(cid: str) -> None:
        try:
            start.wait()
            answer, _ = awards.record_award(
                key=key, provider=HOLDER, piece_cid=cid, piece_size=AGGREGATE_SIZE * 2,
                datacap_bytes=3000,
            )  # fmt: skip
            outcomes.append(f"ok {answer['datacap_bytes']}")
        except DomainError as exc:
            outcomes.append(exc.code)
        except Exception as exc:  # a deadlock or a unique violation: the test must say so
            outcomes.append(repr(exc))
        finally:
            close_old_connections()

    threads = [threading.Thread(target=take, args=(cid,)) for cid in aggregates * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(outcomes) == 50
    spent = {job.id: awarded_bytes(job.id) for job in made}
    assert all(total <= 5000 for total in spent.values()), spent
    assert sum(spent.values()) == 9999 // 3000 * 3000  # three awards of 3000 fit in 10000
    assert Award.objects.count() == 3
    # each won aggregate answered twice: 201 once and 200 once, both "ok"
    assert outcomes.count("ok 3000") == 6
    assert set(outcomes) <= {"ok 3000", "exceeds_remaining", "nothing_to_award"}
    assert AwardShare.objects.aggregate(total=Sum("bytes"))["total"] == 9000
