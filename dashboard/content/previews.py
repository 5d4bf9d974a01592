"""What the job page shows of stored content: the start of a file as text, a folder's
entries with their links. Reading fails softly: the page says why instead of failing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from django.conf import settings

from dashboard.content.services import result_parts, storage
from dashboard.errors import DomainError
from executor.storage import ContentNotFound, StorageError

__all__ = [
    "Outputs",
    "Preview",
    "ipfs_link",
    "outputs",
    "preview",
    "result_previews",
    "stored_size",
]

PREVIEW_BYTES = 64 * 1024
MAX_OUTPUT_ENTRIES = 500


@dataclass
class Preview:
    url: str
    text: str = ""
    truncated: bool = False
    error: str = ""


@dataclass
class Outputs:
    entries: list[dict[str, Any]]
    more: int = 0
    error: str = ""


def ipfs_link(cid: str, path: str = "") -> str:
    """Where a browser can read stored content: the configured gateway, or our /ipfs/."""
    base = (settings.IPFS_GATEWAY_URL or "").rstrip("/")
    return f"{base}/ipfs/{cid}" + (f"/{quote(path)}" if path else "")


def _storage_error(exc: StorageError, cid: str) -> str:
    if isinstance(exc, ContentNotFound):
        return f"{cid} is not in this dashboard's IPFS store."
    return f"IPFS could not be read: {exc}"


def stored_size(cid: str) -> int | None:
    """A stored file's size (a folder's: 0), or None when it is not in the store."""
    if not cid:
        return None
    try:
        return storage().size(cid)
    except StorageError:
        return None


def preview(cid: str, limit: int = PREVIEW_BYTES) -> Preview:
    """The first `limit` bytes (PREVIEW_BYTES by default) of a file, as text."""
    if not cid:
        return Preview(url="", error="No content was recorded.")
    chunks: list[bytes] = []
    size = 0
    try:
        reader = storage().iter_cat(cid, chunk_size=limit)
        try:
            for chunk in reader:
                chunks.append(chunk)
                size += len(chunk)
                if size > limit:
                    break
        finally:
            close = getattr(reader, "close", None)
            if close is not None:
                close()
    except StorageError as exc:
        return Preview(url=ipfs_link(cid), error=_storage_error(exc, cid))
    data = b"".join(chunks)
    return Preview(
        url=ipfs_link(cid),
        text=data[:limit].decode("utf-8", "replace"),
        truncated=len(data) > limit,
    )


def outputs(cid: str) -> Outputs:
    if not cid:
        return Outputs(entries=[], error="No outputs were recorded.")
    try:
        listing = storage().ls(cid)
    except StorageError as exc:
        return Outputs(entries=[], error=_storage_error(exc, cid))
    entries = [
        {
            "name": e.name,
            "is_dir": e.is_dir,
            "size": e.size,
            "cid": e.cid,
            "url": ipfs_link(cid, e.name),
        }
        for e in listing[:MAX_OUTPUT_ENTRIES]
    ]
    return Outputs(entries=entries, more=max(len(listing) - MAX_OUTPUT_ENTRIES, 0))


NOT_READABLE = (
    "The result {cid} is not in this dashboard's store, so its {part} cannot be read from it: "
    "what the node reported is not shown, since nothing here checked it."
)


def result_previews(result_cid: str) -> tuple[Preview, Preview, Outputs]:
    """stdout, stderr and outputs as the result itself holds them (never the part CIDs a
    node reported: those are checked only when the result is in the store)."""
    try:
        parts = result_parts(result_cid)
    except DomainError as exc:
        parts, error = None, f"IPFS could not be read: {exc.message}"
    else:
        error = ""
    if parts is None:

        def why(part: str) -> str:
            return error or NOT_READABLE.format(cid=result_cid, part=part)

        return (
            Preview(url="", error=why("stdout")),
            Preview(url="", error=why("stderr")),
            Outputs(entries=[], error=why("outputs")),
        )
    return preview(parts.stdout_cid), preview(parts.stderr_cid), outputs(parts.outputs_cid)
