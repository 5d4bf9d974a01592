"""A job's novelty as the job API, the notary's answer, the pages and the risks show it."""

from __future__ import annotations

from typing import Any

from dashboard.models import Job, Novelty

__all__ = ["NOT_MEASURED", "novelty_of", "percent"]

# A result recorded before novelty was measured here, and not backfilled yet.
NOT_MEASURED = "not_measured"


def percent(novel: int | None, total: int | None) -> float | None:
    """The share of new bytes, to a tenth of a percent; None for nothing measured or an
    empty result."""
    if novel is None or not total:
        return None
    return round(100 * novel / total, 1)


def novelty_of(job: Job) -> dict[str, Any] | None:
    """The job's novelty; None when it has no result. Reads `job.result` and `job.novelty`,
    which a list selects with the job (select_related) to spare two queries a row."""
    # A missing reverse one-to-one raises a DoesNotExist that is also an AttributeError.
    row: Novelty | None = getattr(job, "novelty", None)
    if row is None:
        if getattr(job, "result", None) is None:
            return None
        return {
            "state": NOT_MEASURED,
            "novel_bytes": None,
            "total_bytes": None,
            "percent": None,
            "sources": [],
            "method": "",
            "measured_at": None,
            "error": "",
        }
    return {
        "state": row.state,
        "novel_bytes": row.novel_bytes,
        "total_bytes": row.total_bytes,
        "percent": percent(row.novel_bytes, row.total_bytes),
        "sources": list(row.sources or []),
        "method": row.method,
        "measured_at": row.measured_at,
        "error": row.error,
    }
