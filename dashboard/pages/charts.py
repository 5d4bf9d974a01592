"""Small server-rendered SVG charts for the overview: no JavaScript, no chart library.

Each chart is an <svg role="img"> with a <title> and a <desc>; the page puts the same numbers
in a table, which is what screen readers and people who want exact figures read.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import date
from html import escape

from django.utils.safestring import SafeString, mark_safe

__all__ = ["line_chart", "stacked_bars"]

WIDTH = 720
HEIGHT = 240
LEFT, RIGHT, TOP, BOTTOM = 72, 12, 12, 36
# Colours that stay apart for the common colour-vision deficiencies (Okabe-Ito).
# The legend's swatches take these from dashboard.css (.swatch-0 …), not from inline styles,
# which the pages' Content-Security-Policy refuses: keep the two in the same order.
PALETTE = ["#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#999999"]


def _nice_step(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten that is at least `value` (2.5 only
    where it is still a whole number)."""
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step == 2.5 and power < 10:
            continue
        if value <= step * power * (1 + 1e-9):
            return step * power
    return 10 * power


def _axis_top(value: float, *, binary: bool = False) -> float:
    """A top for the y axis whose four gridlines fall on round values: whole counts, or
    round amounts of the largest binary unit that fits (KiB, GiB…) for bytes."""
    if value <= 0:
        return 4
    unit = 1.0
    if binary:
        while value >= unit * 1024:
            unit *= 1024
    step = _nice_step(value / unit / 4)
    if unit == 1:  # whole counts, whole bytes
        step = max(step, 1)
    return 4 * step * unit


def _frame(
    chart_id: str,
    title: str,
    desc: str,
    axis: Sequence[date],
    top: float,
    fmt: Callable[[float], str],
) -> list[str]:
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<desc id="{chart_id}-desc">{escape(desc)}</desc>',
    ]
    for i in range(5):
        value = top * i / 4
        y = TOP + plot_h - plot_h * i / 4
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y:.1f}" y2="{y:.1f}"/>'
        )
        parts.append(
            f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{escape(fmt(value))}</text>"
        )
    step = max(1, len(axis) // 6)
    slot = plot_w / max(len(axis), 1)
    for i, day in enumerate(axis):
        if i % step == 0 or i == len(axis) - 1:
            x = LEFT + slot * (i + 0.5)
            parts.append(
                f'<text class="tick" x="{x:.1f}" y="{HEIGHT - BOTTOM + 18}" '
                f'text-anchor="middle">{day:%b %d}</text>'
            )
    return parts


def stacked_bars(
    chart_id: str,
    title: str,
    axis: Sequence[date],
    series: dict[str, Sequence[int]],
) -> SafeString:
    """One bar per day, stacked by series, with a legend."""
    totals = [sum(values[i] for values in series.values()) for i in range(len(axis))]
    top = _axis_top(max(totals, default=0))
    plot_h = HEIGHT - TOP - BOTTOM
    slot = (WIDTH - LEFT - RIGHT) / max(len(axis), 1)
    bar = max(slot * 0.7, 1)
    desc = f"{sum(totals)} in total over {len(axis)} days; the table below has each day."
    parts = _frame(chart_id, title, desc, axis, top, lambda v: f"{v:g}")
    for i, day in enumerate(axis):
        y: float = TOP + plot_h
        x = LEFT + slot * i + (slot - bar) / 2
        for n, (name, values) in enumerate(series.items()):
            if not values[i]:
                continue
            height = plot_h * values[i] / top
            y -= height
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{height:.1f}" '
                f'fill="{PALETTE[n % len(PALETTE)]}"><title>{day:%Y-%m-%d} {escape(name)}: '
                f"{values[i]}</title></rect>"
            )
    parts.append("</svg>")
    legend = "".join(
        f'<li><span class="swatch swatch-{n % len(PALETTE)}"></span>{escape(name)}</li>'
        for n, name in enumerate(series)
    )
    return mark_safe(  # noqa: S308 - every interpolated string above is escaped
        "".join(parts) + f'<ul class="legend" aria-hidden="true">{legend}</ul>'
    )


def line_chart(
    chart_id: str,
    title: str,
    axis: Sequence[date],
    values: Sequence[int],
    fmt: Callable[[float], str],
    *,
    binary: bool = False,
) -> SafeString:
    """A line with a dot per day; `fmt` labels the y axis; `binary` when it counts bytes."""
    top = _axis_top(max(values, default=0), binary=binary)
    plot_h = HEIGHT - TOP - BOTTOM
    slot = (WIDTH - LEFT - RIGHT) / max(len(axis), 1)
    last = fmt(values[-1]) if values else "nothing"
    parts = _frame(chart_id, title, f"{last} at the end; the table below has each day.", axis,
                   top, fmt)  # fmt: skip
    points = [
        (LEFT + slot * (i + 0.5), TOP + plot_h - plot_h * value / top)
        for i, value in enumerate(values)
    ]
    if points:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        parts.append(f'<polyline class="line" points="{path}" fill="none" stroke="{PALETTE[0]}"/>')
        for (x, y), day, value in zip(points, axis, values, strict=True):
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{PALETTE[0]}">'
                f"<title>{day:%Y-%m-%d}: {escape(fmt(value))}</title></circle>"
            )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated string is escaped
