"""Run one job in a Docker container, locked down by the rules of docs/jobs.md.

The container has no network (`network_mode="none"`), a read-only root, its inputs bind-mounted
read-only, `/outputs` as its only writable bind mount, a small tmpfs `/tmp`, memory (with no
swap on top, so going over kills), CPU and pids limits, no capabilities and
`no-new-privileges`. Images are never pulled unless pulls are switched on
(`EXECUTOR_DOCKER_PULL=1` or `pull=True`): a node runs the images its operator put there.

The engine is the one `DOCKER_HOST` names (`docker.from_env()`). Container output is read from
an attach stream opened before the start, so stdout and stderr reach their files byte for byte
(a log driver would re-encode them) and are never held in memory. Whatever happens — an exit,
a timeout, an error or Ctrl-C — the container is removed. Containers carry the label
`org.filplus.executor=job`, so an operator can find any that a killed executor left.

Exit code 137 (SIGKILL) fails the job with the memory limit as the likely reason, even when
the engine does not report an OOM kill; see `run_container`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import docker
import requests
from docker.errors import APIError, DockerException, ImageNotFound, NotFound
from docker.types import LogConfig
from docker.types import Mount as DockerMount
from docker.utils.socket import STDERR, STDOUT, frames_iter

from executor import environment, outcomes
from executor.environment import DOCKER_PULL as PULL_ENV
from executor.wasm import Mount

__all__ = [
    "DEFAULT_API_TIMEOUT_S",
    "DEFAULT_NANO_CPUS",
    "DEFAULT_PIDS_LIMIT",
    "DEFAULT_TMP_BYTES",
    "LABEL",
    "MIN_MEMORY_BYTES",
    "PULL_ENV",
    "ContainerCancelled",
    "ContainerOutcome",
    "ContainerRunError",
    "run_container",
]

DEFAULT_NANO_CPUS = 1_000_000_000  # one CPU
DEFAULT_PIDS_LIMIT = 256
DEFAULT_TMP_BYTES = 64 * 1024 * 1024
DEFAULT_API_TIMEOUT_S = 60
# Docker refuses smaller memory limits ("Minimum memory limit allowed is 6MB").
MIN_MEMORY_BYTES = 6 * 1024 * 1024
LABEL = "org.filplus.executor"
# How long output may keep arriving after the container has exited before we stop reading.
_DRAIN_TIMEOUT_S = 30.0
_STOP_TIMEOUT_S = 30.0
_OOM_EVENT_WAIT_S = 0.5
_SIGKILL_EXIT = 128 + signal.SIGKILL


class ContainerRunError(Exception):
    """The job could not run to an exit; the message is the one-line reason shown to people.
    `outcome` says how the run ended (executor/outcomes.py), None when it never started."""

    def __init__(self, message: str, outcome: str | None = None) -> None:
        super().__init__(message)
        self.outcome = outcome


class ContainerCancelled(ContainerRunError):
    """The job was cancelled while its container ran; the container was killed."""


@dataclass(frozen=True)
class ContainerOutcome:
    exit_code: int
    runtime_ms: int


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _api_reason(exc: APIError) -> str:
    explanation = exc.explanation
    if isinstance(explanation, bytes):
        explanation = explanation.decode("utf-8", "replace")
    return _one_line(explanation or exc)


def _start_reason(exc: APIError) -> str:
    # runc's message nests every layer ("failed to create shim task: OCI runtime create
    # failed: ..."); the part after the last layer is what the submitter can act on.
    reason = _api_reason(exc)
    _, found, tail = reason.rpartition("unable to start container process: ")
    if found:
        reason = tail.removesuffix(": unknown")
    return reason


def _engine_name() -> str:
    host = environment.docker_host()
    if host:
        return f"DOCKER_HOST={host}"
    return "the default unix:///var/run/docker.sock (DOCKER_HOST is not set)"


def _unreachable(exc: BaseException) -> ContainerRunError:
    return ContainerRunError(
        f"the Docker engine at {_engine_name()} is unreachable: {_one_line(exc)}; "
        "start dockerd or point DOCKER_HOST at a running engine"
    )


def _pull_enabled(pull: bool | None) -> bool:
    if pull is not None:
        return pull
    return environment.docker_pull()


def _mebibytes(n: int) -> str:
    return f"{n / (1024 * 1024):g} MiB"


def _connect(api_timeout_s: int) -> docker.DockerClient:
    try:
        client = docker.from_env(timeout=api_timeout_s)
        client.ping()
    except (DockerException, requests.RequestException) as exc:
        raise _unreachable(exc) from None
    return client


def _ensure_image(client: docker.DockerClient, image: str, pull: bool) -> None:
    try:
        client.images.get(image)
        return
    except ImageNotFound:
        pass
    except APIError as exc:
        raise ContainerRunError(f"docker.image: {image!r}: {_api_reason(exc)}") from None
    if not pull:
        raise ContainerRunError(
            f"the image {image} is not on this Docker engine and pulls are off; "
            f"load it there (docker load / docker import) or set {PULL_ENV}=1 to allow pulls"
        )
    try:
        client.images.pull(image)
    except APIError as exc:
        raise ContainerRunError(f"pulling the image {image} failed: {_api_reason(exc)}") from None


def _docker_mounts(mounts: Sequence[Mount]) -> list[DockerMount]:
    return [
        DockerMount(
            target=m.guest,
            source=str(Path(m.host).resolve()),
            type="bind",
            read_only=not m.writable,
        )
        for m in mounts
    ]


class _OutputPump:
    """Copies the attach stream's frames to the stdout and stderr files in a thread, from the
    start of the `with` block; its end closes the stream."""

    def __init__(self, sock: Any, stdout: IO[bytes], stderr: IO[bytes]) -> None:
        self._sock = sock
        self._files = {STDOUT: stdout, STDERR: stderr}
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="container-output", daemon=True)

    def __enter__(self) -> _OutputPump:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _run(self) -> None:
        try:
            for stream, chunk in frames_iter(self._sock, tty=False):
                target = self._files.get(stream)
                if target is not None:
                    target.write(chunk)
        except BaseException as exc:  # reported by finish(); a thread cannot raise to us
            self.error = exc

    def finish(self, timeout: float) -> None:
        """Wait for the stream to end; a stream that stays open past `timeout` is cut."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            self.close()
            self._thread.join(5)

    def close(self) -> None:
        raw = getattr(self._sock, "_sock", self._sock)
        with contextlib.suppress(OSError):
            raw.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self._sock.close()


def _attach(client: docker.DockerClient, container_id: str) -> Any:
    sock = client.api.attach_socket(
        container_id, params={"stdout": 1, "stderr": 1, "stream": 1, "logs": 0}
    )
    # The client's 60 s read timeout would cut off a job that is quiet for a minute; the
    # stream ends when the container exits.
    raw = getattr(sock, "_sock", sock)
    if hasattr(raw, "settimeout"):
        raw.settimeout(None)
    return sock


_CANCELLED = -1  # _wait's answer when the job was cancelled while it ran
_CANCEL_POLL_S = 0.5


def _wait(container: Any, timeout_s: float, cancel: threading.Event | None = None) -> int | None:
    """The exit code, None when the container was still running at the deadline, or
    _CANCELLED once `cancel` is set (checked every half second)."""
    deadline = time.monotonic() + timeout_s
    while True:
        if cancel is not None and cancel.is_set():
            return _CANCELLED
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        try:
            # The wait endpoint gives no sign of a timeout other than the read timing out.
            result = container.wait(timeout=min(left, _CANCEL_POLL_S) if cancel else left)
        except requests.RequestException as exc:
            try:
                container.reload()
            except (DockerException, requests.RequestException):
                raise _unreachable(exc) from None
            if container.attrs["State"].get("Running"):
                continue  # the loop decides whether the deadline passed
            result = container.wait(timeout=_STOP_TIMEOUT_S)
        return int(result["StatusCode"])


def run_container(
    *,
    image: str,
    entrypoint: Sequence[str],
    env: Sequence[tuple[str, str]],
    mounts: Sequence[Mount],
    stdout: Path,
    stderr: Path,
    timeout_s: float,
    memory_bytes: int,
    nano_cpus: int = DEFAULT_NANO_CPUS,
    pids_limit: int = DEFAULT_PIDS_LIMIT,
    tmp_bytes: int = DEFAULT_TMP_BYTES,
    pull: bool | None = None,
    user: str | None = None,
    api_timeout_s: int = DEFAULT_API_TIMEOUT_S,
    cancel: threading.Event | None = None,
    deadline: float | None = None,
) -> ContainerOutcome:
    """Run `entrypoint` (or the image's default command when empty) in `image`.

    `mounts` are bind mounts; those not `writable` are read-only. `stdout` and `stderr` are
    written as the container writes them. `memory_bytes` covers the processes and `/tmp`
    together, with no swap. `pull=None` reads `EXECUTOR_DOCKER_PULL`. The container runs as
    `user` (default: this process's uid:gid), so that files it leaves in `/outputs` belong to
    the executor, which publishes and then deletes them. `api_timeout_s` bounds each call to
    the engine, not the job: the wait and the output stream are bounded by `timeout_s` alone,
    counted from the start, or up to `deadline` (a time.monotonic() value) when given.

    Raises ContainerRunError with a one-line reason when the job cannot run to an exit:
    the engine is unreachable, the image is missing, the container cannot start, or it is
    killed at the memory or wall-time limit. An exit code of 137 (SIGKILL) counts as a memory
    kill: on cgroup v1 the engine sometimes loses the OOM event, and no process inside the
    container can SIGKILL its PID 1.
    """
    if memory_bytes < MIN_MEMORY_BYTES:
        raise ContainerRunError(
            f"limits.memory_bytes: Docker needs at least {MIN_MEMORY_BYTES} bytes "
            f"({_mebibytes(MIN_MEMORY_BYTES)}); the job asks for {memory_bytes}"
        )
    with contextlib.closing(_connect(api_timeout_s)) as client, _engine_errors():
        _ensure_image(client, image, _pull_enabled(pull))
        with (
            Path(stdout).open("wb") as out,
            Path(stderr).open("wb") as err,
            _container(
                client,
                name=f"filplus-job-{uuid.uuid4().hex[:16]}",
                image=image,
                entrypoint=entrypoint,
                env=env,
                mounts=mounts,
                memory_bytes=memory_bytes,
                nano_cpus=nano_cpus,
                pids_limit=pids_limit,
                tmp_bytes=tmp_bytes,
                user=user if user is not None else f"{os.getuid()}:{os.getgid()}",
            ) as container,
        ):
            with _OutputPump(_attach(client, container.id), out, err) as pump:
                started = time.monotonic()
                _start(container)
                left = timeout_s if deadline is None else deadline - time.monotonic()
                exit_code = _wait(container, left, cancel)
                runtime_ms = round((time.monotonic() - started) * 1000)
                if exit_code == _CANCELLED or exit_code is None:
                    _kill(container)
                # Drained after a kill too, to keep what the job wrote before it.
                pump.finish(_DRAIN_TIMEOUT_S)
                if exit_code == _CANCELLED:
                    raise ContainerCancelled("cancelled while running; the container was killed")
                if exit_code is None:
                    raise ContainerRunError(
                        f"the job exceeded its wall-time limit of {timeout_s:g} s and was killed",
                        outcomes.TIMED_OUT,
                    )
            if pump.error is not None:
                raise ContainerRunError(
                    f"reading the container's output failed: {_one_line(pump.error)}"
                )
            _raise_if_killed(container, exit_code, memory_bytes)
            return ContainerOutcome(exit_code=exit_code, runtime_ms=runtime_ms)


@contextlib.contextmanager
def _engine_errors() -> Iterator[None]:
    """Turns the docker and requests errors that no step explained into a one-line reason."""
    try:
        yield
    except (DockerException, requests.RequestException) as exc:
        if isinstance(exc, APIError) and exc.status_code is not None and exc.status_code < 500:
            reason = _api_reason(exc)
            raise ContainerRunError(f"the Docker engine refused the job: {reason}") from None
        raise _unreachable(exc) from None


@contextlib.contextmanager
def _container(
    client: docker.DockerClient,
    *,
    name: str,
    image: str,
    entrypoint: Sequence[str],
    env: Sequence[tuple[str, str]],
    mounts: Sequence[Mount],
    memory_bytes: int,
    nano_cpus: int,
    pids_limit: int,
    tmp_bytes: int,
    user: str,
) -> Iterator[Any]:
    """The job's container, removed when the `with` block ends however it ends.

    A failure to remove it is raised only when the block raised nothing: the first reason
    wins, and the job's own failure says more than the cleanup's.
    """
    try:
        # Removed even when creating it fails: the engine may have made it before the call
        # failed (a read timeout, say).
        try:
            container = client.containers.create(
                image,
                name=name,
                entrypoint=list(entrypoint) or None,
                environment=[f"{k}={v}" for k, v in env],
                user=user,
                labels={LABEL: "job"},
                network_mode="none",
                read_only=True,
                mounts=_docker_mounts(mounts),
                tmpfs={"/tmp": f"rw,nosuid,nodev,size={tmp_bytes},mode=1777"},
                mem_limit=memory_bytes,
                memswap_limit=memory_bytes,
                nano_cpus=nano_cpus,
                pids_limit=pids_limit,
                cap_drop=["ALL"],
                security_opt=["no-new-privileges"],
                # Output comes through the attach stream; the daemon need not keep a copy.
                log_config=LogConfig(type=LogConfig.types.NONE),
                stdin_open=False,
                tty=False,
            )
        except APIError as exc:
            raise _create_error(exc, image, entrypoint) from None
        yield container
    except BaseException:
        with contextlib.suppress(ContainerRunError):
            _remove(client, name)
        raise
    _remove(client, name)


def _create_error(exc: APIError, image: str, entrypoint: Sequence[str]) -> ContainerRunError:
    reason = _api_reason(exc)
    if not entrypoint and "no command specified" in reason.lower():
        return ContainerRunError(
            f"the image {image} has no default command; give docker.entrypoint"
        )
    return ContainerRunError(f"the container could not be created: {reason}")


def _start(container: Any) -> None:
    try:
        container.start()
    except APIError as exc:
        raise ContainerRunError(f"the container could not start: {_start_reason(exc)}") from None


def _raise_if_killed(container: Any, exit_code: int, memory_bytes: int) -> None:
    """Fails the job that the memory limit killed, whether or not the engine says so."""
    limit = f"{memory_bytes} bytes ({_mebibytes(memory_bytes)})"
    if _oom_killed(container, exit_code):
        raise ContainerRunError(
            f"the job ran out of memory: it was killed at its memory limit of {limit}"
        )
    if exit_code == _SIGKILL_EXIT:
        # 137 is a SIGKILL that we did not send: of PID 1, which nothing inside the
        # container can signal, or of a child whose status the job passed on. That is
        # the kernel's OOM killer, whose event the engine (cgroup v1) drops when the
        # cgroup is gone before it reads it: seen here under load, 2 runs in 100. So
        # 137 always fails the job, whether or not the engine confirms an OOM kill.
        raise ContainerRunError(
            f"the job was killed by SIGKILL (exit code {_SIGKILL_EXIT}), most likely "
            f"by the out-of-memory killer at its memory limit of {limit}; "
            "the engine did not report an OOM kill"
        )


def _oom_killed(container: Any, exit_code: int) -> bool:
    container.reload()
    if container.attrs["State"].get("OOMKilled"):
        return True
    if exit_code != _SIGKILL_EXIT:
        return False
    # The engine learns of an OOM kill from an event that may come after the exit event.
    deadline = time.monotonic() + _OOM_EVENT_WAIT_S
    while time.monotonic() < deadline:
        time.sleep(0.05)
        container.reload()
        if container.attrs["State"].get("OOMKilled"):
            return True
    return False


def _kill(container: Any) -> None:
    try:
        container.kill()
    except NotFound:
        return
    except APIError as exc:
        if exc.status_code != 409:  # 409: it stopped on its own meanwhile
            raise
    container.wait(timeout=_STOP_TIMEOUT_S)


def _remove(client: docker.DockerClient, name: str) -> None:
    try:
        client.api.remove_container(name, force=True, v=True)
    except NotFound:
        pass
    except (DockerException, requests.RequestException) as exc:
        raise ContainerRunError(f"removing the container {name} failed: {_one_line(exc)}") from None
