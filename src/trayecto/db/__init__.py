"""Operational store plumbing: shared metadata, column types, engine, unit of work, migrations.

Domains define their tables on ``metadata``; nothing here knows a domain.
"""

from trayecto.db.engine import create_db_engine, dialect_insert, write_transaction
from trayecto.db.migrate import HEAD, current_revision, head_revision, upgrade
from trayecto.db.types import JSONDoc, UTCDateTime, metadata

__all__ = [
    "HEAD",
    "JSONDoc",
    "UTCDateTime",
    "create_db_engine",
    "current_revision",
    "dialect_insert",
    "head_revision",
    "metadata",
    "upgrade",
    "write_transaction",
]
