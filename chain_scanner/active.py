"""When FIL+ verified storage is active: the one rule for deals and claims, in Python and SQL.

A source (a verified deal or claim) comes down to two epochs: `active_until`, up to which it
stores its data (None when it does not, or no longer can), and `pending_until`, up to which a
published deal may still be activated (None for anything else). At epoch E a source is
*active* when active_until > E, *pending* when pending_until > E, and *expired* otherwise.
The blessed-CID cache keeps the largest of each over all sources of a CID, so one `status_at`
reads a cache row and a single source alike.

The SQL expressions compute the same two epochs from the deal and claim tables' own columns,
for the set-based rebuild of the cache; `tests/chain_scanner/test_active.py` holds the two to
the same answers, row by row.
"""

from __future__ import annotations

__all__ = [
    "CLAIM_ACTIVE_UNTIL_SQL",
    "DEAL_ACTIVE_UNTIL_SQL",
    "DEAL_PENDING_UNTIL_SQL",
    "claim_window",
    "deal_window",
    "status_at",
]

Window = tuple[int | None, int | None]  # (active_until, pending_until)

# A slashed deal, or one gone from market state, stores nothing whatever its epochs say.
_DEAL_LIVE = "slash_epoch = -1 AND removed_epoch IS NULL"
DEAL_ACTIVE_UNTIL_SQL = f"CASE WHEN sector_start_epoch > 0 AND {_DEAL_LIVE} THEN end_epoch END"
DEAL_PENDING_UNTIL_SQL = f"CASE WHEN sector_start_epoch <= 0 AND {_DEAL_LIVE} THEN start_epoch END"
CLAIM_ACTIVE_UNTIL_SQL = "CASE WHEN NOT removed THEN term_start + term_max END"


def deal_window(
    *,
    start_epoch: int,
    end_epoch: int,
    sector_start_epoch: int,
    slash_epoch: int,
    removed_epoch: int | None,
) -> Window:
    """A verified market deal: active from its sector's activation to its end epoch; before
    activation, pending until its start epoch (after which it can never activate)."""
    if removed_epoch is not None or slash_epoch != -1:
        return None, None
    if sector_start_epoch > 0:
        return end_epoch, None
    return None, start_epoch


def claim_window(*, term_start: int, term_max: int, removed: bool) -> Window:
    """A verified-registry claim: active until its term's maximum, unless removed."""
    return (None if removed else term_start + term_max), None


def status_at(active_until: int | None, pending_until: int | None, epoch: int) -> str:
    if active_until is not None and active_until > epoch:
        return "active"
    if pending_until is not None and pending_until > epoch:
        return "pending"
    return "expired"
