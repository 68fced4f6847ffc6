"""The console's web app (Starlette): ``make_app`` takes every policy as an argument.

Stack, written down here: Starlette (routing, requests; ASGI, served by uvicorn),
Jinja2 templates with autoescaping on (every value HTML-escaped; a contact named
``<script>`` shows as text), charts as server-rendered SVG (``streams.console.charts``),
a small stylesheet in the package (no CDN: the pages work offline), and
prometheus-client for ``/metrics``.  Pages are read-only over a store opened
read-only; only the webhook writes, through its own writable store (no broker) or
the broker.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined
from starlette.applications import Starlette
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from rules.config import Config
from streams.console import views
from streams.console.broker import BrokerView, Publisher
from streams.console.metrics import console_metrics
from streams.console.refresher import DashboardRefresher
from streams.console.state import ConsoleState
from streams.console.webhook import Webhook
from streams.events.times import today_central
from streams.store.engine import Store


@dataclass(frozen=True)
class ConsoleOptions:
    """How the console runs: the day, the broker, and the webhook's secret."""

    today: date | None = None  # None: today in Central Time (SPEC section 1), at each request
    broker: str | None = None  # host:port; None: the embedded default (no Kafka)
    prefix: str = ""
    app_id: str = "mailwindow"  # the worker's consumer group, for its lag
    webhook_secret: bytes | None = None  # None: the webhook refuses every request (503)
    webhook_secret_env: str = "MAILWINDOW_WEBHOOK_SECRET"  # named in that refusal
    scratch: Path | None = None  # where /preview copies the database (None: tempfile's directory)


def templates() -> Environment:
    env = Environment(
        loader=PackageLoader("streams.console", "templates"),
        autoescape=True,  # every page, whatever the file's name
        undefined=StrictUndefined,  # a misspelt name fails the test, not the reader
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["stamp"] = views.stamp
    return env


def _today(fixed: date | None) -> Callable[[], date]:
    if fixed is not None:
        return lambda: fixed
    return today_central


ROUTES = [
    Route("/", views.dashboard),
    Route("/api/dashboard", views.api_dashboard),
    Route("/contacts", views.search),
    Route("/api/contacts", views.api_search),
    Route("/contacts/{contact_id}", views.contact),
    Route("/api/contacts/{contact_id}", views.api_contact),
    Route("/campaigns", views.campaigns),
    Route("/api/campaigns", views.api_campaigns),
    Route("/runs", views.runs),
    Route("/api/runs", views.api_runs),
    Route("/deadletters", views.deadletters),
    Route("/preview", views.preview),
    Route("/api/preview", views.api_preview),
    Route("/api/deadletters", views.api_deadletters),
    Route("/metrics", views.metrics),
]


def make_app(
    store: Store, config: Config, options: ConsoleOptions = ConsoleOptions(), webhook_store: Store | None = None
) -> Starlette:
    """The console over ``store`` (read-only); ``webhook_store``: writable, where the webhook
    applies batches when no broker is given (None there: the webhook answers 503)."""
    today = _today(options.today)
    metrics = console_metrics(store)
    dashboard = DashboardRefresher(store, today)
    publisher = Publisher(options.broker, options.prefix) if options.broker else None
    webhook = Webhook(
        secret=options.webhook_secret,
        secret_env=options.webhook_secret_env,
        requests=metrics.webhook_requests,
        events=metrics.webhook_events,
        publisher=publisher,
        store=webhook_store,
        config=config,
        prefix=options.prefix,
    )
    state = ConsoleState(
        store=store,
        config=config,
        today=today,
        templates=templates(),
        metrics=metrics,
        dashboard=dashboard,
        webhook=webhook,
        broker=options.broker,
        broker_view=BrokerView(options.broker, options.prefix, options.app_id) if options.broker else None,
        scratch=options.scratch,
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        dashboard.start()
        yield
        await dashboard.stop()
        if publisher is not None:
            await publisher.stop()

    routes = [
        *ROUTES,
        Route("/webhooks/delivery", webhook.handle, methods=["POST"]),
        Mount("/static", StaticFiles(packages=[("streams.console", "static")]), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.console = state
    return app
