"""A result registered inside an FRC-0058 aggregate: the inclusion proof is verified, a
wrong one refused naming what failed, and registering again changes nothing."""

from __future__ import annotations

import pytest
from django.test import Client

from dashboard.models import AuditEvent, JobPiece, PieceInAggregate
from dashboard.moderation import services as moderation
from executor.aggregate import build_aggregate
from executor.commp import commp
from tests.base import ACCEPT_RISKS, Personas
from tests.dashboard.notary.test_notary import HOLDER, completed_job, get, piece_of, post, store

__all__ = ["store"]  # the fixture

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
        assert (
            post(client, personas.node_key, f"/api/v1/jobs/{job.id}/pieces", body).status_code
            == 201
        )
    path = f"/api/v1/notary/aggregates/{aggregate.cid}"
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
    assert answer["piece_cid"] == aggregate.cid and answer["piece_size"] == AGGREGATE_SIZE
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
