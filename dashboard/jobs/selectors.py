"""`GET /api/v1/jobs`: filters and keyset pages of the jobs a caller may see, newest first."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dashboard.errors import DomainError
from dashboard.jobs.services import visible_jobs
from dashboard.models import ApiKey, Job

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_CURSOR_LENGTH",
    "MAX_LIMIT",
    "JobPage",
    "decode_cursor",
    "job_page",
]

DEFAULT_LIMIT = 50
MAX_CURSOR_LENGTH = 200  # base64 of a timestamp and a job id of at most 100 characters
MAX_LIMIT = 200
NODE_NAME_LONGEST = ApiKey._meta.get_field("name").max_length or 0  # a node is its key's name


@dataclass(frozen=True)
class JobPage:
    jobs: list[Job]
    next_cursor: str | None  # for the page after this one, None on the last


def _encode_cursor(job: Job) -> str:
    raw = f"{job.created_at.isoformat()}|{job.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
        stamp, _, job_id = raw.partition("|")
        when = datetime.fromisoformat(stamp)
        if not job_id or "\x00" in job_id or when.tzinfo is None:
            raise ValueError
        return when, job_id
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise DomainError(
            "invalid_request", "cursor is not one this API gave out", fields={"cursor": "invalid"}
        ) from None


def job_page(
    who: ApiKey | None,
    *,
    state: str | None = None,
    engine: str | None = None,
    node: str | None = None,
    annotation: str | None = None,
    blessed: bool | None = None,
    limit: int = DEFAULT_LIMIT,
    cursor: tuple[datetime, str] | None = None,
) -> JobPage:
    """One page of the jobs `who` may see, newest first, filtered; `node` is a key's name,
    `annotation` a whole annotation, `blessed` whether all inputs were blessed, `cursor`
    where the previous page ended (decode_cursor)."""
    filters: dict[str, Any] = {}
    if state:
        filters["state"] = state
    if engine:
        filters["engine"] = engine
    if node is not None:
        filters["node__name"] = node
    if annotation is not None:
        filters["annotation_index__contains"] = f"|{annotation}|"
    if blessed is not None:
        filters["inputs_blessed"] = blessed
    jobs = visible_jobs(who).filter(**filters).order_by("-created_at", "-id")
    if cursor is not None:
        when, job_id = cursor
        jobs = jobs.filter(created_at__lte=when).exclude(created_at=when, id__gte=job_id)
    rows = list(jobs[: limit + 1])
    page = rows[:limit]
    return JobPage(jobs=page, next_cursor=_encode_cursor(page[-1]) if len(rows) > limit else None)
