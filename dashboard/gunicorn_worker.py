"""gunicorn's sync worker, with a heartbeat that lets long requests finish; and gunicorn's
logger, with the keys that ride in URLs masked.

Why sync workers (benchmarks/README.md, bench_api on 2 cores): every worker takes the next
connection from the one listening socket when it is free, so requests queue in one line
for all workers. gthread workers each serve the connections they accepted, in a line of
their own: a worker descheduled for a few milliseconds stalls all of its connections, and
each request also crosses from the worker's poll thread to its request thread and back.
With 32 kept-alive wrk connections on 2 workers the gthread worker (even with the
connections split 16/16) gave the single-CID GET 1,845-1,904 req/s, p99 31-36 ms and 0.89
ms of worker CPU a request; the sync worker, which closes each connection after its
response so wrk reconnects, 2,236-2,294 req/s, p99 16.9-24.5 ms and 0.67-0.69 ms (3 rounds).

gunicorn's arbiter kills a worker that has not checked in for `timeout` seconds, and a stock
sync worker checks in only between requests: a download from /ipfs/, an upload to
/api/v1/content or a piece registration that takes longer than that would be killed in the
middle. Here a thread checks in while the worker is alive, as the poll thread of a gthread
worker does; a request that hangs is then not killed by the arbiter either, as with gthread.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from gunicorn.glogging import Logger
from gunicorn.workers.sync import SyncWorker

from dashboard.keys.logs import MaskKeys


class HeartbeatSyncWorker(SyncWorker):
    def run(self) -> None:
        threading.Thread(target=self._heartbeat, name="gunicorn-heartbeat", daemon=True).start()
        super().run()

    def _heartbeat(self) -> None:
        # self.timeout is half the arbiter's: check in four times within the arbiter's limit.
        interval = max(self.timeout / 2, 0.1)
        while self.alive:
            self.notify()
            time.sleep(interval)


class MaskingLogger(Logger):
    """gunicorn's logger, with the keys that ride in URLs (a Bacalhau probe's) masked in its
    access lines and its error log, as Django's own request lines are (settings.LOGGING)."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            if not any(isinstance(f, MaskKeys) for f in log.filters):
                log.addFilter(MaskKeys())
