"""`manage.py serve`: the embedded service, as a newcomer runs it."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx

from tests.fake_lotus import FakeChain, FakeLotusServer
from tests.helpers import free_port, process_env, spawn


def test_serve_migrates_serves_and_scans_until_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    with FakeLotusServer(FakeChain.from_fixtures()) as lotus:
        env = process_env(
            tmp_path,
            LOTUS_RPC_URL=lotus.url,
            SCANNER_START_EPOCH="4622000",
            SCANNER_INTERVAL_S="1",
        )
        proc = spawn(env, "serve", "--port", str(port))
        try:
            deadline = time.monotonic() + 60
            status = None
            while time.monotonic() < deadline:
                assert proc.poll() is None, proc.communicate()[1]
                try:
                    status = httpx.get(f"http://127.0.0.1:{port}/admin/login/").status_code
                    if lotus.requests["GetActorEventsRaw"] >= 1:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
            assert status == 200
            # the admin's static files are served too (whitenoise, no collectstatic)
            css = httpx.get(f"http://127.0.0.1:{port}/static/admin/css/base.css")
            assert css.status_code == 200 and "body" in css.text
        finally:
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert (tmp_path / "data" / "db.sqlite3").is_file()
    assert f"web server on http://127.0.0.1:{port}/" in out
    assert "scan: height=4622139" in out and "claim_events=360" in out
    assert out.strip().endswith("stopped")
