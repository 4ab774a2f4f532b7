"""One person's life with the brand: sign-ups, marketing, and purchase journeys across
channels (stimulus → research → evaluation → decision), each written to ``truth/``.

A journey follows one of the scenario's patterns: ``online`` (research and buy on the
web or the app), ``ropo`` (research online, buy in a shop), ``showroom`` (see it in a shop,
buy online), ``shop`` (walk in and buy) and ``marketplace``. Fulfilment and post-sale
live in ``aftersale``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trayecto.sim.aftersale import Basket, Order, place_order
from trayecto.sim.catalogue import Product
from trayecto.sim.clock import DAY, MINUTE, SECOND, iso
from trayecto.sim.events import Device
from trayecto.sim.people import Person
from trayecto.sim.scenario import Persona
from trayecto.sim.world import Campaign, World

__all__ = ["Life"]

_STIMULI = ("paid_social", "search_ad", "social", "referral")
_REFERRERS = {
    "paid_social": ("https://www.instagram.com/", "instagram", "paid_social"),
    "search_ad": ("https://www.google.es/", "google", "cpc"),
    "social": ("https://www.facebook.com/", "facebook", "social"),
    "referral": ("https://wa.me/", "friend", "referral"),
}
_CHAT = (
    "¿Hacéis envíos a Canarias?", "¿Cuánto tarda un pedido a domicilio?",
    "¿Este aceite es de cosecha de este año?", "¿Puedo recoger el pedido en tienda?",
    "¿La crema es apta para piel sensible?", "¿Podéis incluir una tarjeta de regalo?",
)  # fmt: skip


@dataclass(slots=True)
class Journey:
    id: str
    persona: Persona
    pattern: str
    category: str
    stimulus: str
    started_at: int
    research: str = ""
    decision: str = ""
    outcome: str = "browsed"
    drop_step: str = ""
    order_id: str = ""
    friction: str = ""


class Life:
    """Simulates one person from the later of their arrival and the window's start."""

    def __init__(self, world: World, person: Person) -> None:
        self.w = world
        self.p = person
        self.rng = person.rng
        self.start = max(person.active_from, world.start)

    def run(self) -> None:
        self._signups()
        occasions = self._occasions()
        occasions += self._marketing()
        occasions.sort(key=lambda o: o[0])
        for t, persona, stimulus, campaign in occasions:
            self._journey(t, persona, stimulus, campaign)

    # --- sign-ups and marketing ----------------------------------------------------------

    def _signups(self) -> None:
        w, p, rng = self.w, self.p, self.rng
        for row, _ in p.records:
            if not w.emit.inside(p.joined_at):
                continue
            traits = _traits(row)
            t = p.joined_at
            if row[1] == "web":
                device = p.app or p.web[0]
                w.emit.view(device, None, t, "Registro", {"path": "/registro"})
                device.logged_in = True
                if device.source == "app":
                    w.emit.emit("app", t + 20 * SECOND, "alias", user_id=row[13],
                                previous_id=device.anon_id, context=device.context)  # fmt: skip
                w.emit.emit(device.source, t + 25 * SECOND, "identify", user_id=row[13],
                            anon_id=device.anon_id, traits=traits, context=device.context)  # fmt: skip
                w.emit.on_device(device, row[13], t + 30 * SECOND, "Signed Up", {"method": "email"})
            elif row[1].startswith("store:") and p.shop is not None:
                loc = p.shop.id
                ctx: dict[str, Any] = {"locale": "es-ES", "location_id": loc,
                                       "library": {"name": "trayecto-pos", "version": "2.3.0"}}  # fmt: skip
                anon = None
                if rng.random() < w.noise["shared_tablet"]:
                    anon = f"tablet-{loc}"
                    ctx["device"] = {"id": anon, "type": "tablet"}
                    w.out.row("truth/identifiers.csv", ["anonymous_id", anon, p.id, 1])
                w.emit.emit(row[1], t, "identify", user_id=row[14], anon_id=anon,
                            traits=traits, context=ctx)  # fmt: skip
            else:
                device = p.web[0]
                device.logged_in = p.customer_number is not None
                uid = p.customer_number or row[14]
                w.emit.emit("web", t, "identify", user_id=uid, anon_id=device.anon_id,
                            traits=traits, context=device.context)  # fmt: skip

    def _occasions(self) -> list[tuple[int, Persona, str, Campaign | None]]:
        """Purchase occasions per persona: a Poisson process thinned by the seasons."""
        w, p, rng = self.w, self.p, self.rng
        out: list[tuple[int, Persona, str, Campaign | None]] = []
        for persona, weight in ((p.persona, 1.0), (p.secondary, 0.5)):
            if persona is None:
                continue
            top = w.season_max(persona)
            rate = persona.occasions_per_year / 365.0 * weight * top / DAY
            t = self.start
            while True:
                t += int(rng.expovariate(rate))
                if t >= w.end:
                    break
                if rng.random() * top < w.season(persona, t):
                    out.append((t, persona, "", None))
        return out

    def _marketing(self) -> list[tuple[int, Persona, str, Campaign | None]]:
        w, p, rng = self.w, self.p, self.rng
        out: list[tuple[int, Persona, str, Campaign | None]] = []
        if p.email_optin:
            r_open, r_click = w.rates["email_open"], w.rates["email_click"]
            ctx = {"library": {"name": "esp-webhooks", "version": "1.0"}}
            for c in w.newsletters:
                if c.t < self.start or rng.random() >= r_open:
                    continue
                t = c.t + int(rng.expovariate(1 / (6 * 3600_000)))
                props = {"campaign_id": c.id, "campaign_name": c.name, "email_id": f"{c.id}-{p.id}",
                         "email_subject": c.name}  # fmt: skip
                w.emit.track("email", t, "Email Opened", props, user_id=p.email, context=ctx)
                if rng.random() < r_click:
                    t += rng.randrange(10, 300) * SECOND
                    click = {**props, "link_url": f"{w.host}/?utm_campaign={c.id}"}
                    w.emit.track("email", t, "Email Clicked", click, user_id=p.email, context=ctx)
                    if rng.random() < w.rates["click_starts_journey"]:
                        out.append((t + 5 * SECOND, p.persona, "email", c))
        if p.app is not None:
            for c in w.pushes:
                if c.t < self.start or rng.random() >= w.rates["push_open"]:
                    continue
                t = c.t + rng.randrange(1, 180) * MINUTE
                w.emit.on_device(p.app, p.customer_number, t, "Push Opened",
                                 {"campaign_id": c.id, "campaign_name": c.name})  # fmt: skip
                out.append((t + 2 * SECOND, p.persona, "push", c))
        return out

    # --- journeys ------------------------------------------------------------------------

    def _journey(self, t: int, persona: Persona, stimulus: str, campaign: Campaign | None) -> None:
        w, p, rng = self.w, self.p, self.rng
        category = rng.choices(
            [c for c, _ in persona.categories], [x for _, x in persona.categories]
        )[0]
        pattern = rng.choices([x for x, _ in persona.paths], [x for _, x in persona.paths])[0]
        if pattern in ("ropo", "showroom", "shop") and p.shop is None:
            pattern = "online"
        if not stimulus and pattern != "shop" and rng.random() < w.rates["stimulus"]:
            stimulus = rng.choice(_STIMULI)
        if not campaign:
            t = w.online_time(rng, t // DAY) if pattern != "shop" else t
        j = Journey(w.next_journey_id(), persona, pattern, category, stimulus or "direct", t)
        k = rng.randint(*persona.basket)
        seen = w.cat.pick(rng, category, k + rng.randint(0, 2))
        basket = Basket(seen[:k], [1 if rng.random() < 0.8 else 2 for _ in range(k)])
        if pattern == "online":
            device = self._device(stimulus)
            t = self._research(j, device, t, seen, campaign, sessions=rng.randint(1, 3))
            self._checkout(j, device, t + rng.randrange(1, 10) * MINUTE, basket, campaign)
        elif pattern == "ropo":
            device = self._device(stimulus)
            t = self._research(
                j, device, t, seen, campaign, sessions=rng.randint(1, 2), locator=True
            )
            self._shop_visit(j, t + rng.randint(1, 5) * DAY, basket)
        elif pattern == "showroom":
            j.research = f"store:{p.shop.id}" if p.shop else ""
            self._shop_visit(j, t, basket, buy=False)
            device = self._device("")
            t2 = w.online_time(rng, t // DAY + rng.randint(0, 3))
            t2 = self._research(j, device, max(t2, t + 3600_000), seen[:2], None, sessions=1)
            self._checkout(j, device, t2 + rng.randrange(1, 5) * MINUTE, basket, None)
        elif pattern == "shop":
            self._shop_visit(j, t, basket)
        else:
            self._marketplace(j, t, seen, basket)
        w.out.row(
            "truth/journeys.csv",
            [j.id, p.id, persona.id, j.pattern, j.category, j.stimulus, iso(j.started_at),
             j.research, j.decision, j.outcome, j.drop_step, j.order_id, j.friction],
        )  # fmt: skip

    def _device(self, stimulus: str) -> Device:
        p, rng = self.p, self.rng
        if p.app is not None and (stimulus == "push" or rng.random() < 0.6):
            return p.app
        if len(p.web) > 1 and rng.random() < 0.4:
            return p.web[1]
        return p.web[0]

    def _login(self, device: Device, t: int) -> None:
        p = self.p
        if device.logged_in or not device.will_identify or p.customer_number is None:
            return
        device.logged_in = True
        self.w.emit.emit(device.source, t, "identify", user_id=p.customer_number,
                         anon_id=device.anon_id, context=device.context)  # fmt: skip

    def _research(
        self, j: Journey, device: Device, t: int, seen: list[Product],
        campaign: Campaign | None, *, sessions: int, locator: bool = False,
    ) -> int:  # fmt: skip
        """Browsing sessions; returns the time the last one ends."""
        w, p, rng = self.w, self.p, self.rng
        emit, uid = w.emit, p.customer_number
        j.research = j.research or device.source
        for s in range(sessions):
            if s:
                t = w.online_time(rng, t // DAY + rng.randint(0, 2))
            if rng.random() < 0.35:
                self._login(device, t)
            extra: dict[str, Any] = {
                "page": {"path": "/", "url": w.host + "/", "title": w.sc.brand}
            }
            if s == 0 and campaign is not None:
                extra["campaign"] = campaign.context(
                    "email" if campaign.kind == "email" else "push"
                )
            elif s == 0 and j.stimulus in _REFERRERS:
                ref, src, medium = _REFERRERS[j.stimulus]
                extra["page"]["referrer"] = ref
                extra["campaign"] = {
                    "name": f"{j.category}-{iso(t)[:7]}",
                    "source": src,
                    "medium": medium,
                }
            emit.view(device, uid, t, "Inicio", {"path": "/"}, extra)
            if rng.random() < w.rates["search"]:
                t += rng.randrange(5, 60) * SECOND
                cat = w.sc.categories[[c.id for c in w.sc.categories].index(j.category)]
                emit.on_device(
                    device, uid, t, "Products Searched", {"query": rng.choice(cat.queries)}
                )
            for prod in seen[: rng.randint(1, len(seen))]:
                t += rng.randrange(10, 120) * SECOND
                props = {**prod.segment, "price": prod.prices[device.source] / 100,
                         "currency": w.sc.currency, "url": prod.url, "image_url": prod.image_url}  # fmt: skip
                emit.on_device(device, uid, t, "Product Viewed", props,
                               {"page": {"path": prod.url[len(w.host):], "url": prod.url, "title": prod.name}})  # fmt: skip
                if rng.random() < w.rates["wishlist"]:
                    emit.on_device(device, uid, t + 8 * SECOND, "Product Added to Wishlist",
                                   {**prod.segment, "wishlist_id": f"wl-{p.id}"})  # fmt: skip
            if rng.random() < w.rates["chat"] and device.source == "web":
                t += rng.randrange(20, 200) * SECOND
                emit.on_device(device, uid, t, "Chat Message",
                               {"direction": "inbound", "text": rng.choice(_CHAT), "topic": "pre_sale"})  # fmt: skip
            if locator and rng.random() < w.rates["store_locator"] and p.shop is not None:
                t += rng.randrange(10, 90) * SECOND
                emit.on_device(device, uid, t, "Store Locator Used",
                               {"query": p.city.name, "location_id": p.shop.id, "results": 1})  # fmt: skip
        return t

    def _checkout(
        self, j: Journey, device: Device, t: int, basket: Basket, campaign: Campaign | None
    ) -> None:
        w, p, rng = self.w, self.p, self.rng
        emit = w.emit
        if not device.will_identify:
            device = p.web[0]  # they buy on the device they log in on
        j.decision = device.source
        uid = p.customer_number
        if rng.random() >= w.funnel["cart"]:
            return
        cart = f"cart-{j.id}"
        ch = device.source
        for prod, qty in zip(basket.products, basket.quantities, strict=True):
            t += rng.randrange(5, 40) * SECOND
            emit.on_device(device, uid, t, "Product Added",
                           {"cart_id": cart, **prod.segment, "price": prod.prices[ch] / 100,
                            "quantity": qty, "currency": w.sc.currency})  # fmt: skip
        t += rng.randrange(5, 60) * SECOND
        emit.on_device(
            device, uid, t, "Cart Viewed", {"cart_id": cart, "products": basket.items(ch)}
        )
        j.outcome = "cart_abandoned"
        if rng.random() >= w.funnel["checkout"]:
            return
        self._login(device, t)
        checkout = f"chk-{j.id}"
        value = basket.value(ch) / 100
        emit.on_device(device, uid, t + 10 * SECOND, "Checkout Started",
                       {"checkout_id": checkout, "value": value, "currency": w.sc.currency,
                        "products": basket.items(ch)})  # fmt: skip
        if p.customer_number is None or not device.logged_in:
            emit.emit(ch, t + 40 * SECOND, "identify", anon_id=device.anon_id,
                      traits={"email": p.email, "phone": p.phone}, context=device.context)  # fmt: skip
        fulfilment, where = "home_delivery", ""
        for i, (step, keep) in enumerate(w.steps, start=1):
            t += rng.randrange(20, 120) * SECOND
            emit.on_device(
                device,
                uid,
                t,
                "Checkout Step Viewed",
                {"checkout_id": checkout, "step": i, "step_name": step},
            )
            f = w.friction.get((ch, i))
            if f is not None:
                j.friction = f"{ch}:{i}:{f.name}"
                keep -= f.extra_drop
            if rng.random() >= keep:
                j.outcome, j.drop_step = "checkout_abandoned", f"{i}:{step}"
                return self._recover(j, device, t, basket, campaign)
            props: dict[str, Any] = {"checkout_id": checkout, "step": i, "step_name": step}
            if i == 2:
                fulfilment, where = self._fulfilment()
                props["shipping_method"] = fulfilment
            t += rng.randrange(10, 60) * SECOND
            emit.on_device(device, uid, t, "Checkout Step Completed", props)
            if i == len(w.steps):
                pay = rng.choice(("card", "card", "paypal", "bizum"))
                emit.on_device(device, uid, t + 5 * SECOND, "Payment Info Entered",
                               {"checkout_id": checkout, "step": i, "payment_method": pay})  # fmt: skip
        if rng.random() >= w.funnel["order"]:
            j.outcome, j.drop_step = "payment_failed", f"{len(w.steps)}:payment"
            return
        self._order(j, Order(ch, device, t + 30 * SECOND, basket, fulfilment, where, campaign))

    def _recover(
        self, j: Journey, device: Device, t: int, basket: Basket, campaign: Campaign | None
    ) -> None:
        w, p, rng = self.w, self.p, self.rng
        if not (p.email_optin and device.logged_in) or rng.random() >= w.funnel["recovered"]:
            return
        t += DAY + rng.randrange(0, 6 * 3600) * SECOND
        rid = f"cart-reminder-{j.id}"
        w.emit.track("email", t, "Email Opened",
                     {"campaign_id": "cart-reminder", "campaign_name": "Tu carrito te espera", "email_id": rid},
                     user_id=p.email, context={"library": {"name": "esp-webhooks", "version": "1.0"}})  # fmt: skip
        fulfilment, where = self._fulfilment()
        order = Order(device.source, device, t + 10 * MINUTE, basket, fulfilment, where, campaign)
        if self._order(j, order):
            j.outcome = "recovered"

    def _fulfilment(self) -> tuple[str, str]:
        w, p, rng = self.w, self.p, self.rng
        r = rng.random()
        if p.shop is not None and r < w.rates["click_collect"]:
            return "click_collect", p.shop.id
        if p.city.pickup_point and r > 1 - w.rates["pickup_point"]:
            return "pickup_point", p.city.pickup_point
        return "home_delivery", ""

    def _order(self, j: Journey, order: Order) -> bool:
        order_id = place_order(self.w, self.p, order)
        if order_id is None:
            return False
        j.outcome, j.order_id, j.decision = "purchased", order_id, order.source
        self.w.out.row("truth/orders.csv", [order_id, self.p.id, j.id])
        return True

    def _shop_visit(self, j: Journey, t: int, basket: Basket, *, buy: bool = True) -> None:
        w, p, rng = self.w, self.p, self.rng
        shop = p.shop
        if shop is None:
            return
        t = w.shop_time(rng, t // DAY, shop.open_sunday)
        if p.app is not None:
            w.emit.on_device(p.app, p.customer_number, t, "Store Visit",
                             {"location_id": shop.id, "detected_by": "geofence"},
                             {"location_id": shop.id})  # fmt: skip
        if not buy or rng.random() >= w.funnel["shop_purchase"]:
            j.outcome = "visited" if not buy else "browsed"
            return
        order = Order(
            f"store:{shop.id}",
            None,
            t + rng.randrange(5, 40) * MINUTE,
            basket,
            "in_store",
            shop.id,
            None,
        )
        self._order(j, order)

    def _marketplace(self, j: Journey, t: int, seen: list[Product], basket: Basket) -> None:
        w, p, rng = self.w, self.p, self.rng
        j.research = j.decision = "marketplace"
        ctx = {"library": {"name": "marketplace-connector", "version": "1.4"}}
        w.emit.track("marketplace", t, "Products Searched", {"query": seen[0].line.lower()},
                     user_id=p.marketplace_id, context=ctx)  # fmt: skip
        if rng.random() < w.funnel["cart"] * w.funnel["checkout"]:
            self._order(
                j,
                Order(
                    "marketplace",
                    None,
                    t + rng.randrange(2, 30) * MINUTE,
                    basket,
                    "home_delivery",
                    "",
                    None,
                ),
            )


def _traits(row: list[str]) -> dict[str, Any]:
    keys = ("firstName", "lastName", "email", "phone", "birthday", "gender")
    traits: dict[str, Any] = {k: v for k, v in zip(keys, row[2:8], strict=True) if v}
    if row[8]:
        traits["address"] = {
            "street": row[8],
            "postalCode": row[9],
            "city": row[10],
            "country": "ES",
        }
    if row[14]:
        traits["loyalty_card"] = row[14]
    return traits
