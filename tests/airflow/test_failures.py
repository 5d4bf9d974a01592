"""Failure paths (tests/airflow/dags/filplus_failures.py): each task fails with the reason the
job or the operator gives, and a task that stops waiting cancels its job."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from executor.api_client import DashboardClient
from tests.airflow.harness import TEST_DAGS, Airflow
from tests.executor import wat_modules as wat

DAG_ID = "filplus_failures"
TASKS = ("trap", "out_of_fuel", "exit_3", "too_slow", "no_upstream_cid", "bad_spec", "wrong_key")


@dataclass
class FailuresRun:
    run_id: str
    output: subprocess.CompletedProcess

    @property
    def log(self) -> str:
        return self.output.stdout + self.output.stderr


@pytest.fixture(scope="module")
def failures(airflow: Airflow) -> FailuresRun:
    with DashboardClient(airflow.dashboard.url, airflow.dashboard.submitter) as client:
        conf = {
            "trap": client.upload(wat.trap()),
            "spin": client.upload(wat.spin()),
            "exit_3": client.upload(wat.exit_with(3)),
        }
    # The connection as a URI this time (the pipeline's is JSON with the URL in host).
    host = airflow.dashboard.url.removeprefix("http://")
    uri = f"http://:{airflow.dashboard.submitter}@{host}"
    ran = airflow.dags_test(
        TEST_DAGS / "filplus_failures.py", DAG_ID, conf, AIRFLOW_CONN_FILPLUS_DEFAULT=uri
    )
    return FailuresRun(run_id=airflow.last_run_id(DAG_ID), output=ran)


def _job(airflow: Airflow, run: FailuresRun, task: str) -> dict:
    job_id = airflow.xcom(DAG_ID, run.run_id, task, "job_id")
    assert job_id, f"{task} pushed no job_id"
    with DashboardClient(airflow.dashboard.url, airflow.dashboard.submitter) as client:
        return client.job(job_id)


def test_every_task_fails_and_so_does_the_run(airflow: Airflow, failures: FailuresRun) -> None:
    states = airflow.task_states(DAG_ID, failures.run_id)
    assert states == dict.fromkeys(TASKS, "failed"), failures.log[-4000:]
    assert failures.output.returncode == 1


@pytest.mark.parametrize("task", ["trap", "out_of_fuel"])
def test_a_failed_job_fails_the_task_with_its_error(
    airflow: Airflow, failures: FailuresRun, task: str
) -> None:
    job = _job(airflow, failures, task)
    assert job["state"] == "failed" and job["error"]
    if task == "out_of_fuel":
        assert job["error"] == "fuel limit of 100000 exhausted"
    assert f"job {job['id']} failed: {job['error']}" in failures.log
    assert airflow.xcom(DAG_ID, failures.run_id, task, "result_cid") is None


def test_a_non_zero_exit_fails_the_task_but_keeps_the_result(
    airflow: Airflow, failures: FailuresRun
) -> None:
    job = _job(airflow, failures, "exit_3")
    assert job["state"] == "completed" and job["result"]["exit_code"] == 3
    assert f"job {job['id']} exited with code 3" in failures.log
    pushed = airflow.xcom(DAG_ID, failures.run_id, "exit_3", "result_cid")
    assert pushed == job["result"]["result_cid"]


def test_a_wait_timeout_fails_the_task_and_cancels_the_job(
    airflow: Airflow, failures: FailuresRun
) -> None:
    job = _job(airflow, failures, "too_slow")
    assert f"job {job['id']} did not finish within 2 s; it was cancelled" in failures.log
    # The job (limit 120 s) is stopped by its worker once the cancel reaches it.
    with DashboardClient(airflow.dashboard.url, airflow.dashboard.submitter) as client:
        job = client.wait(job["id"], timeout_s=60, poll_s=0.5)
    assert job["state"] == "cancelled", job


def test_an_input_without_upstream_cid_is_refused_before_submitting(
    airflow: Airflow, failures: FailuresRun
) -> None:
    assert "has no CID; did the upstream task push result_cid?" in failures.log
    assert airflow.xcom(DAG_ID, failures.run_id, "no_upstream_cid", "job_id") is None


def test_an_invalid_spec_is_refused_before_submitting(
    airflow: Airflow, failures: FailuresRun
) -> None:
    assert "bad_spec: invalid job spec: inputs.0: 'data' must be an absolute path" in failures.log
    assert airflow.xcom(DAG_ID, failures.run_id, "bad_spec", "job_id") is None


def test_the_operator_api_key_overrides_the_connection(
    airflow: Airflow, failures: FailuresRun
) -> None:
    assert "submitting the job failed: HTTP 401" in failures.log
    assert airflow.xcom(DAG_ID, failures.run_id, "wrong_key", "job_id") is None


def test_killing_the_task_cancels_its_job(airflow: Airflow) -> None:
    label = f"kill-test-{uuid.uuid4().hex}"
    with DashboardClient(airflow.dashboard.url, airflow.dashboard.submitter) as client:
        params = {"module": client.upload(wat.spin()), "label": label}
        task = airflow.popen(
            "tasks", "test", "filplus_kill", "spin", "-S", str(TEST_DAGS / "filplus_kill.py"),
            "-t", json.dumps(params),
        )  # fmt: skip
        try:
            job = _running_job(client, label, task)
            task.send_signal(signal.SIGTERM)  # what Airflow sends a task it kills
            out, err = task.communicate(timeout=60)
        finally:
            if task.poll() is None:
                task.kill()
                task.communicate()
        assert f"asked the dashboard to cancel job {job['id']}" in out + err
        job = client.wait(job["id"], timeout_s=60, poll_s=0.5)
    assert job["state"] == "cancelled", job


def _running_job(
    client: DashboardClient, label: str, task: subprocess.Popen[str]
) -> dict[str, Any]:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert task.poll() is None, task.communicate()
        for job in client.jobs():
            if label in job["spec"]["annotations"] and job["state"] == "running":
                return job
        time.sleep(0.5)
    raise AssertionError(f"no running job labelled {label} within 90 s")
