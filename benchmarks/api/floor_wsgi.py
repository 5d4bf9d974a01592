"""bench_api's floors under the same gunicorn as the service (gunicorn.conf.py):

- `hello`: a constant JSON body, no Django, no database: what gunicorn alone costs;
- `query`: the single-CID look-up with psycopg (a connection per thread, prepared
  statement), no Django, no key check: gunicorn plus the query.

    gunicorn benchmarks.api.floor_wsgi:hello    (DATABASE_URL for `query`)
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterable
from typing import Any

StartResponse = Callable[[str, list[tuple[str, str]]], Any]
_HEADERS = [("Content-Type", "application/json")]
_HELLO = json.dumps({"cid": "b" * 59, "blessed": False, "status": "unknown"}).encode()
_local = threading.local()
_SQL = "SELECT active_until, pending_until FROM chain_scanner_blessedcid WHERE cid = %s"


def hello(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [*_HEADERS, ("Content-Length", str(len(_HELLO)))])
    return [_HELLO]


def query(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    import psycopg

    conn = getattr(_local, "conn", None)
    if conn is None:
        conn = _local.conn = psycopg.connect(os.environ["DATABASE_URL"], autocommit=True)
    cid = environ["PATH_INFO"].rsplit("/", 1)[-1]
    row = conn.execute(_SQL, [cid], prepare=True).fetchone()
    body = json.dumps({"cid": cid, "blessed": row is not None, "row": row}).encode()
    start_response("200 OK", [*_HEADERS, ("Content-Length", str(len(body)))])
    return [body]
