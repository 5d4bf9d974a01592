"""Embedded IPFS store throughput: add and cat in MB/s against plain SHA-256 (the floor).

    .venv/bin/python -m benchmarks.bench_store [--size-mib 64] [--files 2000]
        [--file-kib 4] [--repeat 3] [--dir /tmp]

Two workloads, each on a file tree written once to a temp directory under `--dir`:
- one file of `--size-mib` random bytes;
- a folder of `--files` random files of `--file-kib` KiB each, 50 to a subfolder.

Floors, measured in the same run over the same bytes:
- `sha256 (memory)`: hashlib.sha256 over bytes already in memory, in 256 KiB pieces;
- `read + sha256`: reading the files in 256 KiB pieces and hashing them, the least any
  store must do to add them (the store also writes every block to disk).

Every operation runs once per round, `--repeat` rounds, floors and store interleaved so
that load from other processes hits both alike; the best time of each counts (page cache
warm: the figures are CPU and syscall cost, not disk speed). `add (new store)` starts from nothing
each time, so it includes creating the store's shard folders (up to 1024);
`add (new blocks)` writes every block into a store whose shard folders exist, the steady
state of a long-lived store; `add (again)` adds content already present (nothing written);
`cat` streams the content back with `iter_cat` (every block re-hashed on read);
`get` writes it back out as files. A third floor, `write files`, creates the same files
from bytes in memory (the least `get` must do); `get` is compared with it, everything else
with `read + sha256`. MB is 10^6 bytes.

A last table imports CARs through `import_car` and sets what the upload limit counts
(CONTENT_MAX_BYTES: each block its bytes plus 4096) against what the blocks really take on
disk (the block files' allocated blocks, as `du` counts them): a CAR of `--tiny` 4-byte
blocks, the case that made a 2 MB upload cost 205 MB, and the CAR of the `--size-mib` file,
an honest upload. Counted must be at least what is taken, for the limit to hold.
Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks._common import code_version, load_average, log, table
from executor.car import CarReader
from executor.embedded_store import EmbeddedStore
from executor.storage import ENTRY_COST
from tests.executor.hostile_dags import many_tiny_blocks_car as tiny_car

PIECE = 262144


def _write_random(path: Path, size: int) -> None:
    with path.open("wb") as handle:
        left = size
        while left:
            piece = os.urandom(min(left, 1 << 20))
            handle.write(piece)
            left -= len(piece)


def _files(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file())


def _hash_memory(blobs: list[bytes]) -> None:
    for blob in blobs:
        digest = hashlib.sha256()
        view = memoryview(blob)
        for start in range(0, len(view), PIECE):
            digest.update(view[start : start + PIECE])
        digest.digest()


def _hash_files(paths: list[Path]) -> None:
    for path in paths:
        digest = hashlib.sha256()
        with path.open("rb", buffering=0) as handle:
            while piece := handle.read(PIECE):
                digest.update(piece)
        digest.digest()


def _write_files(blobs: list[bytes], out: Path, per_folder: int = 50) -> None:
    for index, blob in enumerate(blobs):
        folder = out / f"d{index // per_folder:03d}"
        if index % per_folder == 0:
            folder.mkdir(parents=True)
        with (folder / f"f{index:05d}").open("xb") as handle:
            handle.write(blob)


def _measure(name: str, source: Path, work: Path, repeat: int) -> list[list[object]]:
    paths = _files(source) if source.is_dir() else [source]
    total = sum(path.stat().st_size for path in paths)
    store_dir = work / "store"
    out_dir = work / "out"

    def fresh_store() -> None:
        shutil.rmtree(store_dir, ignore_errors=True)

    def no_output() -> None:
        if out_dir.is_dir():
            shutil.rmtree(out_dir)
        else:
            out_dir.unlink(missing_ok=True)

    blobs = [path.read_bytes() for path in paths]
    entries: list = []

    def add() -> None:
        entries[:] = EmbeddedStore(store_dir).add_path(source)

    def blocks_only() -> None:
        for shard in (store_dir / "blocks").iterdir():
            for block in shard.iterdir():
                block.unlink()

    def cat() -> None:
        store = EmbeddedStore(store_dir)
        for entry in entries:
            if not store.is_dir(entry.cid):
                for _ in store.iter_cat(entry.cid):
                    pass

    def get() -> None:
        EmbeddedStore(store_dir).get(entries[-1].cid, out_dir)

    def nothing() -> None:
        pass

    # (label, setup, timed work); the order matters: each step leaves what the next needs.
    steps: list[tuple[str, Callable[[], object], Callable[[], object]]] = [
        ("sha256 (memory)", nothing, lambda: _hash_memory(blobs)),
        ("read + sha256", nothing, lambda: _hash_files(paths)),
        ("write files", no_output, lambda: _write_files(blobs, out_dir)),
        ("add (new store)", fresh_store, add),
        ("add (again)", nothing, add),
        ("cat", nothing, cat),
        ("get", no_output, get),
        ("add (new blocks)", blocks_only, add),
    ]
    # Rounds interleave the steps, so load from other processes on the machine hits
    # floors and store alike; the best of the rounds counts for each step.
    best = {label: float("inf") for label, _, _ in steps}
    for round_number in range(repeat):
        log(f"{name}: round {round_number + 1} of {repeat}")
        for label, setup, work in steps:
            setup()
            start = time.perf_counter()
            work()
            best[label] = min(best[label], time.perf_counter() - start)
    no_output()
    blobs.clear()

    blocks = sum(1 for path in (store_dir / "blocks").rglob("*") if path.is_file())
    rows = []
    order = ["sha256 (memory)", "read + sha256", "add (new store)", "add (new blocks)"]
    order += ["add (again)", "cat", "write files", "get"]
    for label in order:
        seconds = best[label]
        against = "write files" if label in ("write files", "get") else "read + sha256"
        rows.append(
            [name, label, seconds * 1000, total / seconds / 1e6, seconds / best[against], against]
        )
    log(f"{name}: {len(paths)} files, {total:,} bytes, {blocks} blocks")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--size-mib", type=int, default=64)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--file-kib", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tiny", type=int, default=50_000, help="4-byte blocks in one CAR")
    parser.add_argument("--dir", type=Path, default=None, help="where temp files go")
    args = parser.parse_args()
    if min(args.size_mib, args.files, args.file_kib, args.repeat) < 1:
        parser.error("sizes, counts and --repeat must be positive")

    with tempfile.TemporaryDirectory(prefix="bench-store-", dir=args.dir) as temp:
        base = Path(temp)
        log(f"writing {args.size_mib} MiB and {args.files} x {args.file_kib} KiB under {base}")
        big = base / "big.bin"
        _write_random(big, args.size_mib << 20)
        folder = base / "many"
        for index in range(args.files):
            sub = folder / f"d{index // 50:03d}"
            sub.mkdir(parents=True, exist_ok=True)
            _write_random(sub / f"f{index:05d}.bin", args.file_kib << 10)

        rows = _measure(f"1 file, {args.size_mib} MiB", big, base / "w1", args.repeat)
        rows += _measure(
            f"{args.files} files x {args.file_kib} KiB", folder, base / "w2", args.repeat
        )
        car_rows = [
            _car_cost(f"{args.tiny} blocks of 4 bytes", tiny_car(args.tiny)[0], base / "w3"),
            _car_cost(f"1 file, {args.size_mib} MiB", _car_of_file(big, base / "w4"), base / "w5"),
        ]
        filesystem = subprocess.run(
            ["stat", "-f", "-c", "%T", str(base)], capture_output=True, text=True
        ).stdout.strip()

    print(
        f"bench_store: {time.strftime('%Y-%m-%d %H:%M %Z')}; code {code_version()}; "
        f"{os.cpu_count()} cores; load {load_average()}; best of {args.repeat}; "
        f"temp dir {args.dir or tempfile.gettempdir()} ({filesystem or '?'})"
    )
    print(table(["workload", "operation", "ms", "MB/s", "x floor", "floor"], rows))
    print()
    headers = ["CAR", "CAR bytes", "import ms", "counted bytes", "on disk (du)", "counted / du"]
    print(table(headers, car_rows))


def _car_of_file(path: Path, work: Path) -> bytes:
    store = EmbeddedStore(work)
    cid = store.add_path(path)[-1].cid
    out = io.BytesIO()
    store.export_car(cid, out)
    return out.getvalue()


def _car_cost(name: str, car: bytes, work: Path) -> list[object]:
    counted = sum(ENTRY_COST + len(block) for _, _, block in CarReader(io.BytesIO(car)))
    store = EmbeddedStore(work)
    started = time.perf_counter()
    store.import_car(io.BytesIO(car))
    elapsed_ms = (time.perf_counter() - started) * 1000
    # block files only: the store's up to 1024 shard folders are made once, not per upload
    on_disk = sum(p.lstat().st_blocks * 512 for p in (work / "blocks").rglob("*") if p.is_file())
    return [name, len(car), f"{elapsed_ms:.0f}", counted, on_disk, f"{counted / on_disk:.2f}"]


if __name__ == "__main__":
    main()
