"""Leases: a claim on a row for a time, held in its `lease_owner` and `lease_until` columns.

The one place those columns are written. A lease is taken, renewed and given back with
conditional UPDATEs, so that of several workers trying at once exactly one holds a row
(healthchecks' sendalerts pattern); a lease that is not renewed expires.

Two kinds of work run under leases:
- passes over a checkpoint row (the chain scanner's passes and dump imports, a Bacalhau
  orchestrator's passes): one process at a time; a lease held by a process that died on this
  host is taken over at once, so a killed pass can be run again immediately;
- queues of rows (`dashboard/queue.py`: bundled jobs, re-executions), built on `take`,
  `renew`, `release` and `expired` below.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Model, Q, QuerySet
from django.utils import timezone

from chain_scanner.models import LeasedPasses, ScannerCheckpoint

__all__ = [
    "PASS_LEASE",
    "expired",
    "get_checkpoint",
    "release",
    "release_pass",
    "release_scanner",
    "renew",
    "renew_on_save",
    "renew_pass",
    "renew_scanner",
    "take",
    "take_pass",
    "take_scanner",
]

PASS_LEASE = timedelta(minutes=2)

Rows = QuerySet[Any]


def take(rows: Rows, *, owner: str, length: timedelta, **changes: Any) -> int:
    """Lease `rows` to `owner` (the caller's filter says which rows are free to take), with
    `changes` in the same UPDATE; how many it took."""
    return int(rows.update(lease_owner=owner, lease_until=timezone.now() + length, **changes))


def renew(rows: Rows, *, owner: str, length: timedelta) -> bool:
    """Extend `owner`'s lease; False when `owner` no longer holds it."""
    return bool(rows.filter(lease_owner=owner).update(lease_until=timezone.now() + length))


def release(rows: Rows, *, owner: str | None, **changes: Any) -> bool:
    """Give the lease back, with `changes` (a run's outcome) in the same UPDATE, only while
    `owner` holds it (None: whoever holds it)."""
    if owner is not None:
        rows = rows.filter(lease_owner=owner)
    return bool(rows.update(lease_owner="", lease_until=None, **changes))


def expired(rows: Rows, *, now: datetime) -> Rows:
    """The rows of `rows` whose lease ran out before `now`."""
    return rows.filter(lease_until__lt=now)


# --- passes ------------------------------------------------------------------------------------


def _this_process() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _owner_dead(owner: str) -> bool:
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _row(model: type[Model], pk: int) -> Rows:
    return model._default_manager.filter(pk=pk)


def take_pass(model: type[LeasedPasses], pk: int) -> bool:
    """Take the lease on one checkpoint row for this process: when it is free, expired,
    already ours, or held by a process of this host that died."""
    current = _row(model, pk).values_list("lease_owner", flat=True).first()
    owner = _this_process()
    free = Q(lease_until__isnull=True) | Q(lease_until__lt=timezone.now()) | Q(lease_owner=owner)
    if current and _owner_dead(current):
        free |= Q(lease_owner=current)
    return take(_row(model, pk).filter(free), owner=owner, length=PASS_LEASE) == 1


def renew_pass(model: type[LeasedPasses], pk: int) -> None:
    renew(_row(model, pk), owner=_this_process(), length=PASS_LEASE)


def release_pass(model: type[LeasedPasses], pk: int) -> None:
    release(_row(model, pk), owner=_this_process())


def get_checkpoint() -> ScannerCheckpoint:
    checkpoint, _ = ScannerCheckpoint.objects.get_or_create(name="default")
    return checkpoint


def take_scanner() -> bool:
    """Take the scanner's lease, so that passes and dump imports never overlap."""
    return take_pass(ScannerCheckpoint, get_checkpoint().pk)


def renew_scanner() -> None:
    renew_pass(ScannerCheckpoint, get_checkpoint().pk)


def release_scanner() -> None:
    release_pass(ScannerCheckpoint, get_checkpoint().pk)


def renew_on_save(checkpoint: ScannerCheckpoint) -> None:
    """Extend the scanner's lease with the save the caller is about to make of its
    checkpoint row (one UPDATE for both)."""
    checkpoint.lease_until = timezone.now() + PASS_LEASE
