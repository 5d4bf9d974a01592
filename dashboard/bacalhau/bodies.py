"""Bacalhau's JSON as its Go nodes and Python clients send it (docs/bacalhau.md), read once
for the three bridges: the job-selection probe, the orchestrator scanner and the legacy
requester API.

Go's encoding/json matches an object's keys to struct fields case-insensitively, so a
Bacalhau peer accepts `NodeID`, `nodeid` and `nodeId` alike, and clients send all of them.
`fold` lower-cases the keys of struct-like objects; the keys of maps (environment
variables, labels, meta) are data and keep their case.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from executor.cids import InvalidCID, normalize_cid

__all__ = [
    "MAX_DEPTH",
    "BacalhauError",
    "JobCid",
    "fold",
    "job_cids",
    "legacy_spec_cids",
    "member",
    "nesting",
]

# Objects whose keys are data, not field names: never folded.
_MAPS = frozenset({"environmentvariables", "env", "labels", "meta", "metadata"})
# How deeply objects and lists may nest in a body from a Bacalhau peer: a job needs about 10.
# `fold` recurses, so a body deeper than this is refused before it is folded.
MAX_DEPTH = 64


class BacalhauError(ValueError):
    """A Bacalhau body does not say what it must; `field` is its dotted path as sent."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def fold(value: Any) -> Any:
    """`value` with every struct key lower-cased. Where two spellings of one key arrive, the
    later wins, as with Go's decoder."""
    if isinstance(value, list):
        return [fold(v) for v in value]
    if not isinstance(value, dict):
        return value
    folded: dict[str, Any] = {}
    for key, item in value.items():
        name = key.lower() if isinstance(key, str) else key
        folded[name] = item if name in _MAPS else fold(item)
    return folded


def nesting(value: Any, limit: int = MAX_DEPTH) -> int:
    """How deeply objects and lists nest in `value` (a scalar: 0), counted level by level
    without recursion, and only up to one past `limit`."""
    depth, level = 0, [value] if isinstance(value, dict | list) else []
    while level and depth <= limit:
        depth += 1
        inner: list[Any] = []
        for item in level:
            inner.extend(item.values() if isinstance(item, dict) else item)
        level = [item for item in inner if isinstance(item, dict | list)]
    return depth


@dataclass(frozen=True)
class JobCid:
    cid: str  # canonical
    field: str  # where in the job it was found, e.g. "Tasks.0.InputSources.1"
    role: str  # "input", "entry module" or "import module"
    path: str  # where the job mounts it ("" for modules)


def member(value: Any, key: str) -> dict[str, Any]:
    """`value[key]` where both are objects; {} otherwise (for lenient reading)."""
    item = value.get(key) if isinstance(value, dict) else None
    return item if isinstance(item, dict) else {}


def _object(value: Any, field: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BacalhauError(field, "must be an object")
    return value


def _list(value: Any, field: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise BacalhauError(field, "must be a list")
    return value


def _cid(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise BacalhauError(field, "must be a CID string")
    try:
        return normalize_cid(value)
    except InvalidCID as exc:
        raise BacalhauError(field, f"{value[:200]!r} is not a valid CID ({exc})") from None


def _source(source: Any, field: str, role: str, path: str, other: list[str]) -> JobCid | None:
    """A v2 InputSource's `Source` ({Type, Params}); a non-IPFS source is noted in `other`."""
    source = _object(source, field)
    kind = source.get("type")
    if not isinstance(kind, str) or kind.lower() != "ipfs":
        other.append(f"{field} ({kind or 'no type'})")
        return None
    params = _object(source.get("params"), f"{field}.Params")
    return JobCid(_cid(params.get("cid"), f"{field}.Params.CID"), field, role, path)


def job_cids(job: Any, *, field: str = "Job") -> tuple[list[JobCid], list[str]]:
    """The IPFS CIDs a folded v2 models.Job reads (each task's IPFS input sources, WASM entry
    module and import modules), and the inputs that are not IPFS (described by field)."""
    job = _object(job, field)
    found: list[JobCid] = []
    other: list[str] = []
    for t, task in enumerate(_list(job.get("tasks"), f"{field}.Tasks")):
        where = f"{field}.Tasks.{t}"
        task = _object(task, where)
        for i, item in enumerate(_list(task.get("inputsources"), f"{where}.InputSources")):
            at = f"{where}.InputSources.{i}"
            item = _object(item, at)
            target = item.get("target")
            target = target if isinstance(target, str) else ""
            cid = _source(item.get("source"), f"{at}.Source", "input", target, other)
            if cid is not None:
                found.append(cid)
        engine = _object(task.get("engine"), f"{where}.Engine")
        params = _object(engine.get("params"), f"{where}.Engine.Params")
        if "entrymodule" in params:
            at = f"{where}.Engine.Params.EntryModule"
            module = _object(params["entrymodule"], at)
            cid = _source(module.get("source"), f"{at}.Source", "entry module", "", other)
            if cid is not None:
                found.append(cid)
        for i, module in enumerate(
            _list(params.get("importmodules"), f"{where}.Engine.Params.ImportModules")
        ):
            at = f"{where}.Engine.Params.ImportModules.{i}"
            module = _object(module, at)
            cid = _source(module.get("source"), f"{at}.Source", "import module", "", other)
            if cid is not None:
                found.append(cid)
    return found, other


def _storage_spec(spec: Any, field: str, role: str, other: list[str]) -> JobCid | None:
    """A legacy StorageSpec ({StorageSource, CID, Path, …})."""
    spec = _object(spec, field)
    source = spec.get("storagesource")
    if not isinstance(source, str) or source.lower() != "ipfs":
        other.append(f"{field} ({source or 'no storage source'})")
        return None
    path = spec.get("path") if isinstance(spec.get("path"), str) else ""
    return JobCid(_cid(spec.get("cid"), f"{field}.CID"), field, role, path)


def legacy_spec_cids(spec: Any, *, field: str = "spec") -> tuple[list[JobCid], list[str]]:
    """The same for a folded legacy (v1beta) Spec: its inputs and its WASM modules."""
    spec = _object(spec, field)
    found: list[JobCid] = []
    other: list[str] = []
    for i, item in enumerate(_list(spec.get("inputs"), f"{field}.Inputs")):
        cid = _storage_spec(item, f"{field}.Inputs.{i}", "input", other)
        if cid is not None:
            found.append(cid)
    wasm = _object(spec.get("wasm"), f"{field}.Wasm")
    if wasm.get("entrymodule") is not None:
        cid = _storage_spec(wasm["entrymodule"], f"{field}.Wasm.EntryModule", "entry module", other)
        if cid is not None:
            found.append(cid)
    for i, module in enumerate(_list(wasm.get("importmodules"), f"{field}.Wasm.ImportModules")):
        cid = _storage_spec(module, f"{field}.Wasm.ImportModules.{i}", "import module", other)
        if cid is not None:
            found.append(cid)
    return found, other
