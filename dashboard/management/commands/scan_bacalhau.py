"""`manage.py scan_bacalhau`: import completed jobs from the Bacalhau orchestrators."""

from __future__ import annotations

import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from dashboard.bacalhau.scan import (
    OrchestratorClient,
    OrchestratorError,
    follow,
    scan_orchestrator,
)


class Command(BaseCommand):
    help = "Scan BACALHAU_ORCHESTRATORS (or --url) once, or every BACALHAU_SCAN_INTERVAL_S."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="one pass, then exit")
        parser.add_argument(
            "--url", action="append", help="an orchestrator to scan instead (repeatable)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        urls = [u.rstrip("/") for u in options["url"] or settings.BACALHAU_ORCHESTRATORS]
        if not urls:
            raise CommandError("no orchestrators: set BACALHAU_ORCHESTRATORS or pass --url")
        if not options["once"]:
            follow(threading.Event(), progress=self._line)
            return
        failed = []
        for url in urls:
            if len(url) > 500 or not url.startswith(("http://", "https://")):
                raise CommandError(f"--url {url!r} is not an http(s) URL")
            client = OrchestratorClient(url)
            try:
                report = scan_orchestrator(client, progress=self._line)
                self._line(report.summary())
                for job, why in report.not_read.items():
                    self._line(f"  not read: job {job}: {why}")
                for execution, why in report.not_imported.items():
                    self._line(f"  not imported: execution {execution}: {why}")
            except Exception as exc:  # each orchestrator fails alone
                failed.append(url)
                why = str(exc) if isinstance(exc, OrchestratorError) else repr(exc)
                self.stderr.write(f"bacalhau {url}: {why[:2000]}")
            finally:
                client.close()
        if failed:
            raise CommandError(f"{len(failed)} of {len(urls)} orchestrators could not be read")

    def _line(self, line: str) -> None:
        self.stdout.write(line)
        self.stdout.flush()
