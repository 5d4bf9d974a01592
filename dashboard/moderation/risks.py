"""What a moderator risks by verifying a job: computed here only, for the job API (`risks`),
the job page, the queue's badges and the decision rule (services.decide refuses a
verification until each risk in `Risks.open` is accepted)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from dashboard.eligibility import selectors as eligibility
from dashboard.models import Job, JobResult, Reexecution
from dashboard.moderation.datacap import suggested_datacap
from dashboard.novelty.selectors import novelty_of
from dashboard.reexecution import selectors as reexecutions

__all__ = ["RISK_LABELS", "Risks", "job_risks"]

# The risks a verification must accept, by the name the API and the form use, in the order
# the page lists them.
RISK_LABELS = {
    "inputs_not_blessed": "not every input was blessed when the job ran",
    "nonzero_exit": "the program exited with a non-zero code",
    "rerun_not_match": "no re-execution gave the reported result",
    "node_caught": "the compute node was caught reporting a result its job does not give",
    "result_not_measured": "the result was not measured here, so no DataCap can be suggested",
    "novelty_not_measured": "how much of the result is new data has not been measured yet",
    "novelty_low": "less of the result is new data than NOVELTY_MIN_PERCENT asks",
}


@dataclass(frozen=True)
class Risks:
    inputs: str  # "all", "some", "none" blessed, or "no_inputs"
    blessed_by: dict[str, list[str]]  # input CID -> the claims and deals that blessed it
    exit_code: int | None
    reexecution: str  # the latest re-execution's state (reexecution.selectors.summary)
    node_caught: bool
    result_measured: bool
    novelty: dict[str, Any] | None  # how new the result is (novelty.selectors); None: no result
    datacap_suggested: int | None
    datacap_asked: int | None  # what the decision granted, or None before one
    open: list[str] = field(default_factory=list)  # keys of RISK_LABELS, in their order

    def as_dict(self) -> dict[str, Any]:
        return {
            "inputs": self.inputs,
            "blessed_by": self.blessed_by,
            "exit_code": self.exit_code,
            "reexecution": self.reexecution,
            "node_caught": self.node_caught,
            "result_measured": self.result_measured,
            "novelty": self.novelty,
            "datacap_suggested": self.datacap_suggested,
            "datacap_asked": self.datacap_asked,
            "open": list(self.open),
        }

    def labelled(self) -> list[tuple[str, str]]:
        return [(name, RISK_LABELS[name]) for name in self.open]


def job_risks(job: Job, *, caught: bool | None = None) -> Risks:
    """The risks of verifying `job`. `caught` may be given by a caller that read it for many
    jobs at once (the queue)."""
    inputs = list(job.inputs.all())
    blessed = [item for item in inputs if item.blessed]
    if not inputs:
        coverage = "no_inputs"
    elif len(blessed) == len(inputs):
        coverage = "all"
    else:
        coverage = "some" if blessed else "none"
    try:
        result: JobResult | None = job.result
    except JobResult.DoesNotExist:
        result = None
    rerun = reexecutions.summary(job)["state"]
    is_caught = reexecutions.node_caught(job, counting_this=True) if caught is None else caught
    measured = result is not None and result.car_bytes is not None
    new = novelty_of(job)
    low = (
        new is not None
        and new["percent"] is not None
        and new["percent"] < settings.NOVELTY_MIN_PERCENT
    )
    opened = {
        "inputs_not_blessed": coverage != "all",
        "nonzero_exit": result is not None and result.exit_code != 0,
        # Bundled jobs ran on this dashboard's executor: nothing to re-run them against.
        "rerun_not_match": job.external and rerun != Reexecution.State.MATCH,
        "node_caught": is_caught,
        "result_not_measured": not measured,
        # A result not in the store is already the risk above: nothing here can measure it.
        "novelty_not_measured": measured and (new is None or new["state"] != "measured"),
        "novelty_low": low,
    }
    return Risks(
        inputs=coverage,
        blessed_by={item.cid: eligibility.blessed_by(item.sources) for item in blessed},
        exit_code=result.exit_code if result else None,
        reexecution=rerun,
        node_caught=is_caught,
        result_measured=measured,
        novelty=new,
        datacap_suggested=suggested_datacap(
            result.car_bytes if result else None, settings.DATACAP_REPLICAS
        ),
        datacap_asked=job.datacap_bytes,
        open=[name for name in RISK_LABELS if opened[name]],
    )
