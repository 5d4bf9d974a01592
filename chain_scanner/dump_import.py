"""Bootstrap from a `StateMarketDeals` dump (Glif's S3 file, a filexp dump or a Lotus answer):
plain JSON or `.zst`, a bare `{"<id>": deal}` map or a JSON-RPC envelope, entries in any
order. Streamed with ijson in constant memory: mainnet's dump is tens of GB."""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import ijson
import zstandard
from django.db import connection, transaction
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone

from chain_scanner import store
from chain_scanner.decode import BadChainData, DealRow, parse_deal, parse_deal_id
from chain_scanner.leases import release_scanner, renew_scanner, take_scanner
from chain_scanner.models import BlessedCid, Deal, DumpImport, ScannerCheckpoint

log = logging.getLogger(__name__)

BATCH = 10_000
_FIRST_KEY = re.compile(rb'^\s*\{\s*"((?:[^"\\]|\\.)*)"')


class DumpError(Exception):
    """The file is not a StateMarketDeals dump we can read."""


@dataclass
class DumpReport:
    entries: int = 0
    verified: int = 0
    unverified: int = 0
    bad: int = 0
    skipped_done: int = 0
    max_deal_id: int | None = None
    blessed: int = 0

    def summary(self) -> str:
        return (
            f"entries={self.entries} verified={self.verified} unverified={self.unverified} "
            f"bad={self.bad} resumed_after={self.skipped_done} max_deal_id={self.max_deal_id} "
            f"blessed_cids={self.blessed}"
        )


@contextlib.contextmanager
def _open(path: Path) -> Iterator[tuple[IO[bytes], IO[bytes]]]:
    """Yield (stream to parse, raw file for progress by compressed offset)."""
    with path.open("rb") as raw:
        if path.suffix == ".zst":
            reader = zstandard.ZstdDecompressor().stream_reader(raw, read_size=1 << 20)
            with reader:
                yield reader, raw
        else:
            yield raw, raw


def _prefix(path: Path) -> str:
    """'' for a bare map, 'result' for a JSON-RPC envelope (keys sorted, so `id` first)."""
    with _open(path) as (stream, _raw):
        head = stream.read(4096)
    match = _FIRST_KEY.match(head)
    if match is None:
        if head.strip() in (b"{}", b""):
            return ""
        raise DumpError(f"{path} does not start with a JSON object")
    key = match.group(1).decode("utf-8", "replace")
    if key.isdigit():
        return ""
    if key in ("id", "jsonrpc", "result", "error"):
        if b'"error"' in head and b'"result"' not in head:
            raise DumpError(f"{path} holds a JSON-RPC error, not deals: {head[:300]!r}")
        return "result"
    raise DumpError(f"{path}: unexpected top-level key {key!r} (expected deal ids or result)")


def import_dump(
    path: Path,
    *,
    batch_size: int = BATCH,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> DumpReport:
    """Import a dump; resumable: a killed import skips the entries it already committed."""
    path = path.resolve()
    try:
        stat = path.stat()
    except OSError as exc:
        raise DumpError(f"cannot read {path}: {exc.strerror}") from None
    prefix = _prefix(path)
    if not take_scanner():
        raise DumpError("a scan pass or another import is running; try again when it ends")
    try:
        return _import(path, stat, prefix, batch_size, progress)
    finally:
        release_scanner()


def _import(
    path: Path,
    stat: os.stat_result,
    prefix: str,
    batch_size: int,
    progress: Callable[[int, int], None],
) -> DumpReport:
    record, _ = DumpImport.objects.get_or_create(
        path=str(path), size=stat.st_size, mtime_ns=stat.st_mtime_ns
    )
    if connection.vendor == "postgresql" and not Deal.objects.exists():
        # Bootstrapping an empty table: building the indexes once at the end is much
        # cheaper than maintaining them through tens of millions of random inserts.
        DumpImport.objects.filter(pk=record.pk).update(bulk_indexes_dropped=True)
        deal_indexes(create=False)
        record.bulk_indexes_dropped = True
    report = DumpReport(
        skipped_done=record.entries_done,
        verified=record.verified,
        unverified=record.unverified,
        bad=record.bad,
        max_deal_id=record.max_deal_id,
    )
    rows: list[DealRow] = []
    seen = 0
    writer = _Writer(record)
    with writer, _open(path) as (stream, raw):
        try:
            for key, value in ijson.kvitems(stream, prefix, use_float=True):
                seen += 1
                if seen <= record.entries_done:
                    continue  # committed by an earlier, interrupted run
                try:
                    deal_id = parse_deal_id(key)
                    row = parse_deal(deal_id, value)
                except BadChainData as exc:
                    report.bad += 1
                    if report.bad <= 20:
                        log.warning("dump entry %s: %s", key, exc)
                    continue
                if report.max_deal_id is None or deal_id > report.max_deal_id:
                    report.max_deal_id = deal_id
                if row is None:
                    report.unverified += 1
                else:
                    report.verified += 1
                    rows.append(row)
                if seen % batch_size == 0:
                    writer.commit(rows, seen, report)
                    rows = []
                    progress(raw.tell(), stat.st_size)
        except ijson.JSONError as exc:
            writer.commit(rows, seen, report)
            writer.finish()
            raise DumpError(f"{path}: malformed JSON after {seen} entries: {exc}") from None
        writer.commit(rows, seen, report)
        writer.finish()
    progress(stat.st_size, stat.st_size)
    report.entries = seen
    if record.bulk_indexes_dropped or DumpImport.objects.filter(bulk_indexes_dropped=True).exists():
        deal_indexes(create=True)
        DumpImport.objects.filter(bulk_indexes_dropped=True).update(bulk_indexes_dropped=False)
    with transaction.atomic():
        report.blessed = store.rebuild_blessed()
        checkpoint, _ = ScannerCheckpoint.objects.select_for_update().get_or_create(name="default")
        if report.max_deal_id is not None:
            ScannerCheckpoint.objects.filter(pk=checkpoint.pk).update(
                dump_last_deal_id=Greatest(F("dump_last_deal_id"), report.max_deal_id)
                if checkpoint.dump_last_deal_id is not None
                else report.max_deal_id
            )
        DumpImport.objects.filter(pk=record.pk).update(finished=True, finished_at=timezone.now())
    # Fresh planner statistics: without them PostgreSQL seq-scans the freshly loaded deal
    # table on every blessed-CID refresh of the next pass (benchmarks/README.md,
    # bench_incremental --base-dump).
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Deal._meta.db_table}")
        cursor.execute(f"ANALYZE {BlessedCid._meta.db_table}")
    return report


def deal_indexes(*, create: bool) -> None:
    """Create (or drop) the deal table's secondary indexes that are missing (or present)."""
    with connection.cursor() as cursor:
        existing = connection.introspection.get_constraints(cursor, Deal._meta.db_table)
    with connection.schema_editor() as editor:
        for index in Deal._meta.indexes:
            if create and index.name not in existing:
                editor.add_index(Deal, index)
            elif not create and index.name in existing:
                editor.remove_index(Deal, index)


def _commit(
    record_pk: int, rows: list[DealRow], seen: int, counts: dict[str, int | None], fresh: bool
) -> None:
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # Progress is committed with its rows, so a commit lost in a crash is simply
            # redone: no need to wait for each one to reach the disk.
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit = off")
        store.upsert_deals(rows, checked_epoch=0, fresh=fresh)
        DumpImport.objects.filter(pk=record_pk).update(entries_done=seen, **counts)
        renew_scanner()


class _Writer:
    """Commits batches. On PostgreSQL it does so from a second thread with its own
    connection, so parsing (CPU, this thread) and the database's work overlap; psycopg
    releases the GIL while it waits. SQLite serialises writers anyway: inline there."""

    def __init__(self, record: DumpImport) -> None:
        self.record_pk = record.pk
        self.fresh = record.bulk_indexes_dropped
        self.threaded = connection.vendor == "postgresql"
        self.queue: queue.Queue[tuple | None] = queue.Queue(maxsize=2)  # bounds memory
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="dump-writer", daemon=True)

    def __enter__(self) -> _Writer:
        if self.threaded:
            self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.finish()

    def commit(self, rows: list[DealRow], seen: int, report: DumpReport) -> None:
        counts = {
            "verified": report.verified,
            "unverified": report.unverified,
            "bad": report.bad,
            "max_deal_id": report.max_deal_id,
        }
        item = (rows, seen, counts, self.fresh)
        if not self.threaded:
            _commit(self.record_pk, *item)
            return
        self._raise()
        self.queue.put(item)

    def finish(self) -> None:
        if self.threaded and self.thread.is_alive():
            self.queue.put(None)
            self.thread.join()
        self._raise()

    def _raise(self) -> None:
        if self.error is not None:
            error, self.error = self.error, None
            raise error

    def _run(self) -> None:
        try:
            while (item := self.queue.get()) is not None:
                if self.error is None:
                    try:
                        _commit(self.record_pk, *item)
                    except BaseException as exc:  # handed to the parsing thread
                        self.error = exc
        finally:
            connection.close()
