"""Fetching and proving a piece from a storage provider: throughput and peak memory.

    .venv/bin/python -m benchmarks.bench_retrieval [--sizes 64M,1G] [--dir /tmp] [--curio]

For each piece size, a piece of random bytes (not a CAR: it is kept as one file) filling
the whole unpadded piece is written under `--dir` and served by the fake storage provider
(tests/fake_sp.py, booster-http style unless `--curio`) from a thread of this process.
Each row is one child process, measured alone (benchmarks/_spawn.py: wall time, CPU, peak
RSS of that process):

- `sha256sum`: coreutils over the same file, the floor (page cache warm);
- `commp (file)`: `executor.commp.commp` reading the file, no network: CommP's own cost;
- `fetch + verify + store`: `Retriever.resolve` of the piece CID with `"raw": true` into a
  fresh embedded store: GET /piece/ over loopback, CommP while streaming to a staging file,
  the size check, then the file stored as UnixFS blocks and pinned (what a job waits for).

`ratio` is wall time over sha256sum's, `cpu ratio` CPU time (user + sys) over its (steadier
on a loaded machine; the provider's own CPU, in this process, is not counted). The goal is
3x, and a flat peak RSS under 150 MB whatever the size. MB/s is 10^6 bytes of piece data a
second. Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._common import PYTHON, code_version, load_average, log, run_measured, table

_UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def _size(text: str) -> int:
    text = text.strip().upper().removesuffix("IB").removesuffix("B")
    if text and text[-1] in _UNITS:
        return int(text[:-1]) * _UNITS[text[-1]]
    return int(text)


def _write_random(path: Path, size: int) -> None:
    with path.open("wb") as out:
        left = size
        while left:
            chunk = os.urandom(min(left, 1 << 20))
            out.write(chunk)
            left -= len(chunk)


def _child_commp(path: str) -> None:
    from executor.commp import commp

    with Path(path).open("rb") as data:
        piece = commp(data)
    print(json.dumps({"cid": piece.cid, "size": piece.size}))


def _child_fetch(url: str, cid: str, piece_size: str, workdir: str) -> None:
    from executor.embedded_store import EmbeddedStore
    from executor.locations import Location
    from executor.retrieval import RetrievalSettings, Retriever
    from executor.spec import InputMount
    from executor.storage import FetchLimit

    root = Path(workdir)
    store = EmbeddedStore(root / "ipfs")
    retriever = Retriever(
        store,
        root / "staging",
        locate=lambda _cid: [Location(url, piece_size=int(piece_size))],
        settings=RetrievalSettings(piece_dir=root / "pieces"),
    )
    try:
        mounted = retriever.resolve(
            InputMount(cid=cid, path="/in/piece", raw=True), FetchLimit(max_bytes=1 << 40)
        )
    finally:
        retriever.close()
    record = retriever.records[0].to_json()
    print(
        json.dumps({"mounted": mounted, "verified": record["verified"], "bytes": record["bytes"]})
    )


def cpu(measured: object) -> float:
    return measured.user_s + measured.sys_s  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", default="64M,1G", help="padded piece sizes, e.g. 64M,1G")
    parser.add_argument("--dir", type=Path, default=None, help="where temp files go")
    parser.add_argument("--curio", action="store_true", help="serve raw length, no zero fill")
    args = parser.parse_args()

    from executor.commp import Piece, unpadded_size
    from tests.fake_sp import FakeSP

    sizes = [_size(item) for item in args.sizes.split(",") if item.strip()]
    started = time.strftime("%Y-%m-%d %H:%M %Z")
    version = code_version()
    rows = []
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    tmp = Path(tempfile.mkdtemp(prefix="filplus-bench-retrieval-", dir=args.dir))
    try:
        for piece_size in sizes:
            data_size = unpadded_size(piece_size)
            data = tmp / f"piece-{piece_size}.bin"
            log(f"writing {data_size} random bytes")
            _write_random(data, data_size)
            mb = data_size / 1e6
            floor = run_measured(["sha256sum", str(data)], env)
            log(f"sha256sum {floor.wall_s:.2f} s")
            hashed = run_measured([PYTHON, "-c", _CHILD, "commp", str(data)], env)
            answer = json.loads(hashed.stdout)
            log(f"commp {hashed.wall_s:.2f} s: {answer['cid']}")
            piece = Piece(cid=answer["cid"], size=answer["size"], payload_size=data_size)
            with FakeSP(curio=args.curio) as sp:
                sp.add_piece_file(data, piece)
                work = tmp / f"node-{piece_size}"
                fetched = run_measured(
                    [PYTHON, "-c", _CHILD, "fetch", sp.url, piece.cid, str(piece.size), str(work)],
                    env,
                )
                log(f"fetch {fetched.wall_s:.2f} s: {fetched.stdout.strip()}")
                shutil.rmtree(work, ignore_errors=True)
            for name, measured in (
                ("sha256sum", floor),
                ("commp (file)", hashed),
                ("fetch + verify + store", fetched),
            ):
                rows.append(
                    (
                        f"{piece_size >> 20} MiB",
                        name,
                        f"{measured.wall_s:.2f}",
                        f"{measured.user_s + measured.sys_s:.2f}",
                        f"{mb / measured.wall_s:.0f}",
                        f"{measured.wall_s / floor.wall_s:.1f}x",
                        f"{cpu(measured) / cpu(floor):.1f}x",
                        f"{measured.max_rss_mib:.0f}",
                    )
                )
            data.unlink()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(
        f"bench_retrieval: {started}; code {version}; {os.cpu_count()} cores; load {load_average()}"
    )
    print(f"provider: fake {'Curio' if args.curio else 'booster-http'} on loopback")
    print(
        table(
            ["piece", "what", "wall s", "cpu s", "MB/s", "ratio", "cpu ratio", "peak RSS MiB"],
            rows,
        )
    )


_CHILD = (
    "import sys\n"
    "from benchmarks.bench_retrieval import _child_commp, _child_fetch\n"
    "{'commp': _child_commp, 'fetch': _child_fetch}[sys.argv[1]](*sys.argv[2:])\n"
)


if __name__ == "__main__":
    sys.exit(main())
