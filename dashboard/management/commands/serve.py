"""`manage.py serve`: the whole service on the embedded defaults, in one process.

Migrates the database, then runs the web server, the scanner loop (following LOTUS_RPC_URL)
and the bundled executor's worker threads (EXECUTOR_WORKERS) together. Ctrl-C or SIGTERM
stops all of them; a job cut short goes back to the queue when its lease lapses.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from django.core.servers.basehttp import get_internal_wsgi_application, run

from chain_scanner.lotus import LotusError
from chain_scanner.services import ScanReport, follow
from dashboard.bacalhau.scan import follow as bacalhau_loop
from dashboard.notary.awards import follow_chain
from dashboard.queue import wake_worker
from dashboard.worker import run_worker

# The scanner's lines go through its logger, so SCANNER_LOG_LEVEL governs them here too.
log = logging.getLogger("chain_scanner.serve")
STOP_GRACE_S = 1.5  # Ctrl-C to exit within 2 s


class Command(BaseCommand):
    help = "Migrate, then run the web server, the chain scanner and the executor together."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--host", default="127.0.0.1", help="the address to listen on (default: 127.0.0.1)"
        )
        parser.add_argument(
            "--port",
            type=int,
            default=settings.PORT,
            help="the web server's port "
            f"(default: the PORT variable, else 8000; now {settings.PORT})",
        )
        parser.add_argument(
            "--no-scanner", action="store_true", help="no chain or Bacalhau scanners"
        )
        parser.add_argument("--no-executor", action="store_true", help="no executor worker")

    def handle(self, *args: Any, **options: Any) -> None:
        settings.DATA_DIR.mkdir(parents=True, exist_ok=True)
        call_command("migrate", interactive=False, verbosity=0)
        self.stdout.write(f"database ready: {settings.DATABASES['default']['NAME']}")

        stop = threading.Event()
        workers: list[threading.Thread] = []
        if not options["no_scanner"]:
            workers.append(
                threading.Thread(target=self._scanner, args=(stop,), name="scanner", daemon=True)
            )
        if settings.BACALHAU_ORCHESTRATORS and not options["no_scanner"]:
            workers.append(
                threading.Thread(
                    target=bacalhau_loop, args=(stop,), name="bacalhau-scanner", daemon=True
                )
            )
        if not options["no_executor"]:
            for n in range(settings.EXECUTOR_WORKERS):
                workers.append(
                    threading.Thread(
                        target=run_worker, args=(stop,), name=f"executor-{n}", daemon=True
                    )
                )
        for worker in workers:
            worker.start()

        def terminate(signum: int, frame: object) -> None:
            if stop.is_set():  # the second Ctrl-C: leave at once
                os.write(1, b"stopped at once\n")
                os._exit(130)
            stop.set()
            raise KeyboardInterrupt  # ends the web server's loop

        signal.signal(signal.SIGINT, terminate)
        signal.signal(signal.SIGTERM, terminate)
        host, port = options["host"], options["port"]
        self.stdout.write(f"web server on http://{host}:{port}/ (Ctrl-C stops everything)")
        self.stdout.flush()
        try:
            run(host, port, get_internal_wsgi_application(), threading=True)
        except KeyboardInterrupt:
            pass
        finally:
            self._stop(stop, workers)

    def _stop(self, stop: threading.Event, workers: list[threading.Thread]) -> None:
        """Tell every thread to stop and give them STOP_GRACE_S. A job cut short goes back to
        the queue when its lease lapses, and a scanner batch commits all or nothing, so
        leaving sooner loses nothing; a second Ctrl-C leaves at once."""

        names = ", ".join(w.name for w in workers) or "nothing else"
        self.stdout.write(f"stopping the web server, {names} (Ctrl-C again to stop at once)")
        self.stdout.flush()
        stop.set()
        wake_worker()
        deadline = time.monotonic() + STOP_GRACE_S
        for worker in workers:
            worker.join(timeout=max(0.0, deadline - time.monotonic()))
        busy = [w.name for w in workers if w.is_alive()]
        if busy:
            self.stdout.write(f"stopped; left {', '.join(busy)} mid-work (nothing is lost)")
        else:
            self.stdout.write("stopped")
        self.stdout.flush()
        # Everything has stopped: a late Ctrl-C must not kill the interpreter's exit.
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    def _scanner(self, stop: threading.Event) -> None:
        log.info("scanner following %s", settings.LOTUS_RPC_URL)

        def on_report(report: ScanReport) -> None:
            log.info("scan: %s", report.summary())
            # New deals and claims may store (or misstore) jobs' results and awarded pieces.
            flagged, followed = follow_chain()
            if flagged:
                log.info("chain flags changed on %d job(s)", flagged)
            if followed:
                log.info("chain state changed on %d award(s)", followed)

        def on_error(exc: LotusError, pause: float) -> None:
            log.warning("scan failed: %s; next pass in %.0f s", exc, pause)

        follow(stop, on_report=on_report, on_error=on_error)
