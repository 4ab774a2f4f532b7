"""Typed settings, read from ``TRAYECTO_*`` environment variables. No I/O at import."""

from __future__ import annotations

import os
import secrets
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
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
    ingest_workers: int | None = Field(
        default=None,
        ge=0,
        description="Processes that parse and check tracking requests beside the server "
        "(unset: one per core when there are two or more; 0: all in the server process).",
    )
    order_lanes: int = Field(
        default=1,
        ge=1,
        description="Threads per server process that place orders in batches (see "
        "commerce/_desk.py). One: the orders arriving while it is at the database make the "
        "next batch, and bigger batches cost less CPU an order than more lanes save.",
    )
    order_batch: int = Field(
        default=32, ge=1, description="The most orders one batch of order intake places."
    )
    order_linger_ms: float = Field(
        default=3.0,
        ge=0,
        le=1000,
        description="How long an order intake lane waits, under load, for its batch to grow "
        "to the size of its batch before (0: it places what is waiting at once). Bigger "
        "batches cost less CPU an order; a lone order never waits.",
    )
    log_level: str = Field(default="INFO")
    timezone: str = Field(
        default="Europe/Madrid",
        description="IANA time zone the console shows dates in (times are UTC inside).",
    )
    session_hours: float = Field(
        default=12.0, gt=0, le=24 * 30, description="How long a console sign-in lasts."
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="Key for keyed hashes (the suppression list of erased identifiers). "
        "Unset: generated once into $TRAYECTO_HOME/secret_key (mode 0600). Shorter than "
        "32 characters or a known placeholder is refused.",
    )

    match_upper: float = Field(
        default=0.99,
        gt=0,
        lt=1,
        description="Probabilistic matching: pairs at or above this match probability merge "
        "automatically.",
    )
    match_lower: float = Field(
        default=0.8,
        gt=0,
        lt=1,
        description="Probabilistic matching: pairs from this probability up to the upper "
        "threshold go to the review queue; below it, nothing.",
    )

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

    @property
    def resolved_ingest_workers(self) -> int:
        if self.ingest_workers is not None:
            return self.ingest_workers
        if hasattr(os, "sched_getaffinity"):
            cpus = len(os.sched_getaffinity(0))
        else:
            cpus = os.cpu_count() or 1
        return cpus if cpus > 1 else 0

    def resolved_secret_key(self) -> bytes:
        """The secret key, from the environment or the key file in home (created once)."""
        if self.secret_key is not None:
            value = self.secret_key.get_secret_value()
            if len(value) < 32 or value.lower() in _PLACEHOLDERS:
                raise ValueError(
                    "TRAYECTO_SECRET_KEY must be a random string of at least 32 characters; "
                    "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(48))'"
                )
            return value.encode()
        path = self.resolved_home / "secret_key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(48))
        return path.read_text().strip().encode()


_PLACEHOLDERS = frozenset({"changethis", "changeme", "secret", "your-secret-key"})
