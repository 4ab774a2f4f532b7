"""Typed settings, read from ``TRAYECTO_*`` environment variables. No I/O at import."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


class Settings(BaseSettings):
    """Every setting of the platform; each is documented in docs/operations.md."""

    model_config = SettingsConfigDict(env_prefix="TRAYECTO_", extra="ignore")

    home: Path = Field(default=Path("var"), description="Folder for every embedded file.")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default is a SQLite file in home."
    )
    sqlite_synchronous: Literal["FULL", "NORMAL"] = Field(
        default="FULL",
        description="FULL survives power loss; NORMAL survives a process crash only.",
    )
    default_region: str = Field(default="ES", description="Default phone region (ISO 3166).")
    max_message_bytes: int = Field(default=32 * 1024, description="Largest message accepted.")
    max_batch_bytes: int = Field(default=500 * 1024, description="Largest batch accepted.")
    writer_max_rows: int = Field(
        default=5000, description="Most rows the ingest writer commits in one transaction."
    )
    log_level: str = Field(default="INFO")

    @cached_property
    def resolved_home(self) -> Path:
        return self.home.expanduser().resolve()

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.resolved_home / 'trayecto.sqlite3'}"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")
