"""gunicorn's production defaults, read by `gunicorn dashboard.wsgi` from the repo root.

Threaded workers keep connections alive: compute nodes ask in bursts, and a new TCP
connection per request cost a third of the eligibility API's throughput (bench_api).
"""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count()))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", 8))
keepalive = 30
accesslog = "-"
