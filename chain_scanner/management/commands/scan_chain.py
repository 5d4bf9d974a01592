"""`manage.py scan_chain --once | --follow | --import-dump FILE`."""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from chain_scanner.dump_import import DumpError, import_dump
from chain_scanner.lotus import LotusError
from chain_scanner.services import ScanReport, follow, scan_once


class _Bars:
    """tqdm bars on a terminal, one per step; nothing otherwise (a summary line is printed)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bars: dict[str, Any] = {}

    def __call__(self, step: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        bar = self.bars.get(step)
        if bar is None or bar.total != total:
            if bar is not None:
                bar.close()
            unit = {"events": " epochs", "deals": " deals", "recheck": " deals"}.get(step, "")
            bar = self.bars[step] = tqdm(
                total=total, desc=step, unit=unit, unit_scale=True, file=sys.stderr, leave=True
            )
        bar.n = done
        bar.refresh()

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()
        self.bars.clear()


class Command(BaseCommand):
    help = (
        "Scan the chain for FIL+ verified deals and claims (--once, --follow), or bootstrap "
        "from a StateMarketDeals dump (--import-dump FILE, plain JSON or .zst)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        mode = parser.add_mutually_exclusive_group(required=True)
        mode.add_argument("--once", action="store_true", help="run one pass and exit")
        mode.add_argument("--follow", action="store_true", help="run passes until SIGTERM / Ctrl-C")
        mode.add_argument("--import-dump", metavar="FILE", help="import a StateMarketDeals dump")
        parser.add_argument(
            "--interval", type=float, default=None, help="seconds between passes (--follow)"
        )
        parser.add_argument("--no-progress", action="store_true", help="never draw progress bars")

    def handle(self, *args: Any, **options: Any) -> None:
        bars = _Bars(sys.stderr.isatty() and not options["no_progress"])
        try:
            if options["import_dump"]:
                self._import(Path(options["import_dump"]), bars)
            elif options["once"]:
                self._once(bars)
            else:
                self._follow(options["interval"], bars)
        finally:
            bars.close()

    def _import(self, path: Path, bars: _Bars) -> None:
        def progress(done: int, total: int) -> None:
            bars("import", done, total)

        try:
            report = import_dump(path, progress=progress)
        except DumpError as exc:
            raise CommandError(str(exc)) from None
        bars.close()
        self.stdout.write(f"dump imported: {report.summary()}")

    def _once(self, bars: _Bars) -> None:
        try:
            report = scan_once(progress=bars)
        except LotusError as exc:
            raise CommandError(f"scan failed: {exc}") from None
        bars.close()
        self._print(report)

    def _follow(self, interval: float | None, bars: _Bars) -> None:
        stop = threading.Event()

        def handle_signal(signum: int, frame: object) -> None:
            if stop.is_set():  # the second Ctrl-C: at once, what is committed stays
                self.stderr.write("stopped at once")
                os._exit(130)
            self.stderr.write(
                f"{signal.Signals(signum).name}: stopping after the current batch "
                "(Ctrl-C again to stop at once)"
            )
            stop.set()

        signal.signal(signal.SIGTERM, handle_signal)
        signal.signal(signal.SIGINT, handle_signal)

        def on_report(report: ScanReport) -> None:
            bars.close()
            self._print(report)

        def on_error(exc: LotusError, pause: float) -> None:
            bars.close()
            self.stderr.write(f"scan failed: {exc}; next pass in {pause:.0f} s")

        follow(stop, interval=interval, on_report=on_report, on_error=on_error, progress=bars)
        self.stdout.write("scanner stopped")

    def _print(self, report: ScanReport) -> None:
        self.stdout.write(f"scan: {report.summary()}")
        self.stdout.flush()
