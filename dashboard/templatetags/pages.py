"""Template filters of the moderator pages."""

from __future__ import annotations

from datetime import UTC, datetime

from django import template

from dashboard.eligibility.selectors import epoch_time
from dashboard.moderation.datacap import format_bytes

register = template.Library()


@register.filter
def binary_size(value: int | str | None) -> str:
    """Sizes in the units DataCap is typed in (GiB, TiB), so figures on a page compare. Nothing
    for no value (a failed job in the jobs list has no result)."""
    return format_bytes(value) if isinstance(value, int) else ""


CHAIN_FLAG_LABELS = {
    "other_provider": "a deal or claim with a provider that does not hold the results",
    "more_on_chain_than_awarded": "more bytes on chain than awarded",
}


@register.filter
def chain_flag_labels(value: str | list[str]) -> str:
    """`other_provider,more_on_chain_than_awarded` (or a list of them) as words."""
    flags = value.split(",") if isinstance(value, str) else value
    return "; ".join(CHAIN_FLAG_LABELS.get(f, f) for f in flags if f)


@register.filter
def utc(value: datetime | None, seconds: bool = True) -> str:
    """A time as the pages show it: in UTC, saying so ("2026-12-07 13:03:00 UTC")."""
    if value is None:
        return ""
    text = value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    return f"{text} UTC"


@register.filter
def epoch_utc(epoch: int | None) -> str:
    """A Filecoin mainnet epoch as its UTC time (dashboard/eligibility/selectors.py converts)."""
    if epoch is None or epoch == "":
        return ""
    return utc(epoch_time(int(epoch)), False)


@register.filter
def urls_for(known: dict[str, list[str]] | None, provider: str) -> list[str]:
    """The HTTP URLs a provider publishes on chain, from the page's `provider_urls`."""
    return (known or {}).get(provider, [])
