"""What a batch of orders is sourced on: the snapshot read for it (``Read``), each order's
share of it (``assemble`` -> ``Snapshot``) and the locations and policies cached in the
process (``Catalog``); see ``_store`` for how it is read and written.

Pure Python over plain values, no database: compiled with mypyc (``kernel.native``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from trayecto.commerce._model import Location
from trayecto.commerce._sourcing import Policy, Site


@dataclass(frozen=True, slots=True)
class Snapshot:
    existing: UUID | None  # the order already stored under (channel, external id)
    expired_holds: bool  # some cart or payment hold on these SKUs has expired
    policy: Policy
    pickup: Location | None  # the requested pickup location, when it exists
    locations: dict[str, Location]  # the locations holding some of the order (+ pickup)
    sites: list[Site]
    available: dict[tuple[str, str], int]  # (location, SKU) -> units, channel safety deducted


def local_day(loc: Location, at: datetime) -> date:
    """The location's own calendar day at ``at``: capacity is counted per local day."""
    return at.astimezone(ZoneInfo(loc.timezone)).date()


def days_around(at: datetime) -> list[date]:
    """Every calendar day some time zone is in at ``at`` (UTC-12 to UTC+14)."""
    today = at.date()
    return [today - timedelta(days=1), today, today + timedelta(days=1)]


# --- what is cached ---------------------------------------------------------------------------


@dataclass(slots=True)
class Catalog:
    """Every location as read at ``version`` (their newest ``updated_at``), the policies
    by channel, each with its own ``updated_at``, and the SKUs found in the catalogue so
    far (a product is never deleted, so a SKU once found stays known)."""

    version: datetime | None = None
    loaded: bool = False
    locations: dict[str, tuple[Location, Site]] = field(default_factory=dict)
    policies: dict[str, tuple[datetime | None, Policy]] = field(default_factory=dict)
    skus: set[str] = field(default_factory=set)


def _site(loc: Location, picks: int | None) -> Site:
    return Site(
        id=loc.id,
        type=loc.type,
        latitude=loc.latitude,
        longitude=loc.longitude,
        capabilities=loc.capabilities,
        capacity_left=None if loc.daily_capacity is None else loc.daily_capacity - (picks or 0),
        open=loc.opening_hours != {},
        active=loc.active,
    )


@dataclass(slots=True)
class Read:
    """What one snapshot statement returned, for one order or a batch of them. ``atp`` is
    shared by the orders of a batch: each order sourced takes its units (and its picks)
    off it, so the next one is sourced on what is left."""

    existing: dict[tuple[str, str], UUID]  # (channel, external id) -> the stored order
    expired_holds: bool
    policy_at: dict[str, datetime | None]  # channel -> its policy's updated_at (None: none)
    locations_at: datetime | None
    atp: dict[tuple[str, str], int]  # (location, SKU) -> on hand - reserved - safety, > 0
    by_sku: dict[str, list[str]]  # SKU -> the locations in ``atp``, in the order read
    loads: dict[tuple[str, date], int]  # (location, day) -> picks booked, around today

    @classmethod
    def empty(cls) -> Read:
        return cls({}, False, {}, None, {}, {}, {})

    def add_stock(self, location_id: str, sku: str, atp: int) -> None:
        self.atp[(location_id, sku)] = atp
        self.by_sku.setdefault(sku, []).append(location_id)

    def add_rows(self, rows: Iterable[Sequence[Any]]) -> None:
        """The rows of PostgreSQL's snapshot statement (``_store_pg._PG_SNAPSHOT``), each
        ``(kind, a, b, n, day, when, found, flag)``; kind 2: stock (location, SKU, units),
        3: picks booked (location, day, picks), 4: a channel's policy version, 5: an order
        stored under (channel, external id), 0: the locations' version and expired holds."""
        atp, by_sku = self.atp, self.by_sku
        for kind, a, b, n, day, when, found, flag in rows:
            if kind == 2:
                atp[(a, b)] = n
                held = by_sku.get(b)
                if held is None:
                    by_sku[b] = [a]
                else:
                    held.append(a)
            elif kind == 3:
                self.loads[(a, day)] = n
            elif kind == 5:
                self.existing[(a, b)] = found
            elif kind == 4:
                self.policy_at[a] = when
            else:
                self.locations_at, self.expired_holds = when, flag

    def take(
        self, holds: Iterable[tuple[str, str, int]], picks: Iterable[tuple[str, date]]
    ) -> None:
        """Book an order's units and picks in the snapshot (for the next order of a batch)."""
        for loc_id, sku, qty in holds:
            self.atp[(loc_id, sku)] = self.atp.get((loc_id, sku), 0) - qty
        for key in picks:
            self.loads[key] = self.loads.get(key, 0) + 1


def assemble(
    catalog: Catalog,
    channel: str,
    external_id: str,
    skus: Sequence[str],
    read: Read,
    load_policy: Callable[[str], Policy],
    load_locations: Callable[[], Iterable[Location]],
    pickup_id: str | None,
    at: datetime,
) -> Snapshot:
    """One order's snapshot from what was read, refreshing the cache first when it is
    stale."""
    policy_at = read.policy_at.get(channel)
    cached = catalog.policies.get(channel)
    if cached is None or cached[0] != policy_at:
        cached = (policy_at, load_policy(channel) if policy_at is not None else Policy())
        catalog.policies[channel] = cached
    policy = cached[1]
    if not catalog.loaded or catalog.version != read.locations_at:
        catalog.locations = {loc.id: (loc, _site(loc, None)) for loc in load_locations()}
        catalog.version, catalog.loaded = read.locations_at, True
    entries = catalog.locations
    locs: dict[str, Location] = {}
    sites: list[Site] = []
    available: dict[tuple[str, str], int] = {}
    extra = policy.safety_stock
    loads = read.loads

    def add(loc_id: str) -> Location | None:
        entry = entries.get(loc_id)
        if entry is None:  # created after the snapshot's version: next time
            return None
        loc, site = entry
        locs[loc_id] = loc
        if loc.daily_capacity is not None:
            site = _site(loc, loads.get((loc_id, local_day(loc, at))))
        sites.append(site)
        return loc

    atp = read.atp
    for sku in skus:
        for loc_id in read.by_sku.get(sku, ()):
            if loc_id not in locs and add(loc_id) is None:
                continue
            left = atp[(loc_id, sku)]
            if left > extra:
                available[(loc_id, sku)] = left - extra
    pickup = None
    if pickup_id is not None and pickup_id in entries:
        pickup = locs.get(pickup_id) or add(pickup_id)
    return Snapshot(
        read.existing.get((channel, external_id)),
        read.expired_holds,
        policy,
        pickup,
        locs,
        sites,
        available,
    )
