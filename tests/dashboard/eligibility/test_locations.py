"""`GET /api/v1/locations/{cid}` and `locate`, its in-process twin: the providers holding a CID
under active FIL+ storage, at the HTTP addresses StateMinerInfo names (a real fake Lotus)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import fields
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from chain_scanner.models import ProviderAddress
from chain_scanner.services import scan_once
from dashboard.eligibility import serializers as s
from dashboard.eligibility.locations import locate
from dashboard.eligibility.selectors import forget_epoch
from executor.locations import MAX_LOCATIONS, Location
from tests.base import PASSWORD, Personas
from tests.chain_data import synthetic_payload_cid, synthetic_piece_cid
from tests.dashboard.chain_rows import EPOCH, claim, deal, scanned_at
from tests.fake_lotus import FakeChain, FakeLotusServer
from tests.helpers import free_port

pytestmark = pytest.mark.django_db

HTTP = "/ip4/127.0.0.1/tcp/7777/http"
LIBP2P = "/ip4/10.0.0.1/tcp/24001"  # a listen address: not an HTTP endpoint


@pytest.fixture
def chain() -> FakeChain:
    return FakeChain(head_height=1000)  # only StateMinerInfo is asked


@pytest.fixture
def lotus_at(settings, lotus: FakeLotusServer) -> Iterator[FakeLotusServer]:  # type: ignore[no-untyped-def]
    settings.LOTUS_RPC_URL = lotus.url
    settings.PROVIDER_ADDRESS_TIMEOUT_S = 2
    yield lotus


def get(client: Client, cid: str, key: str | None):  # type: ignore[no-untyped-def]
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"} if key else {}
    return client.get(f"/api/v1/locations/{cid}", **headers)


def held_piece(lotus: FakeLotusServer) -> tuple[str, str]:
    """Piece of deal 5 (payload in its label), also claimed (claim 77), both by f01234 whose
    on-chain addresses are one HTTP and one libp2p address; an expired deal of the same
    piece by f0999. Returns (piece, payload)."""
    scanned_at()
    payload, piece = deal(5, provider="f01234")
    deal(6, state="expired", piece_cid=piece, provider="f0999")
    claim(77, piece_cid=piece)  # provider 1234
    lotus.chain.set_miner_addrs("f01234", [LIBP2P, HTTP])
    lotus.chain.set_miner_addrs("f0999", ["/ip4/127.0.0.1/tcp/9999/http"])
    return piece, payload


def test_a_piece_is_located_by_its_active_claims_and_deals(
    client: Client, personas: Personas, lotus_at: FakeLotusServer
) -> None:
    piece, payload = held_piece(lotus_at)
    response = get(client, piece, personas.node_key)
    assert response.status_code == 200
    assert response.json() == {
        "cid": piece,
        "kind": "piece",
        "piece_size": 2**35,
        "blessed": True,
        "locations": [
            {
                "url": "http://127.0.0.1:7777",
                "provider": "f01234",
                "piece_cid": piece,
                "piece_size": 2**35,
                "payload_cid": payload,  # from deal 5's label, merged into the claim's
                "source": "claim 77",
            }
        ],
    }


def test_a_payload_cid_is_located_by_its_deals_with_their_piece(
    client: Client, personas: Personas, lotus_at: FakeLotusServer
) -> None:
    piece, payload = held_piece(lotus_at)
    body = get(client, "B" + payload[1:].upper(), personas.submitter_key).json()
    assert body["cid"] == payload and body["kind"] == "payload" and body["piece_size"] is None
    assert body["blessed"] is True
    assert [(x["source"], x["piece_cid"], x["url"]) for x in body["locations"]] == [
        ("deal 5", piece, "http://127.0.0.1:7777")
    ]


def test_locate_answers_the_same_locations_in_process(
    client: Client, personas: Personas, lotus_at: FakeLotusServer
) -> None:
    piece, _ = held_piece(lotus_at)
    found = locate(piece)
    assert all(isinstance(x, Location) for x in found)
    assert [x.to_json() for x in found] == get(client, piece, personas.node_key).json()["locations"]
    # the serializer is the shape of executor.locations.Location, field for field
    assert set(s.LocationSerializer().fields) == {f.name for f in fields(Location)}


def test_unknown_or_unheld_cids_have_no_locations(
    client: Client, personas: Personas, lotus_at: FakeLotusServer
) -> None:
    scanned_at()
    deal(8, state="expired")
    for cid in (synthetic_payload_cid(8), synthetic_piece_cid(8), synthetic_payload_cid(4242)):
        body = get(client, cid, personas.node_key).json()
        assert body["blessed"] is False and body["locations"] == []
    assert get(client, synthetic_piece_cid(8), personas.node_key).json()["piece_size"] == 2**35
    assert lotus_at.requests["StateMinerInfo"] == 0  # no active holder: nobody to ask about


def test_a_bad_cid_is_400_naming_the_field(client: Client, personas: Personas) -> None:
    response = get(client, "not-a-cid", personas.node_key)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_cid"
    assert response.json()["error"]["fields"] == {"cid": "not-a-cid"}


def test_who_may_ask(client: Client, personas: Personas, lotus_at: FakeLotusServer) -> None:
    piece, _ = held_piece(lotus_at)
    for key, status in (
        (personas.node_key, 200),
        (personas.submitter_key, 200),
        (personas.notary_key, 403),
        (personas.moderator_key, 403),
        (personas.probe_key, 403),
        (None, 401),
    ):
        assert get(client, piece, key).status_code == status, key
    assert client.login(username="victor", password=PASSWORD)  # a viewer's session reads
    assert get(client, piece, None).status_code == 200


def test_addresses_are_kept_for_the_ttl_then_read_again(
    client: Client, personas: Personas, lotus_at: FakeLotusServer, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.PROVIDER_ADDRESS_TTL_S = 3600
    piece, _ = held_piece(lotus_at)
    for _ in range(3):
        assert len(get(client, piece, personas.node_key).json()["locations"]) == 1
    assert lotus_at.requests["StateMinerInfo"] == 1
    row = ProviderAddress.objects.get(provider="f01234")
    assert row.error == "" and row.fetched_at is not None and len(row.multiaddrs) == 2
    # the provider moves; once the kept answer is older than the TTL it is read again
    lotus_at.chain.set_miner_addrs("f01234", ["/dns/sp.example/tcp/443/https"])
    ProviderAddress.objects.update(checked_at=timezone.now() - timedelta(seconds=3601))
    urls = [x["url"] for x in get(client, piece, personas.node_key).json()["locations"]]
    assert urls == ["https://sp.example"]
    assert lotus_at.requests["StateMinerInfo"] == 2


def test_lotus_down_answers_what_is_kept_and_never_fails(
    client: Client, personas: Personas, lotus_at: FakeLotusServer, settings
) -> None:  # type: ignore[no-untyped-def]
    piece, _ = held_piece(lotus_at)
    assert len(get(client, piece, personas.node_key).json()["locations"]) == 1
    settings.LOTUS_RPC_URL = f"http://127.0.0.1:{free_port()}/rpc/v1"
    ProviderAddress.objects.update(checked_at=timezone.now() - timedelta(days=1))
    body = get(client, piece, personas.node_key).json()
    assert [x["url"] for x in body["locations"]] == ["http://127.0.0.1:7777"]  # kept
    row = ProviderAddress.objects.get(provider="f01234")
    assert "unavailable" in row.error and len(row.multiaddrs) == 2
    # never read: no locations, still a 200
    ProviderAddress.objects.all().delete()
    response = get(client, piece, personas.node_key)
    assert response.status_code == 200 and response.json()["locations"] == []
    assert response.json()["blessed"] is True


def test_a_slow_lotus_costs_the_timeout_not_more(
    client: Client, personas: Personas, lotus_at: FakeLotusServer, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.PROVIDER_ADDRESS_TIMEOUT_S = 1
    piece, _ = held_piece(lotus_at)
    lotus_at.faults.delay(5)
    started = time.monotonic()
    response = get(client, piece, personas.node_key)
    assert time.monotonic() - started < 3
    assert response.status_code == 200 and response.json()["locations"] == []
    assert "Timeout" in ProviderAddress.objects.get(provider="f01234").error


def test_hostile_addresses_are_skipped_and_answers_bounded(
    client: Client, personas: Personas, lotus_at: FakeLotusServer
) -> None:
    scanned_at()
    piece = synthetic_piece_cid(300)
    providers = [f"f0{700 + n}" for n in range(8)]
    for n, provider in enumerate(providers):  # the first's deal ends last: it comes first
        deal(300 + n, piece_cid=piece, provider=provider, end_epoch=EPOCH + 10**6 - n)
        lotus_at.chain.set_miner_addrs(
            provider, [f"/ip4/127.0.0.{n + 1}/tcp/{8000 + i}/http" for i in range(12)]
        )
    lotus_at.chain.set_miner_info(
        providers[0],
        multiaddrs=[
            "!!not base64",
            "NQZldmlsQHgGAFDgAw==",  # /dns/evil@x/tcp/80/http: '@' would smuggle a user
            "/wE=",  # an unknown protocol code
            *lotus_at.chain.miner_info("f0701", None)["Multiaddrs"][:1],
        ],
    )
    locations = get(client, piece, personas.node_key).json()["locations"]
    assert len(locations) == MAX_LOCATIONS
    assert [x["url"] for x in locations if x["provider"] == providers[0]] == [
        "http://127.0.0.2:8000"
    ]


def test_a_piece_the_fake_chain_adds_is_scanned_and_located(settings) -> None:  # type: ignore[no-untyped-def]
    """The walkthrough's way: a chain where f01234 holds a piece under an active verified
    deal and claim and names its HTTP address on chain; one scanner pass, then locate."""
    chain = FakeChain.from_fixtures()
    piece, payload = synthetic_piece_cid(4321), synthetic_payload_cid(4321)
    deal_id, claim_id = chain.add_verified_piece(piece, 2048, payload_cid=payload)
    chain.set_miner_addrs("f01234", [HTTP])
    with FakeLotusServer(chain) as lotus:
        settings.LOTUS_RPC_URL = lotus.url
        settings.LOTUS_RPC_RETRIES = 0
        settings.SCANNER_START_EPOCH = 4_622_000
        scan_once()
        forget_epoch()
        assert locate(piece) == [
            Location(
                url="http://127.0.0.1:7777",
                provider="f01234",
                piece_cid=piece,
                piece_size=2048,
                payload_cid=payload,
                source=f"claim {claim_id}",
            )
        ]
        assert [x.source for x in locate(payload)] == [f"deal {deal_id}"]
