"""Eligibility API under load: gunicorn with production settings, PostgreSQL holding
1,000,000 blessed CIDs, wrk from a second process on 127.0.0.1 with 32 connections, half
the lookups hitting and half missing.

Compared in the same run: our DRF endpoints, the same lookups in bare Django views
(benchmarks/api/urls.py), and a psycopg loop doing the query directly (the floor).

    .venv/bin/python -m benchmarks.bench_api [--cids 1000000] [--duration 15] [--rounds 2]
                                             [--workers N] [--threads N] [--against LABEL=REV]

Floors in the same run, under the same gunicorn configuration: a constant-body WSGI app and
a WSGI app doing the look-up with psycopg alone (benchmarks/api/floor_wsgi.py).

Needs wrk (`apt-get install wrk`) and PostgreSQL on 127.0.0.1:5432 (user postgres).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg

from benchmarks._common import against as against_tree
from benchmarks._common import remove_worktree

ROOT = Path(__file__).resolve().parents[1]
PG = "postgres://postgres@127.0.0.1:5432"
EPOCH = 5_000_000
FLOORS = "benchmarks.api.floor_wsgi"


def cid(n: int, salt: bytes = b"hit") -> str:
    digest = hashlib.sha256(salt + n.to_bytes(8, "big")).digest()
    return "b" + base64.b32encode(b"\x01\x70\x12\x20" + digest).decode().lower().rstrip("=")


def log(*args: object) -> None:
    print(*args, file=sys.stderr, flush=True)


def env_for(database: str) -> dict[str, str]:
    return dict(
        os.environ,
        DATABASE_URL=f"{PG}/{database}",
        DJANGO_SETTINGS_MODULE="benchmarks.api.settings",
        SECRET_KEY="bench-" + "x" * 40,
        ALLOWED_HOSTS="127.0.0.1,localhost",
        DEBUG="0",
        API_RATE_LIMIT="0",
        PYTHONPATH=str(ROOT),
        PYTHONWARNINGS="ignore",
    )


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if result.returncode:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


def fill(database: str, count: int) -> None:
    """1,000,000 blessed CIDs through COPY, three quarters active."""
    started = time.perf_counter()
    with psycopg.connect(f"{PG}/{database}") as conn, conn.cursor() as cur:
        with cur.copy(
            "COPY chain_scanner_blessedcid (cid, active_until, pending_until, deal_count, "
            "claim_count) FROM STDIN"
        ) as copy:
            for n in range(count):
                active = EPOCH + 10**6 if n % 4 else EPOCH - 1
                copy.write_row((cid(n), active, None, 1, 0))
        cur.execute(
            "INSERT INTO chain_scanner_scannercheckpoint (name, processing_height, head_height,"
            " deals_fetched, unverified_skipped, deals_missing, claim_events, event_counts,"
            " bad_items, lease_owner, last_error, events_tipset_key)"
            " VALUES ('default', %s, %s, 0, 0, 0, 0, '{}', 0, '', '', '')",
            [EPOCH, EPOCH + 900],
        )
        cur.execute("ANALYZE chain_scanner_blessedcid")
    log(f"filled {count:,} blessed CIDs in {time.perf_counter() - started:.1f}s")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def lua_get(path: Path, key: str, prefix: str, hits: list[str], misses: list[str]) -> None:
    paths = [f"{prefix}{c}" for pair in zip(hits, misses, strict=True) for c in pair]
    path.write_text(
        f'wrk.headers["Authorization"] = "Bearer {key}"\n'
        "local paths = {" + ",".join(json.dumps(p) for p in paths) + "}\n"
        "local i = 0\n"
        "request = function()\n"
        "  i = i + 1\n"
        '  return wrk.format("GET", paths[(i % #paths) + 1])\n'
        "end\n"
    )


def lua_post(path: Path, key: str, url: str, bodies: list[str]) -> None:
    path.write_text(
        f'wrk.headers["Authorization"] = "Bearer {key}"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        "local bodies = {" + ",".join(json.dumps(b) for b in bodies) + "}\n"
        "local i = 0\n"
        "request = function()\n"
        "  i = i + 1\n"
        f'  return wrk.format("POST", {json.dumps(url)}, nil, bodies[(i % #bodies) + 1])\n'
        "end\n"
    )


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def wrk(
    base: str, script: Path, duration: int, connections: int = 32, port: int | None = None
) -> dict[str, Any]:
    """wrk's req/s, p50 and p99; with `port`, also how its connections were split between
    the gunicorn workers halfway through."""
    command = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script)]
    process = subprocess.Popen([*command, base], stdout=subprocess.PIPE, text=True)
    split: list[int] = []
    if port is not None:
        time.sleep(duration / 2)
        split = connection_split(port)
    out, _ = process.communicate()
    if process.returncode:
        raise SystemExit(f"wrk failed ({process.returncode}):\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    percentiles = {}
    for pct, value, unit in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M):
        percentiles[pct] = float(value) * _UNITS[unit]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise SystemExit(f"wrk saw {errors.group(1)} error responses:\n{out}")
    return {"rps": rps, "p50": percentiles["50"], "p99": percentiles["99"], "split": split}


def connection_split(port: int) -> list[int]:
    """Established connections to `port` per serving process, largest first (ss -p)."""
    out = subprocess.run(
        ["ss", "-Htnp", "state", "established", f"( sport = :{port} )"],
        capture_output=True,
        text=True,
    ).stdout
    counts: dict[str, int] = {}
    for pid in re.findall(r"pid=(\d+)", out):
        counts[pid] = counts.get(pid, 0) + 1
    return sorted(counts.values(), reverse=True)


def _query_loop(database: str, sql: str, params: list, duration: float) -> list[float]:
    """Latencies (ms) of `sql` run back to back from 2 threads, one per core."""
    latencies: list[float] = []
    lock = threading.Lock()
    stop = time.perf_counter() + duration

    def loop(offset: int) -> None:
        mine: list[float] = []
        with psycopg.connect(f"{PG}/{database}", prepare_threshold=0) as conn:
            i = offset
            while time.perf_counter() < stop:
                t = time.perf_counter()
                conn.execute(sql, params[i % len(params)]).fetchall()
                mine.append((time.perf_counter() - t) * 1000)
                i += 1
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=loop, args=(k * 7919,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies


def psycopg_floor(
    database: str, hits: list[str], misses: list[str], duration: float, batches: list[list[str]]
) -> dict[str, dict[str, float]]:
    """The query alone, from 2 threads (the cores) looping on their own connections."""
    results: dict[str, dict[str, float]] = {}
    sql_one = "SELECT cid, active_until, pending_until FROM chain_scanner_blessedcid WHERE cid = %s"
    sql_many = (
        "SELECT cid, active_until, pending_until FROM chain_scanner_blessedcid WHERE cid = ANY(%s)"
    )
    mixed = [c for pair in zip(hits, misses, strict=True) for c in pair]
    for name, sql, params in (
        ("single", sql_one, [(c,) for c in mixed]),
        ("batch", sql_many, [(b,) for b in batches]),
    ):
        latencies = _query_loop(database, sql, params, duration)
        q = statistics.quantiles(latencies, n=100)
        results[name] = {"rps": len(latencies) / duration, "p50": q[49], "p99": q[98]}
    return results


def _cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process so far, None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _workers(master: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True).stdout
    return [int(pid) for pid in out.split()]


def _backends(database: str) -> list[int]:
    with psycopg.connect(f"{PG}/postgres") as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s", [database]
        ).fetchall()
    return [pid for (pid,) in rows]


class Server:
    """`gunicorn APP` from the repository root, so with gunicorn.conf.py (the production
    configuration), plus the benchmark's -w/--threads when given."""

    def __init__(
        self, app: str, env: dict[str, str], args: argparse.Namespace, root: Path = ROOT
    ) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        extra = []
        if args.workers is not None:
            extra += ["-w", str(args.workers)]
        if args.threads is not None:
            extra += ["--threads", str(args.threads)]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", app, "-b", f"127.0.0.1:{self.port}", *extra]
            + ["--access-logfile", "/dev/null", "--log-level", "warning"],
            cwd=root,
            env=dict(env, PYTHONPATH=str(root)),
        )
        for _ in range(100):
            try:
                httpx.get(f"{self.base}/healthz", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def measure(server: Server, script: Path, duration: int, database: str | None) -> dict[str, Any]:
    """wrk after a 3 s warm-up, with the CPU seconds the gunicorn workers and the database
    backends burnt per request meanwhile, the load average before it and how wrk's
    connections were split between the workers."""
    wrk(server.base, script, 3)
    load = os.getloadavg()[0]
    pids = _workers(server.process.pid) + [server.process.pid]
    backends = set(_backends(database)) if database else set()
    before = {pid: _cpu_seconds(pid) or 0.0 for pid in pids + sorted(backends)}
    result = wrk(server.base, script, duration, port=server.port)
    if database:
        # Django reconnects every CONN_MAX_AGE (60 s): count backends born during the run
        # in full; a backend that ended during it is lost (so PG ms/req is a lower bound).
        backends |= set(_backends(database))
    after = {pid: _cpu_seconds(pid) for pid in pids + sorted(backends)}
    spent = {pid: cpu - before.get(pid, 0.0) for pid, cpu in after.items() if cpu is not None}
    requests = result["rps"] * duration
    result["worker_ms"] = 1000 * sum(spent.get(p, 0.0) for p in pids) / requests
    result["pg_ms"] = 1000 * sum(spent.get(p, 0.0) for p in backends) / requests
    result["load"] = load
    return result


def _gunicorn_defaults(env: dict[str, str]) -> tuple[int, int, str]:
    """workers, threads and worker class as gunicorn.conf.py sets them for this environment."""
    out = subprocess.run(
        [sys.executable, "-c", "import runpy; c = runpy.run_path('gunicorn.conf.py');"
         " print(c['workers'], c.get('threads', 1), c['worker_class'])"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    return int(out[0]), int(out[1]), out[2].rsplit(".", 1)[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cids", type=int, default=1_000_000)
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=2, help="measure everything N times")
    parser.add_argument("--workers", type=int, default=None, help="default: gunicorn.conf.py's")
    parser.add_argument("--threads", type=int, default=None, help="default: gunicorn.conf.py's")
    parser.add_argument(
        "--against",
        action="append",
        default=[],
        metavar="LABEL=REV",
        help="also measure the DRF endpoints of the code at git REV (a checkout of its own, same "
        "database and settings), e.g. 'no prepared cursors=bench/no-sql'; repeatable",
    )
    args = parser.parse_args()
    against = [against_tree(spec, max_label=26) for spec in args.against]  # the column
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install wrk")

    database = f"bench_api_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
    tmp = Path(tempfile.mkdtemp(prefix="bench-api-"))
    servers: list[Server] = []
    try:
        env = env_for(database)
        workers, threads, worker_class = _gunicorn_defaults(env)
        workers, threads = args.workers or workers, args.threads or threads
        manage(env, "migrate", "-v0")
        fill(database, args.cids)
        key = manage(env, "create_api_key", "--scope", "node", "--name", "bench").split()[-1]
        hits = [cid(n * 37 % args.cids) for n in range(5000)]
        misses = [cid(n, b"miss") for n in range(5000)]
        batches = [
            [
                c
                for pair in zip(
                    hits[i * 500 : (i + 1) * 500], misses[i * 500 : (i + 1) * 500], strict=True
                )
                for c in pair
            ]
            for i in range(10)
        ]
        scripts = {}
        for prefix in ("/api/v1/cids/", "/api/bare/cids/", "/floor/cids/"):
            scripts[prefix] = tmp / f"get-{prefix.strip('/').replace('/', '-')}.lua"
            lua_get(scripts[prefix], key, prefix, hits, misses)
        bodies = [json.dumps({"cids": b}) for b in batches]
        for url in ("/api/v1/eligibility", "/api/bare/eligibility"):
            scripts[url] = tmp / f"post-{url.strip('/').replace('/', '-')}.lua"
            lua_post(scripts[url], key, url, bodies)

        django = Server("dashboard.wsgi", env, args)
        servers.append(django)
        headers = {"Authorization": f"Bearer {key}"}
        sample = httpx.post(
            f"{django.base}/api/v1/eligibility",
            json={"cids": batches[0]},
            headers=headers,
            timeout=30,
        ).json()
        blessed = sum(r["blessed"] for r in sample["results"])
        log(f"sanity: a batch of 1000 answers {blessed} blessed (expected ~375)")
        assert len(sample["results"]) == 1000

        # Every round measures everything once, in the same order, so that each ratio
        # compares runs minutes apart at most on this shared machine.
        plan = [
            ("single GET", "DRF endpoint", None, "/api/v1/cids/"),
            ("single GET", "bare Django view", None, "/api/bare/cids/"),
            ("single GET", "gunicorn hello (floor)", f"{FLOORS}:hello", "/floor/cids/"),
            ("single GET", "gunicorn+psycopg (floor)", f"{FLOORS}:query", "/floor/cids/"),
            ("1000-CID batch", "DRF endpoint", None, "/api/v1/eligibility"),
            ("1000-CID batch", "bare Django view", None, "/api/bare/eligibility"),
        ]  # fmt: skip
        for label, _root in against:
            plan.append(("single GET", label, "dashboard.wsgi", "/api/v1/cids/"))
            plan.append(("1000-CID batch", label, "dashboard.wsgi", "/api/v1/eligibility"))
        roots = dict(against)
        rows: list[tuple[int, str, str, dict[str, float]]] = []
        for round_ in range(1, args.rounds + 1):
            for workload, label, app, script in plan:
                root = roots.get(label, ROOT)
                server = django if app is None else Server(app, env, args, root)
                log(f"round {round_}: {workload}, {label} for {args.duration}s")
                uses_db = app is None or not app.startswith(FLOORS) or app.endswith(":query")
                result = measure(
                    server, scripts[script], args.duration, database if uses_db else None
                )
                rows.append((round_, workload, label, result))
                if server is not django:
                    server.stop()
        django.stop()
        servers.clear()
        log("psycopg floor…")
        floor = psycopg_floor(database, hits, misses, args.duration, batches)

        print(
            f"\nbench_api: {args.cids:,} blessed CIDs in PostgreSQL, gunicorn "
            f"{workers} workers x {threads} threads ({worker_class}), wrk -t2 -c32 "
            f"-d{args.duration}s, "
            f"{os.cpu_count()} cores, half hits / half misses, {args.rounds} rounds"
        )
        print(
            "CPU ms/req: CPU time of the gunicorn processes (and of the PostgreSQL backends)"
            " during the run, per request served; load: 1-minute load average before it;"
            " split: wrk's 32 connections per gunicorn worker, halfway through"
        )
        print(
            f"{'round':>5} {'workload':16} {'server':26} {'req/s':>7} {'CIDs/s':>8} "
            f"{'p50 ms':>7} {'p99 ms':>8} {'CPU ms/req':>10} {'PG ms/req':>9} {'load':>5} "
            "split"
        )
        for round_, workload, label, r in rows:
            per = 1000 if "batch" in workload else 1
            print(
                f"{round_:>5} {workload:16} {label:26} {r['rps']:7.0f} {r['rps'] * per:8.0f} "
                f"{r['p50']:7.2f} {r['p99']:8.2f} {r['worker_ms']:10.3f} {r['pg_ms']:9.3f} "
                f"{r['load']:5.2f} {'/'.join(map(str, r['split']))}"
            )
        for workload in ("single GET", "1000-CID batch"):
            r = floor["single" if workload == "single GET" else "batch"]
            per = 1000 if "batch" in workload else 1
            print(
                f"{'-':>5} {workload:16} {'psycopg loop (floor)':26} {r['rps']:7.0f} "
                f"{r['rps'] * per:8.0f} {r['p50']:7.2f} {r['p99']:8.2f}"
            )
        print("\nmedians over the rounds, and ratios within each round")
        by = {(rd, w, label): r for rd, w, label, r in rows}
        for workload, label, _, _ in plan:
            runs = [by[(rd, workload, label)] for rd in range(1, args.rounds + 1)]
            per = 1000 if "batch" in workload else 1
            rps = statistics.median(r["rps"] for r in runs)
            print(
                f"{workload:16} {label:26} {rps:7.0f} req/s {rps * per:8.0f} CIDs/s  "
                f"p50 {statistics.median(r['p50'] for r in runs):6.2f} ms  "
                f"p99 {statistics.median(r['p99'] for r in runs):7.2f} ms"
            )
        compared = [
            ("single GET", "bare Django view"),
            ("single GET", "gunicorn hello (floor)"),
            ("single GET", "gunicorn+psycopg (floor)"),
            ("1000-CID batch", "bare Django view"),
        ]
        for label, _root in against:
            compared += [("single GET", label), ("1000-CID batch", label)]
        for workload, other in compared:
            ratios = [
                by[(rd, workload, other)]["rps"] / by[(rd, workload, "DRF endpoint")]["rps"]
                for rd in range(1, args.rounds + 1)
            ]
            cpu = [
                by[(rd, workload, "DRF endpoint")]["worker_ms"]
                / by[(rd, workload, other)]["worker_ms"]
                for rd in range(1, args.rounds + 1)
            ]
            print(
                f"{workload}: {other} / DRF endpoint throughput = "
                + ", ".join(f"{x:.2f}x" for x in ratios)
                + "; DRF endpoint / it, gunicorn CPU per request = "
                + ", ".join(f"{x:.2f}x" for x in cpu)
            )
    finally:
        for server in servers:
            server.process.kill()
        shutil.rmtree(tmp, ignore_errors=True)
        for _label, root in against:
            remove_worktree(root)
        with psycopg.connect(f"{PG}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


if __name__ == "__main__":
    main()
