"""Apache Airflow operators: run a pipeline stage as a job on the dashboard's executor.

`FilplusWasmRunJobOperator` and `FilplusDockerRunJobOperator` build a job spec (docs/jobs.md) from
their arguments, submit it through the dashboard's HTTP API, wait for it and push `job_id` and
`result_cid` to XCom, so the next stage mounts the previous one's results:

    inputs=["{{ ti.xcom_pull(task_ids='stage_a', key='result_cid') }}:/inputs/stage_a"]

A failed, cancelled or timed-out job fails the task with the job's error; a task that is
killed or times out cancels its job. `FilplusGetOperator` downloads a CID into a folder.

The dashboard comes from the Airflow connection `filplus_default` (host = the dashboard's URL,
password = an API key of scope submitter), or from the `url` and `api_key` arguments.

This module needs Apache Airflow (2.10; `bash .ci/install-airflow.sh` makes a virtualenv with
it); the rest of the executor does not.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

try:
    from airflow.exceptions import AirflowException, AirflowNotFoundException
    from airflow.hooks.base import BaseHook
    from airflow.models.baseoperator import BaseOperator
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "executor.airflow needs Apache Airflow, which the dashboard's own requirements leave "
        "out: run `bash .ci/install-airflow.sh` (a separate virtualenv from "
        f"requirements-airflow.txt) and use its python ({exc})"
    ) from exc

from executor.api_client import ApiError, DashboardClient
from executor.spec import SpecError, parse_spec
from executor.storage import StorageError

__all__ = [
    "DEFAULT_CONN_ID",
    "FilplusDockerRunJobOperator",
    "FilplusGetOperator",
    "FilplusWasmRunJobOperator",
]

DEFAULT_CONN_ID = "filplus_default"


def dashboard_client(conn_id: str, url: str | None, api_key: str | None) -> DashboardClient:
    """A client for the dashboard the arguments name, else the one the connection names."""
    if not (url and api_key):
        try:
            conn = BaseHook.get_connection(conn_id)
        except AirflowNotFoundException:
            raise AirflowException(
                f"no Airflow connection {conn_id!r}: create it (host = the dashboard's URL, "
                "password = an API key) or pass url= and api_key= to the operator"
            ) from None
        url = url or _connection_url(conn.conn_type, conn.host, conn.port, conn.schema)
        api_key = api_key or conn.password
    if not url:
        raise AirflowException(f"connection {conn_id!r} has no host (the dashboard's URL)")
    if not api_key:
        raise AirflowException(f"connection {conn_id!r} has no password (the API key)")
    try:
        return DashboardClient(url, api_key)
    except ApiError as exc:
        raise AirflowException(f"connection {conn_id!r}: {exc}") from None


def _connection_url(
    conn_type: str | None, host: str | None, port: int | None, path: str | None
) -> str:
    """The dashboard URL from a connection's parts.

    A connection written as JSON may hold the whole URL in `host`; one written as a URI
    (`http://:KEY@127.0.0.1:8000`) is split by Airflow into type, host and port.
    """
    if not host:
        return ""
    if host.startswith(("http://", "https://")):
        return host
    scheme = conn_type if conn_type in ("http", "https") else "http"
    url = f"{scheme}://{host}"
    if port:
        url += f":{port}"
    if path:
        url += "/" + path.strip("/")
    return url


def _input_list(inputs: Any) -> list[Any]:
    """Inputs as the spec takes them; a lone `CID:/path` string is one input."""
    if inputs is None:
        return []
    if isinstance(inputs, str | Mapping):
        return [inputs]
    return list(inputs)


def _check_upstream_cids(inputs: list[Any]) -> None:
    # An XCom pull of a task that pushed nothing renders as "None"; say so instead of letting
    # the spec parser call "None" a bad CID.
    for i, item in enumerate(inputs):
        cid = item.partition(":")[0] if isinstance(item, str) else None
        if cid is not None and cid.strip() in ("", "None"):
            raise AirflowException(
                f"inputs.{i}: {item!r} has no CID; did the upstream task push result_cid?"
            )


def _split(value: Sequence[str] | str | None, name: str, task_id: str) -> list[Any]:
    """A list of strings as given, or one string split as a shell would (so a single Jinja
    template can hold a whole command line)."""
    if value is None:
        return []
    if not isinstance(value, str):
        return list(value)
    try:
        return shlex.split(value)
    except ValueError as exc:
        raise AirflowException(f"{task_id}: {name} {value!r}: {exc}") from None


class _FilplusRunJobOperator(BaseOperator):
    """Submit one job, wait for it, push `job_id` and `result_cid`; see the module doc."""

    engine = ""
    ui_color = "#cfe8fc"

    def __init__(
        self,
        *,
        inputs: Sequence[str | Mapping[str, str]] | str | None = None,
        env: Mapping[str, str] | None = None,
        job_timeout_s: float | None = None,
        memory_bytes: int | None = None,
        annotations: Sequence[str] | None = None,
        wait_timeout_s: float | None = None,
        poll_interval_s: float = 2.0,
        fail_on_nonzero_exit: bool = True,
        conn_id: str = DEFAULT_CONN_ID,
        url: str | None = None,
        api_key: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.inputs = inputs
        self.env = env
        self.job_timeout_s = job_timeout_s
        self.memory_bytes = memory_bytes
        self.annotations = annotations
        self.wait_timeout_s = wait_timeout_s
        self.poll_interval_s = poll_interval_s
        self.fail_on_nonzero_exit = fail_on_nonzero_exit
        self.conn_id = conn_id
        self.url = url
        self.api_key = api_key
        self.job_id: str | None = None

    # --- the spec ----------------------------------------------------------------------------

    def engine_section(self) -> dict[str, Any]:
        raise NotImplementedError

    def limits(self) -> dict[str, Any]:
        return {
            "timeout_s": self.job_timeout_s,
            "memory_bytes": self.memory_bytes,
        }

    def build_spec(self) -> dict[str, Any]:
        """The job spec from the (rendered) arguments, validated as the dashboard will."""
        inputs = _input_list(self.inputs)
        _check_upstream_cids(inputs)
        body = {
            "engine": self.engine,
            self.engine: self.engine_section(),
            "inputs": inputs,
            "limits": self.limits(),
            "annotations": list(self.annotations or []),
        }
        try:
            return parse_spec(body).to_json()
        except SpecError as exc:
            raise AirflowException(f"{self.task_id}: invalid job spec: {exc}") from None

    # --- running -----------------------------------------------------------------------------

    def execute(self, context: Any) -> str:
        spec = self.build_spec()  # fails before anything is submitted
        with dashboard_client(self.conn_id, self.url, self.api_key) as client:
            return self._run(client, spec, context["ti"])

    def _run(self, client: DashboardClient, spec: dict[str, Any], ti: Any) -> str:
        try:
            job = client.submit(spec)
        except ApiError as exc:
            raise AirflowException(f"submitting the job failed: {exc}") from None
        job_id = self.job_id = job["id"]
        ti.xcom_push(key="job_id", value=job_id)
        self.log.info("submitted %s job %s to %s", self.engine, job_id, client.url)
        try:
            job = client.wait(
                job_id,
                timeout_s=self.wait_timeout_s,
                poll_s=self.poll_interval_s,
                on_change=lambda j: self.log.info("job %s is %s", job_id, j["state"]),
            )
        except ApiError as exc:
            self._cancel(client, job_id)
            if exc.code == "timeout":
                raise AirflowException(
                    f"job {job_id} did not finish within {self.wait_timeout_s:g} s; "
                    "it was cancelled"
                ) from None
            raise AirflowException(f"waiting for job {job_id} failed: {exc}") from None
        except BaseException:
            # Killed, or Airflow's execution_timeout fired while waiting: the job must not
            # run on unattended.
            self._cancel(client, job_id)
            raise
        return self._finish(job, ti)

    def _finish(self, job: dict[str, Any], ti: Any) -> str:
        job_id, state = job["id"], job["state"]
        if state != "completed":
            raise AirflowException(f"job {job_id} {state}: {job.get('error') or state}")
        result = job.get("result") or {}
        result_cid = result.get("result_cid")
        if not result_cid:
            raise AirflowException(f"job {job_id} completed without a result CID")
        ti.xcom_push(key="result_cid", value=result_cid)
        exit_code = result.get("exit_code")
        self.log.info(
            "job %s completed: exit code %s, result %s (stdout %s, stderr %s)",
            job_id, exit_code, result_cid, result.get("stdout_cid"), result.get("stderr_cid"),
        )  # fmt: skip
        if exit_code not in (0, None) and self.fail_on_nonzero_exit:
            raise AirflowException(
                f"job {job_id} exited with code {exit_code}; its stderr is "
                f"{result.get('stderr_cid')} (result {result_cid})"
            )
        return result_cid

    def _cancel(self, client: DashboardClient, job_id: str) -> None:
        try:
            job = client.cancel(job_id)
        except ApiError as exc:
            self.log.warning("cancelling job %s failed: %s", job_id, exc)
            return
        self.log.info("asked the dashboard to cancel job %s (now %s)", job_id, job["state"])

    def on_kill(self) -> None:
        if self.job_id is None:
            return
        # A client of its own: on_kill runs in a signal handler, maybe in the middle of a
        # request on execute's client, whose connection pool is not re-entrant.
        with dashboard_client(self.conn_id, self.url, self.api_key) as client:
            self._cancel(client, self.job_id)


class FilplusWasmRunJobOperator(_FilplusRunJobOperator):
    """Run a WASM module (by CID) as a job.

    `module`: the module's CID (add it with `python -m executor add`); `args` follow the
    module's CID in argv (a list, or one string split as a shell would); `inputs`: `CID:/path`
    strings or `{"cid", "path"}` objects;
    `job_timeout_s`, `memory_bytes`, `fuel`: the job's limits; `wait_timeout_s`: how long the
    task waits before cancelling the job and failing.
    """

    engine = "wasm"
    template_fields: Sequence[str] = (
        "module", "entry_point", "args", "env", "inputs", "annotations",
    )  # fmt: skip

    def __init__(
        self,
        *,
        module: str,
        entry_point: str = "_start",
        args: Sequence[str] | str | None = None,
        fuel: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.module = module
        self.entry_point = entry_point
        self.args = args
        self.fuel = fuel

    def engine_section(self) -> dict[str, Any]:
        return {
            "module": self.module.strip() if isinstance(self.module, str) else self.module,
            "entry_point": self.entry_point,
            "args": _split(self.args, "args", self.task_id),
            "env": dict(self.env or {}),
        }

    def limits(self) -> dict[str, Any]:
        return {**super().limits(), "fuel": self.fuel}


class FilplusDockerRunJobOperator(_FilplusRunJobOperator):
    """Run a command in a Docker image as a job (no network, read-only root, /outputs
    writable). `command` is a list of strings, or one string split as a shell would."""

    engine = "docker"
    template_fields: Sequence[str] = ("image", "command", "env", "inputs", "annotations")

    def __init__(
        self,
        *,
        image: str,
        command: Sequence[str] | str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.image = image
        self.command = command

    def engine_section(self) -> dict[str, Any]:
        return {
            "image": self.image.strip() if isinstance(self.image, str) else self.image,
            "entrypoint": _split(self.command, "command", self.task_id),
            "env": dict(self.env or {}),
        }


class FilplusGetOperator(BaseOperator):
    """Download a CID (a file or a folder) to `output_dir/<name or CID>`; pushes the path.

    The content is fetched as a CAR and checked block by block before it is written. A
    destination that already exists holds that CID's content (downloads are renamed into
    place only when complete), so a retry reuses it.
    """

    template_fields: Sequence[str] = ("cid", "output_dir", "name")
    ui_color = "#e3f4e1"

    def __init__(
        self,
        *,
        cid: str,
        output_dir: str,
        name: str | None = None,
        conn_id: str = DEFAULT_CONN_ID,
        url: str | None = None,
        api_key: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.cid = cid
        self.output_dir = output_dir
        self.name = name
        self.conn_id = conn_id
        self.url = url
        self.api_key = api_key

    def execute(self, context: Any) -> str:
        cid = (self.cid or "").strip()
        if cid in ("", "None"):
            raise AirflowException(f"{self.task_id}: no CID to download (cid={self.cid!r})")
        if not self.output_dir:
            raise AirflowException(f"{self.task_id}: output_dir is empty")
        dest = Path(self.output_dir) / (self.name or cid)
        if dest.exists():
            self.log.info("%s is already at %s", cid, dest)
        else:
            with dashboard_client(self.conn_id, self.url, self.api_key) as client:
                try:
                    client.download(cid, dest)
                except ApiError as exc:
                    raise AirflowException(f"downloading {cid} failed: {exc}") from None
                except (StorageError, OSError, ValueError) as exc:  # a bad CAR, the disk
                    raise AirflowException(f"downloading {cid} to {dest} failed: {exc}") from None
            self.log.info("downloaded %s to %s", cid, dest)
        context["ti"].xcom_push(key="path", value=str(dest))
        return str(dest)
