"""The example DAG (examples/airflow/filplus_pipeline.py) end to end: `airflow dags test` against
a live dashboard, a WASM stage whose result CID the second stage (Docker; WASM where the
machine has no Docker engine) mounts, and the second stage's results downloaded."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from executor.api_client import DashboardClient
from tests.airflow.harness import EXAMPLE_DAG, INSTALL_COMMAND, Airflow
from tests.executor import wasm_build
from tests.helpers import ROOT

DAG_ID = "filplus_pipeline"
INPUT = b"hello airflow\n"


@dataclass
class PipelineRun:
    run_id: str
    second_stage: str  # "docker" or "wasm"
    output: subprocess.CompletedProcess
    module: str
    input_cid: str
    output_dir: Path

    @property
    def conf(self) -> dict[str, str]:
        return {
            "module": self.module,
            "input_cid": self.input_cid,
            "output_dir": str(self.output_dir),
        }


@pytest.fixture(scope="module")
def pipeline(airflow: Airflow, tmp_path_factory: pytest.TempPathFactory) -> PipelineRun:
    cat = wasm_build.require("cat").read_bytes()
    with DashboardClient(airflow.dashboard.url, airflow.dashboard.submitter) as client:
        module = client.upload(cat)
        input_cid = client.upload(INPUT)
    second_stage = "docker" if airflow.dashboard.docker_host else "wasm"
    output_dir = tmp_path_factory.mktemp("pipeline-results")
    run = PipelineRun(
        run_id="",
        second_stage=second_stage,
        output=subprocess.CompletedProcess([], 0),
        module=module,
        input_cid=input_cid,
        output_dir=output_dir,
    )
    run.output = airflow.dags_test(
        EXAMPLE_DAG, DAG_ID, run.conf, FILPLUS_PIPELINE_SECOND_STAGE=second_stage
    )
    run.run_id = airflow.last_run_id(DAG_ID)
    return run


def test_every_stage_succeeds(airflow: Airflow, pipeline: PipelineRun) -> None:
    states = airflow.task_states(DAG_ID, pipeline.run_id)
    assert states == {"stage_a": "success", "stage_b": "success", "fetch": "success"}, (
        pipeline.output.stdout[-4000:] + pipeline.output.stderr[-4000:]
    )
    assert pipeline.output.returncode == 0


def test_second_stage_mounts_the_first_stage_result(
    airflow: Airflow, pipeline: PipelineRun
) -> None:
    xcom = lambda task, key: airflow.xcom(DAG_ID, pipeline.run_id, task, key)  # noqa: E731
    a_job, a_result = xcom("stage_a", "job_id"), xcom("stage_a", "result_cid")
    b_job, b_result = xcom("stage_b", "job_id"), xcom("stage_b", "result_cid")
    assert a_result and b_result and a_result != b_result
    with DashboardClient(airflow.dashboard.url, airflow.dashboard.submitter) as client:
        first, second = client.job(a_job), client.job(b_job)
    assert first["state"] == second["state"] == "completed"
    assert first["result"]["result_cid"] == a_result
    assert [(i["cid"], i["path"]) for i in first["inputs"]] == [(pipeline.input_cid, "/data/input")]
    assert first["spec"]["wasm"]["module"] == pipeline.module
    # the chain: stage_b's job mounts stage_a's result, by the CID that went through XCom
    assert [(i["cid"], i["path"]) for i in second["inputs"]] == [(a_result, "/inputs/stage_a")]
    assert second["engine"] == pipeline.second_stage
    assert second["result"]["result_cid"] == b_result
    if pipeline.second_stage == "docker":
        assert second["spec"]["docker"]["image"] == "tiny:1"
    label = f"airflow:{DAG_ID}/stage_b/{pipeline.run_id}"
    assert second["spec"]["annotations"] == [label]


def test_fetch_downloads_the_second_stage_result(airflow: Airflow, pipeline: PipelineRun) -> None:
    b_result = airflow.xcom(DAG_ID, pipeline.run_id, "stage_b", "result_cid")
    path = Path(airflow.xcom(DAG_ID, pipeline.run_id, "fetch", "path"))
    assert path == pipeline.output_dir / b_result
    if pipeline.second_stage == "docker":  # busybox wc and tr on stage_a's stdout
        assert (path / "stdout").read_bytes() == INPUT.upper()
        assert (path / "outputs" / "bytes.txt").read_text().strip() == str(len(INPUT))
    else:  # cat again, of stage_a's stdout
        assert (path / "stdout").read_bytes() == INPUT
        assert (path / "outputs" / "count.txt").read_text().strip() == str(len(INPUT))
    assert (path / "exitCode").read_text().strip() == "0"
    # Run again (a retry): the folder is already there, so it is kept, not fetched again.
    again = airflow.run(
        "tasks", "test", DAG_ID, "fetch", pipeline.run_id, "-S", str(EXAMPLE_DAG),
        "-t", json.dumps(pipeline.conf), FILPLUS_PIPELINE_SECOND_STAGE=pipeline.second_stage,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"{b_result} is already at {path}" in again.stdout + again.stderr


def test_templates_render_with_the_run_values(airflow: Airflow, pipeline: PipelineRun) -> None:
    a_result = airflow.xcom(DAG_ID, pipeline.run_id, "stage_a", "result_cid")
    env = {"FILPLUS_PIPELINE_SECOND_STAGE": pipeline.second_stage}
    rendered = airflow.run(
        "tasks", "render", DAG_ID, "stage_b", pipeline.run_id, "-S", str(EXAMPLE_DAG), **env
    )
    assert rendered.returncode == 0, rendered.stderr[-3000:]
    out = rendered.stdout
    assert f"{a_result}:/inputs/stage_a" in out  # the XCom pull, rendered
    assert f"airflow:{DAG_ID}/stage_b/{pipeline.run_id}" in out
    if pipeline.second_stage == "docker":
        assert "tiny:1" in out and "tr a-z A-Z < /inputs/stage_a/stdout" in out
    else:
        assert pipeline.module in out
    stage_a = airflow.run(
        "tasks", "render", DAG_ID, "stage_a", pipeline.run_id, "-S", str(EXAMPLE_DAG), **env
    )
    assert stage_a.returncode == 0, stage_a.stderr[-3000:]
    assert f"{pipeline.input_cid}:/data/input" in stage_a.stdout
    assert pipeline.module in stage_a.stdout and "/data/input" in stage_a.stdout


def test_importing_the_operators_without_airflow_says_how_to_install() -> None:
    probe = subprocess.run(
        [sys.executable, "-c", "import airflow"], capture_output=True, text=True, timeout=60
    )
    if probe.returncode == 0:
        pytest.skip("Airflow is importable in this virtualenv; the message cannot show")
    imported = subprocess.run(
        [sys.executable, "-c", "import executor.airflow"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert imported.returncode == 1
    assert "ImportError: executor.airflow needs Apache Airflow" in imported.stderr
    assert INSTALL_COMMAND in imported.stderr
