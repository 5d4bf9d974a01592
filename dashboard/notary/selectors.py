"""What the notary has awarded, read: a job's awarded bytes are the sum of its award shares."""

from __future__ import annotations

from django.db.models import Sum

from dashboard.models import ApiKey, Award, AwardShare

__all__ = ["awarded_bytes", "awarded_bytes_by_job", "awards_of_job", "notary_names"]


def awarded_bytes(job_id: str) -> int:
    """The DataCap the notary has awarded for this job, over all awards that spent it."""
    return AwardShare.objects.filter(job_id=job_id).aggregate(total=Sum("bytes"))["total"] or 0


def awarded_bytes_by_job(job_ids: list[str]) -> dict[str, int]:
    """`awarded_bytes` for several jobs in one query; jobs with no award are absent."""
    return dict(
        AwardShare.objects.filter(job_id__in=job_ids)
        .values("job_id")
        .annotate(total=Sum("bytes"))
        .values_list("job_id", "total")
    )


def awards_of_job(job_id: str) -> list[tuple[Award, int]]:
    """The awards that spent this job's DataCap, oldest first, each with the job's share."""
    shares = (
        AwardShare.objects.filter(job_id=job_id)
        .select_related("award", "award__notary")
        .order_by("award__created_at", "award_id")
    )
    return [(share.award, share.bytes) for share in shares]


def notary_names() -> list[str]:
    """The names of the notary keys, in order: what an award's `notary` can be."""
    notaries = ApiKey.objects.filter(scope=ApiKey.Scope.NOTARY).order_by("name")
    return list(notaries.values_list("name", flat=True))
