"""What both benchmarks share: throw-away databases, `manage.py` children measured on their
own (wall time and peak RSS from os.wait4), environment, tables and machine facts."""

from __future__ import annotations

import contextlib
import io
import json
import os
import platform
import pstats
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
CACHE_DIR = Path(os.environ.get("FILPLUS_BENCH_CACHE", "/tmp/filplus-bench"))
# Server to create the throw-away databases on; its database name is only used to connect.
POSTGRES_URL = os.environ.get(
    "BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres"
).rstrip("/")
BACKENDS = ("sqlite", "postgres")

# Settings the caller's environment must not leak into a measured child.
_SCRUB = (
    "DATABASE_URL",
    "LOTUS_RPC_URL",
    "LOTUS_RPC_TOKEN",
    "CELERY_BROKER_URL",
    "DEBUG",
    "SCANNER_START_EPOCH",
    "SCANNER_EVENT_RANGE",
    "SCANNER_DEAL_BATCH",
    "SCANNER_MAX_DEALS_PER_PASS",
    "SCANNER_RECHECK_PER_PASS",
    "SCANNER_LOG_LEVEL",
)


def log(message: str) -> None:
    """Progress goes to stderr; stdout is for the final tables."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def parse_list(text: str, kinds: Sequence[str] | None = None) -> list[str]:
    items = [item.strip() for item in text.split(",") if item.strip()]
    if kinds is not None:
        unknown = [item for item in items if item not in kinds]
        if unknown:
            raise SystemExit(f"unknown value(s) {unknown}: choose from {', '.join(kinds)}")
    return items


def parse_sizes(text: str) -> list[int]:
    return [int(item.replace("_", "")) for item in parse_list(text)]


# --- measured children ----------------------------------------------------------------------


@dataclass
class Measured:
    wall_s: float
    max_rss_mib: float
    user_s: float
    sys_s: float
    returncode: int
    stdout: str
    stderr: str
    timed_out: bool = False


def run_measured(
    args: Sequence[str],
    env: dict[str, str],
    *,
    check: bool = True,
    cwd: Path = ROOT,
    timeout: float | None = None,
) -> Measured:
    """Run one child and measure it alone: wall time and rusage from os.wait4 in a small
    launcher (benchmarks/_spawn.py: forked from this process, a child's ru_maxrss would start
    at this process's RSS). Output goes to temp files, so a chatty child never blocks. After
    `timeout` seconds the child is sent SIGTERM (`timed_out`), and measured all the same."""
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.NamedTemporaryFile(prefix="filplus-bench-", suffix=".json") as result,
    ):
        launcher = [PYTHON, "-S", str(Path(__file__).with_name("_spawn.py")), result.name]
        proc = subprocess.Popen([*launcher, *args], cwd=cwd, env=env, stdout=out, stderr=err)
        timed_out = False
        try:
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                proc.terminate()  # forwarded to the measured child
                proc.wait()
        except BaseException:
            proc.terminate()  # forwarded to the measured child
            proc.wait()
            raise
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode("utf-8", "replace")
        stderr = err.read().decode("utf-8", "replace")
        try:
            usage = json.loads(Path(result.name).read_text())
        except ValueError:
            raise RuntimeError(f"launcher failed ({proc.returncode}):\n{stderr[-3000:]}") from None
    measured = Measured(
        wall_s=usage["wall_s"],
        max_rss_mib=usage["max_rss_kib"] / 1024,
        user_s=usage["user_s"],
        sys_s=usage["sys_s"],
        returncode=usage["returncode"],
        stdout=stdout,
        stderr=stderr,
        timed_out=timed_out,
    )
    if check and measured.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited with {measured.returncode}:\n{stderr[-3000:]}")
    return measured


def manage(env: dict[str, str], *args: str) -> Measured:
    return run_measured([PYTHON, "manage.py", *args], env)


def django_env(database_url: str, **settings: str) -> dict[str, str]:
    """A production-like environment: DEBUG off (Django then keeps no query log)."""
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
    env.update(
        DJANGO_SETTINGS_MODULE="dashboard.settings",
        DATABASE_URL=database_url,
        SECRET_KEY="benchmark-only-not-a-secret-at-least-32-characters",
        ALLOWED_HOSTS="localhost",
        DEBUG="0",
        PYTHONPATH=str(ROOT),
        PYTHONWARNINGS="ignore",
        SCANNER_LOG_LEVEL="WARNING",
    )
    env.update(settings)
    return env


def profile_top(
    args: Sequence[str], env: dict[str, str], *, limit: int = 10, title: str = ""
) -> str:
    """Run `python -m cProfile manage.py …` and return the top functions by own time.
    cProfile sees the main thread only (not the PostgreSQL dump writer thread)."""
    with tempfile.TemporaryDirectory(prefix="filplus-bench-prof-") as tmp:
        out = Path(tmp) / "profile.out"
        run_measured([PYTHON, "-m", "cProfile", "-o", str(out), "manage.py", *args], env)
        text = io.StringIO()
        stats = pstats.Stats(str(out), stream=text)
        stats.sort_stats("tottime").print_stats(limit)
    lines = [line for line in text.getvalue().splitlines() if line.strip()]
    # Drop pstats' header (file name, "Ordered by", "List reduced") but keep the totals.
    keep = [line for line in lines if "function calls" in line or line.lstrip()[:1].isdigit()]
    header = "   ncalls  tottime  percall  cumtime  percall filename:lineno(function)"
    body = "\n".join([keep[0], header, *keep[1:]] if keep else lines)
    return f"{title}\n{body}" if title else body


# --- throw-away databases -------------------------------------------------------------------


def _admin_connection():  # type: ignore[no-untyped-def]
    import dj_database_url
    import psycopg

    config = dj_database_url.parse(POSTGRES_URL)
    return psycopg.connect(
        host=config["HOST"] or "127.0.0.1",
        port=config["PORT"] or 5432,
        user=config["USER"] or "postgres",
        password=config["PASSWORD"] or None,
        dbname=config["NAME"] or "postgres",
        autocommit=True,
    )


@contextlib.contextmanager
def fresh_database(backend: str) -> Iterator[str]:
    """A DATABASE_URL for an empty database, removed afterwards: a SQLite file in a temp
    directory, or `CREATE DATABASE bench_<random>` … `DROP DATABASE … WITH (FORCE)`."""
    if backend == "sqlite":
        directory = tempfile.mkdtemp(prefix="filplus-bench-")
        try:
            yield f"sqlite:///{directory}/bench.sqlite3"
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        return
    if backend != "postgres":
        raise ValueError(backend)
    name = f"bench_{uuid.uuid4().hex[:12]}"
    with _admin_connection() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield POSTGRES_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with _admin_connection() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def against(spec: str, *, max_label: int = 40) -> tuple[str, Path]:
    """`--against LABEL=REV` as (label, a git worktree of REV in a temp directory); remove
    it with remove_worktree."""
    label, sep, rev = spec.partition("=")
    if not sep or not label or not rev:
        raise SystemExit(f"--against wants LABEL=REV, got {spec!r}")
    if len(label) > max_label:
        raise SystemExit(f"--against: the label {label!r} is over {max_label} characters")
    root = Path(tempfile.mkdtemp(prefix="filplus-bench-tree-"))
    root.rmdir()
    done = subprocess.run(
        ["git", "worktree", "add", "--detach", str(root), rev], cwd=ROOT, capture_output=True
    )
    if done.returncode:
        raise SystemExit(f"--against: cannot check out {rev!r}: {done.stderr.decode().strip()}")
    return label, root


def remove_worktree(root: Path) -> None:
    subprocess.run(["git", "worktree", "remove", "--force", str(root)], cwd=ROOT)


# --- reporting ------------------------------------------------------------------------------


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain text table: text left-aligned, numbers right-aligned."""
    cells = [[str(h) for h in headers], *[[_cell(v) for v in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    numeric = [all(_is_number(row[i]) for row in rows) and bool(rows) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if num else c.ljust(w)
            for c, w, num in zip(row, widths, numeric, strict=True)
        ).rstrip()

    out = [line(cells[0]), line(["-" * w for w in widths])]
    out.extend(line(row) for row in cells[1:])
    return "\n".join(out)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _cell(value: object) -> str:
    if isinstance(value, float):
        if value >= 100:
            return f"{value:,.0f}"
        if value >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def machine_summary() -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for text in Path("/proc/cpuinfo").read_text().splitlines():
            if text.startswith("model name"):
                cpu = text.split(":", 1)[1].strip()
                break
    memory = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        kib = int(Path("/proc/meminfo").read_text().split("\n", 1)[0].split()[1])
        memory = f", {kib / 1024**2:.0f} GiB RAM"
    postgres = "?"
    with contextlib.suppress(Exception), _admin_connection() as admin:
        postgres = str(admin.execute("SHOW server_version").fetchone()[0]).split()[0]
    return (
        f"{time.strftime('%Y-%m-%d %H:%M %Z')}; code {code_version()}; "
        f"{os.cpu_count()} cores ({cpu}){memory}; "
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
        f"PostgreSQL {postgres}; {platform.system()} {platform.release()}"
    )


def code_version() -> str:
    """The commit measured, and whether files outside benchmarks/ differ from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!benchmarks"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "unknown"
    return f"{head or 'unknown'}{' + uncommitted changes' if dirty else ''}"


def load_average() -> str:
    with contextlib.suppress(OSError):
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    return "?"


class PostgresActivity:
    """Samples pg_stat_activity of one database from a thread, noting when queries of each
    kind were first seen (perf_counter), e.g. to find when an import's final index build
    and blessed-CID rebuild began. Resolution: the sampling interval."""

    def __init__(self, database_url: str, kinds: dict[str, str], interval: float = 0.1) -> None:
        self.database = database_url.rsplit("/", 1)[1]
        self.kinds = {name: re.compile(pattern, re.IGNORECASE) for name, pattern in kinds.items()}
        self.interval = interval
        self.first: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pg-activity", daemon=True)

    def __enter__(self) -> PostgresActivity:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        with _admin_connection() as admin:
            while not self._stop.wait(self.interval):
                rows = admin.execute(
                    "SELECT query FROM pg_stat_activity WHERE datname = %s AND state = 'active'",
                    (self.database,),
                ).fetchall()
                now = time.perf_counter()
                for (query,) in rows:
                    for name, pattern in self.kinds.items():
                        if name not in self.first and pattern.search(query or ""):
                            self.first[name] = now
