"""One job: what it ran on, what it produced, and the decision about it."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from dashboard.access import can_decide, is_admin, role_of
from dashboard.content.previews import ipfs_link, result_previews, stored_size
from dashboard.content.services import storage
from dashboard.errors import DomainError
from dashboard.jobs import provenance
from dashboard.models import Job, Reexecution
from dashboard.moderation import services as moderation
from dashboard.moderation.datacap import format_bytes, parse_datacap, suggested_datacap
from dashboard.moderation.risks import job_risks
from dashboard.notary.services import chain_storage
from dashboard.pages.base import render_page, role_required
from dashboard.pages.forms import (
    ConfirmForm,
    DecisionForm,
    RevokeForm,
    add_service_errors,
    first_error,
)
from dashboard.pages.selectors import JobDetail, job_detail, provider_urls_known, with_epochs
from dashboard.reexecution import selectors as reexecutions
from dashboard.reexecution import services as reexecution
from dashboard.reexecution.diff import with_contents
from executor import outcomes


def typed_amount(value: int | None) -> str:
    """An amount as a person would type it, and exactly the bytes when parsed back."""
    if value is None:
        return ""
    text = format_bytes(value)
    try:
        return text if parse_datacap(text) == value else str(value)
    except ValueError:
        return str(value)


def module_of(job: Job) -> dict[str, Any] | None:
    """A WASM job's module as the page shows it: CID, link and stored size (None when the
    module is not in the store)."""
    wasm = job.spec.get("wasm") if isinstance(job.spec, dict) else None
    cid = wasm.get("module") if isinstance(wasm, dict) else None
    if not isinstance(cid, str) or not cid:
        return None
    return {"cid": cid, "url": ipfs_link(cid), "size": stored_size(cid)}


def runner(run: Reexecution) -> str:
    """Who ran (or runs) a re-execution, as the page names it: a verifier node by its key's
    name and prefix, or the bundled executor's worker."""
    if run.verifier is not None:
        return f"verifier node {run.verifier.name} ({run.verifier.prefix}…)"
    worker = run.ran_by or (run.lease_owner if run.state == Reexecution.State.RUNNING else "")
    if worker.startswith("node:"):  # a verifier key deleted since
        return f"verifier node {worker.removeprefix('node:')}"
    return f"bundled executor ({worker})" if worker else "not run"


def _novelty_shown(novelty: dict[str, Any] | None) -> dict[str, Any] | None:
    """The job's novelty with a link and a share of the result for each source."""
    if novelty is None:
        return None
    total = novelty["total_bytes"] or 0
    sources = [
        {
            **source,
            "url": ipfs_link(source["cid"]),
            "share": round(100 * source["bytes"] / total, 1) if total else 0,
        }
        for source in novelty["sources"]
    ]
    return {**novelty, "sources": sources}


def _page(
    request: HttpRequest,
    detail: JobDetail,
    *,
    status: int = 200,
    error: str = "",
    decision_form: DecisionForm | None = None,
    revoke_form: RevokeForm | None = None,
    confirm_form: ConfirmForm | None = None,
) -> HttpResponse:
    job, result = detail.job, detail.result
    role = role_of(request.user)
    suggestion = suggested_datacap(result.car_bytes if result else None, settings.DATACAP_REPLICAS)
    decidable = job.state == Job.State.COMPLETED and job.moderation_state == Job.Moderation.PENDING
    for item in detail.inputs:
        item.url = ipfs_link(item.cid)  # type: ignore[attr-defined]
        item.blessed_by = provenance.blessed_by(item)  # type: ignore[attr-defined]
        item.retrieval = provenance.reported_for(result.inputs if result else None, item)  # type: ignore[attr-defined]
    revocable = job.moderation_state in moderation.WITHDRAWABLE and detail.award_count == 0
    rerun = reexecutions.summary(job)
    if rerun["state"] == Reexecution.State.MISMATCH:
        # The two versions of stdout, stderr, exitCode and small text outputs, side by side.
        rerun["diff"] = with_contents(storage(), rerun["diff"])
    storage_on_chain = with_epochs(chain_storage(job, result)) if result else None
    shown = result_previews(result.result_cid) if result else None  # read from the result
    providers = [result.provider if result else "", *(a.provider for a, _ in detail.awards)]
    for item in detail.inputs:
        sources = item.sources if isinstance(item.sources, list) else []
        providers += [s["provider"] for s in sources if isinstance(s.get("provider"), str)]
    if storage_on_chain:
        providers += [row["provider"] for row in storage_on_chain["deals"]]
        providers += [row["provider"] for row in storage_on_chain["claims"]]
    risks = job_risks(job)
    novelty = _novelty_shown(risks.novelty)
    # No default decision: the amount starts empty; "use suggestion" (a link, no script)
    # fills it in.
    initial = {"datacap": typed_amount(suggestion)} if request.GET.get("datacap") else {}
    awaiting = job.moderation_state == Job.Moderation.AWAITING_SECOND_APPROVAL
    return render_page(
        request,
        "dashboard/job.html",
        {
            "job": job,
            "not_reproducible": outcomes.NOT_REPRODUCIBLE,
            "origin": getattr(job, "bacalhau", None) if job.external else None,
            "result": result,
            "spec_json": json.dumps(job.spec, indent=2, sort_keys=True),
            "inputs": detail.inputs,
            "decisions": detail.decisions,
            "awarded_bytes": detail.awarded_bytes,
            "award_count": detail.award_count,
            "stdout": shown[0] if shown else None,
            "stderr": shown[1] if shown else None,
            "outputs": shown[2] if shown else None,
            "result_url": ipfs_link(result.result_cid) if result else "",
            "suggestion": suggestion,
            "replicas": settings.DATACAP_REPLICAS,
            "decidable": decidable,
            "show_decide": decidable and can_decide(role),
            "show_revoke": revocable and is_admin(role),
            "suggestion_text": typed_amount(suggestion),
            "risks": risks,
            "novelty": novelty,
            "novelty_min": settings.NOVELTY_MIN_PERCENT,
            "decision_form": decision_form or DecisionForm(initial=initial, risks=risks.labelled()),
            "show_approve": awaiting and can_decide(role),
            "revoke_form": revoke_form or RevokeForm(),
            "error": error,
            "storage": storage_on_chain,
            "provider_urls": provider_urls_known(providers),
            "pieces": detail.pieces,
            "awards": detail.awards,
            "module": module_of(job),
            "reexecution": rerun,
            # An external WASM job whose latest re-execution could not check its result.
            "unchecked": job.external
            and rerun["deterministic"]
            and rerun["state"] in (Reexecution.State.FAILED, Reexecution.State.NOT_VERIFIABLE),
            "reexecutions": [(run, runner(run)) for run in detail.reexecutions],
            "latest_runner": runner(detail.reexecutions[0]) if detail.reexecutions else "",
            "show_reexecute": job.state == Job.State.COMPLETED and can_decide(role),
            "show_confirm": job.mismatch_review and can_decide(role),
            "confirm_form": confirm_form or ConfirmForm(),
            "checks_before_verify": settings.REEXECUTE_BEFORE_VERIFY
            and job.external
            and job.engine == Job.Engine.WASM,
        },
        status=status,
    )


def _detail(job_id: str) -> JobDetail:
    detail = job_detail(job_id)
    if detail is None:
        raise Http404(f"no job {job_id}")
    return detail


@role_required()
def job(request: HttpRequest, job_id: str) -> HttpResponse:
    return _page(request, _detail(job_id))


@require_POST
@role_required()
def decide(request: HttpRequest, job_id: str) -> HttpResponse:
    """Verify or reject. The form reads the input; the service checks the role, the amount,
    the reason and that the job is still pending. A refusal is shown on the job page with its
    HTTP status (400, 403, 409)."""
    detail = _detail(job_id)
    if request.POST.get("decision") == "approve":
        return _approve(request, job_id)
    form = DecisionForm(request.POST, risks=job_risks(detail.job).labelled())
    if not form.is_valid():
        return _page(
            request, _detail(job_id), status=400, error=first_error(form), decision_form=form
        )
    decision = form.cleaned_data["decision"]
    try:
        moderation.decide(
            job_id=job_id,
            user=request.user,
            decision=decision,
            datacap=form.cleaned_data["datacap"] if decision == "verify" else None,
            reason=form.cleaned_data["reason"],
            accept_risks=form.accepted_risks() if decision == "verify" else None,
        )
    except DomainError as err:
        add_service_errors(form, err.fields, err.message)
        if err.code == "risks_not_accepted":  # each unticked risk says so beside its box
            for name in (err.fields or {}).get("accept_risks", []):
                if f"accept_{name}" in form.fields:
                    form.add_error(f"accept_{name}", "Tick to accept this risk, or reject.")
        message = err.message
        if err.code == "already_decided":  # someone else was quicker: say ours did not count
            message = f"Your decision was not recorded: {message}."
        return _page(request, _detail(job_id), status=err.status, error=message, decision_form=form)
    detail = _detail(job_id)
    if detail.job.moderation_state == Job.Moderation.AWAITING_SECOND_APPROVAL:
        messages.success(
            request,
            f"Job {job_id} verified with {format_bytes(detail.job.datacap_bytes)}: more than "
            "DATACAP_SECOND_APPROVAL_BYTES, so it awaits a second moderator's approval.",
        )
    elif decision == "verify":
        messages.success(
            request, f"Job {job_id} verified with {format_bytes(detail.job.datacap_bytes)}."
        )
    else:
        messages.success(request, f"Job {job_id} rejected.")
    return redirect("dashboard:job", job_id=job_id)


def _approve(request: HttpRequest, job_id: str) -> HttpResponse:
    """A second moderator approves a verification awaiting it; the service checks who."""
    try:
        moderation.approve(job_id=job_id, user=request.user, reason=request.POST.get("reason", ""))
    except DomainError as err:
        return _page(request, _detail(job_id), status=err.status, error=err.message)
    messages.success(request, f"The verification of job {job_id} is approved.")
    return redirect("dashboard:job", job_id=job_id)


@require_POST
@role_required()
def reexecute(request: HttpRequest, job_id: str) -> HttpResponse:
    """Ask for a re-execution; the service checks the role and that the job completed."""
    _detail(job_id)
    try:
        _, created = reexecution.request(job_id=job_id, user=request.user)
    except DomainError as err:
        return _page(request, _detail(job_id), status=err.status, error=err.message)
    if created:
        messages.success(request, f"A re-execution of job {job_id} is queued.")
    else:
        messages.info(request, f"A re-execution of job {job_id} is already queued or running.")
    return redirect("dashboard:job", job_id=job_id)


@require_POST
@role_required()
def revoke(request: HttpRequest, job_id: str) -> HttpResponse:
    _detail(job_id)
    form = RevokeForm(request.POST)
    try:
        moderation.revoke(job_id=job_id, user=request.user, reason=request.POST.get("reason", ""))
    except DomainError as err:
        add_service_errors(form, err.fields, err.message)
        return _page(
            request, _detail(job_id), status=err.status, error=err.message, revoke_form=form
        )
    messages.success(request, f"The verification of job {job_id} was revoked.")
    return redirect("dashboard:job", job_id=job_id)


@require_POST
@role_required()
def confirm(request: HttpRequest, job_id: str) -> HttpResponse:
    """Keep a verification after a re-execution mismatched; the service checks the role, the
    reason, and (REEXECUTE_BEFORE_VERIFY) that a later re-execution matched."""
    _detail(job_id)
    form = ConfirmForm(request.POST)
    try:
        moderation.confirm(job_id=job_id, user=request.user, reason=request.POST.get("reason", ""))
    except DomainError as err:
        add_service_errors(form, err.fields, err.message)
        return _page(
            request, _detail(job_id), status=err.status, error=err.message, confirm_form=form
        )
    messages.success(request, f"The verification of job {job_id} stands (confirmed).")
    return redirect("dashboard:job", job_id=job_id)
