"""The order desk: orders that arrive together are placed together.

A server answers many order requests at once. Placed one by one, each costs a snapshot
statement, a write statement and a commit of its own, and the database spends more time
starting and planning statements than holding stock. The desk keeps a queue and a few
lanes (threads): a free lane takes every order waiting (up to ``max_batch``) and places
them with ``place_orders``: one snapshot, each order sourced on what the ones before it
left, one write transaction. Under load the batches grow by themselves (the orders that
arrive while a lane is at the database wait for the next free lane); alone, an order is a
batch of one and waits for nothing.

Under load a lane also waits a little (``linger``, 3 ms by default) for its batch to
reach the size of its batch before, so batches do not shrink while the requests are
still coming: each batch costs a fixed share of CPU (a snapshot, a write, a commit)
whatever its size, and with two CPUs and a GIL shared with the event loop, a lane that
fires at the first order makes many small batches that starve the loop of the CPU it
needs to read the next requests. A batch smaller than the one before waits at most
``linger`` (once, when the load falls); a lone order after a lone order never waits.

Each order still gets its own answer: a batch shares statements, not outcomes (see
``place_orders``). An order is acknowledged only after the transaction that wrote it has
committed.

A lane keeps its database connection (a ``Lease``) from one batch to the next while
orders are waiting, and gives it back to the pool before it waits for more: under load a
batch skips the pool's check-out, its liveness ping (a round trip) and the check-in; an
idle connection is still pinged before it is used again.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future

from sqlalchemy.engine import Engine

from trayecto.commerce._intake import OrderRequest
from trayecto.commerce._placement import Placed, place_orders
from trayecto.commerce._store import Lease

_STOP = None


class OrderDesk:
    def __init__(self, engine: Engine, *, lanes: int, max_batch: int, linger: float = 0.0) -> None:
        """``lanes`` threads (one can source a batch while another waits for the
        database), each placing at most ``max_batch`` orders at once (a bigger batch holds
        its stock rows longer); a lane waits up to ``linger`` seconds for its batch to
        grow to the size of its batch before (0: never); the defaults are settings
        (``TRAYECTO_ORDER_LANES``, ``TRAYECTO_ORDER_BATCH``, ``TRAYECTO_ORDER_LINGER_MS``)."""
        self._engine = engine
        self._lanes = lanes
        self._max_batch = max_batch
        self._linger = linger
        self._queue: queue.SimpleQueue[tuple[OrderRequest, Future[Placed]] | None] = (
            queue.SimpleQueue()
        )
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        #: Batches placed and the orders in them (how well requests are being grouped).
        self.batches = 0
        self.orders = 0
        self._leases: list[Lease] = []

    @property
    def checkouts(self) -> int:
        """Connections the lanes took from the pool: one per batch when idle, fewer than
        the batches under load."""
        with self._lock:
            return sum(lease.checkouts for lease in self._leases)

    def submit(self, req: OrderRequest) -> Future[Placed]:
        """Queue ``req``; the future answers what ``place_order`` would (or raises its
        error), except that the view's sourcing explanation keeps its candidates as stored
        (a table; ``place_orders(candidates=False)``): the API answers with its summary."""
        future: Future[Placed] = Future()
        with self._lock:
            if not self._threads:  # started on first use (again after ``close``)
                self._threads = [
                    threading.Thread(target=self._lane, name=f"order-desk-{n}", daemon=True)
                    for n in range(self._lanes)
                ]
                for t in self._threads:
                    t.start()
        self._queue.put((req, future))
        return future

    def place(self, req: OrderRequest) -> Placed:
        """Place ``req`` through the desk and wait for its answer."""
        return self.submit(req).result()

    def close(self) -> None:
        """Place what is queued, then stop the lanes (the next ``submit`` starts them
        again)."""
        with self._lock:
            threads, self._threads = self._threads, []
            for _ in threads:
                self._queue.put(_STOP)
        for t in threads:
            t.join()

    def _lane(self) -> None:
        lease = Lease(self._engine)
        with self._lock:
            self._leases.append(lease)
        last = 1  # the size of the lane's batch before
        try:
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    lease.release()  # about to wait: the connection goes back to the pool
                    item = self._queue.get()
                if item is _STOP:
                    return
                batch = [item]
                stop = False
                deadline = None
                # under load, wait (at most ``linger``) for as many orders as last time
                want = last if self._linger > 0 else 1
                while len(batch) < self._max_batch:
                    try:
                        more = self._queue.get_nowait()
                    except queue.Empty:
                        if len(batch) >= want:
                            break
                        if deadline is None:
                            deadline = time.monotonic() + self._linger
                        left = deadline - time.monotonic()
                        if left <= 0:
                            break
                        try:
                            more = self._queue.get(timeout=left)
                        except queue.Empty:
                            break
                    if more is _STOP:
                        stop = True
                        break
                    batch.append(more)
                last = len(batch)
                self._place(batch, lease)
                if stop:
                    return
        finally:
            lease.release()

    def _place(self, batch: list[tuple[OrderRequest, Future[Placed]]], lease: Lease) -> None:
        live = [(req, f) for req, f in batch if f.set_running_or_notify_cancel()]
        if not live:
            return
        try:
            # the answers show the explanation's summary only (web.intake)
            answers = place_orders(
                self._engine, [req for req, _ in live], candidates=False, lease=lease
            )
        except BaseException as exc:  # the database is gone: every order of it hears so
            for _, f in live:
                f.set_exception(exc)
            return
        with self._lock:  # two lanes may finish at once
            self.batches += 1
            self.orders += len(live)
        for (_, f), answer in zip(live, answers, strict=True):
            if isinstance(answer, BaseException):
                f.set_exception(answer)
            else:
                f.set_result(answer)
