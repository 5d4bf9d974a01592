"""The README's walkthrough, run as written: its shell blocks, in order, in one bash.

The commands are read from README.md, not copied here, so the walkthrough cannot drift from
what works. They run on the embedded defaults in a directory shaped like a checkout (links to
the repository's files) with DATA_DIR of its own, so nothing lands in the real checkout.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers import ROOT

SECTION = "## Walkthrough: the whole loop"
PORTS = (1234, 7777, 8000)  # the fake Lotus's, the fake SP's, the dashboard's, as it says
# Settings that would take the walkthrough off the embedded defaults.
NOT_DEFAULTS = (
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "CELERY_RESULT_BACKEND",
    "CACHE_URL",
    "IPFS_API_URL",
    "IPFS_GATEWAY_URL",
    "LOTUS_RPC_URL",
    "LOTUS_RPC_TOKEN",
    "EXECUTOR_PROVIDER",
    "FILPLUS_API_URL",
    "FILPLUS_API_KEY",
    "DATACAP_REPLICAS",
)


def walkthrough_blocks(readme: str) -> list[str]:
    """The ```sh blocks of the walkthrough section, in order."""
    assert SECTION in readme, f"README.md has no {SECTION!r} section"
    section = readme.split(SECTION + "\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^```sh\n(.*?)^```$", section, re.S | re.M)


def _in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_the_walkthrough_is_found_and_covers_the_whole_loop() -> None:
    script = "\n".join(walkthrough_blocks((ROOT / "README.md").read_text()))
    for step in (
        "tests.fake_sp --port 7777 --car-of hello.txt",
        "tests.fake_lotus --port 1234 --fixtures --provider-url f01234=",
        "/locations/$BLESSED",
        "-v $BLESSED:/inputs/hello.txt --wait",
        "manage.py serve",
        "create_moderator",
        "executor wasm run examples/wasm/cat.wat",
        "--wait",
        "executor commp",
        "/reexecutions",
        "/decision",
        "/pieces",
        "/notary/verifications/",
        "/notary/awards",
        "executor aggregate --size",
        "/notary/aggregates/",
        "/fake/claim",
        "state=landed",
        "EXECUTOR_PROVIDER=",
    ):
        assert step in script, f"the walkthrough lost its step {step!r}"


def test_the_readme_walkthrough_runs_as_written(tmp_path: Path) -> None:
    busy = [port for port in PORTS if _in_use(port)]
    if busy:
        message = f"the walkthrough needs ports {PORTS} free; {busy} in use (a `make serve`?)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    for entry in ROOT.iterdir():
        if entry.name not in {"data", ".git", "test-output"}:
            (checkout / entry.name).symlink_to(entry)
    blocks = walkthrough_blocks((ROOT / "README.md").read_text())
    # set -m: each background job gets its own process group, as in an interactive shell,
    # so the walkthrough's `kill %1 %2` reaches the servers behind them.
    script = "set -euo pipefail\nset -m\n" + "\n".join(blocks)
    env = {k: v for k, v in os.environ.items() if k not in NOT_DEFAULTS}
    env.update(DATA_DIR=str(tmp_path / "data"), PYTHONWARNINGS="ignore")
    proc = subprocess.Popen(
        ["bash", "-c", script],
        cwd=checkout,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        try:
            out, err = proc.communicate(timeout=240)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            pytest.fail(f"the walkthrough took over 240 s\n--- stdout\n{out}\n--- stderr\n{err}")
        # `kill %1 %2 %3` stops the servers, each within its grace period.
        stopped = _ports_free_within(10.0)
    finally:
        _kill_session(proc.pid)
    logs = "".join(
        f"\n--- {log}\n{(checkout / log).read_text()[-4000:]}"
        for log in ("serve.log", "lotus.log", "sp.log")
        if (checkout / log).exists()
    )
    shown = f"\n--- stdout\n{out}\n--- stderr\n{err}{logs}"
    assert proc.returncode == 0, f"exit {proc.returncode}{shown}"
    assert stopped, f"ports {PORTS} still answer after the walkthrough's `kill %1 %2 %3`"

    lines = out.splitlines()
    answers = [json.loads(line) for line in lines if line.startswith("{")]
    piece, piece_size, root = (checkout / "sp.txt").read_text().splitlines()[1].split()
    blessed = next(a for a in answers if "blessed" in a)
    assert blessed["cid"] == piece and blessed["blessed"] is True, blessed
    assert blessed["scanner"]["complete"] is True
    # Where the blessed piece is: f01234, at the fake SP's URL, as its chain address says.
    located = next(a for a in answers if "locations" in a)
    assert [(x["provider"], x["url"]) for x in located["locations"]] == [
        ("f01234", "http://127.0.0.1:7777")
    ], located
    assert located["piece_size"] == int(piece_size) and located["blessed"] is True
    # The API job mounted the piece, fetched from f01234 and checked by its CommP.
    job = next(a for a in answers if "spec" in a and "inputs" in a)
    [used] = job["inputs"]
    assert used["cid"] == piece and used["blessed"] is True, used
    assert used["retrieval"]["verified"] == "piece", used
    assert used["retrieval"]["provider"] == "f01234", used
    assert used["retrieval"]["url"] == f"http://127.0.0.1:7777/piece/{piece}", used
    # The local run and the API run print the file, and the same result CID.
    assert lines.count("Hello, FIL+!") == 2, out
    run = (checkout / "run.txt").read_text().splitlines()
    result_cid = run[-1]
    assert result_cid.startswith("bafy") and lines.count(result_cid) == 2, out
    # The moderator's re-execution of the job gave the same result CID.
    assert re.search(r'"reexecution": ?\{"state": ?"match"', out), out
    # cat copies its input: the result is measured as mostly a copy, and verified anyway
    # with that risk accepted.
    novelty = re.search(
        r'"novelty": ?\{"state": ?"measured", ?"novel_bytes": ?1, ?"total_bytes": ?14, ?'
        r'"percent": ?7.1',
        out,
    )
    assert novelty, out
    decided = [a for a in answers if "moderation" in a][-1]  # the decision's answer
    piece_cid, size = (checkout / "piece.txt").read_text().split()
    assert decided["moderation"]["state"] == "verified"
    assert decided["moderation"]["datacap_bytes"] == int(size) == 512
    question = next(a for a in answers if "verified" in a)
    assert question["verified"] is True and question["provider"] == "f01234", question
    assert question["remaining_bytes"] == int(size)
    award = next(a for a in answers if a.get("piece_cid") == piece_cid and "chain" in a)
    assert award["awarded_bytes"] == int(size) and award["remaining_bytes"] == 0
    # Two more results registered inside one aggregate, awarded as one, landed on chain.
    aggregate, aggregate_size = (checkout / "aggregate.txt").read_text().split()
    registered = [
        a
        for a in answers
        if isinstance(a.get("aggregate"), dict) and a["aggregate"]["piece_cid"] == aggregate
    ]
    assert len(registered) == 2 and {r["piece_size"] for r in registered} == {512}, registered
    asked = next(a for a in answers if "awardable_bytes" in a)
    assert asked["piece_cid"] == aggregate and [j["verified"] for j in asked["jobs"]] == [True] * 2
    assert asked["awardable_bytes"] == 1024, asked
    taken = next(a for a in answers if a.get("piece_cid") == aggregate and "chain" in a)
    assert taken["aggregate"] is True and taken["datacap_bytes"] == 1024
    assert taken["chain"]["state"] == "awaiting" and len(taken["shares"]) == 2
    listed = answers[-1]["results"]
    assert [(a["piece_cid"], a["chain"]["state"]) for a in listed] == [
        (aggregate, "landed"),
        (piece_cid, "awaiting"),  # the single piece: no claim of it on this chain
    ], listed
    assert listed[0]["piece_size"] == int(aggregate_size) == 8192


def _ports_free_within(timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while any(_in_use(port) for port in PORTS):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _kill_session(sid: int) -> None:
    """SIGKILL whatever the walkthrough left running (its servers are in process groups of
    their own, but in its session)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if os.getsid(int(entry.name)) == sid:
                    os.kill(int(entry.name), signal.SIGKILL)
