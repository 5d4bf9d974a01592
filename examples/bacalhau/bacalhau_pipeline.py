"""Two stages with Bacalhau's own Airflow provider (bacalhau-airflow 1.3.2), unchanged, run
by this dashboard's legacy requester API: a WASM stage, then a Docker stage that mounts the
WASM stage's result directory (Bacalhau's layout and ours: stdout, stderr, exitCode, outputs/)
and reads its stdout.

Point the provider at the dashboard and bind its client id once (docs/bacalhau.md):

    export BACALHAU_API_HOST=127.0.0.1 BACALHAU_API_PORT=8000
    python manage.py bind_bacalhau_client --client <client id> --key <submitter key prefix>

The job specs are not templated by the provider, so this DAG reads its CIDs when it is parsed:
BACALHAU_EXAMPLE_MODULE (a WASI module that prints the files named in its arguments, such as
examples/wasm's cat) and BACALHAU_EXAMPLE_INPUT (a file). BACALHAU_EXAMPLE_SECOND_STAGE=wasm
runs the second stage as WASM on a machine with no Docker engine.
"""

from __future__ import annotations

import os
from datetime import datetime

from airflow import DAG
from bacalhau_airflow.operators import BacalhauSubmitJobOperator

MODULE = os.environ.get("BACALHAU_EXAMPLE_MODULE", "")
INPUT = os.environ.get("BACALHAU_EXAMPLE_INPUT", "")
SECOND = os.environ.get("BACALHAU_EXAMPLE_SECOND_STAGE", "docker")
OUTPUTS = [{"StorageSource": "IPFS", "Name": "outputs", "path": "/outputs"}]

with DAG("bacalhau_pipeline", start_date=datetime(2024, 1, 1), schedule=None, catchup=False):
    wasm_stage = BacalhauSubmitJobOperator(
        task_id="wasm_stage",
        api_version="V1beta1",
        job_spec={
            "engine": "Wasm",
            "publisher": "IPFS",
            "wasm": {
                "EntryModule": {"StorageSource": "ipfs", "CID": MODULE},
                "EntryPoint": "_start",
                "Parameters": ["/inputs/data.txt"],
                "EnvironmentVariables": {"STAGE": "wasm"},
            },
            "outputs": OUTPUTS,
            "annotations": ["filplus", "bacalhau-compat"],
            "timeout": 300,
            "deal": {"concurrency": 1},
        },
        input_volumes=[f"{INPUT}:/inputs/data.txt"],
    )
    if SECOND == "docker":
        second = {
            "engine": "Docker",
            "publisher": "IPFS",
            "docker": {
                "image": "tiny:1",
                "entrypoint": [
                    "/bin/sh",
                    "-c",
                    "cat /inputs/wasm_stage/stdout && ls /inputs/wasm_stage > /outputs/listing.txt",
                ],
                "environmentvariables": ["STAGE=docker"],
            },
        }
    else:
        second = {
            "engine": "Wasm",
            "publisher": "IPFS",
            "wasm": {
                "EntryModule": {"StorageSource": "ipfs", "CID": MODULE},
                "Parameters": ["/inputs/wasm_stage/stdout"],
            },
        }
    second_stage = BacalhauSubmitJobOperator(
        task_id="second_stage",
        api_version="V1beta1",
        job_spec={**second, "outputs": OUTPUTS, "timeout": 300, "deal": {"concurrency": 1}},
        input_volumes=["{{ ti.xcom_pull(task_ids='wasm_stage', key='cids') }}:/inputs/wasm_stage"],
    )
    wasm_stage >> second_stage
