"""The bulk importer's pipeline: chunks of lines are parsed, validated, encoded **and
appended** on worker processes, one transaction a chunk, each worker with its own engine
(the CPU-bound part on every core rather than under one interpreter lock, and the rows
never travel back to be unpickled); the store's writer lock makes the workers take turns
(while one appends, the other parses), and ``append_rows`` keeps the log's id order its
commit order. Only counts and rejects come back, in file order, with at most two chunks
per worker in flight, so memory stays flat whatever the file's size. In one process (small
files, ``--workers 0``) chunks are prepared by the caller and appended by a writer thread.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy.engine import Engine

from trayecto.collect._contracts import InvalidMessage, NativeEvent, Origin, check_message
from trayecto.collect._store import append_rows, encode_rows
from trayecto.db import EngineSpec, write_transaction
from trayecto.kernel import utcnow

__all__ = [
    "PARALLEL_MIN_BYTES",
    "Bad",
    "ChunkWriter",
    "PrepareCall",
    "Prepared",
    "chunks",
    "no_cyclic_gc",
    "prepared",
    "worker_count",
]


@dataclass(frozen=True, slots=True)
class Bad:
    """A row already known to be bad when it is read (its reason travels with it)."""

    code: str
    message: str
    field: str | None


@contextmanager
def no_cyclic_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector during a bulk load.

    Parsed messages are acyclic, so reference counting frees them as chunks are written and
    memory stays flat; without the pause, each of the many young-generation collections
    walks every live message of the current chunks (measured: a third of import time).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class ChunkWriter:
    """Appends chunks of encoded rows on a second thread, one transaction each, while the
    caller prepares the next chunks: SQLite and psycopg release the GIL while they write.
    At most two chunks wait, so memory stays flat. Errors surface in the caller at the
    next ``put`` or at exit."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._queue: queue.Queue[list[tuple[Any, ...]] | None] = queue.Queue(maxsize=2)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="trayecto-import-writer")
        self.stored = 0

    def __enter__(self) -> ChunkWriter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._queue.put(None)
        self._thread.join()
        if self._error is not None and exc[0] is None:
            raise self._error

    def put(self, rows: list[tuple[Any, ...]]) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(rows)

    def _run(self) -> None:
        while (rows := self._queue.get()) is not None:
            if self._error is not None:
                continue  # drain: the caller will see the error
            try:
                with write_transaction(self._engine) as conn:
                    self.stored += append_rows(conn, rows)
            except BaseException as exc:
                self._error = exc


@dataclass(frozen=True, slots=True)
class Prepared:
    rows: list[tuple[Any, ...]]  # driver-ready, for ``append_rows`` (empty once appended)
    rejects: list[dict[str, Any]]
    lines: int
    valid: int = 0  # rows that passed (appended by the worker when ``stored`` is set)
    stored: int | None = None  # rows the worker appended (new ones); None: not appended yet


# The engine of a worker process (made by ``_open_store`` from the parent's spec).
_WORKER_ENGINE: Engine | None = None


def _open_store(spec: EngineSpec | None) -> None:
    """Worker initializer: no cyclic GC (see ``no_cyclic_gc``), and its own engine."""
    global _WORKER_ENGINE
    gc.disable()
    if spec is not None:
        _WORKER_ENGINE = (
            spec.create(pool_size=1, max_overflow=0) if "postgresql" in spec.url else spec.create()
        )


def _prepare(
    chunk: list[tuple[int, Any]],
    received_at: datetime,
    origin: Origin,
    max_bytes: int,
    dialect: str,
) -> Prepared:
    """Parse (JSONL lines come as bytes), validate and encode one chunk. Runs in a worker
    process, or in the caller when the import runs in one process."""
    events: list[NativeEvent] = []
    rejects: list[dict[str, Any]] = []
    for line_no, item in chunk:
        try:
            raw = None
            if isinstance(item, bytes):
                raw = item
                try:
                    item = orjson.loads(item)
                except orjson.JSONDecodeError as exc:
                    raise InvalidMessage("malformed_json", f"not valid JSON: {exc}", "") from None
            if isinstance(item, Bad):
                raise InvalidMessage(item.code, item.message, item.field or "")
            events.append(
                check_message(
                    item, origin=origin, received_at=received_at, max_bytes=max_bytes, raw=raw
                )
            )
        except InvalidMessage as exc:
            rejects.append(
                {
                    "line": line_no,
                    "code": exc.code,
                    "message": exc.message,
                    "field": exc.field or None,
                }
            )
    rows = encode_rows(events, dialect)
    return Prepared(rows, rejects, len(chunk), len(rows))


def chunks(items: Iterable[tuple[int, Any]], size: int) -> Iterator[list[tuple[int, Any]]]:
    chunk: list[tuple[int, Any]] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


#: Files smaller than this are imported in one process: starting workers would cost more.
PARALLEL_MIN_BYTES = 4 << 20


def worker_count(requested: int | None, size: int) -> int:
    if requested is not None:
        return max(0, requested)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return min(cpus or 1, 4) if (cpus or 1) > 1 and size >= PARALLEL_MIN_BYTES else 0


def prepared(
    chunks: Iterator[list[tuple[int, Any]]],
    work: Callable[[list[tuple[int, Any]], datetime], Prepared],
    workers: int,
    store: EngineSpec | None = None,
) -> Iterator[Prepared]:
    """Prepared chunks in file order: in this process, or on ``workers`` processes with at
    most two chunks per worker in flight (each opening ``store``, when given, to append)."""
    if workers <= 0:
        for chunk in chunks:
            yield work(chunk, utcnow())
        return
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_open_store, initargs=(store,))
    pending: deque[Future[Prepared]] = deque()
    try:
        for chunk in chunks:
            pending.append(pool.submit(work, chunk, utcnow()))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


@dataclass(frozen=True, slots=True)
class PrepareCall:
    """``_prepare`` bound to one import's settings (picklable, unlike a closure). With
    ``store``, a worker process also appends the chunk, to its own engine of that store."""

    origin: Origin
    max_bytes: int
    dialect: str
    store: EngineSpec | None = None

    def __call__(self, chunk: list[tuple[int, Any]], received_at: datetime) -> Prepared:
        done = _prepare(chunk, received_at, self.origin, self.max_bytes, self.dialect)
        engine = _WORKER_ENGINE
        if self.store is None or engine is None:  # in the caller: its writer appends
            return done
        stored = 0
        if done.rows:
            with write_transaction(engine) as conn:
                stored = append_rows(conn, done.rows)
        return Prepared([], done.rejects, done.lines, len(done.rows), stored)
