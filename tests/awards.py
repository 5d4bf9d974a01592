"""Awards written straight to the database, for tests about what is shown or refused once
DataCap was awarded (the notary's own path is tests/dashboard/notary/)."""

from __future__ import annotations

from typing import Any

from dashboard.models import Award, AwardShare, Job, JobPiece


def award(
    job: Job | str,
    *,
    piece_cid: str,
    provider: str,
    piece_size: int,
    share: int | None = None,
    **fields: Any,
) -> Award:
    """An award of `piece_cid` to `provider` spending `share` (default piece_size) of the
    job's DataCap; the job's piece is registered when it is not yet."""
    job_id = job if isinstance(job, str) else job.id
    piece, _ = JobPiece.objects.get_or_create(
        job_id=job_id,
        piece_cid=piece_cid,
        defaults={"piece_size": piece_size, "payload_cid": "bafy-not-checked-here"},
    )
    made = Award.objects.create(
        piece_cid=piece_cid, provider=provider, piece_size=piece_size, **fields
    )
    AwardShare.objects.create(
        award=made, job_id=job_id, piece=piece, bytes=piece_size if share is None else share
    )
    return made
