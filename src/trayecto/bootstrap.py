"""Composition root: settings → engine → migrations → domain services, wired top to bottom.

The flow of the platform, as built so far (see docs/architecture.md):

    collect ──► event log ──► resolve (identity follows the log) ──► customer 360
                   commerce (catalogue, stock, orders) ─┘
    [analyse, act: later issues]

``build()`` is called once by each entry point (``trayecto serve``, every CLI command,
tests); nothing else creates engines or writers.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from trayecto import access, collect, commerce, db, identity
from trayecto.settings import Settings

__all__ = ["LogFollower", "Platform", "build", "to_touch"]

log = logging.getLogger(__name__)

# The domains whose tables live in the operational store (importing them registers the
# tables on ``db.metadata``).
DOMAINS = (access, collect, commerce, identity)


@dataclass
class Platform:
    """Everything an entry point needs, built once."""

    settings: Settings
    engine: Engine
    writer: collect.EventWriter = field(repr=False)
    follower: LogFollower = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.follower = LogFollower(self.sync_identity)
        self.writer.on_commit = self.follower.poke

    def sync_identity(
        self, batch: int = 5000, on_progress: Callable[[int], None] | None = None
    ) -> int:
        """Stitch every event of the log that identity has not seen yet; returns how many
        events were read. Safe to run from several processes: each batch moves the
        checkpoint in the same transaction as its writes."""
        read = 0
        while True:
            after = identity.last_processed_event(self.engine)
            events = collect.read_log(self.engine, after, batch)
            if not events:
                return read
            identity.process_touches(
                self.engine, [to_touch(e) for e in events], self.settings.default_region
            )
            read += len(events)
            if on_progress:
                on_progress(read)

    def close(self) -> None:
        self.follower.stop()
        self.writer.stop()
        self.engine.dispose()


def to_touch(e: collect.NativeEvent) -> identity.Touch:
    """An event of the log as identity needs it."""
    return identity.Touch(
        event_id=e.id,
        source_id=e.source_id,
        channel=e.channel,
        type=e.type,
        user_id=e.user_id,
        anonymous_id=e.anonymous_id,
        previous_id=e.previous_id,
        traits=e.traits,
        context=e.context,
        occurred_at=e.occurred_at,
    )


class LogFollower:
    """Keeps identity up to date with the log in real time: a thread woken by every commit
    of the ingest writer (and every second, for events written by other processes)."""

    def __init__(self, sync: Callable[[], int], interval: float = 1.0) -> None:
        self._sync = sync
        self._interval = interval
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poke(self) -> None:
        self._wake.set()

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="trayecto-follower", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._wake.set()
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self._sync()
            except Exception:
                log.exception("identity sync failed; retrying on the next commit")


def build(settings: Settings | None = None, *, migrate: bool = True) -> Platform:
    """Build the platform from ``settings`` (default: the environment)."""
    settings = settings or Settings()
    settings.resolved_home.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    engine = db.create_db_engine(
        settings.resolved_database_url, sqlite_synchronous=settings.sqlite_synchronous
    )
    if migrate:
        db.upgrade(engine)
    writer = collect.EventWriter(engine, max_rows=settings.writer_max_rows)
    return Platform(settings=settings, engine=engine, writer=writer)
