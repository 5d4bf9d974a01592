"""What the job page shows of a re-run diff: the start of both versions of stdout, stderr,
exitCode and small text outputs; never a folder, a binary file or a large output."""

from __future__ import annotations

from pathlib import Path

from dashboard.reexecution.diff import (
    DIFF_TEXT_BYTES,
    SMALL_OUTPUT_BYTES,
    result_diff,
    with_contents,
)
from executor.embedded_store import EmbeddedStore


def result(store: EmbeddedStore, tmp: Path, name: str, files: dict[str, bytes]) -> str:
    root = tmp / name
    for path, data in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    return {e.path: e.cid for e in store.add_path(root)}[name]


def test_both_versions_of_differing_files(store: EmbeddedStore, tmp_path: Path) -> None:
    big = SMALL_OUTPUT_BYTES + 1
    a = result(store, tmp_path, "a", {
        "stdout": b"one\n", "exitCode": b"0", "outputs/note.txt": b"left",
        "outputs/blob.bin": b"\0\1\2", "outputs/big.txt": b"x" * big,
        "outputs/sub/x.txt": b"in a folder",
    })  # fmt: skip
    b = result(store, tmp_path, "b", {
        "stdout": b"two\n", "exitCode": b"1", "outputs/note.txt": b"right",
        "outputs/blob.bin": b"\0\1\3", "outputs/big.txt": b"y" * big,
        "outputs/sub": b"now a file",
    })  # fmt: skip
    rows = {row["path"]: row for row in with_contents(store, result_diff(store, a, b))}
    assert rows["stdout"]["reported_text"] == {"text": "one\n", "truncated": False}
    assert rows["stdout"]["rerun_text"] == {"text": "two\n", "truncated": False}
    assert rows["exitCode"]["rerun_text"] == {"text": "1", "truncated": False}
    assert rows["outputs/note.txt"]["reported_text"] == {"text": "left", "truncated": False}
    assert rows["outputs/blob.bin"]["reported_text"] is None  # binary
    assert rows["outputs/big.txt"]["reported_text"] is None  # not small
    assert rows["outputs/sub"]["reported_text"] is None  # a folder on this side
    assert rows["outputs/sub"]["rerun_text"] == {"text": "now a file", "truncated": False}


def test_a_long_stdout_is_cut_and_an_absent_side_is_none(
    store: EmbeddedStore, tmp_path: Path
) -> None:
    a = result(store, tmp_path, "a", {"stdout": b"a" * 10_000})
    b = result(store, tmp_path, "b", {"stdout": b"b", "stderr": b"new"})
    rows = {row["path"]: row for row in with_contents(store, result_diff(store, a, b))}
    assert rows["stdout"]["reported_text"] == {"text": "a" * DIFF_TEXT_BYTES, "truncated": True}
    assert rows["stderr"]["reported_text"] is None and rows["stderr"]["reported"] is None
    assert rows["stderr"]["rerun_text"] == {"text": "new", "truncated": False}
    assert with_contents(store, None) == []
