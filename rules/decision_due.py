"""When a contact's decision is next due: the first day on which, with the same inputs, the
rules could decide it differently (the incremental sweep's ledger, ``streams.store.ledger``).

Once a sweep has written a contact's rows, the rules, given the same inputs on a
later day, find every occurrence in view already decided: a placement is kept until
its date and final after it, a skip is final, an occurrence whose ideal date passes
or whose event passes keeps its row (SPEC 9, "placement is decided once"; README
"The daily cycle").  Nothing is written again until:

- one of the contact's occurrences enters the range ``[T, T + H]``: the sweep finds
  those with the pre-filter run over the days that entered (the "slice",
  ``streams.sweep.incremental``), not here;
- its inputs change: the database's triggers mark it (``mw_changed``), not here;
- a date below comes: an email the sending side sent becomes an initial email on
  its send day and, until its follow-up has a row, stops being one 35 days later,
  and its follow-up is placed some days after it (``rules.followup``); a click or an
  answer leaves the follow-ups' reach; an email the frequency limit skipped is
  weighed again as its period passes (``rules.frequency_limit``).

Once an initial email's follow-up has its row (the follow-up's own key), neither of
its two dates changes a decision: the row is kept until its date and final after it,
and it stays claimed when its initial leaves the 35 days
(``rules.followup.is_initial_email``, ``any_age``).  Those two dates made most of a
campaign agency's next-day work (11,203 of the 15,681 contacts decided at 1M, every
one of them with nothing new); a follow-up matched to its initial some other way (a
legacy row, metadata naming the initial) keeps them.

The due day is the earliest of those dates after ``T``.  Earlier than needed is only
extra work (a decision with nothing new writes nothing); later would miss a change:
tests/streams/sweep/test_simulated_year.py compares every day of a simulated year
with a full re-decision, and tests/streams/sweep/test_decision_due.py checks, for
random contacts and days, that no row changes before the due day.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta

from rules.config import Config
from rules.contact_schedule import ExistingRow
from rules.followup import INITIAL_LOOKBACK_DAYS, Behaviour
from rules.frequency_limit import FREQUENCY_LIMIT_REASON
from rules.occurrence import FOLLOWUP_PREFIX, occurrence_key
from rules.placement import Horizon
from rules.statuses import PRE_SCHEDULED, SKIPPED, is_sent_like

# Bump when the rules change what a decision reads or when it can change: every
# ledger entry of an older version is then void (the run's basis names it).
LEDGER_VERSION = 1

# A day far enough that nothing is due before it (the slice and the marks still apply).
NEVER = date(2999, 12, 31)


def _day(value: date | datetime | None) -> date | None:
    if value is None:
        return None
    return value.date() if isinstance(value, datetime) else value


def decision_due(
    rows: Sequence[ExistingRow],
    horizon: Horizon,
    config: Config,
    behaviour: Behaviour | None = None,
    written_keys: Iterable[str] = (),
) -> date:
    """The first day after ``horizon.as_of`` on which, with the same inputs, the contact's
    decision could change; ``rows``: its rows as this decision leaves them, or as stored
    (the dates read here are the sending side's, which a decision never changes) with
    ``written_keys``, the keys of the rows this decision writes."""
    t = horizon.as_of
    if not rows and (behaviour is None or not (behaviour.clicks or behaviour.answers)):
        return NEVER  # nothing below to wait for: most contacts of a first sweep
    after: list[date] = []

    def at(d: date | None, *offsets: int) -> None:
        if d is not None:
            after.extend(d + timedelta(days=k) for k in offsets)

    keys = {*(r.occurrence_key for r in rows if r.occurrence_key is not None), *written_keys}
    frequency_bound = False
    for r in rows:
        if r.status == SKIPPED and r.skip_reason == FREQUENCY_LIMIT_REASON:
            frequency_bound = True
        if is_sent_like(r.status) or r.actual_send_at is not None:
            sent = _day(r.actual_send_at) or r.send_date
            at(sent, 0, 1)  # becomes an initial email on its send day
            if not _followup_has_row(r, keys):
                # Stops being one 35 days later; its follow-up is due some days after it.
                at(sent, INITIAL_LOOKBACK_DAYS + 1, INITIAL_LOOKBACK_DAYS + 2)
                at(sent, config.timing.followup_days_after, config.timing.followup_days_after + 1)
    if frequency_bound:
        period = config.load_balancing.period_days
        for r in rows:
            if r.status == PRE_SCHEDULED or is_sent_like(r.status):
                at(r.send_date, period, period + 1)
    if behaviour is not None:
        for moment in (*(c.at for c in behaviour.clicks), *(a.at for a in behaviour.answers)):
            at(moment.date(), 1, INITIAL_LOOKBACK_DAYS + 2)
    return min((d for d in after if d > t), default=NEVER)


def _followup_has_row(initial: ExistingRow, keys: set[str]) -> bool:
    """Whether the follow-up of ``initial`` (if it is one) has a row by its own key
    (``rules.followup.followup_key``): ``contact:followup:<the initial's key>``."""
    key = initial.occurrence_key
    if key is None:
        return False
    contact = key.partition(":")[0]  # keys begin with the contact's id
    return contact.isdigit() and occurrence_key(int(contact), FOLLOWUP_PREFIX, key) in keys
