"""gunicorn's production defaults, read by `gunicorn dashboard.wsgi` from the repo root.

Threaded workers keep connections alive, which sync workers cannot: compute nodes ask in
bursts. In bench_api, 2 workers x 8 threads served 845 single-CID req/s where 4 sync
workers served 572 (two runs minutes apart on a noisy 2-core VM: see benchmarks/README.md).
"""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count()))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", 8))
keepalive = 30
accesslog = "-"
