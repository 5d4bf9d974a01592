"""`manage.py scan_chain`: output, errors, signals and progress bars."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from tests.chain_data import make_deal
from tests.chain_scanner.dumps import write_dump
from tests.fake_lotus import FakeChain, FakeLotusServer
from tests.helpers import ROOT, free_port, manage, process_env, silent_node, spawn


@pytest.mark.django_db
def test_once_prints_one_summary_line(scanner_settings) -> None:  # type: ignore[no-untyped-def]
    out = io.StringIO()
    call_command("scan_chain", "--once", stdout=out, stderr=io.StringIO())
    lines = out.getvalue().strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("scan: height=4622140 ")
    assert " events=claim:360,claim-updated:0,claim-removed:0,deal-published:0," in lines[0]
    assert "claim_events=360" in lines[0] and "errors=0" in lines[0]


def _dead_url() -> str:
    return f"http://127.0.0.1:{free_port()}/rpc/v1"


@pytest.mark.django_db
def test_unreachable_endpoint_is_a_clear_error(settings) -> None:  # type: ignore[no-untyped-def]
    settings.LOTUS_RPC_URL = _dead_url()
    settings.LOTUS_RPC_RETRIES = 1
    with pytest.raises(CommandError, match="scan failed: Lotus endpoint http://127.0.0.1"):
        call_command("scan_chain", "--once")


def test_command_line_errors_exit_non_zero_without_traceback(tmp_path: Path) -> None:
    env = process_env(tmp_path, LOTUS_RPC_URL=_dead_url(), LOTUS_RPC_RETRIES="0")
    assert manage(env, "migrate", "-v0").returncode == 0
    cases = [
        (["scan_chain"], "one of the arguments --once --follow --import-dump is required"),
        (["scan_chain", "--import-dump", str(tmp_path / "nope.json")], "cannot read"),
        (["scan_chain", "--once"], "is unavailable"),
    ]
    for args, message in cases:
        result = manage(env, *args)
        assert result.returncode != 0
        assert message in result.stderr
        assert "Traceback" not in result.stderr


def test_bad_environment_fails_at_start_up_naming_the_variable(tmp_path: Path) -> None:
    cases = {
        "SCANNER_INTERVAL_S": "soon",
        "SCANNER_START_EPOCH": "-5",
        "DATABASE_URL": "mysql://localhost/x",
        "LOTUS_RPC_URL": "ftp://example",
        "EXECUTOR_PROVIDER": "t1abc",
        "DEBUG": "maybe",
        "SCANNER_EVENT_RANGE": "5000",
    }
    for name, value in cases.items():
        result = manage(process_env(tmp_path, **{name: value}), "check")
        assert result.returncode != 0, name
        assert name in result.stderr, result.stderr
    result = manage(process_env(tmp_path, SECRET_KEY="x" * 50), "check")
    assert result.returncode != 0 and "ALLOWED_HOSTS" in result.stderr


def test_follow_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    with FakeLotusServer(FakeChain.from_fixtures()) as lotus:
        env = process_env(tmp_path, LOTUS_RPC_URL=lotus.url, SCANNER_START_EPOCH="4622000")
        assert manage(env, "migrate", "-v0").returncode == 0
        proc = spawn(env, "scan_chain", "--follow", "--interval", "0.2")
        deadline = time.monotonic() + 30
        while lotus.requests["ChainGetFinalizedTipSet"] < 2:  # at least two passes ran
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert out.count("scan: height=") >= 2
    assert out.strip().endswith("scanner stopped")


def test_progress_bars_on_a_terminal(tmp_path: Path) -> None:
    dump = write_dump(
        tmp_path / "d.json",
        [(i, make_deal(i, start_epoch=1, end_epoch=9)) for i in range(1, 2000)],
    )
    env = process_env(tmp_path)
    assert manage(env, "migrate", "-v0").returncode == 0
    parent, child = pty.openpty()
    # A real terminal has a size; tqdm draws nothing on a zero-width one.
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "scan_chain", "--import-dump", str(dump)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=child,
        text=True,
    )
    os.close(child)
    chunks = []
    while True:
        try:
            data = os.read(parent, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=60)
    os.close(parent)
    terminal = b"".join(chunks).decode()
    assert proc.returncode == 0
    assert "import" in terminal and "100%" in terminal
    assert proc.stdout is not None and "dump imported:" in proc.stdout.read()


def test_follow_on_a_silent_node_second_ctrl_c_stops_at_once(tmp_path: Path) -> None:
    """The pass is stuck in a read from a node that never answers: the first Ctrl-C asks for
    a stop after the batch, the second ends the process at once, without a traceback."""
    asked = threading.Event()
    with silent_node(asked) as url:
        env = process_env(tmp_path, LOTUS_RPC_URL=url)
        assert manage(env, "migrate", "-v0").returncode == 0
        proc = spawn(env, "scan_chain", "--follow")
        assert asked.wait(60), "the scanner never asked the node"
        time.sleep(0.3)  # from the request's bytes to the read that waits for its answer
        proc.send_signal(signal.SIGINT)
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, (out, err)
    assert "stopping after the current batch (Ctrl-C again to stop at once)" in err
    assert "stopped at once" in err and "Traceback" not in err
