"""A two-stage pipeline on IPFS data, each stage a job on the FIL+ dashboard's executor.

    stage_a (WASM)  ->  stage_b (Docker, or WASM)  ->  fetch (download stage_b's results)

stage_a runs a WASM module (by CID) on an input CID mounted at /data/input; its result is a
UnixFS folder {stdout, stderr, exitCode, outputs/}. stage_b mounts that folder at
/inputs/stage_a: the CID travels through XCom (`result_cid`), the bytes through IPFS. fetch
downloads stage_b's result folder into `output_dir`.

Run it (from the Airflow virtualenv that `bash .ci/install-airflow.sh` makes, with this
checkout on PYTHONPATH so `executor.airflow` imports):

    export AIRFLOW_CONN_FILPLUS_DEFAULT='http://:fpk_…@127.0.0.1:8000'   # password = API key
    python -m executor add cat.wasm && python -m executor add input.txt  # their CIDs
    airflow dags test filplus_pipeline -c '{"module": "bafy…", "input_cid": "bafk…"}'

The second stage is a Docker job by default (`image` and `command` are run parameters; the
executor's node must have the image, e.g. the busybox `tiny:1`). With
FILPLUS_PIPELINE_SECOND_STAGE=wasm in the environment that parses the DAG it is a WASM job
instead, running `stage_b_module` (or stage_a's module) on stage_a's stdout.
"""

from __future__ import annotations

import os
from datetime import datetime

from airflow import DAG
from airflow.models.param import Param

from executor.airflow import (
    FilplusDockerRunJobOperator,
    FilplusGetOperator,
    FilplusWasmRunJobOperator,
)

SECOND_STAGE = os.environ.get("FILPLUS_PIPELINE_SECOND_STAGE", "docker")
if SECOND_STAGE not in ("docker", "wasm"):
    raise ValueError(f"FILPLUS_PIPELINE_SECOND_STAGE must be docker or wasm, not {SECOND_STAGE!r}")

# stage_a's result folder, as stage_b sees it.
STAGE_A_RESULT = "{{ ti.xcom_pull(task_ids='stage_a', key='result_cid') }}:/inputs/stage_a"
WAIT_TIMEOUT_S = 600  # a stage still running then is cancelled and fails
LABELS = ["airflow:{{ dag.dag_id }}/{{ task.task_id }}/{{ run_id }}"]

with DAG(
    dag_id="filplus_pipeline",
    description="A WASM stage and a second stage chained through XCom on IPFS data",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    tags=["filplus"],
    params={
        "module": Param(type="string", minLength=1, description="CID of stage_a's module"),
        "input_cid": Param(type="string", minLength=1, description="CID stage_a reads"),
        "stage_a_args": Param(
            "/data/input",
            type="string",
            description="stage_a's argv after the module's CID",
        ),
        "image": Param("tiny:1", type="string", description="stage_b's Docker image"),
        "command": Param(
            "sh -c 'wc -c < /inputs/stage_a/stdout > /outputs/bytes.txt"
            " && tr a-z A-Z < /inputs/stage_a/stdout'",
            type="string",
            description="stage_b's Docker command, split as a shell would",
        ),
        "stage_b_module": Param(
            "", type="string", description="CID of stage_b's module in its WASM form"
        ),
        "output_dir": Param(
            "/tmp/filplus-pipeline", type="string", description="where fetch puts results"
        ),
    },
) as dag:
    stage_a = FilplusWasmRunJobOperator(
        task_id="stage_a",
        module="{{ params.module }}",
        args="{{ params.stage_a_args }}",
        inputs=["{{ params.input_cid }}:/data/input"],
        annotations=LABELS,
        wait_timeout_s=WAIT_TIMEOUT_S,
        poll_interval_s=1,
    )
    if SECOND_STAGE == "docker":
        stage_b = FilplusDockerRunJobOperator(
            task_id="stage_b",
            image="{{ params.image }}",
            command="{{ params.command }}",
            inputs=[STAGE_A_RESULT],
            annotations=LABELS,
            wait_timeout_s=WAIT_TIMEOUT_S,
            poll_interval_s=1,
        )
    else:
        stage_b = FilplusWasmRunJobOperator(
            task_id="stage_b",
            module="{{ params.stage_b_module or params.module }}",
            args=["/inputs/stage_a/stdout"],
            inputs=[STAGE_A_RESULT],
            annotations=LABELS,
            wait_timeout_s=WAIT_TIMEOUT_S,
            poll_interval_s=1,
        )
    fetch = FilplusGetOperator(
        task_id="fetch",
        cid="{{ ti.xcom_pull(task_ids='stage_b', key='result_cid') }}",
        output_dir="{{ params.output_dir }}",
    )
    stage_a >> stage_b >> fetch
