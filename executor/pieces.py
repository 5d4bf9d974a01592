"""What a fetched piece was mounted as: a small index, one JSON file a piece, next to the store.

A piece is verified once (its CommP), then kept in the store as the DAG of the CAR it holds
or as one file of its bytes. The index maps the piece CID to that form, the CID mounted and
the piece size, so a later job mounts the piece from the store with no network. An entry is
a hint about our own store, never a proof: a job still finds the mounted CID in the store,
and when it is gone (a Kubo node collected it) the piece is fetched again.

Entries are written to a temporary name then renamed, so a reader sees a whole entry or
none; a torn or unreadable one counts as absent. Nothing is ever removed: an entry is a few
hundred bytes, and the content it names is pinned (docs/jobs.md, "Retention").
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from executor.cids import InvalidCID, is_piece_cid, normalize_cid

__all__ = ["PieceEntry", "PieceIndex"]

Form = Literal["car", "raw"]


@dataclass(frozen=True)
class PieceEntry:
    form: Form  # "car": mounted as the CAR's root DAG; "raw": as one file of its bytes
    cid: str  # the CID mounted
    piece_size: int  # padded


class PieceIndex:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def _path(self, piece_cid: str, raw: bool) -> Path:
        # Both forms of one piece may be wanted (`raw` on one job, not on another).
        canonical = normalize_cid(piece_cid)
        return self.directory / f"{canonical}{'.raw' if raw else ''}.json"

    def get(self, piece_cid: str, *, raw: bool) -> PieceEntry | None:
        """How the piece was mounted before, or None. With `raw`, only a raw form will do;
        without, whatever form the piece's bytes gave (a CAR's DAG, else raw)."""
        paths = (
            [self._path(piece_cid, True), self._path(piece_cid, False)]
            if raw
            else [self._path(piece_cid, False)]
        )
        for path in paths:
            entry = self._read(path)
            if entry is not None and (entry.form == "raw" or not raw):
                return entry
        return None

    @staticmethod
    def _read(path: Path) -> PieceEntry | None:
        try:
            body = json.loads(path.read_text())
            entry = PieceEntry(
                form=body["form"], cid=normalize_cid(body["cid"]), piece_size=body["piece_size"]
            )
        except (OSError, ValueError, KeyError, TypeError, InvalidCID):
            return None
        if entry.form not in ("car", "raw") or type(entry.piece_size) is not int:
            return None
        return entry

    def put(self, piece_cid: str, entry: PieceEntry, *, raw: bool) -> None:
        if not is_piece_cid(piece_cid):
            raise ValueError(f"{piece_cid} is not a piece CID")
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self._path(piece_cid, raw)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with tmp.open("w") as out:
            json.dump(asdict(entry), out, sort_keys=True)
            out.flush()
            os.fsync(out.fileno())
        tmp.replace(path)
