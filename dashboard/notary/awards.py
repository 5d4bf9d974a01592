"""Awards (docs/api.md): DataCap the notary gives to one deal, of a job's own result piece or
of an FRC-0058 aggregate of several jobs' pieces, and what the chain made of each award.

The amount is never more than moderators verified, even when awards race: an award locks
the rows of every job whose DataCap it spends (in id order, so two awards never wait on each
other), and each job's awarded bytes are the sum of its shares.

Following an award to the chain (`follow_awards`, after every scanner pass) is a pure
function of the award and the deals and claims on its piece, worked out again each time, so
a reorg that undoes a claim undoes its effect too.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Prefetch, Q, QuerySet, Sum

from chain_scanner.models import Claim, ClaimEvent, Deal
from dashboard.addresses import id_address
from dashboard.audit import record
from dashboard.eligibility.selectors import as_of_epoch
from dashboard.errors import DomainError
from dashboard.models import ApiKey, Award, AwardShare, Job, JobPiece, JobResult, PieceInAggregate
from dashboard.notary.selectors import awarded_bytes, awarded_bytes_by_job
from dashboard.notary.services import (
    MISMATCH_REVIEW,
    find_job,
    not_verified_because,
    refresh_chain_flags,
)

__all__ = [
    "AwardFilters",
    "award_json",
    "award_page",
    "awarded_on_page",
    "follow_awards",
    "follow_chain",
    "landing",
    "record_award",
]

State = Award.ChainState


# --- taking an award ---------------------------------------------------------------------------


def record_award(
    *,
    key: ApiKey,
    provider: str,
    piece_cid: str,
    piece_size: int,
    cid: str | None = None,
    datacap_bytes: int | None = None,
) -> tuple[dict[str, Any], bool]:
    """`POST /notary/awards`: DataCap awarded to one deal of `piece_cid` with `provider`.
    The piece is a job's registered result piece (`cid`, when given, names the job by its
    result or piece CID), or an aggregate that registered pieces were proven inside; then
    the award spends the verified sub-pieces' remaining DataCap, `datacap_bytes` of it
    (default: all that may go, at most the aggregate's size). Idempotent on (piece, provider)."""
    links = list(
        PieceInAggregate.objects.filter(aggregate_cid=piece_cid)
        .select_related("piece")
        .order_by("created_at", "id")
    )
    if links:
        if cid is not None and cid != piece_cid:
            raise DomainError(
                "invalid_request",
                f"{piece_cid} is an aggregate: cid must be the aggregate's piece CID or absent",
                fields={"cid": "not_the_aggregate"},
            )
        award, created = _award_aggregate(
            key, provider, piece_cid, piece_size, datacap_bytes, links
        )
    else:
        if datacap_bytes is not None and datacap_bytes != piece_size:
            raise DomainError(
                "invalid_request",
                "an award of a job's own piece spends its piece_size: datacap_bytes may only "
                "differ for an aggregate",
                fields={"datacap_bytes": "not_an_aggregate"},
            )
        award, created = _award_piece(key, provider, piece_cid, piece_size, cid or piece_cid)
    if created:
        follow_awards([award.id])  # the claim may already be on chain
        refresh_chain_flags(sorted({s.job_id for s in award.shares.all()}))
        award.refresh_from_db()
    return award_json(award), created


def _existing(piece_cid: str, provider: str, piece_size: int, aggregate: bool) -> Award | None:
    existing = Award.objects.filter(piece_cid=piece_cid, provider=provider).first()
    if existing is None:
        return None
    if existing.piece_size == piece_size and existing.aggregate == aggregate:
        return existing
    raise DomainError(
        "award_conflict",
        f"{piece_cid} was already awarded to {provider} with other details",
        status=409,
    )


def _refuse_mismatched(provider: str) -> None:
    if not settings.NOTARY_REFUSE_MISMATCHED_PROVIDERS:
        return
    other = Award.objects.filter(provider=provider, chain_state=State.MISMATCHED_PROVIDER).first()
    if other is not None:
        raise DomainError(
            "provider_mismatched",
            f"{provider} was awarded {other.piece_cid}, which {other.chain_provider} claimed: "
            "no more awards to it (NOTARY_REFUSE_MISMATCHED_PROVIDERS)",
            status=409,
        )


def _award_piece(
    key: ApiKey, provider: str, piece_cid: str, piece_size: int, cid: str
) -> tuple[Award, bool]:
    found = find_job(cid, provider)
    with transaction.atomic():
        job = Job.objects.select_for_update().get(id=found.job.id)
        existing = _existing(piece_cid, provider, piece_size, aggregate=False)
        if existing is not None:
            if existing.shares.filter(job=job).exists():
                return existing, False
            raise DomainError(
                "award_conflict",
                f"{piece_cid} was already awarded to {provider} for another job",
                status=409,
            )
        if job.moderation_state == Job.Moderation.REVOKED:
            raise DomainError(
                "revoked", f"the verification of job {job.id} was revoked", status=409
            )
        if job.moderation_state != Job.Moderation.VERIFIED:
            raise DomainError(
                "not_verified", f"job {job.id} is {job.moderation_state}, not verified", status=409
            )
        if job.mismatch_review:
            raise DomainError("rerun_mismatch", f"job {job.id}: {MISMATCH_REVIEW}", status=409)
        holder = found.result.provider
        if provider != holder:
            raise DomainError(
                "wrong_provider",
                f"job {job.id}'s results are held by {holder or 'no provider'}, not {provider}",
                status=409,
            )
        piece = JobPiece.objects.filter(job=job, piece_cid=piece_cid).first()
        if piece is None:
            raise DomainError(
                "unknown_piece",
                f"{piece_cid} is neither a registered piece of job {job.id} nor an aggregate "
                "one was proven inside",
                status=409,
            )
        if piece.piece_size != piece_size:
            raise DomainError(
                "piece_size_mismatch",
                f"{piece_cid} was registered as {piece.piece_size} bytes, not {piece_size}",
                status=409,
            )
        _refuse_mismatched(provider)
        awarded = awarded_bytes(job.id)
        remaining = (job.datacap_bytes or 0) - awarded
        if piece_size > remaining:
            raise DomainError(
                "exceeds_remaining",
                f"{piece_size} bytes exceed the {remaining} bytes of DataCap left for job {job.id}",
                status=409,
            )
        award = _create(key, provider, piece_cid, piece_size, aggregate=False)
        _share(award, key, job, piece, piece_size, awarded)
    return award, True


def _award_aggregate(
    key: ApiKey,
    provider: str,
    piece_cid: str,
    piece_size: int,
    datacap_bytes: int | None,
    links: list[PieceInAggregate],
) -> tuple[Award, bool]:
    size = links[0].aggregate_size
    if piece_size != size:
        raise DomainError(
            "piece_size_mismatch",
            f"the aggregate {piece_cid} was registered as {size} bytes, not {piece_size}",
            status=409,
        )
    pieces = {link.piece.job_id: link.piece for link in reversed(links)}  # first link wins
    order = list(dict.fromkeys(link.piece.job_id for link in links))  # registration order
    with transaction.atomic():
        locked = {
            job.id: job
            for job in Job.objects.select_for_update().filter(id__in=order).order_by("id")
        }
        existing = _existing(piece_cid, provider, piece_size, aggregate=True)
        if existing is not None:
            spent = existing.shares.aggregate(total=Sum("bytes"))["total"] or 0
            if datacap_bytes is None or datacap_bytes == spent:
                return existing, False
            raise DomainError(
                "award_conflict",
                f"{piece_cid} was already awarded to {provider} for {spent} bytes",
                status=409,
            )
        _refuse_mismatched(provider)
        holders = dict(JobResult.objects.filter(job_id__in=order).values_list("job_id", "provider"))
        awarded = awarded_bytes_by_job(order)
        open_: list[tuple[Job, int]] = []  # verified sub-pieces with DataCap left, in order
        for job_id in order:
            job = locked[job_id]
            holder = holders.get(job_id) or None
            reason = not_verified_because(
                job.moderation_state,
                holder,
                provider,
                provider == holder,
                mismatch_review=job.mismatch_review,
            )
            left = (job.datacap_bytes or 0) - awarded.get(job_id, 0)
            if reason is None and left > 0:
                open_.append((job, left))
        awardable = min(size, sum(left for _, left in open_))
        amount = awardable if datacap_bytes is None else datacap_bytes
        if awardable == 0:
            raise DomainError(
                "nothing_to_award",
                f"no job proven inside {piece_cid} is verified with DataCap left for {provider}"
                " (GET /notary/aggregates/{cid} says why, sub-piece by sub-piece)",
                status=409,
            )
        if amount > awardable:
            raise DomainError(
                "exceeds_remaining",
                f"{amount} bytes exceed the {awardable} bytes of DataCap that may go to "
                f"{piece_cid}",
                status=409,
                fields={"datacap_bytes": awardable},
            )
        award = _create(key, provider, piece_cid, piece_size, aggregate=True)
        rest = amount
        for job, left in open_:
            if rest == 0:
                break
            share = min(left, rest)
            _share(award, key, job, pieces[job.id], share, awarded.get(job.id, 0))
            rest -= share
    return award, True


def _create(
    key: ApiKey, provider: str, piece_cid: str, piece_size: int, *, aggregate: bool
) -> Award:
    try:
        with transaction.atomic():  # a savepoint: a racing award of another job's piece
            return Award.objects.create(
                piece_cid=piece_cid,
                provider=provider,
                piece_size=piece_size,
                aggregate=aggregate,
                notary=key,
                epoch=as_of_epoch(),
            )
    except IntegrityError:
        raise DomainError(
            "award_conflict",
            f"{piece_cid} was awarded to {provider} by another request at this moment: "
            "ask again to see it",
            status=409,
        ) from None


def _share(award: Award, key: ApiKey, job: Job, piece: JobPiece, share: int, before: int) -> None:
    AwardShare.objects.create(award=award, job=job, piece=piece, bytes=share)
    record(
        actor=f"notary:{key.name}",
        action="notary.award",
        target=f"job:{job.id}",
        before={"awarded_bytes": before},
        after={
            "awarded_bytes": before + share,
            "piece_cid": award.piece_cid,
            "provider": award.provider,
            "piece_size": award.piece_size,
            **({"sub_piece_cid": piece.piece_cid} if award.aggregate else {}),
        },
    )


# --- following awards to the chain -------------------------------------------------------------


@dataclass(frozen=True)
class Landing:
    state: str
    claim_id: int | None = None
    deal_id: int | None = None
    provider: str = ""


def _claim_landing(claim: Claim, removed_at: int | None) -> Landing:
    """A claim by the awarded provider: landed, unless removed before its minimum term."""
    provider = id_address(claim.provider)
    if claim.removed and (removed_at is None or removed_at < claim.term_start + claim.term_min):
        return Landing(State.REMOVED, claim_id=claim.claim_id, provider=provider)
    return Landing(State.LANDED, claim_id=claim.claim_id, provider=provider)


def _deal_landing(deal: Deal) -> Landing | None:
    """A verified deal by the awarded provider: landed once its sector activated, removed when
    slashed or gone from market state before its end epoch; None while not activated."""
    if deal.sector_start_epoch <= 0:
        return None  # not activated (yet, or ever)
    early = deal.removed_epoch is not None and deal.removed_epoch < deal.end_epoch
    if deal.slash_epoch != -1 or early:
        return Landing(State.REMOVED, deal_id=deal.deal_id, provider=deal.provider)
    return Landing(State.LANDED, deal_id=deal.deal_id, provider=deal.provider)


def landing(
    award: Award,
    claims: list[Claim],
    deals: list[Deal],
    removed_at: dict[int, int],
    epoch: int,
) -> Landing:
    """The one rule for what the chain made of an award, given the claims and verified deals
    on its piece (any provider; those from before the award are left out) and the height
    each removed claim was removed at:

    - `landed`: a claim by the awarded provider (or its verified deal, activated), not removed
      before its minimum term; a live one is preferred over one that ended;
    - `removed`: the awarded provider's only claims were removed, or deals slashed, early;
    - `mismatched_provider`: only other providers claimed (or activated a deal on) the piece;
    - `not_landed`: nothing, AWARD_LANDING_EPOCHS after the award;
    - `awaiting`: nothing yet, within that window."""
    own: list[Landing] = []
    other: list[Landing] = []
    # Only what the award could have led to: a claim (or a deal's sector) from the epoch it
    # was taken on. The same piece stored before (results of deterministic jobs repeat) says
    # nothing of this award.
    claims = [c for c in claims if c.term_start >= award.epoch]
    deals = [d for d in deals if d.sector_start_epoch >= award.epoch]
    for claim in sorted(claims, key=lambda c: c.claim_id):
        found = _claim_landing(claim, removed_at.get(claim.claim_id))
        (own if found.provider == award.provider else other).append(found)
    for deal in sorted(deals, key=lambda d: d.deal_id):
        found_deal = _deal_landing(deal)
        if found_deal is not None:
            (own if found_deal.provider == award.provider else other).append(found_deal)
    if own:
        landed = [one for one in own if one.state == State.LANDED]
        return (landed or own)[0]
    if other:
        first = other[0]
        return Landing(State.MISMATCHED_PROVIDER, first.claim_id, first.deal_id, first.provider)
    if epoch >= award.epoch + settings.AWARD_LANDING_EPOCHS:
        return Landing(State.NOT_LANDED)
    return Landing(State.AWAITING)


FOLLOW_BATCH = 500


def follow_awards(award_ids: list[int] | None = None) -> int:
    """Work out every award's chain state again (or those of `award_ids`) at the scanner's
    epoch; returns how many changed. Each change is audited."""
    epoch = as_of_epoch()
    awards = Award.objects.order_by("id")
    if award_ids is not None:
        awards = awards.filter(id__in=award_ids)
    changed = 0
    last = 0
    while True:
        batch = list(awards.filter(id__gt=last)[:FOLLOW_BATCH])
        if not batch:
            return changed
        last = batch[-1].id
        changed += _follow(batch, epoch)


def _follow(batch: list[Award], epoch: int) -> int:
    pieces = {award.piece_cid for award in batch}
    claims: dict[str, list[Claim]] = defaultdict(list)
    for claim in Claim.objects.filter(piece_cid__in=pieces):
        claims[claim.piece_cid].append(claim)
    deals: dict[str, list[Deal]] = defaultdict(list)
    for deal in Deal.objects.filter(piece_cid__in=pieces):
        deals[deal.piece_cid].append(deal)
    removed = [c.claim_id for cs in claims.values() for c in cs if c.removed]
    removed_at: dict[int, int] = {}
    for claim_id, height in ClaimEvent.objects.filter(
        claim_id__in=removed, kind=ClaimEvent.Kind.REMOVED
    ).values_list("claim_id", "height"):
        removed_at[claim_id] = min(height, removed_at.get(claim_id, height))
    changed = 0
    for award in batch:
        now = landing(award, claims[award.piece_cid], deals[award.piece_cid], removed_at, epoch)
        fields = {
            "chain_state": now.state,
            "claim_id": now.claim_id,
            "deal_id": now.deal_id,
            "chain_provider": now.provider,
        }
        was = {name: getattr(award, name) for name in fields}
        if was == fields:
            continue
        changed += 1
        with transaction.atomic():
            record(
                actor="scanner",
                action="award.chain",
                target=f"award:{award.id}",
                before=was,
                after=fields,
                reason=f"{award.piece_cid} to {award.provider}, at epoch {epoch}",
            )
            Award.objects.filter(id=award.id).update(**fields)
    # one write for the batch: when each state was last worked out
    Award.objects.filter(id__in=[award.id for award in batch]).update(checked_epoch=epoch)
    return changed


def follow_chain() -> tuple[int, int]:
    """After a scanner pass: jobs' chain flags and awards' chain states, brought up to date.
    Returns how many of each changed."""
    return refresh_chain_flags(), follow_awards()


# --- reading awards ----------------------------------------------------------------------------


def award_json(award: Award, awarded: dict[str, int] | None = None) -> dict[str, Any]:
    """An award as the API answers it: for a job's own piece, the job's awarded and
    remaining DataCap too; for an aggregate, each job's share. A page of awards passes
    their shares prefetched and `awarded` for all their jobs at once (award_page)."""
    if "shares" in getattr(award, "_prefetched_objects_cache", {}):
        shares = sorted(award.shares.all(), key=lambda share: share.pk)
    else:
        shares = list(award.shares.select_related("job", "piece").order_by("id"))
    if awarded is None:
        awarded = awarded_bytes_by_job([share.job_id for share in shares])
    single = shares[0] if len(shares) == 1 and not award.aggregate else None
    return {
        "piece_cid": award.piece_cid,
        "piece_size": award.piece_size,
        "provider": award.provider,
        "aggregate": award.aggregate,
        "datacap_bytes": sum(share.bytes for share in shares),
        "job_id": single.job_id if single else None,
        "awarded_bytes": awarded.get(single.job_id, 0) if single else None,
        "remaining_bytes": _left(single.job, awarded) if single else None,
        "shares": [
            {
                "job_id": share.job_id,
                "piece_cid": share.piece.piece_cid,
                "bytes": share.bytes,
                "awarded_bytes": awarded.get(share.job_id, 0),
                "remaining_bytes": _left(share.job, awarded),
            }
            for share in shares
        ],
        "notary": award.notary.name if award.notary else None,
        "created_at": award.created_at.isoformat().replace("+00:00", "Z"),
        "chain": chain_json(award),
    }


def awarded_on_page(page: list[Award]) -> dict[str, int]:
    """`awarded_bytes_by_job` for every job a page of awards (shares prefetched) spent."""
    return awarded_bytes_by_job(sorted({s.job_id for award in page for s in award.shares.all()}))


def _left(job: Job, awarded: dict[str, int]) -> int:
    return max(0, (job.datacap_bytes or 0) - awarded.get(job.id, 0))


def chain_json(award: Award) -> dict[str, Any]:
    return {
        "state": award.chain_state,
        "claim_id": award.claim_id,
        "deal_id": award.deal_id,
        "provider": award.chain_provider or None,
        "awarded_at_epoch": award.epoch,
        "landing_deadline_epoch": award.epoch + settings.AWARD_LANDING_EPOCHS,
        "checked_epoch": award.checked_epoch or None,
    }


@dataclass(frozen=True)
class AwardFilters:
    state: str = ""
    provider: str = ""
    notary: str = ""  # the notary key's name


def filtered(filters: AwardFilters) -> QuerySet[Award]:
    """Awards newest first, with the jobs they spent DataCap of, filtered."""
    awards = (
        Award.objects.select_related("notary")
        .annotate(datacap=Sum("shares__bytes"), job_count=Count("shares"))
        .order_by("-id")
    )
    if filters.state:
        awards = awards.filter(chain_state=filters.state)
    if filters.provider:
        awards = awards.filter(Q(provider=filters.provider) | Q(chain_provider=filters.provider))
    if filters.notary:
        awards = awards.filter(notary__name=filters.notary)
    return awards


def award_page(
    filters: AwardFilters, *, limit: int, before: int | None
) -> tuple[list[Award], int | None]:
    """One page of `filtered` awards, after the award id `before`; and where the next page
    starts (None on the last)."""
    awards = filtered(filters)
    if before is not None:
        awards = awards.filter(id__lt=before)
    rows = list(
        awards.prefetch_related(
            Prefetch(
                "shares", queryset=AwardShare.objects.select_related("job", "piece").order_by("id")
            )
        )[: limit + 1]
    )
    return rows[:limit], rows[limit - 1].id if len(rows) > limit else None
