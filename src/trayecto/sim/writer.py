"""Where the simulation goes: per-source JSONL event files, CSV tables and ``truth/``.

Everything streams: events are buffered per source and written in blocks of about
256 KiB, CSV rows go straight to buffered files, so memory stays flat however many
customers are simulated. Files are opened in a fixed order and written in generation
order, so the same run writes the same bytes.

With ``compress`` (a gzip level, 1 to 9) the event files are ``<source>.jsonl.gz``: each
block goes through one ``zlib`` stream per file with a fixed header (no name, mtime 0),
so the decompressed bytes are exactly the plain files' and the same run still writes the
same bytes.
"""

from __future__ import annotations

import csv
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from trayecto.sim.scenario import Scenario

__all__ = ["MAX_LEVEL", "TABLES", "Output"]

_FLUSH_BYTES = 256 * 1024
#: gzip levels: 1 is the fastest (about 300 MB/s a core on JSONL, 12x smaller), 9 the smallest.
MAX_LEVEL = 9

#: Every CSV the simulator writes (relative path → header).
TABLES: dict[str, Sequence[str]] = {
    "customers.csv": (
        "record_id", "source", "first_name", "last_name", "email", "phone", "birth_date",
        "gender", "address_line1", "postcode", "city", "region", "country",
        "customer_number", "loyalty_card", "created_at",
    ),
    "orders.csv": (
        "order_id", "channel", "source", "location_id", "placed_at", "customer_ref",
        "email", "fulfilment", "fulfilment_location", "status", "currency", "subtotal",
        "discount", "shipping", "tax", "total", "items", "coupon",
        "ship_line1", "ship_postcode", "ship_city", "ship_country",
        "shipped_at", "ready_at", "done_at", "returned_at", "returned_sku", "return_reason", "refunded_at",
    ),
    "order_lines.csv": ("order_id", "line", "sku", "quantity", "unit_price", "amount"),
    "truth/persons.csv": (
        "person_id", "persona", "secondary_persona", "household_id", "first_name",
        "last_name", "gender", "birth_date", "email", "email2", "phone", "city", "postcode",
        "customer_number", "account_shared", "loyalty_card", "has_app", "devices",
        "active_from",
    ),
    "truth/identifiers.csv": ("kind", "value", "person_id", "shared"),
    "truth/records.csv": ("record_id", "person_id", "noise"),
    "truth/noise.csv": ("record_id", "person_id", "field", "kind"),
    "truth/journeys.csv": (
        "journey_id", "person_id", "persona", "pattern", "category", "stimulus",
        "started_at", "research_channel", "decision_channel", "outcome", "drop_step",
        "order_id", "friction",
    ),
    "truth/orders.csv": ("order_id", "person_id", "journey_id"),
}  # fmt: skip


class Output:
    """Open sinks for one run under ``root``; ``close()`` flushes and closes them all."""

    def __init__(self, root: Path, scenario: Scenario, *, compress: int = 0) -> None:
        if not 0 <= compress <= MAX_LEVEL:
            raise ValueError(f"compress must be a gzip level from 1 to {MAX_LEVEL}, or 0")
        self.root = root
        (root / "events").mkdir(parents=True, exist_ok=True)
        (root / "truth").mkdir(parents=True, exist_ok=True)
        self.event_paths: dict[str, Path] = {}
        self._events: dict[str, IO[bytes]] = {}
        self._buffers: dict[str, list[bytes]] = {}
        self._sizes: dict[str, int] = {}
        self.counts: dict[str, int] = {}
        # One gzip stream per event file (wbits 31: gzip framing, header without name/mtime).
        self._zip: dict[str, Any] = {}
        suffix = ".jsonl.gz" if compress else ".jsonl"
        for s in scenario.sources:
            path = root / "events" / f"{s.slug}{suffix}"
            self.event_paths[s.key] = path
            self._events[s.key] = path.open("wb")
            if compress:
                self._zip[s.key] = zlib.compressobj(compress, zlib.DEFLATED, 31)
            self._buffers[s.key] = []
            self._sizes[s.key] = 0
            self.counts[s.key] = 0
        self._files: list[IO[str]] = []
        self.rows: dict[str, int] = {}
        self._writers: dict[str, Any] = {}
        for name, header in TABLES.items():
            fh = (root / name).open("w", newline="", encoding="utf-8", buffering=1 << 16)
            self._files.append(fh)
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(header)
            self._writers[name] = w
            self.rows[name] = 0

    def event(self, source: str, line: bytes) -> None:
        """Append one encoded message (with its newline) to ``source``'s file."""
        buf = self._buffers[source]
        buf.append(line)
        self.counts[source] += 1
        size = self._sizes[source] + len(line)
        if size >= _FLUSH_BYTES:
            self._write(source, b"".join(buf))
            buf.clear()
            size = 0
        self._sizes[source] = size

    def _write(self, source: str, block: bytes) -> None:
        z = self._zip.get(source)
        self._events[source].write(z.compress(block) if z is not None else block)

    def row(self, table: str, values: Sequence[Any]) -> None:
        self._writers[table].writerow(values)
        self.rows[table] += 1

    @property
    def total_events(self) -> int:
        return sum(self.counts.values())

    def close(self) -> None:
        for key, fh in self._events.items():
            if self._buffers[key]:
                self._write(key, b"".join(self._buffers[key]))
                self._buffers[key].clear()
            z = self._zip.pop(key, None)
            if z is not None:
                fh.write(z.flush())
            fh.close()
        for f in self._files:
            f.close()
