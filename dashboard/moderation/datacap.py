"""DataCap amounts as people type them, and the amount the UI suggests."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from executor.commp import minimal_piece_size

__all__ = ["format_bytes", "parse_datacap", "suggested_datacap"]

_UNITS = {
    "": 1,
    "b": 1,
    "kib": 1 << 10,
    "mib": 1 << 20,
    "gib": 1 << 30,
    "tib": 1 << 40,
    "pib": 1 << 50,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "pb": 10**15,
}
_AMOUNT = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*")
MAX_DATACAP = 1 << 60  # one EiB: more than any single job can sensibly be given


def parse_datacap(text: str | int) -> int:
    """`32 GiB`, `1.5 TiB`, `500 GB`, `1073741824` → bytes. ValueError says what is wrong."""
    if isinstance(text, bool):
        raise ValueError("a DataCap amount is a number of bytes, optionally with a unit")
    if isinstance(text, int):
        value = text
    else:
        match = _AMOUNT.fullmatch(text)
        if match is None:
            raise ValueError(f"{text!r} is not an amount like 32 GiB, 1.5 TiB or 1073741824")
        number, unit = match.groups()
        factor = _UNITS.get(unit.lower())
        if factor is None:
            known = "B, KiB, MiB, GiB, TiB, PiB, KB, MB, GB, TB, PB"
            raise ValueError(f"unknown unit {unit!r}: use one of {known}")
        try:
            exact = Decimal(number) * factor
        except InvalidOperation:
            raise ValueError(f"{text!r} is not a number") from None
        if exact != exact.to_integral_value():
            raise ValueError(f"{text!r} is not a whole number of bytes")
        value = int(exact)
    if value <= 0:
        raise ValueError("a DataCap amount must be more than 0 bytes")
    if value > MAX_DATACAP:
        raise ValueError("a DataCap amount must be at most 1 EiB")
    return value


def format_bytes(value: int | None) -> str:
    """Binary units, exact when they can be: 34359738368 → `32 GiB`, 1500 → `1.46 KiB`."""
    if value is None:
        return "—"
    for unit, factor in (
        ("PiB", 1 << 50),
        ("TiB", 1 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ):
        if value >= factor:
            amount = value / factor
            text = f"{amount:.0f}" if value % factor == 0 else f"{amount:.2f}"
            return f"{text} {unit}"
    return f"{value} B"


def suggested_datacap(car_bytes: int | None, replicas: int) -> int | None:
    """The smallest piece that holds the result's CAR (the piece a node registers), times
    the replica count; None when the CAR was not measured here."""
    if car_bytes is None:
        return None
    return minimal_piece_size(car_bytes) * replicas
