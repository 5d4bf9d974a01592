"""The scanner lease: one process at a time writes scanner state (a pass or a dump import).

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

from chain_scanner.models import ScannerCheckpoint

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


def acquire_lease() -> bool:
    """Claim the scanner with a conditional UPDATE, so passes never overlap across workers."""
    checkpoint = get_checkpoint()
    now = timezone.now()
    owner = _owner()
    free = Q(lease_until__isnull=True) | Q(lease_until__lt=now) | Q(lease_owner=owner)
    if checkpoint.lease_owner and _owner_dead(checkpoint.lease_owner):
        free |= Q(lease_owner=checkpoint.lease_owner)
    updated = ScannerCheckpoint.objects.filter(free, pk=checkpoint.pk).update(
        lease_owner=owner, lease_until=now + LEASE
    )
    return updated == 1


def renew(checkpoint: ScannerCheckpoint) -> None:
    """Extend the lease on a checkpoint row the caller is about to save."""
    checkpoint.lease_until = timezone.now() + LEASE


def renew_lease() -> None:
    ScannerCheckpoint.objects.filter(name="default", lease_owner=_owner()).update(
        lease_until=timezone.now() + LEASE
    )


def release_lease() -> None:
    ScannerCheckpoint.objects.filter(name="default", lease_owner=_owner()).update(
        lease_owner="", lease_until=None
    )
