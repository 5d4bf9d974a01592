"""`manage.py backfill_novelty`: fill the copy index from what is already stored, and measure
the results recorded before novelty was measured."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db.models import Count

from dashboard.content import index
from dashboard.models import IndexedContent, Novelty
from dashboard.novelty import services as novelty
from dashboard.worker import measure_novelty, worker_name


class Command(BaseCommand):
    help = (
        "Note every job's inputs and results and the store's pins for the copy index, index "
        "what is pending, then measure every queued result (safe to run again: nothing is "
        "indexed or measured twice)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--no-measure",
            action="store_true",
            help="queue the measurements for the workers instead of running them here",
        )

    @staticmethod
    def _measure(row: Novelty) -> str:
        return measure_novelty(row, worker=row.lease_owner)

    def handle(self, *args: Any, **options: Any) -> None:
        looked = novelty.backfill_notes()
        pending = IndexedContent.objects.filter(state=IndexedContent.State.PENDING).count()
        self.stdout.write(f"noted {looked} CIDs; {pending} to index")
        done = 0

        def indexed(item: IndexedContent) -> None:
            nonlocal done
            done += 1
            item.refresh_from_db(fields=["state", "bytes", "error"])
            why = f": {item.error}" if item.error else ""
            self.stdout.write(
                f"indexed {done}/{pending}: {item.cid} {item.state}, {item.bytes} bytes{why}"
            )

        index.index_pending(progress=indexed)
        queued = novelty.queue_unmeasured()
        self.stdout.write(f"{queued} results queued for measuring")
        if not options["no_measure"]:
            total = Novelty.objects.filter(state=Novelty.State.QUEUED).count()
            done_measuring = 0

            def report(job_id: str, state: str) -> None:
                nonlocal done_measuring
                done_measuring += 1
                self.stdout.write(f"measured {done_measuring}/{total}: job {job_id} {state}")

            novelty.measure_queued(worker=worker_name(), measure_one=self._measure, progress=report)
        states = dict(
            IndexedContent.objects.values_list("state").annotate(n=Count("pk")).order_by()
        )
        measured = dict(Novelty.objects.values_list("state").annotate(n=Count("pk")).order_by())
        self.stdout.write(f"index: {states}; novelty: {measured}")
