"""The answer to a Bacalhau compute node's job-selection probe (docs/bacalhau.md, "The probe").

A node started with `--job-selection-probe-http URL` POSTs each job it is offered to URL and
bids only when the answer's `shouldBid` is true. Every body version reaches the same reading:
v1.0 sends `{node_id, job_id, spec, callback}` with a legacy spec, v1.1 to v1.4
`{NodeID, Job, Callback}` and v1.5 on `{NodeID, Job}` with a v2 job, keys in any case.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from dashboard.bacalhau.bodies import (
    MAX_DEPTH,
    BacalhauError,
    JobCid,
    fold,
    job_cids,
    legacy_spec_cids,
    nesting,
)
from dashboard.eligibility import selectors
from dashboard.errors import DomainError
from dashboard.models import ApiKey

__all__ = ["POLICIES", "ProbeJob", "answer", "parse_probe", "record_probe"]

# all_blessed: bid only on jobs whose every IPFS CID is blessed; always: bid on every job and
# say in `reason` what is blessed (a node that only wants to be told).
POLICIES = ("all_blessed", "always")
MAX_LISTED = 5  # CIDs named in a reason; the rest are counted


@dataclass(frozen=True)
class ProbeJob:
    node_id: str
    job_id: str
    cids: list[JobCid]
    other_inputs: list[str]  # inputs that are not on IPFS, by field


def _text(value: Any) -> str:
    return value[:200] if isinstance(value, str) else ""


def _get(value: Any, name: str) -> Any:
    """`value`'s member `name` in any case (the last of several, as `fold` keeps it), None."""
    found = None
    if isinstance(value, dict):
        for key, item in value.items():
            if key.lower() == name:
                found = item
    return found


def _count(items: Any) -> int:
    return len(items) if isinstance(items, list) else 0


def _sources(body: dict[str, Any]) -> tuple[int, str]:
    """How many inputs and modules a probe's job names, and the field that holds it: read
    from the body as sent, before anything is folded or any CID is read."""
    job, spec = _get(body, "job"), _get(body, "spec")
    count = 0
    if job is not None:  # v1.1 and later: a v2 models.Job
        tasks = _get(job, "tasks")
        for task in tasks if isinstance(tasks, list) else []:
            params = _get(_get(task, "engine"), "params")
            count += _count(_get(task, "inputsources")) + _count(_get(params, "importmodules"))
            count += _get(params, "entrymodule") is not None
        return count, "Job"
    wasm = _get(spec, "wasm")  # v1.0: a legacy spec
    count += _count(_get(spec, "inputs")) + _count(_get(wasm, "importmodules"))
    return count + (_get(wasm, "entrymodule") is not None), "spec"


def parse_probe(body: Any) -> ProbeJob:
    """A probe body of any version; DomainError 400 naming the field that is wrong, 413
    when its job names more CIDs than an eligibility request may."""
    if not isinstance(body, dict):
        raise DomainError("invalid_probe", "the body must be a JSON object")
    count, field = _sources(body)
    selectors.check_batch_size(count, field=field)
    for name, value in body.items():  # before `fold`, which recurses
        if nesting(value) >= MAX_DEPTH:
            message = f"nested more than {MAX_DEPTH} deep"
            raise DomainError("invalid_probe", f"{name}: {message}", fields={name: message})
    probe = fold(body)
    try:
        if "job" in probe:  # v1.1 and later: a v2 models.Job
            job = probe["job"]
            cids, other = job_cids(job, field="Job")
            job_id = _text(job.get("id")) if isinstance(job, dict) else ""
            node_id = _text(probe.get("nodeid"))
        elif "spec" in probe:  # v1.0: a legacy spec
            cids, other = legacy_spec_cids(probe["spec"], field="spec")
            job_id, node_id = _text(probe.get("job_id")), _text(probe.get("node_id"))
        else:
            raise BacalhauError("Job", "missing: the job (Job, or spec before v1.1)")
    except BacalhauError as exc:
        raise DomainError("invalid_probe", str(exc), fields={exc.field: exc.message}) from None
    return ProbeJob(node_id=node_id, job_id=job_id, cids=cids, other_inputs=other)


def _listed(items: list[str]) -> str:
    shown = ", ".join(items[:MAX_LISTED])
    return shown + (f" and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else "")


def answer(job: ProbeJob) -> dict[str, Any]:
    """`{shouldBid, shouldWait, reason}` from the blessed-CID cache. v1.6 and later read
    `ShouldBid` and `Reason`, which Go matches to these keys; `shouldWait` is for the older."""
    unique = list(dict.fromkeys(c.cid for c in job.cids))
    report = selectors.eligibility(cids=[(c, c) for c in unique]) if unique else None
    not_blessed = [
        f"{r['canonical']} ({r['status']})"
        for r in (report or {}).get("results", [])
        if not r["blessed"]
    ]
    epoch = report["as_of_epoch"] if report is not None else selectors.as_of_epoch()
    if not unique:
        all_blessed, reason = False, "the job reads no IPFS content, so none of it is FIL+ blessed"
    elif not_blessed or job.other_inputs:
        all_blessed = False
        parts = []
        if not_blessed:
            parts.append(f"not FIL+ blessed: {_listed(not_blessed)}")
        if job.other_inputs:
            parts.append(f"not on IPFS: {_listed(job.other_inputs)}")
        reason = "; ".join(parts) + f" (as of epoch {epoch})"
    else:
        all_blessed = True
        reason = f"all {len(unique)} IPFS CIDs of the job are FIL+ blessed (as of epoch {epoch})"
    should_bid = all_blessed or settings.BACALHAU_PROBE_POLICY == "always"
    return {"shouldBid": should_bid, "shouldWait": False, "reason": reason}


def record_probe(key: ApiKey) -> None:
    """Count the probe on the node's key: when it last asked, and how often."""
    ApiKey.objects.filter(pk=key.pk).update(
        probe_count=F("probe_count") + 1, probe_last_at=timezone.now()
    )
