"""gunicorn's production defaults, read by `gunicorn dashboard.wsgi` from the repo root.

Threaded (gthread) workers keep connections alive, which compute nodes use: they ask in
bursts. One thread a worker by default: measured by benchmarks/bench_api.py on 2 cores, each
request of a worker with 8 threads waits for the GIL again after each database round trip,
behind the other threads; the single-CID GET ran at 1,538-1,866 req/s with p99 75-82 ms with
8 threads, and at 2,229-2,871 req/s with p99 20.6-26.3 ms with 2 workers x 1 thread, these
defaults (benchmarks/README.md).

Each worker serves only the connections it accepted, and a stock worker accepts whenever the
kernel wakes it first: the benchmark's 32 kept-alive connections split 5/27, 16/16 and 24/8,
with p99 50 ms at 5/27 against 30 ms at 16/16. The worker of dashboard/gunicorn_worker.py
accepts only while it holds no more connections than the least-loaded one; pre_fork and
child_exit below keep its shared table of counts. `-k gthread` on the command line runs the
stock worker again (the hooks leave it alone).

Like any gunicorn, run it behind a buffering proxy (nginx) so that slow clients (content
uploads, /ipfs/ downloads) do not hold a worker; without one, raise GUNICORN_THREADS.
"""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count()))
worker_class = "dashboard.gunicorn_worker.BalancedThreadWorker"
threads = int(os.environ.get("GUNICORN_THREADS", 1))
keepalive = 30
accesslog = "-"


def pre_fork(server: object, worker: object) -> None:
    """Give the new worker its slot in the balancing table (master, before the fork)."""
    from dashboard import gunicorn_worker

    gunicorn_worker.pre_fork(server, worker)


def child_exit(server: object, worker: object) -> None:
    """Free the slot of a worker the master has reaped."""
    from dashboard import gunicorn_worker

    gunicorn_worker.child_exit(server, worker)


def post_worker_init(worker: object) -> None:
    """Move everything loaded at start-up (Django, DRF, the URL conf) out of the garbage
    collector's view: a full collection then walks only what requests allocate."""
    import gc

    from django.apps import apps

    if apps.ready:  # the Django app (the benchmark's floor apps have no Django)
        from django.urls import get_resolver

        get_resolver().url_patterns  # noqa: B018 - load the URL conf before freezing
    gc.collect()
    gc.freeze()
