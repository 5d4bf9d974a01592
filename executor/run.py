"""Run one job end to end: fetch inputs by CID, run the engine, publish the result directory.

The result is a UnixFS directory `{stdout, stderr, exitCode, outputs/}` (docs/jobs.md); its CID
is the job's result CID. `exitCode` holds the decimal exit code with no newline.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from executor import environment
from executor.environment import DEFAULT_MAX_INPUT_BYTES
from executor.outcomes import COMPLETED
from executor.retrieval import Locate, NotRetrieved, RetrievalSettings, Retriever
from executor.spec import OUTPUTS_PATH, JobSpec
from executor.storage import (
    ContentNotFound,
    FetchCancelled,
    FetchLimit,
    FetchTimedOut,
    LimitExceeded,
    Storage,
    StorageError,
    declared_size,
)
from executor.wasm import (
    DETERMINISM,
    REALTIME_START_NS,
    TARGET,
    ModuleCache,
    Mount,
    WasmCancelled,
    WasmOutcome,
    WasmRunError,
    engine_version,
    run_module,
)

if TYPE_CHECKING:
    from executor.docker_engine import ContainerOutcome

__all__ = [
    "DEFAULT_MAX_INPUT_BYTES",
    "JobCancelled",
    "JobFailed",
    "RunResult",
    "max_input_bytes",
    "module_cache",
    "prepare_inputs",
    "run_job",
]

_INPUT_TIME_S = REALTIME_START_NS // 1_000_000_000


def max_input_bytes() -> int:
    """EXECUTOR_MAX_INPUT_BYTES from the environment (the CLI has no Django settings)."""
    try:
        return environment.max_input_bytes()
    except environment.BadSetting as exc:
        raise JobFailed(str(exc)) from None


class JobFailed(Exception):
    """The job did not run to an exit; the message is the one-line reason shown to people.
    `outcome` is how the run ended (executor/outcomes.py), None when it never ran (a bad
    spec, an input that could not be fetched)."""

    def __init__(self, message: str, outcome: str | None = None) -> None:
        super().__init__(message)
        self.outcome = outcome


class JobCancelled(JobFailed):
    """The job was stopped because it was cancelled."""


@dataclass(frozen=True)
class RunResult:
    result_cid: str
    stdout_cid: str
    stderr_cid: str
    outputs_cid: str
    exit_code: int
    size_bytes: int  # bytes of the files in the result directory
    runtime_ms: int
    fuel_used: int | None = None
    compiled: bool | None = None  # WASM: False when the module came from the cache
    # Where each input came from and how it was proven, in the spec's order
    # (executor.retrieval.InputRecord.to_json()).
    inputs: tuple[dict[str, Any], ...] = ()
    receipt: dict[str, Any] | None = None  # what ran, and how it ended (`receipt`)

    def to_json(self) -> dict[str, Any]:
        """The result as a node reports it (POST /jobs/{id}/results, less the provider)."""
        return {
            "receipt": self.receipt,
            "result_cid": self.result_cid,
            "exit_code": self.exit_code,
            "stdout_cid": self.stdout_cid,
            "stderr_cid": self.stderr_cid,
            "outputs_cid": self.outputs_cid,
            "size_bytes": self.size_bytes,
            "runtime_ms": self.runtime_ms,
            "inputs": [dict(item) for item in self.inputs],
        }


def receipt(
    spec: JobSpec, *, fuel_used: int | None, outcome: str = COMPLETED, target: str = TARGET
) -> dict[str, Any]:
    """What ran and how it ended, kept beside a result rather than inside it (a result's CID
    must not change with the engine that computed it): the engine and its version, the
    settings that make runs agree, the fuel used, the outcome (executor/outcomes.py), the
    module or image, and the inputs. docs/jobs.md, "Receipts"."""
    wasm = spec.engine == "wasm"
    return {
        "engine": spec.engine,
        "runtime": engine_version() if wasm else "docker",
        "target": target if wasm else None,
        "determinism": list(DETERMINISM) if wasm else ["no_network"],
        "fuel_used": fuel_used,
        "outcome": outcome,
        "module_cid": spec.module if wasm else None,
        "image": None if wasm else spec.image,
        "input_cids": [item.cid for item in spec.inputs],
    }


_caches: dict[Path | None, ModuleCache] = {}


def module_cache(directory: Path | None) -> ModuleCache:
    """One compiled-module cache per directory in this process."""
    cache = _caches.get(directory)
    if cache is None:
        cache = _caches.setdefault(directory, ModuleCache(directory))
    return cache


def _overlaps(a: str, b: str) -> bool:
    return a == b or a.startswith(b.rstrip("/") + "/") or b.startswith(a.rstrip("/") + "/")


def prepare_inputs(
    spec: JobSpec,
    storage: Storage,
    root: Path,
    limit: FetchLimit,
    retriever: Retriever | None = None,
) -> list[Mount]:
    """Fetch every input under `root` and describe the read-only preopens that mount them.

    An input missing from the store is fetched by `retriever` (default: none, only the
    store), which also records where each input came from; a piece input is mounted as the
    DAG or the file its piece was stored as.

    A directory CID is preopened at its path. A file CID at `/dir/name` appears as `name` in
    a preopened `/dir`; files that share a directory share one preopen. Preopens may not nest,
    since which one a guest path resolves through would then depend on the WASI libc.

    The sizes the inputs' DAGs declare are added up first, and nothing is written when they
    pass `limit`; then every byte and entry written is counted against it.
    """
    preopens: dict[str, Path] = {}
    file_dirs: set[str] = set()
    kinds = []
    cids = []
    declared = 0
    if retriever is None:
        retriever = Retriever(storage, root.parent / "fetch")
    for i, mount in enumerate(spec.inputs):
        field = f"inputs.{i}"
        try:
            room = FetchLimit(limit.max_bytes - declared, limit.deadline, limit.cancel)
            cid = retriever.resolve(mount, room)
            cids.append(cid)
            kinds.append(storage.is_dir(cid))
            declared += declared_size(storage, cid, room)
        except LimitExceeded:
            raise JobFailed(
                f"{field}: the inputs declare more than their limit of {limit.max_bytes} bytes"
                " (file bytes plus 4096 a file or folder)"
            ) from None
        except NotRetrieved as exc:
            raise _not_retrieved(field, exc) from None
        except StorageError as exc:
            raise _fetch_failed(field, mount.cid, exc) from None
    for i, (mount, cid, is_dir) in enumerate(zip(spec.inputs, cids, kinds, strict=True)):
        field = f"inputs.{i}"
        if is_dir:
            guest = mount.path
            if guest in preopens:
                raise JobFailed(f"{field}: {guest} is already a mount")
            host = root / f"in{i}"
            _get(storage, cid, host, field, limit)
            preopens[guest] = host
            continue
        guest, name = posixpath.split(mount.path)
        if guest == "/":
            raise JobFailed(f"{field}: a file input needs a directory, e.g. /inputs/{name}")
        if guest in preopens and guest not in file_dirs:
            raise JobFailed(f"{field}: {guest} is already a directory mount")
        host = preopens.setdefault(guest, root / f"in{i}")
        file_dirs.add(guest)
        host.mkdir(parents=True, exist_ok=True)
        _get(storage, cid, host / name, field, limit)
    guests = sorted(preopens)
    for a_index, a in enumerate(guests):
        for b in guests[a_index + 1 :]:
            if _overlaps(a, b):
                raise JobFailed(f"inputs: the mounts at {a} and {b} overlap")
        if _overlaps(a, OUTPUTS_PATH):
            raise JobFailed(f"inputs: the mount at {a} overlaps {OUTPUTS_PATH}")
    for host in preopens.values():
        _freeze_times(host)
    return [Mount(host=host, guest=guest) for guest, host in sorted(preopens.items())]


def _get(storage: Storage, cid: str, dest: Path, field: str, limit: FetchLimit) -> None:
    try:
        storage.get(cid, dest, limit)
    except StorageError as exc:
        raise _fetch_failed(field, cid, exc) from None


def _not_retrieved(field: str, exc: NotRetrieved) -> JobFailed:
    if not exc.attempts:
        return JobFailed(f"{field}: {exc.cid} was not found in the IPFS store")
    lines = "".join(f"\n  {attempt.line()}" for attempt in exc.attempts)
    return JobFailed(
        f"{field}: {exc.cid} is not in the IPFS store and no location could give it"
        f" ({len(exc.attempts)} tried):{lines}"
    )


def _fetch_failed(field: str, cid: str, exc: StorageError) -> JobFailed:
    if isinstance(exc, FetchCancelled):
        return JobCancelled(str(exc))
    if isinstance(exc, FetchTimedOut):
        return JobFailed(f"wall-time limit exceeded while fetching {field} ({cid})")
    if isinstance(exc, ContentNotFound):
        return JobFailed(f"{field}: {cid} was not found in the IPFS store")
    if isinstance(exc, LimitExceeded):
        return JobFailed(f"{field}: {exc}")
    return JobFailed(f"{field}: fetching {cid} failed: {exc}")


def _freeze_times(path: Path) -> None:
    # Guests can stat their inputs; the timestamps must not depend on when we fetched them.
    for dirpath, dirnames, filenames in os.walk(path):
        for name in (*dirnames, *filenames):
            os.utime(Path(dirpath) / name, (_INPUT_TIME_S, _INPUT_TIME_S), follow_symlinks=False)
    os.utime(path, (_INPUT_TIME_S, _INPUT_TIME_S))


def _publish(storage: Storage, result_dir: Path) -> tuple[str, dict[str, str], int]:
    for path in result_dir.rglob("*"):
        # A link would publish whatever it points at on this host; jobs write plain files.
        if path.is_symlink() or not (path.is_file() or path.is_dir()):
            rel = path.relative_to(result_dir)
            raise JobFailed(f"the job left {rel}, which is not a regular file or directory")
    entries = storage.add_path(result_dir)
    root = entries[-1].cid
    by_name: dict[str, str] = {}
    prefix = result_dir.name + "/"
    for entry in entries:
        if entry.path.startswith(prefix):
            by_name[entry.path[len(prefix) :]] = entry.cid
    size = sum(p.stat().st_size for p in result_dir.rglob("*") if p.is_file())
    return root, by_name, size


def run_job(
    spec: JobSpec,
    storage: Storage,
    *,
    cache: ModuleCache | None = None,
    workdir: Path | None = None,
    progress: Callable[[str], None] | None = None,
    cancel: threading.Event | None = None,
    input_limit: int | None = None,
    locate: Locate | None = None,
    retrieval: RetrievalSettings | None = None,
    target: str = TARGET,
) -> RunResult:
    """Run a job and publish its result; raises JobFailed with a one-line reason, or
    JobCancelled when `cancel` is set while it runs. A WASM job runs on `target`
    (executor.wasm.TARGETS: Cranelift, or wasmtime's Pulley interpreter).

    The job's wall time covers fetching its inputs and running it. Its inputs may write at
    most `input_limit` bytes (default EXECUTOR_MAX_INPUT_BYTES), or the spec's
    `limits.input_bytes` when that is lower.

    An input missing from `storage` is fetched from the locations `locate(cid)` names, then
    from the routing and gateways of `retrieval` (default: neither, and no piece index),
    verified, and kept in `storage` (executor.retrieval)."""
    say = progress or (lambda _msg: None)
    deadline = time.monotonic() + spec.limits.timeout_s
    node_limit = input_limit if input_limit is not None else max_input_bytes()
    job_limit = spec.limits.input_bytes
    limit = FetchLimit(
        max_bytes=min(node_limit, job_limit) if job_limit is not None else node_limit,
        deadline=deadline,
        cancel=cancel,
    )
    base = Path(tempfile.mkdtemp(prefix="filplus-job-", dir=workdir))
    retriever = Retriever(storage, base / "fetch", locate=locate, settings=retrieval)
    try:
        say(f"fetching {len(spec.inputs)} input(s)")
        mounts = prepare_inputs(spec, storage, base / "inputs", limit, retriever)
        result_dir = base / "result"
        outputs = result_dir / "outputs"
        outputs.mkdir(parents=True)
        mounts.append(Mount(host=outputs, guest=OUTPUTS_PATH, writable=True))
        if cancel is not None and cancel.is_set():
            raise JobCancelled("cancelled before it started")
        if spec.engine == "wasm":
            outcome: WasmOutcome | ContainerOutcome = _run_wasm(
                spec,
                storage,
                mounts,
                result_dir,
                cache or module_cache(None),
                say,
                cancel,
                deadline,
                target,
            )
        else:
            outcome = _run_docker(spec, mounts, result_dir, say, cancel, deadline)
        (result_dir / "exitCode").write_text(str(outcome.exit_code))
        say("publishing the result directory")
        try:
            root, cids, size = _publish(storage, result_dir)
        except StorageError as exc:
            raise JobFailed(f"publishing the result failed: {exc}") from None
        return RunResult(
            result_cid=root,
            stdout_cid=cids["stdout"],
            stderr_cid=cids["stderr"],
            outputs_cid=cids["outputs"],
            exit_code=outcome.exit_code,
            size_bytes=size,
            runtime_ms=outcome.runtime_ms,
            fuel_used=getattr(outcome, "fuel_used", None),
            compiled=getattr(outcome, "compiled", None),
            inputs=tuple(record.to_json() for record in retriever.records),
            receipt=receipt(spec, fuel_used=getattr(outcome, "fuel_used", None), target=target),
        )
    finally:
        retriever.close()
        shutil.rmtree(base, ignore_errors=True)


def _run_wasm(
    spec: JobSpec,
    storage: Storage,
    mounts: list[Mount],
    result_dir: Path,
    cache: ModuleCache,
    say: Callable[[str], None],
    cancel: threading.Event | None,
    deadline: float,
    target: str,
) -> WasmOutcome:
    module = spec.module
    assert module is not None

    def load_module() -> bytes:
        try:
            return storage.cat(module)
        except ContentNotFound:
            raise JobFailed(f"wasm.module: {module} was not found in the store") from None

    say(f"running {module} {spec.entry_point}" + ("" if target == TARGET else f" on {target}"))
    try:
        return run_module(
            module,
            load_module,
            cache=cache,
            entry_point=spec.entry_point,
            args=spec.args,
            env=spec.env,
            mounts=mounts,
            stdout=result_dir / "stdout",
            stderr=result_dir / "stderr",
            seed=spec.seed(),
            timeout_s=spec.limits.timeout_s,
            deadline=deadline,
            memory_bytes=spec.limits.memory_bytes,
            fuel=spec.limits.fuel,
            cancel=cancel,
            target=target,
        )
    except WasmCancelled as exc:
        raise JobCancelled(str(exc)) from None
    except WasmRunError as exc:
        raise JobFailed(str(exc), exc.outcome) from None


def _run_docker(
    spec: JobSpec,
    mounts: list[Mount],
    result_dir: Path,
    say: Callable[[str], None],
    cancel: threading.Event | None,
    deadline: float,
) -> ContainerOutcome:
    # Imported here: the docker SDK is needed only by nodes that run Docker jobs.
    from executor.docker_engine import ContainerCancelled, ContainerRunError, run_container

    assert spec.image is not None
    say(f"running container {spec.image}")
    try:
        return run_container(
            image=spec.image,
            entrypoint=spec.entrypoint,
            env=spec.env,
            mounts=mounts,
            stdout=result_dir / "stdout",
            stderr=result_dir / "stderr",
            timeout_s=spec.limits.timeout_s,
            deadline=deadline,
            memory_bytes=spec.limits.memory_bytes,
            cancel=cancel,
        )
    except ContainerCancelled as exc:
        raise JobCancelled(str(exc)) from None
    except ContainerRunError as exc:
        raise JobFailed(str(exc), exc.outcome) from None
