"""What every request of the console shares: the read-only store, the config, the day,
the templates, the dashboard's count, the broker's view, the metrics and the webhook (``streams.console.app``)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from jinja2 import Environment

from rules.config import Config
from streams.console.broker import BrokerView
from streams.console.metrics import ConsoleMetrics
from streams.console.refresher import DashboardRefresher
from streams.console.webhook import Webhook
from streams.store.engine import Store


@dataclass
class ConsoleState:
    store: Store  # read-only: no page writes
    config: Config
    today: Callable[[], date]
    templates: Environment
    metrics: ConsoleMetrics
    dashboard: DashboardRefresher  # the dashboard's and /metrics' latest count
    webhook: Webhook
    broker: str | None = None
    broker_view: BrokerView | None = None
    scratch: Path | None = None  # where /preview copies the database (None: tempfile's directory)
    preview_lock: threading.Lock = field(default_factory=threading.Lock)  # one dry run at a time
