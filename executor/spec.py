"""The job spec (docs/jobs.md): parsing, validation with field names, and its canonical form.

The canonical form matters beyond tidiness: its SHA-256 seeds a WASM job's random stream, so
two submissions of the same job (a `Qm…` module CID or its `bafy…` form, keys in any order,
defaults left out or written out) must give byte-identical canonical JSON.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
from dataclasses import dataclass, field
from typing import Any

from executor.cids import InvalidCID, is_piece_cid, normalize_cid

__all__ = [
    "DEFAULT_MEMORY_BYTES",
    "DEFAULT_TIMEOUT_S",
    "OUTPUTS_PATH",
    "InputMount",
    "JobSpec",
    "Limits",
    "SpecError",
    "parse_mount",
    "parse_spec",
    "storable_text",
]

DEFAULT_TIMEOUT_S = 600
DEFAULT_MEMORY_BYTES = 256 * 1024 * 1024
MAX_TIMEOUT_S = 24 * 3600
OUTPUTS_PATH = "/outputs"
MAX_ARGS = 1024
MAX_INPUTS = 256
MAX_PATH_LENGTH = 1000
MAX_ANNOTATIONS = 64
MAX_ANNOTATION_LENGTH = 256
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ENTRY_POINT = re.compile(r"[^\x00]{1,256}")


class SpecError(ValueError):
    """A spec field is wrong; `field` is its dotted path (e.g. `inputs.2.path`)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class InputMount:
    cid: str  # canonical: a payload CID (a UnixFS DAG) or a piece CID (baga6ea4seaq…)
    path: str  # absolute, normalised guest path
    raw: bool = False  # a piece only: mount its bytes as one file even when they are a CAR

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"cid": self.cid, "path": self.path}
        # Written only when set, so that specs from before the field keep their seed.
        if self.raw:
            body["raw"] = True
        return body


@dataclass(frozen=True)
class Limits:
    timeout_s: float = DEFAULT_TIMEOUT_S
    memory_bytes: int = DEFAULT_MEMORY_BYTES
    fuel: int | None = None
    input_bytes: int | None = None  # None: the node's EXECUTOR_MAX_INPUT_BYTES


@dataclass(frozen=True)
class JobSpec:
    engine: str  # "wasm" | "docker"
    inputs: tuple[InputMount, ...] = ()
    limits: Limits = field(default_factory=Limits)
    annotations: tuple[str, ...] = ()
    # wasm
    module: str | None = None  # canonical CID
    entry_point: str = "_start"
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()  # sorted by name
    # docker
    image: str | None = None
    entrypoint: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The spec as docs/jobs.md writes it, with every default filled in."""
        body: dict[str, Any] = {"engine": self.engine}
        if self.engine == "wasm":
            body["wasm"] = {
                "module": self.module,
                "entry_point": self.entry_point,
                "args": list(self.args),
                "env": dict(self.env),
            }
        else:
            body["docker"] = {
                "image": self.image,
                "entrypoint": list(self.entrypoint),
                "env": dict(self.env),
            }
        body["inputs"] = [m.to_json() for m in self.inputs]
        body["limits"] = {
            "timeout_s": self.limits.timeout_s,
            "memory_bytes": self.limits.memory_bytes,
            "fuel": self.limits.fuel,
        }
        # Written only when set, so that specs from before the field keep their seed.
        if self.limits.input_bytes is not None:
            body["limits"]["input_bytes"] = self.limits.input_bytes
        body["annotations"] = list(self.annotations)
        return body

    def canonical_json(self) -> bytes:
        """Sorted keys, no whitespace, UTF-8 (non-ASCII written as is, not escaped)."""
        return json.dumps(
            self.to_json(), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode("utf-8")

    def seed(self) -> bytes:
        """SHA-256 of the canonical JSON: the seed of the job's random stream."""
        return hashlib.sha256(self.canonical_json()).digest()


def _require(obj: Any, kind: type | tuple[type, ...], name: str, what: str) -> Any:
    # bool is an int in Python; JSON true is never a valid number here.
    if not isinstance(obj, kind) or (isinstance(obj, bool) and bool not in _as_tuple(kind)):
        raise SpecError(name, f"must be {what}")
    return obj


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def storable_text(value: str) -> bool:
    """Whether a database can store the text: no NUL (PostgreSQL refuses it) and no lone
    UTF-16 surrogate (JSON's \\ud800 escapes decode to one, and UTF-8 cannot encode it)."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _text(value: str, name: str) -> str:
    if "\x00" in value:
        raise SpecError(name, "must not contain NUL")
    if not storable_text(value):
        raise SpecError(name, "must not contain a lone UTF-16 surrogate")
    return value


def _cid(value: Any, name: str) -> str:
    _require(value, str, name, "a CID string")
    try:
        return normalize_cid(value)
    except InvalidCID as exc:
        raise SpecError(name, f"{value!r} is not a valid CID ({exc})") from None


def _guest_path(value: Any, name: str) -> str:
    _require(value, str, name, "an absolute path string")
    _text(value, name)
    if len(value) > MAX_PATH_LENGTH:
        raise SpecError(name, f"must be at most {MAX_PATH_LENGTH} characters")
    if not value.startswith("/"):
        raise SpecError(name, f"{value!r} must be an absolute path")
    parts = value.split("/")
    if any(p in (".", "..") for p in parts):
        raise SpecError(name, f"{value!r} must not contain '.' or '..'")
    # normpath keeps a leading "//" (POSIX leaves it to the system); one slash is one path
    path = "/" + posixpath.normpath(value).lstrip("/")
    if path == "/":
        raise SpecError(name, "an input cannot be mounted at /")
    if path == OUTPUTS_PATH or path.startswith(OUTPUTS_PATH + "/"):
        raise SpecError(name, f"{OUTPUTS_PATH} is reserved for the job's outputs")
    return path


def parse_mount(text: str, name: str = "inputs") -> InputMount:
    """`CID:/path` as the CLI's `-v` takes it."""
    cid, sep, path = text.partition(":")
    if not sep or not cid or not path:
        raise SpecError(name, f"{text!r} is not of the form CID:/path")
    return InputMount(cid=_cid(cid, name), path=_guest_path(path, name))


def _env(value: Any, name: str) -> tuple[tuple[str, str], ...]:
    value = {} if value is None else value
    _require(value, dict, name, "an object of string values")
    for key, val in value.items():
        if not _ENV_NAME.fullmatch(key):
            raise SpecError(f"{name}.{key}", "is not a valid environment variable name")
        _require(val, str, f"{name}.{key}", "a string")
        _text(val, f"{name}.{key}")
    return tuple(sorted(value.items()))


def _strings(
    value: Any, name: str, limit: int = MAX_ARGS, length: int | None = None
) -> tuple[str, ...]:
    value = [] if value is None else value
    _require(value, list, name, "a list of strings")
    if len(value) > limit:
        raise SpecError(name, f"at most {limit} items")
    for i, item in enumerate(value):
        _require(item, str, f"{name}.{i}", "a string")
        _text(item, f"{name}.{i}")
        if length is not None and len(item) > length:
            raise SpecError(f"{name}.{i}", f"must be at most {length} characters")
    return tuple(value)


def _inputs(value: Any) -> tuple[InputMount, ...]:
    value = [] if value is None else value
    _require(value, list, "inputs", "a list of {cid, path} objects")
    if len(value) > MAX_INPUTS:
        raise SpecError("inputs", f"at most {MAX_INPUTS} inputs")
    mounts: list[InputMount] = []
    for i, item in enumerate(value):
        if isinstance(item, str):
            mounts.append(parse_mount(item, f"inputs.{i}"))
            continue
        _require(item, dict, f"inputs.{i}", "an object with cid and path")
        unknown = set(item) - {"cid", "path", "raw"}
        if unknown:
            raise SpecError(f"inputs.{i}.{sorted(unknown)[0]}", "unknown field")
        cid = _cid(item.get("cid"), f"inputs.{i}.cid")
        raw = item.get("raw", False)
        _require(raw, bool, f"inputs.{i}.raw", "true or false")
        if raw and not is_piece_cid(cid):
            raise SpecError(f"inputs.{i}.raw", "applies to a piece CID (baga6ea4seaq…) only")
        mounts.append(
            InputMount(cid=cid, path=_guest_path(item.get("path"), f"inputs.{i}.path"), raw=raw)
        )
    seen: dict[str, int] = {}
    for i, mount in enumerate(mounts):
        if mount.path in seen:
            raise SpecError(f"inputs.{i}.path", f"{mount.path} is mounted twice")
        seen[mount.path] = i
    return tuple(mounts)


def _limits(value: Any) -> Limits:
    value = {} if value is None else value
    _require(value, dict, "limits", "an object")
    unknown = set(value) - {"timeout_s", "memory_bytes", "fuel", "input_bytes"}
    if unknown:
        raise SpecError(f"limits.{sorted(unknown)[0]}", "unknown field")
    timeout = value.get("timeout_s", DEFAULT_TIMEOUT_S)
    timeout = DEFAULT_TIMEOUT_S if timeout is None else timeout
    _require(timeout, (int, float), "limits.timeout_s", "a number of seconds")
    if not 0 < timeout <= MAX_TIMEOUT_S:
        raise SpecError("limits.timeout_s", f"must be between 0 and {MAX_TIMEOUT_S}")
    memory = value.get("memory_bytes", DEFAULT_MEMORY_BYTES)
    memory = DEFAULT_MEMORY_BYTES if memory is None else memory
    _require(memory, int, "limits.memory_bytes", "an integer number of bytes")
    if not 65536 <= memory <= 1 << 40:
        raise SpecError("limits.memory_bytes", "must be between 65536 (one page) and 1 TiB")
    fuel = value.get("fuel")
    if fuel is not None:
        _require(fuel, int, "limits.fuel", "a positive integer or null")
        if not 0 < fuel < 1 << 63:
            raise SpecError("limits.fuel", "must be a positive integer below 2**63")
    input_bytes = value.get("input_bytes")
    if input_bytes is not None:
        _require(input_bytes, int, "limits.input_bytes", "a positive integer or null")
        if not 0 < input_bytes < 1 << 63:
            raise SpecError("limits.input_bytes", "must be a positive integer below 2**63")
    # An integral float timeout and its int are the same job; keep one canonical spelling.
    if isinstance(timeout, float) and timeout.is_integer():
        timeout = int(timeout)
    return Limits(timeout_s=timeout, memory_bytes=memory, fuel=fuel, input_bytes=input_bytes)


def parse_spec(body: Any) -> JobSpec:
    """Validate a job spec from JSON; raises SpecError naming the first bad field."""
    _require(body, dict, "spec", "a JSON object")
    known = {"engine", "wasm", "docker", "inputs", "limits", "annotations"}
    unknown = set(body) - known
    if unknown:
        raise SpecError(sorted(unknown)[0], "unknown field")
    engine = body.get("engine")
    if engine not in ("wasm", "docker"):
        raise SpecError("engine", 'must be "wasm" or "docker"')
    other = "docker" if engine == "wasm" else "wasm"
    if other in body:  # it would be ignored: say so rather than run something else
        raise SpecError(other, f'only with engine "{other}"; this job\'s engine is {engine}')
    inputs = _inputs(body.get("inputs"))
    limits = _limits(body.get("limits"))
    annotations = _strings(
        body.get("annotations"), "annotations", limit=MAX_ANNOTATIONS, length=MAX_ANNOTATION_LENGTH
    )
    if engine == "wasm":
        wasm = _require(body.get("wasm"), dict, "wasm", "an object with at least module")
        unknown = set(wasm) - {"module", "entry_point", "args", "env"}
        if unknown:
            raise SpecError(f"wasm.{sorted(unknown)[0]}", "unknown field")
        entry = wasm.get("entry_point")
        entry = "_start" if entry is None else entry
        _require(entry, str, "wasm.entry_point", "a function name")
        if not _ENTRY_POINT.fullmatch(_text(entry, "wasm.entry_point")):
            raise SpecError("wasm.entry_point", "must be 1 to 256 characters without NUL")
        return JobSpec(
            engine="wasm",
            module=_cid(wasm.get("module"), "wasm.module"),
            entry_point=entry,
            args=_strings(wasm.get("args"), "wasm.args"),
            env=_env(wasm.get("env"), "wasm.env"),
            inputs=inputs,
            limits=limits,
            annotations=annotations,
        )
    docker = _require(body.get("docker"), dict, "docker", "an object with at least image")
    unknown = set(docker) - {"image", "entrypoint", "env"}
    if unknown:
        raise SpecError(f"docker.{sorted(unknown)[0]}", "unknown field")
    image = _text(
        _require(docker.get("image"), str, "docker.image", "an image name"), "docker.image"
    )
    if not image or len(image) > 256 or any(c.isspace() for c in image):
        raise SpecError("docker.image", f"{image!r} is not an image name")
    return JobSpec(
        engine="docker",
        image=image,
        entrypoint=_strings(docker.get("entrypoint"), "docker.entrypoint"),
        env=_env(docker.get("env"), "docker.env"),
        inputs=inputs,
        limits=limits,
        annotations=annotations,
    )
