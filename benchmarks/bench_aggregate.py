"""FRC-0058 aggregates (executor/aggregate.py): proof verifications a second, and building an
aggregate against CommP of the same bytes.

    .venv/bin/python -m benchmarks.bench_aggregate [--quick] [--runs 3] [--data-mib 256]
        [--pieces 64] [--proof-pieces 256] [--aggregate-gib 32] [--out /dev/null] [--profile]

Two figures:

1. **Proof verifications a second.** `--proof-pieces` sub-pieces with random roots (made-up
   piece CIDs: `build_aggregate` needs no bytes) of random padded sizes from 1 MiB to 64 MiB,
   largest first as `python -m executor aggregate` packs them, in an aggregate declared
   `--aggregate-gib` GiB (32: 262,144 index entries). Each sub-piece's proof is taken from
   `Aggregate.proof(cid).to_json()` and sent through `json.dumps` / `json.loads`, so that it
   is the JSON object the registration API (`POST /jobs/{id}/pieces`) hands to `verify_proof`.
   Then `--runs` rounds (at least 5) in this process, each verifying every proof as many
   times over as fill about a second: `verify_proof(aggregate CID, size, piece CID, size,
   proof JSON)`, which includes decoding both piece CIDs, parsing the JSON proof (hex
   nodes) and every hash. A second row gives the same calls with the proofs already parsed
   (`InclusionProof`), to show what reading the JSON costs. Verifications a second: the
   median round. No database, no HTTP, no audit record.
2. **Building an aggregate against CommP** (goal: within 1.5x). `--data-mib` random bytes
   split into `--pieces` sub-piece files (sizes drawn log-uniformly over a 16x range, from
   `--seed`), written once and cached under the bench cache dir. Then `--runs` rounds of
   three child processes taking turns, each measured alone (benchmarks/_spawn.py; page
   cache warm):
   - `commp (one stream)`, the floor: one `CommP` over all the files read one after the
     other, 127 x 8 KiB at a time (`commp`'s own read size): the CommP a storage provider
     computes over the aggregate's data anyway. (Over the sub-pieces' payload only: the
     aggregate's own CommP also hashes its zeros and index, up to twice these bytes, so
     this floor is the lower one.)
   - `build aggregate`: what `python -m executor aggregate` does, minus reading CARs: each
     file's length, the pieces sorted largest first by the piece size that holds it,
     `pack_aggregate` at the size given (the smallest power of two they and the index fit
     in, worked out by this process beforehand, as a user picks `--size`): one pass that
     computes each sub-piece's CommP while it writes every byte of the aggregate, zeros and
     index included, to `--out` (default /dev/null: no disk cost); then each piece's proof
     as JSON.
   - `two passes (before)`: what the CLI did until 2026-12-07: `commp` of each file to
     place it, `build_aggregate`, then `write_aggregate` (its default `check=True`: each
     file's CommP computed again while it is written). Kept to show what the one pass saves.
   MiB/s is MiB of sub-piece payload (`--data-mib`) a second of wall time, for all three;
   the aggregate written is larger (its zeros and index), and the bytes written are
   printed. Wall times include the interpreter's start-up and imports (`loop s` is each
   child's own time from its first read to its last result; the build child's is split
   into its phases). The ratio is the median wall of each over the floor's; the goal is
   checked on the `build aggregate` row.

`--quick`: 32 MiB of payload. `--profile` adds one run of the build child under cProfile
(not timed), and prints the top functions by own time. Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import math
import os
import platform
import pstats
import random
import statistics
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks._common import (
    CACHE_DIR,
    PYTHON,
    ROOT,
    Measured,
    code_version,
    load_average,
    log,
    run_measured,
    table,
)

GIB = 1 << 30
MIB = 1 << 20
READ = 127 * 8192  # executor.commp._READ: what commp() reads from a file at a time
BUILD_GOAL = 1.5
PROOF_ROUND_S = 1.0  # wall time a verification round aims at
MIN_PROOF_ROUNDS = 5


# --- children -------------------------------------------------------------------------------


def _piece_files(folder: str) -> list[Path]:
    return sorted(Path(folder).glob("piece-*.bin"))


def _child_commp(folder: str) -> None:
    """One CommP over every file, one after the other: the floor."""
    started = time.perf_counter()
    from executor.commp import commp

    def read() -> Iterator[bytes]:
        for path in _piece_files(folder):
            with path.open("rb") as data:
                while chunk := data.read(READ):
                    yield chunk

    loop = time.perf_counter()
    piece = commp(read())
    done = time.perf_counter()
    print(
        json.dumps(
            {
                "cid": piece.cid,
                "payload": piece.payload_size,
                "loop_s": done - loop,
                "import_s": loop - started,
            }
        )
    )


def _child_build(folder: str, size: str, out_path: str, mode: str, profile: str = "") -> None:
    """What `python -m executor aggregate` does with the files, CAR parsing aside: `pack`
    as it does now (one pass), `two-pass` as it did before (CommP of each file to place it,
    then write_aggregate computing each CommP again as it writes)."""
    started = time.perf_counter()
    from executor.aggregate import build_aggregate, pack_aggregate, write_aggregate
    from executor.commp import commp, minimal_piece_size

    profiler = cProfile.Profile() if profile else None
    if profiler is not None:
        profiler.enable()
    loop = time.perf_counter()
    paths = _piece_files(folder)
    files = [path.open("rb") for path in paths]
    try:
        with Path(out_path).open("wb") as out:
            if mode == "pack":
                lengths = [path.stat().st_size for path in paths]
                order = sorted(range(len(paths)), key=lambda n: -minimal_piece_size(lengths[n]))
                commp_done = build_done = time.perf_counter()
                aggregate = pack_aggregate([(files[n], lengths[n]) for n in order], int(size), out)
                cids = [piece.cid for piece in aggregate.pieces]
            else:
                inputs = [(file, commp(file)) for file in files]
                commp_done = time.perf_counter()
                inputs.sort(key=lambda item: -item[1].size)  # largest first, as the CLI does
                aggregate = build_aggregate([(p.cid, p.size) for _, p in inputs], int(size))
                build_done = time.perf_counter()
                for file, _ in inputs:
                    file.seek(0)
                write_aggregate(aggregate, [file for file, _ in inputs], out)
                cids = [p.cid for _, p in inputs]
    finally:
        for file in files:
            file.close()
    write_done = time.perf_counter()
    proofs = [json.dumps(aggregate.proof(cid).to_json()) for cid in cids]
    done = time.perf_counter()
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(profile)
    print(
        json.dumps(
            {
                "cid": aggregate.cid,
                "size": aggregate.size,
                "written": aggregate.payload_size,  # what both writers write
                "proof_bytes": sum(map(len, proofs)),
                "commp_s": commp_done - loop,
                "build_s": build_done - commp_done,
                "write_s": write_done - build_done,
                "proofs_s": done - write_done,
                "loop_s": done - loop,
                "import_s": loop - started,
            }
        )
    )


_CHILD = (
    "import sys\n"
    "from benchmarks.bench_aggregate import _child_build, _child_commp\n"
    "{'build': _child_build, 'commp': _child_commp}[sys.argv[1]](*sys.argv[2:])\n"
)


# --- part 1: proof verification -------------------------------------------------------------


def _random_piece_cid(rng: random.Random) -> str:
    from executor.commp import piece_cid_from_root

    root = bytearray(rng.randbytes(32))
    root[31] &= 0x3F  # a node of the tree: top two bits clear
    return piece_cid_from_root(bytes(root))


@dataclass
class Verifications:
    pieces: int
    size: int  # of the aggregate, padded
    payload: int  # padded bytes of its sub-pieces
    build_s: float
    hashes: float  # SHA-256 a proof, on average
    proof_chars: float  # of a proof's JSON, on average
    rows: list[list[object]]


def verifications(count: int, aggregate_size: int, runs: int, seed: int) -> Verifications:
    from executor.aggregate import InclusionProof, build_aggregate, verify_proof

    rng = random.Random(seed)
    sizes = sorted((MIB << rng.randrange(7) for _ in range(count)), reverse=True)
    pieces = [(_random_piece_cid(rng), size) for size in sizes]
    started = time.perf_counter()
    aggregate = build_aggregate(pieces, aggregate_size)
    build_s = time.perf_counter() - started
    bodies = [
        json.loads(
            json.dumps(
                {
                    "piece_cid": cid,
                    "piece_size": size,
                    "aggregate": {
                        "piece_cid": aggregate.cid,
                        "piece_size": aggregate.size,
                        "proof": aggregate.proof(cid).to_json(),
                    },
                }
            )
        )
        for cid, size in pieces
    ]
    calls = [
        (b["aggregate"]["piece_cid"], b["aggregate"]["piece_size"], b["piece_cid"], b["piece_size"])
        for b in bodies
    ]
    as_json = [b["aggregate"]["proof"] for b in bodies]
    parsed = [InclusionProof.from_json(proof) for proof in as_json]
    hashes = [
        len(p.tree.path) + len(p.index.path) + 2  # + the entry's checksum and its leaf pair
        for p in parsed
    ]

    def one_pass(proofs: Sequence[object]) -> float:
        begin = time.perf_counter()
        for args, proof in zip(calls, proofs, strict=True):
            verify_proof(*args, proof)
        return time.perf_counter() - begin

    rows: list[list[object]] = []
    for name, proofs in (
        ("verify_proof(proof JSON)", list(as_json)),
        ("verify_proof(InclusionProof)", list(parsed)),
    ):
        first = one_pass(proofs)  # also a warm-up
        passes = max(1, math.ceil(PROOF_ROUND_S / max(first, 1e-6)))
        rates = []
        for _ in range(runs):
            seconds = sum(one_pass(proofs) for _ in range(passes))
            rates.append(passes * count / seconds)
        log(f"{name}: " + ", ".join(f"{rate:,.0f}" for rate in rates) + " verifications/s")
        median = statistics.median(rates)
        rows.append([name, count, passes, runs, median, max(rates), min(rates), 1e6 / median])
    return Verifications(
        pieces=count,
        size=aggregate.size,
        payload=sum(sizes),
        build_s=build_s,
        hashes=statistics.mean(hashes),
        proof_chars=statistics.mean(len(json.dumps(p)) for p in as_json),
        rows=rows,
    )


# --- part 2: building against CommP ---------------------------------------------------------


def payload_folder(total: int, count: int, seed: int) -> tuple[Path, list[int]]:
    """`count` files of random bytes, `total` bytes in all, in the bench cache dir, written
    once; their sizes are drawn log-uniformly over a 16x range."""
    rng = random.Random(seed)
    weights = [math.exp(rng.uniform(0, math.log(16))) for _ in range(count)]
    sizes = [max(1, int(total * w / sum(weights))) for w in weights]
    sizes[-1] += total - sum(sizes)
    folder = CACHE_DIR / f"aggregate-{total >> 20}MiB-{count}x-seed{seed}"
    have = _piece_files(str(folder)) if folder.exists() else []
    if [p.stat().st_size for p in have] == sizes:
        return folder, sizes
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    log(f"writing {total >> 20} MiB of random bytes in {count} files to {folder}")
    partial = folder.with_name(folder.name + ".partial")
    partial.mkdir(exist_ok=True)
    for old in partial.iterdir():
        old.unlink()
    for number, size in enumerate(sizes):
        with (partial / f"piece-{number:04d}.bin").open("wb") as out:
            left = size
            while left:
                block = os.urandom(min(left, MIB))
                out.write(block)
                left -= len(block)
    if folder.exists():
        for old in folder.iterdir():
            old.unlink()
        folder.rmdir()
    partial.replace(folder)
    return folder, sizes


def aggregate_size(payloads: list[int]) -> int:
    """The smallest aggregate the pieces (largest first) and the index fit in. Placement
    depends on sizes and order only, so made-up CIDs do."""
    from executor.aggregate import MIN_AGGREGATE_SIZE, build_aggregate
    from executor.commp import minimal_piece_size, piece_cid_from_root

    padded = sorted((minimal_piece_size(n) for n in payloads), reverse=True)
    pieces = [(piece_cid_from_root(bytes(32)), size) for size in padded]
    size = max(MIN_AGGREGATE_SIZE, 1 << (sum(padded) - 1).bit_length())
    while True:
        try:
            build_aggregate(pieces, size)
        except ValueError:
            size <<= 1
            continue
        return size


_COMMANDS = (
    ("commp", "commp (one stream)"),
    ("build", "build aggregate"),
    ("two-pass", "two passes (before)"),
)


def _args(key: str, folder: Path, size: int, out: str) -> list[str]:
    if key == "commp":
        return [PYTHON, "-c", _CHILD, "commp", str(folder)]
    mode = "pack" if key == "build" else "two-pass"
    return [PYTHON, "-c", _CHILD, "build", str(folder), str(size), out, mode]


@dataclass
class Built:
    payload: int
    aggregate_cid: str
    aggregate_size: int
    written: int
    ratio: float  # median wall of the build child over the floor's
    phases: dict[str, dict[str, float]]  # child -> phase -> median seconds


def throughput(folder: Path, size: int, out: str, runs: int) -> tuple[list[list[object]], Built]:
    payload = sum(p.stat().st_size for p in _piece_files(str(folder)))
    for path in _piece_files(str(folder)):  # into the page cache before the first timed read
        with path.open("rb") as warm:
            while warm.read(16 * MIB):
                pass
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    measured: dict[str, list[Measured]] = {key: [] for key, _ in _COMMANDS}
    answers: dict[str, list[dict]] = {key: [] for key, _ in _COMMANDS}
    for round_number in range(runs):
        for key, _ in _COMMANDS:
            done = run_measured(_args(key, folder, size, out), env)
            measured[key].append(done)
            answers[key].append(json.loads(done.stdout))
        log(
            f"round {round_number + 1} of {runs}: "
            + ", ".join(f"{key} {measured[key][-1].wall_s:.2f} s" for key, _ in _COMMANDS)
        )
    built = {(a["cid"], a["size"], a["written"]) for k in ("build", "two-pass") for a in answers[k]}
    floors = {a["cid"] for a in answers["commp"]}
    if len(built) != 1 or len(floors) != 1:
        raise RuntimeError(f"the same files gave different answers: {built} {floors}")

    def median_wall(key: str) -> float:
        return statistics.median(m.wall_s for m in measured[key])

    def median_of(key: str, field: str) -> float:
        return statistics.median(a[field] for a in answers[key])

    def cpu(key: str) -> float:
        return statistics.median(m.user_s + m.sys_s for m in measured[key])

    floor_min = min(m.wall_s for m in measured["commp"])
    rows: list[list[object]] = []
    for key, name in _COMMANDS:
        fastest = min(m.wall_s for m in measured[key])
        rows.append(
            [
                name,
                fastest,
                median_wall(key),
                median_of(key, "loop_s"),
                payload / MIB / median_wall(key),
                cpu(key),
                f"{median_wall(key) / median_wall('commp'):.2f}x",
                f"{fastest / floor_min:.2f}x",
                f"{median_of(key, 'loop_s') / median_of('commp', 'loop_s'):.2f}x",
                f"{cpu(key) / cpu('commp'):.2f}x",
                max(m.max_rss_mib for m in measured[key]),
            ]
        )
    phases = {
        key: {
            field: median_of(key, field)
            for field in ("import_s", "commp_s", "build_s", "write_s", "proofs_s")
        }
        for key in ("build", "two-pass")
    }
    ((cid, built_size, written),) = built
    facts = Built(
        payload=payload,
        aggregate_cid=cid,
        aggregate_size=built_size,
        written=written,
        ratio=median_wall("build") / median_wall("commp"),
        phases=phases,
    )
    return rows, facts


def profile_build(folder: Path, size: int, out: str, limit: int = 14) -> str:
    """One build child under cProfile (not timed): the top functions by own time."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory(prefix="filplus-bench-prof-") as tmp:
        stats_file = Path(tmp) / "build.prof"
        run_measured([*_args("build", folder, size, out), str(stats_file)], env)
        text = io.StringIO()
        stats = pstats.Stats(str(stats_file), stream=text)
        stats.sort_stats("tottime").print_stats(limit)
    lines = [line for line in text.getvalue().splitlines() if line.strip()]
    keep = [line for line in lines if "function calls" in line or line.lstrip()[:1].isdigit()]
    header = "   ncalls  tottime  percall  cumtime  percall filename:lineno(function)"
    return "\n".join([keep[0], header, *keep[1:]] if keep else lines)


# --- main -----------------------------------------------------------------------------------


def _machine() -> str:
    """_common.machine_summary without the PostgreSQL version (no database here)."""
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return (
        f"{time.strftime('%Y-%m-%d %H:%M %Z')}; code {code_version()}; "
        f"{os.cpu_count()} cores ({cpu}); Python {platform.python_version()}; "
        f"{platform.system()} {platform.release()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=3, help="rounds of each measurement")
    parser.add_argument("--data-mib", type=int, help="sub-piece payload in all (default 256)")
    parser.add_argument("--quick", action="store_true", help="--data-mib 32")
    parser.add_argument("--pieces", type=int, default=64, help="sub-pieces built into one")
    parser.add_argument("--proof-pieces", type=int, default=256, help="proofs verified")
    parser.add_argument("--aggregate-gib", type=int, default=32, help="of the proofs' aggregate")
    parser.add_argument("--out", default=os.devnull, help="where the aggregate is written")
    parser.add_argument("--profile", action="store_true", help="profile one build child")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if args.data_mib is None:
        args.data_mib = 32 if args.quick else 256
    if min(args.runs, args.data_mib, args.pieces, args.proof_pieces, args.aggregate_gib) < 1:
        parser.error("sizes, counts and --runs must be positive")

    header = f"# FRC-0058 aggregates ({_machine()}; load {load_average()} at start)"
    proof_runs = max(args.runs, MIN_PROOF_ROUNDS)
    log(f"verifying {args.proof_pieces} proofs, {proof_runs} rounds")
    proofs = verifications(args.proof_pieces, args.aggregate_gib * GIB, proof_runs, args.seed)

    folder, payloads = payload_folder(args.data_mib * MIB, args.pieces, args.seed)
    size = aggregate_size(payloads)
    log(f"building {folder} into an aggregate of {size >> 20} MiB, {args.runs} rounds")
    build_rows, facts = throughput(folder, size, args.out, args.runs)
    profile = profile_build(folder, size, args.out) if args.profile else ""

    print(f"{header}; load {load_average()} at the end")
    print()
    print(
        f"1. verify_proof on {proofs.pieces:,} sub-pieces' proofs (1-64 MiB each, "
        f"{proofs.payload / GIB:.1f} GiB in all) in a {proofs.size >> 30} GiB aggregate (built "
        f"from CIDs in {proofs.build_s * 1000:.1f} ms), in this process; each round verifies "
        "every proof `passes` times"
    )
    print(
        table(
            [
                "what",
                "proofs",
                "passes",
                "rounds",
                "median verif/s",
                "best",
                "worst",
                "us/verif",
            ],
            proofs.rows,
        )
    )
    print(
        f"a proof: {proofs.hashes:.1f} SHA-256 on average (both paths, the entry's checksum "
        f"and leaf pair), {proofs.proof_chars:,.0f} characters of JSON"
    )
    print()
    print(
        f"2. Building an aggregate of {args.pieces} sub-pieces, {facts.payload / MIB:,.0f} "
        f"MiB of random payload (page cache warm), against CommP of the same bytes; "
        f"{args.runs} rounds taking turns; goal: build within {BUILD_GOAL}x commp"
    )
    print(
        table(
            [
                "what",
                "min s",
                "median s",
                "loop s",
                "MiB/s",
                "cpu s",
                "ratio",
                "min ratio",
                "loop ratio",
                "cpu ratio",
                "peak RSS MiB",
            ],
            build_rows,
        )
    )
    print(
        "ratio: median wall over commp's; min ratio: the fastest runs'; loop ratio: the "
        "children's own time, start-up left out; cpu ratio: median user + sys over commp's"
    )
    for key, name in (("build", "build aggregate"), ("two-pass", "two passes (before)")):
        p = facts.phases[key]
        print(
            f"{name} (median s): start-up {p['import_s']:.2f}, commp to place "
            f"{p['commp_s']:.2f}, build_aggregate {p['build_s'] * 1000:.1f} ms, "
            f"write (hashing too) {p['write_s']:.2f}, proofs {p['proofs_s'] * 1000:.1f} ms"
        )
    print(
        f"aggregate {facts.aggregate_cid}: {facts.aggregate_size >> 20} MiB padded, "
        f"{facts.written / MIB:,.1f} MiB written to {args.out}"
    )
    print(
        f"goal: build within {BUILD_GOAL}x commp: {facts.ratio:.2f}x, "
        f"{'met' if facts.ratio <= BUILD_GOAL else 'not met'}"
    )
    if profile:
        print()
        print("build aggregate under cProfile (one run, not timed), top functions by own time:")
        print(profile)


if __name__ == "__main__":
    main()
