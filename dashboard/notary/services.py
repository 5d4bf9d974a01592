"""The notary side (docs/api.md): pieces of results, verifications, awards, and
the deals and claims on chain that store a job's results.

DataCap may go only to the right data (a piece whose CommP we recomputed from the result),
the right provider (the one holding the results) and the right amount (never more than the
moderator verified, even when awards race: each award locks its job row).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db import transaction
from django.db.models import Q

from chain_scanner.models import Claim, Deal
from dashboard.addresses import id_address
from dashboard.audit import record
from dashboard.content import services as content
from dashboard.eligibility.selectors import as_of_epoch
from dashboard.errors import DomainError, job_not_found
from dashboard.models import ApiKey, Job, JobPiece, JobResult, PieceInAggregate
from dashboard.notary.selectors import awarded_bytes, awarded_bytes_by_job, awards_of_job
from dashboard.novelty.selectors import novelty_of
from dashboard.reexecution import selectors as reexecutions
from executor.aggregate import ProofError, verify_proof
from executor.commp import commp, minimal_piece_size
from executor.storage import ContentNotFound, StorageError

__all__ = [
    "answer",
    "find_job",
    "not_verified_because",
    "chain_flags",
    "chain_storage",
    "holding",
    "refresh_chain_flags",
    "piece_json",
    "register_piece",
    "aggregate_answer",
]


# --- pieces ------------------------------------------------------------------------------------


def register_piece(
    *,
    job_id: str,
    key: ApiKey,
    piece_cid: str,
    piece_size: int,
    payload_cid: str,
    aggregate: dict[str, Any] | None = None,
) -> tuple[JobPiece, PieceInAggregate | None, bool]:
    """A node registers the piece it will store for a job's result: we recompute its CommP.
    With `aggregate`, the piece is stored inside an FRC-0058 aggregate, whose inclusion proof
    is verified here. Returns the piece, the aggregate link, and whether anything was new."""
    job, result = holding(job_id=job_id, key=key)
    if job.state != Job.State.COMPLETED or result is None:
        raise DomainError("job_not_finished", f"job {job_id} has no result yet", status=409)
    if payload_cid != result.result_cid:
        raise DomainError(
            "payload_mismatch",
            f"payload_cid {payload_cid} is not this job's result {result.result_cid}",
            status=409,
        )
    if aggregate is not None:
        _check_inclusion(job_id, key, piece_cid, piece_size, aggregate)
    existing = JobPiece.objects.filter(job=job, piece_cid=piece_cid).first()
    if existing is not None and existing.piece_size != piece_size:
        raise DomainError(
            "piece_conflict",
            f"{piece_cid} is registered with piece_size {existing.piece_size}",
            status=409,
        )
    if existing is None:
        computed = _piece_of(result.result_cid, piece_size)
        if computed != piece_cid:
            record(
                actor=f"node:{key.name}",
                action="piece.refuse",
                target=f"job:{job_id}",
                after={"piece_cid": piece_cid, "piece_size": piece_size, "computed": computed},
                reason="the piece CID does not match the result's CAR",
            )
            raise DomainError(
                "piece_mismatch",
                f"the CAR of {result.result_cid} in a {piece_size}-byte piece is {computed}, "
                f"not {piece_cid}",
                status=409,
            )
    created = False
    with transaction.atomic():
        piece = existing
        if piece is None:
            piece, created = JobPiece.objects.get_or_create(
                job=job,
                piece_cid=piece_cid,
                defaults={"piece_size": piece_size, "payload_cid": payload_cid, "node": key},
            )
            if created:
                record(
                    actor=f"node:{key.name}",
                    action="piece.register",
                    target=f"job:{job_id}",
                    after={"piece_cid": piece_cid, "piece_size": piece_size},
                )
        inside = None
        if aggregate is not None:
            inside, linked = _link_aggregate(piece, aggregate)
            if linked:
                created = True
                record(
                    actor=f"node:{key.name}",
                    action="piece.aggregate",
                    target=f"job:{job_id}",
                    after={
                        "piece_cid": piece_cid,
                        "aggregate_cid": inside.aggregate_cid,
                        "aggregate_size": inside.aggregate_size,
                    },
                )
    if created:
        refresh_chain_flags([job_id])  # the chain may already hold deals of this piece
    return piece, inside, created


def piece_json(piece: JobPiece, inside: PieceInAggregate | None) -> dict[str, Any]:
    """A registration as the API answers it: the piece, and the aggregate it was proven
    inside (None without one)."""
    return {
        "job_id": piece.job_id,
        "piece_cid": piece.piece_cid,
        "piece_size": piece.piece_size,
        "payload_cid": piece.payload_cid,
        "aggregate": None
        if inside is None
        else {"piece_cid": inside.aggregate_cid, "piece_size": inside.aggregate_size},
    }


def _check_inclusion(
    job_id: str, key: ApiKey, piece_cid: str, piece_size: int, aggregate: dict[str, Any]
) -> None:
    """409 naming the failed check when the proof does not put the piece in the aggregate
    (400 when it cannot be read); the refusal is audited."""
    try:
        verify_proof(
            aggregate["piece_cid"],
            aggregate["piece_size"],
            piece_cid,
            piece_size,
            aggregate["proof"],
        )
    except ProofError as exc:
        fields = {"aggregate.proof": exc.code}
        if exc.code == "malformed":
            raise DomainError("invalid_request", f"aggregate.proof: {exc}", fields=fields) from None
        record(
            actor=f"node:{key.name}",
            action="piece.refuse",
            target=f"job:{job_id}",
            after={"piece_cid": piece_cid, "aggregate_cid": aggregate["piece_cid"]},
            reason=f"the inclusion proof failed: {exc.code}",
        )
        raise DomainError(
            "invalid_proof", f"aggregate.proof: {exc}", status=409, fields=fields
        ) from None


def _link_aggregate(piece: JobPiece, aggregate: dict[str, Any]) -> tuple[PieceInAggregate, bool]:
    inside, linked = PieceInAggregate.objects.get_or_create(
        piece=piece,
        aggregate_cid=aggregate["piece_cid"],
        defaults={"aggregate_size": aggregate["piece_size"], "proof": aggregate["proof"]},
    )
    if inside.aggregate_size != aggregate["piece_size"]:
        raise DomainError(
            "aggregate_conflict",
            f"{piece.piece_cid} is registered inside {inside.aggregate_cid} of "
            f"{inside.aggregate_size} bytes",
            status=409,
        )
    return inside, linked


def holding(*, job_id: str, key: ApiKey) -> tuple[Job, JobResult | None]:
    """The job and its result, when `key` is the node that holds its results (the node that
    ran it, or for a bundled job the node of the provider it was recorded with); 404 or 403
    otherwise."""
    job = Job.objects.filter(id=job_id).first()
    if job is None:
        raise job_not_found(job_id)
    result = JobResult.objects.filter(job_id=job_id).first()
    holder = result.provider if result is not None else ""
    if key.scope != ApiKey.Scope.NODE or not (
        job.node_id == key.pk or (job.node_id is None and key.provider and key.provider == holder)
    ):
        raise DomainError(
            "forbidden", f"this key does not hold the results of job {job_id}", status=403
        )
    return job, result


def _piece_of(result_cid: str, piece_size: int) -> str:
    """CommP of the result's CAR (CARv1, the result CID as its single root)."""
    store = content.storage()
    with tempfile.TemporaryDirectory(prefix="filplus-commp-") as tmp:
        path = Path(tmp) / "result.car"
        try:
            with path.open("wb") as out:
                store.export_car(result_cid, out)
        except ContentNotFound:
            raise DomainError(
                "result_unavailable",
                f"{result_cid} is not in this dashboard's store: its piece cannot be checked",
                status=409,
            ) from None
        except StorageError as exc:
            raise DomainError("storage_unavailable", str(exc), status=503) from None
        # Padding earns no DataCap: the piece may be no larger than the result's CAR needs.
        smallest = minimal_piece_size(path.stat().st_size)
        if piece_size > smallest:
            raise DomainError(
                "piece_too_large",
                f"the CAR of {result_cid} is {path.stat().st_size} bytes: the smallest piece "
                f"that holds it is {smallest} bytes, not {piece_size}",
                status=409,
                fields={"piece_size": smallest},
            )
        try:
            with path.open("rb") as car:
                return commp(car, piece_size=piece_size).cid
        except ValueError as exc:
            raise DomainError("piece_size_mismatch", str(exc), status=409) from None


# --- the notary's question and awards ----------------------------------------------------------

RERUN_MISMATCH = "rerun_mismatch"
MISMATCH_REVIEW = (
    "a re-execution gave another result than the reported one after this job was verified: "
    "no DataCap until a moderator confirms the verification or it is revoked"
)


@dataclass(frozen=True)
class Found:
    job: Job
    result: JobResult


def find_job(cid: str, provider: str | None) -> Found:
    """The job a notary's CID belongs to: by result CID or a registered piece CID. When several
    jobs produced the same result, prefer a verified one held by the asked provider."""
    results = list(
        JobResult.objects.select_related("job")
        .filter(Q(result_cid=cid) | Q(job__pieces__piece_cid=cid))
        .distinct()
    )
    if not results:
        raise DomainError(
            "not_found", f"{cid} is neither a job's result nor a registered piece", status=404
        )

    def rank(r: JobResult) -> tuple[bool, bool, str]:
        verified = r.job.moderation_state == Job.Moderation.VERIFIED
        held = provider is None or r.provider == provider
        return (
            verified and held,
            verified,
            r.job.decided_at.isoformat() if r.job.decided_at else "",
        )

    best = max(results, key=rank)
    return Found(job=best.job, result=best)


MAX_AGGREGATE_JOBS = 1000  # sub-pieces listed in one aggregate answer


def aggregate_answer(*, cid: str, provider: str | None) -> dict[str, Any]:
    """`GET /notary/aggregates/{cid}`: the jobs whose results were proven inside this
    FRC-0058 aggregate, each as the notary's question answers for its piece, and the DataCap
    that may go to the aggregate: the verified sub-pieces' remaining DataCap, never more
    than the aggregate's size."""
    links = list(
        PieceInAggregate.objects.filter(aggregate_cid=cid)
        .select_related("piece")
        .order_by("created_at", "id")[: MAX_AGGREGATE_JOBS + 1]
    )
    if not links:
        raise DomainError("not_found", f"no registered piece was proven inside {cid}", status=404)
    size = links[0].aggregate_size
    jobs = []
    for link in links[:MAX_AGGREGATE_JOBS]:
        one = answer(cid=link.piece.piece_cid, provider=provider)
        jobs.append(
            {
                "job_id": link.piece.job_id,
                "piece_cid": link.piece.piece_cid,
                "piece_size": link.piece.piece_size,
                **{
                    name: one[name]
                    for name in (
                        "verified",
                        "reason",
                        "moderation_state",
                        "datacap_bytes",
                        "awarded_bytes",
                        "remaining_bytes",
                        "reexecution",
                        "novelty",
                    )
                },
            }
        )
    remaining = sum(job["remaining_bytes"] for job in jobs if job["verified"])
    return {
        "piece_cid": cid,
        "piece_size": size,
        "jobs": jobs,
        "truncated": len(links) > MAX_AGGREGATE_JOBS,
        "awardable_bytes": min(size, remaining),
    }


def answer(*, cid: str, provider: str | None) -> dict[str, Any]:
    """`GET /notary/verifications/{cid}`: may DataCap go to this data, held by this provider?
    `cid` is canonical, a result CID or a registered piece CID."""
    found = find_job(cid, provider)
    job, holder = found.job, found.result.provider or None
    is_verified = job.moderation_state == Job.Moderation.VERIFIED
    awarded = awarded_bytes(job.id)
    datacap = job.datacap_bytes if is_verified else None
    provider_matches = None if provider is None else provider == holder
    origin = getattr(job, "bacalhau", None) if job.external else None
    reason = not_verified_because(
        job.moderation_state,
        holder,
        provider,
        provider_matches,
        bacalhau_node=f"{origin.node_id} on {origin.orchestrator.url}" if origin else None,
        mismatch_review=job.mismatch_review,
    )
    return {
        "cid": cid,
        "verified": reason is None,
        "reason": reason,
        "job_id": job.id,
        "provider": holder,
        "provider_matches": provider_matches,
        "moderation_state": job.moderation_state,
        "datacap_bytes": datacap,
        "awarded_bytes": awarded,
        "remaining_bytes": max(0, datacap - awarded) if datacap is not None else 0,
        "verified_at": job.decided_at.isoformat().replace("+00:00", "Z")
        if is_verified and job.decided_at
        else None,
        "pieces": [
            {"piece_cid": p.piece_cid, "piece_size": p.piece_size}
            for p in JobPiece.objects.filter(job=job).order_by("created_at", "id")
        ],
        "on_chain": chain_storage(job, found.result),
        "awards": [
            {
                "piece_cid": award.piece_cid,
                "provider": award.provider,
                "aggregate": award.aggregate,
                "bytes": share,
                "chain_state": award.chain_state,
            }
            for award, share in awards_of_job(job.id)
        ],
        "reexecution": reexecutions.summary(job),
        "novelty": novelty_of(job),
    }


def not_verified_because(
    state: str,
    holder: str | None,
    asked: str | None,
    matches: bool | None,
    *,
    bacalhau_node: str | None = None,
    mismatch_review: bool = False,
) -> dict[str, str] | None:
    """Why DataCap may not go to this data (the first reason of several), or None."""
    if state == Job.Moderation.PENDING:
        return {"code": "not_moderated", "message": "no moderator has verified this job yet"}
    if state == Job.Moderation.REJECTED:
        return {"code": "rejected", "message": "a moderator rejected this job"}
    if state == Job.Moderation.REVOKED:
        return {"code": "revoked", "message": "this job's verification was revoked"}
    if state == Job.Moderation.AWAITING_SECOND_APPROVAL:
        return {
            "code": "awaiting_second_approval",
            "message": "a moderator verified this job for more than "
            "DATACAP_SECOND_APPROVAL_BYTES: a second moderator has not approved it yet",
        }
    if mismatch_review:
        return {"code": RERUN_MISMATCH, "message": MISMATCH_REVIEW}
    if holder is None and bacalhau_node is not None:
        return {
            "code": "no_holder",
            "message": f"no storage provider holds the results: the Bacalhau node that ran "
            f"the job ({bacalhau_node}) is not mapped to one (an admin maps Bacalhau nodes "
            "to providers)",
        }
    if holder is None:
        return {
            "code": "no_holder",
            "message": "no storage provider holds the results: the node that ran the job "
            "reported none (the bundled executor reports EXECUTOR_PROVIDER)",
        }
    if matches is False:
        return {
            "code": "other_provider",
            "message": f"the results are held by {holder}, not {asked}",
        }
    return None


# --- on chain ----------------------------------------------------------------------------------


@dataclass
class _Assessment:
    deals: list[dict[str, Any]]
    claims: list[dict[str, Any]]
    on_chain_bytes: int
    flags: list[str]


def _assess(
    *,
    result_cid: str,
    holder: str,
    pieces: set[str],
    deals: list[Deal],
    claims: list[Claim],
    awarded: int,
    epoch: int,
) -> _Assessment:
    """The rules, in one place: which deals and claims store a job's results, how many bytes
    the holder stores (a deal and its claim counted once), and what needs a moderator's look."""
    mine_claims = [c for c in claims if c.piece_cid in pieces]
    mine_deals = [d for d in deals if d.piece_cid in pieces or d.payload_cid == result_cid]
    claimed = {(id_address(c.provider), c.piece_cid) for c in mine_claims}
    on_chain = 0
    flags: set[str] = set()
    deal_rows = []
    for deal in mine_deals:
        status = deal.status_at(epoch)
        deal_rows.append(
            {
                "id": deal.deal_id,
                "provider": deal.provider,
                "piece_cid": deal.piece_cid,
                "piece_size": deal.piece_size,
                "status": status,
            }
        )
        if deal.provider != holder:
            flags.add("other_provider")
        elif status == "active" and (deal.provider, deal.piece_cid) not in claimed:
            on_chain += deal.piece_size
    claim_rows = []
    for claim in mine_claims:
        provider = id_address(claim.provider)
        status = claim.status_at(epoch)
        claim_rows.append(
            {
                "id": claim.claim_id,
                "provider": provider,
                "piece_cid": claim.piece_cid,
                "piece_size": claim.piece_size,
                "status": status,
            }
        )
        if provider != holder:
            flags.add("other_provider")
        elif status == "active":
            on_chain += claim.piece_size
    if on_chain > awarded:
        flags.add("more_on_chain_than_awarded")
    return _Assessment(deal_rows, claim_rows, on_chain, sorted(flags))


def _chain_rows(pieces: set[str], payloads: set[str]) -> tuple[list[Deal], list[Claim]]:
    deals = (
        list(
            Deal.objects.filter(Q(piece_cid__in=pieces) | Q(payload_cid__in=payloads)).order_by(
                "deal_id"
            )
        )
        if pieces or payloads
        else []
    )
    claims = list(Claim.objects.filter(piece_cid__in=pieces).order_by("claim_id")) if pieces else []
    return deals, claims


def chain_storage(job: Job, result: JobResult | None = None) -> dict[str, Any]:
    """Verified deals and claims that store this job's results, and what needs a look.

    A deal counts when its piece is a registered piece of the job or its label is the result
    CID; a claim when its piece is registered. Bytes held by the holding provider are compared
    with what the notary awarded."""
    result = result or JobResult.objects.filter(job=job).first()
    awarded = awarded_bytes(job.id)
    if result is None:
        return {
            "deals": [],
            "claims": [],
            "on_chain_bytes": 0,
            "awarded_bytes": awarded,
            "flags": [],
        }
    pieces = set(JobPiece.objects.filter(job=job).values_list("piece_cid", flat=True))
    deals, claims = _chain_rows(pieces, {result.result_cid})
    view = _assess(
        result_cid=result.result_cid,
        holder=result.provider,
        pieces=pieces,
        deals=deals,
        claims=claims,
        awarded=awarded,
        epoch=as_of_epoch(),
    )
    return {
        "deals": view.deals,
        "claims": view.claims,
        "on_chain_bytes": view.on_chain_bytes,
        "awarded_bytes": awarded,
        "flags": view.flags,
    }


def chain_flags(job_ids: list[str]) -> dict[str, list[str]]:
    """`chain_storage`'s flags for a page of jobs in a fixed number of queries."""
    if not job_ids:
        return {}
    results = {
        job_id: (result_cid, provider)
        for job_id, result_cid, provider in JobResult.objects.filter(
            job_id__in=job_ids
        ).values_list("job_id", "result_cid", "provider")
    }
    pieces: dict[str, set[str]] = {}
    for job_id, piece_cid in JobPiece.objects.filter(job_id__in=job_ids).values_list(
        "job_id", "piece_cid"
    ):
        pieces.setdefault(job_id, set()).add(piece_cid)
    all_pieces = set().union(*pieces.values()) if pieces else set()
    deals, claims = _chain_rows(all_pieces, {cid for cid, _ in results.values()})
    awarded = awarded_bytes_by_job(job_ids)
    epoch = as_of_epoch()
    flags: dict[str, list[str]] = {}
    for job_id, (result_cid, holder) in results.items():
        view = _assess(
            result_cid=result_cid,
            holder=holder,
            pieces=pieces.get(job_id, set()),
            deals=deals,
            claims=claims,
            awarded=awarded.get(job_id, 0),
            epoch=epoch,
        )
        if view.flags:
            flags[job_id] = view.flags
    return flags


REFRESH_BATCH = 500


def refresh_chain_flags(job_ids: list[str] | None = None) -> int:
    """Bring Job.chain_flags up to date; returns how many jobs changed.

    With no ids: every job whose pieces or result CID appear in the scanner's deals or claims,
    and every job flagged now (its flags may have cleared). Runs after each scanner pass and
    after each award."""
    if job_ids is None:
        deal_pieces = Deal.objects.values("piece_cid")
        claim_pieces = Claim.objects.values("piece_cid")
        candidates = set(
            JobPiece.objects.filter(
                Q(piece_cid__in=deal_pieces) | Q(piece_cid__in=claim_pieces)
            ).values_list("job_id", flat=True)
        )
        candidates |= set(
            JobResult.objects.filter(
                result_cid__in=Deal.objects.exclude(payload_cid=None).values("payload_cid")
            ).values_list("job_id", flat=True)
        )
        candidates |= set(Job.objects.exclude(chain_flags="").values_list("id", flat=True))
        job_ids = sorted(candidates)
    changed = 0
    for start in range(0, len(job_ids), REFRESH_BATCH):
        batch = job_ids[start : start + REFRESH_BATCH]
        flags = chain_flags(batch)
        current = dict(Job.objects.filter(id__in=batch).values_list("id", "chain_flags"))
        for job_id, old in current.items():
            new = ",".join(flags.get(job_id, []))
            if new != old:
                changed += Job.objects.filter(id=job_id).update(chain_flags=new)
    return changed
