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
from typing import Any
from uuid import UUID

from sqlalchemy.engine import Engine

from trayecto import access, collect, commerce, db, identity
from trayecto.kernel import utcnow
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
    secret_key: bytes = field(repr=False)
    follower: LogFollower = field(init=False, repr=False)
    #: Order intake: the orders that arrive together are placed together.
    order_desk: commerce.OrderDesk = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.follower = LogFollower(self.sync_identity)
        self.order_desk = commerce.OrderDesk(
            self.engine,
            lanes=self.settings.order_lanes,
            max_batch=self.settings.order_batch,
            linger=self.settings.order_linger_ms / 1000,
        )
        self.writer.on_commit = self.follower.poke

    def sync_identity(
        self,
        batch: int = 5000,
        on_progress: Callable[[int], None] | None = None,
        max_batches: int | None = None,
    ) -> int:
        """Stitch every event of the log that identity has not seen yet; returns how many
        events were read. Safe to run from several processes: each batch moves the
        checkpoint in the same transaction as its writes."""
        read = batches = 0
        while max_batches is None or batches < max_batches:
            batches += 1
            after = identity.last_processed_event(self.engine)
            events = collect.read_log(self.engine, after, batch, with_properties=False)
            if not events:
                return read
            result = identity.process_touches(
                self.engine,
                [to_touch(e) for e in events],
                self.settings.default_region,
                self.secret_key,
            )
            if result.suppressed_events:
                # Events of someone who asked to be erased: keep them only anonymised.
                collect.anonymise_events(self.engine, result.suppressed_events)
            read += len(events)
            if on_progress:
                on_progress(read)
        return read

    def ingesting(self, within: float = 1.0) -> bool:
        """Whether events are arriving: the newest one was received in the last ``within``
        seconds (UUIDv7 ids carry their time)."""
        newest = collect.query_events(self.engine, collect.EventFilter(), limit=1).data
        if not newest:
            return False
        return (utcnow() - newest[0].received_at).total_seconds() < within

    # --- privacy: flows that cross domains ------------------------------------------------

    def export_customer(self, customer_id: UUID) -> dict[str, Any]:
        """Everything held on a person, from every domain, as JSON-ready data."""
        view = identity.get_customer(self.engine, customer_id)
        refs: list[identity.EventRef] = []
        before = None
        while True:
            page = identity.event_refs(self.engine, view.id, before=before, limit=1000)
            refs += page
            if len(page) < 1000:
                break
            before = (page[-1].occurred_at, page[-1].event_id)
        bodies = collect.events_by_id(self.engine, [r.event_id for r in refs])
        ids = _identifiers_by_type(view.identities)
        history = commerce.order_history(
            self.engine,
            customer_id=view.id,
            emails=ids.get("email", []),
            phones=ids.get("phone", []),
            customer_numbers=ids.get("customer_number", []),
            loyalty_cards=ids.get("loyalty_card", []),
        )
        order_ids = sorted({str(h.order_id) for h in history})
        return {
            "customer_id": str(view.id),
            "exported_at": utcnow().isoformat(),
            "golden": view.golden,
            "identities": view.identities,
            "records": view.records,
            "consents": identity.get_consents(self.engine, view.id),
            "channels": view.channels,
            "merges": [
                {
                    "id": str(m.id),
                    "kind": m.kind,
                    "reason": m.reason,
                    "evidence": m.evidence,
                    "created_at": m.created_at.isoformat(),
                    "removed_at": m.removed_at.isoformat() if m.removed_at else None,
                }
                for m in view.merges
            ],
            "events": [bodies[r.event_id].to_dict() for r in refs if r.event_id in bodies],
            "orders": [commerce.get_order(self.engine, UUID(o)) for o in order_ids],
        }

    def erase_customer(self, customer_id: UUID, requested_by: str) -> dict[str, int]:
        """Erase a person from every store: events anonymised, orders anonymised, identity
        deleted and its identifiers suppressed, SQLite's free pages and WAL wiped. Safe to
        run again if interrupted (identity, which drives the plan, is deleted last)."""
        self.sync_identity()  # attribute whatever arrived until now
        plan = identity.plan_erasure(self.engine, customer_id)
        ids = _identifiers_by_type([{"type": k.value, "value": v} for k, v in plan.identifiers])
        counts = {
            # Every event attributed to the person's profiles; any that arrives after the
            # sync above is anonymised by identity's suppression list when it is stitched.
            "events_anonymised": collect.anonymise_events(
                self.engine, plan.event_ids, pii_values=plan.pii_values
            ),
            "orders_anonymised": commerce.anonymise_orders(
                self.engine,
                customer_ids=[plan.customer_id, *plan.profile_ids],
                emails=ids.get("email", []),
                phones=ids.get("phone", []),
                customer_numbers=ids.get("customer_number", []),
                loyalty_cards=ids.get("loyalty_card", []),
            ),
        }
        counts.update(identity.erase_identity(self.engine, plan, self.secret_key, requested_by))
        db.wipe_free_space(self.engine)
        return counts

    def close(self) -> None:
        self.order_desk.close()  # places what is queued, then its lanes stop
        self.follower.stop()
        self.writer.stop()
        self.engine.dispose()


def _identifiers_by_type(rows: list[dict[str, Any]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for r in rows:
        out.setdefault(r["type"], []).append(r["value"])
    return out


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
    return Platform(
        settings=settings, engine=engine, writer=writer, secret_key=settings.resolved_secret_key()
    )
