"""Synthetic chain data shaped like mainnet's: StateMarketDeals dumps (streamed to disk,
cached under CACHE_DIR) and deal values / labels for the fake Lotus chain."""

from __future__ import annotations

import base64
import hashlib
import json
import random
from functools import lru_cache
from pathlib import Path
from typing import Any

import base58
import zstandard

from benchmarks._common import CACHE_DIR, log
from tests.chain_data import (
    DAG_PB,
    SHA2_256,
    cid_bytes,
    make_deal,
    synthetic_payload_cid,
    synthetic_piece_cid,
)

# Bump when the generated content changes, so cached files are not reused.
GENERATOR_VERSION = 1
UNVERIFIED_SHARE = 0.30
PIECE_SIZES = (34359738368,) * 12 + (68719476736,) * 5 + (17179869184, 8589934592, 2147483648)
FREE_TEXT = (
    "dataset-{n}/part-{m}.car",
    "{n}",
    "backup {n} shard {m}",
    "ipfs-archive:{n}",
    '{{"name":"set-{n}","part":{m}}}',
)


@lru_cache(maxsize=65536)
def piece_cid(n: int) -> str:
    return synthetic_piece_cid(n)


def label_for(rng: random.Random, n: int) -> str:
    """Mainnet's mix: mostly `bafy…` payload CIDs, some CIDv0 `Qm…`, some base64 multibase
    `mAXASI…`, some free text or empty labels (stored as text, never indexed)."""
    pick = rng.random()
    if pick < 0.83:
        return synthetic_payload_cid(n)
    digest = hashlib.sha256(f"payload:{n}".encode()).digest()
    if pick < 0.90:
        return base58.b58encode(b"\x12\x20" + digest).decode("ascii")  # CIDv0: Qm…
    if pick < 0.92:
        raw = cid_bytes(DAG_PB, SHA2_256, digest)
        return "m" + base64.b64encode(raw).decode("ascii").rstrip("=")
    if pick < 0.98:
        return rng.choice(FREE_TEXT).format(n=n, m=rng.randrange(1, 400))
    return ""


def _skewed(rng: random.Random, pool: int, mean: float) -> int:
    """A few big actors and a long tail, like providers and clients on mainnet."""
    return min(int(rng.expovariate(1 / mean)), pool - 1)


def market_deal(
    rng: random.Random,
    deal_id: int,
    *,
    verified: bool,
    piece: int,
    activated: bool,
    start_epoch: int,
) -> dict[str, Any]:
    """One `{Proposal, State}` value with mainnet-like variety (tests.chain_data.make_deal)."""
    shape = rng.choices(("nv22", "forest", "nv17", "legacy"), weights=(88, 2, 6, 4))[0]
    sector_start = start_epoch - rng.randint(60, 8000) if activated else -1
    slashed = activated and rng.random() < 0.02
    return make_deal(
        deal_id,
        start_epoch=start_epoch,
        end_epoch=start_epoch + rng.randint(518_400, 1_555_200),
        verified=verified,
        label=label_for(rng, piece),
        piece_cid=piece_cid(piece),
        piece_size=rng.choice(PIECE_SIZES),
        client=f"f0{1_000_000 + 37 * _skewed(rng, 4000, 300)}",
        provider=f"f0{10_000 + 113 * _skewed(rng, 1500, 120)}",
        sector_start_epoch=sector_start,
        last_updated_epoch=sector_start + rng.randint(0, 5000) if activated else -1,
        slash_epoch=sector_start + rng.randint(100, 90_000) if slashed else -1,
        sector_number=rng.randint(1, 120_000) if activated else None,
        verified_claim=rng.randint(1, 90_000_000) if shape == "nv17" and activated else None,
        shape=shape,
        price_per_epoch="0" if verified else str(rng.randint(1, 10**10)),
        provider_collateral=str(rng.randint(10**15, 10**17)),
    )


def dump_path(size: int, *, zst: bool = False) -> Path:
    name = f"market-deals-{size}-v{GENERATOR_VERSION}.json"
    return CACHE_DIR / (name + ".zst" if zst else name)


def generate_dump(size: int, *, zst: bool = False) -> Path:
    """A bare `{"<id>": deal}` StateMarketDeals map of `size` deals in shuffled, sparse id
    order, written entry by entry (never the whole map in memory); cached by size."""
    path = dump_path(size)
    if not path.exists():
        _write_dump(path, size)
    elif not zst:
        log(f"reusing cached {path} ({path.stat().st_size / 1e6:,.0f} MB)")
    if not zst:
        return path
    compressed = dump_path(size, zst=True)
    if compressed.exists():
        log(f"reusing cached {compressed} ({compressed.stat().st_size / 1e6:,.0f} MB)")
    else:
        log(f"compressing {path.name} with zstd -3")
        partial = compressed.with_name(compressed.name + ".part")
        with path.open("rb") as src, partial.open("wb") as dst:
            zstandard.ZstdCompressor(level=3, threads=-1).copy_stream(src, dst)
        partial.replace(compressed)
    return compressed


def _write_dump(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    rng = random.Random(f"dump:{size}")
    # Dumps list live deals only, so ids are sparse; filexp writes them unordered.
    ids = rng.sample(range(1, size * 13 // 10 + 1), size)
    pieces = max(1, size // 4)  # FIL+ datasets are stored in ~4 replicas
    log(f"generating {size:,} deals into {path}")
    with partial.open("w", encoding="utf-8") as out:
        out.write("{")
        chunk: list[str] = []
        for index, deal_id in enumerate(ids):
            value = market_deal(
                rng,
                deal_id,
                verified=rng.random() >= UNVERIFIED_SHARE,
                piece=rng.randrange(pieces),
                activated=rng.random() < 0.85,
                start_epoch=rng.randint(3_000_000, 4_700_000),
            )
            chunk.append(
                ("," if index else "") + f'"{deal_id}":' + json.dumps(value, separators=(",", ":"))
            )
            if len(chunk) == 10_000:
                out.write("".join(chunk))
                chunk = []
                if (index + 1) % 200_000 == 0:
                    log(f"  {index + 1:,} / {size:,}")
        out.write("".join(chunk))
        out.write("}")
    partial.replace(path)
    log(f"wrote {path.stat().st_size / 1e6:,.0f} MB ({path.stat().st_size / size:.0f} B/entry)")
