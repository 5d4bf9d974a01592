"""Stages that must fail their task, each for a reason the task's error has to name.

Independent tasks, so one `airflow dags test` runs them all: a trapping module, fuel
exhaustion, a non-zero exit, a job still running when the operator's wait runs out (the job
must then be cancelled), an input whose upstream pushed no CID and a relative mount path (both
refused before submitting),
and an API key given to the operator, which overrides the connection's. Module CIDs come in
the run's conf.
"""

from __future__ import annotations

from datetime import datetime

from airflow import DAG

from executor.airflow import FilplusWasmRunJobOperator

with DAG(
    dag_id="filplus_failures",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
) as dag:
    FilplusWasmRunJobOperator(
        task_id="trap", module="{{ dag_run.conf['trap'] }}", poll_interval_s=0.5
    )
    FilplusWasmRunJobOperator(
        task_id="out_of_fuel",
        module="{{ dag_run.conf['spin'] }}",
        fuel=100_000,
        poll_interval_s=0.5,
    )
    FilplusWasmRunJobOperator(
        task_id="exit_3", module="{{ dag_run.conf['exit_3'] }}", poll_interval_s=0.5
    )
    FilplusWasmRunJobOperator(
        task_id="too_slow",
        module="{{ dag_run.conf['spin'] }}",
        job_timeout_s=120,
        wait_timeout_s=2,
        poll_interval_s=0.5,
    )
    FilplusWasmRunJobOperator(
        task_id="no_upstream_cid",
        module="{{ dag_run.conf['spin'] }}",
        inputs=["{{ ti.xcom_pull(task_ids='trap', key='result_cid') }}:/inputs/trap"],
    )
    FilplusWasmRunJobOperator(
        task_id="bad_spec",
        module="{{ dag_run.conf['exit_3'] }}",
        inputs=["{{ dag_run.conf['exit_3'] }}:data"],
    )
    FilplusWasmRunJobOperator(
        task_id="wrong_key", module="{{ dag_run.conf['exit_3'] }}", api_key="fpk_not_a_key"
    )
