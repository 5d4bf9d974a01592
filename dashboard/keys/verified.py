"""API keys a process has verified, remembered while PostgreSQL tells it of every change.

Looking the key up is one of the two database round trips of every API request, a large
share of the single-CID GET's cost (benchmarks/README.md, bench_api). So on PostgreSQL a
process remembers the keys that passed authentication, keyed by the HMAC of the whole key,
and forgets all of them whenever any key changes:

- Triggers (migration 0006) `NOTIFY api_key_changed` on every update of a key other than
  its last_used_at, on every delete and truncate, inside the changing transaction, so the
  notification goes out as the change commits, whoever made it: the revoke service, the
  admin, the CLI, psql.
- Each process has one listener thread on a connection of its own. What the process
  remembers is used only while that connection is up and listening; when it drops, the
  process forgets everything and looks keys up again until it has reconnected.
- A request also checks that nothing is waiting unread on the listener's socket before it
  trusts what is remembered (a non-blocking select: microseconds, not a round trip).
- A look-up that raced a change does not remember its answer: it is stored only if no
  notification arrived since the look-up began (the generation counter).

Keys bound to a moderator account are never remembered: the account's role is read afresh
on each request. SQLite, and API_KEY_CACHE=0, look every key up.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import threading
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

log = logging.getLogger(__name__)

CHANNEL = "api_key_changed"
# How often the listener proves its connection alive with a query of its own: a peer that
# vanished without closing TCP would otherwise leave it waiting for notifications forever.
HEARTBEAT_S = 5.0
RECONNECT_S = 1.0  # first wait before reconnecting; doubles up to RECONNECT_MAX_S
RECONNECT_MAX_S = 30.0


class _State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        # HMAC of the whole key -> the key's columns, as authenticate_key loaded them
        self.entries: dict[str, tuple[Any, ...]] = {}
        self.generation = 0
        self.fd: int | None = None  # the listener's socket while it is listening
        self.backend_pid: int | None = None  # its PostgreSQL backend (tests, diagnosis)
        self.pid = os.getpid()
        self.thread: threading.Thread | None = None
        self.stop = threading.Event()

    def forget(self) -> None:
        with self.lock:
            self.generation += 1
            self.entries.clear()


_state = _State()


def enabled() -> bool:
    return bool(settings.API_KEY_CACHE) and connections[DEFAULT_DB_ALIAS].vendor == "postgresql"


def _current() -> _State:
    """This process's state; a forked child (gunicorn's workers) starts afresh."""
    global _state
    if _state.pid != os.getpid():
        _state = _State()
    return _state


def generation() -> int:
    """Taken before a look-up, handed to remember() after it."""
    state = _current()
    _ensure_listener(state)
    return state.generation


def recall(digest: str) -> tuple[Any, ...] | None:
    state = _current()
    fd = state.fd
    if fd is None:
        return None
    entry = state.entries.get(digest)
    if entry is None:
        return None
    try:
        readable, _, _ = select.select([fd], [], [], 0)
    except (OSError, ValueError):  # the listener closed its socket meanwhile
        return None
    if readable:
        # A notification (or the connection's end) is waiting for the listener thread:
        # it may be the revocation of this very key.
        return None
    return entry


def remember(digest: str, row: tuple[Any, ...], since: int) -> None:
    state = _current()
    with state.lock:
        if state.fd is not None and state.generation == since:
            state.entries[digest] = row


def forget() -> None:
    """Forget every key now, in this process (the other processes hear it from PostgreSQL
    when the change commits)."""
    _current().forget()


def stop() -> None:
    """Stop this process's listener and forget everything (tests, before dropping their
    database)."""
    state = _current()
    state.stop.set()
    if state.thread is not None:
        state.thread.join(timeout=10)
    state.thread = None
    state.stop = threading.Event()
    state.forget()


def _ensure_listener(state: _State) -> None:
    if state.thread is not None and state.thread.is_alive():
        return
    with state.lock:
        if state.thread is not None and state.thread.is_alive():
            return
        state.thread = threading.Thread(
            target=_listen, args=(state,), name="api-key-listener", daemon=True
        )
        state.thread.start()


def _listen(state: _State) -> None:
    wait = RECONNECT_S
    while not state.stop.is_set():
        db = connections.create_connection(DEFAULT_DB_ALIAS)
        try:
            db.ensure_connection()
            conn = db.connection
            conn.execute(f"LISTEN {CHANNEL}")
            with state.lock:
                state.fd = conn.fileno()
                state.backend_pid = conn.info.backend_pid
            log.debug("listening for API key changes")
            wait = RECONNECT_S
            beat = 0.0
            while not state.stop.is_set():
                for _ in conn.notifies(timeout=0.5):
                    state.forget()
                beat += 0.5
                if beat >= HEARTBEAT_S:
                    conn.execute("SELECT 1")
                    beat = 0.0
        except Exception as exc:  # noqa: BLE001 - any failure: forget, then reconnect
            log.warning("API key listener lost its connection (%s); looking keys up", exc)
        finally:
            with state.lock:
                state.fd = state.backend_pid = None
                state.generation += 1
                state.entries.clear()
            with contextlib.suppress(Exception):  # the connection is gone already
                db.close()
        state.stop.wait(wait)
        wait = min(wait * 2, RECONNECT_MAX_S)
