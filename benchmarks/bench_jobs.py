"""Jobs through the whole pipeline: HTTP submit → Redis → celery worker → executor → result
recorded, for a trivial WASM module, against running the executor directly in this process;
then a re-execution of every one of those jobs (a moderator's request → the `reexecute`
queue → its own workers → compared), next to the jobs themselves.

    .venv/bin/python -m benchmarks.bench_jobs [--jobs 200] [--workers 2] [--backend postgres]

Production shape: PostgreSQL, Redis on 127.0.0.1:6379 (database 11, flushed), gunicorn
(gunicorn.conf.py) for the API, and --workers `celery worker` processes (solo pool, one job
at a time each) on the executor queue. Jobs are submitted by 8 client threads; throughput is
jobs recorded per second from the first submit to the last result; latency is per job, from
its submit to its result. The baseline is `executor.run.run_job` on the same module and the
same embedded store, in a loop in this process. Re-executions are measured the same way,
from the request to the outcome, on as many `reexecute` workers as there were executor
workers.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import httpx
import psycopg
import redis
import wasmtime

from benchmarks._common import (
    ROOT,
    django_env,
    fresh_database,
    load_average,
    log,
    machine_summary,
    manage,
    table,
)

REDIS_URL = "redis://127.0.0.1:6379/11"
TRIVIAL = bytes(wasmtime.wat2wasm('(module (memory (export "memory") 1) (func (export "_start")))'))


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def direct_baseline(jobs: int, data_dir: Path) -> tuple[float, float]:
    """(jobs/s, ms per job) for run_job in a loop, warm module cache, embedded store."""
    from executor.embedded_store import EmbeddedStore
    from executor.run import module_cache, run_job
    from executor.spec import parse_spec

    store = EmbeddedStore(data_dir / "ipfs")
    cid = store.add_bytes(TRIVIAL)
    spec = parse_spec({"engine": "wasm", "wasm": {"module": cid}})
    cache = module_cache(data_dir / "wasm-cache")
    run_job(spec, store, cache=cache)
    start = time.perf_counter()
    for _ in range(jobs):
        run_job(spec, store, cache=cache)
    elapsed = time.perf_counter() - start
    return jobs / elapsed, elapsed / jobs * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--backend", choices=["postgres", "sqlite"], default="postgres")
    opts = parser.parse_args()
    redis.Redis.from_url(REDIS_URL).flushdb()
    print(f"# bench_jobs: {machine_summary()}; load before: {load_average()}\n")

    with (
        tempfile.TemporaryDirectory(prefix="bench-jobs-") as tmp,
        fresh_database(opts.backend) as database_url,
    ):
        data_dir = Path(tmp) / "data"
        env = django_env(
            database_url,
            DATA_DIR=str(data_dir),
            CELERY_BROKER_URL=REDIS_URL,
            EXECUTOR_LEASE_S="60",
            API_RATE_LIMIT="0",
            ALLOWED_HOSTS="127.0.0.1,localhost",
        )
        env.pop("IPFS_API_URL", None)
        manage(env, "migrate", "-v0")
        key = manage(env, "create_api_key", "--scope", "submitter", "--name", "bench")
        raw_key = key.stdout.strip().splitlines()[-1]
        manage(dict(env, MODERATOR_PASSWORD="bench passphrase"), "create_moderator", "bench",
               "--role", "moderator")  # fmt: skip
        moderator = manage(env, "create_api_key", "--scope", "moderator", "--name", "bench-m",
                           "--user", "bench")  # fmt: skip
        moderator_key = moderator.stdout.strip().splitlines()[-1]
        port = free_port()
        web = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "-b",
             f"127.0.0.1:{port}", "dashboard.wsgi"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        workers = [_worker(env, "executor", f"bench{n}") for n in range(opts.workers)]
        workers += [_worker(env, "reexecute", f"rerun{n}") for n in range(opts.workers)]
        try:
            client = httpx.Client(
                base_url=f"http://127.0.0.1:{port}",
                headers={"Authorization": f"Bearer {raw_key}"},
                timeout=60,
            )
            deadline = time.monotonic() + 60
            while True:
                try:
                    client.get("/healthz")
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
            cid = client.post(
                "/api/v1/content",
                content=TRIVIAL,
                headers={"Content-Type": "application/octet-stream"},
            ).json()["cid"]
            body = {"engine": "wasm", "wasm": {"module": cid}}
            # warm-up: each worker compiles the module once (then it is cached on disk)
            warm = [client.post("/api/v1/jobs", json=body).json()["id"] for _ in opts_range(opts)]
            wait_all(database_url, set(warm), time.monotonic() + 120)

            log(f"submitting {opts.jobs} jobs")
            start = time.perf_counter()
            with ThreadPoolExecutor(8) as pool:
                submitted = list(
                    pool.map(
                        lambda _: client.post("/api/v1/jobs", json=body).json(), range(opts.jobs)
                    )
                )
            submit_s = time.perf_counter() - start
            ids = {job["id"] for job in submitted}
            wait_all(database_url, ids, time.monotonic() + 600)
            total_s = time.perf_counter() - start
            latencies, states = job_latencies(database_url, ids)

            log(f"asking for {len(ids)} re-executions")
            moderating = httpx.Client(
                base_url=f"http://127.0.0.1:{port}",
                headers={"Authorization": f"Bearer {moderator_key}"},
                timeout=60,
            )
            start = time.perf_counter()
            with ThreadPoolExecutor(8) as pool:
                asked = list(
                    pool.map(lambda i: moderating.post(f"/api/v1/jobs/{i}/reexecutions"), ids)
                )
            assert all(a.status_code == 201 for a in asked), asked[0].text
            wait_all(database_url, ids, time.monotonic() + 600, table="reexecution")
            rerun_s = time.perf_counter() - start
            rerun_latencies, outcomes = job_latencies(database_url, ids, table="reexecution")
        finally:
            for proc in [web, *workers]:
                proc.terminate()
            for proc in [web, *workers]:
                proc.wait(timeout=60)

        direct_rate, direct_ms = direct_baseline(opts.jobs, Path(tmp) / "direct")

    rate = opts.jobs / total_s
    p50 = statistics.median(latencies)
    p99 = sorted(latencies)[int(len(latencies) * 0.99) - 1]
    print(
        table(
            ["path", "jobs", "jobs/s", "ms per job (p50)", "ms per job (p99)"],
            [
                [
                    f"pipeline: HTTP + Redis + {opts.workers} celery workers ({opts.backend})",
                    opts.jobs,
                    f"{rate:.1f}",
                    f"{p50:.0f}",
                    f"{p99:.0f}",
                ],
                [
                    "executor.run.run_job in a loop (this process)",
                    opts.jobs,
                    f"{direct_rate:.1f}",
                    f"{direct_ms:.1f}",
                    "",
                ],
            ],
        )  # fmt: skip
    )
    rerun_rate = opts.jobs / rerun_s
    rerun_p50 = statistics.median(rerun_latencies)
    rerun_p99 = sorted(rerun_latencies)[int(len(rerun_latencies) * 0.99) - 1]
    print(
        table(
            ["the same jobs", "runs", "runs/s", "ms per run (p50)", "ms per run (p99)"],
            [
                [
                    "job: submit → result recorded",
                    opts.jobs,
                    f"{rate:.1f}",
                    f"{p50:.0f}",
                    f"{p99:.0f}",
                ],
                [
                    "re-execution: request → outcome recorded",
                    opts.jobs,
                    f"{rerun_rate:.1f}",
                    f"{rerun_p50:.0f}",
                    f"{rerun_p99:.0f}",
                ],
            ],
        )  # fmt: skip
    )
    print(
        f"\nre-execution outcomes: {outcomes}; a re-execution over its job: "
        f"{rerun_p50 / p50:.2f}x the latency (p50), {rate / rerun_rate:.2f}x the time per run"
    )
    print(
        f"\nsubmitting took {submit_s:.2f} s ({opts.jobs / submit_s:.0f} submits/s); "
        f"states: {states}; pipeline time per job over direct: "
        f"{(1000 / rate) / direct_ms:.1f}x at {opts.workers} workers; load after: {load_average()}"
    )


def _worker(env: dict[str, str], queue: str, name: str) -> subprocess.Popen[bytes]:
    """A `celery worker` (solo pool: one task at a time) on one queue."""
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "dashboard", "worker", "-Q", queue, "--pool",
         "solo", "-n", f"{name}@%h", "--without-gossip", "--without-mingle", "--loglevel",
         "WARNING"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def opts_range(opts: argparse.Namespace) -> range:
    return range(opts.workers * 2)


# Per table: (its rows' job id column, the state column, start and end timestamps), joined
# for jobs to their result.
_QUERIES = {
    "job": "SELECT j.id, j.state, j.created_at, r.recorded_at FROM dashboard_job j "
    "LEFT JOIN dashboard_jobresult r ON r.job_id = j.id WHERE j.id",
    "reexecution": "SELECT job_id, state, created_at, finished_at FROM dashboard_reexecution "
    "WHERE job_id",
}
_UNFINISHED = ("queued", "running")


def _rows(database_url: str, ids: set[str], table: str = "job") -> list[tuple]:
    query = _QUERIES[table]
    if database_url.startswith("sqlite"):
        import sqlite3

        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as db:
            marks = ",".join("?" * len(ids))
            return db.execute(f"{query} IN ({marks})", list(ids)).fetchall()
    with psycopg.connect(database_url) as db:
        return db.execute(f"{query} = ANY(%s)", [list(ids)]).fetchall()


def wait_all(database_url: str, ids: set[str], deadline: float, table: str = "job") -> None:
    while True:
        rows = _rows(database_url, ids, table)
        left = [r for r in rows if r[1] in _UNFINISHED]
        if not left and len(rows) >= len(ids):
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"{len(left)} {table}s still unfinished")
        time.sleep(0.1)


def job_latencies(
    database_url: str, ids: set[str], table: str = "job"
) -> tuple[list[float], dict[str, int]]:
    latencies = []
    states: dict[str, int] = {}
    for _, state, created, recorded in _rows(database_url, ids, table):
        states[state] = states.get(state, 0) + 1
        if recorded is not None:
            created = datetime.fromisoformat(str(created)) if isinstance(created, str) else created
            recorded = (
                datetime.fromisoformat(str(recorded)) if isinstance(recorded, str) else recorded
            )
            latencies.append((recorded - created).total_seconds() * 1000)
    return latencies, states


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main()
