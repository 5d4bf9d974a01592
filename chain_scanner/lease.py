"""Leases: one process at a time writes scanner state (a chain pass or a dump import; a
Bacalhau orchestrator's pass), whichever row of a checkpoint table holds the lease.

Claimed with a conditional UPDATE, so several workers may try at once (healthchecks'
sendalerts pattern). A lease expires unless renewed, and one held by a process that died
on this host is taken over at once, so a killed pass can be re-run immediately.
"""

from __future__ import annotations

import os
import socket
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from chain_scanner.models import LeasedPasses, ScannerCheckpoint

LEASE = timedelta(minutes=2)


def get_checkpoint() -> ScannerCheckpoint:
    checkpoint, _ = ScannerCheckpoint.objects.get_or_create(name="default")
    return checkpoint


def _owner() -> str:
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


def claim(model: type[LeasedPasses], pk: int) -> bool:
    """Take the lease on one row of `model` with a
    conditional UPDATE, so two processes never both hold it."""
    current = model.objects.filter(pk=pk).values_list("lease_owner", flat=True).first()  # type: ignore[attr-defined]
    now = timezone.now()
    owner = _owner()
    free = Q(lease_until__isnull=True) | Q(lease_until__lt=now) | Q(lease_owner=owner)
    if current and _owner_dead(current):
        free |= Q(lease_owner=current)
    updated = model.objects.filter(free, pk=pk).update(  # type: ignore[attr-defined]
        lease_owner=owner, lease_until=now + LEASE
    )
    return bool(updated == 1)


def extend(model: type[LeasedPasses], pk: int) -> None:
    model.objects.filter(pk=pk, lease_owner=_owner()).update(  # type: ignore[attr-defined]
        lease_until=timezone.now() + LEASE
    )


def release(model: type[LeasedPasses], pk: int) -> None:
    model.objects.filter(pk=pk, lease_owner=_owner()).update(  # type: ignore[attr-defined]
        lease_owner="", lease_until=None
    )


def acquire_lease() -> bool:
    """Claim the scanner, so passes never overlap across workers."""
    return claim(ScannerCheckpoint, get_checkpoint().pk)


def renew(checkpoint: ScannerCheckpoint) -> None:
    """Extend the lease on a checkpoint row the caller is about to save."""
    checkpoint.lease_until = timezone.now() + LEASE


def renew_lease() -> None:
    extend(ScannerCheckpoint, get_checkpoint().pk)


def release_lease() -> None:
    release(ScannerCheckpoint, get_checkpoint().pk)
