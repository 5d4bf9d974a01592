"""Incremental scan throughput: one `manage.py scan_chain --once` pass catching up on
100,000 new deal ids and 10,000 verified-registry claim events served by the fake Lotus
node (tests/fake_lotus.py, real HTTP on 127.0.0.1, in this process's threads).

    .venv/bin/python -m benchmarks.bench_incremental [--backends sqlite,postgres]
        [--deal-batches 100,500,1000] [--quick] [--profile]
        [--steady 5] [--against LABEL=REV]... [--reread-dump DEALS]

Per backend and SCANNER_DEAL_BATCH: a fresh database, migrate, a one-deal dump ending at
deal id 0 (so the market scan starts at deal 1), then one timed pass in a child process.
The floor is the same JSON-RPC traffic from a bare httpx loop (benchmarks/_rpc_floor.py)
with no database.

Steady state (`--steady N`, on the first backend, batch 500): after that catch-up pass,
N passes one epoch apart, each epoch carrying the same market activity (STEADY_ACTIVITY),
with the default SCANNER_RECHECK_PER_PASS; the JSON-RPC calls each pass makes, for this
checkout and for each `--against LABEL=REV` (a git worktree of REV, on a chain built the
same way and a database of its own).

`--reread-dump DEALS`: the cached synthetic dump of that many deals, imported, with every
deal in it also on the fake chain; then passes until no dump row waits for its re-read
from state. Prints figures, asserts nothing. Progress on stderr, tables on stdout.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import resource
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks._common import (
    BACKENDS,
    PYTHON,
    ROOT,
    Measured,
    against,
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
    remove_worktree,
    run_measured,
    table,
)
from benchmarks._synthetic import generate_dump, market_deal, piece_cid
from tests.chain_data import encode_claim_event, make_deal, synthetic_message_cid
from tests.chain_scanner.dumps import write_dump
from tests.fake_lotus import FakeChain, FakeLotusServer

FIRST_EVENT = 4_600_000
FINALITY = 900
EVENT_RANGE = 2880  # the scanner's default, Lotus' MaxFilterHeightRange
MAX_DEALS_PER_PASS = 200_000
DEFAULT_RECHECK = 20_000  # SCANNER_RECHECK_PER_PASS's default
# What one epoch brings in the steady passes: deals published (verified), pending deals
# activated, active deals slashed, active deals completed. Illustrative, not mainnet's rates.
STEADY_ACTIVITY = {"published": 20, "activated": 20, "terminated": 1, "completed": 5}


class TimedServer(FakeLotusServer):
    """FakeLotusServer that also notes when each method was first and last called, to
    split a pass into its steps."""

    def __init__(self, chain: FakeChain) -> None:
        super().__init__(chain)
        self.first: dict[str, float] = {}
        self.last: dict[str, float] = {}

    def _count(self, method: str | None = None) -> None:
        super()._count(method)
        if method is not None:
            now = time.perf_counter()
            name = method.removeprefix("Filecoin.")
            self.first.setdefault(name, now)
            self.last[name] = now

    def reset_stats(self) -> None:
        super().reset_stats()
        self.first.clear()
        self.last.clear()


@dataclass
class Workload:
    deals: int
    events: int
    epochs: int
    first_id: int = 1  # the first new deal id: 1 after the tiny dump
    verified: int = 0
    activated: int = 0
    kinds: dict[str, int] = field(default_factory=dict)

    @property
    def last_event(self) -> int:
        return FIRST_EVENT + self.epochs - 1

    @property
    def head(self) -> int:
        # Everything final: the finalized tipset (head - 900) is above the last event.
        return self.last_event + FINALITY + 10


def build_chain(work: Workload) -> FakeChain:
    rng = random.Random("incremental")
    chain = FakeChain(head_height=work.head, next_deal_id=work.first_id)
    finalized = work.head - FINALITY
    pieces = max(1, work.deals // 3)
    log(f"building the fake chain: {work.deals:,} deals, {work.events:,} claim events")
    for deal_id in range(work.first_id, work.first_id + work.deals):
        verified = rng.random() < 0.70
        activated = rng.random() < 0.60
        # Pending deals start in the future (an event will say when they activate).
        start = (
            finalized - rng.randint(0, 20_000)
            if activated
            else finalized + rng.randint(100, 20_000)
        )
        value = market_deal(
            rng,
            deal_id,
            verified=verified,
            piece=rng.randrange(pieces),
            activated=activated,
            start_epoch=start,
        )
        chain.add_deal(deal_id, value, height=1000)
        work.verified += verified
        work.activated += activated
    claims: list[tuple[int, int, int, int]] = []  # (claim id, client, provider, piece)
    for n in range(work.events):
        height = FIRST_EVENT + n * work.epochs // work.events
        pick = rng.random()
        if claims and pick < 0.04:
            kind = "claim-removed"
            claim_id, client, provider, piece = claims.pop(rng.randrange(len(claims)))
        elif claims and pick < 0.12:
            kind = "claim-updated"
            claim_id, client, provider, piece = claims[rng.randrange(len(claims))]
        else:
            kind = "claim"
            claim_id = 50_000_000 + n
            client = 1_000_000 + rng.randrange(1000)
            provider = 10_000 + rng.randrange(300)
            piece = rng.randrange(pieces)
            claims.append((claim_id, client, provider, piece))
        work.kinds[kind] = work.kinds.get(kind, 0) + 1
        chain.add_event(
            encode_claim_event(
                kind,
                claim_id=claim_id,
                client=client,
                provider=provider,
                piece_cid=piece_cid(piece),
                piece_size=34359738368,
                term_min=518_400,
                term_max=1_555_200 + (rng.randrange(1000) if kind == "claim-updated" else 0),
                term_start=height,
                sector=rng.randint(1, 120_000),
                height=height,
                msg_cid=synthetic_message_cid(n),
                tipset_key=None,
            )
        )
    return chain


@dataclass
class PassRun:
    backend: str
    batch: int
    measured: Measured
    report: dict[str, str]
    http_requests: int
    calls: dict[str, int]
    phases: dict[str, float]
    server_cpu_s: float

    @property
    def items(self) -> int:
        return self.fetched + int(self.report["claim_events"]) + int(self.report["rechecked"])

    @property
    def fetched(self) -> int:
        """New deal ids read (verified, unverified or not found)."""
        keys = ("deals_stored", "unverified_skipped", "missing")
        return sum(int(self.report.get(k, 0)) for k in keys)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def scanner_env(url: str, lotus: str, batch: int, recheck: int) -> dict[str, str]:
    return django_env(
        url,
        LOTUS_RPC_URL=lotus,
        SCANNER_START_EPOCH=str(FIRST_EVENT - 1),
        SCANNER_EVENT_RANGE=str(EVENT_RANGE),
        SCANNER_DEAL_BATCH=str(batch),
        SCANNER_MAX_DEALS_PER_PASS=str(MAX_DEALS_PER_PASS),
        SCANNER_RECHECK_PER_PASS=str(recheck),
    )


def prepare(env: dict[str, str], dump: Path) -> None:
    manage(env, "migrate", "-v0")
    manage(env, "scan_chain", "--import-dump", str(dump), "--no-progress")


def run_pass(
    server: TimedServer, backend: str, batch: int, recheck: int, dump: Path, work: Workload
) -> PassRun:
    with fresh_database(backend) as url:
        env = scanner_env(url, server.url, batch, recheck)
        log(f"{backend}, batch {batch}: migrate + import {dump.name}")
        prepare(env, dump)
        server.reset_stats()
        log(f"{backend}, batch {batch}: scan_chain --once, load {load_average()}")
        cpu = _cpu()
        start = time.perf_counter()
        measured = manage(env, "scan_chain", "--once", "--no-progress")
        server_cpu = _cpu() - cpu
    line = next((x for x in measured.stdout.splitlines() if x.startswith("scan:")), "<none>")
    report = dict(re.findall(r"(\w+)=(\S+)", line))
    if report.get("next_deal_id") != str(work.first_id + work.deals) or report.get(
        "claim_events"
    ) != str(work.events):
        raise RuntimeError(f"unexpected pass summary: {line}\n{measured.stderr[-2000:]}")
    end = start + measured.wall_s
    first_rpc = min(server.first.values())
    deals_from = server.first.get("StateReadState", end)
    phases = {
        "start-up": first_rpc - start,
        "claims": deals_from - first_rpc,
        "deals": end - deals_from,
    }
    run = PassRun(
        backend,
        batch,
        measured,
        report,
        server.http_requests,
        dict(server.requests),
        phases,
        server_cpu,
    )
    log(
        f"  {measured.wall_s:.1f} s ({', '.join(f'{k} {v:.1f} s' for k, v in phases.items())}), "
        f"{run.items / measured.wall_s:,.0f} items/s, {server.http_requests} HTTP requests, "
        f"peak RSS {measured.max_rss_mib:,.0f} MiB — {line}"
    )
    return run


def run_floor(
    server: TimedServer, batch: int, first_deal: int
) -> tuple[dict[str, Any], Measured, dict[str, int]]:
    server.reset_stats()
    log(f"floor, batch {batch}: bare httpx loop, no database")
    measured = run_measured(
        [
            PYTHON,
            "-m",
            "benchmarks._rpc_floor",
            server.url,
            f"--start-epoch={FIRST_EVENT - 1}",
            f"--event-range={EVENT_RANGE}",
            f"--batch={batch}",
            f"--first-deal={first_deal}",
            f"--max-deals={MAX_DEALS_PER_PASS}",
        ],
        django_env("sqlite://"),
    )
    result = json.loads(measured.stdout)
    log(
        f"  {result['seconds']:.1f} s (claims {result['claims_seconds']:.1f} s, deals "
        f"{result['deals_seconds']:.1f} s), {result['http_requests']} HTTP requests"
    )
    return result, measured, dict(server.requests)


# --- steady state: the passes after catching up ----------------------------------------------


@dataclass
class Code:
    """The scanner code a pass runs: this checkout, or a git worktree of another revision."""

    label: str
    root: Path = ROOT

    def manage(self, env: dict[str, str], *args: str) -> Measured:
        # Run from the checkout: started elsewhere, manage.py imported the modules of the
        # working directory's checkout instead (seen here).
        return run_measured(
            [PYTHON, "manage.py", *args], {**env, "PYTHONPATH": str(self.root)}, cwd=self.root
        )


def checkout(spec: str) -> Code:
    return Code(*against(spec))


def epoch_of_activity(chain: FakeChain, rng: random.Random, height: int) -> Counter[str]:
    """STEADY_ACTIVITY at `height`, on deals picked by `rng` from the chain's own state."""
    done: Counter[str] = Counter()
    with chain._lock:
        deals = list(chain.deals.items())
        changed = set(chain._deal_changes)
    verified = [(i, d) for i, d in deals if d["Proposal"]["VerifiedDeal"] and i not in changed]
    pending = [i for i, d in verified if d["State"]["SectorStartEpoch"] <= 0]
    active = [i for i, d in verified if d["State"]["SectorStartEpoch"] > 0]
    for deal_id in rng.sample(pending, min(len(pending), STEADY_ACTIVITY["activated"])):
        chain.activate_deal(deal_id, height=height, sector_number=rng.randint(1, 120_000))
        done["activated"] += 1
    ending = rng.sample(
        active, min(len(active), STEADY_ACTIVITY["terminated"] + STEADY_ACTIVITY["completed"])
    )
    for n, deal_id in enumerate(ending):
        if n < STEADY_ACTIVITY["terminated"]:
            chain.terminate_deal(deal_id, height=height)
            done["terminated"] += 1
        else:
            chain.complete_deal(deal_id, height=height)
            done["completed"] += 1
    for _ in range(STEADY_ACTIVITY["published"]):
        deal_id = chain.next_deal_id
        value = market_deal(
            rng, deal_id, verified=True, piece=deal_id, activated=False, start_epoch=height + 5000
        )
        chain.add_deal(deal_id, value, height=height + 1)  # its event at `height`
        done["published"] += 1
    return done


@dataclass
class SteadyRun:
    label: str
    catch_up: dict[str, int]
    catch_up_s: float
    passes: list[dict[str, int]]
    pass_s: list[float]
    summaries: list[str]


def steady_run(code: Code, backend: str, work: Workload, passes: int, dump: Path) -> SteadyRun:
    chain = build_chain(work)
    rng = random.Random("steady")
    with TimedServer(chain) as server, fresh_database(backend) as url:
        env = scanner_env(url, server.url, 500, DEFAULT_RECHECK)
        log(f"steady, {code.label}: migrate + import {dump.name}, then the catch-up pass")
        code.manage(env, "migrate", "-v0")
        code.manage(env, "scan_chain", "--import-dump", str(dump), "--no-progress")
        server.reset_stats()
        first = code.manage(env, "scan_chain", "--once", "--no-progress")
        catch_up = dict(server.requests) | {"HTTP requests": server.http_requests}
        run = SteadyRun(code.label, catch_up, first.wall_s, [], [], [])
        for n in range(passes):
            # The finalized tipset moves one epoch; the epoch it makes final carries the
            # activity, so this pass reads it.
            height = chain.head_height - FINALITY
            epoch_of_activity(chain, rng, height)
            chain.advance(1)
            server.reset_stats()
            measured = code.manage(env, "scan_chain", "--once", "--no-progress")
            run.passes.append(dict(server.requests) | {"HTTP requests": server.http_requests})
            run.pass_s.append(measured.wall_s)
            line = next((x for x in measured.stdout.splitlines() if x.startswith("scan:")), "")
            run.summaries.append(line)
            log(f"  pass {n + 1}: {measured.wall_s:.1f} s, {server.http_requests} HTTP, {line}")
    return run


def print_steady(runs: list[SteadyRun], work: Workload, backend: str) -> None:
    print()
    print(
        f"Steady state on {backend}, SCANNER_DEAL_BATCH=500, SCANNER_RECHECK_PER_PASS="
        f"{DEFAULT_RECHECK:,}: after the catch-up pass over {work.deals:,} deal ids, "
        f"{len(runs[0].passes)} passes one epoch apart, each epoch bringing "
        + ", ".join(f"{v} {k}" for k, v in STEADY_ACTIVITY.items())
        + "; JSON-RPC calls per pass (mean over the passes), by method"
    )
    methods = sorted({m for r in runs for p in [r.catch_up, *r.passes] for m in p})
    rows = []
    for method in methods:
        row: list[object] = [method]
        for r in runs:
            row.append(r.catch_up.get(method, 0))
            row.append(sum(p.get(method, 0) for p in r.passes) / len(r.passes))
        rows.append(row)
    time_row: list[object] = ["wall s"]
    for r in runs:
        time_row += [r.catch_up_s, sum(r.pass_s) / len(r.pass_s)]
    rows.append(time_row)
    headers = ["method"]
    for r in runs:
        headers += [f"{r.label} catch-up", f"{r.label} a pass"]
    print(table(headers, rows))
    base = runs[0]
    for other in runs[1:]:
        mine = sum(p.get("StateMarketStorageDeal", 0) for p in base.passes) / len(base.passes)
        theirs = sum(p.get("StateMarketStorageDeal", 0) for p in other.passes) / len(other.passes)
        print(
            f"StateMarketStorageDeal calls a steady pass: {base.label} {mine:,.0f}, "
            f"{other.label} {theirs:,.0f} ({theirs / max(mine, 1):,.0f}x)"
        )
    for r in runs:
        print(f"{r.label}, last pass: {r.summaries[-1]}")


# --- re-reading a dump --------------------------------------------------------------------------


def reread_dump(size: int, backend: str) -> None:
    """Import the cached synthetic dump of `size` deals, with the same deals on the fake chain,
    and time the passes that re-read its rows from state."""
    import ijson

    dump = generate_dump(size)
    top = size * 13 // 10 + 1
    chain = FakeChain(head_height=FIRST_EVENT + FINALITY + 10, next_deal_id=top)
    log(f"reread: loading {size:,} deals into the fake chain")
    started = time.perf_counter()
    with dump.open("rb") as stream:
        for key, value in ijson.kvitems(stream, "", use_float=True):
            chain.add_deal(int(key), value, height=0, event=False)
    log(f"  loaded in {time.perf_counter() - started:.0f} s")
    with TimedServer(chain) as server, fresh_database(backend) as url:
        env = scanner_env(url, server.url, 500, DEFAULT_RECHECK)
        env["SCANNER_START_EPOCH"] = str(chain.head_height - FINALITY - 10)
        manage(env, "migrate", "-v0")
        imported = manage(env, "scan_chain", "--import-dump", str(dump), "--no-progress")
        log(f"  imported in {imported.wall_s:.0f} s")
        rows: list[tuple[object, ...]] = []
        total_s = 0.0
        rechecked = 0
        n = 0
        while True:
            n += 1
            chain.advance(1)
            server.reset_stats()
            measured = manage(env, "scan_chain", "--once", "--no-progress")
            line = next((x for x in measured.stdout.splitlines() if x.startswith("scan:")), "")
            report = dict(re.findall(r"(\w+)=(\S+)", line))
            done = int(report.get("rechecked", 0))
            total_s += measured.wall_s
            rechecked += done
            rows.append(
                (
                    n,
                    done,
                    int(report.get("changed", 0)),
                    server.requests.get("StateMarketStorageDeal", 0),
                    server.http_requests,
                    measured.wall_s,
                )
            )
            log(f"  pass {n}: re-read {done:,} in {measured.wall_s:.1f} s")
            if done == 0:
                break
    print()
    print(
        f"Re-reading a {size:,}-deal synthetic dump from state ({backend}, "
        f"SCANNER_DEAL_BATCH=500, SCANNER_RECHECK_PER_PASS={DEFAULT_RECHECK:,}); every deal "
        "in the dump is on the fake chain, unchanged"
    )
    print(
        table(
            ["pass", "re-read", "changed", "StateMarketStorageDeal", "HTTP reqs", "wall s"],
            rows,
        )
    )
    busy = sum(r[5] for r in rows[:-1])  # type: ignore[misc]
    print(
        f"{rechecked:,} rows re-read in {len(rows) - 1} passes, {busy:,.0f} s of pass time "
        f"({rechecked / max(busy, 1e-9):,.0f} deals/s); at one pass every 30 s the re-read "
        f"ends after {max(busy, 30 * (len(rows) - 1)) / 60:,.0f} min"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="sqlite,postgres", help="sqlite,postgres")
    parser.add_argument(
        "--deal-batches", default="100,500,1000", help="SCANNER_DEAL_BATCH values to try"
    )
    parser.add_argument("--deals", type=int, default=100_000, help="new deal ids on the chain")
    parser.add_argument("--events", type=int, default=10_000, help="claim events on the chain")
    parser.add_argument("--epochs", type=int, default=3_000, help="epochs the events span")
    parser.add_argument(
        "--recheck",
        type=int,
        default=0,
        help="SCANNER_RECHECK_PER_PASS (default 0: measure catching up, not re-checking)",
    )
    parser.add_argument(
        "--base-dump",
        type=int,
        default=0,
        metavar="DEALS",
        help="start from the cached synthetic dump of this many deals (bench_dump_import's) "
        "instead of a one-deal dump, so the pass runs on top of a bootstrapped table",
    )
    parser.add_argument("--quick", action="store_true", help="SCANNER_DEAL_BATCH=500 only")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="then cProfile one pass per backend at batch 500 (top 10 by tottime)",
    )
    parser.add_argument(
        "--steady", type=int, default=5, metavar="N", help="steady-state passes (0: none)"
    )
    parser.add_argument(
        "--against",
        action="append",
        default=[],
        metavar="LABEL=REV",
        help="also measure the steady passes with another revision's code",
    )
    parser.add_argument(
        "--reread-dump",
        type=int,
        default=0,
        metavar="DEALS",
        help="only measure re-reading the synthetic dump of this many deals from state",
    )
    args = parser.parse_args(argv)
    if args.reread_dump:
        reread_dump(args.reread_dump, parse_list(args.backends, BACKENDS)[-1])
        return
    backends = parse_list(args.backends, BACKENDS)
    batches = [500] if args.quick else parse_sizes(args.deal_batches)
    work = Workload(deals=args.deals, events=args.events, epochs=args.epochs)
    if args.base_dump:
        # The synthetic dump's ids are drawn from 1 … 1.3 × its size.
        work.first_id = args.base_dump * 13 // 10 + 1
    machine = machine_summary()
    code = code_version()
    log(machine)

    started = time.perf_counter()
    chain = build_chain(work)
    log(f"chain built in {time.perf_counter() - started:.1f} s; head {work.head}")
    runs: list[PassRun] = []
    floors: dict[int, tuple[dict[str, Any], Measured, dict[str, int]]] = {}
    profiles: list[str] = []
    with tempfile.TemporaryDirectory(prefix="filplus-bench-") as tmp:
        if args.base_dump:
            dump = generate_dump(args.base_dump)
        else:
            tiny = [(0, make_deal(0, start_epoch=1, end_epoch=2))]
            dump = write_dump(Path(tmp) / "tiny.json", tiny)
        with TimedServer(chain) as server:
            for batch in batches:
                floors[batch] = run_floor(server, batch, work.first_id)
                runs.extend(
                    run_pass(server, backend, batch, args.recheck, dump, work)
                    for backend in backends
                )
            if args.profile:
                for backend in backends:
                    with fresh_database(backend) as url:
                        env = scanner_env(url, server.url, 500, args.recheck)
                        prepare(env, dump)
                        log(f"{backend}: cProfile of one pass, batch 500")
                        profiles.append(
                            profile_top(
                                ["scan_chain", "--once", "--no-progress"],
                                env,
                                title=f"cProfile, {backend}, one pass, batch 500, "
                                "top 10 by tottime:",
                            )
                        )

    print(f"# Incremental pass: manage.py scan_chain --once ({machine})")
    if code_version() != code:
        print(f"# NOTE: the code changed during the run, from {code} to {code_version()}")
    print(
        f"# fake Lotus: {work.deals:,} new deal ids ({work.verified:,} verified, "
        f"{work.activated:,} activated), {work.events:,} claim events "
        f"({', '.join(f'{v:,} {k}' for k, v in sorted(work.kinds.items()))}) over "
        f"{work.epochs:,} epochs from {FIRST_EVENT}; SCANNER_EVENT_RANGE={EVENT_RANGE}, "
        f"SCANNER_MAX_DEALS_PER_PASS={MAX_DEALS_PER_PASS}, SCANNER_RECHECK_PER_PASS={args.recheck}"
    )
    base = (
        f"the {args.base_dump:,}-deal synthetic dump (new ids from {work.first_id:,})"
        if args.base_dump
        else "a one-deal dump ending at deal id 0"
    )
    print(f"# each pass on a fresh database after importing {base}")
    print(
        "# items = deal ids fetched + claim events + deals re-checked; items/s over wall time,"
        " which includes start-up; pass/floor = (claims s + deals s) / the floor's loop time"
    )
    print()
    rows = []
    for run in runs:
        floor = floors[run.batch][0]["seconds"]
        rows.append(
            (
                run.backend,
                run.batch,
                run.measured.wall_s,
                run.phases["start-up"],
                run.phases["claims"],
                run.phases["deals"],
                run.items,
                run.items / run.measured.wall_s,
                run.http_requests,
                sum(run.calls.values()),
                run.measured.max_rss_mib,
                run.measured.user_s + run.measured.sys_s,
                run.server_cpu_s,
                f"{(run.phases['claims'] + run.phases['deals']) / floor:.1f}x",
            )
        )
    print(
        table(
            [
                "backend",
                "batch",
                "wall s",
                "start-up s",
                "claims s",
                "deals s",
                "items",
                "items/s",
                "HTTP reqs",
                "RPC calls",
                "peak RSS MiB",
                "scanner CPU s",
                "server CPU s",
                "pass/floor",
            ],
            rows,
        )
    )
    print()
    floor_rows = []
    for batch, (result, measured, _calls) in floors.items():
        items = result["deal_ids"] + result["events"]
        floor_rows.append(
            (
                batch,
                result["seconds"],
                result["claims_seconds"],
                result["deals_seconds"],
                items,
                items / result["seconds"],
                result["http_requests"],
                result["calls"],
                measured.max_rss_mib,
            )
        )
    print("Floor: the same JSON-RPC requests from a bare httpx loop, no database")
    print(
        table(
            [
                "batch",
                "loop s",
                "claims s",
                "deals s",
                "items",
                "items/s",
                "HTTP reqs",
                "RPC calls",
                "peak RSS MiB",
            ],
            floor_rows,
        )
    )
    print()
    methods = sorted({m for run in runs for m in run.calls})
    columns = [(run.backend, run.batch) for run in runs]
    by_run = {(run.backend, run.batch): run for run in runs}
    print("JSON-RPC calls per method (server counters), scanner passes and floor")
    print(
        table(
            ["method", *[f"{b} {n}" for b, n in columns], *[f"floor {n}" for n in floors]],
            [
                (
                    method,
                    *[by_run[c].calls.get(method, 0) for c in columns],
                    *[calls.get(method, 0) for _r, _m, calls in floors.values()],
                )
                for method in methods
            ],
        )
    )
    for text in profiles:
        print()
        print(text)
    if args.steady:
        codes = [Code("this checkout"), *[checkout(spec) for spec in args.against]]
        backend = backends[-1]
        with tempfile.TemporaryDirectory(prefix="filplus-bench-") as tmp:
            tiny = write_dump(
                Path(tmp) / "tiny.json", [(0, make_deal(0, start_epoch=1, end_epoch=2))]
            )
            try:
                steady = [steady_run(c, backend, work, args.steady, tiny) for c in codes]
            finally:
                for code in codes[1:]:
                    remove_worktree(code.root)
        print_steady(steady, work, backend)


if __name__ == "__main__":
    main()
