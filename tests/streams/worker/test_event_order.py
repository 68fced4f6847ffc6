"""The event path's promise (ARCHITECTURE.md, "Guarantees"; issue 10): the final database
does not depend on how the topics' events are interleaved across topics and partitions,
how they are batched, or where the worker crashed and read them again, as long as each
partition's order is kept; and ``replay`` of the audit record gives the live checksum.

Each example is a generated log (``tests/event_logs.py``: contacts, deletes, clicks,
answers, statuses, campaign events; statuses before their contacts, events of contacts
that never come) run by two simulated workers with different interleavings, batches,
crash points and sweep points, then replayed from the baseline and the sweep runs.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rules.config import Config, config_from_mapping
from tests.event_logs import DAY0, EventLog, agency_template, event_logs, replay_of, run_live

# A tight frequency limit makes decisions depend on each other (which email of a contact
# is skipped): where an order dependence would show first.
TIGHT, _ = config_from_mapping(
    {"load_balancing": {"max_emails_per_contact_per_period": 1, "period_days": 30}}
)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return agency_template(tmp_path_factory.mktemp("template") / "agency.db")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    log=event_logs(),
    seeds=st.tuples(st.integers(0, 10**6), st.integers(0, 10**6)),
    sweeps=st.integers(0, 2),
    config=st.sampled_from((None, TIGHT)),
)
def test_live_order_batching_and_crashes_do_not_matter_and_replay_agrees(
    template: Path,
    tmp_path_factory: pytest.TempPathFactory,
    log: EventLog,
    seeds: tuple[int, int],
    sweeps: int,
    config: Config | None,
) -> None:
    work = tmp_path_factory.mktemp("order")
    days = [DAY0 + timedelta(days=i + 1) for i in range(sweeps)]
    kw = {} if config is None else {"config": config}
    first = run_live(template, work, log, seeds[0], **kw)
    second = run_live(template, work, log, seeds[1] + 1_000_001, **kw)
    assert first.checksum == second.checksum
    assert replay_of(log, first, work) == first.checksum
    # With sweeps at random points: replay follows the sweeps live ran, wherever they fell.
    if days:
        swept = run_live(template, work, log, seeds[0] + 7, days, **kw)
        assert len(swept.runs) == len(days)
        assert replay_of(log, swept, work, "replayed-swept.db") == swept.checksum
