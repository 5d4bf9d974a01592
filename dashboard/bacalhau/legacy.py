"""Bacalhau's legacy requester API, the subset its published Airflow provider speaks
(bacalhau-airflow 1.3.2 over bacalhau-sdk 1.3.2; docs/bacalhau.md, "Legacy API"):
a signed submit, then events until a terminal job-level event, then results.

A submit is trusted only as far as its RSA signature: it must verify over the raw bytes of
`payload` as sent, the payload's client id must be sha256 of the signing key's modulus, and
an admin must have bound that client id to a submitter key, which the job is submitted as.
"""

from __future__ import annotations

import json
import re
from typing import Any

from django.db import transaction

from dashboard.bacalhau.bodies import fold, member
from dashboard.bacalhau.clients import CLIENT_ID
from dashboard.bacalhau.rsa import BadKey, client_id, parse_public_key, signature_valid
from dashboard.errors import DomainError, job_not_found
from dashboard.jobs.services import JOB_ID, submit_job
from dashboard.models import BacalhauClient, BacalhauSubmission, Job
from executor.spec import OUTPUTS_PATH, JobSpec, SpecError, parse_spec, storable_text

__all__ = ["events", "legacy_spec", "results", "submit"]

_MEMORY = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*", re.I)
_UNITS = {"": 1, "b": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}


def _bad(field: str, message: str) -> DomainError:
    return DomainError("invalid_spec", f"{field}: {message}", fields={field: message})


def raw_member(body: bytes, name: str) -> tuple[dict[str, Any], bytes | None]:
    """The JSON object `body`, and the bytes of its member `name` (any case) exactly as sent:
    the signature covers those bytes, not a re-serialisation of them."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise DomainError("malformed_json", "the body is not UTF-8") from None
    decoder = json.JSONDecoder()
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        raise DomainError("malformed_json", "the body is not JSON") from None
    if not isinstance(document, dict):
        raise DomainError("invalid_request", "the body must be a JSON object")
    # Walk the top-level members to find where the wanted value's text starts and ends.
    at, raw = text.index("{") + 1, None
    whitespace = " \t\n\r"
    while True:
        while text[at] in whitespace + ",":
            at += 1
        if text[at] == "}":
            break
        key, at = json.decoder.scanstring(text, at + 1)  # type: ignore[attr-defined]
        while text[at] in whitespace + ":":
            at += 1
        _, end = decoder.raw_decode(text, at)
        if key.lower() == name:
            raw = text[at:end].encode("utf-8")
        at = end
    return document, raw


def submit(body: bytes) -> tuple[Job, dict[str, Any], Any]:
    """`POST /requester/submit`: check the signature, map the legacy spec, submit as the bound key.
    Returns the job, the folded payload and the spec as sent."""
    document, payload_bytes = raw_member(body, "payload")
    request = fold(document)
    payload = request.get("payload")
    if not isinstance(payload, dict) or payload_bytes is None:
        raise DomainError("invalid_request", "payload: missing", fields={"payload": "missing"})
    public_key, signature = request.get("client_public_key"), request.get("signature")
    if not isinstance(public_key, str) or not isinstance(signature, str):
        raise DomainError(
            "invalid_signature",
            "a submit carries client_public_key and signature",
            status=401,
            fields={"signature": "missing"},
        )
    try:
        key = parse_public_key(public_key)
    except BadKey as exc:
        raise DomainError("invalid_signature", f"client_public_key: {exc}", status=401) from None
    if not signature_valid(key, payload_bytes, signature):
        raise DomainError(
            "invalid_signature", "the signature does not verify over payload", status=401
        )
    sender = client_id(key)
    claimed = payload.get("clientid")
    if not isinstance(claimed, str) or claimed.lower() != sender:
        raise DomainError(
            "invalid_signature",
            "payload.ClientID is not the signing key's client id (sha256 of its modulus)",
            status=401,
            fields={"payload.ClientID": "must be " + sender},
        )
    client = BacalhauClient.objects.select_related("key").filter(client_id=sender).first()
    if client is None or client.key.revoked_at is not None:
        raise DomainError(
            "unbound_client",
            f"Bacalhau client {sender} is not bound to an active submitter key "
            "(an admin binds it in the dashboard's admin)",
            status=403,
        )
    sent_spec = _original(document, "payload", "spec")
    if not _storable(sent_spec):
        raise _bad("spec", "text must not contain NUL or a lone UTF-16 surrogate")
    spec = legacy_spec(payload.get("spec"), sent_spec)
    with transaction.atomic():
        job, _ = submit_job(key=client.key, spec=spec)
        BacalhauSubmission.objects.create(job=job, client=client, spec=sent_spec)
    return job, payload, sent_spec


def _storable(value: Any) -> bool:
    """Whether a JSON value holds only text a database stores (it is kept as sent)."""
    if isinstance(value, str):
        return storable_text(value)
    if isinstance(value, dict):
        return all(_storable(k) and _storable(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_storable(v) for v in value)
    return True


def _original(document: dict[str, Any], *path: str) -> Any:
    """A member of the unfolded body by folded names (its keys kept as sent)."""
    value: Any = document
    for name in path:
        if not isinstance(value, dict):
            return None
        value = next((v for k, v in value.items() if k.lower() == name), None)
    return value


def _spec_cid(spec: dict[str, Any], field: str) -> str:
    source = spec.get("storagesource")
    if not isinstance(source, str) or source.lower() != "ipfs":
        raise _bad(f"{field}.StorageSource", "only ipfs is supported")
    cid = spec.get("cid")
    if not isinstance(cid, str) or not cid:
        raise _bad(f"{field}.CID", "a CID is required")
    return cid


def _memory(value: str) -> int:
    match = _MEMORY.fullmatch(value)
    if match is None:
        raise _bad("spec.Resources.Memory", f"{value!r} is not a size like 256Mb or 1GB")
    number, unit = float(match.group(1)), (match.group(2) or "").lower()
    scale = _UNITS[unit[:1]] if "i" not in unit else 1024 ** " kmgt".index(unit[0])
    return int(number * scale)


def legacy_spec(spec: Any, sent: Any) -> JobSpec:
    """Our spec (docs/jobs.md) for a legacy Bacalhau spec, folded (`sent` as sent, for the
    environment's map keys); 400 invalid_spec naming what we cannot run."""
    if not isinstance(spec, dict):
        raise _bad("spec", "must be an object")
    engine_spec = member(spec, "enginespec")
    engine = str(spec.get("engine") or engine_spec.get("type") or "").lower()
    if engine not in ("wasm", "docker"):
        raise _bad("spec.Engine", "must be Wasm or Docker")
    params = member(engine_spec, "params")
    section = member(spec, engine) or params
    sent_section = _original(sent, engine)
    if not isinstance(sent_section, dict):
        sent_section = _original(sent, "enginespec", "params")
    body: dict[str, Any] = {"engine": engine}
    if engine == "wasm":
        if section.get("importmodules"):
            raise _bad("spec.Wasm.ImportModules", "only WASI modules without imports run here")
        module = section.get("entrymodule")
        if not isinstance(module, dict):
            raise _bad("spec.Wasm.EntryModule", "an IPFS entry module is required")
        env = _original(sent_section, "environmentvariables")
        body["wasm"] = {
            "module": _spec_cid(module, "spec.Wasm.EntryModule"),
            "entry_point": section.get("entrypoint") or "_start",
            "args": section.get("parameters") or [],
            "env": env if isinstance(env, dict) else {},
        }
    else:
        if section.get("workingdirectory"):
            raise _bad("spec.Docker.WorkingDirectory", "not supported here")
        env_list = section.get("environmentvariables") or []
        if not isinstance(env_list, list) or not all(isinstance(e, str) for e in env_list):
            raise _bad("spec.Docker.EnvironmentVariables", "must be a list of K=V strings")
        entrypoint = section.get("entrypoint") or []
        parameters = section.get("parameters") or []
        if not isinstance(entrypoint, list) or not isinstance(parameters, list):
            raise _bad("spec.Docker.Entrypoint", "must be a list of strings")
        body["docker"] = {
            "image": section.get("image"),
            "entrypoint": [*entrypoint, *parameters],
            "env": dict(e.partition("=")[::2] for e in env_list),
        }
    inputs = spec.get("inputs") or []
    if not isinstance(inputs, list):
        raise _bad("spec.Inputs", "must be a list")
    body["inputs"] = []
    for i, item in enumerate(inputs):
        if not isinstance(item, dict):
            raise _bad(f"spec.Inputs.{i}", "must be an object")
        body["inputs"].append(
            {"cid": _spec_cid(item, f"spec.Inputs.{i}"), "path": item.get("path")}
        )
    outputs = spec.get("outputs") or []
    if (
        not isinstance(outputs, list)
        or any(
            not isinstance(o, dict)
            or str(o.get("name", "outputs")) != "outputs"
            or str(o.get("path", OUTPUTS_PATH)) != OUTPUTS_PATH
            for o in outputs
        )
        or len(outputs) > 1
    ):
        raise _bad("spec.Outputs", "only one output, named outputs at /outputs, is supported")
    publisher = spec.get("publisher") or (
        spec.get("publisherspec", {}).get("type")
        if isinstance(spec.get("publisherspec"), dict)
        else ""
    )
    if publisher and str(publisher).lower() != "ipfs":
        raise _bad("spec.Publisher", "results are published to IPFS only")
    network = member(spec, "network")
    if network.get("type") not in (None, "", "None", "none"):
        raise _bad("spec.Network.Type", "jobs run without a network here")
    resources = member(spec, "resources")
    if resources.get("gpu") not in (None, "", "0"):
        raise _bad("spec.Resources.GPU", "no GPUs here")
    deal = member(spec, "deal")
    if deal.get("concurrency") not in (None, 0, 1):
        raise _bad("spec.Deal.Concurrency", "a job runs once here (0 or 1)")
    limits: dict[str, Any] = {}
    timeout = spec.get("timeout")
    if timeout not in (None, 0):
        limits["timeout_s"] = timeout
    if isinstance(resources.get("memory"), str) and resources["memory"].strip():
        limits["memory_bytes"] = _memory(resources["memory"])
    if limits:
        body["limits"] = limits
    annotations = spec.get("annotations") or []
    body["annotations"] = annotations
    try:
        return parse_spec(body)
    except SpecError as exc:
        raise _bad(f"spec ({exc.field})", exc.message) from None


# --- reading ----------------------------------------------------------------------------------

LEGACY_STATES: dict[str, str] = {
    Job.State.QUEUED: "New",
    Job.State.RUNNING: "InProgress",
    Job.State.COMPLETED: "Completed",
    Job.State.FAILED: "Error",
    Job.State.CANCELLED: "Cancelled",
}


def _client_job(body: Any) -> Job:
    request = fold(body) if isinstance(body, dict) else {}
    job_id, client = request.get("job_id"), request.get("client_id")
    if not isinstance(job_id, str) or not job_id:
        raise DomainError("invalid_request", "job_id: missing", fields={"job_id": "missing"})
    if not isinstance(client, str):
        raise DomainError("invalid_request", "client_id: missing", fields={"client_id": "missing"})
    # Text that no stored id can be (a NUL, a lone surrogate) finds nothing, as Bacalhau's
    # store would, before it reaches the database.
    job = None
    if JOB_ID.fullmatch(job_id) and CLIENT_ID.fullmatch(client.lower()):
        job = (
            Job.objects.select_related("result")
            .filter(id=job_id, bacalhau_submission__client__client_id=client.lower())
            .first()
        )
    if job is None:
        raise job_not_found(job_id[:100] if JOB_ID.fullmatch(job_id) else "(not a job id)")
    return job


def _time(value: Any) -> str:
    return value.isoformat().replace("+00:00", "Z") if value is not None else ""


def events(body: Any) -> list[dict[str, Any]]:
    """The job's history as legacy JobHistory: never empty (the client polls an empty list
    without sleeping), ending with exactly one terminal job-level event once it is done."""
    job = _client_job(body)
    history: list[dict[str, Any]] = [
        {
            "Type": "JobLevel",
            "JobID": job.id,
            "JobState": {"New": "New"},
            "NewVersion": 1,
            "Comment": "Job created",
            "Time": _time(job.created_at),
        }
    ]
    if job.started_at is not None:
        history.append(
            {
                "Type": "JobLevel",
                "JobID": job.id,
                "JobState": {"Previous": "New", "New": "InProgress"},
                "NewVersion": 2,
                "Time": _time(job.started_at),
            }
        )
    final = LEGACY_STATES[job.state]
    if final in ("Completed", "Error", "Cancelled"):
        previous = "InProgress" if job.started_at is not None else "New"
        history.append(
            {
                "Type": "JobLevel",
                "JobID": job.id,
                "JobState": {"Previous": previous, "New": final},
                "NewVersion": len(history) + 1,
                "Comment": job.error or "",
                "Time": _time(job.finished_at),
            }
        )
    return history


def results(body: Any) -> list[dict[str, Any]]:
    """One published result for a completed job, as Bacalhau lists them; none otherwise."""
    job = _client_job(body)
    result = getattr(job, "result", None) if job.state == Job.State.COMPLETED else None
    if result is None:
        return []
    return [
        {
            "NodeID": result.provider or "filplus-dashboard",
            "Data": {"StorageSource": "ipfs", "Name": "outputs", "CID": result.result_cid},
        }
    ]
