"""The Docker engine on a real, private dockerd (tests/executor/docker_daemon.py).

Jobs run in `tiny:1` (busybox) and `local/debian-py:bookworm` (Debian with python3), both
built locally. Every test that runs a container also checks that none is left behind.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import docker
import pytest
from docker.errors import APIError

from executor.docker_engine import (
    DEFAULT_NANO_CPUS,
    DEFAULT_PIDS_LIMIT,
    DEFAULT_TMP_BYTES,
    LABEL,
    MIN_MEMORY_BYTES,
    ContainerOutcome,
    ContainerRunError,
    _container,
    run_container,
)
from executor.embedded_store import EmbeddedStore
from executor.run import JobFailed, run_job
from executor.spec import parse_spec
from executor.wasm import Mount
from tests.executor.docker_daemon import TINY_IMAGE, DockerDaemon
from tests.executor.docker_fixtures import (  # noqa: F401 (fixtures, by their names)
    debian_image_fixture,
    docker_daemon_fixture,
    docker_env_fixture,
    docker_host_fixture,
)
from tests.helpers import ROOT

MiB = 1024 * 1024


@pytest.fixture
def engine(docker_env: str, docker_daemon: DockerDaemon) -> Iterator[docker.DockerClient]:
    """A client on the session's daemon; after the test, no job container may remain."""
    with docker_daemon.client() as client:
        yield client
        left = client.containers.list(all=True, filters={"label": LABEL})
        assert not left, f"containers left behind: {[c.name for c in left]}"


@dataclass
class Job:
    """Host side of one container run: an input dir mounted at /in, outputs, log files."""

    root: Path

    @property
    def inputs(self) -> Path:
        return self.root / "in"

    @property
    def outputs(self) -> Path:
        return self.root / "outputs"

    def stdout(self) -> bytes:
        return (self.root / "stdout").read_bytes()

    def stderr(self) -> str:
        return (self.root / "stderr").read_text(errors="replace")

    def run(
        self,
        command: list[str],
        *,
        image: str = TINY_IMAGE,
        env: tuple[tuple[str, str], ...] = (),
        timeout_s: float = 60,
        memory_bytes: int = 64 * MiB,
        **options: object,
    ) -> ContainerOutcome:
        return run_container(
            image=image,
            entrypoint=command,
            env=env,
            mounts=[Mount(self.inputs, "/in"), Mount(self.outputs, "/outputs", writable=True)],
            stdout=self.root / "stdout",
            stderr=self.root / "stderr",
            timeout_s=timeout_s,
            memory_bytes=memory_bytes,
            **options,  # type: ignore[arg-type]
        )


@pytest.fixture
def job(tmp_path: Path) -> Job:
    job = Job(tmp_path / "job")
    job.inputs.mkdir(parents=True)
    job.outputs.mkdir()
    (job.inputs / "words.txt").write_text("alpha beta\ngamma\n")
    return job


def sh(script: str) -> list[str]:
    return ["/bin/sh", "-c", script]


# --- a job runs, its output lands where the result layout expects it ------------------------


def test_job_writes_outputs_stdout_and_stderr(engine: docker.DockerClient, job: Job) -> None:
    outcome = job.run(
        sh('echo "hello $GREETING"; echo warning >&2; tr a-z A-Z < /in/words.txt > /outputs/up'),
        env=(("GREETING", "world"),),
    )
    assert outcome.exit_code == 0
    assert outcome.runtime_ms > 0
    assert job.stdout() == b"hello world\n"
    assert job.stderr() == "warning\n"
    assert (job.outputs / "up").read_text() == "ALPHA BETA\nGAMMA\n"


def test_non_zero_exit_is_recorded(engine: docker.DockerClient, job: Job) -> None:
    assert job.run(sh("echo partial; exit 42")).exit_code == 42
    assert job.stdout() == b"partial\n"


def test_output_is_byte_exact(engine: docker.DockerClient, job: Job) -> None:
    # Not valid UTF-8, no trailing newline, stdout and stderr interleaved: a log driver would
    # re-encode or re-split this; the attach stream must not.
    outcome = job.run(sh(r"printf '\377\000\001'; printf 'e1' >&2; printf '\n\376'; printf e2 >&2"))
    assert outcome.exit_code == 0
    assert job.stdout() == b"\xff\x00\x01\n\xfe"
    assert job.stderr() == "e1e2"


def test_large_output_is_streamed_to_disk(engine: docker.DockerClient, tmp_path: Path) -> None:
    # In a child process so that its peak RSS measures the copy alone.
    size = 96 * MiB
    script = f"""
import resource, sys
from pathlib import Path
from executor.docker_engine import run_container
from executor.wasm import Mount
root = Path(sys.argv[1])
(root / "out").mkdir()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
outcome = run_container(
    image="{TINY_IMAGE}", entrypoint=["/bin/sh", "-c", "head -c {size} /dev/zero"], env=(),
    mounts=[Mount(root / "out", "/outputs", True)], stdout=root / "stdout",
    stderr=root / "stderr", timeout_s=120, memory_bytes=64 << 20)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(outcome.exit_code, (after - before) * 1024)
"""
    child = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert child.returncode == 0, child.stderr
    exit_code, growth = map(int, child.stdout.split())
    assert exit_code == 0
    assert (tmp_path / "stdout").stat().st_size == size
    assert growth < 32 * MiB, f"peak RSS grew by {growth} bytes for {size} bytes of output"


# --- isolation -------------------------------------------------------------------------------


def test_inputs_are_read_only(engine: docker.DockerClient, job: Job) -> None:
    outcome = job.run(sh("echo changed > /in/words.txt || exit 7; echo wrote"))
    assert outcome.exit_code == 7
    assert "Read-only file system" in job.stderr()
    assert (job.inputs / "words.txt").read_text() == "alpha beta\ngamma\n"
    assert job.run(sh("touch /in/new")).exit_code != 0
    assert not (job.inputs / "new").exists()


def test_root_is_read_only_and_tmp_is_writable(engine: docker.DockerClient, job: Job) -> None:
    outcome = job.run(
        sh("touch /etc/x /bin/x /x 2>/dev/null && exit 9; echo ok > /tmp/t; cat /tmp/t")
    )
    assert outcome.exit_code == 0, job.stderr()
    assert job.stdout() == b"ok\n"


def test_no_network(engine: docker.DockerClient, job: Job) -> None:
    outcome = job.run(sh("ls /sys/class/net; nc -w 3 1.1.1.1 80 </dev/null && exit 9; exit 0"))
    assert outcome.exit_code == 0
    assert job.stdout() == b"lo\n"  # the loopback interface alone
    assert "Network is unreachable" in job.stderr()


def test_capabilities_dropped_and_no_new_privileges(engine: docker.DockerClient, job: Job) -> None:
    assert job.run(["/bin/cat", "/proc/self/status"]).exit_code == 0
    status = dict(
        line.split(":\t", 1) for line in job.stdout().decode().splitlines() if ":\t" in line
    )
    for field in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert status[field] == "0000000000000000", field
    assert status["NoNewPrivs"] == "1"


def test_limits_reach_the_kernel(engine: docker.DockerClient, job: Job) -> None:
    def read(v2: str, v1: str) -> str:
        # cgroup v2 and v1 name the files differently; the container sees its own cgroup.
        script = f"cat /sys/fs/cgroup/{v2} 2>/dev/null || cat /sys/fs/cgroup/{v1}"
        outcome = job.run(sh(script), memory_bytes=48 * MiB, nano_cpus=500_000_000, pids_limit=32)
        assert outcome.exit_code == 0, job.stderr()
        return job.stdout().decode().strip()

    assert read("memory.max", "memory/memory.limit_in_bytes") == str(48 * MiB)
    swap = read("memory.swap.max", "memory/memory.memsw.limit_in_bytes")
    assert swap in ("0", str(48 * MiB))  # v2 counts swap apart, v1 memory + swap together
    cpu = read("cpu.max", "cpu/cpu.cfs_quota_us")
    assert cpu.split()[0] == "50000"  # half of each 100 ms period
    assert read("pids.max", "pids/pids.max") == "32"


def test_pids_limit_stops_forks(engine: docker.DockerClient, job: Job) -> None:
    outcome = job.run(sh("for i in $(seq 40); do sleep 5 & done; exit 0"), pids_limit=16)
    assert outcome.exit_code != 0 or "can't fork" in job.stderr()
    assert "fork" in job.stderr()


def test_files_in_outputs_belong_to_the_executor(engine: docker.DockerClient, job: Job) -> None:
    assert job.run(sh("mkdir /outputs/d && echo x > /outputs/d/f")).exit_code == 0
    for path in (job.outputs / "d", job.outputs / "d" / "f"):
        assert (path.stat().st_uid, path.stat().st_gid) == (os.getuid(), os.getgid())


# --- failures with a reason ------------------------------------------------------------------


def test_out_of_memory_fails_naming_the_limit(engine: docker.DockerClient, job: Job) -> None:
    script = "x=$(head -c 100000000 /dev/zero | tr '\\0' a); echo ${#x}"
    # The engine may not confirm the OOM kill (see run_container); the reason names the limit
    # either way.
    with pytest.raises(ContainerRunError, match=r"memory limit of 16777216 bytes \(16 MiB\)"):
        job.run(sh(script), memory_bytes=16 * MiB)


def test_a_sigkill_exit_fails_the_job(engine: docker.DockerClient, job: Job) -> None:
    # Exit code 137 cannot be told apart from an OOM kill the engine did not report.
    with pytest.raises(ContainerRunError, match=r"killed by SIGKILL \(exit code 137\)"):
        job.run(sh("sleep 30 & kill -9 $!; wait $!"))


def test_timeout_kills_and_removes_the_container(engine: docker.DockerClient, job: Job) -> None:
    started = time.monotonic()
    with pytest.raises(ContainerRunError, match=r"wall-time limit of 1\.5 s"):
        job.run(sh("echo started; sleep 60"), timeout_s=1.5)
    assert time.monotonic() - started < 15
    assert job.stdout() == b"started\n"  # what it wrote before the kill is kept
    assert engine.containers.list(all=True, filters={"label": LABEL}) == []


def test_quiet_job_longer_than_the_api_timeout_is_not_cut(
    engine: docker.DockerClient, job: Job
) -> None:
    # The SDK's read timeout must end neither the wait nor the output stream.
    outcome = job.run(sh("sleep 4; echo late"), timeout_s=30, api_timeout_s=2)
    assert outcome.exit_code == 0
    assert job.stdout() == b"late\n"


def test_missing_image_without_pulls(
    engine: docker.DockerClient, job: Job, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EXECUTOR_DOCKER_PULL", raising=False)
    with pytest.raises(ContainerRunError) as failure:
        job.run(["true"], image="filplus-test/absent:1")
    message = str(failure.value)
    assert "filplus-test/absent:1" in message
    assert "EXECUTOR_DOCKER_PULL=1" in message
    assert "\n" not in message


def test_missing_image_with_pulls_reports_the_pull(
    engine: docker.DockerClient, job: Job, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No registry is reachable here, and elsewhere the repository does not exist: either way
    # the pull fails, and the reason says it was a pull.
    monkeypatch.setenv("EXECUTOR_DOCKER_PULL", "1")
    with pytest.raises(ContainerRunError, match=r"pulling the image filplus-test/absent:1 failed"):
        job.run(["true"], image="filplus-test/absent:1")


def test_missing_executable(engine: docker.DockerClient, job: Job) -> None:
    with pytest.raises(ContainerRunError, match=r'could not start: exec: "no-such-tool"'):
        job.run(["no-such-tool", "--help"])


def test_image_without_command_needs_an_entrypoint(engine: docker.DockerClient, job: Job) -> None:
    with pytest.raises(ContainerRunError, match=r"tiny:1 has no default command"):
        job.run([])


def test_memory_below_dockers_minimum(job: Job) -> None:
    with pytest.raises(ContainerRunError, match=rf"at least {MIN_MEMORY_BYTES} bytes"):
        job.run(["true"], memory_bytes=65536)


def test_unreachable_engine_names_docker_host(
    job: Job, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = f"unix://{tmp_path}/nothing.sock"
    monkeypatch.setenv("DOCKER_HOST", host)
    with pytest.raises(ContainerRunError, match=rf"DOCKER_HOST={host} is unreachable"):
        job.run(["true"])


@pytest.mark.slow
def test_interrupt_removes_the_container(
    engine: docker.DockerClient, docker_env: str, tmp_path: Path
) -> None:
    script = f"""
import sys
from pathlib import Path
from executor.docker_engine import run_container
from executor.wasm import Mount
root = Path(sys.argv[1])
(root / "out").mkdir()
try:
    run_container(image="{TINY_IMAGE}", entrypoint=["sleep", "60"], env=(),
        mounts=[Mount(root / "out", "/outputs", True)], stdout=root / "stdout",
        stderr=root / "stderr", timeout_s=120, memory_bytes=64 << 20)
except KeyboardInterrupt:
    print("interrupted")
"""
    child = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path)],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not engine.containers.list(filters={"label": LABEL, "status": "running"}):
            assert time.monotonic() < deadline, "the container never started"
            assert child.poll() is None, child.communicate()
            time.sleep(0.05)
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    assert out.strip() == "interrupted", err
    # The `engine` fixture checks that the container is gone.


# --- a removal failure is reported only when nothing else is: the first reason wins -----------
# A real engine cannot be made to fail a removal on demand, so these give `_container` a client
# whose engine cannot remove containers.


class EngineThatCannotRemove:
    """Stands in for a docker.DockerClient: creates containers (or fails to), removes none."""

    def __init__(self, create_error: Exception | None = None) -> None:
        self.create_error = create_error
        self.removed: list[str] = []
        self.containers = SimpleNamespace(create=self._create)
        self.api = SimpleNamespace(remove_container=self._remove_container)

    def _create(self, image: str, **options: Any) -> SimpleNamespace:
        if self.create_error is not None:
            raise self.create_error
        return SimpleNamespace(id="c0ffee", name=options["name"])

    def _remove_container(self, name: str, **options: Any) -> None:
        self.removed.append(name)
        raise APIError("500 Server Error", explanation="device or resource busy")


def open_container(client: EngineThatCannotRemove) -> AbstractContextManager[Any]:
    return _container(
        client,
        name="filplus-job-test",
        image=TINY_IMAGE,
        entrypoint=["true"],
        env=(),
        mounts=(),
        memory_bytes=MIN_MEMORY_BYTES,
        nano_cpus=DEFAULT_NANO_CPUS,
        pids_limit=DEFAULT_PIDS_LIMIT,
        tmp_bytes=DEFAULT_TMP_BYTES,
        user="0:0",
    )


def test_a_removal_failure_is_reported_when_nothing_else_failed() -> None:
    client = EngineThatCannotRemove()
    with (
        pytest.raises(ContainerRunError, match=r"^removing the container filplus-job-test failed"),
        open_container(client) as container,
    ):
        assert container.name == "filplus-job-test"
    assert client.removed == ["filplus-job-test"]


@pytest.mark.parametrize(
    "failure",
    [
        ContainerRunError("the job exceeded its wall-time limit of 1 s and was killed"),
        KeyboardInterrupt(),
    ],
    ids=["job-failed", "ctrl-c"],
)
def test_the_first_reason_wins_over_a_removal_failure(failure: BaseException) -> None:
    client = EngineThatCannotRemove()
    with pytest.raises(type(failure)) as raised, open_container(client):
        raise failure
    assert raised.value is failure
    assert client.removed == ["filplus-job-test"]


def test_a_container_that_failed_to_be_created_is_removed_too() -> None:
    # The engine may have made the container before the call failed.
    client = EngineThatCannotRemove(APIError("500 Server Error", explanation="no space left"))
    with (
        pytest.raises(ContainerRunError, match=r"^the container could not be created: no space"),
        open_container(client),
    ):
        pytest.fail("the block ran without a container")
    assert client.removed == ["filplus-job-test"]


# --- a realistic image, and the whole job path -----------------------------------------------


def test_python_job_on_debian(engine: docker.DockerClient, debian_image: str, job: Job) -> None:
    numbers = [3, 141, 59, 26, 5358, 97]
    (job.inputs / "numbers.txt").write_text("".join(f"{n}\n" for n in numbers))
    # python3-minimal has no json module; the image is what debootstrap's minbase gives.
    program = (
        "import hashlib, sys\n"
        "data = open('/in/numbers.txt', 'rb').read()\n"
        "values = [int(line) for line in data.split()]\n"
        "with open('/outputs/result.txt', 'w') as out:\n"
        "    print(sum(values), max(values), hashlib.sha256(data).hexdigest(), file=out)\n"
        "print(sys.version_info[0], len(values))\n"
    )
    outcome = job.run(["python3", "-c", program], image=debian_image, memory_bytes=128 * MiB)
    assert outcome.exit_code == 0, job.stderr()
    assert job.stdout() == b"3 6\n"
    data = (job.inputs / "numbers.txt").read_bytes()
    expected = f"{sum(numbers)} {max(numbers)} {hashlib.sha256(data).hexdigest()}\n"
    assert (job.outputs / "result.txt").read_text() == expected


def test_run_job_end_to_end(engine: docker.DockerClient, debian_image: str, tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "ipfs")
    text = "the quick brown fox\njumps over\nthe lazy dog\n"
    input_cid = store.add_bytes(text.encode())
    spec = parse_spec(
        {
            "engine": "docker",
            "docker": {
                "image": debian_image,
                "entrypoint": [
                    "python3",
                    "-c",
                    "import collections, os\n"
                    "words = open('/data/text.txt').read().split()\n"
                    "top = collections.Counter(words).most_common(1)[0]\n"
                    "print(os.environ['LABEL'], len(words))\n"
                    "os.makedirs('/outputs/stats')\n"
                    "open('/outputs/stats/top.txt', 'w').write(f'{top[0]} {top[1]}')\n",
                ],
                "env": {"LABEL": "words"},
            },
            "inputs": [{"cid": input_cid, "path": "/data/text.txt"}],
            "limits": {"timeout_s": 120, "memory_bytes": 128 * MiB},
        }
    )
    result = run_job(spec, store)
    assert result.exit_code == 0
    assert store.cat(result.stdout_cid) == b"words 9\n"
    assert store.cat(result.stderr_cid) == b""
    names = {e.name: e for e in store.ls(result.result_cid)}
    assert set(names) == {"exitCode", "outputs", "stderr", "stdout"}
    assert store.cat(names["exitCode"].cid) == b"0"
    assert names["outputs"].cid == result.outputs_cid
    assert [e.name for e in store.ls(result.outputs_cid)] == ["stats"]
    fetched = store.get(result.outputs_cid, tmp_path / "fetched")
    assert (fetched / "stats" / "top.txt").read_text() == "the 2"
    # The result directory depends only on what the job wrote: the same job, the same CID.
    assert run_job(spec, store).result_cid == result.result_cid


def test_run_job_failure_reason(engine: docker.DockerClient, tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "ipfs")
    spec = parse_spec(
        {
            "engine": "docker",
            "docker": {"image": TINY_IMAGE, "entrypoint": ["sleep", "30"]},
            "limits": {"timeout_s": 1},
        }
    )
    with pytest.raises(JobFailed, match=r"wall-time limit of 1 s"):
        run_job(spec, store)


def test_cli_docker_run(engine: docker.DockerClient, docker_env: str, tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT), DATA_DIR=str(tmp_path / "data"))
    env.pop("IPFS_API_URL", None)
    env.pop("FILPLUS_API_URL", None)
    store = EmbeddedStore(tmp_path / "data" / "ipfs")
    input_cid = store.add_bytes(b"3\n4\n")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "executor", "docker", "run", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    run = cli(TINY_IMAGE, "-v", f"{input_cid}:/in/n.txt", "--", "sh", "-c", "wc -l < /in/n.txt")
    assert run.returncode == 0, run.stderr
    result_cid = run.stdout.split()[-1]
    names = {e.name: e.cid for e in store.ls(result_cid)}
    assert store.cat(names["stdout"]) == b"2\n"
    failed = cli("filplus-test/absent:1", "--", "true")
    assert failed.returncode == 1
    assert "filplus-test/absent:1" in failed.stderr
    assert "Traceback" not in failed.stderr
