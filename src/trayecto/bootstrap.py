"""Composition root: settings → engine → migrations → domain services, wired top to bottom.

The flow of the platform, as built so far (see docs/architecture.md):

    collect ──► store (event log) ──► [resolve, analyse, act: later issues]

``build()`` is called once by each entry point (``trayecto serve``, every CLI command,
tests); nothing else creates engines or writers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from trayecto import access, collect, commerce, db
from trayecto.settings import Settings

__all__ = ["Platform", "build"]

# The domains whose tables live in the operational store (importing them registers the
# tables on ``db.metadata``).
DOMAINS = (access, collect, commerce)


@dataclass
class Platform:
    """Everything an entry point needs, built once."""

    settings: Settings
    engine: Engine
    writer: collect.EventWriter = field(repr=False)

    def close(self) -> None:
        self.writer.stop()
        self.engine.dispose()


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
