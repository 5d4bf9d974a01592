"""Reading re-executions: a job's latest run as every page and answer shows it, and the
compute nodes' records. The one reader of a job's runs."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Q

from dashboard.models import ApiKey, BacalhauExecution, Job, JobResult, Reexecution

__all__ = ["NOT_RERUN", "deterministic", "node_records", "summary"]

# A job's state before any re-execution of it (its name in the API).
NOT_RERUN = "not_verified_by_rerun"


def deterministic(job: Job) -> bool:
    return job.engine == Job.Engine.WASM


def summary(job: Job) -> dict[str, Any]:
    """A job's re-execution state as the job API and the notary show it (its latest run)."""
    runs = sorted(job.reexecutions.all(), key=lambda r: (r.created_at, r.pk), reverse=True)
    latest = runs[0] if runs else None
    try:
        reported: str | None = job.result.result_cid
    except JobResult.DoesNotExist:
        reported = None
    return {
        "state": latest.state if latest else NOT_RERUN,
        "deterministic": deterministic(job),
        "runs": len(runs),
        "reason": latest.reason if latest else None,
        "requested_by": latest.requested_by if latest else None,
        "reported_cid": reported,
        "rerun_cid": (latest.result_cid or None) if latest else None,
        "exit_code": latest.exit_code if latest else None,
        "runtime_ms": latest.runtime_ms if latest else None,
        "ran_by": (latest.ran_by or None) if latest else None,
        "attempts": latest.attempts if latest else 0,
        "started_at": latest.started_at if latest else None,
        "finished_at": latest.finished_at if latest else None,
        "diff": latest.diff if latest else None,
        "receipt": latest.receipt if latest else None,
        "error": (latest.error or None) if latest else None,
        "refusal": (latest.refusal or None) if latest else None,
        "mismatch_review": job.mismatch_review,
    }


def _run_counts(node: str) -> dict[Any, dict[str, int]]:
    """Per node (`node`: the job's field naming it): re-executions of its jobs that failed,
    and that were refused for a quota. One query."""
    rows = (
        Reexecution.objects.filter(
            Q(state=Reexecution.State.FAILED) | Q(refusal=Reexecution.Refusal.QUOTA),
            **{f"job__{node}__isnull": False},
        )
        .values(f"job__{node}")
        .annotate(
            failed=Count("id", filter=Q(state=Reexecution.State.FAILED)),
            over_quota=Count("id", filter=Q(refusal=Reexecution.Refusal.QUOTA)),
        )
        .order_by()
    )
    return {
        row[f"job__{node}"]: {"failed": row["failed"], "over_quota": row["over_quota"]}
        for row in rows
    }


def node_records() -> list[dict[str, Any]]:
    """Per compute node (each node key, each Bacalhau node): completed jobs reported, and of
    those re-executed, matched and mismatched (by each job's latest re-execution, WASM and
    Docker alike); `caught` when a WASM job's latest re-execution mismatched; re-executions
    that `failed` (a node keeping its module or inputs out of our store: a risk) and that
    were refused `over_quota`; and for a verifier node key, the runs it `overran` (held past
    their deadline, taken back). Five queries."""
    done = Q(state=Job.State.COMPLETED, external=True)
    none = {"failed": 0, "over_quota": 0}
    by_key = _run_counts("node_id")
    by_bacalhau = _run_counts("bacalhau__node_id")

    def counts(prefix: str) -> dict[str, Any]:
        def where(**extra: Any) -> Q:
            return Q(
                **{f"{prefix}{k}": v for k, v in {"state": Job.State.COMPLETED, **extra}.items()}
            )

        match, mismatch = Reexecution.State.MATCH, Reexecution.State.MISMATCH
        return {
            "reported": Count(f"{prefix}id", filter=where()),
            "reexecuted": Count(
                f"{prefix}id", filter=where(reexecution_verdict__in=[match, mismatch])
            ),
            "matched": Count(f"{prefix}id", filter=where(reexecution_verdict=match)),
            "mismatched": Count(f"{prefix}id", filter=where(reexecution_verdict=mismatch)),
            "caught": Count(
                f"{prefix}id", filter=where(reexecution_verdict=mismatch, engine=Job.Engine.WASM)
            ),
        }

    counted = ("reported", "reexecuted", "matched", "mismatched")
    records: list[dict[str, Any]] = []
    keys = (
        ApiKey.objects.filter(scope=ApiKey.Scope.NODE)
        .annotate(**counts("node_jobs__"))
        .order_by("name", "prefix")
        .values("pk", "name", "prefix", "provider", "revoked_at", "verifier", *counted, "caught")
    )
    overran = dict(
        Reexecution.objects.filter(overrun_by__isnull=False)
        .values("overrun_by")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("overrun_by", "n")
    )
    for key in keys:
        records.append(
            {
                "kind": "key",
                "node": key["name"],
                "id": key["prefix"],
                "provider": key["provider"] or None,
                "revoked": key["revoked_at"] is not None,
                **{k: key[k] for k in counted},
                "caught": key["caught"] > 0,
                **by_key.get(key["pk"], none),
                "verifier": key["verifier"],
                "overran": overran.get(key["pk"], 0),
            }
        )
    # A Bacalhau node is its id on the orchestrator that reports it.
    bacalhau = (
        Job.objects.filter(done, bacalhau__isnull=False)
        .values("bacalhau__orchestrator__url", "bacalhau__node_id")
        .annotate(**counts(""))
        .order_by("bacalhau__node_id", "bacalhau__orchestrator__url")
    )
    for row in bacalhau:
        records.append(
            {
                "kind": "bacalhau",
                "node": row["bacalhau__node_id"],
                "id": row["bacalhau__orchestrator__url"],
                "provider": None,
                "revoked": False,
                **{k: row[k] for k in counted},
                "caught": row["caught"] > 0,
                **by_bacalhau.get(row["bacalhau__node_id"], none),
                "verifier": False,
                "overran": 0,
            }
        )
    return records


def same_node(job: Job) -> Q | None:
    """The jobs of the compute node that ran `job`: its key, or its Bacalhau node (the node
    id on the orchestrator that reported it: another orchestrator's node of that id is
    another node); None when no node is known."""
    if job.node_id is not None:
        return Q(node_id=job.node_id)
    origin = (
        BacalhauExecution.objects.filter(job_id=job.id)
        .values_list("orchestrator_id", "node_id")
        .first()
    )
    if origin is None or not origin[1]:
        return None
    return Q(bacalhau__orchestrator_id=origin[0], bacalhau__node_id=origin[1])


def node_caught(job: Job, *, counting_this: bool = False) -> bool:
    """The one "node caught" rule: the compute node that ran `job` has a WASM job whose
    latest re-execution mismatched; `counting_this` counts `job` itself (a moderator's risk),
    else only its other jobs (whether to re-run this one)."""
    same = same_node(job)
    if same is None:
        return False
    caught = Job.objects.filter(
        same, engine=Job.Engine.WASM, reexecution_verdict=Reexecution.State.MISMATCH
    )
    if not counting_this:
        caught = caught.exclude(id=job.id)
    return caught.exists()
