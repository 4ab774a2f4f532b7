"""Segment messages: the emitter that numbers, stamps and writes them, and the devices
(browsers, app installs) whose context they carry.

The emitter drops anything outside the simulated window, so a delivery due after "now"
simply has not happened yet; callers check its return value before recording an order.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import orjson

from trayecto.sim.clock import iso
from trayecto.sim.writer import Output

__all__ = ["Device", "Emitter", "new_device", "uuid_from"]

_DUMP = orjson.OPT_APPEND_NEWLINE

_WEB_AGENTS = {
    "desktop": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/126.0.0.0 Safari/537.36",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.5 Safari/605.1.15",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0",
    ),
    "mobile_web": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (Linux; Android 14; SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/126.0.6478.71 Mobile Safari/537.36",
        "Mozilla/5.0 (Linux; Android 13; Redmi Note 12) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/125.0.6422.165 Mobile Safari/537.36",
    ),
}
_APP_DEVICES = {
    "ios": (("Apple", "iPhone15,2", "17.5"), ("Apple", "iPhone14,5", "17.4"), ("Apple", "iPhone13,2", "16.7")),
    "android": (("samsung", "SM-S921B", "14"), ("Xiaomi", "23021RAA2Y", "13"), ("OPPO", "CPH2581", "14")),
}  # fmt: skip
# First octets of Spanish consumer ISPs' address blocks.
_IP_FIRST = (79, 80, 81, 83, 84, 88, 90, 95, 176, 213, 217)


def uuid_from(rng: random.Random) -> str:
    """A random-looking UUID drawn from ``rng`` (so it is reproducible)."""
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"


@dataclass(slots=True)
class Device:
    anon_id: str
    kind: str  # desktop | mobile_web | ios | android
    source: str  # "web" or "app"
    context: dict[str, Any]
    will_identify: bool
    logged_in: bool = False


def new_device(
    rng: random.Random, kind: str, *, will_identify: bool, app_name: str, ip: str | None = None
) -> Device:
    anon = uuid_from(rng)
    ip = (
        ip
        or f"{rng.choice(_IP_FIRST)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    )
    if kind in _WEB_AGENTS:
        ctx: dict[str, Any] = {
            "locale": "es-ES",
            "userAgent": rng.choice(_WEB_AGENTS[kind]),
            "ip": ip,
            "library": {"name": "analytics.js", "version": "next-1.70.0"},
        }
        return Device(anon, kind, "web", ctx, will_identify)
    maker, model, os_version = rng.choice(_APP_DEVICES[kind])
    ios = kind == "ios"
    ctx = {
        "locale": "es-ES",
        "ip": ip,
        "app": {"name": app_name, "version": "4.12.0", "build": "41200"},
        "device": {"id": anon, "manufacturer": maker, "model": model, "type": kind},
        "os": {"name": "iOS" if ios else "Android", "version": os_version},
        "library": {
            "name": "analytics-ios" if ios else "analytics-android",
            "version": "4.1.8" if ios else "4.11.3",
        },
        "userAgent": f"{app_name}/4.12.0 ({'iOS' if ios else 'Android'} {os_version})",
    }
    return Device(anon, kind, "app", ctx, will_identify)


class Emitter:
    """Builds, numbers and writes Segment messages inside ``[start, end)``."""

    def __init__(self, out: Output, seed: int, start: int, end: int) -> None:
        self.out = out
        self.prefix = f"sim-{seed}-"
        self.start = start
        self.end = end
        self.n = 0

    def inside(self, t: int) -> bool:
        return self.start <= t < self.end

    def emit(
        self,
        source: str,
        t: int,
        mtype: str,
        *,
        event: str | None = None,
        name: str | None = None,
        user_id: str | None = None,
        anon_id: str | None = None,
        previous_id: str | None = None,
        properties: dict[str, Any] | None = None,
        traits: dict[str, Any] | None = None,
        context: dict[str, Any] | None = None,
    ) -> bool:
        """Write one message if ``t`` is inside the window; say whether it was written."""
        if not self.start <= t < self.end:
            return False
        self.n += 1
        msg: dict[str, Any] = {"type": mtype, "messageId": f"{self.prefix}{self.n}"}
        if event is not None:
            msg["event"] = event
        if name is not None:
            msg["name"] = name
        if user_id is not None:
            msg["userId"] = user_id
        if anon_id is not None:
            msg["anonymousId"] = anon_id
        if previous_id is not None:
            msg["previousId"] = previous_id
        if properties is not None:
            msg["properties"] = properties
        if traits is not None:
            msg["traits"] = traits
        if context is not None:
            msg["context"] = context
        msg["timestamp"] = iso(t)
        self.out.event(source, orjson.dumps(msg, option=_DUMP))
        return True

    def track(
        self,
        source: str,
        t: int,
        event: str,
        props: dict[str, Any],
        *,
        user_id: str | None = None,
        anon_id: str | None = None,
        context: dict[str, Any] | None = None,
    ) -> bool:
        return self.emit(
            source,
            t,
            "track",
            event=event,
            user_id=user_id,
            anon_id=anon_id,
            properties=props,
            context=context,
        )

    def on_device(
        self,
        device: Device,
        user_id: str | None,
        t: int,
        event: str,
        props: dict[str, Any],
        extra: dict[str, Any] | None = None,
    ) -> bool:
        """A ``track`` from a browser or the app, with the user id once logged in."""
        ctx = {**device.context, **extra} if extra else device.context
        return self.emit(
            device.source,
            t,
            "track",
            event=event,
            user_id=user_id if device.logged_in else None,
            anon_id=device.anon_id,
            properties=props,
            context=ctx,
        )

    def view(
        self,
        device: Device,
        user_id: str | None,
        t: int,
        name: str,
        props: dict[str, Any],
        extra: dict[str, Any] | None = None,
    ) -> bool:
        """A ``page`` (web) or ``screen`` (app) view."""
        ctx = {**device.context, **extra} if extra else device.context
        return self.emit(
            device.source,
            t,
            "page" if device.source == "web" else "screen",
            name=name,
            user_id=user_id if device.logged_in else None,
            anon_id=device.anon_id,
            properties=props,
            context=ctx,
        )
