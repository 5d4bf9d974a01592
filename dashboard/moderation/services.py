"""Moderation: verify a job with a DataCap amount, reject it, revoke a verification, or
confirm one after a re-execution mismatched.

One service for the pages and for `POST /api/v1/jobs/{id}/decision`: the same rules, the same
audit events. A job is decided once: the decision is a conditional UPDATE on the pending
state, so of two moderators deciding at the same moment exactly one wins and the other is
told who did.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from dashboard.access import DECIDERS, require_role
from dashboard.audit import record
from dashboard.errors import DomainError, job_not_found
from dashboard.models import MAX_REASON, AwardShare, Decision, Job, Reexecution, Role
from dashboard.moderation.datacap import format_bytes, parse_datacap
from dashboard.moderation.risks import RISK_LABELS, job_risks
from dashboard.reexecution import selectors as reexecutions
from executor.spec import storable_text

__all__ = ["DECISION_RULE", "approve", "confirm", "decide", "revoke"]

DECISION_RULE = 'decision must be "verify" or "reject"'


def _actor(user: Any) -> str:
    return f"user:{user.get_username()}"


def _snapshot(job: Job) -> dict[str, Any]:
    return {
        "moderation_state": job.moderation_state,
        "datacap_bytes": job.datacap_bytes,
        "decided_at": job.decided_at.isoformat() if job.decided_at else None,
    }


def _conflict(job_id: str) -> DomainError:
    job = Job.objects.filter(id=job_id).first()
    if job is None:
        return job_not_found(job_id)
    last = job.decisions.order_by("-created_at", "-id").first()
    who = f" by {last.actor.removeprefix('user:')}" if last else ""
    when = f" at {job.decided_at:%Y-%m-%d %H:%M:%S} UTC" if job.decided_at else ""
    return DomainError(
        "already_decided",
        f"job {job_id} was already {job.moderation_state}{who}{when}",
        status=409,
    )


def _keep(
    job: Job,
    action: str,
    user: Any,
    reason: str,
    before: dict[str, Any],
    *,
    datacap_bytes: int | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """Keep a decision whose conditional update of the job has won: its Decision row, then
    the job as it now is, then its audit event (`job.<action>`, `after` added to the job's
    snapshot)."""
    Decision.objects.create(
        job_id=job.id,
        action=action,
        datacap_bytes=datacap_bytes,
        reason=reason,
        actor=_actor(user),
        user=user,
    )
    job.refresh_from_db()
    record(
        actor=_actor(user),
        action=f"job.{action}",
        target=f"job:{job.id}",
        before=before,
        after={**_snapshot(job), **(after or {})},
        reason=reason,
    )


def _needs_match(job: Job, state: str) -> bool:
    """REEXECUTE_BEFORE_VERIFY: an external WASM job is verified only once a re-execution of
    it gave the result its node reported (bundled jobs ran here already)."""
    return (
        settings.REEXECUTE_BEFORE_VERIFY
        and state == Job.Moderation.VERIFIED
        and job.external
        and job.engine == Job.Engine.WASM
    )


def _not_reexecuted(job: Job, what: str = "be verified") -> DomainError:
    return DomainError(
        "not_reexecuted",
        f"job {job.id} cannot {what} before a re-execution of it matched the reported "
        f"result (REEXECUTE_BEFORE_VERIFY); {_latest_run(job)}",
        status=409,
    )


def _latest_run(job: Job) -> str:
    latest = reexecutions.summary(job)
    state = latest["state"]
    if state == reexecutions.NOT_RERUN:
        return "it has not been re-executed (ask for a re-execution on its page)"
    if state in (Reexecution.State.FAILED, Reexecution.State.NOT_VERIFIABLE):
        # A node that keeps its module or inputs out of this store gets failed re-runs: its
        # result cannot be checked, which is a risk, not a pass.
        why = latest["error"]
        return f"its latest re-execution is {state} ({why}): its result cannot be checked"
    return f"its latest re-execution is {state}"


def _check_risks(job: Job, accepted: list[str], reason: str) -> list[str]:
    """A verification against a risk (risks.job_risks) names each one accepted, and then says
    why. Returns the risks accepted, for the audit event."""
    unknown = sorted(set(accepted) - set(RISK_LABELS))
    if unknown:
        raise DomainError(
            "invalid_decision",
            f"unknown risks: {', '.join(unknown)}; known: {', '.join(RISK_LABELS)}",
            fields={"accept_risks": "unknown risk"},
        )
    risks = job_risks(job)
    missing = [name for name in risks.open if name not in accepted]
    if missing:
        raise DomainError(
            "risks_not_accepted",
            f"verifying job {job.id} means accepting these risks: "
            + "; ".join(f"{name} ({RISK_LABELS[name]})" for name in missing),
            status=409,
            fields={"accept_risks": missing},
        )
    if risks.open and not reason:
        raise DomainError(
            "invalid_decision",
            "a verification that accepts risks needs a reason",
            fields={"reason": "required when accepting risks"},
        )
    return list(risks.open)


def _check_amount(job: Job, amount: int) -> None:
    """DATACAP_MAX_OVER_SUGGESTION: no more than that many times the suggestion. A result
    with no suggestion (not measured) is a risk accepted instead."""
    suggestion = job_risks(job).datacap_suggested
    if suggestion is None:
        return
    cap = suggestion * settings.DATACAP_MAX_OVER_SUGGESTION
    if amount > cap:
        raise DomainError(
            "datacap_over_cap",
            f"{format_bytes(amount)} is more than {settings.DATACAP_MAX_OVER_SUGGESTION} × the "
            f"suggested {format_bytes(suggestion)} ({cap} bytes at most)",
            fields={"datacap_bytes": f"at most {cap}"},
        )


def decide(
    *,
    job_id: str,
    user: Any,
    decision: str,
    datacap: str | int | None = None,
    reason: str = "",
    accept_risks: list[str] | None = None,
) -> Job:
    """Verify (with a DataCap amount, accepting each risk) or reject (with a reason) a
    finished job, once; approve a verification awaiting a second moderator."""
    require_role(user, *DECIDERS)
    reason = (reason or "").strip()
    if not storable_text(reason):
        raise DomainError(
            "invalid_decision",
            "reason must not contain NUL or a lone UTF-16 surrogate",
            fields={"reason": "not storable text"},
        )
    if len(reason) > MAX_REASON:
        raise DomainError(
            "invalid_decision", "the reason is too long", fields={"reason": "too long"}
        )
    if decision == "confirm":
        if datacap not in (None, ""):
            raise DomainError(
                "invalid_decision",
                "a confirmation keeps the verified amount: it takes no DataCap amount",
                fields={"datacap_bytes": "not allowed with confirm"},
            )
        return confirm(job_id=job_id, user=user, reason=reason)
    if decision == "approve":
        if datacap not in (None, "") or accept_risks:
            raise DomainError(
                "invalid_decision",
                "an approval keeps the verification as it was asked: no amount, no risks",
                fields={"datacap_bytes": "not allowed with approve"},
            )
        return approve(job_id=job_id, user=user, reason=reason)
    if decision == "verify":
        if datacap in (None, ""):
            raise DomainError(
                "invalid_decision",
                "a verification needs a DataCap amount",
                fields={"datacap_bytes": "required"},
            )
        try:
            amount: int | None = parse_datacap(datacap)  # type: ignore[arg-type]
        except ValueError as exc:
            raise DomainError(
                "invalid_decision", str(exc), fields={"datacap_bytes": str(exc)}
            ) from None
        state = Job.Moderation.VERIFIED
    elif decision == "reject":
        if not reason:
            raise DomainError(
                "invalid_decision", "a rejection needs a reason", fields={"reason": "required"}
            )
        amount = None
        state = Job.Moderation.REJECTED
    else:
        raise DomainError(
            "invalid_decision",
            DECISION_RULE,
            fields={"decision": f"got {decision!r}"},
        )
    with transaction.atomic():
        job = Job.objects.filter(id=job_id).first()
        if job is None:
            raise job_not_found(job_id)
        if job.state != Job.State.COMPLETED:
            raise DomainError(
                "job_not_finished",
                f"job {job_id} is {job.state}: only completed jobs can be decided",
                status=409,
            )
        before = _snapshot(job)
        gated = _needs_match(job, state)
        if gated and job.reexecution_verdict != Reexecution.State.MATCH:
            raise _not_reexecuted(job)
        accepted: list[str] = []
        if state == Job.Moderation.VERIFIED and job.moderation_state == Job.Moderation.PENDING:
            accepted = _check_risks(job, accept_risks or [], reason)
            assert amount is not None
            _check_amount(job, amount)
        if (
            state == Job.Moderation.VERIFIED
            and (amount or 0) > settings.DATACAP_SECOND_APPROVAL_BYTES
        ):
            state = Job.Moderation.AWAITING_SECOND_APPROVAL
        now = timezone.now()
        pending = Job.objects.filter(
            id=job_id, moderation_state=Job.Moderation.PENDING, state=Job.State.COMPLETED
        )
        if gated:
            pending = pending.filter(reexecution_verdict=Reexecution.State.MATCH)
        won = pending.update(moderation_state=state, datacap_bytes=amount, decided_at=now)
        if not won:
            job.refresh_from_db()
            if gated and job.moderation_state == Job.Moderation.PENDING:
                raise _not_reexecuted(job)  # a re-execution finished in this moment
            raise _conflict(job_id)
        accepted_risks = {"accepted_risks": accepted} if decision == "verify" else {}
        _keep(job, decision, user, reason, before, datacap_bytes=amount, after=accepted_risks)
    return job


def approve(*, job_id: str, user: Any, reason: str = "") -> Job:
    """A second moderator approves a verification over DATACAP_SECOND_APPROVAL_BYTES: not the
    moderator who verified it, nor the job's submitter (its owner key's user)."""
    require_role(user, *DECIDERS)
    with transaction.atomic():
        job = Job.objects.select_related("owner").filter(id=job_id).first()
        if job is None:
            raise job_not_found(job_id)
        if job.moderation_state != Job.Moderation.AWAITING_SECOND_APPROVAL:
            raise DomainError(
                "not_awaiting_approval",
                f"job {job_id} is {job.moderation_state}: only a verification awaiting a "
                "second approval can be approved",
                status=409,
            )
        first = (
            job.decisions.filter(action=Decision.Action.VERIFY).order_by("-created_at", "-id")
        ).first()
        if first is not None and first.user_id == user.pk:
            raise DomainError(
                "second_approver_required",
                "you verified this job: another moderator must approve it",
                status=403,
            )
        if job.owner is not None and job.owner.user_id == user.pk:
            raise DomainError(
                "second_approver_required",
                "you submitted this job: another moderator must approve its verification",
                status=403,
            )
        before = _snapshot(job)
        won = Job.objects.filter(
            id=job_id, moderation_state=Job.Moderation.AWAITING_SECOND_APPROVAL
        ).update(moderation_state=Job.Moderation.VERIFIED, decided_at=timezone.now())
        if not won:
            raise _conflict(job_id)
        _keep(job, Decision.Action.APPROVE, user, reason, before, datacap_bytes=job.datacap_bytes)
    return job


def confirm(*, job_id: str, user: Any, reason: str) -> Job:
    """A moderator keeps a verification that a later re-execution contradicted: they saw the
    mismatch (Job.mismatch_review) and say why the verification stands. With
    REEXECUTE_BEFORE_VERIFY on, an external WASM job's latest re-execution must have matched
    again first (ask for one: after a verifier's mismatch it runs on the bundled executor).
    The other way out is an admin's revocation."""
    require_role(user, *DECIDERS)
    reason = (reason or "").strip()
    if not reason:
        raise DomainError(
            "invalid_decision",
            "confirming a verification needs a reason",
            fields={"reason": "required"},
        )
    if not storable_text(reason) or len(reason) > MAX_REASON:
        raise DomainError(
            "invalid_decision",
            "the reason must be storable text of at most 4000 characters",
            fields={"reason": "not storable text, or too long"},
        )
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(id=job_id).first()
        if job is None:
            raise job_not_found(job_id)
        if job.moderation_state != Job.Moderation.VERIFIED or not job.mismatch_review:
            raise DomainError(
                "nothing_to_confirm",
                f"job {job_id} is {job.moderation_state} with no re-execution mismatch after "
                "its verification to confirm",
                status=409,
            )
        flagged = Job.objects.filter(
            id=job_id, moderation_state=Job.Moderation.VERIFIED, mismatch_review=True
        )
        if _needs_match(job, Job.Moderation.VERIFIED):
            if job.reexecution_verdict != Reexecution.State.MATCH:
                raise _not_reexecuted(job, "have its verification confirmed")
            flagged = flagged.filter(reexecution_verdict=Reexecution.State.MATCH)
        if not flagged.update(mismatch_review=False):  # a mismatch landed in this moment
            raise _not_reexecuted(job, "have its verification confirmed")
        Decision.objects.create(
            job_id=job_id,
            action=Decision.Action.CONFIRM,
            datacap_bytes=job.datacap_bytes,
            reason=reason,
            actor=_actor(user),
            user=user,
        )
        record(
            actor=_actor(user),
            action="job.confirm",
            target=f"job:{job_id}",
            before={**_snapshot(job), "mismatch_review": True},
            after={**_snapshot(job), "mismatch_review": False},
            reason=reason,
        )
        job.refresh_from_db()
    return job


# What an admin's revocation withdraws: a verification, or one awaiting its second approval.
WITHDRAWABLE = (Job.Moderation.VERIFIED, Job.Moderation.AWAITING_SECOND_APPROVAL)


def revoke(*, job_id: str, user: Any, reason: str) -> Job:
    """An admin withdraws a verification (awaiting a second approval or not), as long as no
    DataCap has been awarded for it."""
    require_role(user, Role.ADMIN)
    reason = (reason or "").strip()
    if not reason:
        raise DomainError(
            "invalid_decision", "a revocation needs a reason", fields={"reason": "required"}
        )
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(id=job_id).first()
        if job is None:
            raise job_not_found(job_id)
        if job.moderation_state not in WITHDRAWABLE:
            raise DomainError(
                "not_verified",
                f"job {job_id} is {job.moderation_state}, not verified",
                status=409,
            )
        if AwardShare.objects.filter(job_id=job_id).exists():
            raise DomainError(
                "has_awards",
                f"DataCap has already been awarded for job {job_id}; it cannot be revoked",
                status=409,
            )
        before = _snapshot(job)
        won = Job.objects.filter(id=job_id, moderation_state=job.moderation_state).update(
            moderation_state=Job.Moderation.REVOKED,
            decided_at=timezone.now(),
            mismatch_review=False,
        )
        if not won:
            raise _conflict(job_id)
        _keep(job, Decision.Action.REVOKE, user, reason, before)
    return job
