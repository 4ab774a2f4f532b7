"""An order and everything after it: the ``Order Completed`` message and the orders
tables, fulfilment (home delivery, click & collect, pickup point), reviews, returns,
WhatsApp and call-centre contacts and social mentions."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from trayecto.sim.catalogue import Product, cents
from trayecto.sim.clock import DAY, HOUR, MINUTE, SECOND, iso
from trayecto.sim.events import Device
from trayecto.sim.people import Person
from trayecto.sim.world import Campaign, World

__all__ = ["Basket", "Order", "place_order"]

_PREFIX = {"web": "W", "app": "A", "store": "T", "marketplace": "M"}
_RATINGS = (1, 2, 3, 4, 5)
_RATING_WEIGHTS = (6, 7, 12, 30, 45)
_CARRIERS = ("SEUR", "Correos Express", "MRW", "GLS")
_BACKEND = {"library": {"name": "olivar-backend", "version": "3.8.1"}}
_NETWORKS = ("instagram", "x", "tiktok", "facebook")


_ONE = Decimal(1)


def _shares(total: int, amounts: list[int]) -> list[int]:
    """``total`` cents over ``amounts`` in proportion, each rounded half to even, the last
    taking what rounding leaves: the rule the loader spreads an order's discount by
    (``_orders._spread``)."""
    whole = sum(amounts)
    if not total or not whole:
        return [0] * len(amounts)
    parts = [int((Decimal(total) * a / whole).quantize(_ONE)) for a in amounts[:-1]]
    return [*parts, total - sum(parts)]


@dataclass(slots=True)
class Basket:
    products: list[Product]
    quantities: list[int]

    def items(self, channel: str) -> list[dict[str, Any]]:
        return [
            {**p.segment, "price": p.prices[channel] / 100, "quantity": q}
            for p, q in zip(self.products, self.quantities, strict=True)
        ]

    def value(self, channel: str) -> int:
        return sum(
            p.prices[channel] * q for p, q in zip(self.products, self.quantities, strict=True)
        )

    def refunds(self, channel: str, discount: int) -> dict[str, int]:
        """SKU -> cents a return of that product gives back: its lines at this channel's
        price, less their share of the order's ``discount`` (the loader spreads it so, and
        the returns API refunds that)."""
        amounts = [
            p.prices[channel] * q for p, q in zip(self.products, self.quantities, strict=True)
        ]
        shares = _shares(discount, amounts)
        out: dict[str, int] = {}
        for p, amount, share in zip(self.products, amounts, shares, strict=True):
            out[p.sku] = out.get(p.sku, 0) + amount - share
        return out


@dataclass(slots=True)
class Order:
    source: str  # a source key: web, app, marketplace or store:<location>
    device: Device | None
    t: int
    basket: Basket
    fulfilment: str  # home_delivery | click_collect | pickup_point | in_store
    where: str  # the shop or pickup point, for the last three
    campaign: Campaign | None


def place_order(w: World, p: Person, o: Order) -> str | None:
    """Emit ``Order Completed`` and its aftermath; the order id, or None if after "now"."""
    rng = p.rng
    channel = "store" if o.source.startswith("store:") else o.source
    order_id = f"{_PREFIX[channel]}{w.orders + 1:08d}"
    user_id: str | None = None
    anon_id: str | None = None
    ctx: dict[str, Any]
    if o.device is not None:
        user_id = p.customer_number if o.device.logged_in else None
        anon_id = o.device.anon_id
        ctx = o.device.context
        ref = user_id or p.email
    elif channel == "store":
        if p.loyalty_card and rng.random() >= w.noise["card_forgotten"]:
            user_id = p.loyalty_card
        else:
            anon_id = f"TK-{o.where}-{w.orders + 1:08d}"
        ref = user_id or ""
        device = "mpos" if rng.random() < 0.15 else "pos"
        ctx = {
            "locale": "es-ES",
            "location_id": o.where,
            "device": {"id": f"{o.where}-{device.upper()}1", "type": device},
            "library": {"name": "trayecto-pos", "version": "2.3.0"},
        }
    else:
        user_id, ref = p.marketplace_id, p.marketplace_id
        ctx = {"library": {"name": "marketplace-connector", "version": "1.4"}}
    subtotal = o.basket.value(channel)
    coupon = "NEWS10" if o.campaign is not None and o.campaign.kind == "email" else ""
    discount = subtotal // 10 if coupon else 0
    home = o.fulfilment in ("home_delivery", "pickup_point")
    shipping = 495 if home and subtotal - discount < 4000 and channel != "marketplace" else 0
    total = subtotal - discount + shipping
    tax = sum(
        (pr.prices[channel] * q * (subtotal - discount) // max(subtotal, 1))
        * pr.vat
        // (100 + pr.vat)
        for pr, q in zip(o.basket.products, o.basket.quantities, strict=True)
    )
    props: dict[str, Any] = {
        "checkout_id": f"chk-{order_id}" if o.device else None,
        "order_id": order_id,
        "affiliation": w.sc.source(o.source).name,
        "total": total / 100,
        "subtotal": subtotal / 100,
        "revenue": (subtotal - discount) / 100,
        "shipping": shipping / 100,
        "tax": tax / 100,
        "discount": discount / 100,
        "coupon": coupon or None,
        "currency": w.sc.currency,
        "fulfilment": o.fulfilment,
        "fulfilment_location": o.where or None,
        "products": o.basket.items(channel),
    }
    if not w.emit.track(
        o.source, o.t, "Order Completed", props, user_id=user_id, anon_id=anon_id, context=ctx
    ):
        return None
    w.orders += 1
    if anon_id and anon_id.startswith("TK-"):
        w.out.row("truth/identifiers.csv", ["pos_ticket", anon_id, p.id, 0])
    returned = rng.random() < w.rates["return"]
    for i, (pr, q) in enumerate(zip(o.basket.products, o.basket.quantities, strict=True), 1):
        price = pr.prices[channel]
        w.out.row("order_lines.csv", [order_id, i, pr.sku, q, cents(price), cents(price * q)])
        w.demand.add(pr.sku, _stocked_at(w, o, pr), q)
    refunds = o.basket.refunds(channel, discount)
    done = After(w, p, o, order_id, user_id, anon_id, ctx).run(returned, refunds)
    ship = (
        [p.address, p.postcode, p.city.name, "ES"]
        if o.fulfilment == "home_delivery"
        else ["", "", "", ""]
    )
    status = (
        "returned"
        if done.returned
        else "completed"
        if done.done
        else "ready_for_pickup"
        if done.ready
        else "shipped"
        if done.shipped
        else "placed"
    )
    w.out.row(
        "orders.csv",
        [order_id, channel, w.sc.source(o.source).name, o.where if channel == "store" else "",
         iso(o.t), ref, p.email if channel in ("web", "app") else "", o.fulfilment, o.where,
         status, w.sc.currency, cents(subtotal), cents(discount),
         cents(shipping), cents(tax), cents(total), sum(o.basket.quantities), coupon, *ship,
         *(iso(t) if t else "" for t in (done.shipped, done.ready, done.done, done.returned)),
         done.returned_sku, done.return_reason, iso(done.refunded) if done.refunded else ""],
    )  # fmt: skip
    return order_id


def _stocked_at(w: World, o: Order, product: Product) -> str:
    """Where the units of a sale come from, for the opening stock (see ``Demand``)."""
    if o.fulfilment in ("in_store", "click_collect"):
        return o.where
    if o.fulfilment == "pickup_point" and product.fulfilled_by in w.drop_ship:
        return w.pickup_stock
    return product.fulfilled_by


@dataclass(slots=True)
class Done:
    """When each fulfilment and return step of an order happened (ms; 0: not by "now")."""

    shipped: int = 0
    ready: int = 0
    done: int = 0  # delivered or collected
    returned: int = 0
    returned_sku: str = ""
    return_reason: str = ""
    refunded: int = 0


class After:
    """Fulfilment and post-sale of one order."""

    def __init__(
        self, w: World, p: Person, o: Order, order_id: str, user_id: str | None,
        anon_id: str | None, ctx: dict[str, Any],
    ) -> None:  # fmt: skip
        self.w, self.p, self.o, self.order_id = w, p, o, order_id
        self.user_id, self.anon_id = user_id, anon_id
        self.ctx = ctx if o.source.startswith("store:") else _BACKEND
        self.rng = p.rng

    def _server(self, t: int, event: str, props: dict[str, Any], location: str = "") -> int:
        """Emit a fulfilment event; ``t``, or 0 when it falls after "now"."""
        ctx = {**self.ctx, "location_id": location} if location else self.ctx
        sent = self.w.emit.track(self.o.source, t, event, {"order_id": self.order_id, **props},
                                 user_id=self.user_id, anon_id=self.anon_id, context=ctx)  # fmt: skip
        return t if sent else 0

    def run(self, returned: bool, refunds: dict[str, int]) -> Done:
        """``refunds``: SKU -> cents refunded when that product is returned."""
        w, p, o, rng = self.w, self.p, self.o, self.rng
        t = o.t
        late = False
        done = Done()
        if o.fulfilment in ("home_delivery", "pickup_point"):
            t += rng.randrange(4, 30) * HOUR
            origin = o.basket.products[0].fulfilled_by
            done.shipped = self._server(t, "Order Shipped", {"carrier": rng.choice(_CARRIERS),
                         "tracking_number": f"TRK{rng.getrandbits(40):012d}", "shipped_from": origin})  # fmt: skip
            days = rng.choices((1, 2, 3, 6), (40, 35, 18, 7))[0]
            late = days >= 6
            t += days * DAY
            if o.fulfilment == "home_delivery":
                done.done = self._server(t, "Order Delivered", {"late": late})
            else:
                done.ready = self._server(
                    t, "Order Ready For Pickup", {"location_id": o.where}, o.where
                )
                t += rng.randrange(2, 72) * HOUR
                done.done = self._server(t, "Order Collected", {"location_id": o.where}, o.where)
        elif o.fulfilment == "click_collect":
            t += rng.randrange(20, 48) * HOUR
            done.ready = self._server(
                t, "Order Ready For Pickup", {"location_id": o.where}, o.where
            )
            t += rng.randrange(2, 72) * HOUR
            ctx = {"locale": "es-ES", "location_id": o.where,
                   "library": {"name": "trayecto-pos", "version": "2.3.0"}}  # fmt: skip
            if w.emit.track(f"store:{o.where}", t, "Order Collected",
                            {"order_id": self.order_id, "location_id": o.where},
                            user_id=self.user_id, anon_id=self.anon_id, context=ctx):  # fmt: skip
                done.done = t
        else:  # in_store: the customer leaves with the goods
            done.done = o.t
        rating = 0
        if rng.random() < w.rates["review"] * (0.5 if late else 1.0) + (0.1 if late else 0.0):
            rating = rng.choices(_RATINGS, (30, 25, 20, 15, 10) if late else _RATING_WEIGHTS)[0]
            self._review(t + rng.randrange(1, 10) * DAY, rating)
        unhappy = late or returned or 0 < rating <= 2
        if returned:
            self._return(t + rng.randrange(2, 12) * DAY, refunds, done)
        if rng.random() < w.rates["contact"] * (4 if unhappy else 1):
            self._contact(t + rng.randrange(1, 72) * HOUR, "incidencia" if unhappy else "consulta")
        if p.social_handle and rng.random() < w.rates["mention"] * (4 if unhappy else 1):
            sentiment = (
                "negative"
                if unhappy
                else ("positive" if rating >= 4 or rng.random() < 0.6 else "neutral")
            )
            self._mention(t + rng.randrange(1, 96) * HOUR, sentiment)
        if not done.done:  # not received by "now": no return
            done.returned, done.returned_sku, done.return_reason, done.refunded = 0, "", "", 0
        return done

    def _review(self, t: int, rating: int) -> None:
        w, p, rng = self.w, self.p, self.rng
        device = self.o.device or p.app or p.web[0]
        product = rng.choice(self.o.basket.products)
        w.emit.on_device(device, p.customer_number, t, "Product Reviewed", {
            "product_id": product.sku, "review_id": f"R-{self.order_id}", "order_id": self.order_id,
            "review_body": rng.choice(w.sc.reviews[rating]), "rating": rating,
        })  # fmt: skip

    def _return(self, t: int, refunds: dict[str, int], done: Done) -> None:
        rng = self.rng
        product = rng.choice(self.o.basket.products)
        reason = rng.choice(("dañado", "no era lo esperado", "pedido duplicado", "regalo repetido"))
        done.returned = self._server(t, "Product Returned", {**product.segment, "reason": reason})
        done.returned_sku = product.sku if done.returned else ""
        done.return_reason = reason if done.returned else ""
        refunded = self._server(t + rng.randrange(2, 7) * DAY, "Order Refunded", {
            "total": refunds[product.sku] / 100, "currency": self.w.sc.currency,
            "products": [product.segment]})  # fmt: skip
        done.refunded = refunded if done.returned else 0

    def _contact(self, t: int, topic: str) -> None:
        w, p, rng = self.w, self.p, self.rng
        if rng.random() < w.rates["contact_whatsapp"]:
            ctx = {"library": {"name": "whatsapp-cloud-api", "version": "v19.0"}}
            text = (f"Hola, tengo un problema con mi pedido {self.order_id}" if topic == "incidencia"
                    else f"Hola, ¿cuándo llega mi pedido {self.order_id}?")  # fmt: skip
            for i, (direction, body) in enumerate(
                (("inbound", text), ("outbound", "¡Hola! Lo revisamos ahora mismo y te contamos."))
            ):
                w.emit.track("whatsapp", t + i * 4 * MINUTE, "WhatsApp Message",
                             {"direction": direction, "text": body, "topic": topic, "order_id": self.order_id},
                             user_id=p.wa_id, context=ctx)  # fmt: skip
            return
        known = p.customer_number is not None and rng.random() < w.rates["contact_identified"]
        ctx = {"library": {"name": "contact-centre", "version": "5.2"},
               "traits": {"phone": format_caller(p.phone)}}  # fmt: skip
        w.emit.track("call_center", t, "Call Ended",
                     {"duration_s": rng.randrange(45, 900), "topic": topic, "order_id": self.order_id,
                      "agent_id": f"AG{rng.randrange(1, 40):03d}", "outcome": rng.choice(("resolved", "resolved", "escalated"))},
                     user_id=p.customer_number if known else None, anon_id=None if known else p.phone,
                     context=ctx)  # fmt: skip

    def _mention(self, t: int, sentiment: str) -> None:
        w, p, rng = self.w, self.p, self.rng
        network = rng.choice(_NETWORKS)
        w.emit.track("social", t, "Social Mention",
                     {"network": network, "text": rng.choice(w.sc.mentions[sentiment]),
                      "sentiment": sentiment, "url": f"https://{network}.com/{p.social_handle}/{t // SECOND}"},
                     user_id=p.social_handle, context={"library": {"name": "social-listening", "version": "2.0"}})  # fmt: skip


def format_caller(e164: str) -> str:
    """Caller ids arrive in international form, with the 00 prefix."""
    return "00" + e164[1:]
