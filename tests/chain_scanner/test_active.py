"""The active rule (chain_scanner/active.py) in Python and in SQL: one table, both answers.

Each row is a deal or a claim, an epoch and the status it must have then. The Python rule
(the models' `status_at`), the SQL expressions the blessed-CID cache is built with (read
straight from the table), and the cache row that `store.refresh_blessed` builds must all
give the table's answer.
"""

from __future__ import annotations

import pytest
from django.db import connection

from chain_scanner import store
from chain_scanner.active import (
    CLAIM_ACTIVE_UNTIL_SQL,
    DEAL_ACTIVE_UNTIL_SQL,
    DEAL_PENDING_UNTIL_SQL,
    status_at,
)
from chain_scanner.models import BlessedCid, Claim, Deal
from tests.chain_data import synthetic_piece_cid

pytestmark = pytest.mark.django_db

E = 5_000_000  # the epoch every row is judged at

# (what, start_epoch, end_epoch, sector_start_epoch, slash_epoch, removed_epoch, status at E)
DEALS: list[tuple[str, int, int, int, int, int | None, str]] = [
    ("activated, ends later", E - 100, E + 100, E - 90, -1, None, "active"),
    ("activated, ends now", E - 100, E, E - 90, -1, None, "expired"),
    ("activated, ended", E - 300, E - 1, E - 290, -1, None, "expired"),
    ("activated, slashed", E - 100, E + 100, E - 90, E - 10, None, "expired"),
    ("activated, removed from state", E - 100, E + 100, E - 90, -1, E - 5, "expired"),
    ("published, starts later", E + 10, E + 500, -1, -1, None, "pending"),
    ("published, starts now", E, E + 500, -1, -1, None, "expired"),
    ("published, start passed", E - 10, E + 500, -1, -1, None, "expired"),
    ("published, sector start 0", E + 10, E + 500, 0, -1, None, "pending"),
    ("published, slashed", E + 10, E + 500, -1, E - 1, None, "expired"),
    ("published, removed", E + 10, E + 500, -1, -1, E - 1, "expired"),
]

# (what, term_start, term_max, removed, status at E)
CLAIMS: list[tuple[str, int, int, bool, str]] = [
    ("in its term", E - 100, 1000, False, "active"),
    ("term ends now", E - 1000, 1000, False, "expired"),
    ("term ended", E - 2000, 1000, False, "expired"),
    ("removed in its term", E - 100, 1000, True, "expired"),
]


def _deals() -> list[Deal]:
    rows = []
    for n, (_, start, end, sector_start, slash, removed, _) in enumerate(DEALS, start=1):
        rows.append(
            Deal(
                deal_id=n,
                piece_cid=synthetic_piece_cid(n),
                piece_size=2048,
                client="f01000",
                provider="f01001",
                start_epoch=start,
                end_epoch=end,
                sector_start_epoch=sector_start,
                slash_epoch=slash,
                removed_epoch=removed,
            )
        )
    return Deal.objects.bulk_create(rows)


def _claims() -> list[Claim]:
    rows = []
    for n, (_, term_start, term_max, removed, _) in enumerate(CLAIMS, start=1):
        rows.append(
            Claim(
                claim_id=n,
                provider=1001,
                client=1000,
                piece_cid=synthetic_piece_cid(1000 + n),
                piece_size=2048,
                term_min=term_max // 2,
                term_max=term_max,
                term_start=term_start,
                sector=1,
                removed=removed,
                height=term_start,
            )
        )
    return Claim.objects.bulk_create(rows)


def _by_sql(table: str, key: str, active: str, pending: str) -> dict[int, str]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {key}, {active}, {pending} FROM {table}")
        return {row[0]: status_at(row[1], row[2], E) for row in cursor.fetchall()}


def test_deals_have_the_same_status_in_python_in_sql_and_in_the_cache() -> None:
    deals = _deals()
    sql = _by_sql(Deal._meta.db_table, "deal_id", DEAL_ACTIVE_UNTIL_SQL, DEAL_PENDING_UNTIL_SQL)
    store.refresh_blessed(d.piece_cid for d in deals)
    cache = {b.cid: b.status_at(E) for b in BlessedCid.objects.all()}
    got = [
        (f"deal: {row[0]}", (deal.status_at(E), sql[deal.deal_id], cache[deal.piece_cid]))
        for row, deal in zip(DEALS, deals, strict=True)
    ]
    want = [(f"deal: {row[0]}", (row[-1],) * 3) for row in DEALS]
    assert got == want


def test_claims_have_the_same_status_in_python_in_sql_and_in_the_cache() -> None:
    claims = _claims()
    sql = _by_sql(Claim._meta.db_table, "claim_id", CLAIM_ACTIVE_UNTIL_SQL, "NULL")
    store.refresh_blessed(c.piece_cid for c in claims)
    cache = {b.cid: b.status_at(E) for b in BlessedCid.objects.all()}
    got = [
        (f"claim: {row[0]}", (claim.status_at(E), sql[claim.claim_id], cache[claim.piece_cid]))
        for row, claim in zip(CLAIMS, claims, strict=True)
    ]
    want = [(f"claim: {row[0]}", (row[-1],) * 3) for row in CLAIMS]
    assert got == want


def test_a_cid_is_active_while_any_of_its_sources_is() -> None:
    """The cache keeps the latest epochs over all sources of a CID."""
    piece = synthetic_piece_cid(7)
    common = {"piece_cid": piece, "piece_size": 2048, "client": "f01000", "provider": "f01001"}
    Deal.objects.create(
        deal_id=1, start_epoch=E - 100, end_epoch=E + 5, sector_start_epoch=E - 90, **common
    )
    Deal.objects.create(deal_id=2, start_epoch=E + 20, end_epoch=E + 900, **common)
    store.refresh_blessed([piece])
    row = BlessedCid.objects.get(cid=piece)
    assert [row.status_at(e) for e in (E, E + 5, E + 19, E + 20)] == [
        "active",
        "pending",
        "pending",
        "expired",
    ]
