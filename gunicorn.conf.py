"""gunicorn's production defaults, read by `gunicorn dashboard.wsgi` from the repo root.

Sync workers, one request at a time each, all taking the next connection from the one
listening socket: requests wait in one line for whichever worker is free (benchmarks/README.md
has the figures that chose this over threaded workers). dashboard/gunicorn_worker.py says why
the worker checks in from a thread of its own: long downloads and uploads are not killed at
`timeout`.

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
# Access and error lines with the keys that ride in URLs (a Bacalhau probe's) masked.
logger_class = "dashboard.gunicorn_worker.MaskingLogger"
