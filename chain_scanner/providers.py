"""Storage providers' on-chain addresses, read lazily and kept (ProviderAddress).

A locations request names providers; those whose addresses are unknown, older than
PROVIDER_ADDRESS_TTL_S, or whose last try failed over a minute ago are read again, at most
MAX_REFRESH in one JSON-RPC batch bounded in time (PROVIDER_ADDRESS_TIMEOUT_S, no retry) and
bytes. Lotus being slow, down or hostile never fails the request: a provider then keeps the
addresses of its last answer (or has none), and the row says why.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from chain_scanner.lotus import LotusClient, LotusError, MinerInfo
from chain_scanner.models import ProviderAddress

__all__ = ["MAX_REFRESH", "RETRY_FAILED_S", "make_client", "provider_addresses"]

log = logging.getLogger(__name__)

MAX_REFRESH = 16  # providers read from Lotus for one request; the others wait for the next
RETRY_FAILED_S = 60  # a failed read is tried again after this (or the TTL, if shorter)
MAX_ANSWER_BYTES = 64 * 1024 * MAX_REFRESH  # a miner's info is about 1 KB
MAX_ERROR = 500


def make_client() -> LotusClient:
    return LotusClient(
        settings.LOTUS_RPC_URL,
        settings.LOTUS_RPC_TOKEN,
        timeout=settings.PROVIDER_ADDRESS_TIMEOUT_S,
        retries=0,
        max_response_bytes=MAX_ANSWER_BYTES,
    )


def _due(row: ProviderAddress | None, now: datetime) -> bool:
    if row is None:
        return True
    ttl = settings.PROVIDER_ADDRESS_TTL_S
    wait = min(ttl, RETRY_FAILED_S) if row.error else ttl
    return row.checked_at <= now - timedelta(seconds=wait)


def provider_addresses(
    providers: Iterable[str],
    *,
    client_factory: Callable[[], LotusClient] = make_client,
    now: datetime | None = None,
) -> dict[str, ProviderAddress]:
    """The kept addresses of each provider (`f0…`) that has a row, refreshing those due
    first. Never raises for Lotus: a failed read is recorded on the rows it was for."""
    wanted = list(dict.fromkeys(providers))
    now = now or timezone.now()
    rows = ProviderAddress.objects.in_bulk(wanted)
    due = [p for p in wanted if _due(rows.get(p), now)][:MAX_REFRESH]
    if due:
        for provider, answer in zip(due, _read(due, client_factory), strict=True):
            rows[provider] = _store(provider, answer, rows.get(provider), now)
    return rows


def _read(
    providers: list[str], client_factory: Callable[[], LotusClient]
) -> list[MinerInfo | LotusError]:
    try:
        with client_factory() as client:
            return client.state_miner_infos(providers)
    except LotusError as exc:
        log.warning("reading %d providers' addresses failed: %s", len(providers), exc)
        return [exc] * len(providers)


def _store(
    provider: str, answer: MinerInfo | LotusError, old: ProviderAddress | None, now: datetime
) -> ProviderAddress:
    row = old or ProviderAddress(provider=provider, checked_at=now)
    row.checked_at = now
    if isinstance(answer, MinerInfo):
        row.peer_id = answer.peer_id or ""
        row.multiaddrs = answer.multiaddrs
        row.fetched_at = now
        row.error = ""
    else:
        row.error = str(answer)[:MAX_ERROR] or type(answer).__name__
    try:
        with transaction.atomic():
            row.save()
    except IntegrityError:  # another request stored it first: its answer is as good
        pass
    return row
