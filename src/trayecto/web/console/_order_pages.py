"""The commerce pages: the orders list (filters and search, newest first, paged by cursor),
an order (lines, money, shipments with their promise, history, returns, the sourcing
explanation), stock of a SKU by location, and the orders panel of the customer 360.

Same data as ``GET /api/orders``, ``GET /api/orders/{id}`` and ``GET /api/inventory``.
Shop staff and admins also act on an order from its page, as the API's lifecycle routes
do (same functions, same rules): move a shipment to its next state (picking, packed,
shipped, ready for pickup, delivered, collected), reject it when the location cannot
prepare it (it is sourced again elsewhere), and cancel what has not shipped yet. Those are
POST forms with the session's CSRF token; after each, the page says what the order's state
now is (read back from the store). The roles are ``_roles``'.
"""
# No "from __future__ import annotations": FastAPI must see the route parameters.

import logging
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from trayecto import commerce, identity
from trayecto.kernel import ConflictError, NotFoundError, ValidationError
from trayecto.web.console import _commerce_labels as labels
from trayecto.web.console import _order_present as present
from trayecto.web.console._i18n import N_
from trayecto.web.console._review_pages import PageTools
from trayecto.web.console._roles import ORDER_ACT_ROLES, ORDER_ROLES, STOCK_ROLES
from trayecto.web.console._session import Visitor, read_form
from trayecto.web.console._sourcing_present import explanations

__all__ = ["ORDERS_PAGE", "PANEL_ORDERS", "add_order_routes", "orders_panel"]

log = logging.getLogger("trayecto.console")

#: Orders per page of the list, and in the customer 360's panel.
ORDERS_PAGE = 25
PANEL_ORDERS = 10

_FORBIDDEN_ORDERS = N_(
    "Your role (%(role)s) does not give access to orders. Ask an administrator if you need it."
)
_FORBIDDEN_STOCK = N_(
    "Your role (%(role)s) does not give access to stock. Ask an administrator if you need it."
)
_NO_ORDER = N_(
    "There is no order with this id. Look it up in the orders list by the number the "
    "customer has (the channel's order number) or by their email."
)
_FORBIDDEN_ACT = N_(
    "Your role (%(role)s) may look at orders but not change them. Shop staff and "
    "administrators can; ask one of them."
)
_CANNOT_MOVE = N_(
    "Shipment %(n)d is “%(status)s” now, so it cannot be marked “%(target)s”. Someone may "
    "have moved it meanwhile: the page shows what it can do next."
)
_NO_REASON = N_(
    "Say why this location cannot prepare the shipment (for example: units missing or "
    "damaged), then send it again."
)
_NOT_RESOURCED = N_(
    "Shipment %(n)d was rejected at %(place)s, but no other location can prepare it now. "
    "It stays rejected: once stock arrives, source it again through the API "
    "(POST /api/orders/…/resource), or cancel the order."
)
_NOTHING_TO_CANCEL = N_(
    "Nothing of this order can be cancelled any more: every shipment has left or is done."
)
_DONE_MOVED = N_("Shipment %(n)d is now “%(status)s”.")
_DONE_REJECTED = N_("Shipment %(n)d was rejected at %(place)s and sourced again: see below.")
_DONE_CANCELLED = N_("The order is now “%(status)s”.")
_BAD_DATE = N_("Write dates as the date field offers them (for example 2026-11-22).")
_BAD_RANGE = N_("The “from” date is after the “to” date: swap them.")
_BAD_LINK = N_("This link is not valid any more. Start again from the newest orders.")
_NO_SKU = N_(
    "No product has the SKU or name “%(sku)s”. Check it on the label or the order, or "
    "type part of the product's name."
)


def _uuid(value: str | None) -> UUID | None:
    try:
        return UUID(value) if value else None
    except ValueError:
        return None


def _day(value: str | None) -> date | None:
    """A date typed in a filter; ValueError when it is not one."""
    return date.fromisoformat(value) if value else None


def _flash(
    gettext: Any, locale: str, order: dict[str, Any], done: str | None, group: str | None
) -> dict[str, str] | None:
    """What the action just taken changed, said from what the store holds now."""
    if done == "cancelled":
        text = gettext(locale, _DONE_CANCELLED) % {"status": order["status_label"]}
        return {"text": text, "tone": "accepted"}
    g = next((g for g in order["groups"] if g["id"] == group), None)
    if g is None or done not in ("moved", "rejected", "unsourced"):
        return None
    if done == "moved":
        text = gettext(locale, _DONE_MOVED) % {"n": g["n"], "status": g["status_label"]}
    else:
        message = _DONE_REJECTED if done == "rejected" else _NOT_RESOURCED
        text = gettext(locale, message) % {"n": g["n"], "place": g["location"]}
    return {"text": text, "tone": "refused" if done == "unsourced" else "accepted"}


def orders_panel(t: PageTools, v: Visitor, view: identity.CustomerView) -> dict[str, Any] | None:
    """The customer 360's orders: the newest with status and promise (None: not allowed)."""
    if v.user is None or v.user.role not in ORDER_ROLES:
        return None
    by_type: dict[str, list[str]] = {}
    for i in view.identities:
        by_type.setdefault(i["type"], []).append(i["value"])
    found, more = commerce.customer_orders(
        t.engine,
        customer_id=view.id,
        emails=by_type.get("email", []),
        phones=by_type.get("phone", []),
        customer_numbers=by_type.get("customer_number", []),
        loyalty_cards=by_type.get("loyalty_card", []),
        limit=PANEL_ORDERS,
    )
    lb, fmt = t.render.labels(v.locale), t.render.formatter(v.locale)
    places = present.Places(commerce.list_locations(t.engine))
    emails = by_type.get("email", [])
    return {
        "rows": present.order_rows(found, places, lb, fmt),
        "more": f"/console/orders?{urlencode({'q': emails[0]})}" if more and emails else None,
        "more_email": emails[0] if emails else None,
        "has_more": more,
    }


def add_order_routes(router: APIRouter, t: PageTools) -> None:
    render, engine = t.render, t.engine
    region_tz = render.tz
    back_orders = {"back_href": "/console/orders", "back_label": N_("Back to the orders")}

    def places() -> present.Places:
        return present.Places(commerce.list_locations(engine))

    def start_of(day: date) -> datetime:
        return datetime.combine(day, time(0), tzinfo=region_tz)

    @router.get("/orders")
    def orders_list(
        request: Request,
        q: str | None = None,
        channel: str | None = None,
        status: str | None = None,
        since: str | None = None,
        until: str | None = None,
        after: str | None = None,
    ) -> Response:
        v = t.need(request, ORDER_ROLES, _FORBIDDEN_ORDERS)
        lb, fmt = render.labels(v.locale), render.formatter(v.locale)
        query = (q or "").strip()[:200]
        channel = channel if channel in commerce.ORDER_CHANNELS else None
        status = status if status in labels.STATUS_FILTERS else None
        filters = {"q": query, "channel": channel, "status": status}
        problem = None
        try:
            first, last = _day(since), _day(until)
        except ValueError:
            first = last = None
            problem = render.gettext(v.locale, _BAD_DATE)
        if first and last and first > last:
            problem = render.gettext(v.locale, _BAD_RANGE)
        cursor = _uuid(after)
        if after and cursor is None:
            return t.error_page(request, v, 400, render.gettext(v.locale, _BAD_LINK), **back_orders)
        kept = {
            **filters,
            "since": first.isoformat() if first else "",
            "until": last.isoformat() if last else "",
        }
        found: list[commerce.OrderSummary] = []
        nxt = None
        if problem is None:
            email = None
            if "@" in query:
                try:
                    email = commerce.normalise_email(query)
                except ValidationError:
                    email = query.lower()
            found, nxt = commerce.list_orders(
                engine,
                channel=channel,
                status=status,
                placed_from=start_of(first) if first else None,
                placed_before=start_of(last + timedelta(days=1)) if last else None,
                search=None if email else query or None,
                email=email,
                after=cursor,
                limit=ORDERS_PAGE,
            )
        link = {k: x for k, x in kept.items() if x}
        return render.page(
            request,
            v,
            "orders.html",
            400 if problem else 200,
            rows=present.order_rows(found, places(), lb, fmt),
            f=kept,
            filtered=bool(link),
            problem=problem,
            channels=[(c, lb.of(labels.ORDER_CHANNEL_LABELS, c)) for c in commerce.ORDER_CHANNELS],
            statuses=[(s, labels.status_label(lb, s)) for s in labels.STATUS_FILTERS],
            paged=cursor is not None,
            first_page="/console/orders" + (f"?{urlencode(link)}" if link else ""),
            more=f"/console/orders?{urlencode({**link, 'after': str(nxt)})}" if nxt else None,
        )

    def show_order(
        request: Request,
        v: Visitor,
        oid: UUID | None,
        status: int = 200,
        problem: str | None = None,
        done: str | None = None,
        group: str | None = None,
    ) -> Response:
        lb, fmt = render.labels(v.locale), render.formatter(v.locale)
        try:
            if oid is None:
                raise NotFoundError("no such order", code="order_not_found")
            view = commerce.get_order(engine, oid)
        except NotFoundError:
            return t.error_page(request, v, 404, render.gettext(v.locale, _NO_ORDER), **back_orders)
        where = places()
        order = present.order_detail(view, where, lb, fmt)
        may_act = v.user is not None and v.user.role in ORDER_ACT_ROLES
        if may_act:
            present.add_actions(order, view, lb)
        return render.page(
            request,
            v,
            "order.html",
            status,
            order=order,
            sourcing=explanations(view, where, lb, fmt),
            may_act=may_act,
            problem=problem,
            flash=_flash(render.gettext, v.locale, order, done, group),
        )

    @router.get("/orders/{order_id}")
    def order_page(
        request: Request, order_id: str, done: str | None = None, group: str | None = None
    ) -> Response:
        v = t.need(request, ORDER_ROLES, _FORBIDDEN_ORDERS)
        return show_order(request, v, _uuid(order_id), done=done, group=group)

    def actor(request: Request, order_id: str, form: dict[str, str]) -> Visitor | Response:
        """The visitor who may act on orders, sending a form of this console; else the
        page that says why not."""
        here = f"/console/orders/{order_id}"
        v = t.need(request, ORDER_ACT_ROLES, _FORBIDDEN_ACT, come_back=here)
        back = {"back_href": here, "back_label": N_("Back to the order")}
        return t.refuse_post(request, v, form, **back) or v

    @router.post("/orders/{order_id}/groups/{group_id}")
    def act_on_group(
        request: Request,
        order_id: str,
        group_id: str,
        form: Annotated[dict[str, str], Depends(read_form)],
    ) -> Response:
        v = actor(request, order_id, form)
        if isinstance(v, Response):
            return v
        assert v.user is not None
        oid, gid = _uuid(order_id), _uuid(group_id)
        action = form.get("action") or ""
        lb = render.labels(v.locale)
        try:
            if oid is None or gid is None:
                raise NotFoundError("no such order", code="order_not_found")
            before = commerce.get_order(engine, oid)
            n, old = next(
                (i, g) for i, g in enumerate(before["fulfilment_groups"], 1) if g["id"] == str(gid)
            )
        except (NotFoundError, StopIteration):
            return t.error_page(request, v, 404, render.gettext(v.locale, _NO_ORDER), **back_orders)
        by = f"console:{v.user.email}"
        try:
            if action == "reject":
                reason = " ".join((form.get("reason") or "").split())[:200]
                if not reason:
                    problem = render.gettext(v.locale, _NO_REASON)
                    return show_order(request, v, oid, 400, problem)
                after = commerce.reject_group(engine, oid, gid, reason=f"{reason} ({by})")
            else:
                after = commerce.advance_group(engine, oid, gid, action, note=by)
        except ValidationError:
            return show_order(request, v, oid, 400, _cannot_move(v, lb, oid, n, old, action))
        except ConflictError:
            return show_order(request, v, oid, 409, _cannot_move(v, lb, oid, n, old, action))
        done = "moved"
        if action == "reject":
            outcome = [
                e["kind"]
                for e in after["history"]
                if e["group_id"] == str(gid)
                and e["kind"] in ("order_resourced", "resourcing_failed")
            ]
            done = "unsourced" if outcome[-1:] == ["resourcing_failed"] else "rejected"
        log.info(
            "console order: user %s set group %s of order %s to %s", v.user.id, gid, oid, action
        )
        query = urlencode({"done": done, "group": gid})
        return render.redirect(request, v, f"/console/orders/{oid}?{query}#shipment-{n}")

    def _cannot_move(
        v: Visitor, lb: Any, oid: UUID, n: int, old: dict[str, Any], action: str
    ) -> str:
        now = commerce.get_order(engine, oid)
        current = next(g for g in now["fulfilment_groups"] if g["id"] == old["id"])
        return render.gettext(v.locale, _CANNOT_MOVE) % {
            "n": n,
            "status": labels.status_label(lb, current["status"]),
            "target": labels.status_label(lb, action)
            if action in labels.ACTION_LABELS
            else action[:40],
        }

    @router.post("/orders/{order_id}/cancel")
    def cancel_order(
        request: Request,
        order_id: str,
        form: Annotated[dict[str, str], Depends(read_form)],
    ) -> Response:
        v = actor(request, order_id, form)
        if isinstance(v, Response):
            return v
        assert v.user is not None
        oid = _uuid(order_id)
        try:
            if oid is None:
                raise NotFoundError("no such order", code="order_not_found")
            before = commerce.get_order(engine, oid)
        except NotFoundError:
            return t.error_page(request, v, 404, render.gettext(v.locale, _NO_ORDER), **back_orders)
        if not present.cancellable(before):
            return show_order(request, v, oid, 409, render.gettext(v.locale, _NOTHING_TO_CANCEL))
        commerce.cancel_order(engine, oid, note=f"console:{v.user.email}")
        log.info("console order: user %s cancelled order %s", v.user.id, oid)
        return render.redirect(request, v, f"/console/orders/{oid}?done=cancelled")

    @router.get("/stock")
    def stock_page(request: Request, sku: str | None = None) -> Response:
        v = t.need(request, STOCK_ROLES, _FORBIDDEN_STOCK)
        lb, fmt = render.labels(v.locale), render.formatter(v.locale)
        text = (sku or "").strip()[:100]
        context: dict[str, Any] = {
            "sku": text,
            "product": None,
            "rows": [],
            "matches": [],
            "problem": None,
        }
        if not text:
            return render.page(request, v, "stock.html", **context)
        try:
            product = commerce.get_product(engine, text)
        except NotFoundError:
            matches = commerce.find_products(engine, text)
            if len(matches) == 1 and matches[0].sku.lower() == text.lower():
                return render.redirect(
                    request, v, f"/console/stock?{urlencode({'sku': matches[0].sku})}"
                )
            if not matches:
                message = render.gettext(v.locale, _NO_SKU) % {"sku": text}
                return render.page(request, v, "stock.html", 404, **{**context, "problem": message})
            context["matches"] = [
                {
                    "sku": p.sku,
                    "name": p.name,
                    "href": f"/console/stock?{urlencode({'sku': p.sku})}",
                }
                for p in matches
            ]
            return render.page(request, v, "stock.html", **context)
        levels = commerce.stock_levels(engine, [product.sku])
        rows = present.stock_rows(levels, places(), lb, fmt)
        context.update(
            product={
                "sku": product.sku,
                "name": product.name,
                "category": product.category,
                "price": fmt.money(product.price, product.currency),
                "active": product.active,
            },
            rows=rows,
            totals={
                "on_hand": fmt.number(sum(lv.on_hand for lv in levels)),
                "reserved": fmt.number(sum(lv.reserved for lv in levels)),
                "safety": fmt.number(sum(lv.safety_stock for lv in levels)),
                "available": fmt.number(sum(lv.available for lv in levels)),
            },
        )
        return render.page(request, v, "stock.html", **context)
