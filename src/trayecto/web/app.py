"""The FastAPI application, assembled from thin routers per domain."""

from __future__ import annotations

import asyncio
import gc
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import sqlalchemy as sa
from fastapi import FastAPI, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from trayecto import __version__, access, collect
from trayecto.bootstrap import Platform, build
from trayecto.web import (
    commerce_api,
    console,
    customers_api,
    errors,
    events_api,
    review_api,
    tracking,
)
from trayecto.web.accesslog import AccessLog
from trayecto.web.errors import json_response
from trayecto.web.intake import IntakeFastPath, OrderIntake

_HOME = """<!doctype html>
<html lang="es"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>trayecto</title>
<style>body{{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;
color:#1f2933}}h1{{color:#0b6e4f}}table{{border-collapse:collapse}}td,th{{padding:.3rem .8rem;
border-bottom:1px solid #ddd;text-align:left}}code{{background:#f3f4f6;padding:.1rem .3rem}}</style>
</head><body>
<h1>trayecto</h1>
<p>Un cliente, todos los canales. <em>One customer, every channel.</em></p>
<p>Eventos almacenados / events stored: <strong>{events}</strong> ·
Fuentes / sources: <strong>{sources}</strong></p>
<table><tr><th>Canal / channel</th><th>Eventos / events</th></tr>{rows}</table>
<p>API: <a href="/docs">/docs</a> · Segment: <code>POST /v1/batch</code> ·
<code>GET /api/events</code> · v{version}</p>
<p><a href="/console/login">Consola / console</a></p>
</body></html>"""


#: The interpreter's thread switch interval in a server process (see ``lifespan``).
SWITCH_INTERVAL = 0.0005


def create_app(
    platform: Platform,
    *,
    access_log: bool = True,
    follow_log: bool = True,
    freeze_heap: bool = False,
) -> FastAPI:
    """The app on ``platform``. ``freeze_heap``: the app is its process's server (``trayecto
    serve``), so what exists when it starts lives as long as the process (see ``lifespan``);
    not for apps built and dropped in one process, as tests do."""
    pool = collect.IngestPool(platform.settings.resolved_ingest_workers)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # The group-commit writer thread gives up the interpreter lock around every SQLite
        # call and fsync; getting it back waits for the event loop thread to yield it, by
        # default every 5 ms. At 0.5 ms the writer no longer idles behind the event loop
        # (measured: one transaction a 24 ms, most of it waiting; see docs/architecture.md).
        sys.setswitchinterval(SWITCH_INTERVAL)
        if freeze_heap:
            # Everything built so far (modules, the app, its routes, the platform) lives
            # as long as the process: out of the garbage collector's sight, a full
            # collection no longer walks it again and again under load.
            gc.collect()
            gc.freeze()
        platform.writer.start()
        await pool.start()
        if follow_log:  # else a separate ``trayecto worker`` process follows the log
            platform.follower.start()
            platform.follower.poke()  # catch up with what was written while we were down
        sweeper = asyncio.create_task(commerce_api.sweep_expired_holds(platform))
        try:
            yield
        finally:
            sweeper.cancel()
            platform.order_desk.close()
            pool.close()
            platform.follower.stop()
            platform.writer.stop()

    app = FastAPI(
        title="trayecto",
        version=__version__,
        description="One customer across every channel.",
        lifespan=lifespan,
    )
    errors.install(app)
    orders = OrderIntake(platform)
    # POST /api/orders ahead of routing (the busiest write; see web/intake.py), inside the
    # access log (added last, so outermost) and the server-error handler
    app.add_middleware(IntakeFastPath, intake=orders)
    if access_log:
        app.add_middleware(AccessLog)
    app.include_router(tracking.build_router(platform, pool))
    app.include_router(events_api.build_router(platform))
    app.include_router(customers_api.build_router(platform))
    app.include_router(commerce_api.build_router(platform, orders))
    app.include_router(review_api.build_router(platform))
    console.install(app, platform)

    @app.get("/healthz", tags=["operations"], summary="Liveness and database check")
    def healthz() -> Response:  # (a worker thread: the query never holds up the event loop)
        with platform.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return json_response(
            {
                "status": "ok",
                "version": __version__,
                # the server process that answered (the counters below are its own)
                "process": os.getpid(),
                "ingest_workers": {"processes": pool.workers, "ready": pool.ready},
                # Group commit at work: rows appended and the transactions they took.
                "writer": {"transactions": platform.writer.groups, "rows": platform.writer.rows},
                # Orders placed in batches: the batches and the orders in them.
                "order_desk": {
                    "batches": platform.order_desk.batches,
                    "orders": platform.order_desk.orders,
                },
            }
        )

    @app.get("/", include_in_schema=False)
    def home(request: Request) -> Response:
        if console.signed_in(request, platform):
            return RedirectResponse("/console", status_code=303)
        counts = collect.counts_by_channel(platform.engine)
        total = sum(counts.values())
        per_channel = [
            f"<tr><td>{ch.value}</td><td>{counts.get(ch.value, 0):,}</td></tr>"
            for ch in access.Channel
        ]
        html = _HOME.format(
            events=f"{total:,}",
            sources=len(access.list_sources(platform.engine)),
            rows="".join(per_channel),
            version=__version__,
        )
        return HTMLResponse(html)

    return app


#: How ``trayecto serve --workers N`` tells its worker processes the serve options.
SERVE_OPTIONS_ENV = "TRAYECTO_SERVE_OPTIONS"


def serve_options(*, access_log: bool, follow_log: bool) -> str:
    return f"access_log={int(access_log)},follow_log={int(follow_log)}"


def app_from_env() -> FastAPI:
    """The app of one worker process of ``trayecto serve --workers N`` (uvicorn's
    ``--factory``): each process builds its own platform (engine, pool, writer) from the
    ``TRAYECTO_*`` environment; the parent has applied the migrations already."""
    opts = dict(
        part.split("=", 1) for part in os.environ.get(SERVE_OPTIONS_ENV, "").split(",") if part
    )
    return create_app(
        build(migrate=False),
        access_log=opts.get("access_log", "1") == "1",
        follow_log=opts.get("follow_log", "1") == "1",
        freeze_heap=True,
    )
