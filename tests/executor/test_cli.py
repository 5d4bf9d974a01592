"""`python -m executor` as a user types it: real processes, the embedded store under DATA_DIR."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.executor import wat_modules as wat
from tests.helpers import process_env

HELLO_V1 = "bafkreid3yvacrpfyy4vl5imho46qghn5c3clq5vxhrqqvpzfxkdjm3i4g4"
FOLDER_V1 = "bafybeibvbwys4xy7qangjbe5axy6yokd2lu4q5c7fjmhsgbf4qzjncj44a"
ABSENT = "bafkreie7q3iidccmpvszul7kudcvvuavuo7u6gzlbobczuk5nqk3b4akba"


@pytest.fixture
def cli(tmp_path: Path):
    env = process_env(tmp_path)
    env.pop("IPFS_API_URL", None)

    def call(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "executor", *args],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    return call


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_add_prints_what_ipfs_add_prints(cli, tmp_path) -> None:
    (tmp_path / "hello.txt").write_bytes(b"hello ipfs\n")
    added = cli("add", "hello.txt")
    assert (added.returncode, added.stdout) == (0, HELLO_V1 + "\n")
    folder = tmp_path / "foldert"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_bytes(b"a\n")
    (folder / "sub" / "b.txt").write_bytes(b"bb\n")
    (folder / "sub" / "big.bin").write_bytes(_c1m())
    tree = cli("add", "foldert")
    assert tree.returncode == 0, tree.stderr
    lines = tree.stdout.split()
    assert len(lines) == 5  # a.txt, sub/b.txt, sub/big.bin, sub, foldert
    assert lines[-1] == FOLDER_V1


def _c1m() -> bytes:
    # files drawn in order from random.Random(42); c1m is the fourth draw.
    import random

    rng = random.Random(42)
    for size in (262144, 262145):
        rng.randbytes(size)
    return rng.randbytes(1 << 20)


def test_get_writes_files_and_folders(cli, tmp_path) -> None:
    (tmp_path / "d" / "s").mkdir(parents=True)
    (tmp_path / "d" / "s" / "x.txt").write_text("x\n")
    root = cli("add", "d").stdout.split()[-1]
    got = cli("get", root, "-o", "copy")
    assert got.returncode == 0, got.stderr
    assert (tmp_path / "copy" / "s" / "x.txt").read_text() == "x\n"
    again = cli("get", root, "-o", "copy")
    assert again.returncode == 2
    assert "already exists" in one_line_error(again)


def test_wasm_run_prints_the_result_cid_last(cli, tmp_path) -> None:
    (tmp_path / "exit3.wasm").write_bytes(wat.exit_with(3))
    first = cli("wasm", "run", "exit3.wasm")
    assert first.returncode == 0, first.stderr
    result = first.stdout.splitlines()[-1]
    assert result.startswith("bafybei")
    assert "exit code 3" in first.stderr
    got = cli("get", result, "-o", "out")
    assert got.returncode == 0
    assert (tmp_path / "out" / "exitCode").read_text() == "3"
    module = first.stderr.split("added exit3.wasm as ")[1].split()[0]
    by_cid = cli("wasm", "run", module)  # the same job by CID: the same result
    assert by_cid.stdout.splitlines()[-1] == result


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (("wasm", "run", "missing.wasm"), 2, "missing.wasm: no such file"),
        (("wasm", "run", "nonsense"), 2, "neither a file nor a CID"),
        (("wasm", "run", HELLO_V1, "--timeout", "soon"), 2, "invalid float value"),
        (("wasm", "run", HELLO_V1, "--memory", "12"), 2, "--memory"),
        (("wasm", "run", HELLO_V1, "-v", "nocolon"), 2, "CID:/path"),
        (("wasm", "run", HELLO_V1, "-e", "NOEQUALS"), 2, "K=V"),
        (("wasm", "run", HELLO_V1, "--bogus"), 2, "unrecognized arguments"),
        (("wasm", "run", ABSENT), 1, f"{ABSENT} was not found"),
        (("wasm", "run", "spin.wasm", "--fuel", "1000"), 1, "fuel limit of 1000 exhausted"),
        (("get", ABSENT, "-o", "x"), 1, ABSENT),
        (("get", "nope"), 2, "is not a CID"),
        (("add", "no/such/path"), 2, "no such file or directory"),
        (("frobnicate",), 2, "unknown command"),
    ],
)
def test_errors_are_one_line_and_exit_non_zero(cli, tmp_path, args, status, message) -> None:
    (tmp_path / "spin.wasm").write_bytes(wat.spin())
    proc = cli(*args)
    assert proc.returncode == status, proc.stderr
    assert message in one_line_error(proc)
    assert proc.stdout == ""


def test_help(cli) -> None:
    proc = cli("--help")
    assert proc.returncode == 0
    assert "wasm run" in proc.stdout
    assert cli("wasm", "run", "--help").returncode == 0
