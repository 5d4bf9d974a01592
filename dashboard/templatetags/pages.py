"""Template filters of the moderator pages."""

from __future__ import annotations

from django import template

from dashboard.datacap import format_bytes

register = template.Library()


@register.filter
def binary_size(value: int | None) -> str:
    """Sizes in the units DataCap is typed in (GiB, TiB), so figures on a page compare."""
    return format_bytes(value) if value is not None else ""
