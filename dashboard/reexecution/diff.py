"""Where a reported result and a re-run's result differ, read from the store."""

from __future__ import annotations

from executor.storage import ContentNotFound, DirEntry, Storage, StorageError

__all__ = ["MAX_DIFF", "MAX_LISTINGS", "result_diff"]

MAX_DIFF = 100  # differing paths kept in a diff
MAX_LISTINGS = 64  # directories read while diffing: a hostile result cannot make it costly


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
