"""Cursors for the API's per-request queries."""

from __future__ import annotations

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.utils import CursorWrapper


def prepared_cursor() -> CursorWrapper:
    """A Django cursor whose statements PostgreSQL parses and plans once per connection.

    Django's psycopg cursors bind parameters on the client, which rules out prepared
    statements, so PostgreSQL parses and plans every statement afresh; for the single-CID
    GET, planning costs more than running (benchmarks/README.md). This cursor binds on the
    server, and psycopg prepares a statement once it has run `prepare_threshold` times on
    the connection (settings.py sets it for PostgreSQL; psycopg keeps the last 100). Only
    the API's hand-written hot-path statements use it.
    On SQLite it is Django's own cursor.
    """
    # `connections[...]` once: every attribute of django.db.connection is a look-up in a
    # context-local mapping.
    db = connections[DEFAULT_DB_ALIAS]
    if db.vendor != "postgresql":
        return db.cursor()
    import psycopg  # the PostgreSQL backend has imported it already

    # What BaseDatabaseWrapper._cursor() does, with psycopg's server-binding cursor in place
    # of the ClientCursor of create_cursor(): health check, connection, thread check, query
    # logging (CaptureQueriesContext) and Django's error classes all still apply.
    db.close_if_health_check_failed()
    db.ensure_connection()
    with db.wrap_database_errors:
        return db._prepare_cursor(psycopg.Cursor(db.connection))  # type: ignore[attr-defined]
