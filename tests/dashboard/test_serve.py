"""`manage.py serve`: the embedded service, as a newcomer runs it."""

from __future__ import annotations

import re
import signal
import threading
import time
from pathlib import Path

import httpx

from tests.fake_lotus import FakeChain, FakeLotusServer
from tests.helpers import free_port, manage, process_env, silent_node, spawn


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
    # the scanner's lines go through its logger (SCANNER_LOG_LEVEL), on stderr
    assert "scan: height=4622140" in err and "claim_events=360" in err
    assert "stopping the web server, scanner, executor-0" in out
    assert out.strip().endswith("stopped")


def _serve_offline(tmp_path: Path, lotus_url: str | None = None, **env: str):  # type: ignore[no-untyped-def]
    port = free_port()
    environ = process_env(
        tmp_path,
        # by default nothing listens there
        LOTUS_RPC_URL=lotus_url or f"http://127.0.0.1:{free_port()}/rpc/v1",
        SCANNER_INTERVAL_S="1",
        LOTUS_RPC_RETRIES="2",
        **env,
    )
    proc = spawn(environ, "serve", "--port", str(port))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1]
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz")
            return proc, port
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("serve did not answer within 60 s")


def test_offline_one_line_a_failed_pass_with_growing_pauses_and_a_quick_ctrl_c(
    tmp_path: Path,
) -> None:
    proc, _ = _serve_offline(tmp_path)
    time.sleep(8)  # passes at about 0, 1, 3 and 7 s: pauses of 1, 2, 4 s
    asked = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    took = time.monotonic() - asked
    assert proc.returncode == 0, err
    assert took < 2.5, f"Ctrl-C took {took:.1f} s"
    assert "retrying in" not in err  # a retry is DEBUG detail
    failed = [line for line in err.splitlines() if "scan failed" in line]
    pauses = [int(re.search(r"next pass in (\d+) s", line).group(1)) for line in failed]  # type: ignore[union-attr]
    assert pauses[:3] == [1, 2, 4], err
    assert all("after 3 attempts" in line for line in failed)
    assert "stopping the web server, scanner, executor-0 (Ctrl-C again" in out
    assert "Traceback" not in err


def test_warning_level_keeps_only_the_failed_passes(tmp_path: Path) -> None:
    proc, _ = _serve_offline(tmp_path, SCANNER_LOG_LEVEL="WARNING")
    time.sleep(2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "scanner following" not in err  # INFO is below WARNING
    assert "scan failed" in err


def test_a_second_ctrl_c_leaves_at_once_while_the_scanner_waits_on_a_silent_node(
    tmp_path: Path,
) -> None:
    """A node that accepts the connection and never answers: the scanner's thread is stuck
    in a read, the first Ctrl-C gives it a moment, the second leaves at once, no traceback."""
    asked_node = threading.Event()
    with silent_node(asked_node) as url:
        proc, _ = _serve_offline(tmp_path, url)
        assert asked_node.wait(60), "the scanner never asked the node"
        time.sleep(0.3)  # from the request's bytes to the read that waits for its answer
        proc.send_signal(signal.SIGINT)
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, (out, err)
    assert out.strip().endswith("stopped at once")
    assert "Traceback" not in err and "KeyboardInterrupt" not in err


def test_a_scanner_stuck_on_a_silent_node_does_not_hold_ctrl_c(tmp_path: Path) -> None:
    asked_node = threading.Event()
    with silent_node(asked_node) as url:
        proc, _ = _serve_offline(tmp_path, url)
        assert asked_node.wait(60), "the scanner never asked the node"
        time.sleep(0.3)  # from the request's bytes to the read that waits for its answer
        asked = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        took = time.monotonic() - asked
    assert proc.returncode == 0, err
    assert took < 2.5, f"Ctrl-C took {took:.1f} s"
    assert "left scanner mid-work (nothing is lost)" in out


def test_the_access_lines_never_show_a_key_from_a_url(tmp_path: Path) -> None:
    """A Bacalhau node's key rides in its probe URL: every access line shows the path."""
    proc, port = _serve_offline(tmp_path)
    try:
        made = manage(process_env(tmp_path), "create_api_key", "--scope", "node", "--name", "n")
        key = made.stdout.strip().splitlines()[-1]
        probe = f"http://127.0.0.1:{port}/api/v1/bacalhau/probe/"
        assert httpx.post(probe + key, json={"Job": {"Tasks": []}}).status_code == 200
        assert httpx.post(probe + key[:-1], json={}).status_code == 401  # a typo: a secret too
        # A request's line is written once its answer has gone: give the last one a moment.
        time.sleep(1)
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert f'"POST /api/v1/bacalhau/probe/{key[:12]}*** HTTP/1.1" 200' in err, err
    assert f'"POST /api/v1/bacalhau/probe/{key[:12]}*** HTTP/1.1" 401' in err, err
    assert key[12:-1] not in out + err
