"""Tracking requests checked on every core: parsing, validation and row encoding of a batch
run in worker processes, so the server's own process (one interpreter lock) keeps only the
HTTP work and the group-commit writer.

``prepare_batch`` is the whole CPU-bound part of a tracking request, as a pure function of
the body: it answers the rows to append and the rejections, or why the body was refused
whole. ``IngestPool`` runs it on worker processes. The pool is an optimisation only: until
its workers are warm, or if one dies, requests are checked in the server process, with the
same function and so the same answers.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from trayecto.collect._contracts import InvalidMessage, Origin, Rejection, check_batch
from trayecto.collect._store import encode_rows

__all__ = ["IngestPool", "PreparedBatch", "malformed_json", "prepare_batch", "prepare_payload"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PreparedBatch:
    """A checked tracking body: driver-ready rows for the writer and the rejected messages,
    or, when the body is refused whole, ``error`` = (code, message, field)."""

    rows: list[tuple[Any, ...]]
    rejections: list[Rejection]
    error: tuple[str, str, str | None] | None = None


def prepare_batch(
    body: bytes,
    origin: Origin,
    received_at: datetime,
    max_message_bytes: int,
    forced_type: str | None,
    dialect: str,
) -> PreparedBatch:
    """Parse, check and encode one tracking body (see the module docstring)."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return PreparedBatch([], [], malformed_json(exc))
    return prepare_payload(payload, origin, received_at, max_message_bytes, forced_type, dialect)


def malformed_json(exc: Exception) -> tuple[str, str, str]:
    return ("malformed_json", f"the body is not valid JSON ({exc}); send one JSON object", "body")


def prepare_payload(
    payload: Any,
    origin: Origin,
    received_at: datetime,
    max_message_bytes: int,
    forced_type: str | None,
    dialect: str,
) -> PreparedBatch:
    """``prepare_batch`` of a body already parsed."""
    try:
        checked = check_batch(
            payload,
            origin=origin,
            received_at=received_at,
            max_message_bytes=max_message_bytes,
            forced_type=forced_type,
        )
    except InvalidMessage as exc:
        return PreparedBatch([], [], (exc.code, exc.message, exc.field or None))
    return PreparedBatch(encode_rows(checked.events, dialect), checked.rejections)


def _worker_init(parent: int) -> None:
    # Parsed messages are acyclic: reference counting frees them (see the importer).
    gc.disable()

    def exit_with_parent() -> None:
        # A worker must not outlive a server killed with SIGKILL (nothing would reap it).
        proc = multiprocessing.parent_process()
        if proc is not None:
            proc.join()
        os._exit(0)

    if multiprocessing.parent_process() is not None:
        threading.Thread(target=exit_with_parent, daemon=True).start()


def _ready() -> int:
    return os.getpid()


class IngestPool:
    """Worker processes for ``prepare_batch``; ``prepare`` answers None when the request
    should be checked in this process instead (pool disabled, still warming up, or broken).
    """

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None
        self._ready = False

    @property
    def ready(self) -> bool:
        return self._ready

    async def start(self) -> None:
        """Start the workers and warm them up in the background (a fresh interpreter
        imports trayecto first): the server answers meanwhile, checking in-process."""
        if self.workers <= 0 or self._pool is not None:
            return
        # "spawn": a server process has threads, and a fork copies their locks.
        ctx = multiprocessing.get_context("spawn")
        self._pool = ProcessPoolExecutor(
            self.workers, mp_context=ctx, initializer=_worker_init, initargs=(os.getpid(),)
        )
        loop = asyncio.get_running_loop()
        warm = [loop.run_in_executor(self._pool, _ready) for _ in range(self.workers)]

        async def warm_up() -> None:
            try:
                await asyncio.gather(*warm)
            except Exception:  # the in-process path goes on working
                log.exception("ingest workers failed to start; checking in-process")
                return
            self._ready = True

        self._warming = asyncio.ensure_future(warm_up())

    async def prepare(
        self,
        body: bytes,
        origin: Origin,
        received_at: datetime,
        max_message_bytes: int,
        forced_type: str | None,
        dialect: str,
    ) -> PreparedBatch | None:
        if not self._ready or self._pool is None:
            return None
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(
                self._pool,
                prepare_batch,
                body,
                origin,
                received_at,
                max_message_bytes,
                forced_type,
                dialect,
            )
        except BrokenProcessPool:
            # A worker died (killed, out of memory): this request is checked in-process and
            # a fresh pool warms up for the next ones.
            log.error("an ingest worker died; restarting the pool")
            self.close()
            await self.start()
            return None

    def close(self) -> None:
        self._ready = False
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
