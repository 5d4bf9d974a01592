"""A verifier node: re-run other nodes' jobs that a dashboard queued for re-execution, and
report the result CID each run gave (the dashboard compares it with the one reported).

`python -m executor verify --api URL --api-key KEY` with a node key made with
`create_api_key --verifier`. Each run has the original's spec and limits and runs on this
node's storage (IPFS_API_URL, or the embedded store under DATA_DIR), as `wasm run` does. A
thread renews the run's lease every third of it; when the dashboard says the lease is lost
(it gave the run to someone else), or the run's deadline passes (the dashboard takes a run
back then, however often it was renewed), the run stops and nothing is reported.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from executor.api_client import ApiError, DashboardClient
from executor.retrieval import RetrievalSettings
from executor.run import JobCancelled, JobFailed, run_job
from executor.spec import SpecError, parse_spec
from executor.storage import Storage
from executor.wasm import ModuleCache

__all__ = ["verify_one"]


def _seconds_left(lease_until: str) -> float:
    until = datetime.fromisoformat(lease_until.replace("Z", "+00:00"))
    return max(0.0, until.timestamp() - time.time())


class _Renewer(threading.Thread):
    def __init__(self, client: DashboardClient, task: dict[str, Any]) -> None:
        super().__init__(name=f"lease-{task['id']}", daemon=True)
        self.client = client
        self.run_id = int(task["id"])
        self.every = max(0.2, _seconds_left(task["lease_until"]) / 3)
        # A dashboard from before deadlines sends none: then only the lease bounds the run.
        deadline = task.get("deadline")
        self.ends = time.monotonic() + _seconds_left(deadline) if deadline else None
        self.stopped = threading.Event()
        self.stop_run = threading.Event()
        self.lost = False

    def run(self) -> None:
        while not self.stopped.wait(self._pause()):
            if self.ends is not None and time.monotonic() >= self.ends:
                self.lost = True  # the dashboard takes the run back at its deadline
                self.stop_run.set()
                return
            try:
                self.client.renew_reexecution(self.run_id)
            except ApiError as exc:
                if exc.code in ("lease_lost", "not_found"):
                    self.lost = True
                    self.stop_run.set()
                    return
                # Unreachable for a moment: try again; if the lease lapses meanwhile, the
                # dashboard refuses the next renewal and the report.

    def _pause(self) -> float:
        if self.ends is None:
            return self.every
        return max(0.0, min(self.every, self.ends - time.monotonic()))

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=5)


def verify_one(
    client: DashboardClient,
    storage: Storage,
    cache: ModuleCache,
    say: Callable[[str], None],
    retrieval: RetrievalSettings | None = None,
) -> dict[str, Any] | None:
    """Claim one re-execution, run it, report it. None when nothing was queued; otherwise
    {"job_id", "state"} with the dashboard's verdict, or state "lost" when the lease was.

    Inputs missing here are fetched as the original run's were: from the locations the
    dashboard names, then the routing and gateways of `retrieval`."""
    task = client.claim_reexecution()
    if task is None:
        return None
    say(f"re-executing job {task['job_id']} (re-execution {task['id']})")
    renewer = _Renewer(client, task)
    renewer.start()
    outcome: dict[str, Any] | None = None
    try:
        result = run_job(
            parse_spec(task["spec"]),
            storage,
            cache=cache,
            cancel=renewer.stop_run,
            locate=client.locations,
            retrieval=retrieval,
        )
        outcome = {
            "result_cid": result.result_cid,
            "exit_code": result.exit_code,
            "runtime_ms": result.runtime_ms,
            "receipt": result.receipt,
        }
    except JobCancelled:
        pass  # only the renewer cancels, when the lease is lost
    except (JobFailed, SpecError) as exc:
        outcome = {"error": str(exc)}
        if isinstance(exc, JobFailed) and exc.outcome is not None:
            outcome["outcome"] = exc.outcome  # how it ended: some endings are not reproducible
    finally:
        renewer.stop()
    if outcome is None or renewer.lost:
        return {"job_id": task["job_id"], "state": "lost"}
    answer = client.report_reexecution(int(task["id"]), outcome)
    return {"job_id": task["job_id"], "state": answer["state"]}
