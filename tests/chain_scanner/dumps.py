"""Write StateMarketDeals dumps in the shapes found in the wild (docs/filecoin.md)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import zstandard


def write_dump(
    path: Path,
    deals: Iterable[tuple[int | str, Any]],
    *,
    envelope: bool = False,
) -> Path:
    """A bare `{"<id>": deal}` map, or filexp's `{"id":1,"jsonrpc":"2.0","result":{…}}`
    envelope; zstd-compressed when the name ends in .zst. Entries are written in the
    order given (filexp's parallel workers write them unordered)."""
    raw = path.with_suffix("") if path.suffix == ".zst" else path
    with raw.open("w") as out:
        out.write('{"id":1,"jsonrpc":"2.0","result":{' if envelope else "{")
        for index, (deal_id, value) in enumerate(deals):
            if index:
                out.write(",")
            out.write(json.dumps(str(deal_id)))
            out.write(":")
            out.write(json.dumps(value, separators=(",", ":")))
        out.write("}}\n" if envelope else "}")
    if path.suffix == ".zst":
        with raw.open("rb") as src, path.open("wb") as dst:
            zstandard.ZstdCompressor(level=3).copy_stream(src, dst)
        raw.unlink()
    return path
