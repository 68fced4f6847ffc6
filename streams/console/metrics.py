"""``/metrics`` in Prometheus's text format (prometheus-client), one registry per app.

- ``mailwindow_webhook_requests_total{outcome}``, ``mailwindow_webhook_events_total{result}``:
  counted by this process as it answers.
- From the database, read when scraped: events applied per topic (``mw_applied_counts``,
  a few rows: the agents', replay's and the webhook's).  From the dashboard's latest count
  (``streams.console.refresher``, at most its refresh period old): the last completed
  sweep's duration, contacts scanned and decided, and the emails scheduled per type and
  day for the next 60 days.
- With a broker: dead letters held by the topic, and per source topic among the
  last read (``streams.console.broker``), and the worker's consumer lag per topic.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from streams.console.broker import BrokerSnapshot
from streams.store.applied_events import applied_per_topic
from streams.store.engine import Store


@dataclass
class ConsoleMetrics:
    registry: CollectorRegistry
    webhook_requests: Counter
    webhook_events: Counter
    database: DatabaseCollector


def console_metrics(store: Store) -> ConsoleMetrics:
    registry = CollectorRegistry()  # no auto-describe: registering must not read the database
    requests = Counter(
        "mailwindow_webhook_requests", "Delivery webhook requests by outcome", ["outcome"], registry=registry
    )
    events = Counter(
        "mailwindow_webhook_events", "Provider events of accepted webhook batches by result", ["result"],
        registry=registry,
    )
    database = DatabaseCollector(store)
    registry.register(database)
    return ConsoleMetrics(registry, requests, events, database)


@dataclass(eq=False)  # registered by identity: it must stay hashable
class DatabaseCollector(Collector):
    """The database's and the broker's figures; /metrics sets ``dashboard`` (and ``broker``)
    before each scrape."""

    store: Store
    dashboard: dict[str, Any] | None = None
    broker: BrokerSnapshot | None = None

    def collect(self) -> Iterator[Metric]:
        with self.store.engine.connect() as conn:
            applied = applied_per_topic(conn)
        m = CounterMetricFamily("mailwindow_events_applied", "Input events applied by the database, per topic", labels=["topic"])
        for topic, n in applied.items():
            m.add_metric([topic], n)
        yield m
        if self.dashboard is not None:
            yield from _sweep_metrics(self.dashboard["sweeps"])
            yield _scheduled(self.dashboard["days"])
        if self.broker is not None:
            yield from _broker_metrics(self.broker)


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
