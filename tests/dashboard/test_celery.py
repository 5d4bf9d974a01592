"""The scanner pass as a Celery task: inline in embedded mode, and through a real Redis
broker with real `celery worker` and `celery beat` processes in production mode."""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from pathlib import Path

import pytest
import redis
from django.conf import settings

from chain_scanner.models import Claim
from chain_scanner.tasks import scan_pass
from dashboard.celery import app
from tests.fake_lotus import FakeChain, FakeLotusServer
from tests.helpers import celery, manage, process_env, redis_or_skip

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/13")


def test_beat_schedules_the_pass_every_interval() -> None:
    entry = app.conf.beat_schedule["scan-chain"]
    assert entry["task"] == scan_pass.name == "chain_scanner.scan_pass"
    assert entry["schedule"] == float(settings.SCANNER_INTERVAL_S)
    assert app.conf.task_routes["chain_scanner.*"] == {"queue": "scanner"}


@pytest.mark.django_db
def test_embedded_mode_runs_the_task_inline(scanner_settings) -> None:  # type: ignore[no-untyped-def]
    assert app.conf.task_always_eager  # no broker configured
    result = scan_pass.delay().get(timeout=30)
    assert result["claim_events"] == 360
    assert Claim.objects.count() == 360


@pytest.mark.django_db
def test_task_reports_an_unreachable_endpoint(settings) -> None:  # type: ignore[no-untyped-def]
    settings.LOTUS_RPC_URL = "http://127.0.0.1:9/rpc/v1"
    settings.LOTUS_RPC_RETRIES = 0
    result = scan_pass.delay().get(timeout=30)
    assert "127.0.0.1:9" in result["error"]


def test_worker_and_beat_run_passes_through_redis(tmp_path: Path) -> None:
    redis_or_skip(REDIS_URL)
    redis.Redis.from_url(REDIS_URL).flushdb()
    with FakeLotusServer(FakeChain.from_fixtures()) as lotus:
        env = process_env(
            tmp_path,
            LOTUS_RPC_URL=lotus.url,
            SCANNER_START_EPOCH="4622000",
            SCANNER_INTERVAL_S="1",
            CELERY_BROKER_URL=REDIS_URL,
            CELERY_RESULT_BACKEND=REDIS_URL,
        )
        assert manage(env, "migrate", "-v0").returncode == 0
        worker = celery(
            env,
            "worker",
            "-Q",
            "scanner",
            "--pool",
            "solo",
            "--without-gossip",
            "--without-mingle",
            "--loglevel",
            "INFO",
        )
        beat = celery(
            env, "beat", "--schedule", str(tmp_path / "beat-schedule"), "--loglevel", "INFO"
        )
        try:
            database = tmp_path / "data" / "db.sqlite3"
            deadline = time.monotonic() + 60
            passes = 0
            while time.monotonic() < deadline and passes < 2:
                assert worker.poll() is None and beat.poll() is None
                time.sleep(0.3)
                passes = lotus.requests["ChainGetFinalizedTipSet"]
            assert passes >= 2, "beat did not get two passes run by the worker"
            with sqlite3.connect(database) as db:
                claims = db.execute("SELECT COUNT(*) FROM chain_scanner_claim").fetchone()[0]
                height = db.execute(
                    "SELECT processing_height FROM chain_scanner_scannercheckpoint"
                ).fetchone()[0]
            assert claims == 360 and height == 4_622_140
        finally:
            for proc in (beat, worker):
                proc.send_signal(signal.SIGTERM)
            logs = [proc.communicate(timeout=30)[0] for proc in (beat, worker)]
        assert "Sending due task scan-chain (chain_scanner.scan_pass)" in logs[0]
        assert "chain_scanner.scan_pass" in logs[1] and "succeeded" in logs[1]
