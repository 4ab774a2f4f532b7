"""Delivery promise: the earliest date (and slots, where offered) a fulfilment group reaches
the customer, from the source's opening days, cut-off and the transit time.

Pure. Rules (documented in docs/commerce.md):

* a location works the days in its opening hours; one without opening hours (a warehouse)
  works Monday to Saturday;
* an order placed before the cut-off (default: 17:00 for warehouses, one hour before
  closing for shops) on a working day is dispatched that day, otherwise on the next one;
* transit: the same day within 30 km from a shop or dark store, 1 day up to 400 km,
  2 days beyond; carriers do not deliver on Sundays;
* click & collect from the shop's own stock is ready two hours after placement when the
  shop is open long enough, else two hours after the next opening; with a transfer it is
  ready one hour after the first opening on or after the arrival day.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from trayecto.commerce._model import Location, LocationType, Method

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WAREHOUSE_DAYS = {d: ["08:00", "20:00"] for d in _DAYS[:6]}
PREP = timedelta(hours=2)


def _hhmm(text: str) -> time:
    h, m = text.split(":")
    return time(int(h), int(m))


def _hours(loc: Location) -> dict[str, list[str]]:
    return loc.opening_hours if loc.opening_hours is not None else _WAREHOUSE_DAYS


def _cutoff(loc: Location, day: date) -> time | None:
    span = _hours(loc).get(_DAYS[day.weekday()])
    if span is None:
        return None
    if loc.cutoff:
        return _hhmm(loc.cutoff)
    if loc.opening_hours is None:
        return time(17, 0)
    close = datetime.combine(day, _hhmm(span[1])) - timedelta(hours=1)
    return close.time()


def _next_working(loc: Location, day: date) -> date:
    for i in range(14):
        d = day + timedelta(days=i)
        if _DAYS[d.weekday()] in _hours(loc):
            return d
    return day + timedelta(days=14)


def transit_days(distance_km: float | None, source_type: LocationType) -> int:
    if distance_km is None:
        return 2
    if distance_km <= 30 and source_type in (LocationType.SHOP, LocationType.DARK_STORE):
        return 0
    return 1 if distance_km <= 400 else 2


def _add_carrier_days(day: date, n: int) -> date:
    while n > 0:
        day += timedelta(days=1)
        if day.weekday() != 6:
            n -= 1
    if day.weekday() == 6:
        day += timedelta(days=1)
    return day


def promise(
    now: datetime,
    source: Location,
    method: Method,
    *,
    distance_km: float | None,
    pickup: Location | None = None,
) -> dict[str, Any]:
    """The promise of one fulfilment group picked at ``source``."""
    local = now.astimezone(ZoneInfo(source.timezone))
    today = local.date()
    cut = _cutoff(source, today)
    if cut is not None and local.time() < cut:
        dispatch = today
    else:
        dispatch = _next_working(source, today + timedelta(days=1))
    transfer = pickup is not None and pickup.id != source.id
    out: dict[str, Any] = {"dispatch_date": dispatch.isoformat(), "transfer": transfer}
    if method is Method.DELIVERY:
        days = transit_days(distance_km, source.type)
        arrive = _add_carrier_days(dispatch, days) if days else dispatch
        out.update(
            earliest_date=arrive.isoformat(),
            transit_days=days,
            slots=list(source.slots or []),
            ready_at=None,
            explanation=(
                f"dispatched from {source.id} on {dispatch.isoformat()} "
                f"({'before' if dispatch == today else 'after'} the cut-off), "
                f"{days} day(s) in transit"
            ),
        )
        return out
    shop = pickup or source
    shop_tz = ZoneInfo(shop.timezone)
    if not transfer:
        ready = _ready_in_shop(shop, local.astimezone(shop_tz), PREP)
        out.update(
            earliest_date=ready.date().isoformat(),
            ready_at=ready.isoformat(),
            transit_days=0,
            slots=[],
            explanation=f"picked in {shop.id} from its own stock, ready two hours after "
            "placement within opening hours",
        )
        return out
    days = max(1, transit_days(distance_km, source.type))
    arrive = _add_carrier_days(dispatch, days)
    opening = _first_opening(shop, arrive)
    ready = opening + timedelta(hours=1)
    out.update(
        earliest_date=ready.date().isoformat(),
        ready_at=ready.isoformat(),
        transit_days=days,
        slots=[],
        explanation=(
            f"{shop.id} lacks the goods: a transfer from {source.id} leaves on "
            f"{dispatch.isoformat()}, arrives after {days} day(s), ready an hour after opening"
        ),
    )
    return out


def _first_opening(shop: Location, day: date) -> datetime:
    d = _next_working(shop, day)
    span = _hours(shop)[_DAYS[d.weekday()]]
    return datetime.combine(d, _hhmm(span[0]), tzinfo=ZoneInfo(shop.timezone))


def _ready_in_shop(shop: Location, local: datetime, prep: timedelta) -> datetime:
    span = _hours(shop).get(_DAYS[local.weekday()])
    if span is not None:
        opens = datetime.combine(local.date(), _hhmm(span[0]), tzinfo=local.tzinfo)
        closes = datetime.combine(local.date(), _hhmm(span[1]), tzinfo=local.tzinfo)
        start = max(local, opens)
        if start + prep <= closes:
            return _round_up(start + prep)
    return _first_opening(shop, local.date() + timedelta(days=1)) + prep


def _round_up(when: datetime) -> datetime:
    extra = (-when.minute) % 15
    rounded = when.replace(second=0, microsecond=0) + timedelta(minutes=extra)
    return rounded if rounded >= when else rounded + timedelta(minutes=15)
