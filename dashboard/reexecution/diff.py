"""Where a reported result and a re-run's result differ, read from the store."""

from __future__ import annotations

from executor.storage import ContentNotFound, DirEntry, Storage, StorageError

__all__ = ["DIFF_TEXT_BYTES", "MAX_DIFF", "MAX_LISTINGS", "with_contents", "result_diff"]

MAX_DIFF = 100  # differing paths kept in a diff
MAX_LISTINGS = 64  # directories read while diffing: a hostile result cannot make it costly
DIFF_TEXT_BYTES = 4096  # what the job page shows of each side of a differing file
SMALL_OUTPUT_BYTES = 64 * 1024  # outputs/ files at most this big are shown as text
MAX_SHOWN = 10  # differing files whose content one page reads
RESULT_FILES = ("stdout", "stderr", "exitCode")


def result_diff(store: Storage, reported: str, rerun: str) -> list[dict[str, str | None]]:
    """Where two result directories differ (`stdout`, `stderr`, `exitCode`, `outputs/…`):
    [{"path", "reported", "rerun"}], each side the entry's CID or null where it is absent.
    Subtrees with the same CID are the same and are not read. When the reported result is
    not in this store, only its root can be compared: the diff is one entry, path ".".
    """
    out: list[dict[str, str | None]] = []
    listings = [MAX_LISTINGS]

    def entries(cid: str) -> dict[str, DirEntry] | None:
        if listings[0] <= 0:
            return None
        try:
            if not store.is_dir(cid):
                return None
            listings[0] -= 1
            return {e.name: e for e in store.ls(cid)}
        except (ContentNotFound, StorageError):
            return None

    def walk(path: str, a: str | None, b: str | None) -> None:
        if a == b or len(out) >= MAX_DIFF:
            return
        left = entries(a) if a is not None else None
        right = entries(b) if b is not None else None
        if left is None or right is None:
            out.append({"path": path or ".", "reported": a, "rerun": b})
            return
        for name in sorted(left.keys() | right.keys()):
            one, two = left.get(name), right.get(name)
            walk(
                f"{path}/{name}" if path else name,
                one.cid if one else None,
                two.cid if two else None,
            )

    walk("", reported, rerun)
    return out


def _text(store: Storage, cid: str | None, *, output: bool) -> dict[str, object] | None:
    """The first DIFF_TEXT_BYTES of a stored file as text, or None when it is absent, not
    stored, a folder, binary, or (an outputs/ file) not small."""
    if cid is None:
        return None
    try:
        if store.is_dir(cid) or (output and store.size(cid) > SMALL_OUTPUT_BYTES):
            return None
        reader = store.iter_cat(cid, chunk_size=DIFF_TEXT_BYTES)
        data = b""
        try:
            for chunk in reader:
                data += chunk
                if len(data) > DIFF_TEXT_BYTES:
                    break
        finally:
            close = getattr(reader, "close", None)
            if close is not None:
                close()
    except (ContentNotFound, StorageError):
        return None
    if b"\0" in data[:DIFF_TEXT_BYTES]:
        return None
    return {
        "text": data[:DIFF_TEXT_BYTES].decode("utf-8", "replace"),
        "truncated": len(data) > DIFF_TEXT_BYTES,
    }


def with_contents(
    store: Storage, diff: list[dict[str, str | None]] | None
) -> list[dict[str, object]]:
    """A diff's entries with, for `stdout`, `stderr`, `exitCode` and small text files under
    `outputs/`, the start of each side's content (`reported_text`, `rerun_text`: {"text",
    "truncated"} or None), read from the store; at most MAX_SHOWN entries are read."""
    out: list[dict[str, object]] = []
    shown = 0
    for entry in diff or []:
        path = entry.get("path") or ""
        row: dict[str, object] = {**entry, "reported_text": None, "rerun_text": None}
        output = path.startswith("outputs/")
        if (path in RESULT_FILES or output) and shown < MAX_SHOWN:
            shown += 1
            row["reported_text"] = _text(store, entry.get("reported"), output=output)
            row["rerun_text"] = _text(store, entry.get("rerun"), output=output)
        out.append(row)
    return out
