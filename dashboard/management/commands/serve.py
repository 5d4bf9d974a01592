"""`manage.py serve`: the whole service on the embedded defaults, in one process.

Migrates the database, then runs the web server, the scanner loop (following LOTUS_RPC_URL)
and the bundled executor's worker threads (EXECUTOR_WORKERS) together. Ctrl-C or SIGTERM
stops all of them; a job cut short goes back to the queue when its lease lapses.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from django.core.servers.basehttp import get_internal_wsgi_application, run

from chain_scanner.lotus import LotusError
from chain_scanner.services import ScanReport, follow
from dashboard.job_worker import run_worker, wake
from dashboard.notary import refresh_chain_flags


class Command(BaseCommand):
    help = "Migrate, then run the web server, the chain scanner and the executor together."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-scanner", action="store_true", help="no chain scanner loop")
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
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, terminate)
        host, port = options["host"], options["port"]
        self.stdout.write(f"web server on http://{host}:{port}/ (Ctrl-C stops everything)")
        self.stdout.flush()
        try:
            run(host, port, get_internal_wsgi_application(), threading=True)
        except KeyboardInterrupt:
            pass
        finally:
            stop.set()
            wake()
            for worker in workers:
                worker.join(timeout=30)
            self.stdout.write("stopped")

    def _scanner(self, stop: threading.Event) -> None:
        self.stdout.write(f"scanner following {settings.LOTUS_RPC_URL}")

        def on_report(report: ScanReport) -> None:
            self.stdout.write(f"scan: {report.summary()}")
            # New deals and claims may store (or misstore) jobs' results: flag them.
            flagged = refresh_chain_flags()
            if flagged:
                self.stdout.write(f"chain flags changed on {flagged} job(s)")

        def on_error(exc: LotusError) -> None:
            self.stderr.write(f"scan failed: {exc}; retrying in {settings.SCANNER_INTERVAL_S}s")

        follow(stop, on_report=on_report, on_error=on_error)
