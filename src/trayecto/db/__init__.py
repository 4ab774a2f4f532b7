"""Operational store plumbing: shared metadata, column types, engine, unit of work, migrations.

Domains define their tables on ``metadata``; nothing here knows a domain.
"""

from trayecto.db.bulk import bulk_insert, bulk_update
from trayecto.db.engine import (
    EngineSpec,
    create_db_engine,
    dialect_insert,
    engine_spec,
    refresh_statistics,
    sqlite_write_lock,
    wipe_free_space,
    write_transaction,
)
from trayecto.db.migrate import HEAD, current_revision, head_revision, upgrade
from trayecto.db.types import JSONDoc, UTCDateTime, from_epoch_us, metadata, to_epoch_us

__all__ = [
    "HEAD",
    "EngineSpec",
    "JSONDoc",
    "UTCDateTime",
    "bulk_insert",
    "bulk_update",
    "create_db_engine",
    "current_revision",
    "dialect_insert",
    "engine_spec",
    "from_epoch_us",
    "head_revision",
    "metadata",
    "refresh_statistics",
    "sqlite_write_lock",
    "to_epoch_us",
    "upgrade",
    "wipe_free_space",
    "write_transaction",
]
