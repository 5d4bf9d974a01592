"""`python -m executor` as a user types it: real processes, the embedded store under DATA_DIR."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from executor.embedded_store import EmbeddedStore
from tests.executor import wat_modules as wat
from tests.fake_routing import FakeRouting
from tests.fake_sp import FakeSP
from tests.helpers import ROOT, process_env

HELLO_V1 = "bafkreid3yvacrpfyy4vl5imho46qghn5c3clq5vxhrqqvpzfxkdjm3i4g4"
FOLDER_V1 = "bafybeibvbwys4xy7qangjbe5axy6yokd2lu4q5c7fjmhsgbf4qzjncj44a"
ABSENT = "bafkreie7q3iidccmpvszul7kudcvvuavuo7u6gzlbobczuk5nqk3b4akba"


@pytest.fixture
def cli(tmp_path: Path):
    env = process_env(tmp_path)
    env.pop("IPFS_API_URL", None)

    def call(*args: str, **variables: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "executor", *args],
            cwd=tmp_path, env={**env, **variables}, capture_output=True, text=True, timeout=120,
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
    assert first.returncode == 3, first.stderr  # the job's exit code; the result is published
    result = first.stdout.splitlines()[-1]
    assert result.startswith("bafybei")
    assert "exit code 3" in first.stderr
    got = cli("get", result, "-o", "out")
    assert got.returncode == 0
    assert (tmp_path / "out" / "exitCode").read_text() == "3"
    module = first.stderr.split("added exit3.wasm as ")[1].split()[0]
    by_cid = cli("wasm", "run", module)  # the same job by CID: the same result
    assert by_cid.stdout.splitlines()[-1] == result


def test_wasm_run_on_either_engine_gives_the_same_result(cli, tmp_path) -> None:
    (tmp_path / "exit3.wasm").write_bytes(wat.exit_with(3))
    runs = {e: cli("wasm", "run", "exit3.wasm", "--engine", e) for e in ("cranelift", "pulley")}
    for engine, proc in runs.items():
        assert proc.returncode == 3, proc.stderr
        assert f" ms on {engine}; fuel " in proc.stderr
    cranelift, pulley = runs.values()
    assert cranelift.stdout.splitlines()[-1] == pulley.stdout.splitlines()[-1]
    fuel = [proc.stderr.split("; fuel ")[1].split(";")[0] for proc in runs.values()]
    assert fuel[0] == fuel[1]
    unknown = cli("wasm", "run", "exit3.wasm", "--engine", "v8")
    assert unknown.returncode == 2 and "--engine" in one_line_error(unknown)
    remote = cli(
        "wasm", "run", HELLO_V1, "--engine", "pulley", "--api", "http://127.0.0.1:9",
        "--api-key", "k",
    )  # fmt: skip
    assert remote.returncode == 2 and "--engine: runs here only" in one_line_error(remote)


def test_a_job_exit_code_a_shell_would_read_as_zero_exits_255(cli, tmp_path) -> None:
    (tmp_path / "exit256.wasm").write_bytes(wat.exit_with(256))
    proc = cli("wasm", "run", "exit256.wasm")
    assert proc.returncode == 255, proc.stderr
    assert "exit code 256" in proc.stderr


CAT = ROOT / "examples" / "wasm" / "cat.wat"


def test_wat_cat_shows_the_jobs_output_and_the_result_cid_last(cli, tmp_path) -> None:
    """The shipped WAT cat runs with no toolchain: its stdout on ours, then the result CID;
    a file it cannot open goes to stderr and the job's exit code 1 is ours."""
    (tmp_path / "hello.txt").write_bytes(b"hello ipfs\n")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.txt").write_bytes(b"no newline at the end")
    file_cid = cli("add", "hello.txt").stdout.strip()
    dir_cid = cli("add", "d").stdout.split()[-1]
    mounts = ["-v", f"{file_cid}:/inputs/hello.txt", "-v", f"{dir_cid}:/data"]
    run = cli("wasm", "run", str(CAT), *mounts, "/inputs/hello.txt", "/data/a.txt")
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[:-1] == ["hello ipfs", "no newline at the end"]
    assert lines[-1].startswith("bafybei") and "added " in run.stderr
    got = cli("get", lines[-1], "-o", "result")
    assert got.returncode == 0, got.stderr
    assert (tmp_path / "result" / "stdout").read_bytes() == b"hello ipfs\nno newline at the end"
    again = cli("wasm", "run", str(CAT), *mounts, "/inputs/hello.txt", "/data/a.txt")
    assert again.stdout == run.stdout  # deterministic: the same result CID

    missing = cli("wasm", "run", str(CAT), *mounts, "/data/nope.txt", "/inputs/hello.txt")
    assert missing.returncode == 1
    assert missing.stdout.splitlines()[0] == "hello ipfs"
    assert "cat: cannot open /data/nope.txt" in missing.stderr
    assert missing.stdout.splitlines()[-1].startswith("bafybei")  # still published

    quiet = cli("wasm", "run", "-q", str(CAT), *mounts, "/inputs/hello.txt")
    assert quiet.returncode == 0 and len(quiet.stdout.splitlines()) == 1
    assert quiet.stderr == ""


def test_a_wat_file_that_is_not_webassembly_text_is_a_usage_error(cli, tmp_path) -> None:
    (tmp_path / "bad.wat").write_text("(module (func $f (i32.bogus)))")
    proc = cli("wasm", "run", "bad.wat")
    assert proc.returncode == 2
    assert "bad.wat: not valid WebAssembly text" in one_line_error(proc)


def test_commp_of_a_file_and_of_a_cid(cli, tmp_path) -> None:
    """The piece of a file's bytes, and of a CID's CAR as the dashboard builds it."""
    from executor.commp import commp
    from executor.embedded_store import EmbeddedStore

    (tmp_path / "hello.txt").write_bytes(b"hello ipfs\n")
    cid = cli("add", "hello.txt").stdout.strip()
    car = io.BytesIO()
    EmbeddedStore(tmp_path / "data" / "ipfs").export_car(cid, car)
    expected = commp(car.getvalue())
    by_cid = cli("commp", cid)
    assert by_cid.returncode == 0, by_cid.stderr
    assert by_cid.stdout == f"{expected.cid} {expected.size}\n"
    (tmp_path / "x.car").write_bytes(car.getvalue())
    assert cli("commp", "x.car").stdout == by_cid.stdout
    bigger = cli("commp", "x.car", "--piece-size", str(expected.size * 4))
    assert bigger.stdout.split()[1] == str(expected.size * 4)
    assert bigger.stdout.split()[0] != expected.cid
    bad = cli("commp", "x.car", "--piece-size", "1000")
    assert bad.returncode == 2 and "--piece-size" in one_line_error(bad)
    absent = cli("commp", ABSENT)
    assert absent.returncode == 1 and ABSENT in one_line_error(absent)


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


# Some of these were a traceback before: nan and inf for the timeout (a negative one too, in the
# calls that stream), and superscript digits for the limit, which str.isdigit() takes and int()
# does not.
@pytest.mark.parametrize(
    ("variables", "args", "message"),
    [
        *(
            (
                {"IPFS_API_URL": "http://127.0.0.1:9", "IPFS_FIND_TIMEOUT_S": value},
                ("get", HELLO_V1, "-o", "x"),
                f"IPFS_FIND_TIMEOUT_S must be a number of seconds, got {value!r}",
            )
            for value in ("soon", "nan", "inf", "-1")
        ),
        *(
            (
                {"EXECUTOR_MAX_INPUT_BYTES": value},
                ("wasm", "run", "exit3.wasm"),
                f"EXECUTOR_MAX_INPUT_BYTES must be a positive number of bytes, got {value!r}",
            )
            for value in ("0", "4G", "\u00b2")
        ),
    ],
)
def test_a_bad_variable_is_a_one_line_error_naming_it(
    cli, tmp_path, variables, args, message
) -> None:
    (tmp_path / "exit3.wasm").write_bytes(wat.exit_with(3))
    proc = cli(*args, **variables)
    assert proc.returncode == 1, proc.stderr
    assert message in one_line_error(proc)


def test_help(cli) -> None:
    proc = cli("--help")
    assert proc.returncode == 0
    assert "wasm run" in proc.stdout
    assert cli("wasm", "run", "--help").returncode == 0


def test_a_local_run_fetches_a_missing_input_from_routing_or_a_gateway(cli, tmp_path) -> None:
    # No dashboard: IPNI_URL and IPFS_GATEWAYS alone find a provider; the input is kept.
    elsewhere = EmbeddedStore(tmp_path / "sp")
    (tmp_path / "payload").mkdir()
    (tmp_path / "payload" / "hello.txt").write_bytes(b"fetched from afar\n")
    folder = elsewhere.add_path(tmp_path / "payload")[-1].cid
    (tmp_path / "reader.wasm").write_bytes(wat.clock_random_and_input("hello.txt"))
    with FakeSP(elsewhere) as sp, FakeRouting() as router:
        router.add(folder, sp.multiaddr)
        nowhere = cli("wasm", "run", "reader.wasm", "-v", f"{folder}:/in", IPNI_URL="")
        assert nowhere.returncode == 1 and f"{folder} was not found" in one_line_error(nowhere)
        routed = cli("wasm", "run", "reader.wasm", "-v", f"{folder}:/in", IPNI_URL=router.url)
        assert routed.returncode == 0, routed.stderr
        assert "fetched from afar" in routed.stdout
        assert router.requests[folder] == 1 and sp.total_requests() == 1
        again = cli("wasm", "run", "reader.wasm", "-v", f"{folder}:/in", IPNI_URL="")
        assert again.returncode == 0 and sp.total_requests() == 1
    other = tmp_path / "other"
    other.mkdir()
    with FakeSP(elsewhere) as sp:
        by_gateway = cli(
            "wasm", "run", "reader.wasm", "-v", f"{folder}:/in",
            IPNI_URL="", IPFS_GATEWAYS=f"{sp.url}/", DATA_DIR=str(other),
        )  # fmt: skip
        assert by_gateway.returncode == 0, by_gateway.stderr
        assert "fetched from afar" in by_gateway.stdout
    bad = cli("wasm", "run", "reader.wasm", "-v", f"{folder}:/in", IPFS_GATEWAYS="ftp://x")
    assert bad.returncode == 1 and "IPFS_GATEWAYS" in one_line_error(bad)
