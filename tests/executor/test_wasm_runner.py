"""The deterministic WASM runner, end to end on the embedded IPFS store.

Modules are real: hand-written WAT for the edge cases, and C and Rust programs built from
tests/executor/wasm_src in the test run. Expected values are computed here from the rules the
README pins, not read back from the runner.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from executor.embedded_store import EmbeddedStore
from executor.run import JobFailed, RunResult, module_cache, run_job
from executor.spec import JobSpec, parse_spec
from executor.wasm import HOST_CALL_FUEL, ModuleCache
from tests.executor import wat_modules as wat
from tests.executor.resize_reference import parse_ppm, resize
from tests.executor.wasm_build import require
from tests.helpers import ROOT, process_env

REALTIME_ORIGIN = 1_640_995_200_000_000_000


@pytest.fixture
def store(tmp_path: Path) -> EmbeddedStore:
    return EmbeddedStore(tmp_path / "ipfs")


@pytest.fixture
def cache(tmp_path: Path) -> ModuleCache:
    return ModuleCache(tmp_path / "wasm-cache")


def spec_for(module: str, *args: str, **fields: object) -> JobSpec:
    wasm = {"module": module, "args": list(args)}
    for key in ("entry_point", "env"):
        if key in fields:
            wasm[key] = fields.pop(key)
    return parse_spec({"engine": "wasm", "wasm": wasm, **fields})


def run(store: EmbeddedStore, cache: ModuleCache, spec: JobSpec) -> RunResult:
    return run_job(spec, store, cache=cache)


def stdout_of(store: EmbeddedStore, result: RunResult) -> str:
    return store.cat(result.stdout_cid).decode()


def stream(seed: bytes, n: int) -> bytes:
    """The pinned random stream: SHA-256(seed ‖ i as 8 bytes big-endian), i = 0, 1, …"""
    out = b"".join(hashlib.sha256(seed + i.to_bytes(8, "big")).digest() for i in range(n // 32 + 1))
    return out[:n]


def test_clocks_and_random_are_exactly_as_specified(store, cache) -> None:
    module = store.add_bytes(wat.clocks_and_random())
    spec = spec_for(module)
    result = run(store, cache, spec)
    lines = stdout_of(store, result).splitlines()
    assert lines[:5] == [
        str(REALTIME_ORIGIN),
        str(REALTIME_ORIGIN + 1_000_000),
        "0",
        "1000000",
        "1000000",
    ]
    seed = hashlib.sha256(spec.canonical_json()).digest()
    expected = stream(seed, 64)
    assert lines[5] == expected[:20].hex()
    assert lines[6] == expected[20:].hex()
    assert lines[7] == "28"  # EINVAL for an unknown clock id
    assert result.exit_code == 0


def test_result_directory_layout(store, cache) -> None:
    module = store.add_bytes(wat.exit_with(7))
    result = run(store, cache, spec_for(module))
    assert result.exit_code == 7
    names = {e.name: e for e in store.ls(result.result_cid)}
    assert sorted(names) == ["exitCode", "outputs", "stderr", "stdout"]
    assert store.cat(names["exitCode"].cid) == b"7"
    assert names["outputs"].is_dir and names["outputs"].cid == result.outputs_cid
    assert names["stdout"].cid == result.stdout_cid
    assert store.cat(result.stdout_cid) == b""


def test_argv0_is_the_module_cid_and_env_is_exactly_the_specs(store, cache) -> None:
    module = store.add_bytes(require("probe").read_bytes())
    args = run(store, cache, spec_for(module, "args"))
    assert stdout_of(store, args).splitlines() == [module, "args"]
    env = run(store, cache, spec_for(module, "env", env={"B": "2", "A": "x=y"}))
    assert stdout_of(store, env).splitlines() == ["A=x=y", "B=2"]


def test_rust_clocks_and_random_follow_the_rules(store, cache) -> None:
    module = store.add_bytes(require("probe").read_bytes())
    spec = spec_for(module, "time")
    lines = stdout_of(store, run(store, cache, spec)).splitlines()
    assert lines[0] == f"system_ns={REALTIME_ORIGIN}"
    assert lines[1:] == ["elapsed_ns=1000000", "elapsed_ns=2000000"]
    raw = spec_for(module, "random-raw", "48")
    assert stdout_of(store, run(store, cache, raw)).strip() == stream(raw.seed(), 48).hex()


def test_inputs_mount_read_only_and_nothing_else_is_visible(store, cache, tmp_path) -> None:
    module = store.add_bytes(require("probe").read_bytes())
    text = store.add_bytes(b"input text\n")
    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("a\n")
    (folder / "sub" / "b.txt").write_text("bb\n")
    tree = store.add_path(folder)[-1].cid
    inputs = [{"cid": text, "path": "/data/in.txt"}, {"cid": tree, "path": "/tree"}]

    def probe(*args: str) -> RunResult:
        return run(store, cache, spec_for(module, *args, inputs=inputs))

    assert stdout_of(store, probe("read", "/data/in.txt")) == "input text\n"
    assert stdout_of(store, probe("ls", "/tree")).splitlines() == ["a.txt", "sub/"]
    assert stdout_of(store, probe("read", "/tree/sub/b.txt")) == "bb\n"
    outside = probe("read", "/etc/passwd")
    assert outside.exit_code == 1
    assert "pre-opened" in stdout_of(store, outside) + store.cat(outside.stderr_cid).decode()
    for target in ("/data/in.txt", "/data/new.txt", "/tree/sub/c.txt"):
        denied = probe("write", target, "x")
        assert denied.exit_code == 1, target
        assert "ok" not in stdout_of(store, denied).split()
    written = probe("write", "/outputs/result.txt", "made here")
    assert written.exit_code == 0
    [entry] = store.ls(written.outputs_cid)
    assert (entry.name, store.cat(entry.cid)) == ("result.txt", b"made here")


def test_input_timestamps_do_not_depend_on_fetch_time(store, cache) -> None:
    module = store.add_bytes(require("probe").read_bytes())
    text = store.add_bytes(b"x")
    spec = spec_for(module, "read", "/data/in.txt", inputs=[f"{text}:/data/in.txt"])
    first = run(store, cache, spec)
    os.utime(Path(__file__), None)  # time moves on between runs
    assert run(store, cache, spec).result_cid == first.result_cid


def test_the_same_job_in_two_processes_gives_the_same_result_cid(tmp_path) -> None:
    cat = require("cat")
    data = tmp_path / "input.txt"
    data.write_bytes(b"the same bytes, whatever the machine\n" * 100)
    cids = []
    for n in range(2):
        env = process_env(tmp_path / f"node{n}")
        env.pop("IPFS_API_URL", None)
        add = subprocess.run(
            [sys.executable, "-m", "executor", "add", str(data)],
            cwd=ROOT, env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        input_cid = add.stdout.split()[-1]
        job = subprocess.run(
            [sys.executable, "-m", "executor", "wasm", "run", str(cat),
             "-v", f"{input_cid}:/inputs/input.txt", "/inputs/input.txt"],
            cwd=ROOT, env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert job.returncode == 0, job.stderr
        cids.append(job.stdout.splitlines()[-1])
    assert cids[0] == cids[1]
    assert cids[0].startswith("bafybei")


def test_an_infinite_loop_is_stopped_by_fuel_and_by_time(store, cache) -> None:
    module = store.add_bytes(wat.spin())
    with pytest.raises(JobFailed, match="fuel limit of 1000000 exhausted"):
        run(store, cache, spec_for(module, limits={"fuel": 1_000_000}))
    with pytest.raises(JobFailed, match=r"wall-time limit of 0.3 s exceeded"):
        run(store, cache, spec_for(module, limits={"timeout_s": 0.3}))


def test_memory_bombs_are_stopped(store, cache) -> None:
    limits = {"memory_bytes": 32 << 20}
    bomb = store.add_bytes(wat.memory_bomb())
    with pytest.raises(JobFailed, match="likely out of memory"):
        run(store, cache, spec_for(bomb, limits=limits))
    probe = store.add_bytes(require("probe").read_bytes())
    with pytest.raises(JobFailed, match="trapped"):
        run(store, cache, spec_for(probe, "alloc", "512", limits=limits))
    # the same program within its limit runs
    assert run(store, cache, spec_for(probe, "alloc", "8", limits=limits)).exit_code == 0


@pytest.mark.parametrize(
    ("module", "entry_point", "reason"),
    [
        (wat.only_main, "_start", "no exported function '_start'; the module exports main"),
        (wat.typed_start, "_start", "must take no parameters"),
        (wat.trap, "_start", "unreachable"),
        (wat.imports_env, "_start", "imports env.host"),
    ],
)
def test_bad_modules_fail_with_a_reason(store, cache, module, entry_point, reason) -> None:
    cid = store.add_bytes(module())
    with pytest.raises(JobFailed) as err:
        run(store, cache, spec_for(cid, entry_point=entry_point))
    assert reason in str(err.value)
    assert "\n" not in str(err.value)


def test_a_text_file_is_not_a_module(store, cache) -> None:
    cid = store.add_bytes(b"(module)")
    with pytest.raises(JobFailed, match="not a WASM binary"):
        run(store, cache, spec_for(cid))


def test_named_entry_point_and_reactor_exit_code(store, cache) -> None:
    main = run(store, cache, spec_for(store.add_bytes(wat.only_main()), entry_point="main"))
    assert stdout_of(store, main) == "012"
    reactor = run(store, cache, spec_for(store.add_bytes(wat.reactor()), entry_point="work"))
    assert (reactor.exit_code, stdout_of(store, reactor)) == (5, "init\nwork\n")


def test_exit_codes_are_recorded(store, cache) -> None:
    probe = store.add_bytes(require("probe").read_bytes())
    for code in (0, 3, 125, 126, 255, 70000):
        result = run(store, cache, spec_for(probe, "exit", str(code)))
        assert result.exit_code == code
        exit_file = {e.name: e.cid for e in store.ls(result.result_cid)}["exitCode"]
        assert store.cat(exit_file) == str(code).encode()
    # a u32 exit code from a module that calls proc_exit(-1) directly
    minus_one = run(store, cache, spec_for(store.add_bytes(wat.exit_with(-1))))
    assert minus_one.exit_code == 2**32 - 1


EBADF, ENOTSOCK = 8, 57


def test_sleeps_return_at_once_and_sockets_are_refused(store, cache) -> None:
    result = run(store, cache, spec_for(store.add_bytes(wat.sleeper()), limits={"timeout_s": 5}))
    # poll_oneoff: errno 0, one event, our userdata back; sock_accept on fd 3, the /outputs
    # preopen: ENOTSOCK, as wasmtime answers
    assert stdout_of(store, result).splitlines() == ["0", "1", "42", str(ENOTSOCK)]
    assert result.runtime_ms < 5000


def test_socket_calls_answer_as_wasmtime_does(store, cache) -> None:
    result = run(store, cache, spec_for(store.add_bytes(wat.sockets())))
    # an unopened fd is EBADF; stdout and a directory are open but not sockets
    assert stdout_of(store, result).splitlines() == [str(EBADF), str(ENOTSOCK), str(ENOTSOCK)]


def test_poll_reports_ready_fds_and_fires_clocks_only_when_none_is(store, cache) -> None:
    result = run(store, cache, spec_for(store.add_bytes(wat.poll_fds())))
    lines = stdout_of(store, result).splitlines()
    # stdout is writable: its event alone (userdata 2, no error, type fd_write), no timeout
    assert lines[:5] == ["0", "1", "2", "0", "2"]
    # fd 99 is not open: EBADF for it, and with no fd ready the clock fires
    assert lines[5:] == ["0", "2", "3", str(EBADF), "1", "4", "0", "0"]


def test_pointers_above_2_gib_are_unsigned(store, cache) -> None:
    spec = spec_for(store.add_bytes(wat.high_memory()), limits={"memory_bytes": 3 << 30})
    lines = stdout_of(store, run(store, cache, spec)).splitlines()
    seed = hashlib.sha256(spec.canonical_json()).digest()
    assert lines == ["0", "0", "0", stream(seed, 16).hex(), str(REALTIME_ORIGIN), "1000000"]


def test_random_get_is_linear_and_continues_the_stream(store, cache) -> None:
    # 4 MiB took about 111 s when each call's bytes were built quadratically; now well
    # within the job's own 60 s limit, and two calls continue one stream.
    spec = spec_for(store.add_bytes(wat.random_bytes(4 << 20, calls=2)), limits={"timeout_s": 60})
    result = run(store, cache, spec)
    seed = hashlib.sha256(spec.canonical_json()).digest()
    assert store.cat(result.stdout_cid) == stream(seed, 8 << 20)


def test_wall_time_bounds_time_spent_in_host_calls(store, cache) -> None:
    # 64 calls of 4 MiB each: far longer than the limit however fast the machine, and all of
    # it inside random_get, where no epoch check runs.
    module = store.add_bytes(wat.random_loop(4 << 20, calls=64))
    with pytest.raises(JobFailed, match=r"wall-time limit of 0.3 s exceeded"):
        run(store, cache, spec_for(module, limits={"timeout_s": 0.3, "memory_bytes": 8 << 20}))


def test_host_calls_pay_fuel_for_their_bytes(store, cache) -> None:
    # one 1 MiB random_get costs over a million fuel, whatever the guest's own code costs
    module = store.add_bytes(wat.random_loop(1 << 20, calls=1))
    with pytest.raises(JobFailed, match="fuel limit of 1000000 exhausted"):
        run(store, cache, spec_for(module, limits={"fuel": 1_000_000}))
    result = run(store, cache, spec_for(module, limits={"fuel": 2_000_000}))
    assert result.exit_code == 0
    assert result.fuel_used is not None and result.fuel_used > HOST_CALL_FUEL + (1 << 20)


def test_unknown_inputs_and_bad_mounts_fail_clearly(store, cache) -> None:
    module = store.add_bytes(wat.exit_with(0))
    absent = "bafkreie7q3iidccmpvszul7kudcvvuavuo7u6gzlbobczuk5nqk3b4akba"
    with pytest.raises(JobFailed, match=f"inputs.0: {absent} was not found"):
        run(store, cache, spec_for(module, inputs=[f"{absent}:/in/x"]))
    text = store.add_bytes(b"x")
    with pytest.raises(JobFailed, match="needs a directory"):
        run(store, cache, spec_for(module, inputs=[f"{text}:/x"]))
    tree = store.add_path(Path(__file__).parent / "wasm_src")[-1].cid
    with pytest.raises(JobFailed, match="overlap"):
        run(store, cache, spec_for(module, inputs=[f"{tree}:/in", f"{tree}:/in/deeper"]))
    with pytest.raises(JobFailed, match="already a directory mount"):
        run(store, cache, spec_for(module, inputs=[f"{tree}:/in", f"{text}:/in/x"]))


def test_compiled_modules_are_cached_by_cid(store, tmp_path) -> None:
    module = store.add_bytes(require("probe").read_bytes())
    directory = tmp_path / "cache"
    first = run(store, ModuleCache(directory), spec_for(module, "args"))
    assert first.compiled is True
    # a new cache object on the same directory: what a second process sees
    second = run(store, ModuleCache(directory), spec_for(module, "args"))
    assert second.compiled is False
    assert second.result_cid == first.result_cid
    assert module_cache(directory) is module_cache(directory)


def test_image_resize_demo(store, cache, tmp_path) -> None:
    width, height = 64, 48
    pixels = bytes((x * 4 + y) % 256 for y in range(height) for x in range(width) for _ in "rgb")
    source = b"P6\n%d %d\n255\n" % (width, height) + pixels
    image = store.add_bytes(source)
    module = store.add_bytes(require("resize").read_bytes())
    result = run(
        store,
        cache,
        spec_for(module, "/inputs/in.ppm", "20", "15", inputs=[f"{image}:/inputs/in.ppm"]),
    )
    assert result.exit_code == 0, store.cat(result.stderr_cid)
    outputs = {e.name: e.cid for e in store.ls(result.outputs_cid)}
    produced = parse_ppm(store.cat(outputs["resized.ppm"]))
    expected = resize(parse_ppm(source), 20, 15)
    assert (produced.width, produced.height) == (20, 15)
    assert produced.pixels == expected.pixels


def test_executor_never_imports_django(tmp_path) -> None:
    code = (
        "import sys, executor.cli, executor.run, executor.wasm, executor.embedded_store,"
        " executor.kubo, executor.spec, executor.cids, executor.storage, executor.backend\n"
        "bad = sorted(m for m in sys.modules if m == 'django' or m.startswith('django.'))\n"
        "print(json.dumps(bad))"
    )
    out = subprocess.run(
        [sys.executable, "-c", "import json\n" + code],
        cwd=ROOT, env=process_env(tmp_path), capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert json.loads(out.stdout) == []
    for path in (ROOT / "executor").rglob("*.py"):
        text = path.read_text()
        assert "import django" not in text and "from django" not in text, path
