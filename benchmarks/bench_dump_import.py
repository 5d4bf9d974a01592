"""Dump import throughput: `manage.py scan_chain --import-dump FILE` on synthetic
StateMarketDeals dumps, SQLite and PostgreSQL, against a bare `json.load` of the same file.

    .venv/bin/python -m benchmarks.bench_dump_import [--sizes 100000,1000000]
        [--backends sqlite,postgres] [--zst] [--quick] [--profile]

Each import runs in its own child process on a fresh database (migrated first); wall time
and the child's peak RSS come from os.wait4 on that child alone. Prints figures, asserts
nothing. Progress on stderr, tables on stdout.
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks._common import (
    BACKENDS,
    PYTHON,
    Measured,
    PostgresActivity,
    code_version,
    django_env,
    fresh_database,
    load_average,
    log,
    machine_summary,
    manage,
    parse_list,
    parse_sizes,
    profile_top,
    run_measured,
    table,
)
from benchmarks._synthetic import UNVERIFIED_SHARE, generate_dump

MAINNET_DEALS = 130_000_000
# PostgreSQL statements of the import's last step: the deal indexes, built once after a bulk
# load into an empty table, and the blessed-CID cache rebuild.
FINALIZE_QUERIES = r"CREATE INDEX|blessed_rebuild|INSERT INTO chain_scanner_blessedcid"

# The floor: parse the whole file with the standard library, nothing else.
JSON_LOAD = """
import json, sys, time
path = sys.argv[1]
start = time.perf_counter()
if path.endswith(".zst"):
    import zstandard
    with open(path, "rb") as raw, zstandard.ZstdDecompressor().stream_reader(raw) as fh:
        data = json.load(fh)
else:
    with open(path, "rb") as fh:
        data = json.load(fh)
print(len(data), time.perf_counter() - start)
"""

# What the import does before the database: stream with ijson exactly as import_dump does
# and build the rows (decode.parse_deal, CID normalisation), then drop them.
PARSE_ONLY = """
import sys, time
from pathlib import Path
import ijson, zstandard
from chain_scanner.decode import BadChainData, parse_deal, parse_deal_id
path = Path(sys.argv[1])
start = time.perf_counter()
entries = rows = 0
with path.open("rb") as raw:
    stream = raw
    if path.suffix == ".zst":  # as dump_import._open reads it
        stream = zstandard.ZstdDecompressor().stream_reader(raw, read_size=1 << 20)
    for key, value in ijson.kvitems(stream, "", use_float=True):
        entries += 1
        try:
            rows += parse_deal(parse_deal_id(key), value) is not None
        except BadChainData:
            pass
print(entries, time.perf_counter() - start)
"""


@dataclass
class ImportRun:
    backend: str
    fmt: str
    size: int
    measured: Measured
    report: dict[str, str]
    finalize_s: float | None = None

    @property
    def rate(self) -> float:
        return self.size / self.measured.wall_s


def _fmt(path: Path) -> str:
    return "json.zst" if path.suffix == ".zst" else "json"


def json_load_baseline(path: Path) -> Measured:
    log(f"baseline: json.load({path.name})")
    measured = run_measured([PYTHON, "-c", JSON_LOAD, str(path)], django_env("sqlite://"))
    count, seconds = measured.stdout.split()
    log(
        f"  {int(count):,} entries, load {float(seconds):.1f} s, wall {measured.wall_s:.1f} s, "
        f"peak RSS {measured.max_rss_mib:,.0f} MiB"
    )
    return measured


def parse_only_baseline(path: Path) -> Measured:
    log(f"baseline: ijson + parse_deal of {path.name}, no database")
    measured = run_measured([PYTHON, "-c", PARSE_ONLY, str(path)], django_env("sqlite://"))
    count, seconds = measured.stdout.split()
    log(
        f"  {int(count):,} entries, parse {float(seconds):.1f} s, wall {measured.wall_s:.1f} s, "
        f"peak RSS {measured.max_rss_mib:,.0f} MiB"
    )
    return measured


def import_once(path: Path, size: int, backend: str) -> ImportRun:
    with fresh_database(backend) as url:
        env = django_env(url)
        log(f"{backend}: migrate")
        manage(env, "migrate", "-v0")
        log(f"{backend}: import {path.name} ({size:,} deals), load {load_average()}")
        args = ("scan_chain", "--import-dump", str(path), "--no-progress")
        finalize_s = None
        if backend == "postgres":
            with PostgresActivity(url, {"finalize": FINALIZE_QUERIES}) as activity:
                start = time.perf_counter()
                measured = manage(env, *args)
            if "finalize" in activity.first:
                finalize_s = start + measured.wall_s - activity.first["finalize"]
        else:
            measured = manage(env, *args)
    line = next(
        (x for x in measured.stdout.splitlines() if x.startswith("dump imported:")), "<none>"
    )
    report = dict(re.findall(r"(\w+)=(\S+)", line))
    if report.get("entries") != str(size):
        raise RuntimeError(f"unexpected import summary: {line}\n{measured.stderr[-2000:]}")
    run = ImportRun(backend, _fmt(path), size, measured, report, finalize_s)
    finalize = f" (final index build + blessed rebuild {finalize_s:.1f} s)" if finalize_s else ""
    log(
        f"  {measured.wall_s:.1f} s{finalize}, {run.rate:,.0f} deals/s, "
        f"peak RSS {measured.max_rss_mib:,.0f} MiB — {line}"
    )
    return run


def django_startup() -> Measured:
    """What every child pays before reading a byte: interpreter, Django, the command."""
    with tempfile.TemporaryDirectory(prefix="filplus-bench-") as tmp:
        return manage(django_env(f"sqlite:///{tmp}/none.sqlite3"), "scan_chain", "--help")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000,1000000", help="deal counts, comma-separated")
    parser.add_argument("--backends", default="sqlite,postgres", help="sqlite,postgres")
    parser.add_argument("--zst", action="store_true", help="also import the .zst of each dump")
    parser.add_argument("--quick", action="store_true", help="100,000 deals only")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="then cProfile one import of the smallest size per backend (top 10 by tottime)",
    )
    args = parser.parse_args(argv)
    sizes = [100_000] if args.quick else parse_sizes(args.sizes)
    backends = parse_list(args.backends, BACKENDS)
    machine = machine_summary()
    code = code_version()
    log(machine)

    files: list[tuple[int, Path]] = []
    for size in sizes:
        files.append((size, generate_dump(size)))
        if args.zst:
            files.append((size, generate_dump(size, zst=True)))

    startup = django_startup()
    log(f"Django start-up (manage.py scan_chain --help): {startup.wall_s:.2f} s")
    baselines = {path: json_load_baseline(path) for _size, path in files}
    parse_only = {path: parse_only_baseline(path) for _size, path in files}
    runs = [import_once(path, size, backend) for size, path in files for backend in backends]

    print(f"# Dump import: manage.py scan_chain --import-dump ({machine})")
    if code_version() != code:
        print(f"# NOTE: the code changed during the run, from {code} to {code_version()}")
    print(
        f"# synthetic bare-map StateMarketDeals, shuffled sparse ids, "
        f"{UNVERIFIED_SHARE:.0%} unverified; "
        f"wall includes Django start-up ({startup.wall_s:.2f} s) and the blessed-CID rebuild"
    )
    print()
    print(
        table(
            [
                "format",
                "deals",
                "file MB",
                "B/entry",
                "json.load s",
                "json.load RSS MiB",
                "parse-only s",
                "parse-only deals/s",
                "parse-only RSS MiB",
            ],
            [
                (
                    _fmt(path),
                    size,
                    path.stat().st_size / 1e6,
                    round(path.stat().st_size / size) if _fmt(path) == "json" else "-",
                    baselines[path].wall_s,
                    baselines[path].max_rss_mib,
                    parse_only[path].wall_s,
                    size / parse_only[path].wall_s,
                    parse_only[path].max_rss_mib,
                )
                for size, path in files
            ],
        )
    )
    print()
    rows = []
    for run, (_size, path) in zip(runs, [f for f in files for _ in backends], strict=True):
        base = baselines[path]
        rows.append(
            (
                run.backend,
                run.fmt,
                run.size,
                run.measured.wall_s,
                run.rate,
                "-" if run.finalize_s is None else round(run.finalize_s, 1),
                run.measured.max_rss_mib,
                run.measured.user_s + run.measured.sys_s,
                f"{run.measured.wall_s / base.wall_s:.1f}x",
                f"{run.measured.wall_s / parse_only[path].wall_s:.1f}x",
                f"{run.measured.max_rss_mib / base.max_rss_mib:.3f}x",
                int(run.report.get("verified", 0)),
                int(run.report.get("blessed_cids", 0)),
            )
        )
    print(
        table(
            [
                "backend",
                "format",
                "deals",
                "wall s",
                "deals/s",
                "final step s",
                "peak RSS MiB",
                "child CPU s",
                "time/json.load",
                "time/parse-only",
                "RSS/json.load",
                "verified",
                "blessed",
            ],
            rows,
        )
    )
    postgres = [r for r in runs if r.backend == "postgres"]
    if postgres:
        largest = max(r.size for r in postgres)
        best = [r for r in postgres if r.size == largest]
        print()
        for run in best:
            minutes = MAINNET_DEALS / run.rate / 60
            print(
                f"PostgreSQL, {run.fmt}, {largest:,} deals at {run.rate:,.0f} deals/s: "
                f"mainnet ~130 M deals at this rate: {minutes:,.0f} minutes"
            )

    if args.profile:
        smallest = min(sizes)
        path = next(p for s, p in files if s == smallest and _fmt(p) == "json")
        for backend in backends:
            with fresh_database(backend) as url:
                env = django_env(url)
                manage(env, "migrate", "-v0")
                log(f"{backend}: cProfile import of {path.name}")
                text = profile_top(
                    ["scan_chain", "--import-dump", str(path), "--no-progress"],
                    env,
                    title=f"cProfile, {backend}, {smallest:,} deals, top 10 by tottime "
                    "(main thread only):",
                )
            print()
            print(text)


if __name__ == "__main__":
    main()
