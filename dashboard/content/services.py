"""The dashboard's IPFS store from the web side: uploads and read-only paths under a CID.

The store is the executor's (`executor.backend.open_storage` with our settings), so content
uploaded here is what the bundled worker mounts, and results it publishes can be read back.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.cache import cache

from dashboard.errors import DomainError
from executor.backend import open_storage
from executor.car import CarError
from executor.cids import InvalidCID, normalize_cid
from executor.storage import (
    ContentNotFound,
    DirEntry,
    FetchLimit,
    LimitExceeded,
    Storage,
    StorageError,
    declared_size,
    staging_dir,
    sweep_stale,
)

__all__ = [
    "Measured",
    "PARTS",
    "ResultParts",
    "misreported_parts",
    "result_parts",
    "charge_egress",
    "check_answer_size",
    "measure",
    "open_file",
    "resolve",
    "storage",
    "store_upload",
    "sweep_uploads",
]

CHUNK = 1 << 20
_UPLOAD = "upload"


def storage() -> Storage:
    return open_storage(settings.IPFS_API_URL, Path(settings.DATA_DIR))


def _uploads() -> Path:
    return Path(settings.DATA_DIR) / "uploads"


def sweep_uploads() -> int:
    """Remove upload bodies left by processes that were killed mid-upload; how many."""
    return sweep_stale(_uploads(), _UPLOAD)


def store_upload(read: Callable[[int], bytes], *, declared: int | None, car: bool) -> str:
    """Stream a request body to a staging file within the size limit, then add it.

    `declared` is the Content-Length, None for a body the server has de-chunked. A CAR's
    blocks count at what they take on disk (each its bytes plus 4096) against the same limit,
    and a CAR is stored all or nothing."""
    limit = settings.CONTENT_MAX_BYTES
    if declared is not None and declared > limit:
        raise DomainError("body_too_large", f"uploads are limited to {limit} bytes", status=413)
    tmp = staging_dir(_uploads(), _UPLOAD)
    try:
        path = tmp / "upload"
        size = 0
        with path.open("wb") as out:
            while chunk := read(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise DomainError(
                        "body_too_large", f"uploads are limited to {limit} bytes", status=413
                    )
                out.write(chunk)
        if declared is not None and size != declared:
            raise DomainError("truncated_body", f"the body ended after {size} of {declared} bytes")
        store = storage()
        try:
            if car:
                with path.open("rb") as data:
                    roots = store.import_car(data, max_bytes=limit)
                if len(roots) != 1:
                    raise DomainError(
                        "invalid_car", f"a CAR upload needs exactly one root, it has {len(roots)}"
                    )
                return roots[0]
            return store.add_path(path)[-1].cid
        except LimitExceeded as exc:
            raise DomainError("body_too_large", str(exc), status=413) from None
        except CarError as exc:
            raise DomainError("invalid_car", f"the CAR was refused: {exc}") from None
        except StorageError as exc:
            raise DomainError("storage_unavailable", str(exc), status=503) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@dataclass(frozen=True)
class Measured:
    """A result as this dashboard's store holds it."""

    file_bytes: int  # the bytes of its files, as `size_bytes` reports them
    car_bytes: int  # its CARv1, as a node stores it and CommP is computed over


class _Counter:
    def __init__(self) -> None:
        self.count = 0

    def write(self, data: bytes) -> int:
        self.count += len(data)
        return len(data)


def measure(cid: str) -> Measured | None:
    """The result's sizes, measured here; None when it is not wholly in the store."""
    store = storage()
    try:
        if not store.has(cid):
            return None
        files = declared_size(store, cid, FetchLimit(1 << 62), entry_cost=0)
        car = _Counter()
        store.export_car(cid, car)  # type: ignore[arg-type]
    except ContentNotFound:
        return None
    except StorageError as exc:
        raise DomainError("storage_unavailable", str(exc), status=503) from None
    return Measured(file_bytes=files, car_bytes=car.count)


@dataclass(frozen=True)
class ResultParts:
    """What a result directory holds (docs/jobs.md: `{stdout, stderr, exitCode, outputs/}`),
    read from the result itself: the one source of its parts. `missing` names the parts it
    lacks or holds in another shape (a file where a folder belongs, an exitCode that is not
    a decimal number); their fields are then "" (or None)."""

    stdout_cid: str
    stderr_cid: str
    outputs_cid: str
    exit_code: int | None
    missing: tuple[str, ...]


MAX_EXIT_CODE_BYTES = 24  # a 64-bit decimal, its sign and a newline, with room
_EXIT_CODE = re.compile(r"-?[0-9]{1,20}")


def result_parts(cid: str) -> ResultParts | None:
    """The parts of the result `cid`, read from this dashboard's store; None when the result
    is not wholly there (then nothing here can check what a node says its parts are)."""
    store = storage()
    try:
        if not store.has(cid):
            return None
        if not store.is_dir(cid):
            return ResultParts("", "", "", None, ("stdout", "stderr", "exitCode", "outputs"))
        entries = {entry.name: entry for entry in store.ls(cid)}
        found: dict[str, str] = {}
        for name, is_dir in (("stdout", False), ("stderr", False), ("outputs", True)):
            entry = entries.get(name)
            if entry is not None and entry.is_dir == is_dir:
                found[name] = entry.cid
        exit_code = None
        entry = entries.get("exitCode")
        if entry is not None and not entry.is_dir and entry.size <= MAX_EXIT_CODE_BYTES:
            # The declared size is the file's creator's word: read no more than it allows.
            data = b""
            for chunk in store.iter_cat(entry.cid):
                data += chunk
                if len(data) > MAX_EXIT_CODE_BYTES:
                    break
            text = data.decode("ascii", "replace").strip()
            if _EXIT_CODE.fullmatch(text) and -(2**63) <= int(text) < 2**63:
                exit_code = int(text)
    except ContentNotFound:
        return None
    except StorageError as exc:
        raise DomainError("storage_unavailable", str(exc), status=503) from None
    missing = [name for name in ("stdout", "stderr", "outputs") if name not in found]
    if exit_code is None:
        missing.insert(2, "exitCode")
    return ResultParts(
        stdout_cid=found.get("stdout", ""),
        stderr_cid=found.get("stderr", ""),
        outputs_cid=found.get("outputs", ""),
        exit_code=exit_code,
        missing=tuple(missing),
    )


# A report's fields for the parts of a result, and the entries of the result that hold them.
PARTS = (
    ("stdout_cid", "stdout"),
    ("stderr_cid", "stderr"),
    ("exit_code", "exitCode"),
    ("outputs_cid", "outputs"),
)


def misreported_parts(parts: ResultParts, reported: Any) -> list[tuple[str, str, Any, Any]]:
    """(field, entry, reported, held) for each part `reported` (a result as a node reported
    it) names otherwise than the result holds: a result's parts are what its directory holds,
    never what a node says. A part the report leaves blank says nothing."""
    wrong = []
    for field, name in PARTS:
        held = getattr(parts, field)
        said = getattr(reported, field)
        if said not in ("", None, held):
            wrong.append((field, name, said, held))
    return wrong


HOUR = 3600


def check_answer_size(size: int) -> None:
    """413 when one gateway answer may not be `size` bytes (GATEWAY_MAX_RESPONSE_BYTES)."""
    largest = settings.GATEWAY_MAX_RESPONSE_BYTES
    if size > largest:
        raise DomainError(
            "response_too_large",
            f"this content is {size} bytes or more; the gateway sends at most {largest} in "
            "one answer (GATEWAY_MAX_RESPONSE_BYTES): fetch it from an IPFS node",
            status=413,
        )


def charge_egress(caller: str, size: int) -> None:
    """Before an answer of `size` bytes is sent to `caller` (a key or a moderator): 413 when
    one answer may not be that large, 429 when the caller's bytes this hour would pass
    GATEWAY_BYTES_PER_HOUR; otherwise they are counted. Counted in the cache, as the API's
    rate limits are."""
    check_answer_size(size)
    budget = settings.GATEWAY_BYTES_PER_HOUR
    if not budget:
        return
    now = time.time()
    counter = f"egress:{caller}:{int(now // HOUR)}"
    cache.add(counter, 0, timeout=2 * HOUR)
    used = cache.incr(counter, size)
    if used > budget:
        cache.decr(counter, size)  # a refused answer costs nothing
        left = max(0, budget - (used - size))
        raise DomainError(
            "egress_limit",
            f"{size} bytes would pass this caller's {budget} bytes an hour from the gateway "
            f"(GATEWAY_BYTES_PER_HOUR); {left} bytes left this hour",
            status=429,
            headers={"Retry-After": str(HOUR - int(now % HOUR))},
        )


def open_file(cid: str) -> tuple[int, Iterator[bytes]]:
    """A stored file's declared size and its bytes, once every block of it is known to be
    here (404 otherwise)."""
    store = storage()
    try:
        if not store.has(cid):
            raise DomainError(
                "not_found", f"{cid} is not wholly in this dashboard's store", status=404
            )
        return store.size(cid), store.iter_cat(cid)
    except StorageError as exc:
        raise DomainError("storage_unavailable", str(exc), status=503) from None


def resolve(cid: str, path: str) -> tuple[str, bool, list[DirEntry] | None]:
    """Follow `path` under `cid`: (cid of the target, is it a directory, its entries if so)."""
    try:
        current = normalize_cid(cid)
    except InvalidCID:
        raise DomainError("invalid_cid", f"{cid!r} is not a CID", fields={"cid": cid}) from None
    store = storage()
    try:
        is_dir = store.is_dir(current)
        for part in [p for p in path.split("/") if p]:
            if not is_dir:
                raise DomainError("not_found", f"{current} is a file, not a directory", status=404)
            match = next((e for e in store.ls(current) if e.name == part), None)
            if match is None:
                raise DomainError("not_found", f"no {part!r} under {current}", status=404)
            current, is_dir = match.cid, match.is_dir
        return current, is_dir, store.ls(current) if is_dir else None
    except ContentNotFound:
        raise DomainError(
            "not_found", f"{current} is not in this dashboard's store", status=404
        ) from None
    except StorageError as exc:
        raise DomainError("storage_unavailable", str(exc), status=503) from None
