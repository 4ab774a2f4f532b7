"""Alembic, driven from code. Migrations ship inside the package.

``upgrade`` first reads the schema's revision with one query and imports Alembic only when
there is something to do, so every CLI call and server start does not pay for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Engine

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["HEAD", "current_revision", "head_revision", "upgrade"]

MIGRATIONS = Path(__file__).with_name("migrations")

#: The newest migration's revision; a test checks it against Alembic's own answer.
HEAD = "0009"


def _config(engine: Engine) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema up to ``revision``; a no-op when it is already there."""
    if revision == "head" and current_revision(engine) == HEAD:
        return
    from alembic import command

    command.upgrade(_config(engine), revision)


def head_revision() -> str | None:
    """The head according to Alembic's script directory."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
