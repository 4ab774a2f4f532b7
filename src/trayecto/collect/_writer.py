"""Group commit: one writer thread turns many concurrent requests into few transactions.

Each HTTP request hands its validated events to ``EventWriter.write`` and awaits the commit;
the thread takes everything queued, appends it in one transaction (``synchronous=FULL`` on
SQLite: one fsync for the whole group) and only then answers every request. Nothing is
acknowledged before it is durable, and the cost of the fsync is shared.

If a group fails (a constraint no one expected, the database gone), each request is retried
alone so that one bad request cannot fail the others; its own error reaches only it.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine

from trayecto.collect._contracts import NativeEvent
from trayecto.collect._store import append_rows_dbapi, encode_rows
from trayecto.db import sqlite_write_lock
from trayecto.kernel import UnavailableError

__all__ = ["EventWriter"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Job:
    rows: list[tuple[Any, ...]]  # driver-ready, from ``encode_rows``
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[int]
    size: int = field(init=False)

    def __post_init__(self) -> None:
        self.size = len(self.rows)


def _resolve(fut: asyncio.Future[int], value: int | BaseException) -> None:
    if fut.done():
        return
    if isinstance(value, BaseException):
        fut.set_exception(value)
    else:
        fut.set_result(value)


class EventWriter:
    """Durable, group-committed appends to the event log from async code."""

    def __init__(self, engine: Engine, *, max_rows: int = 5000) -> None:
        self._engine = engine
        self._max_rows = max_rows
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._raw: Any = None  # the writer thread's own pooled DB-API connection
        self._lock = threading.Lock()
        self.groups = 0  # transactions committed, for monitoring
        self.rows = 0
        #: Called (on the writer thread) after each commit: how followers of the log learn
        #: there is something new without polling.
        self.on_commit: Callable[[], None] | None = None

    def start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="trayecto-event-writer", daemon=True
                )
                self._thread.start()

    def stop(self) -> None:
        with self._lock:
            if self._thread is not None:
                self._queue.put(None)
                self._thread.join()
                self._thread = None

    @property
    def dialect(self) -> str:
        return self._engine.dialect.name

    async def write(self, events: Sequence[NativeEvent]) -> int:
        """Append ``events`` durably; returns how many were new (not duplicates)."""
        return await self.write_rows(encode_rows(events, self.dialect))

    async def write_rows(self, rows: list[tuple[Any, ...]]) -> int:
        """Append rows made by ``encode_rows`` for this writer's dialect (by an ingest
        worker process, say) durably; returns how many were new (not duplicates)."""
        if not rows:
            return 0
        self.start()
        loop = asyncio.get_running_loop()
        job = _Job(rows, loop, loop.create_future())
        self._queue.put(job)
        return await job.future

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                break
            jobs = [first]
            rows = first.size
            stop = False
            while rows < self._max_rows:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                jobs.append(nxt)
                rows += nxt.size
            self._commit(jobs)
            if stop:
                break
        if self._raw is not None:
            self._raw.close()
            self._raw = None

    def _commit(self, jobs: list[_Job]) -> None:
        try:
            if self._raw is None:
                self._raw = self._engine.raw_connection()
            with sqlite_write_lock(self._engine):
                counts = append_rows_dbapi(
                    self._raw.driver_connection, self._engine.dialect.name, [j.rows for j in jobs]
                )
        except Exception:
            if self._raw is not None:
                self._raw.invalidate()  # a broken connection is replaced, never reused
                self._raw = None
            if len(jobs) == 1:
                log.exception("event append failed")
                exc = UnavailableError(
                    "the event store could not commit; retry the request", code="store_unavailable"
                )
                jobs[0].loop.call_soon_threadsafe(_resolve, jobs[0].future, exc)
                return
            log.warning("group commit of %d requests failed; retrying one by one", len(jobs))
            for job in jobs:
                self._commit([job])
            return
        self.groups += 1
        self.rows += sum(j.size for j in jobs)
        if self.on_commit is not None:
            self.on_commit()
        for job, n in zip(jobs, counts, strict=True):
            job.loop.call_soon_threadsafe(_resolve, job.future, n)
