"""What every simulated life shares in one run: the scenario, the catalogue, the emitter,
the run-wide counters (orders, journeys, tickets), the marketing calendar and the rhythms
(season multipliers per persona, weekly and daily curves)."""

from __future__ import annotations

import random
from dataclasses import dataclass

from trayecto.sim.catalogue import Catalogue, Demand
from trayecto.sim.clock import DAY, HOUR, day_of_year, local_midnight, weekday
from trayecto.sim.events import Emitter
from trayecto.sim.scenario import Persona, Scenario
from trayecto.sim.writer import Output

__all__ = ["Campaign", "World"]

# Local hour-of-day weights for online sessions, and Monday-to-Sunday weights.
_ONLINE_HOURS = (1, .5, .3, .2, .2, .3, .8, 2, 3, 3.5, 4, 4, 4.5, 4, 3.5, 3.5, 4, 4.5, 5, 5.5, 6.5, 7, 6, 3)  # fmt: skip
_ONLINE_DAYS = (1.0, 0.95, 0.95, 1.0, 0.9, 0.85, 1.2)
# Shops: hours 10 to 20, busy at lunchtime and after work; Saturdays busiest.
_SHOP_HOURS = (2, 3, 4, 4, 3, 2, 2, 3, 4, 5, 4)
_SHOP_DAYS = (0.8, 0.8, 0.9, 1.0, 1.3, 1.8, 0.9)

_THEMES = (
    ((1, 2), "Rebajas de invierno"), ((3, 4), "Primavera en la despensa"),
    ((5, 6), "Bodas y celebraciones"), ((7, 8), "Cosmética para el verano"),
    ((9, 10), "Aceite de cosecha temprana"), ((11, 12), "Ideas para regalar en Navidad"),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Campaign:
    id: str
    name: str
    kind: str  # email | push
    t: int

    def context(self, medium: str) -> dict[str, str]:
        return {"name": self.id, "source": self.kind, "medium": medium, "content": self.name}


def _cum(weights: tuple[float, ...]) -> list[float]:
    out, total = [], 0.0
    for w in weights:
        total += w
        out.append(total)
    return out


class World:
    def __init__(
        self, scenario: Scenario, catalogue: Catalogue, out: Output, seed: int, start: int, end: int
    ) -> None:
        self.sc = scenario
        self.cat = catalogue
        self.out = out
        self.seed = seed
        self.start = start
        self.end = end
        self.emit = Emitter(out, seed, start, end)
        self.demand = Demand(scenario, catalogue)
        types = {loc.id: loc.type for loc in scenario.locations}
        #: Locations that ship only to homes (drop-ship suppliers) and where goods for a
        #: pickup point come from instead (the e-commerce warehouse, else any warehouse).
        self.drop_ship = frozenset(i for i, t in types.items() if t == "supplier")
        self.pickup_stock = next(
            (i for t in ("ecommerce_warehouse", "warehouse") for i, u in types.items() if u == t),
            "",
        )
        self.rates = scenario.rates
        self.funnel = scenario.funnel
        self.noise = scenario.noise
        self.steps = scenario.checkout_steps
        self.friction = {(f.channel, f.step): f for f in scenario.friction}
        self.orders = 0
        self.journeys = 0
        self.tickets = 0
        self.host = f"https://www.{scenario.domain}"
        self._online_hours = _cum(_ONLINE_HOURS)
        self._shop_hours = _cum(_SHOP_HOURS)
        self._hours = list(range(24))
        self._seasons = {p.id: self._season_table(p) for p in scenario.personas}
        self.newsletters = self._calendar("email", 3, 9, 7)  # Thursdays 09:00
        self.pushes = self._calendar("push", 1, 19, 14)  # every other Tuesday 19:00

    def _season_table(self, persona: Persona) -> list[float]:
        table = [1.0] * 367
        spans = {sid: (a, b) for sid, a, b in self.sc.seasons}
        for sid, mult in persona.seasons:
            a, b = spans[sid]
            for d in range(a, b + 1):
                table[d] *= mult
        return table

    def season(self, persona: Persona, t: int) -> float:
        return self._seasons[persona.id][day_of_year(t // DAY)]

    def season_max(self, persona: Persona) -> float:
        return max(self._seasons[persona.id])

    def _calendar(self, kind: str, wday: int, hour: int, every: int) -> list[Campaign]:
        out = []
        day = self.start // DAY
        while weekday(day) != wday:
            day += 1
        n = 0
        while day * DAY < self.end:
            n += 1
            month = _month(day)
            theme = next(name for months, name in _THEMES if month in months)
            t = local_midnight(day) + hour * HOUR
            out.append(Campaign(f"{kind}-{day}", f"{theme} #{n}", kind, t))
            day += every
        return out

    def next_order_id(self, prefix: str) -> str:
        self.orders += 1
        return f"{prefix}{self.orders:08d}"

    def next_journey_id(self) -> str:
        self.journeys += 1
        return f"J{self.journeys:08d}"

    def next_ticket(self, location_id: str) -> str:
        self.tickets += 1
        return f"TK-{location_id}-{self.tickets:08d}"

    def online_time(self, rng: random.Random, day: int) -> int:
        """A local evening-heavy time on ``day`` (or a nearby day the person prefers)."""
        if rng.random() > _ONLINE_DAYS[weekday(day)] / 1.2:
            day += 1
        hour = rng.choices(self._hours, cum_weights=self._online_hours)[0]
        return local_midnight(day) + hour * HOUR + rng.randrange(HOUR)

    def shop_time(self, rng: random.Random, day: int, open_sunday: bool) -> int:
        while weekday(day) == 6 and not open_sunday:
            day += 1
        if rng.random() > _SHOP_DAYS[weekday(day)] / 1.8:
            day += 1 if weekday(day) < 5 else 0
            if weekday(day) == 6 and not open_sunday:
                day += 1
        hour = 10 + rng.choices(range(11), cum_weights=self._shop_hours)[0]
        return local_midnight(day) + hour * HOUR + rng.randrange(HOUR)


def _month(day: int) -> int:
    from datetime import date, timedelta

    return (date(1970, 1, 1) + timedelta(days=day)).month
