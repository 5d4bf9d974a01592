"""Shared fixtures: a real fake-Lotus HTTP server on 127.0.0.1 and a scanner pointed at it."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from chain_scanner.lotus import LotusClient
from tests.fake_lotus import FakeChain, FakeLotusServer

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
# The suite asks no public router: an input missing from a store is fetched only from the
# fakes a test starts (IPNI_URL set but empty turns routing off, here and in child processes).
os.environ.setdefault("IPNI_URL", "")


@pytest.fixture(autouse=True)
def _no_public_router(settings):  # type: ignore[no-untyped-def]
    """pytest-django read the settings before this file set IPNI_URL: the same rule for the
    bundled executor in this process."""
    settings.IPNI_URL = None


@pytest.fixture
def chain() -> FakeChain:
    """The real mainnet claim events and deals, with the head 900 epochs past them."""
    return FakeChain.from_fixtures()


@pytest.fixture
def lotus(chain: FakeChain) -> Iterator[FakeLotusServer]:
    with FakeLotusServer(chain) as server:
        yield server


@pytest.fixture
def scanner_settings(settings, lotus: FakeLotusServer):  # type: ignore[no-untyped-def]
    """Point the scanner at the fake server, with fast retries."""
    settings.LOTUS_RPC_URL = lotus.url
    settings.LOTUS_RPC_RETRIES = 2
    settings.LOTUS_RPC_TIMEOUT_S = 5
    settings.SCANNER_START_EPOCH = 4_622_000
    return settings


@pytest.fixture
def rpc(lotus: FakeLotusServer) -> Iterator[LotusClient]:
    with LotusClient(lotus.url, retries=3, backoff=0.01, timeout=5) as client:
        yield client


@pytest.fixture
def personas(db):  # type: ignore[no-untyped-def]
    from tests.base import make_personas

    return make_personas()


@pytest.fixture
def no_rate_limit(settings):  # type: ignore[no-untyped-def]
    settings.API_RATE_LIMIT = settings.API_ADDRESS_RATE_LIMIT = None
    return settings


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    """Rate-limit counters live in the cache: no test may inherit another's."""
    from django.core.cache import cache

    from dashboard.eligibility.selectors import forget_epoch

    cache.clear()
    forget_epoch()
    yield


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):  # type: ignore[no-untyped-def]
    """PBKDF2's deliberate slowness buys nothing in tests."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
