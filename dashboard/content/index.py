"""The copy index: chunk fingerprints of the content that passes through the store.

Content is *noted* where it passes (an upload, a job's inputs once it ran, a job's result
when it is recorded): a row in IndexedContent, nothing read. It is *indexed* off the request
path, by the worker before it measures a result's novelty and by `manage.py
backfill_novelty`: its files are read from the store, fingerprinted
(dashboard/content/fingerprints.py), compressed files also decompressed, and each distinct
fingerprint is kept once per item (ContentChunk). Indexing again adds nothing twice.

What the index costs is in docs/novelty.md: about 200,000 rows per GiB indexed, 43 bytes a
row on SQLite and 115 on PostgreSQL (benchmarks/bench_novelty.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.utils import timezone

from dashboard.content.fingerprints import (
    TooLarge,
    compression_of,
    pieces,
    unpacked,
)
from dashboard.content.services import storage
from dashboard.models import ContentChunk, IndexedContent
from executor.cids import InvalidCID, is_piece_cid, normalize_cid
from executor.pieces import PieceIndex
from executor.storage import ContentNotFound, Storage, StorageError

__all__ = [
    "LOOKUP_BATCH",
    "MAX_FILES",
    "Files",
    "TooMuch",
    "files_of",
    "index_content",
    "index_pending",
    "note",
    "owners",
    "readable_cid",
]

log = logging.getLogger(__name__)

MAX_FILES = 100_000  # distinct files and directories walked under one CID
LOOKUP_BATCH = 500  # fingerprints per lookup query (SQLite takes at most 32,766 parameters)
PG_LOOKUP_BATCH = 5000  # on PostgreSQL, in one array parameter
_WRITE_BATCH = 5000


class TooMuch(Exception):
    """Content is larger than what one measurement or one indexed item may read."""


@dataclass
class Files:
    """The distinct files under a CID: their CIDs and sizes, in the order first met."""

    sizes: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.sizes.values())


def readable_cid(cid: str) -> str:
    """The CID to read `cid`'s bytes by: a piece's is the one it was mounted as (the piece
    index next to the store), others their own."""
    if is_piece_cid(cid):
        entry = PieceIndex(Path(settings.DATA_DIR) / "pieces").get(cid, raw=False)
        if entry is None:
            raise ContentNotFound(f"piece {cid} was never fetched here")
        return entry.cid
    return cid


def files_of(store: Storage, cid: str, *, max_bytes: int) -> Files:
    """Walk `cid` (a file or a directory tree): each distinct file once, each directory
    listed once. TooMuch past MAX_FILES entries or `max_bytes` of files."""
    found = Files()
    seen: set[str] = set()
    pending = [cid]
    while pending:
        top = pending.pop()
        if top in seen:
            continue
        seen.add(top)
        if len(seen) > MAX_FILES:
            raise TooMuch(f"{cid} holds more than {MAX_FILES} files and directories")
        if not store.is_dir(top):
            found.sizes[top] = store.size(top)
        else:
            for entry in store.ls(top):
                if entry.is_dir:
                    pending.append(entry.cid)
                elif entry.cid not in found.sizes:
                    if len(found.sizes) >= MAX_FILES:
                        raise TooMuch(f"{cid} holds more than {MAX_FILES} files")
                    found.sizes[entry.cid] = entry.size
        if found.total > max_bytes:
            raise TooMuch(f"{cid} holds more than {max_bytes} bytes (NOVELTY_MAX_BYTES)")
    return found


def views(store: Storage, file_cid: str, *, unpack_limit: int) -> Iterator[tuple[str, Iterable]]:
    """The ways a file is fingerprinted: ("stored", its bytes), then, when it starts like a
    compressed stream, (its compression, the decompressed bytes, up to `unpack_limit`)."""
    head = b""
    for block in store.iter_cat(file_cid, chunk_size=16):
        head = block
        break
    yield "stored", store.iter_cat(file_cid)
    name = compression_of(head)
    if name is not None:
        yield name, unpacked(name, store.iter_cat(file_cid), limit=unpack_limit)


def note(cids: Iterable[str], origin: str) -> None:
    """Content passed through the store: index it later. A CID noted before keeps its row;
    one that was missing is looked for again."""
    canonical = set()
    for cid in cids:
        try:
            canonical.add(normalize_cid(cid))
        except InvalidCID:
            continue
    if not canonical:
        return
    IndexedContent.objects.bulk_create(
        [IndexedContent(cid=cid, origin=origin) for cid in sorted(canonical)],
        ignore_conflicts=True,
    )
    IndexedContent.objects.filter(cid__in=canonical, state=IndexedContent.State.MISSING).update(
        state=IndexedContent.State.PENDING
    )


def _write(content_id: int, fingerprints: set[int]) -> None:
    ContentChunk.objects.bulk_create(
        [ContentChunk(fingerprint=fp, content_id=content_id) for fp in fingerprints],
        ignore_conflicts=True,
    )


class _Counter:
    def __init__(self) -> None:
        self.count = 0

    def counted(self, stream: Iterable[bytes]) -> Iterator[bytes]:
        for block in stream:
            self.count += len(block)
            yield block


def index_content(item: IndexedContent) -> str:
    """Fingerprint one noted item into the index; its new state. Written in batches, each
    committed on its own: a long read never holds a transaction (SQLite's one writer)."""
    store = storage()
    limit = settings.NOVELTY_MAX_BYTES
    read = _Counter()
    kept: set[int] = set()
    written = 0
    try:
        cid = readable_cid(item.cid)
        if not store.has(cid):
            raise ContentNotFound(cid)
        for file_cid in files_of(store, cid, max_bytes=limit).sizes:
            for _view, stream in views(store, file_cid, unpack_limit=max(0, limit - read.count)):
                try:
                    for batch in pieces(read.counted(stream)):
                        kept.update(p.fingerprint for p in batch)
                        if len(kept) >= _WRITE_BATCH:
                            _write(item.pk, kept)
                            written += len(kept)
                            kept = set()
                except (TooLarge, ValueError) as exc:  # a decompressed view only
                    log.info("indexing %s: %s not unpacked: %s", item.cid, file_cid, exc)
                if read.count > limit:
                    raise TooMuch(f"reading {item.cid} passed NOVELTY_MAX_BYTES ({limit})")
        _write(item.pk, kept)
        written += len(kept)
        state, error = IndexedContent.State.INDEXED, ""
    except ContentNotFound:
        state, error = IndexedContent.State.MISSING, ""
    except (TooMuch, StorageError) as exc:
        state, error = IndexedContent.State.FAILED, str(exc)[:500]
    IndexedContent.objects.filter(pk=item.pk).update(
        state=state, error=error, bytes=read.count, chunks=written, indexed_at=timezone.now()
    )
    return state


def index_pending(
    *, cids: Iterable[str] | None = None, progress: Callable[[IndexedContent], None] | None = None
) -> int:
    """Index the pending items (of `cids`, when given), oldest first; how many were.
    Two workers may index the same item at once: each fingerprint is kept once."""
    rows = IndexedContent.objects.filter(state=IndexedContent.State.PENDING)
    if cids is not None:
        rows = rows.filter(cid__in=set(cids))
    done = 0
    for item in list(rows.order_by("noted_at", "pk")):
        index_content(item)
        done += 1
        if progress is not None:
            progress(item)
    return done


def owners(fingerprints: Iterable[int]) -> dict[int, list[int]]:
    """Which indexed items hold each fingerprint (IndexedContent keys), for those any do."""
    wanted = list(set(fingerprints))
    found: dict[int, list[int]] = {}
    table = ContentChunk._meta.db_table
    postgres = connection.vendor == "postgresql"
    # PostgreSQL takes a batch as one array parameter: adapting 500 separate parameters a
    # query cost more than the lookup itself (bench_novelty).
    step = PG_LOOKUP_BATCH if postgres else LOOKUP_BATCH
    with connection.cursor() as cursor:
        for start in range(0, len(wanted), step):
            batch = wanted[start : start + step]
            if postgres:
                sql = f"SELECT fingerprint, content_id FROM {table} WHERE fingerprint = ANY(%s)"
                cursor.execute(sql, [batch])
            else:
                marks = ", ".join(["%s"] * len(batch))
                sql = f"SELECT fingerprint, content_id FROM {table} WHERE fingerprint IN ({marks})"
                cursor.execute(sql, batch)
            for fingerprint, content_id in cursor.fetchall():
                found.setdefault(fingerprint, []).append(content_id)
    return found
