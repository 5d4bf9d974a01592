"""A gthread worker that shares keep-alive connections evenly between the workers of a master.

Stock gunicorn lets every worker accept from the shared listening socket, whichever the
kernel wakes first. Compute nodes keep their connections alive, and each worker serves only
its own, so an uneven split stays uneven: benchmarks/bench_api.py measured 5/27, 16/16 and
24/8 splits of 32 wrk connections over 2 workers, and p99 50 ms at 5/27 against 30 ms at
16/16.

Here each worker publishes its open-connection count in a table in anonymous shared memory,
created by the master before it forks and so inherited by every worker. A worker accepts
only while it holds at most as many connections as the least-loaded worker: the stock run
loop compares `nr_conns < worker_connections` on every iteration and registers or drops the
listener accordingly, so `worker_connections` becomes the least count + 1 (never more than
the configured cap). The balance is decided at accept time: connections already open stay
where they are.

gunicorn.conf.py calls `pre_fork` and `child_exit` from the master's hooks. The master
imports this module, so it imports no Django (the `dashboard` package's __init__ creates the
Celery app, which reads no settings until used).
"""

from __future__ import annotations

import contextlib
import mmap
import selectors
import socket
from typing import Any

from gunicorn.workers.gthread import ThreadWorker

MAX_WORKERS = 256
# A free slot: larger than any count, so min() over the table passes over it.
FREE = 2**31 - 1
# How often a worker that stopped accepting for balance looks at the table again when no
# sibling wakes it, see BalancedThreadWorker.wait_for_and_dispatch_events.
BALANCE_POLL_S = 0.05

# int32 items: [0] is the number of slots ever handed out (readers scan [1 : [0] + 1]), then
# one slot a worker. Each slot has one writer at a time: the master while no running worker
# owns it, the worker while it serves. Aligned 4-byte stores and loads need no lock.
_table: memoryview | None = None


def _master_table() -> memoryview:
    global _table
    if _table is None:
        table = memoryview(mmap.mmap(-1, 4 * (MAX_WORKERS + 1))).cast("i")
        table[0] = 0
        for slot in range(1, MAX_WORKERS + 1):
            table[slot] = FREE
        _table = table
    return _table


def _free_unowned_slots(server: Any) -> set[int]:
    """Mark FREE every slot no live worker of `server` owns; return the owned ones.

    Freeing all of them, not just the exiting worker's, also clears a slot whose worker
    left server.WORKERS without child_exit (the arbiter's kill_worker on ESRCH)."""
    table = _master_table()
    owned = {
        worker.balance_slot
        for worker in server.WORKERS.values()
        if getattr(worker, "balance_slot", None) is not None
    }
    for slot in range(1, table[0] + 1):
        if slot not in owned:
            table[slot] = FREE
    return owned


def pre_fork(server: Any, worker: Any) -> None:
    """Master, before forking `worker`: give it a slot no live worker uses.

    The slot stays FREE until the worker starts serving (BalancedThreadWorker.run): a worker
    still loading the application must not hold the others back."""
    if not isinstance(worker, BalancedThreadWorker):
        return  # `-k gthread` on the command line: a stock worker, nothing to balance
    owned = _free_unowned_slots(server)
    slot = next((s for s in range(1, MAX_WORKERS + 1) if s not in owned), None)
    if slot is None:
        server.log.warning("No connection-balancing slot left for %s: it runs unbalanced", worker)
        return
    table = _master_table()
    table[slot] = FREE
    table[0] = max(table[0], slot)
    worker.balance_table = table
    worker.balance_slot = slot


def child_exit(server: Any, worker: Any) -> None:
    """Master, once a worker is reaped (it is out of server.WORKERS): free its slot."""
    if _table is not None:
        _free_unowned_slots(server)


def connection_counts() -> list[int]:
    """The open-connection counts of the serving workers, in slot order (empty when no
    balanced worker was forked). Readable from the master and from any worker."""
    if _table is None:
        return []
    return [count for count in _table[1 : _table[0] + 1] if count != FREE]


class BalancedThreadWorker(ThreadWorker):
    balance_table: memoryview | None = None  # set by pre_fork
    balance_slot: int | None = None
    _nr_conns = 0
    _cap = 0
    _serving = False
    _wake: socket.socket | None = None

    @property
    def nr_conns(self) -> int:
        return self._nr_conns

    @nr_conns.setter
    def nr_conns(self, value: int) -> None:
        # Only the main thread changes it (accept, finish_request, the murder_* sweeps).
        self._nr_conns = value
        self._publish()

    @property
    def worker_connections(self) -> int:
        if self.balance_table is None or not self._serving:
            return self._cap
        table = self.balance_table
        least = min(table[1 : table[0] + 1])  # this worker's own slot is among them
        return min(self._cap, least + 1)

    @worker_connections.setter
    def worker_connections(self, value: int) -> None:
        self._cap = value  # ThreadWorker.__init__ sets cfg.worker_connections

    def _publish(self) -> None:
        if self.balance_table is None or self.balance_slot is None:
            return
        # A stopping worker accepts nothing more, so it must not hold the others back.
        serving = self._serving and self.alive
        self.balance_table[self.balance_slot] = self._nr_conns if serving else FREE

    def run(self) -> None:
        if self.balance_slot is not None:
            self._open_wake_socket()
        self._serving = True
        self._publish()
        super().run()

    def set_accept_enabled(self, enabled: bool) -> None:
        if not self.alive:
            self._publish()  # the run loop has ended: the slot reads FREE from here on
        if not enabled and self._accepting:
            self._wake_siblings()  # stopped above the least count, at the cap, or exiting
        super().set_accept_enabled(enabled)

    def wait_for_and_dispatch_events(self, timeout: float) -> None:
        # A worker that stopped accepting for balance looks at the table again on its next
        # event, or after the run loop's 1 s poll. Meanwhile its siblings may take enough
        # connections to make it the least loaded and stop accepting in turn: new
        # connections then wait in the listen backlog. A sibling that stops wakes the
        # others (_wake_siblings); nobody does when a worker dies and the master frees its
        # slot, so a worker stopped for balance (not for the real cap) also polls every
        # 50 ms, 20 wake-ups a second of a few microseconds while idle.
        if self.alive and not self._accepting and self._nr_conns < self._cap:
            timeout = min(timeout, BALANCE_POLL_S)
        super().wait_for_and_dispatch_events(timeout)

    # Wake-ups: without them a burst of new connections climbs a staircase, each worker in
    # turn stopping above the least count while the least loaded, stopped earlier, sleeps
    # until its poll. Measured with 32 connections opened at once on 2 workers: 12-370 ms
    # to answer them all with the 50 ms poll alone, 7-21 ms with the wake-ups, and 8-27 ms
    # with the stock worker.
    # Each worker binds a datagram socket in the abstract namespace (Linux) named after
    # the master and its slot; a worker that stops accepting sends a byte to the others.

    def _wake_address(self, slot: int) -> bytes:
        return f"\0gunicorn-balance-{self.ppid}-{slot}".encode()

    def _open_wake_socket(self) -> None:
        wake = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            wake.bind(self._wake_address(self.balance_slot))
        except OSError as e:
            self.log.warning("No balancing wake-ups (%s): the 50 ms poll alone", e)
            wake.close()
            return
        wake.setblocking(False)
        self.poller.register(wake, selectors.EVENT_READ, self._drain_wake_socket)
        self._wake = wake

    def _drain_wake_socket(self, wake: socket.socket) -> None:
        with contextlib.suppress(BlockingIOError):  # drained: the loop looks at the table
            while wake.recv(64):
                pass

    def _wake_siblings(self) -> None:
        table = self.balance_table
        if self._wake is None or table is None:
            return
        for slot in range(1, table[0] + 1):
            if slot != self.balance_slot and table[slot] != FREE:
                # OSError: its queue is full (a wake-up is pending) or it has just exited.
                with contextlib.suppress(OSError):
                    self._wake.sendto(b"\0", self._wake_address(slot))
