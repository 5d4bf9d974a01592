"""Bacalhau bodies as its Go models serialise them (docs/bacalhau.md), for the bridges' tests:
v2 jobs and executions as an orchestrator answers them, and the probe bodies of each version."""

from __future__ import annotations

from typing import Any

NODE_ID = "n-7f3c2a10-5b9e-4c8e-9a55-0d3c9a1e2b44"
MODULE = "bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq"
SECONDS = 1_000_000_000  # Bacalhau's times are unix nanoseconds


def ipfs(cid: str) -> dict[str, Any]:
    return {"Type": "ipfs", "Params": {"CID": cid}}


def wasm_task(module: str, inputs: list[tuple[str, str]], **params: Any) -> dict[str, Any]:
    """A v2 Task as `bacalhau wasm run` builds it."""
    return {
        "Name": "main",
        "Engine": {
            "Type": "wasm",
            "Params": {
                "EntryModule": {"Source": ipfs(module), "Alias": f"ipfs://{module}", "Target": ""},
                "EntryPoint": "_start",
                "Parameters": [],
                "EnvironmentVariables": {},
                **params,
            },
        },
        "Publisher": {"Type": "ipfs", "Params": {}},
        "InputSources": [
            {"Alias": f"in{i}", "Source": ipfs(cid), "Target": path}
            for i, (cid, path) in enumerate(inputs)
        ],
        "ResultPaths": [{"Name": "outputs", "Path": "/outputs"}],
        "Resources": {"CPU": "", "Memory": "", "Disk": "", "GPU": ""},
        "Network": {"Type": "None"},
        "Timeouts": {"ExecutionTimeout": 1800, "QueueTimeout": 0, "TotalTimeout": 0},
    }


def docker_task(image: str, inputs: list[tuple[str, str]]) -> dict[str, Any]:
    task = wasm_task(MODULE, inputs)
    task["Engine"] = {
        "Type": "docker",
        "Params": {"Image": image, "Entrypoint": ["/bin/sh"], "Parameters": ["-c", "true"]},
    }
    return task


def job(
    job_id: str,
    task: dict[str, Any],
    *,
    state: str = "Completed",
    created: int = 1_717_243_200,
    modified: int | None = None,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A v2 models.Job; times in seconds here, nanoseconds on the wire."""
    return {
        "ID": job_id,
        "Name": job_id,
        "Namespace": "default",
        "Type": "batch",
        "Priority": 0,
        "Count": 1,
        "Constraints": [],
        "Meta": {"bacalhau.org/requester.id": "QmRequester"},
        "Labels": {"filplus": ""} if labels is None else labels,
        "Tasks": [task],
        "State": {"StateType": state, "Message": ""},
        "Version": 1,
        "Revision": 3,
        "CreateTime": created * SECONDS,
        "ModifyTime": (modified or created) * SECONDS,
    }


def execution(
    execution_id: str,
    job_id: str,
    *,
    state: int | str = 7,
    result_cid: str | None = None,
    exit_code: int = 0,
    node_id: str = NODE_ID,
    created: int = 1_717_243_201,
    modified: int = 1_717_243_204,
    error: str = "",
) -> dict[str, Any]:
    """A v2 models.Execution; `state` is ComputeState.StateType (an int up to v1.4)."""
    return {
        "ID": execution_id,
        "Namespace": "default",
        "EvalID": "8c1397f1-0000-4000-8000-000000000000",
        "Name": "",
        "NodeID": node_id,
        "JobID": job_id,
        "AllocatedResources": {"Tasks": {}},
        "DesiredState": {"StateType": 2, "Message": ""},
        "ComputeState": {"StateType": state, "Message": error},
        "PublishedResult": ipfs(result_cid) if result_cid else {"Type": "", "Params": None},
        "RunOutput": {
            "Stdout": "",
            "StdoutTruncated": False,
            "stderr": "",
            "StderrTruncated": False,
            "ExitCode": exit_code,
            "ErrorMsg": error,
        }
        if result_cid or error
        else None,
        "PreviousExecution": "",
        "NextExecution": "",
        "FollowupEvalID": "",
        "Revision": 4,
        "CreateTime": created * SECONDS,
        "ModifyTime": modified * SECONDS,
    }
