"""`GET /api/v1/jobs`: filters and keyset pages of the jobs a caller may see, newest first."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dashboard.errors import DomainError
from dashboard.jobs.services import visible_jobs
from dashboard.models import ApiKey, Job
from executor.spec import MAX_ANNOTATION_LENGTH

__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "JobPage", "job_page"]

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


def _decode_cursor(text: str) -> tuple[datetime, str]:
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


def _choice(query: Mapping[str, str], name: str, choices: list[str]) -> str | None:
    value = query.get(name)
    if value is not None and value not in choices:
        raise DomainError(
            "invalid_request",
            f"{name} must be one of {', '.join(choices)}",
            fields={name: f"got {value!r}"},
        )
    return value


def _text(query: Mapping[str, str], name: str, longest: int) -> str | None:
    value = query.get(name)
    # PostgreSQL refuses NUL in any text it is sent: a 400 here, not a 500 there.
    if value is not None and "\x00" in value:
        raise DomainError(
            "invalid_request", f"{name} must not contain NUL", fields={name: "contains NUL"}
        )
    # Nothing stored is longer, and SQLite refuses a LIKE pattern over 50,000 bytes.
    if value is not None and len(value) > longest:
        raise DomainError(
            "invalid_request",
            f"{name} must be at most {longest} characters",
            fields={name: f"{len(value)} characters"},
        )
    return value


def _limit(query: Mapping[str, str]) -> int:
    raw = query.get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise DomainError(
            "invalid_request", f"limit must be 1 to {MAX_LIMIT}", fields={"limit": f"got {raw!r}"}
        )
    return int(raw)


def job_page(who: ApiKey | None, query: Mapping[str, str]) -> JobPage:
    """One page: `state`, `engine`, `node` (key name), `annotation`, `blessed` (all inputs
    blessed), `limit` and `cursor` from the query string; a bad value is a 400 naming it."""
    filters: dict[str, Any] = {}
    if state := _choice(query, "state", [s.value for s in Job.State]):
        filters["state"] = state
    if engine := _choice(query, "engine", [e.value for e in Job.Engine]):
        filters["engine"] = engine
    if (node := _text(query, "node", NODE_NAME_LONGEST)) is not None:
        filters["node__name"] = node
    if (annotation := _text(query, "annotation", MAX_ANNOTATION_LENGTH)) is not None:
        filters["annotation_index__contains"] = f"|{annotation}|"  # a whole annotation
    if blessed := _choice(query, "blessed", ["true", "false"]):
        filters["inputs_blessed"] = blessed == "true"
    jobs = visible_jobs(who).filter(**filters).order_by("-created_at", "-id")
    if (cursor := _text(query, "cursor", MAX_CURSOR_LENGTH)) is not None:
        when, job_id = _decode_cursor(cursor)
        jobs = jobs.filter(created_at__lte=when).exclude(created_at=when, id__gte=job_id)
    limit = _limit(query)
    rows = list(jobs[: limit + 1])
    page = rows[:limit]
    return JobPage(jobs=page, next_cursor=_encode_cursor(page[-1]) if len(rows) > limit else None)
