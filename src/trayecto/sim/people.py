"""Customers: who they truly are (Faker ``es_ES`` identities, personas, households,
devices) and the noisy records the retailer's systems keep about them.

Faker runs once per person, for the identity only; everything else comes from the
person's own ``random.Random``. Identifiers that must be unique (emails, phones, card and
buyer numbers) embed the person's index, so no run-wide set of seen values is needed and
memory stays flat.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta

from faker import Faker

from trayecto.sim.clock import DAY, iso
from trayecto.sim.events import Device, new_device
from trayecto.sim.noise import ascii_fold, format_phone, typo
from trayecto.sim.scenario import City, Location, Persona, Scenario
from trayecto.sim.writer import Output

__all__ = ["People", "Person", "Record"]

#: A customers.csv row and the noise applied to it, as (field, kind) pairs.
Record = tuple[list[str], list[tuple[str, str]]]

_DOMAINS = (
    ("gmail.com", 45), ("hotmail.com", 18), ("yahoo.es", 7), ("outlook.es", 8),
    ("hotmail.es", 7), ("icloud.com", 8), ("telefonica.net", 4), ("movistar.es", 3),
)  # fmt: skip
_WORK_DOMAINS = ("empresa.es", "consultoria-iberica.es", "grupoalba.com", "ayto.es", "uni.es")


@dataclass(slots=True)
class Person:
    index: int
    id: str
    persona: Persona
    secondary: Persona | None
    gender: str
    first_name: str
    last_name: str
    birth_date: date
    city: City
    address: str
    postcode: str
    email: str
    email2: str | None
    phone: str
    household: str | None
    customer_number: str | None
    account_shared: bool
    loyalty_card: str | None
    shop: Location | None
    web: list[Device]
    app: Device | None
    wa_id: str
    social_handle: str | None
    marketplace_id: str
    email_optin: bool
    active_from: int
    joined_at: int
    rng: random.Random = field(repr=False)
    # Records systems keep about the person: (customers.csv row, noise applied).
    records: list[Record] = field(default_factory=list, repr=False)


def _ean13(body: str) -> str:
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body))
    return body + str((10 - total % 10) % 10)


class People:
    """Creates people one at a time, in index order, and writes their truth and records."""

    def __init__(self, scenario: Scenario, seed: int, start: int, end: int, out: Output) -> None:
        self.sc = scenario
        self.seed = seed
        self.start = start
        self.end = end
        self.out = out
        self.fake = Faker("es_ES")
        self.fake.seed_instance(seed)
        self._personas = [p for p in scenario.personas]
        self._persona_cum = _cum([p.share for p in scenario.personas])
        self._city_cum = _cum([c.weight for c in scenario.cities])
        self._domain_cum = _cum([w for _, w in _DOMAINS])
        self._phone_formats = [f for f, _ in scenario.phone_formats]
        self._phone_cum = _cum([w for _, w in scenario.phone_formats])
        self._shops = {loc.id: loc for loc in scenario.shops}
        # Customers use any shop in their own city, else the city's nominated one.
        self._city_shops = {
            c.name: [loc for loc in scenario.shops if loc.city == c.name]
            or ([self._shops[c.shop]] if c.shop else [])
            for c in scenario.cities
        }
        self._prev: Person | None = None
        self.noise = scenario.noise

    def phone_as_typed(self, rng: random.Random, e164: str) -> str:
        fmt = rng.choices(self._phone_formats, cum_weights=self._phone_cum)[0]
        return format_phone(e164, fmt)

    def make(self, index: int) -> Person:
        sc, fake, noise = self.sc, self.fake, self.noise
        rng = random.Random(self.seed * 10_000_019 + index)
        prev = self._prev
        in_household = (
            prev is not None and prev.household is None and rng.random() < noise["household"]
        )
        persona = rng.choices(self._personas, cum_weights=self._persona_cum)[0]
        secondary = None
        if rng.random() < sc.secondary_persona_rate:
            others = [p for p in self._personas if p is not persona]
            secondary = rng.choice(others)
        gender = (
            "F" if rng.random() < (0.62 if persona.id in ("cosmetics", "gift") else 0.5) else "M"
        )
        first = fake.first_name_female() if gender == "F" else fake.first_name_male()
        last = f"{fake.last_name()} {fake.last_name()}"
        birth = date(2026, 1, 1) - timedelta(days=int(rng.triangular(19, 82, 44) * 365.25))
        if in_household and prev is not None:
            city, address, postcode = prev.city, prev.address, prev.postcode
            household = f"H{prev.index + 1:07d}"
            prev.household = household
        else:
            city = rng.choices(sc.cities, cum_weights=self._city_cum)[0]
            address = fake.street_address()
            postcode = f"{city.postcode_prefix}{rng.randrange(1, 80):03d}"
            household = None
        stem = _email_stem(rng, first, last)
        domain = rng.choices(_DOMAINS, cum_weights=self._domain_cum)[0][0]
        email = f"{stem}{index + 1}@{domain}"
        email2 = None
        if rng.random() < noise["second_email"]:
            email2 = f"{ascii_fold(first[0] + last.split()[0]).lower()}{index + 1}@{rng.choice(_WORK_DOMAINS)}"
        mobile = (index * 7919 + self.seed * 104_729 + 13) % 10**8
        phone = f"+34{6 if mobile % 3 else 7}{mobile:08d}"
        has_app = rng.random() < persona.app_rate
        has_account = has_app or rng.random() < persona.account_rate
        shared = False
        customer_number = None
        if (
            in_household
            and prev is not None
            and prev.customer_number
            and rng.random() < noise["shared_account"]
        ):
            customer_number, shared = prev.customer_number, True
            prev.account_shared = True
        elif has_account:
            customer_number = f"C{index + 1:07d}"
        loyalty = None
        if rng.random() < persona.loyalty_rate:
            loyalty = _ean13(f"29{(index * 15_485_863 + self.seed) % 10**10:010d}")
        # A person was already a customer before the window, or arrives during it.
        window = self.end - self.start
        if rng.random() < 0.55:
            active_from = self.start - rng.randrange(DAY, 3 * 365 * DAY)
        else:
            active_from = self.start + int(rng.random() * 0.9 * window)
        app_name = sc.brand
        web = [
            new_device(
                rng, rng.choice(("desktop", "mobile_web")), will_identify=True, app_name=app_name
            )
        ]
        if rng.random() < noise["extra_device"]:
            kind = "mobile_web" if web[0].kind == "desktop" else "desktop"
            web.append(
                new_device(
                    rng,
                    kind,
                    will_identify=rng.random() >= noise["never_identified"],
                    app_name=app_name,
                )
            )
        app = (
            new_device(rng, rng.choice(("ios", "android")), will_identify=True, app_name=app_name)
            if has_app
            else None
        )
        handle = None
        if rng.random() < sc.rates["social_handle"]:
            handle = (
                f"{ascii_fold(first).lower()}_{ascii_fold(last.split()[0]).lower()[:5]}{index + 1}"
            )
        person = Person(
            index=index, id=f"P{index + 1:07d}", persona=persona, secondary=secondary,
            gender=gender, first_name=first, last_name=last, birth_date=birth, city=city,
            address=address, postcode=postcode, email=email, email2=email2, phone=phone,
            household=household, customer_number=customer_number, account_shared=shared,
            loyalty_card=loyalty, shop=rng.choice(shops) if (shops := self._city_shops[city.name]) else None,
            web=web, app=app, wa_id=phone[1:], social_handle=handle,
            marketplace_id=f"MKT-{(index * 104_729 + self.seed) % 10**9:09d}",
            email_optin=rng.random() < persona.email_optin, active_from=active_from,
            joined_at=max(active_from, self.start - 5 * 365 * DAY), rng=rng,
        )  # fmt: skip
        self._records(person)
        if prev is not None:
            self.write(prev)  # its household and account sharing are final now
        self._prev = person
        return person

    def finish(self) -> None:
        if self._prev is not None:
            self.write(self._prev)
            self._prev = None

    def write(self, p: Person) -> None:
        """The person's truth row, identifiers and the records systems keep of them."""
        out = self.out
        devices = [d.anon_id for d in p.web] + ([p.app.anon_id] if p.app else [])
        out.row(
            "truth/persons.csv",
            [
                p.id, p.persona.id, p.secondary.id if p.secondary else "", p.household or "",
                p.first_name, p.last_name, p.gender, p.birth_date.isoformat(), p.email,
                p.email2 or "", p.phone, p.city.name, p.postcode, p.customer_number or "",
                int(p.account_shared), p.loyalty_card or "", int(p.app is not None),
                "|".join(devices), iso(p.active_from),
            ],
        )  # fmt: skip
        ids = [("anonymous_id", d) for d in devices]
        ids += [("email", p.email), ("phone", p.phone), ("whatsapp_id", p.wa_id)]
        ids.append(("marketplace_buyer", p.marketplace_id))
        if p.email2:
            ids.append(("email", p.email2))
        if p.customer_number:
            ids.append(("customer_number", p.customer_number))
        if p.loyalty_card:
            ids.append(("loyalty_card", p.loyalty_card))
        if p.social_handle:
            ids.append(("social_handle", p.social_handle))
        for kind, value in ids:
            shared = int(kind == "customer_number" and p.account_shared)
            out.row("truth/identifiers.csv", [kind, value, p.id, shared])
        for row, applied in p.records:
            out.row("customers.csv", row)
            out.row("truth/records.csv", [row[0], p.id, "|".join(k for _, k in applied)])
            for fld, kind in applied:
                out.row("truth/noise.csv", [row[0], p.id, fld, kind])

    def _records(self, p: Person) -> None:
        rng, noise = p.rng, self.noise
        created = iso(p.joined_at)
        if p.customer_number and not p.account_shared:
            first, last = p.first_name, p.last_name
            applied = []
            if rng.random() < noise["web_lowercase_name"]:
                first, last = first.lower(), last.lower()
                applied.append(("first_name", "lowercase"))
            phone = self.phone_as_typed(rng, p.phone) if rng.random() < 0.6 else ""
            self._record(
                p, f"WEB-{p.customer_number}", "web", first, last, p.email, phone,
                p.birth_date.isoformat() if rng.random() < 0.4 else "", p.customer_number, "",
                created, applied,
            )  # fmt: skip
        if p.loyalty_card:
            in_shop = p.shop is not None and rng.random() < 0.75
            email = p.email2 if p.email2 and rng.random() < noise["second_email_used"] else p.email
            first, last, birth = p.first_name, p.last_name, p.birth_date.isoformat()
            applied = []
            if in_shop:
                if rng.random() < noise["signup_no_accents"]:
                    first, last = ascii_fold(first).upper(), ascii_fold(last).upper()
                    applied.append(("last_name", "no_accents"))
                if rng.random() < noise["signup_typo"]:
                    if rng.random() < 0.5:
                        last = typo(last, rng)
                        applied.append(("last_name", "typo"))
                    else:
                        local, _, dom = email.partition("@")
                        email = f"{typo(local, rng)}@{dom}"
                        applied.append(("email", "typo"))
                if rng.random() < noise["signup_swapped_names"]:
                    first, last = last, first
                    applied.append(("first_name", "swapped_with_last_name"))
                if rng.random() < noise["signup_birth_date_swapped"]:
                    # Day and month swapped where that is still a date; otherwise the other
                    # common slip, the last two digits of the year transposed (1987 → 1978).
                    bd = p.birth_date
                    if bd.day <= 12 and bd.day != bd.month:
                        birth = bd.replace(month=bd.day, day=bd.month).isoformat()
                        applied.append(("birth_date", "day_month_swapped"))
                    else:
                        y = f"{bd.year:04d}"
                        year = int(y[:2] + y[3] + y[2])
                        if year == bd.year:
                            year -= 1
                        try:
                            birth = bd.replace(year=year).isoformat()
                        except ValueError:  # 29 February in a common year
                            birth = bd.replace(year=year, day=28).isoformat()
                        applied.append(("birth_date", "year_digits_swapped"))
            source = f"store:{p.shop.id}" if in_shop and p.shop else "loyalty"
            self._record(
                p, f"LOY-{p.loyalty_card}", source, first, last, email,
                self.phone_as_typed(rng, p.phone), birth, p.customer_number or "", p.loyalty_card,
                created, applied,
            )  # fmt: skip

    def _record(
        self, p: Person, record_id: str, source: str, first: str, last: str, email: str,
        phone: str, birth: str, customer_number: str, card: str, created: str,
        applied: list[tuple[str, str]],
    ) -> None:  # fmt: skip
        row = [
            record_id, source, first, last, email, phone, birth, p.gender, p.address,
            p.postcode, p.city.name, p.city.region, "ES", customer_number, card, created,
        ]  # fmt: skip
        p.records.append((row, applied))


def _email_stem(rng: random.Random, first: str, last: str) -> str:
    f = ascii_fold(first).lower().replace(" ", "")
    ls = ascii_fold(last).lower().split()
    pattern = rng.randrange(4)
    if pattern == 0:
        return f"{f}.{ls[0]}"
    if pattern == 1:
        return f"{f}{ls[0]}"
    if pattern == 2:
        return f"{f[0]}{ls[0]}.{ls[1]}"
    return f"{f}_{ls[0][:4]}"


def _cum(weights: list[float]) -> list[float]:
    out, total = [], 0.0
    for w in weights:
        total += w
        out.append(total)
    return out
