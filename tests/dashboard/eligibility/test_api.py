"""`POST /api/v1/eligibility` and `GET /api/v1/cids/{cid}`."""

from __future__ import annotations

import json

import cid as pycid
import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from chain_scanner.models import Claim
from dashboard.eligibility.selectors import MAX_SOURCES
from tests.base import Personas
from tests.chain_data import synthetic_payload_cid, synthetic_piece_cid
from tests.dashboard.chain_rows import EPOCH, claim, deal, scanned_at

pytestmark = pytest.mark.django_db


def post(client: Client, key: str, body: object, **extra: str):  # type: ignore[no-untyped-def]
    return client.post(
        "/api/v1/eligibility",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
        **extra,
    )


def get(client: Client, path: str, key: str | None = None):  # type: ignore[no-untyped-def]
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"} if key else {}
    return client.get(path, **headers)


def test_answers_in_request_order_and_eligible_only_when_all_blessed(
    client: Client, personas: Personas
) -> None:
    scanned_at()
    active_payload, active_piece = deal(1)
    pending_payload, _ = deal(2, state="pending")
    expired_payload, _ = deal(3, state="expired")
    unknown = synthetic_payload_cid(99)
    v0 = pycid.from_string(active_payload).to_v0().encode().decode()  # Qm… form

    response = post(client, personas.node_key, {"cids": [v0, active_piece]})
    assert response.status_code == 200
    body = response.json()
    assert body.pop("scanner")["complete"] is True  # the rest of it: test_freshness.py
    assert body == {
        "eligible": True,
        "as_of_epoch": EPOCH,
        "results": [
            {"cid": v0, "canonical": active_payload, "blessed": True, "status": "active"},
            {"cid": active_piece, "canonical": active_piece, "blessed": True, "status": "active"},
        ],
    }
    cids = [unknown, expired_payload, active_payload, pending_payload]
    body = post(client, personas.node_key, {"cids": cids}).json()
    assert body["eligible"] is False
    assert [r["cid"] for r in body["results"]] == cids
    assert [r["status"] for r in body["results"]] == ["unknown", "expired", "active", "pending"]
    assert [r["blessed"] for r in body["results"]] == [False, False, True, False]


def test_qm_and_cidv1_forms_give_the_same_answer(client: Client, personas: Personas) -> None:
    scanned_at()
    payload, _ = deal(1)
    v0 = pycid.from_string(payload).to_v0().encode().decode()
    upper = "B" + payload[1:].upper()
    answers = [get(client, f"/api/v1/cids/{c}", personas.notary_key).json() for c in (v0, upper)]
    assert answers[0] == answers[1]
    assert answers[0]["cid"] == payload and answers[0]["blessed"] is True


def test_claims_bless_their_piece_cid(client: Client, personas: Personas) -> None:
    scanned_at()
    _, piece = deal(5, state="expired")
    claim(77, piece_cid=piece)
    body = get(client, f"/api/v1/cids/{piece}", personas.submitter_key).json()
    assert body["status"] == "active" and body["blessed"] is True
    kinds = sorted((s["kind"], s["id"], s["status"]) for s in body["sources"])
    assert kinds == [("claim", 77, "active"), ("deal", 5, "expired")]
    claim_source = next(s for s in body["sources"] if s["kind"] == "claim")
    assert claim_source["provider"] == "f01234"
    assert claim_source["end_epoch"] == EPOCH - 100 + 10**6


def test_sources_come_newest_first_deals_then_claims_at_most_100_each(
    client: Client, personas: Personas
) -> None:
    scanned_at()
    piece = synthetic_piece_cid(9000)
    for n in range(MAX_SOURCES + 2):  # one more than shown, and one expired
        ends = EPOCH + 1000 + n if n else EPOCH - 1
        deal(9000 + n, piece_cid=piece, end_epoch=ends, provider="f0777", client="f0888")
    claim(1, piece_cid=piece)  # term_start EPOCH - 100
    Claim.objects.create(
        claim_id=2, provider=9, client=8, piece_cid=piece, piece_size=2**35, term_min=1,
        term_max=50, term_start=EPOCH - 10, sector=1, height=EPOCH - 10, removed=True,
    )  # fmt: skip
    body = get(client, f"/api/v1/cids/{piece}", personas.node_key).json()
    assert body["status"] == "active"
    deals = [s for s in body["sources"] if s["kind"] == "deal"]
    claims = [s for s in body["sources"] if s["kind"] == "claim"]
    assert body["sources"] == deals + claims
    assert [s["id"] for s in deals] == [9000 + n for n in range(MAX_SOURCES + 1, 1, -1)]
    assert deals[0] == {
        "kind": "deal",
        "id": 9000 + MAX_SOURCES + 1,
        "provider": "f0777",
        "client": "f0888",
        "piece_cid": piece,
        "payload_cid": synthetic_payload_cid(9000 + MAX_SOURCES + 1),
        "start_epoch": 100,
        "end_epoch": EPOCH + 1000 + MAX_SOURCES + 1,
        "status": "active",
        "slash_epoch": None,
    }
    assert [(s["id"], s["status"], s["provider"], s["client"]) for s in claims] == [
        (2, "expired", "f09", "f08"),
        (1, "active", "f01234", "f05678"),
    ]
    assert claims[0]["end_epoch"] == EPOCH + 40 and claims[0]["payload_cid"] is None


def test_unknown_cid(client: Client, personas: Personas) -> None:
    scanned_at()
    unknown = synthetic_payload_cid(4242)
    body = get(client, f"/api/v1/cids/{unknown}", personas.node_key).json()
    assert body.pop("scanner")["complete"] is True  # the rest of it: test_freshness.py
    assert body == {
        "cid": unknown,
        "blessed": False,
        "status": "unknown",
        "sources": [],
        "as_of_epoch": EPOCH,
    }


def test_a_batch_costs_a_constant_number_of_queries(client: Client, personas: Personas) -> None:
    scanned_at()
    payloads = [deal(i)[0] for i in range(1, 21)]

    def queries(cids: list[str]) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert post(client, personas.node_key, {"cids": cids}).status_code == 200
        return len(captured)

    post(client, personas.node_key, {"cids": payloads[:1]})  # last_used_at written once
    small = queries(payloads[:1])
    large = queries(payloads + [synthetic_payload_cid(10_000 + i) for i in range(980)])
    assert small == large <= 3


@pytest.mark.parametrize(
    ("body", "status", "code", "fields"),
    [
        ({"cids": ["bafy-nonsense"]}, 400, "invalid_cid", {"cids": "bafy-nonsense", "index": 0}),
        ({"cids": [synthetic_payload_cid(1), 42]}, 400, "invalid_cid", {"cids": "42", "index": 1}),
        ({"cids": []}, 400, "invalid_request", {"cids": "empty"}),
        ({"cids": "bafy"}, 400, "invalid_request", {"cids": "must be a list"}),
        ({"cid": []}, 400, "invalid_request", {"cids": "required"}),
        ([1, 2], 400, "invalid_request", {"cids": "required"}),
        ({"cids": [synthetic_payload_cid(1)] * 1001}, 413, "too_many_cids", {"cids": 1001}),
    ],
)
def test_bad_bodies(client: Client, personas: Personas, body, status, code, fields) -> None:  # type: ignore[no-untyped-def]
    response = post(client, personas.node_key, body)
    assert response.status_code == status
    assert response.json() == {
        "error": {"code": code, "message": response.json()["error"]["message"], "fields": fields}
    }
    assert response.json()["error"]["message"]


def test_a_body_over_django_upload_limit_is_413(client: Client, personas: Personas) -> None:
    body = '{"cids": ["' + "b" * 3_000_000 + '"]}'  # DATA_UPLOAD_MAX_MEMORY_SIZE is 2.5 MB
    response = client.post(
        "/api/v1/eligibility",
        data=body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {personas.node_key}",
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"


def test_invalid_cid_in_the_path(client: Client, personas: Personas) -> None:
    response = get(client, "/api/v1/cids/not-a-cid", personas.node_key)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_cid"
    assert response.json()["error"]["fields"] == {"cid": "not-a-cid"}


def test_malformed_json_and_wrong_content_type(client: Client, personas: Personas) -> None:
    auth = {"HTTP_AUTHORIZATION": f"Bearer {personas.node_key}"}
    response = client.post(
        "/api/v1/eligibility", data="{not json", content_type="application/json", **auth
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_json"
    response = client.post(
        "/api/v1/eligibility",
        data="cids=x",
        content_type="application/x-www-form-urlencoded",
        **auth,
    )
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"


def test_prebuilt_rows_have_exactly_their_serializers_fields(
    client: Client, personas: Personas
) -> None:
    """The eligibility results and a CID's sources pass through as the selectors built them
    (Prebuilt): their keys must be the declared fields, so the schema cannot drift."""
    from dashboard.eligibility.serializers import (
        EligibilityResultSerializer,
        SourceSerializer,
    )

    scanned_at()
    payload, piece = deal(5)
    claim(77, piece_cid=piece)
    body = get(client, f"/api/v1/cids/{piece}", personas.submitter_key).json()
    assert {s["kind"] for s in body["sources"]} == {"deal", "claim"}
    for source in body["sources"]:
        assert set(source) == set(SourceSerializer().fields)
    unknown = synthetic_payload_cid(999)
    answer = post(client, personas.node_key, {"cids": [payload, piece, unknown]}).json()
    for result in answer["results"]:
        assert set(result) == set(EligibilityResultSerializer().fields)
