"""The piece index: what a fetched piece was mounted as, read back whole or not at all."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from executor.pieces import PieceEntry, PieceIndex

PIECE = "baga6ea4seaqae5ysjdbsr4b5jhotaz5ooh62jrrdbxwygfpkkfjz44kvywycmgy"
ROOT = "bafk2bzaceanulxrrjjec5e6r7vskb6cqgueh2w6bnge6ja5u3la7aygjizwku"
FILE = "bafkreid3yvacrpfyy4vl5imho46qghn5c3clq5vxhrqqvpzfxkdjm3i4g4"


def test_forms_are_kept_apart(tmp_path: Path) -> None:
    index = PieceIndex(tmp_path / "pieces")
    assert index.get(PIECE, raw=False) is None
    index.put(PIECE, PieceEntry("car", ROOT, 524288), raw=False)
    assert index.get(PIECE, raw=False) == PieceEntry("car", ROOT, 524288)
    assert index.get(PIECE, raw=True) is None  # a CAR's DAG is not its bytes
    index.put(PIECE, PieceEntry("raw", FILE, 524288), raw=True)
    assert index.get(PIECE, raw=True) == PieceEntry("raw", FILE, 524288)
    assert index.get(PIECE, raw=False) == PieceEntry("car", ROOT, 524288)
    assert not list((tmp_path / "pieces").glob(".*.tmp"))


def test_a_piece_that_is_not_a_car_serves_both(tmp_path: Path) -> None:
    index = PieceIndex(tmp_path)
    index.put(PIECE, PieceEntry("raw", FILE, 128), raw=False)
    assert index.get(PIECE, raw=True) == index.get(PIECE, raw=False) == PieceEntry("raw", FILE, 128)


@pytest.mark.parametrize(
    "text",
    [
        '{"form": "car", "cid": "bafy',
        json.dumps({"form": "zip", "cid": ROOT, "piece_size": 128}),
        json.dumps({"form": "car", "cid": ROOT, "piece_size": "128"}),
        "[]",
    ],
)
def test_a_torn_or_foreign_entry_counts_as_absent(tmp_path: Path, text: str) -> None:
    (tmp_path / f"{PIECE}.json").write_text(text)
    assert PieceIndex(tmp_path).get(PIECE, raw=False) is None


def test_only_piece_cids_are_entered(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a piece CID"):
        PieceIndex(tmp_path).put(ROOT, PieceEntry("car", ROOT, 128), raw=False)
