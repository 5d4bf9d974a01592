"""One orchestrator pass against hostile Bacalhau orchestrators: wall time and peak RSS.

    .venv/bin/python -m benchmarks.bench_bacalhau_hostile [--scenarios honest,endless,…]
        [--limit-s 60] [--answer-mib 160] [--depth 100000] [--drip-s 0.5] [--timeout-s 2]

Each scenario is one `manage.py scan_bacalhau --once --url URL` (a child measured alone by
benchmarks/_spawn.py, on a copy of one migrated SQLite database) against the fake
orchestrator of tests/fake_bacalhau.py, running in this process's threads:

- `honest`: 100 completed jobs, one execution each (the floor: start-up, a page, imports);
- `endless`: a list of jobs that never ends, each page 100 new jobs and a next token;
- `drip`: an empty list, sent one byte every `--drip-s` seconds;
- `oversized`: a list of jobs that is one valid JSON answer of `--answer-mib` MiB;
- `unsized`: the same answer without a Content-Length (it ends when the connection closes);
- `deep`: an answer nested `--depth` deep.

The child runs with `BACALHAU_TIMEOUT_S=--timeout-s` and the other BACALHAU_* settings at
their defaults; a child still running after `--limit-s` seconds is stopped (SIGTERM) and
shown as such. Printed: wall time, peak RSS, the exit status, the requests the orchestrator
answered, and the command's last line. Asserts nothing.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from benchmarks._common import (
    PYTHON,
    django_env,
    load_average,
    log,
    machine_summary,
    manage,
    parse_list,
    run_measured,
    table,
)
from tests.dashboard.bacalhau.shapes import docker_task, execution, job
from tests.fake_bacalhau import FakeOrchestrator

SCENARIOS = ("honest", "endless", "drip", "oversized", "unsized", "deep")
RESULT = "bafybeibvbwys4xy7qangjbe5axy6yokd2lu4q5c7fjmhsgbf4qzjncj44a"


def orchestrator(scenario: str, args: argparse.Namespace) -> FakeOrchestrator:
    fake = FakeOrchestrator()
    if scenario in ("honest", "endless"):
        for n in range(100):
            fake.put(
                job(f"j-{n}", docker_task("ubuntu", []), modified=1_700_000_000 + n),
                execution(f"e-{n}", f"j-{n}", result_cid=RESULT),
            )
    if scenario == "endless":
        fake.endless_pages = 10**9
    if scenario == "drip":
        fake.drip_s = args.drip_s
    if scenario in ("oversized", "unsized"):
        fake.answer_bytes = args.answer_mib << 20
        fake.no_length = scenario == "unsized"
    if scenario == "deep":
        fake.nest_depth = args.depth
    return fake


def outcome_line(measured_out: str, measured_err: str) -> str:
    """The command's line for the orchestrator (its summary, or why it failed), else its
    last line (a traceback's)."""
    lines = [line.strip() for line in (measured_out + measured_err).splitlines() if line.strip()]
    said = [line for line in lines if line.startswith("bacalhau http")]
    return (said or lines or [""])[-1][:110]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--limit-s", type=float, default=60.0)
    parser.add_argument("--answer-mib", type=int, default=160)
    parser.add_argument("--depth", type=int, default=100_000)
    parser.add_argument("--drip-s", type=float, default=0.5)
    parser.add_argument("--timeout-s", type=int, default=2)
    args = parser.parse_args(argv)
    scenarios = parse_list(args.scenarios, SCENARIOS)
    log(machine_summary())
    directory = Path(tempfile.mkdtemp(prefix="filplus-bench-"))
    rows = []
    try:
        template = directory / "template.sqlite3"
        manage(django_env(f"sqlite:///{template}"), "migrate", "-v0")
        for scenario in scenarios:
            database = directory / f"{scenario}.sqlite3"
            shutil.copyfile(template, database)
            env = django_env(
                f"sqlite:///{database}",
                DATA_DIR=str(directory / "data"),
                BACALHAU_TIMEOUT_S=str(args.timeout_s),
            )
            fake = orchestrator(scenario, args)
            try:
                log(f"{scenario}: scan_bacalhau --once, load {load_average()}")
                started = time.perf_counter()
                measured = run_measured(
                    [PYTHON, "manage.py", "scan_bacalhau", "--once", "--url", fake.url],
                    env,
                    check=False,
                    timeout=args.limit_s,
                )
                log(f"{scenario}: {time.perf_counter() - started:.1f} s")
                requests = len(fake.requests)
            finally:
                fake.close()
            outcome = (
                f"stopped after {args.limit_s:.0f} s"
                if measured.timed_out
                else f"exit {measured.returncode}"
            )
            rows.append(
                [
                    scenario,
                    measured.wall_s,
                    measured.max_rss_mib,
                    outcome,
                    requests,
                    outcome_line(measured.stdout, measured.stderr),
                ]
            )
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    print(machine_summary())
    print(
        f"BACALHAU_TIMEOUT_S={args.timeout_s}; answer {args.answer_mib} MiB, depth "
        f"{args.depth:,}, drip a byte every {args.drip_s} s"
    )
    print(
        table(
            ["scenario", "wall s", "peak RSS MiB", "outcome", "requests", "last line"],
            rows,
        )
    )


if __name__ == "__main__":
    main()
