"""CSV import of locations, products and stock counts, with a rejects file.

Behaves like the event importer: every row is checked by the same validator as the API;
valid rows are written in transactions of ``chunk_rows``; a bad row goes to a rejects
file (JSONL: line, code, message, field) and never stops the valid ones. Re-running a file
is harmless: locations and products are upserted by id/sku, stock rows set a counted
level (the ledger records only the difference).
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from trayecto.commerce._catalogue import (
    check_code,
    check_int,
    check_location,
    check_product,
    upsert_locations,
    upsert_products,
)
from trayecto.commerce._inventory import set_count
from trayecto.commerce._listings import Listing, check_listing, upsert_listings
from trayecto.commerce._tables import listings, locations, products, stock, stock_movements
from trayecto.db import refresh_statistics, write_transaction
from trayecto.kernel import TrayectoError, ValidationError

KINDS = ("locations", "products", "stock", "listings")
#: The tables an import of each kind writes (their statistics are refreshed after it).
_LOADED = {
    "locations": [locations],
    "products": [products],
    "stock": [stock, stock_movements],
    "listings": [listings],
}
REQUIRED = {
    "locations": ("id", "name", "type", "latitude", "longitude", "capabilities"),
    "products": ("sku", "name", "price", "currency"),
    "stock": ("sku", "location_id", "on_hand"),
    "listings": ("channel", "sku", "price"),
}


@dataclass(frozen=True, slots=True)
class CatalogueImportReport:
    kind: str
    path: str
    rows: int
    stored: int
    rejected: int
    rejects_path: str
    seconds: float


@dataclass(frozen=True, slots=True)
class _StockRow:
    sku: str
    location_id: str
    on_hand: int
    safety_stock: int | None


def _check_stock(row: Mapping[str, Any]) -> _StockRow:
    safety = str(row.get("safety_stock") or "").strip()
    return _StockRow(
        sku=check_code(row.get("sku"), "sku"),
        location_id=check_code(row.get("location_id"), "location_id"),
        on_hand=check_int(row.get("on_hand"), "on_hand"),
        safety_stock=check_int(safety, "safety_stock") if safety else None,
    )


def _rows(path: Path, kind: str) -> Iterator[tuple[int, dict[str, str] | None]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        header = [h.strip() for h in reader.fieldnames or []]
        missing = [c for c in REQUIRED[kind] if c not in header]
        if missing:
            raise ValidationError(
                f"the header lacks column(s): {', '.join(missing)} "
                f"(a {kind} file needs {','.join(REQUIRED[kind])})",
                code="missing_column",
                field="file",
            )
        reader.fieldnames = header
        for row in reader:
            if None in row:
                yield reader.line_num, None
            else:
                yield reader.line_num, row


def _write_stock(conn: Connection, items: list[tuple[int, _StockRow]], reject: Reject) -> int:
    skus = {r.sku for _, r in items}
    locs = {r.location_id for _, r in items}
    known_skus = set(
        conn.execute(sa.select(products.c.sku).where(products.c.sku.in_(skus))).scalars()
    )
    known_locs = set(
        conn.execute(sa.select(locations.c.id).where(locations.c.id.in_(locs))).scalars()
    )
    stored = 0
    for line, r in sorted(items, key=lambda x: (x[1].location_id, x[1].sku, x[0])):
        if r.sku not in known_skus:
            reject(line, "unknown_sku", f"no product with sku {r.sku!r}; import it first", "sku")
            continue
        if r.location_id not in known_locs:
            reject(line, "unknown_location", f"no location {r.location_id!r}", "location_id")
            continue
        nested = conn.begin_nested()
        try:
            set_count(
                conn,
                r.location_id,
                r.sku,
                r.on_hand,
                safety_stock=r.safety_stock,
                reference="import",
            )
            nested.commit()
            stored += 1
        except TrayectoError as exc:
            nested.rollback()
            reject(line, exc.code, exc.message, exc.field)
    return stored


def _write_listings(conn: Connection, items: list[tuple[int, Listing]], reject: Reject) -> int:
    skus = {i.sku for _, i in items}
    known = set(conn.execute(sa.select(products.c.sku).where(products.c.sku.in_(skus))).scalars())
    good: dict[tuple[str, str], Listing] = {}
    for line, item in items:
        if item.sku not in known:
            reject(line, "unknown_sku", f"no product with sku {item.sku!r}; import it first", "sku")
        else:
            good[(item.channel, item.sku)] = item  # the last row of a listing wins
    return upsert_listings(conn, list(good.values())) + (
        len([1 for _, i in items if i.sku in known]) - len(good)
    )


Reject = Callable[[int, str, str, str | None], None]


def import_catalogue(
    engine: Engine,
    kind: str,
    path: Path,
    *,
    rejects_path: Path | None = None,
    chunk_rows: int = 1000,
) -> CatalogueImportReport:
    """Import a CSV of ``kind`` (locations, products or stock); see the module docstring."""
    if kind not in KINDS:
        raise ValidationError(f"kind must be one of {', '.join(KINDS)}", field="kind")
    if not path.is_file():
        raise ValidationError(f"no such file: {path}", code="file_not_found", field="file")
    rejects_path = rejects_path or path.with_name(path.name + ".rejects.jsonl")
    started = time.perf_counter()
    n_rows = stored = rejected = 0
    pending: list[tuple[int, Any]] = []

    with rejects_path.open("wb") as rejects:

        def reject(line: int, code: str, message: str, field: str | None) -> None:
            nonlocal rejected
            rejected += 1
            rejects.write(
                orjson.dumps({"line": line, "code": code, "message": message, "field": field})
                + b"\n"
            )

        def flush() -> None:
            nonlocal stored
            if not pending:
                return
            with write_transaction(engine) as conn:
                if kind == "locations":
                    upsert_locations(conn, _last_wins(pending, lambda x: x.id))
                    stored += len(pending)
                elif kind == "products":
                    upsert_products(conn, _last_wins(pending, lambda x: x.sku))
                    stored += len(pending)
                elif kind == "listings":
                    stored += _write_listings(conn, pending, reject)
                else:
                    stored += _write_stock(conn, pending, reject)
            pending.clear()

        check = {
            "locations": check_location,
            "products": check_product,
            "stock": _check_stock,
            "listings": check_listing,
        }[kind]
        for line, row in _rows(path, kind):
            n_rows += 1
            if row is None:
                reject(line, "bad_row", "row has more cells than the header", None)
                continue
            try:
                pending.append((line, check(row)))
            except ValidationError as exc:
                reject(line, exc.code, exc.message, exc.field)
            if len(pending) >= chunk_rows:
                flush()
        flush()
    if stored:  # the planner sees the new rows now, not when autovacuum next looks
        refresh_statistics(engine, _LOADED[kind])
    return CatalogueImportReport(
        kind=kind,
        path=str(path),
        rows=n_rows,
        stored=stored,
        rejected=rejected,
        rejects_path=str(rejects_path),
        seconds=time.perf_counter() - started,
    )


def _last_wins(items: list[tuple[int, Any]], key: Callable[[Any], str]) -> list[Any]:
    """One upsert per key per statement (PostgreSQL refuses to touch a row twice)."""
    by_key: dict[str, Any] = {}
    for _, item in items:
        by_key[key(item)] = item
    return list(by_key.values())
