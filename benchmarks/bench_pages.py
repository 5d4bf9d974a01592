"""Moderator pages with a big table: server time of the queue and job pages over 100,000 jobs.

Fills a throw-away database (PostgreSQL by default) with jobs in every state — inputs with
claims behind them, results whose stdout, stderr and outputs are real content in the
embedded IPFS store, decisions — then renders each page N times in-process through Django's
test Client, signed in as a moderator, with DEBUG off. Server time is the Client call: URL
resolution, middleware, session, view, SQL, IPFS reads and template rendering; no network.

    .venv/bin/python -m benchmarks.bench_pages [--jobs 100000] [--requests 50]
                                               [--backends postgres,sqlite]

Goal: under 150 ms per page (issue 6). Prints the figures; asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from benchmarks._common import (
    BACKENDS,
    code_version,
    fresh_database,
    load_average,
    log,
    machine_summary,
    parse_list,
    table,
)

GOAL_MS = 150
BATCH = 5_000


def cid(n: int, salt: bytes) -> str:
    digest = hashlib.sha256(salt + n.to_bytes(8, "big")).digest()
    return "b" + base64.b32encode(b"\x01\x55\x12\x20" + digest).decode().lower().rstrip("=")


def setup_django(database_url: str, data_dir: Path) -> None:
    os.environ.update(
        DJANGO_SETTINGS_MODULE="dashboard.settings",
        DATABASE_URL=database_url,
        DATA_DIR=str(data_dir),
        SECRET_KEY="benchmark-only-not-a-secret-at-least-32-characters",
        ALLOWED_HOSTS="testserver",
        DEBUG="0",
    )
    for name in ("IPFS_API_URL", "CACHE_URL", "CELERY_BROKER_URL"):
        os.environ.pop(name, None)
    import django

    django.setup()


def stored_result() -> dict[str, str]:
    """One result directory in the embedded store, shared by every job's result row."""
    from dashboard.content.services import storage

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "result"
        (root / "outputs").mkdir(parents=True)
        (root / "stdout").write_bytes(b"".join(b"line %d of the job's output\n" % i
                                               for i in range(2000)))  # fmt: skip
        (root / "stderr").write_bytes(b"a warning\n" * 20)
        (root / "exitCode").write_text("0")
        for i in range(20):
            (root / "outputs" / f"part-{i:02}.csv").write_text("a,b\n" * (i + 1))
        added = {e.path: e.cid for e in storage().add_path(root)}
    return {
        "result_cid": added["result"],
        "stdout_cid": added["result/stdout"],
        "stderr_cid": added["result/stderr"],
        "outputs_cid": added["result/outputs"],
    }


def fill(jobs: int) -> dict[str, str]:
    """Jobs of every kind; returns ids and CIDs worth requesting."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.utils import timezone

    from dashboard.keys.services import create_api_key
    from dashboard.models import (
        AuditEvent,
        Decision,
        Job,
        JobInput,
        JobResult,
        ModeratorProfile,
        Role,
    )

    rng = random.Random(6)
    user = get_user_model().objects.create_user("bench", password="unused-password-1")
    ModeratorProfile.objects.create(user=user, role=Role.MODERATOR)
    nodes = [
        create_api_key(scope="node", name=f"node-{i}", provider=f"f0{1000 + i}", actor="bench")[0]
        for i in range(5)
    ]
    refs = stored_result()
    now = timezone.now()
    source = {
        "kind": "claim",
        "id": 1,
        "provider": "f01000",
        "client": "f05000",
        "piece_cid": cid(0, b"piece"),
        "payload_cid": None,
        "start_epoch": 4_000_000,
        "end_epoch": 5_500_000,
    }
    sample: dict[str, str] = {}
    started = time.perf_counter()
    for first in range(0, jobs, BATCH):
        rows, inputs, results, decisions, events = [], [], [], [], []
        for n in range(first, min(first + BATCH, jobs)):
            job_id = f"job-{n:07}"
            roll = rng.random()
            state = (
                Job.State.COMPLETED
                if roll < 0.75
                else Job.State.FAILED
                if roll < 0.85
                else Job.State.QUEUED
                if roll < 0.95
                else Job.State.RUNNING
            )
            blessed = rng.choice([True, True, False, None])
            moderation = Job.Moderation.PENDING
            if state == Job.State.COMPLETED and rng.random() < 0.5:
                moderation = rng.choice([Job.Moderation.VERIFIED, Job.Moderation.REJECTED])
            created = now - timedelta(minutes=n * 0.4 + rng.random())
            annotations = rng.choice([["filplus"], ["filplus", "genomics"], ["climate"], []])
            rows.append(
                Job(
                    id=job_id,
                    engine=rng.choice(["wasm", "wasm", "docker"]),
                    spec={"engine": "wasm", "inputs": [{"cid": cid(n, b"in"), "path": "/d/x"}]},
                    spec_digest="0" * 64,
                    node=rng.choice([None, *nodes]),
                    annotations=annotations,
                    annotation_index="|" + "|".join(annotations) + "|" if annotations else "",
                    state=state,
                    created_at=created,
                    started_at=created if state != Job.State.QUEUED else None,
                    finished_at=created + timedelta(seconds=30)
                    if state in (Job.State.COMPLETED, Job.State.FAILED)
                    else None,
                    inputs_blessed=blessed if state != Job.State.QUEUED else None,
                    moderation_state=moderation,
                    datacap_bytes=1 << 30 if moderation == Job.Moderation.VERIFIED else None,
                    decided_at=now if moderation != Job.Moderation.PENDING else None,
                )
            )
            if blessed is not None:
                for position in range(rng.choice([1, 2])):
                    inputs.append(
                        JobInput(
                            job_id=job_id,
                            position=position,
                            cid=cid(n * 2 + position, b"in"),
                            path=f"/data/in-{position}",
                            blessed=blessed,
                            status="active" if blessed else "unknown",
                            sources=[source] if blessed else [],
                            as_of_epoch=4_900_000,
                        )
                    )
            if state == Job.State.COMPLETED:
                results.append(
                    JobResult(
                        job_id=job_id,
                        exit_code=0,
                        size_bytes=rng.randrange(1, 1 << 34),
                        runtime_ms=rng.randrange(10, 100_000),
                        provider="f01000",
                        **{**refs, "result_cid": cid(n, b"result")},
                    )
                )
                if moderation != Job.Moderation.PENDING:
                    action = "verify" if moderation == Job.Moderation.VERIFIED else "reject"
                    decisions.append(
                        Decision(
                            job_id=job_id,
                            action=action,
                            datacap_bytes=1 << 30 if action == "verify" else None,
                            reason="bench",
                            actor="user:bench",
                            user=user,
                        )
                    )
                    events.append(
                        AuditEvent(
                            actor="user:bench", action=f"job.{action}", target=f"job:{job_id}"
                        )
                    )
                elif blessed and "pending" not in sample:
                    sample["pending"] = job_id
                    sample["input_cid"] = cid(n * 2, b"in")
        Job.objects.bulk_create(rows)
        JobInput.objects.bulk_create(inputs)
        JobResult.objects.bulk_create(results)
        Decision.objects.bulk_create(decisions)
        AuditEvent.objects.bulk_create(events)
        done = min(first + BATCH, jobs)
        rate = done / (time.perf_counter() - started)
        log(f"filled {done:,} / {jobs:,} jobs ({rate:,.0f} jobs/s)")
    if connection.vendor == "postgresql":
        # What autovacuum leaves behind in production: statistics and a visibility map (the
        # queue's count reads the index alone when the visibility map says it may).
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
    sample["last"] = f"job-{jobs - 1:07}"
    return sample


class QueryCounter:
    """An execute_wrapper: sees every statement, whatever DEBUG and the query log say."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        self.count += 1
        return execute(sql, params, many, context)


def measure(backend: str, jobs: int, requests: int) -> list[list[object]]:
    from django.contrib.auth import get_user_model
    from django.core.cache import cache
    from django.db import connection
    from django.test import Client

    from dashboard.models import Job

    sample = fill(jobs)
    pending = Job.objects.filter(state="completed", moderation_state="pending").count()
    log(f"{pending:,} jobs awaiting a decision")
    client = Client()
    client.force_login(get_user_model().objects.get(username="bench"))
    pages = [
        ("queue, first page", "/", False),
        ("queue, page 200", "/?page=200", False),
        ("queue, last page", f"/?page={-(-pending // 25)}", False),
        ("queue, blessed + wasm + annotation", "/?blessed=yes&engine=wasm&annotation=genomics",
         False),
        ("queue, search by input CID", f"/?q={sample['input_cid']}", False),
        ("jobs, verified", "/?state=verified", False),
        ("jobs, all states, page 200", "/?state=all&page=200", False),
        ("jobs, search in every state by job id", f"/?q={sample['pending']}", False),
        ("job page (pending, with IPFS previews)", f"/jobs/{sample['pending']}/", False),
        ("audit log", "/audit/", False),
        ("overview, figures cached", "/overview/", False),
        ("overview, figures computed", "/overview/", True),
    ]  # fmt: skip
    rows: list[list[object]] = []
    for name, url, cold in pages:
        counter = QueryCounter()
        if cold:
            cache.clear()
        else:
            client.get(url)  # count the queries of a page view in the steady state
        with connection.execute_wrapper(counter):
            response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        for _ in range(3):  # warm caches: template loader, prepared plans
            client.get(url)
        times = []
        for _ in range(requests):
            if cold:
                cache.clear()
            started = time.perf_counter()
            client.get(url)
            times.append((time.perf_counter() - started) * 1000)
        times.sort()
        p95 = times[min(len(times) - 1, round(len(times) * 0.95) - 1)]
        median = statistics.median(times)
        rows.append(
            [
                backend,
                name,
                counter.count,
                f"{median:.1f}",
                f"{p95:.1f}",
                f"{times[0]:.1f}",
                "yes" if p95 < GOAL_MS else "NO",
            ]
        )
        log(f"{backend} {name}: median {median:.1f} ms, p95 {p95:.1f} ms")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--backends", default="postgres", help="postgres,sqlite")
    args = parser.parse_args()
    backends = parse_list(args.backends, BACKENDS)
    if len(backends) != 1:
        # Django is set up once per process: run one backend per process.
        for backend in backends:
            subprocess.run(
                [sys.executable, "-m", "benchmarks.bench_pages", "--jobs", str(args.jobs),
                 "--requests", str(args.requests), "--backends", backend],
                check=True,
            )  # fmt: skip
        return
    backend = backends[0]
    print(machine_summary())
    print(f"code {code_version()}; load average before: {load_average()}")
    print(f"{args.jobs:,} jobs, {args.requests} requests per page, in-process Django Client")
    with fresh_database(backend) as url, tempfile.TemporaryDirectory() as data:
        setup_django(url, Path(data))
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        rows = measure(backend, args.jobs, args.requests)
    print(
        table(
            [
                "database",
                "page",
                "SQL queries",
                "median ms",
                "p95 ms",
                "min ms",
                f"p95 < {GOAL_MS} ms",
            ],
            rows,
        )
    )
    print(f"load average after: {load_average()}")


if __name__ == "__main__":
    main()
