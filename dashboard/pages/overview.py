"""The overview (charts people would rather look at than read) and the scanner's status."""

from __future__ import annotations

from typing import Any, cast

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse

from chain_scanner.status import scanner_status
from dashboard.moderation.datacap import format_bytes
from dashboard.pages import charts, selectors
from dashboard.pages.base import render_page, role_required

DAYS = 30
OVERVIEW_CACHE_KEY = "dashboard:overview-figures"
EPOCH_S = 30  # one Filecoin epoch


COUNT_LABELS = {
    "deals": "Verified deals",
    "claims": "Verified claims",
    "blessed_cids": "Blessed CIDs",
    "deals_fetched": "Deals fetched",
    "unverified_skipped": "Unverified deals skipped",
    "deals_missing": "Deals gone from state",
    "claim_events": "Claim events",
    "deal_events": "Deal events",
    "deals_to_reread": "Deals waiting for a re-read (from a dump)",
    "bad_items": "Items that could not be read",
}


def _lag_text(lag: int | None) -> str:
    if lag is None:
        return "unknown"
    minutes = lag * EPOCH_S // 60
    return f"{lag} epochs (about {minutes // 60} h {minutes % 60} min)"


def _figures() -> dict[str, Any]:
    axis, per_state = selectors.jobs_per_day(DAYS)
    datacap_axis, daily, running = selectors.datacap_per_day(DAYS)
    return {
        "axis": axis,
        "per_state": per_state,
        "datacap_axis": datacap_axis,
        "daily": daily,
        "running": running,
        "counts": selectors.moderation_counts(),
    }


@role_required()
def overview(request: HttpRequest) -> HttpResponse:
    # Grouping every job by day is slow with many jobs (benchmarks/README.md, bench_pages):
    # the figures are shared for a short while rather than recomputed on every view.
    kept = cache.get_or_set(OVERVIEW_CACHE_KEY, _figures, settings.OVERVIEW_CACHE_S)
    figures = cast(dict[str, Any], kept)
    axis, per_state = figures["axis"], figures["per_state"]
    datacap_axis, daily, running = figures["datacap_axis"], figures["daily"], figures["running"]
    counts = figures["counts"]
    series = {state: values for state, values in per_state.items() if any(values)}
    scanner = scanner_status()
    return render_page(
        request,
        "dashboard/overview.html",
        {
            "days": DAYS,
            "cache_s": settings.OVERVIEW_CACHE_S,
            "counts": counts,
            "verified_total": format_bytes(counts["verified_bytes"]),
            "scanner": scanner,
            "lag_text": _lag_text(scanner["lag_epochs"]),
            "jobs_chart": charts.stacked_bars("jobs-per-day", "Jobs per day by state", axis, series)
            if series
            else None,  # fmt: skip
            "jobs_rows": [
                (day, [per_state[s][i] for s in per_state]) for i, day in enumerate(axis)
            ],
            "states": list(per_state),
            "datacap_chart": charts.line_chart(
                "datacap-verified",
                "DataCap verified, running total",
                datacap_axis,
                running,
                lambda v: format_bytes(int(v)),
                binary=True,
            )
            if any(running)
            else None,
            "datacap_rows": [
                (day, format_bytes(d) if d >= 0 else f"−{format_bytes(-d)}", format_bytes(r))
                for day, d, r in zip(datacap_axis, daily, running, strict=True)
            ],
        },
    )


@role_required()
def scanner(request: HttpRequest) -> HttpResponse:
    status = scanner_status()
    return render_page(
        request,
        "dashboard/scanner.html",
        {
            "scanner": status,
            "lag_text": _lag_text(status["lag_epochs"]),
            "counts": [(COUNT_LABELS.get(k, k), v) for k, v in status["counts"].items()],
            "events": list(status["events"].items()),
        },
    )
