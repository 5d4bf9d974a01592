"""One long job, for killing its task (`airflow tasks test` then SIGTERM): on_kill must cancel
the job. The module's CID and a label to find the job by come in the task's params."""

from __future__ import annotations

from datetime import datetime

from airflow import DAG

from executor.airflow import FilplusWasmRunJobOperator

with DAG(
    dag_id="filplus_kill",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    params={"module": "", "label": ""},
) as dag:
    FilplusWasmRunJobOperator(
        task_id="spin",
        module="{{ params.module }}",
        annotations=["{{ params.label }}"],
        job_timeout_s=120,
        poll_interval_s=0.5,
    )
