"""``/metrics`` in Prometheus's text format (prometheus-client), one registry per app.

- ``mailwindow_webhook_requests_total{outcome}``, ``mailwindow_webhook_events_total{result}``:
  counted by this process as it answers.
- From the database, read when scraped and kept ``CACHE_S`` seconds (several
  scrapers, or a fast one, cost one read): events applied per topic
  (``mw_applied_events``: the agents', replay's and the webhook's), the last
  completed sweep's duration, contacts scanned and decided, and the emails
  scheduled per type and day for the next 60 days (the dashboard's query).
- With a broker: dead letters held by the topic, and per source topic among the
  last read (``streams.console.broker``), and the worker's consumer lag per topic.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from streams.console.broker import BrokerSnapshot
from streams.console.dashboard import dashboard_data
from streams.console.queries import applied_per_topic
from streams.store.engine import Store

CACHE_S = 10.0


@dataclass
class ConsoleMetrics:
    registry: CollectorRegistry
    webhook_requests: Counter
    webhook_events: Counter
    database: DatabaseCollector


def console_metrics(store: Store, today: Callable[[], date]) -> ConsoleMetrics:
    registry = CollectorRegistry()  # no auto-describe: registering must not read the database
    requests = Counter(
        "mailwindow_webhook_requests", "Delivery webhook requests by outcome", ["outcome"], registry=registry
    )
    events = Counter(
        "mailwindow_webhook_events", "Provider events of accepted webhook batches by result", ["result"],
        registry=registry,
    )
    database = DatabaseCollector(store, today)
    registry.register(database)
    return ConsoleMetrics(registry, requests, events, database)


@dataclass
class _Read:
    at: float
    metrics: list[Metric]


@dataclass(eq=False)  # registered by identity: it must stay hashable
class DatabaseCollector(Collector):
    """The database's and the broker's figures, read on scrape, kept ``CACHE_S`` seconds."""

    store: Store
    today: Callable[[], date]
    broker: BrokerSnapshot | None = None  # set by /metrics before each scrape when a broker is given
    _cached: _Read | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            if self._cached is None or time.monotonic() - self._cached.at >= CACHE_S:
                self._cached = _Read(time.monotonic(), self._read())
            metrics = list(self._cached.metrics)
        yield from metrics
        if self.broker is not None:
            yield from _broker_metrics(self.broker)

    def _read(self) -> list[Metric]:
        with self.store.engine.connect() as conn:
            applied = applied_per_topic(conn)
            dash = dashboard_data(conn, self.today())
        out: list[Metric] = []
        m = CounterMetricFamily("mailwindow_events_applied", "Input events applied by the database, per topic", labels=["topic"])
        for topic, n in applied.items():
            m.add_metric([topic], n)
        out.append(m)
        out.extend(_sweep_metrics(dash["sweeps"]))
        out.append(_scheduled(dash["days"]))
        return out


def _sweep_metrics(sweeps: list[dict[str, Any]]) -> list[Metric]:
    last = next((s for s in sweeps if s["status"] == "completed"), None)
    duration = GaugeMetricFamily("mailwindow_sweep_duration_seconds", "Duration of the last completed sweep")
    decided = GaugeMetricFamily("mailwindow_sweep_contacts_decided", "Contacts the last completed sweep decided")
    scanned = GaugeMetricFamily("mailwindow_sweep_contacts_scanned", "Contacts the last completed sweep scanned")
    if last is not None:
        duration.add_metric([], last["elapsed_s"] or 0.0)
        decided.add_metric([], last["contacts_processed"] or 0)
        scanned.add_metric([], last["contacts_scanned"] or 0)
    return [duration, decided, scanned]


def _scheduled(days: list[dict[str, Any]]) -> Metric:
    m = GaugeMetricFamily(
        "mailwindow_emails_scheduled",
        "Emails dated each of the next 60 days (pre-scheduled or sent-like), per type",
        labels=["email_type", "day"],
    )
    for d in days:
        for email_type, n in sorted(d["by_type"].items()):
            m.add_metric([email_type, d["date"]], n)
    return m


def _broker_metrics(snap: BrokerSnapshot) -> Iterator[Metric]:
    total = GaugeMetricFamily("mailwindow_deadletters", "Messages the deadletter topic holds")
    total.add_metric([], snap.deadletters_total)
    yield total
    per_topic = GaugeMetricFamily(
        "mailwindow_deadletters_recent", "Dead letters among the last read, per source topic", labels=["source_topic"]
    )
    for topic, n in sorted(snap.deadletters_per_topic.items()):
        per_topic.add_metric([topic], n)
    yield per_topic
    lag = GaugeMetricFamily("mailwindow_consumer_lag", "Messages the worker has not committed, per input topic", labels=["topic"])
    for topic, n in sorted(snap.lag.items()):
        lag.add_metric([topic], n)
    yield lag
    up = GaugeMetricFamily("mailwindow_broker_up", "1 when the broker answered the last read")
    up.add_metric([], 0 if snap.error else 1)
    yield up
