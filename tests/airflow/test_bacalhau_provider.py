"""Bacalhau's published Airflow provider (bacalhau-airflow 1.3.2 with bacalhau-sdk 1.3.2),
unchanged, in a virtualenv of its own: examples/bacalhau/bacalhau_pipeline.py run by
`airflow dags test` against a live dashboard, configured only by BACALHAU_API_HOST and
BACALHAU_API_PORT. The SDK makes its own RSA key; the dashboard's admin binds its client id."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx
import pytest

from executor.api_client import DashboardClient
from tests.airflow.harness import Airflow, Dashboard, skip_or_fail
from tests.executor import wasm_build
from tests.helpers import ROOT, manage

DAG = ROOT / "examples" / "bacalhau" / "bacalhau_pipeline.py"
INSTALL = "bash .ci/install-bacalhau-airflow.sh"
INPUT = b"hello from bacalhau's provider\n"


def bacalhau_venv() -> Path:
    tools = os.environ.get("FILPLUS_TOOLS_DIR") or str(Path.home() / ".cache" / "filplus")
    return Path(tools) / "bacalhau-airflow-venv"


@pytest.fixture(scope="module")
def provider(
    tmp_path_factory: pytest.TempPathFactory, dashboard: Dashboard
) -> tuple[Airflow, Path, str]:
    venv = bacalhau_venv()
    if not (venv / "bin" / "airflow").exists():
        skip_or_fail(f"Bacalhau's Airflow provider is not installed at {venv}; run `{INSTALL}`")
    af = Airflow(
        home=tmp_path_factory.mktemp("bacalhau-airflow-home"), dashboard=dashboard, venv=venv
    )
    migrated = af.run("db", "migrate")
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    # The SDK makes its key in BACALHAU_DIR the first time it is imported; its client id is
    # what an admin binds.
    bacalhau_dir = tmp_path_factory.mktemp("bacalhau-dir")
    made = subprocess.run(
        [str(venv / "bin" / "python"), "-c",
         "from bacalhau_sdk.config import get_client_id; import bacalhau_sdk.api; "
         "print(get_client_id())"],
        env={**af.env(), "BACALHAU_DIR": str(bacalhau_dir)},
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    client_id = made.stdout.strip().splitlines()[-1]
    bound = manage(
        dashboard.env, "bind_bacalhau_client", "--client", client_id,
        "--key", dashboard.submitter[:12],
    )  # fmt: skip
    assert bound.returncode == 0, bound.stderr
    return af, bacalhau_dir, client_id


def test_the_published_provider_runs_a_wasm_then_a_docker_stage(provider) -> None:  # type: ignore[no-untyped-def]
    airflow, bacalhau_dir, client_id = provider
    dashboard = airflow.dashboard
    cat = wasm_build.require("cat").read_bytes()
    with DashboardClient(dashboard.url, dashboard.submitter) as client:
        module, input_cid = client.upload(cat), client.upload(INPUT)
    port = dashboard.url.rsplit(":", 1)[1]
    second = "docker" if dashboard.docker_host else "wasm"
    run = airflow.run(
        "dags", "test", "bacalhau_pipeline", "-S", str(DAG),
        BACALHAU_API_HOST="127.0.0.1", BACALHAU_API_PORT=port, BACALHAU_DIR=str(bacalhau_dir),
        BACALHAU_EXAMPLE_MODULE=module, BACALHAU_EXAMPLE_INPUT=input_cid,
        BACALHAU_EXAMPLE_SECOND_STAGE=second, timeout=600,
    )  # fmt: skip
    run_id = airflow.last_run_id("bacalhau_pipeline")
    states = airflow.task_states("bacalhau_pipeline", run_id)
    assert states == {"wasm_stage": "success", "second_stage": "success"}, (
        run.stdout[-4000:] + run.stderr[-4000:]
    )
    xcom = lambda task, key: airflow.xcom("bacalhau_pipeline", run_id, task, key)  # noqa: E731
    first_cid, second_cid = xcom("wasm_stage", "cids"), xcom("second_stage", "cids")
    assert first_cid and second_cid and first_cid != second_cid
    auth = {"Authorization": f"Bearer {dashboard.submitter}"}
    with httpx.Client(base_url=dashboard.url, headers=auth) as http:
        # the first stage's result has Bacalhau's layout, and its stdout is the input
        assert http.get(f"/ipfs/{first_cid}/stdout").content == INPUT
        assert http.get(f"/ipfs/{first_cid}/exitCode").text.strip() == "0"
        # the second stage read /inputs/wasm_stage/stdout from that result
        assert http.get(f"/ipfs/{second_cid}/stdout").content == INPUT
        if second == "docker":
            listing = http.get(f"/ipfs/{second_cid}/outputs/listing.txt").text.split()
            assert {"stdout", "stderr", "exitCode"} <= set(listing)
    # both jobs are the bound client's, submitted as the dashboard's submitter key
    job_id = xcom("wasm_stage", "bacalhau_job_id")
    with DashboardClient(dashboard.url, dashboard.submitter) as client:
        job = client.job(job_id)
    assert job["engine"] == "wasm" and job["annotations"] == ["filplus", "bacalhau-compat"]
    assert job["result"]["result_cid"] == first_cid
