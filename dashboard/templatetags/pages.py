"""Template filters of the moderator pages."""

from __future__ import annotations

from django import template

from dashboard.moderation.datacap import format_bytes

register = template.Library()


@register.filter
def binary_size(value: int | None) -> str:
    """Sizes in the units DataCap is typed in (GiB, TiB), so figures on a page compare."""
    return format_bytes(value) if value is not None else ""


CHAIN_FLAG_LABELS = {
    "other_provider": "a deal or claim with a provider that does not hold the results",
    "more_on_chain_than_awarded": "more bytes on chain than awarded",
}


@register.filter
def chain_flag_labels(value: str | list[str]) -> str:
    """`other_provider,more_on_chain_than_awarded` (or a list of them) as words."""
    flags = value.split(",") if isinstance(value, str) else value
    return "; ".join(CHAIN_FLAG_LABELS.get(f, f) for f in flags if f)
