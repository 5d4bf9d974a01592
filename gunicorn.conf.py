"""gunicorn's production defaults, read by `gunicorn dashboard.wsgi` from the repo root.

Threaded workers keep connections alive, which sync workers cannot: compute nodes ask in
bursts. 8 threads a worker keep slow clients (content uploads, /ipfs/ downloads) from
blocking the API. The price, measured by benchmarks/bench_api.py on 2 cores: each request
waits for the GIL again after each database round trip, behind the other threads, so the
single-CID GET used ~0.8-0.9 ms of worker CPU with 8 threads against ~0.6 with 1, and its
p99 was 75-80 ms against 19-63 ms (2,466-2,738 req/s with 1 thread, 1,538-1,866 with 8;
benchmarks/README.md). A gunicorn that only answers compute nodes, behind a buffering
proxy, is better served by GUNICORN_THREADS=1.
"""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count()))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", 8))
keepalive = 30
accesslog = "-"
