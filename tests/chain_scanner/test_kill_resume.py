"""A pass or an import killed with SIGKILL at any point, then run again, ends with exactly
the tables of an uninterrupted run. Real processes, real HTTP, a real database file (or a
real PostgreSQL database when DATABASE_URL points at one)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chain_data import encode_claim_event, make_deal, synthetic_message_cid
from tests.chain_data import synthetic_piece_cid as piece
from tests.chain_scanner.dumps import write_dump
from tests.fake_lotus import FakeChain, FakeLotusServer
from tests.helpers import ROOT, database_urls, manage, spawn

pytestmark = pytest.mark.slow
HEAD = 50_000
SNAPSHOT = (
    "import json, django; django.setup();"
    "from tests.chain_scanner.tables import snapshot;"
    "print(json.dumps(snapshot(), default=str, sort_keys=True))"
)


@pytest.fixture
def databases(tmp_path: Path) -> Iterator[Iterator[str]]:
    urls = database_urls(tmp_path)
    yield urls
    urls.close()


def _env(database_url: str, lotus_url: str) -> dict[str, str]:
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="dashboard.settings")
    env.update(
        DATABASE_URL=database_url,
        LOTUS_RPC_URL=lotus_url,
        LOTUS_RPC_RETRIES="1",
        SCANNER_START_EPOCH=str(HEAD - 900 - 2000),
        SCANNER_EVENT_RANGE="100",
        SCANNER_DEAL_BATCH="50",
        SCANNER_RECHECK_PER_PASS="300",
        PYTHONPATH=str(ROOT),
        PYTHONWARNINGS="ignore",
    )
    return env


def _run(env: dict[str, str], *args: str) -> str:
    result = manage(env, *args, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _snapshot(env: dict[str, str]) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", SNAPSHOT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    return json.loads(out)


def _chain() -> FakeChain:
    chain = FakeChain(head_height=HEAD, next_deal_id=1)
    start = HEAD - 900 - 2000
    for n in range(400):
        height = start + 5 * n
        chain.add_event(
            encode_claim_event(
                "claim",
                claim_id=10_000 + n,
                client=1000,
                provider=2000 + n % 7,
                piece_cid=piece(n % 150),
                piece_size=2**35,
                term_min=518400,
                term_max=1_500_000,
                term_start=height,
                sector=n,
                height=height,
                msg_cid=synthetic_message_cid(n),
                tipset_key=None,
            )
        )
    for deal_id in range(1, 801):
        chain.add_deal(
            deal_id,
            make_deal(
                deal_id,
                start_epoch=HEAD - 10 if deal_id % 3 else HEAD + 5000,
                end_epoch=HEAD + 10**6,
                sector_start_epoch=HEAD - 20 if deal_id % 3 else -1,
                verified=deal_id % 10 != 0,
                piece_cid=piece(deal_id % 150),
            ),
            height=1000,
        )
    # The market's life inside the event windows: activations, slashes, completions.
    for n, deal_id in enumerate(range(1, 801, 7)):
        height = start + 17 * n
        if deal_id % 3 == 0:
            chain.activate_deal(deal_id, height=height, sector_number=deal_id)
        elif n % 2:
            chain.terminate_deal(deal_id, height=height)
        else:
            chain.complete_deal(deal_id, height=height)
    return chain


def _entries_done(database_url: str) -> int:
    """How far an import has committed, read straight from its database."""
    sql = "SELECT COALESCE(MAX(entries_done), 0) FROM chain_scanner_dumpimport"
    if database_url.startswith("sqlite"):
        with sqlite3.connect(database_url.removeprefix("sqlite:///"), timeout=10) as db:
            return db.execute(sql).fetchone()[0]
    import psycopg

    with psycopg.connect(database_url) as db:
        return db.execute(sql).fetchone()[0]


def _kill_when(proc: subprocess.Popen[str], lotus: FakeLotusServer, requests: int) -> None:
    deadline = time.monotonic() + 60
    while lotus.http_requests < requests:
        assert proc.poll() is None, "the pass finished before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_scan_pass_killed_repeatedly_ends_with_identical_tables(tmp_path: Path, databases) -> None:  # type: ignore[no-untyped-def]
    # A dump that ends at deal 0, so the market scan starts from deal 1.
    dump = write_dump(tmp_path / "d.json", [(0, make_deal(0, start_epoch=1, end_epoch=2))])
    with FakeLotusServer(_chain()) as lotus:
        reference = _env(next(databases), lotus.url)
        _run(reference, "migrate", "-v0")
        _run(reference, "scan_chain", "--import-dump", str(dump))
        out = _run(reference, "scan_chain", "--once", "--no-progress")
        assert "claim_events=400" in out
        expected = _snapshot(reference)
        assert len(expected["claims"]) == 400 and len(expected["deals"]) == 651
        assert len(expected["deal_events"]) > 50  # the windows carry market events too
        assert lotus.http_requests > 6 + 30 + 30, "the kills below must land inside the pass"

        victim = _env(next(databases), lotus.url)
        _run(victim, "migrate", "-v0")
        _run(victim, "scan_chain", "--import-dump", str(dump))
        # Slow every answer down so the kills land inside the pass, in different steps.
        lotus.faults.delay(0.02, times=10_000)
        # A full pass makes 79 requests: ~60 for the 20 event windows (events, the window's
        # tipset key, the deals its events name), ~15 for new deals, 1 for the dump's deal;
        # each kill lands further on, the run before it having committed part of the way.
        for kill_at in (6, 30, 30, 20, 10):
            lotus.reset_stats()
            _kill_when(spawn(victim, "scan_chain", "--once", "--no-progress"), lotus, kill_at)
        lotus.faults.clear()
        _run(victim, "scan_chain", "--once", "--no-progress")
        assert _snapshot(victim) == expected


def test_dump_import_killed_resumes_to_identical_tables(tmp_path: Path, databases) -> None:  # type: ignore[no-untyped-def]
    deals = [
        (i, make_deal(i, start_epoch=1, end_epoch=10**8, sector_start_epoch=1, verified=i % 3 > 0))
        for i in range(1, 30_001)
    ]
    dump = write_dump(tmp_path / "deals.json.zst", deals, envelope=True)
    with FakeLotusServer(FakeChain()) as lotus:
        reference = _env(next(databases), lotus.url)
        _run(reference, "migrate", "-v0")
        _run(reference, "scan_chain", "--import-dump", str(dump))
        expected = _snapshot(reference)
        assert len(expected["deals"]) == 20_000

        victim = _env(next(databases), lotus.url)
        _run(victim, "migrate", "-v0")
        proc = spawn(victim, "scan_chain", "--import-dump", str(dump))
        deadline = time.monotonic() + 60
        while _entries_done(victim["DATABASE_URL"]) == 0:  # kill after the first commit
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        partial = _snapshot(victim)
        assert 0 < len(partial["deals"]) < 20_000, "the kill must land inside the import"
        out = _run(victim, "scan_chain", "--import-dump", str(dump))
        assert "verified=20000" in out
        assert _snapshot(victim) == expected
