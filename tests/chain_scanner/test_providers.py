"""Storage providers' addresses, read lazily from a real fake Lotus and kept."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from chain_scanner.models import ProviderAddress
from chain_scanner.providers import MAX_REFRESH, RETRY_FAILED_S, provider_addresses
from tests.fake_lotus import FakeChain, FakeLotusServer

pytestmark = pytest.mark.django_db


@pytest.fixture
def chain() -> FakeChain:
    return FakeChain(head_height=1000)


@pytest.fixture
def at_lotus(settings, lotus: FakeLotusServer) -> FakeLotusServer:  # type: ignore[no-untyped-def]
    settings.LOTUS_RPC_URL = lotus.url
    settings.PROVIDER_ADDRESS_TTL_S = 3600
    return lotus


def test_at_most_max_refresh_providers_are_read_for_one_request(
    at_lotus: FakeLotusServer,
) -> None:
    providers = [f"f0{1000 + n}" for n in range(MAX_REFRESH + 4)]
    at_lotus.chain.set_miner_addrs("f01000", ["/ip4/127.0.0.1/tcp/7777/http"])
    rows = provider_addresses(providers)
    assert sorted(rows) == sorted(providers[:MAX_REFRESH])
    assert rows["f01000"].multiaddrs == ["BH8AAAEGHmHgAw=="] and rows["f01001"].multiaddrs == []
    assert at_lotus.http_requests == 1  # one batch
    assert len(provider_addresses(providers)) == len(providers)  # the rest, next time
    assert at_lotus.requests["StateMinerInfo"] == len(providers)


def test_a_failed_read_is_recorded_and_tried_again_after_a_minute(
    at_lotus: FakeLotusServer,
) -> None:
    at_lotus.faults.rpc_error("StateMinerInfo", message="actor not found")
    row = provider_addresses(["f01234"])["f01234"]
    assert "actor not found" in row.error and row.fetched_at is None
    provider_addresses(["f01234"])
    assert at_lotus.requests["StateMinerInfo"] == 1  # not yet
    later = timezone.now() + timedelta(seconds=RETRY_FAILED_S + 1)
    row = provider_addresses(["f01234"], now=later)["f01234"]
    assert row.error == "" and row.fetched_at == later
    assert ProviderAddress.objects.get(provider="f01234").error == ""
