"""The copy index of novelty: fingerprinting throughput, lookup time and the index's size.

    .venv/bin/python -m benchmarks.bench_novelty [--backends sqlite,postgres] [--runs 3]
        [--index-rows 10000000 | --quick] [--data-mib 1024] [--lookups 5]

Three figures, each against the goal the issue set:

1. **Fingerprinting vs sha256sum** (goal: within 3x). `--data-mib` random bytes, written once
   and cached under the bench cache dir, then `--runs` rounds of three children, each measured
   alone (benchmarks/_spawn.py): `sha256sum FILE` (coreutils, the goal's floor), a Python
   process that reads the file 1 MiB at a time into one `hashlib.sha256` (OpenSSL: Python's
   own floor, far faster than coreutils on a CPU with SHA extensions), and one that streams
   it the same way through `dashboard.content.fingerprints.pieces` (FastCDC chunks and
   256 KiB blocks, each hashed with sha256) and consumes every fingerprint. They take turns,
   so load from other processes hits all alike; page cache warm. Wall times include the
   interpreter's start-up (the Python children's own loop time is printed too).
2. **Lookup of a result's 10,000 chunks against an index of `--index-rows` rows** (goal:
   under 1 s), per backend, in a throw-away database (`manage.py migrate`, then the rows
   written with raw SQL: `--index-rows / 5000` IndexedContent items of 5,000 random 64-bit
   fingerprints each, inserted in random order with the indexes in place, as indexing builds
   them; foreign keys not checked while filling). A child process then calls
   `dashboard.content.index.owners` on 10,000 fingerprints, half of them in the index, half
   not, `--lookups` times: the first call (a fresh process and connection; the OS page
   cache is warm, the database's own cache is not primed for these keys) and the median of
   the others.
3. **The index's size**: the ContentChunk table and its indexes on disk once filled
   (PostgreSQL after VACUUM ANALYZE, as autovacuum would leave it: `pg_total_relation_size`;
   SQLite: the `dbstat` virtual table), per row, and per GiB of content indexed at the rows a
   GiB makes: its FastCDC chunks at the average size measured in part 1, plus one block per
   256 KiB (random data: no chunk repeats).

`--quick` fills 1,000,000 rows. Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from benchmarks._common import (
    BACKENDS,
    CACHE_DIR,
    PYTHON,
    ROOT,
    Measured,
    django_env,
    fresh_database,
    load_average,
    log,
    machine_summary,
    manage,
    parse_list,
    run_measured,
    table,
)

GIB = 1 << 30
MIB = 1 << 20
BLOCK = 256 * 1024  # dashboard.content.fingerprints.BLOCK
PER_ITEM = 5_000  # fingerprints per IndexedContent item
FILL_STEP = 1_000_000  # rows per fill statement (and per transaction)
THROUGHPUT_GOAL = 3.0
LOOKUP_GOAL_S = 1.0


# --- children -------------------------------------------------------------------------------


def _child_pieces(path: str) -> None:
    """Stream a file through pieces(), 1 MiB reads, and consume every fingerprint."""
    started = time.perf_counter()
    from dashboard.content.fingerprints import pieces

    def read() -> Iterator[bytes]:
        with Path(path).open("rb") as data:
            while block := data.read(MIB):
                yield block

    loop = time.perf_counter()
    count = 0
    mixed = 0
    for batch in pieces(read()):
        for piece in batch:
            mixed ^= piece.fingerprint
        count += len(batch)
    done = time.perf_counter()
    print(
        json.dumps(
            {"pieces": count, "xor": mixed, "loop_s": done - loop, "import_s": loop - started}
        )
    )


def _child_sha256(path: str) -> None:
    """The same reads through one hashlib.sha256 (OpenSSL): Python's own hashing floor."""
    started = time.perf_counter()
    digest = hashlib.sha256()
    with Path(path).open("rb") as data:
        while block := data.read(MIB):
            digest.update(block)
    print(json.dumps({"digest": digest.hexdigest(), "loop_s": time.perf_counter() - started}))


def _child_lookup(fingerprints_file: str, times: str) -> None:
    """Time owners() on the fingerprints in the file, `times` calls in one process."""
    import django

    django.setup()
    from django.db import connection

    from dashboard.content.index import owners

    wanted = json.loads(Path(fingerprints_file).read_text())
    connection.ensure_connection()
    queries = 0

    def count(execute, sql, params, many, context):
        nonlocal queries
        queries += 1
        return execute(sql, params, many, context)

    seconds = []
    found = 0
    with connection.execute_wrapper(count):
        for _ in range(int(times)):
            started = time.perf_counter()
            result = owners(wanted)
            seconds.append(time.perf_counter() - started)
            found = len(result)
    print(json.dumps({"seconds": seconds, "found": found, "queries": queries // int(times)}))


_CHILD = (
    "import sys\n"
    "from benchmarks.bench_novelty import _child_lookup, _child_pieces, _child_sha256\n"
    "{'pieces': _child_pieces, 'sha256': _child_sha256, 'lookup': _child_lookup}"
    "[sys.argv[1]](*sys.argv[2:])\n"
)


# --- part 1: fingerprinting throughput ------------------------------------------------------


def random_file(size: int) -> Path:
    """`size` random bytes in the bench cache dir, written once."""
    path = CACHE_DIR / f"novelty-random-{size >> 20}MiB.bin"
    if path.exists() and path.stat().st_size == size:
        return path
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    log(f"writing {size >> 20} MiB of random bytes to {path}")
    partial = path.with_suffix(".partial")
    with partial.open("wb") as out:
        left = size
        while left:
            block = os.urandom(min(left, MIB))
            out.write(block)
            left -= len(block)
    partial.replace(path)
    return path


def _cpu(measured: Measured) -> float:
    return measured.user_s + measured.sys_s


_COMMANDS = (
    ("sha256sum", "sha256sum (floor)"),
    ("sha256", "hashlib.sha256 child"),
    ("pieces", "pieces() child"),
)


def throughput(path: Path, runs: int) -> tuple[list[list[object]], dict[str, float]]:
    size = path.stat().st_size
    with path.open("rb") as warm:  # into the page cache before the first timed read
        while warm.read(16 * MIB):
            pass
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    measured: dict[str, list[Measured]] = {key: [] for key, _ in _COMMANDS}
    answers: dict[str, list[dict]] = {key: [] for key, _ in _COMMANDS}
    for round_number in range(runs):
        for key, _ in _COMMANDS:
            if key == "sha256sum":
                done = run_measured(["sha256sum", str(path)], env)
                answer = {"digest": done.stdout.split()[0]}
            else:
                done = run_measured([PYTHON, "-c", _CHILD, key, str(path)], env)
                answer = json.loads(done.stdout)
            measured[key].append(done)
            answers[key].append(answer)
        log(
            f"round {round_number + 1} of {runs}: "
            + ", ".join(f"{key} {measured[key][-1].wall_s:.2f} s" for key, _ in _COMMANDS)
            + f" (pieces() loop {answers['pieces'][-1]['loop_s']:.2f} s)"
        )
    digests = {a["digest"] for key in ("sha256sum", "sha256") for a in answers[key]}
    results = {(a["pieces"], a["xor"]) for a in answers["pieces"]}
    if len(digests) != 1 or len(results) != 1:
        raise RuntimeError(f"the same file gave different answers: {digests} {results}")

    def median_wall(key: str) -> float:
        return statistics.median(m.wall_s for m in measured[key])

    def median_cpu(key: str) -> float:
        return statistics.median(_cpu(m) for m in measured[key])

    floor_min = min(m.wall_s for m in measured["sha256sum"])
    rows: list[list[object]] = []
    for key, name in _COMMANDS:
        loops = [a["loop_s"] for a in answers[key] if "loop_s" in a]
        rows.append(
            [
                name,
                min(m.wall_s for m in measured[key]),
                median_wall(key),
                f"{statistics.median(loops):.2f}" if loops else "-",
                size / 1e6 / median_wall(key),
                median_cpu(key),
                f"{median_wall(key) / median_wall('sha256sum'):.2f}x",
                f"{min(m.wall_s for m in measured[key]) / floor_min:.2f}x",
                f"{median_cpu(key) / median_cpu('sha256sum'):.2f}x",
                f"{median_wall(key) / median_wall('sha256'):.2f}x",
                max(m.max_rss_mib for m in measured[key]),
            ]
        )
    blocks = -(-size // BLOCK)
    count = answers["pieces"][0]["pieces"]
    average = size / (count - blocks)
    facts = {
        "bytes": size,
        "pieces": count,
        "chunks": count - blocks,
        "blocks": blocks,
        "average": average,
        "rows_per_gib": GIB / average + GIB / BLOCK,
    }
    return rows, facts


# --- parts 2 and 3: lookups and size --------------------------------------------------------

# A random signed 64-bit integer: random() is a double, so two 32-bit halves.
_PG_RANDOM_BIGINT = (
    "(floor(random() * 4294967296)::bigint - 2147483648) << 32"
    " | floor(random() * 4294967296)::bigint"
)


def _fill_postgres(url: str, rows: int) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as db:
        # No foreign-key triggers while filling (a superuser's bulk path); indexes stay.
        db.execute("SET session_replication_role = replica")
        db.execute(
            "INSERT INTO dashboard_indexedcontent"
            " (id, cid, origin, state, bytes, chunks, error, noted_at, indexed_at)"
            " SELECT g, 'bench-' || g, 'result', 'indexed', 0, %s, '', now(), now()"
            " FROM generate_series(1, %s) g",
            (PER_ITEM, -(-rows // PER_ITEM)),
        )
        started = time.perf_counter()
        for start in range(0, rows, FILL_STEP):
            end = min(rows, start + FILL_STEP)
            db.execute(
                "INSERT INTO dashboard_contentchunk (id, fingerprint, content_id)"
                f" SELECT g + 1, {_PG_RANDOM_BIGINT}, g / %s + 1"
                " FROM generate_series(%s::bigint, %s::bigint) g",
                (PER_ITEM, start, end - 1),
            )
            log(f"postgres: {end:,} rows, {time.perf_counter() - started:.0f} s")
        for table_name in ("dashboard_indexedcontent", "dashboard_contentchunk"):
            db.execute(
                f"SELECT setval(pg_get_serial_sequence('{table_name}', 'id'),"
                f" (SELECT max(id) FROM {table_name}))"
            )
        db.execute("VACUUM ANALYZE dashboard_indexedcontent")
        db.execute("VACUUM ANALYZE dashboard_contentchunk")


def _sqlite_path(url: str) -> str:
    return url.removeprefix("sqlite:///")


def _fill_sqlite(url: str, rows: int) -> None:
    # Django's connections turn foreign keys on; this one leaves them off while filling.
    db = sqlite3.connect(_sqlite_path(url), isolation_level=None)
    try:
        db.execute("PRAGMA cache_size = -1048576")  # 1 GiB: the whole index stays in memory
        db.execute("PRAGMA synchronous = OFF")
        counter = "WITH RECURSIVE g(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM g WHERE i < ?)"
        db.execute(
            "INSERT INTO dashboard_indexedcontent"
            " (id, cid, origin, state, bytes, chunks, error, noted_at, indexed_at) "
            f"{counter} SELECT i, 'bench-' || i, 'result', 'indexed', 0, ?, '',"
            " datetime('now'), datetime('now') FROM g",
            (1, -(-rows // PER_ITEM), PER_ITEM),
        )
        started = time.perf_counter()
        for start in range(0, rows, FILL_STEP):
            end = min(rows, start + FILL_STEP)
            db.execute("BEGIN")
            db.execute(
                "INSERT INTO dashboard_contentchunk (id, fingerprint, content_id) "
                f"{counter} SELECT i + 1, random(), i / ? + 1 FROM g",
                (start, end - 1, PER_ITEM),
            )
            db.execute("COMMIT")
            log(f"sqlite: {end:,} rows, {time.perf_counter() - started:.0f} s")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()


def _query(url: str, backend: str, sql: str) -> list[tuple]:
    """The rows of one query, on a connection of its own."""
    if backend == "postgres":
        import psycopg

        with psycopg.connect(url) as pg:
            return pg.execute(sql).fetchall()
    lite = sqlite3.connect(_sqlite_path(url))
    try:
        return lite.execute(sql).fetchall()
    finally:
        lite.close()


def _probe(url: str, backend: str, rows: int, wanted: int, rng: random.Random) -> list[int]:
    """`wanted` distinct fingerprints: half read from random rows of the index, half random
    64-bit integers (in an index of 10^7 rows, one is there by chance with p ~ 10^-12)."""
    ids = ",".join(str(i) for i in rng.sample(range(1, rows + 1), min(rows, wanted // 2)))
    sql = f"SELECT fingerprint FROM dashboard_contentchunk WHERE id IN ({ids})"
    present = {fingerprint for (fingerprint,) in _query(url, backend, sql)}
    absent: set[int] = set()
    while len(present) + len(absent) < wanted:
        candidate = rng.getrandbits(64) - (1 << 63)
        if candidate not in present:
            absent.add(candidate)
    probe = [*present, *absent]
    rng.shuffle(probe)
    return probe


@dataclass
class Size:
    """Bytes on disk of the ContentChunk table, of each of its indexes, and in all."""

    table: int
    indexes: dict[str, int]
    total: int


def _size(url: str, backend: str) -> Size:
    if backend == "postgres":
        ((total, heap),) = _query(
            url,
            backend,
            "SELECT pg_total_relation_size('dashboard_contentchunk'),"
            " pg_table_size('dashboard_contentchunk')",
        )
        each = _query(
            url,
            backend,
            "SELECT indexrelid::regclass::text, pg_relation_size(indexrelid) FROM pg_index"
            " WHERE indrelid = 'dashboard_contentchunk'::regclass ORDER BY 1",
        )
        return Size(heap, {name: int(size) for name, size in each}, total)
    # Every b-tree of the table: the table itself and its indexes (the unique constraint's).
    rows = _query(
        url,
        backend,
        "SELECT m.type, m.name, SUM(d.pgsize) FROM sqlite_master m"
        " JOIN dbstat d ON d.name = m.name"
        " WHERE m.tbl_name = 'dashboard_contentchunk' AND m.type IN ('table', 'index')"
        " GROUP BY m.type, m.name ORDER BY m.name",
    )
    heap = sum(int(size) for kind, _, size in rows if kind == "table")
    indexes: dict[str, int] = {name: int(size) for kind, name, size in rows if kind == "index"}
    return Size(heap, indexes, heap + sum(indexes.values()))


@dataclass
class Lookup:
    fill_s: float
    found: int
    queries: int
    first_s: float
    median_s: float


def index_backend(
    backend: str, rows: int, wanted: int, lookups: int, seed: int
) -> tuple[Lookup, Size]:
    with fresh_database(backend) as url:
        env = django_env(url)
        log(f"{backend}: migrate")
        manage(env, "migrate", "--no-input")
        log(f"{backend}: filling {rows:,} rows ({-(-rows // PER_ITEM):,} items)")
        started = time.perf_counter()
        (_fill_postgres if backend == "postgres" else _fill_sqlite)(url, rows)
        fill_s = time.perf_counter() - started
        size = _size(url, backend)
        probe = _probe(url, backend, rows, wanted, random.Random(seed))
        with tempfile.NamedTemporaryFile("w", prefix="filplus-bench-", suffix=".json") as out:
            json.dump(probe, out)
            out.flush()
            measured = run_measured([PYTHON, "-c", _CHILD, "lookup", out.name, str(lookups)], env)
        answer = json.loads(measured.stdout)
        seconds = answer["seconds"]
        log(
            f"{backend}: filled in {fill_s:.0f} s; owners() "
            + ", ".join(f"{s * 1000:.0f}" for s in seconds)
            + " ms"
        )
        result = Lookup(
            fill_s=fill_s,
            found=answer["found"],
            queries=answer["queries"],
            first_s=seconds[0],
            median_s=statistics.median(seconds[1:] or seconds),
        )
        return result, size


# --- main -----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--runs", type=int, default=3, help="rounds of the hashing children")
    parser.add_argument("--data-mib", type=int, default=1024, help="random bytes fingerprinted")
    parser.add_argument("--index-rows", type=lambda text: int(text.replace("_", "")))
    parser.add_argument("--quick", action="store_true", help="--index-rows 1000000")
    parser.add_argument("--fingerprints", type=int, default=10_000, help="looked up per call")
    parser.add_argument("--lookups", type=int, default=5, help="owners() calls per backend")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    backends = parse_list(args.backends, BACKENDS)
    if args.index_rows is None:
        args.index_rows = 1_000_000 if args.quick else 10_000_000
    if min(args.runs, args.data_mib, args.index_rows, args.fingerprints, args.lookups) < 1:
        parser.error("sizes, counts and --runs must be positive")

    header = f"# Novelty's copy index ({machine_summary()}; load {load_average()} at start)"
    path = random_file(args.data_mib * MIB)
    log(f"fingerprinting {path} against sha256sum, {args.runs} rounds")
    speed_rows, facts = throughput(path, args.runs)

    lookup_rows: list[list[object]] = []
    size_rows: list[list[object]] = []
    index_notes: list[str] = []
    for backend in backends:
        result, size = index_backend(
            backend, args.index_rows, args.fingerprints, args.lookups, args.seed
        )
        lookup_rows.append(
            [
                backend,
                args.index_rows,
                result.fill_s,
                args.fingerprints,
                result.found,
                result.queries,
                result.first_s * 1000,
                result.median_s * 1000,
                "yes" if max(result.first_s, result.median_s) < LOOKUP_GOAL_S else "no",
            ]
        )
        per_row = size.total / args.index_rows
        index_notes.append(
            f"{backend}: "
            + ", ".join(
                f"{name} {bytes_ / args.index_rows:.1f}" for name, bytes_ in size.indexes.items()
            )
        )
        size_rows.append(
            [
                backend,
                args.index_rows,
                size.table / MIB,
                sum(size.indexes.values()) / MIB,
                size.total / MIB,
                per_row,
                per_row * facts["rows_per_gib"] / MIB,
                f"{per_row * facts['rows_per_gib'] / GIB:.2%}",
            ]
        )

    print(f"{header}; load {load_average()} at the end")
    print()
    print(
        f"1. Fingerprinting {facts['bytes'] / MIB:,.0f} MiB of random bytes (page cache warm), "
        f"{args.runs} rounds taking turns; goal: pieces() within {THROUGHPUT_GOAL:.0f}x sha256sum"
    )
    print(
        table(
            [
                "what",
                "min s",
                "median s",
                "loop s",
                "MB/s",
                "cpu s",
                "ratio",
                "min ratio",
                "cpu ratio",
                "x hashlib",
                "peak RSS MiB",
            ],
            speed_rows,
        )
    )
    print(
        "ratio: median wall over sha256sum's; min ratio: the fastest runs' wall; cpu ratio: "
        "median user + sys over sha256sum's; x hashlib: median wall over the hashlib child's"
    )
    print(
        f"{facts['pieces']:,} pieces: {facts['chunks']:,} FastCDC chunks averaging "
        f"{facts['average']:,.0f} bytes ({facts['average'] / 1024:.2f} KiB) + "
        f"{facts['blocks']:,} blocks of 256 KiB: {facts['rows_per_gib']:,.0f} index rows per GiB"
    )
    print()
    print(
        f"2. owners() on {args.fingerprints:,} fingerprints (about half indexed), "
        f"{args.lookups} calls in one fresh process: the first, then the median of the others; "
        f"goal: under {LOOKUP_GOAL_S:.0f} s"
    )
    print(
        table(
            [
                "backend",
                "index rows",
                "fill s",
                "looked up",
                "found",
                "queries",
                "first ms",
                "median ms",
                "goal met",
            ],
            lookup_rows,
        )
    )
    print()
    print(
        "3. ContentChunk on disk (table, its indexes), per row and per GiB indexed "
        f"({facts['rows_per_gib']:,.0f} rows a GiB)"
    )
    print(
        table(
            [
                "backend",
                "rows",
                "table MiB",
                "indexes MiB",
                "total MiB",
                "bytes/row",
                "MiB per GiB",
                "of the content",
            ],
            size_rows,
        )
    )
    print(f"bytes a row in each index: {'; '.join(index_notes)}")


if __name__ == "__main__":
    main()
