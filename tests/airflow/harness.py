"""Running real Apache Airflow from the test suite: its CLI in its own virtualenv, against a
live dashboard (`manage.py serve` with its executor thread), with a private dockerd when the
machine can run one.

Airflow is not in the dashboard's virtualenv (its pins clash with ours): `.ci/install-airflow.sh`
makes `${FILPLUS_TOOLS_DIR:-~/.cache/filplus}/airflow-venv`, and these tests call its `airflow`
as a subprocess with the checkout on PYTHONPATH, so the DAGs import `executor.airflow`.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import httpx
import pytest

from tests.helpers import ROOT, free_port, manage, process_env, spawn

INSTALL_COMMAND = "bash .ci/install-airflow.sh"
EXAMPLE_DAG = ROOT / "examples" / "airflow" / "filplus_pipeline.py"
TEST_DAGS = Path(__file__).resolve().parent / "dags"


def skip_or_fail(reason: str) -> NoReturn:
    """Skip a test that needs something absent; in CI (CI=true) fail instead."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: this test must run)")
    pytest.skip(reason)


def airflow_venv() -> Path:
    tools = os.environ.get("FILPLUS_TOOLS_DIR") or str(Path.home() / ".cache" / "filplus")
    return Path(tools) / "airflow-venv"


def airflow_missing() -> str | None:
    """Why the Airflow CLI cannot run here, or None when it can."""
    airflow = airflow_venv() / "bin" / "airflow"
    if not airflow.exists():
        return f"Apache Airflow is not installed at {airflow}; run `{INSTALL_COMMAND}`"
    return None


@dataclass
class Dashboard:
    url: str
    submitter: str
    docker_host: str | None
    env: dict[str, str]  # the environment `manage.py` needs to act on this dashboard


@dataclass
class Airflow:
    """The Airflow CLI with its own AIRFLOW_HOME (a migrated SQLite metadata database)."""

    home: Path
    dashboard: Dashboard
    venv: Path = field(default_factory=lambda: airflow_venv())

    @property
    def db_path(self) -> Path:
        return self.home / "airflow.db"

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            # The dashboard's settings and virtualenv must not leak into Airflow's process.
            if not k.startswith(("AIRFLOW", "DJANGO", "VIRTUAL_ENV", "DATABASE_URL"))
        }
        env.update(
            AIRFLOW_HOME=str(self.home),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__CORE__DAGS_FOLDER=str(TEST_DAGS),
            # `dags test` runs every task in this one process; no scheduler, no webserver.
            AIRFLOW__CORE__EXECUTOR="SequentialExecutor",
            AIRFLOW__LOGGING__LOGGING_LEVEL="INFO",
            AIRFLOW_CONN_FILPLUS_DEFAULT=json.dumps(
                {
                    "conn_type": "http",
                    "host": self.dashboard.url,
                    "password": self.dashboard.submitter,
                }
            ),  # fmt: skip
            PYTHONPATH=str(ROOT),
            PYTHONWARNINGS="ignore",
        )
        env.update(extra)
        return env

    def run(self, *args: str, timeout: float = 300, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(self.venv / "bin" / "airflow"), *args],
            cwd=self.home, env=self.env(**env), capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip

    def popen(self, *args: str, **env: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [str(self.venv / "bin" / "airflow"), *args],
            cwd=self.home, env=self.env(**env), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip

    def dags_test(
        self, dag_file: Path, dag_id: str, conf: dict[str, Any], **env: str
    ) -> subprocess.CompletedProcess:
        return self.run("dags", "test", dag_id, "-S", str(dag_file), "-c", json.dumps(conf), **env)

    # The metadata database, read directly: what `dags test` recorded.

    def _query(self, sql: str, *params: str) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.db_path) as db:
            return db.execute(sql, params).fetchall()

    def last_run_id(self, dag_id: str) -> str:
        rows = self._query(
            "SELECT run_id FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1", dag_id
        )
        assert rows, f"no run of {dag_id} was recorded"
        return rows[0][0]

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        rows = self._query(
            "SELECT task_id, state FROM task_instance WHERE dag_id = ? AND run_id = ?",
            dag_id, run_id,
        )  # fmt: skip
        return dict(rows)

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str) -> Any:
        rows = self._query(
            "SELECT value FROM xcom WHERE dag_id = ? AND run_id = ? AND task_id = ? AND key = ?",
            dag_id, run_id, task_id, key,
        )  # fmt: skip
        # Airflow's default XCom backend stores JSON.
        return json.loads(rows[0][0]) if rows else None


def start_dashboard(tmp: Path, docker_host: str | None) -> tuple[subprocess.Popen[str], Dashboard]:
    """`manage.py serve` with its executor thread, its own DATA_DIR and SQLite file."""
    extra = {"EXECUTOR_LEASE_S": "5"}
    if docker_host:
        extra["DOCKER_HOST"] = docker_host
    env = process_env(tmp, **extra)
    env.pop("IPFS_API_URL", None)  # the embedded store: no IPFS daemon needed
    migrated = manage(env, "migrate", "-v0")
    assert migrated.returncode == 0, migrated.stderr
    made = manage(env, "create_api_key", "--scope", "submitter", "--name", "airflow-tests")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip().splitlines()[-1]
    port = free_port()
    proc = spawn(env, "serve", "--port", str(port), "--no-scanner")
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited: {proc.communicate()[1][-2000:]}")
        try:
            if httpx.get(f"{url}/healthz").status_code in (200, 503):
                break
        except httpx.TransportError:
            if time.monotonic() > deadline:
                stop(proc)
                raise AssertionError("serve did not answer /healthz within 60 s") from None
            time.sleep(0.2)
    return proc, Dashboard(url=url, submitter=key, docker_host=docker_host, env=env)


def stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
