"""gunicorn's production defaults, read by `gunicorn dashboard.wsgi` from the repo root.

Sync workers, one request at a time each, all taking the next connection from the one
listening socket: requests wait in one line for whichever worker is free. Measured by
benchmarks/bench_api.py on 2 cores with 32 wrk connections (benchmarks/README.md), the
single-CID GET ran at 2,236-2,294 req/s with p99 16.9-24.5 ms and 0.67-0.69 ms of worker
CPU a request with these defaults (3 rounds); at 1,845-1,904 req/s, p99 31-36 ms and 0.89
ms with 2 gthread workers of 1 thread (keep-alive, connections split 16/16), where each
worker serves its own connections in a line of its own and hands each request between two
threads. Earlier, on a
faster machine, 8 threads a worker gave 1,538-1,866 req/s with p99 75-82 ms (each request
waits for the GIL again after each database round trip). dashboard/gunicorn_worker.py says
why the worker checks in from a thread of its own: long downloads and uploads are not
killed at `timeout`.

Sync workers close the connection after each response (no keep-alive) and a slow client
holds a worker: run gunicorn behind a buffering proxy (nginx), as gunicorn's deployment
advice has it. `-k gthread --threads N` on the command line runs threaded workers instead.
"""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count()))
worker_class = "dashboard.gunicorn_worker.HeartbeatSyncWorker"
accesslog = "-"
