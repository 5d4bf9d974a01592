"""Bacalhau's legacy requester API, the subset its published Airflow provider speaks
(bacalhau-airflow 1.3.2 over bacalhau-sdk 1.3.2; docs/bacalhau.md, "Legacy API"):
a signed submit, then events until a terminal job-level event, then results.

A submit is trusted only as far as its RSA signature: it must verify over the raw bytes of
`payload` as sent, the payload's client id must be sha256 of the signing key's modulus, and
an admin must have bound that client id to a submitter key, which the job is submitted as.
The job is made from those signed bytes and nothing else, once: the same submit again is
answered with the job it made.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction

from dashboard.bacalhau.bodies import MAX_DEPTH, fold, member, nesting
from dashboard.bacalhau.clients import CLIENT_ID
from dashboard.bacalhau.rsa import BadKey, client_id, parse_public_key, signature_valid
from dashboard.errors import DomainError, job_not_found
from dashboard.jobs.services import JOB_ID, submit_job
from dashboard.models import BacalhauClient, BacalhauSubmission, Job
from executor.spec import OUTPUTS_PATH, JobSpec, SpecError, parse_spec, storable_text

__all__ = [
    "SignedSubmit",
    "client_job",
    "events",
    "legacy_spec",
    "read_json",
    "results",
    "signed_submit",
    "submit",
]

_MEMORY = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*", re.I)
_UNITS = {"": 1, "b": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
# Our spec's limits, named as a legacy spec names them.
_LIMIT_FIELDS = {"limits.memory_bytes": "spec.Resources.Memory", "limits.timeout_s": "spec.Timeout"}


def _bad(field: str, message: str) -> DomainError:
    return DomainError("invalid_spec", f"{field}: {message}", fields={field: message})


# --- reading a body ----------------------------------------------------------------------------


class _Members(dict[str, Any]):
    """A JSON object as read, and the first of its member names that repeats an earlier one
    in any case (None when none does)."""

    repeated: str | None = None


def _members(pairs: list[tuple[str, Any]]) -> _Members:
    members = _Members(pairs)
    if len({name.casefold() for name in members}) < len(pairs):
        seen: set[str] = set()
        for name, _ in pairs:
            if name.casefold() in seen:
                members.repeated = name
                break
            seen.add(name.casefold())
    return members


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text} is beyond any number")
    return number


def _not_json(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def _repeated(value: Any) -> str | None:
    """The dotted path of the first member named twice (in any case) in `value`, or None."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        item, path = stack.pop()
        if isinstance(item, _Members):
            if item.repeated is not None:
                return f"{path}{item.repeated}"
            stack.extend((v, f"{path}{k}.") for k, v in reversed(item.items()))
        elif isinstance(item, list):
            stack.extend((v, f"{path}{i}.") for i, v in reversed(list(enumerate(item))))
    return None


def read_json(text: str | bytes) -> Any:
    """A legacy body as JSON, strictly. Go's decoder matches member names in any case and
    keeps the last of two, and another reading might keep another, so an object that names a
    member twice in any case (maps included) is refused; so are NaN and the infinities
    (not JSON, and no database stores them) and nesting deeper than MAX_DEPTH."""
    try:
        value = json.loads(
            text, object_pairs_hook=_members, parse_float=_finite, parse_constant=_not_json
        )
    except (ValueError, RecursionError):
        raise DomainError("malformed_json", "the body is not JSON") from None
    if nesting(value) > MAX_DEPTH:
        raise DomainError("malformed_json", f"the body is nested more than {MAX_DEPTH} deep")
    where = _repeated(value)
    if where is not None:
        message = "named twice (member names match in any case)"
        raise DomainError("invalid_request", f"{where}: {message}", fields={where: message})
    return value


def _member_text(text: str, name: str) -> str | None:
    """The text of member `name` (any case) of the JSON object `text`, exactly as sent: the
    signature covers those bytes, not a re-serialisation of them. `text` has passed
    read_json: an object that names each member once."""
    decoder = json.JSONDecoder()
    at, found = text.index("{") + 1, None
    whitespace = " \t\n\r"
    while True:
        while text[at] in whitespace + ",":
            at += 1
        if text[at] == "}":
            return found
        key, at = json.decoder.scanstring(text, at + 1)  # type: ignore[attr-defined]
        while text[at] in whitespace + ":":
            at += 1
        _, end = decoder.raw_decode(text, at)
        if key.lower() == name:
            found = text[at:end]
        at = end


# --- submitting --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignedSubmit:
    """A submit from a bound client whose signature verified: what its job is made of."""

    client: BacalhauClient
    payload: dict[str, Any]  # folded, read from the signed bytes and nothing else
    spec: Any  # the payload's spec as sent
    signature: str  # sha256 of the signature's bytes: the key of the replay record


def _unsigned(message: str, fields: dict[str, str] | None = None) -> DomainError:
    return DomainError("invalid_signature", message, status=401, fields=fields)


def signed_submit(body: bytes) -> SignedSubmit:
    """`POST /requester/submit`'s checks, cheapest first, so that whoever may not submit
    costs no RSA: the body read strictly, the key (2048 to 4096 bits, e = 65537), the
    payload's ClientID against the key, the client's binding, and only then the signature."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise DomainError("malformed_json", "the body is not UTF-8") from None
    document = read_json(text)
    if not isinstance(document, dict):
        raise DomainError("invalid_request", "the body must be a JSON object")
    payload_text = _member_text(text, "payload")
    sent = read_json(payload_text) if payload_text is not None else None
    if payload_text is None or not isinstance(sent, dict):
        raise DomainError(
            "invalid_request", "payload: must be an object", fields={"payload": "missing"}
        )
    payload = fold(sent)
    request = fold(document)
    public_key, signature = request.get("client_public_key"), request.get("signature")
    if not isinstance(public_key, str) or not isinstance(signature, str):
        raise _unsigned(
            "a submit carries client_public_key and signature", {"signature": "missing"}
        )
    try:
        key = parse_public_key(public_key)
    except BadKey as exc:
        raise _unsigned(f"client_public_key: {exc}") from None
    sender = client_id(key)
    claimed = payload.get("clientid")
    if not isinstance(claimed, str) or claimed.lower() != sender:
        raise _unsigned(
            "payload.ClientID is not the signing key's client id (sha256 of its modulus)",
            {"payload.ClientID": "must be " + sender},
        )
    client = BacalhauClient.objects.select_related("key").filter(client_id=sender).first()
    if client is None or client.key.revoked_at is not None:
        raise DomainError(
            "unbound_client",
            f"Bacalhau client {sender} is not bound to an active submitter key "
            "(an admin binds it in the dashboard's admin)",
            status=403,
        )
    if not signature_valid(key, payload_text.encode("utf-8"), signature):
        raise _unsigned("the signature does not verify over payload")
    return SignedSubmit(
        client=client,
        payload=payload,
        spec=_original(sent, "spec"),
        signature=hashlib.sha256(base64.b64decode(signature)).hexdigest(),
    )


def submit(signed: SignedSubmit) -> Job:
    """The job of a verified submit, submitted as its client's key. PKCS #1 v1.5 signs a
    payload one way only, so the same signature again is the same submit sent again (a
    retry, or a replay by whoever saw it): it is answered with the job it made the first
    time, and makes none."""
    earlier = _submitted(signed.signature)
    if earlier is not None:
        return earlier
    if not _storable(signed.spec):
        raise _bad("spec", "text must not contain NUL or a lone UTF-16 surrogate")
    spec = legacy_spec(signed.payload.get("spec"), signed.spec)
    try:
        with transaction.atomic():
            job, _ = submit_job(key=signed.client.key, spec=spec)
            BacalhauSubmission.objects.create(
                job=job, client=signed.client, spec=signed.spec, signature=signed.signature
            )
    except IntegrityError:  # the same submit accepted at the same moment: answer the winner's
        earlier = _submitted(signed.signature)
        if earlier is None:
            raise
        return earlier
    return job


def _submitted(signature: str) -> Job | None:
    found = BacalhauSubmission.objects.select_related("job").filter(signature=signature).first()
    return found.job if found is not None else None


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
    number, unit = Decimal(match.group(1)), (match.group(2) or "").lower()
    scale = _UNITS[unit[:1]] if "i" not in unit else 1024 ** " kmgt".index(unit[0])
    size = number * scale  # exact: as a float, 400 nines are infinite
    if size >= 1 << 63:
        raise _bad("spec.Resources.Memory", f"{value[:40]!r}: more memory than any job gets")
    return int(size)


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
        raise _bad(_LIMIT_FIELDS.get(exc.field, f"spec ({exc.field})"), exc.message) from None


# --- reading ----------------------------------------------------------------------------------

LEGACY_STATES: dict[str, str] = {
    Job.State.QUEUED: "New",
    Job.State.RUNNING: "InProgress",
    Job.State.COMPLETED: "Completed",
    Job.State.FAILED: "Error",
    Job.State.CANCELLED: "Cancelled",
}


def client_job(body: bytes) -> tuple[Job, str]:
    """The job `POST /requester/events` and `/results` ask about, and the client asking, who
    must be the one that submitted it; 404 otherwise, as if there were no such job."""
    document = read_json(body)
    request = fold(document) if isinstance(document, dict) else {}
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
    return job, client.lower()


def _time(value: Any) -> str:
    return value.isoformat().replace("+00:00", "Z") if value is not None else ""


def events(job: Job) -> list[dict[str, Any]]:
    """The job's history as legacy JobHistory: never empty (the client polls an empty list
    without sleeping), ending with exactly one terminal job-level event once it is done."""
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


def results(job: Job) -> list[dict[str, Any]]:
    """One published result for a completed job, as Bacalhau lists them; none otherwise."""
    result = getattr(job, "result", None) if job.state == Job.State.COMPLETED else None
    if result is None:
        return []
    return [
        {
            "NodeID": result.provider or "filplus-dashboard",
            "Data": {"StorageSource": "ipfs", "Name": "outputs", "CID": result.result_cid},
        }
    ]
