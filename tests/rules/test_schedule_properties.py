"""Property tests of one contact's schedule against a brute-force reading of the SPEC."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date, timedelta

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from rules.config import (
    BIRTHDAY,
    DEFAULT_CONFIG,
    EFFECTIVE_DATE,
    Config,
    LoadBalancing,
    Timing,
    WindowRule,
    YearRoundRule,
)
from rules.contact import Contact
from rules.contact_schedule import ContactSchedule, Decision, ExistingRow, schedule_contact
from rules.exclusion_window import contact_windows
from rules.placement import Horizon
from rules.prefilter import prefilter_plan
from rules.statuses import PRE_SCHEDULED, SKIPPED
from tests.rules.oracle import (
    OWindow,
    blocks,
    excluded,
    kind_label,
    next_anniversary,
    post_window_outcomes,
    windows_containing,
    windows_of_year,
    year_round,
    year_round_reason,
)

RULE_STATES = ["CA", "ID", "KY", "MD", "NV", "OK", "OR", "VA", "MO"]
YEAR_ROUND = ["CT", "MA", "NY", "WA"]
OTHER_STATES = ["TX", "FL"]
# A window's skip reason; a dated version's ends with " (rule ...[; source: ...])".
REASON = re.compile(
    r"([A-Z]{2}) (birthday|effective date) window (\d{4}-\d\d-\d\d)\.\.(\d{4}-\d\d-\d\d)"
    r"(?: \((rule [^;()]+)(?:; source: (.+))?\))?"
)
PROPS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

leap_days = st.sampled_from([date(y, 2, 29) for y in range(1932, 2030, 4)])
base_dates = st.one_of(st.none(), st.dates(date(1930, 1, 1), date(2030, 12, 31)), leap_days)


SOURCES = st.sampled_from(["", "", "Test Code § 1", "Bulletin 2025-07 (awaits confirmation)"])


@st.composite
def rule_shapes(draw: st.DrawFn) -> dict[str, object]:
    return {
        "days_before": draw(st.integers(0, 60)),
        "days_after": draw(st.integers(0, 90)),
        "pre_window_days": draw(st.integers(0, 90)),
        "use_month_start": draw(st.booleans()),
    }


@st.composite
def change_dates(draw: st.DrawFn, count: int) -> list[date]:
    """``count`` distinct dates in 2019..2031, sorted; often the first of a month (as laws
    take effect), sometimes any day (where anchors of month-start and plain rules differ)."""
    found: set[date] = set()
    while len(found) < count:
        d = draw(st.dates(date(2019, 1, 1), date(2031, 12, 31)))
        found.add(d.replace(day=1) if draw(st.booleans()) else d)
    return sorted(found)


@st.composite
def periods(draw: st.DrawFn, count: int) -> list[tuple[date | None, date | None]]:
    """``count`` periods in order, none overlapping (SPEC 4: versions must not): each ends the
    day before the next begins, or earlier (a gap with no rule); the first may have no
    start and the last no end."""
    changes = draw(change_dates(count - 1)) if count > 1 else []
    out: list[tuple[date | None, date | None]] = []
    for i in range(count):
        first = changes[i - 1] if i > 0 else None
        last = changes[i] - timedelta(days=1) if i < count - 1 else None
        if first is None and draw(st.integers(0, 3)) == 0:  # a first version with a start
            limit = last or date(2031, 12, 31)
            first = limit - timedelta(days=draw(st.integers(0, 2000)))
        if last is not None and draw(st.integers(0, 4)) == 0:  # a gap before the next version
            lower = first or date(2019, 1, 1)
            last = max(lower, last - timedelta(days=draw(st.integers(1, 400))))
        if last is None and draw(st.integers(0, 3)) == 0:  # a last version with an end
            last = (first or date(2019, 1, 1)) + timedelta(days=draw(st.integers(0, 2000)))
        out.append((first, last))
    return out


@st.composite
def age_bands(draw: st.DrawFn) -> tuple[int | None, int | None]:
    """An age band around 60..80, one side sometimes missing."""
    low = draw(st.one_of(st.none(), st.integers(58, 80)))
    high = draw(st.one_of(st.none(), st.integers(max(low or 60, 60), 82)))
    if low is None and high is None:
        low = draw(st.integers(60, 75))
    return low, high


@st.composite
def versions(draw: st.DrawFn, state: str, kind: str) -> list[WindowRule]:
    """One rule (mostly undated, as the SPEC defaults are), or 2-3 dated versions of
    different lengths, or a rule for an age band (perhaps dated too)."""
    how = draw(st.sampled_from(["plain", "plain", "dated", "dated", "band", "dated band"]))
    count = draw(st.integers(2, 3)) if how.startswith("dated") else 1
    spans = draw(periods(count)) if how.startswith("dated") else [(None, None)]
    same_anchor = draw(st.booleans())
    anchor_rule = draw(st.booleans())
    out = []
    for first, last in spans:
        shape = draw(rule_shapes())
        if same_anchor:
            shape["use_month_start"] = anchor_rule
        low, high = draw(age_bands()) if how.endswith("band") and draw(st.integers(0, 3)) else (None, None)
        out.append(
            WindowRule(
                state,
                kind,
                **shape,  # type: ignore[arg-type]
                source=draw(SOURCES),
                effective_from=first,
                effective_until=last,
                min_age=low,
                max_age=high,
            )
        )
    return out


@st.composite
def window_rules(draw: st.DrawFn) -> tuple[WindowRule, ...]:
    rules: list[WindowRule] = []
    for state in draw(
        st.lists(st.sampled_from(RULE_STATES + OTHER_STATES), unique=True, max_size=6)
    ):
        kinds = draw(st.sampled_from([(BIRTHDAY,), (EFFECTIVE_DATE,), (BIRTHDAY, EFFECTIVE_DATE)]))
        for kind in kinds:
            rules.extend(draw(versions(state, kind)))
    return tuple(rules)


@st.composite
def dated_year_round(draw: st.DrawFn, states: list[str]) -> tuple[YearRoundRule, ...]:
    """Dated year-round rules (1-2 periods, not overlapping) for some states that also have
    window rules: before and after, their windows apply."""
    out = []
    if not states:
        return ()
    for state in draw(st.lists(st.sampled_from(states), unique=True, max_size=2)):
        spans = draw(periods(draw(st.integers(1, 2))))
        for first, last in spans:
            if first is None and last is None:  # dated: it has a start or an end
                first = draw(change_dates(1))[0]
            out.append(YearRoundRule(state, first, last, source=draw(SOURCES)))
    return tuple(out)


@st.composite
def random_configs(draw: st.DrawFn) -> Config:
    aep = draw(
        st.lists(
            st.tuples(st.integers(1, 12), st.integers(1, 28)), min_size=1, max_size=2, unique=True
        )
    )
    rules = draw(window_rules())
    with_rules = sorted({r.state for r in rules})
    return Config(
        timing=Timing(
            birthday_days_before=draw(st.integers(0, 30)),
            effective_date_days_before=draw(st.integers(0, 60)),
        ),
        aep_dates=tuple(sorted(aep)),
        load_balancing=LoadBalancing(catch_up_spread_days=draw(st.integers(1, 10))),
        year_round_rules=tuple(
            YearRoundRule(s) for s in draw(st.lists(st.sampled_from(YEAR_ROUND), unique=True))
        )
        + draw(dated_year_round(with_rules)),
        window_rules=rules,
    )


def config_dates(config: Config) -> list[date]:
    """The dates a config's rules change on: sweeps near them meet two versions."""
    found = {
        d
        for r in (*config.window_rules, *config.year_round_rules)
        for d in (r.effective_from, r.effective_until)
        if d is not None
    }
    return sorted(found)


configs = st.one_of(st.just(DEFAULT_CONFIG), random_configs())


@st.composite
def cases(draw: st.DrawFn) -> tuple[Contact, Config, Horizon]:
    """A contact, a config and a horizon; base dates are often near the as-of date's
    month-day (in any year), so that emails, windows and post-windows come into play."""
    config = draw(configs)
    changes = config_dates(config)
    as_of = draw(
        st.one_of(
            st.dates(date(2020, 1, 1), date(2030, 12, 31)),
            # around New Year, where windows of the next or previous year apply
            st.builds(
                lambda y, n: date(y, 11, 1) + timedelta(days=n),
                st.integers(2020, 2029),
                st.integers(0, 100),
            ),
        )
    )
    if changes and draw(st.booleans()):  # near a rule change: windows of both versions around
        as_of = draw(st.sampled_from(changes)) + timedelta(days=draw(st.integers(-200, 200)))
    horizon = Horizon(
        as_of, lookahead_days=draw(st.integers(0, 60)), lookback_days=draw(st.integers(0, 14))
    )

    def contact_states(config: Config) -> list[str]:
        """Any state, or (two times in three) one the config has dated rules for."""
        dated = sorted(
            {r.state for r in config.window_rules if r.dated}
            | {r.state for r in config.year_round_rules if r.dated}
        )
        if dated and draw(st.integers(0, 2)):
            return dated
        return RULE_STATES + YEAR_ROUND + OTHER_STATES

    bands = sorted(
        {a for r in config.window_rules for a in (r.min_age, r.max_age) if a is not None}
    )

    def base(days_before: int, birth: bool) -> date | None:
        modes = ["email", "email", "window", "ahead", "none", "any", "leap"]
        modes += ["change", "change"] if changes else []
        modes += ["band", "band"] if bands and birth else []
        how = draw(st.sampled_from(modes))
        if how == "none":
            return None
        if how == "any":
            return draw(base_dates)
        if how == "leap":
            if draw(st.booleans()):
                return draw(leap_days)
            # a Feb 29 birth around the band ages: the age on a Feb 28 anchor counts
            year = as_of.year - draw(st.integers(55, 85))
            return date(year - year % 4, 2, 29)
        if how == "band":  # a birth date whose age on the anchors of five years crosses a band's edge
            year = as_of.year - draw(st.sampled_from(bands)) + draw(st.integers(-2, 2))
            if draw(st.booleans()):  # Feb 29: the age on a Feb 28 anchor counts
                return date(year - year % 4, 2, 29)
            near = as_of + timedelta(days=draw(st.integers(-60, 200)))
            if (near.month, near.day) == (2, 29):
                year -= year % 4
            return near.replace(year=year)
        if how == "change":  # an anniversary near a rule change: which version applies
            near = draw(st.sampled_from(changes)) + timedelta(days=draw(st.integers(-40, 40)))
        elif how == "email":  # the anniversary puts the email near the range
            span = draw(st.integers(-horizon.lookback_days - 3, horizon.lookahead_days + 3))
            near = as_of + timedelta(days=days_before + span)
        elif how == "window":  # an anniversary a little while ago: its window ends near
            near = as_of - timedelta(days=draw(st.integers(0, 130)))
        else:  # an anniversary ahead: its window (pre-window included) starts near
            near = as_of + timedelta(days=draw(st.integers(0, 200)))
        if draw(st.booleans()):
            year = draw(st.integers(1930, 2030))
        else:  # around the ages of the bands (60..80) on the as-of date
            year = as_of.year - draw(st.integers(55, 85))
        if (near.month, near.day) == (2, 29):
            year -= year % 4
        return near.replace(year=year)

    contact = Contact(
        id=draw(st.integers(1, 10**6)),
        email="pat@example.com",
        state=draw(st.sampled_from(contact_states(config))),
        birth_date=base(config.timing.birthday_days_before, birth=True),
        effective_date=base(config.timing.effective_date_days_before, birth=False),
    )
    return contact, config, horizon


def oracle_window(contact: Contact, config: Config, reason: str) -> OWindow:
    """The oracle's window a skip reason names: same kind and dates, and for a dated
    version the same version text and source (the whole reason equal to the oracle's)."""
    m = REASON.fullmatch(reason)
    assert m is not None, reason
    state, kind, start, end = m.groups()[:4]
    assert state == contact.state
    start_d, end_d = date.fromisoformat(start), date.fromisoformat(end)
    same_dates = [
        w
        for y in range(start_d.year, end_d.year + 2)
        for w in windows_of_year(contact, config, y)
        if (kind_label(w.kind), w.start, w.end) == (kind, start_d, end_d)
    ]
    assert same_dates, f"{reason} is not a window of the contact per SPEC 4"
    found = [w for w in same_dates if w.label == reason]
    assert found, f"{reason!r}: the window's version or source should read {[w.label for w in same_dates]}"
    return found[0]


def is_year_round_reason(contact: Contact, reason: str | None) -> bool:
    return reason is not None and reason.startswith(f"{contact.state} year-round")


def windows_ending(contact: Contact, config: Config, end: date) -> list[OWindow]:
    return [
        w
        for y in range(end.year - 1, end.year + 2)
        for w in windows_of_year(contact, config, y)
        if w.end == end
    ]


# --- exclusion ---------------------------------------------------------------------------------


@PROPS
@given(cases())
def test_status_follows_exclusion(case: tuple[Contact, Config, Horizon]) -> None:
    contact, config, horizon = case
    plan = schedule_contact(contact, [], config, horizon)
    event(f"{min(len(plan.decisions), 3)}+ decisions")
    for d in plan.decisions:
        event(f"status {d.status}")
        is_excluded = excluded(contact, config, d.send_date)
        if d.status == PRE_SCHEDULED:
            assert not is_excluded, (d.occurrence.key, d.send_date)
            assert d.skip_reason is None
        else:
            assert d.status == SKIPPED and is_excluded, (d.occurrence.key, d.send_date)
            # a year-round rule in force on the date (dated or not) is the reason; else a window
            expected_year_round = year_round_reason(contact, config, d.send_date)
            if expected_year_round is not None:
                event("skip: year-round" + (" (dated)" if "(" in expected_year_round else ""))
                assert d.skip_reason == expected_year_round
            else:
                event("skip: dated version" if (d.skip_reason or "").endswith(")") else "skip: window")
                w = oracle_window(contact, config, d.skip_reason or "")
                assert d.send_date in w


@PROPS
@given(cases())
def test_exclusion_calendar_matches_the_oracle(case: tuple[Contact, Config, Horizon]) -> None:
    """The contact's windows of five years are the oracle's (dates, version and source), and
    the reason for a date, day by day around the as-of date, on each window's edges and
    on each rule change, is the oracle's: a year-round rule in force first, else one of
    the windows containing it, else none."""
    contact, config, horizon = case
    states = {contact.state} | {r.state for r in (*config.window_rules, *config.year_round_rules)}
    for state in sorted(states):  # the contact's dates in each state the config has rules for
        check_calendar(replace(contact, state=state), config, horizon.as_of)


def check_calendar(contact: Contact, config: Config, t: date) -> None:
    windows = contact_windows(contact.state, contact.birth_date, contact.effective_date, config)
    years = range(t.year - 2, t.year + 3)
    expected = [w for y in years for w in windows_of_year(contact, config, y)]
    got = windows.windows_of_years(years)
    assert sorted((w.kind, w.start, w.end, w.label) for w in got) == sorted(
        (w.kind, w.start, w.end, w.label) for w in expected
    )
    event(f"{min(len(expected), 6)} windows in five years")
    if any(w.version for w in expected):
        event("a dated version's window")
    days = {t + timedelta(days=k) for k in range(-400, 401, 5)}
    for change in config_dates(config):
        days |= {change + timedelta(days=k) for k in (-1, 0, 1)}
    for w in expected:
        days |= {w.start - timedelta(days=1), w.start, w.end, w.end + timedelta(days=1)}
    near = date(t.year - 3, 1, 1), date(t.year + 3, 12, 31)  # the years the cases are drawn for
    for d in sorted(d for d in days if near[0] <= d <= near[1]):
        found = windows.exclusion_on(d)
        reason = None if found is None else found.reason
        expected_year_round = year_round_reason(contact, config, d)
        containing = windows_containing(contact, config, d)
        if expected_year_round is not None:
            assert reason == expected_year_round, d
            assert found is not None and found.window is None
        elif containing:
            assert reason in {w.label for w in containing}, (d, reason)
        else:
            assert found is None, (d, reason)


# --- post-window emails --------------------------------------------------------------------------


@PROPS
@given(cases())
def test_skip_in_blocking_window_comes_with_its_post_window(
    case: tuple[Contact, Config, Horizon],
) -> None:
    contact, config, horizon = case
    plan = schedule_contact(contact, [], config, horizon)
    by_key = {d.occurrence.key: d for d in plan.decisions}
    for d in plan.decisions:
        if d.status != SKIPPED or is_year_round_reason(contact, d.skip_reason):
            continue  # a year-round skip names no window: it materializes no post-window email
        w = oracle_window(contact, config, d.skip_reason or "")
        key = f"{contact.id}:post_window:{w.end.isoformat()}"
        same_end = windows_ending(contact, config, w.end)
        outcomes: set[date | None] = set()
        for other in same_end:
            if blocks(contact, config, other):
                outcomes |= post_window_outcomes(contact, config, other)
        event(f"skip in a window: post-window {'present' if key in by_key else 'absent'}")
        if key in by_key:
            assert by_key[key].occurrence.ideal_send_date in outcomes
        elif blocks(contact, config, w):
            assert None in outcomes, f"{d.occurrence.key} skipped in blocking {w} without {key}"


@PROPS
@given(cases())
def test_post_window_dates_are_free_and_after_their_window(
    case: tuple[Contact, Config, Horizon],
) -> None:
    contact, config, horizon = case
    plan = schedule_contact(contact, [], config, horizon)
    assert not (
        year_round(contact, config)
        and any(d.occurrence.email_type == "post_window" for d in plan.decisions)
    )
    for d in plan.decisions:
        if d.occurrence.email_type != "post_window":
            continue
        s = d.occurrence.ideal_send_date
        end = date.fromisoformat(d.occurrence.key.rsplit(":", 1)[1])
        assert s > end
        assert not excluded(contact, config, s)
        reachable: set[date | None] = set()
        for w in windows_ending(contact, config, end):
            if blocks(contact, config, w):
                reachable |= post_window_outcomes(contact, config, w)
        assert s in reachable, (d.occurrence.key, s, reachable)


@PROPS
@given(cases())
def test_post_window_in_play_or_materialized_by_a_skip(
    case: tuple[Contact, Config, Horizon],
) -> None:
    contact, config, horizon = case
    """Every unambiguous post-window email in play is there; any other is explained by a skip."""
    plan = schedule_contact(contact, [], config, horizon)
    t, first, last = horizon.as_of, horizon.lookback_start, horizon.range_end
    keys = {d.occurrence.key for d in plan.decisions}
    if year_round(contact, config):
        return
    skipped_ends = {
        oracle_window(contact, config, d.skip_reason or "").end
        for d in plan.decisions
        if d.status == SKIPPED and not is_year_round_reason(contact, d.skip_reason)
    }
    for y in range(t.year - 3, t.year + 2):
        for w in windows_of_year(contact, config, y):
            if not blocks(contact, config, w):
                continue
            outcomes = post_window_outcomes(contact, config, w)
            if len(outcomes) != 1 or None in outcomes:
                continue
            (s,) = outcomes
            assert s is not None
            if first <= s <= last:
                event("post-window in play")
                assert f"{contact.id}:post_window:{w.end.isoformat()}" in keys, (w, s)
    for d in plan.decisions:
        if d.occurrence.email_type == "post_window" and not (
            first <= d.occurrence.ideal_send_date <= last
        ):
            end = date.fromisoformat(d.occurrence.key.rsplit(":", 1)[1])
            assert end in skipped_ends, d.occurrence.key


# --- yearly emails in play ----------------------------------------------------------------------


@PROPS
@given(cases())
def test_yearly_emails_in_play_exactly_when_the_spec_says(
    case: tuple[Contact, Config, Horizon],
) -> None:
    contact, config, horizon = case
    plan = schedule_contact(contact, [], config, horizon)
    t, first, last = horizon.as_of, horizon.lookback_start, horizon.range_end
    by_type: dict[str, list[Decision]] = {}
    for d in plan.decisions:
        by_type.setdefault(d.occurrence.email_type, []).append(d)
    expected: dict[str, tuple[str, date, date]] = {}
    for kind, base, before in (
        ("birthday", contact.birth_date, config.timing.birthday_days_before),
        ("effective_date", contact.effective_date, config.timing.effective_date_days_before),
    ):
        if base is None:
            continue
        e = next_anniversary(base, t)
        s = e - timedelta(days=before)
        if t <= s <= last or (first <= s < t and e >= t):
            expected[kind] = (f"{contact.id}:{kind}:{e.year}", e, s)
    expected_aep = []
    for m, dd in config.aep_dates:
        e = date(t.year, m, dd)
        if e < t:
            e = date(t.year + 1, m, dd)
        if e <= last:  # S = E >= T: placed on E
            expected_aep.append((f"{contact.id}:aep:{e.isoformat()}", e, e))
    for kind in ("birthday", "effective_date"):
        got = by_type.get(kind, [])
        if kind in expected:
            key, e, s = expected[kind]
            assert [
                (d.occurrence.key, d.occurrence.event_date, d.occurrence.ideal_send_date)
                for d in got
            ] == [(key, e, s)]
            (d,) = got
            if t <= s:
                assert d.send_date == s and not d.catch_up
        else:
            assert got == []
    got_aep = sorted(
        (d.occurrence.key, d.occurrence.event_date, d.send_date) for d in by_type.get("aep", [])
    )
    assert got_aep == sorted(expected_aep)


@PROPS
@given(cases())
def test_catch_ups_lie_between_t_and_the_event(case: tuple[Contact, Config, Horizon]) -> None:
    contact, config, horizon = case
    t = horizon.as_of
    spread = config.load_balancing.catch_up_spread_days
    for d in schedule_contact(contact, [], config, horizon).decisions:
        if not d.catch_up:
            continue
        event(f"catch-up {d.occurrence.email_type}")
        if d.occurrence.email_type == "post_window":
            assert d.send_date == t
        else:
            e = d.occurrence.event_date
            assert t <= d.send_date and (d.send_date < e or d.send_date == t == e)
            assert (d.send_date - t).days < max(1, spread)


# --- determinism and "placement is decided once" --------------------------------------------------


def rows_from(plan: ContactSchedule, run_id: str) -> list[ExistingRow]:
    return [
        ExistingRow(
            id=i + 1,
            email_type=d.occurrence.email_type,
            send_date=d.send_date,
            status=d.status,
            occurrence_key=d.occurrence.key,
            ideal_send_date=d.occurrence.ideal_send_date,
            event_year=d.occurrence.event_date.year,
            placed_run_id=run_id,
        )
        for i, d in enumerate(plan.decisions)
    ]


@PROPS
@given(cases())
def test_deterministic(case: tuple[Contact, Config, Horizon]) -> None:
    contact, config, horizon = case
    assert schedule_contact(contact, [], config, horizon) == schedule_contact(
        contact, [], config, horizon
    )


@PROPS
@given(cases())
def test_rerun_keeps_placements(case: tuple[Contact, Config, Horizon]) -> None:
    contact, config, horizon = case
    first = schedule_contact(contact, [], config, horizon)
    rows = rows_from(first, "run-1")
    failed = frozenset({"run-0"})

    # same T: the same decisions, all kept, nothing removed or withheld
    again = schedule_contact(contact, rows, config, horizon, failed)
    assert again.deletes == () and again.not_written == ()
    assert {d.occurrence.key: (d.send_date, d.status) for d in again.decisions} == {
        d.occurrence.key: (d.send_date, d.status) for d in first.decisions
    }
    assert all(d.kept for d in again.decisions)

    # T + 1: every placement dated T + 1 or later stays on its date
    tomorrow = Horizon(
        horizon.as_of + timedelta(days=1), horizon.lookahead_days, horizon.lookback_days
    )
    nxt = schedule_contact(contact, rows, config, tomorrow, failed)
    decided = {d.occurrence.key: d for d in nxt.decisions}
    for row in rows:
        assert row.send_date is not None
        if row.send_date < tomorrow.as_of:
            continue
        assert row.id not in nxt.deletes, row
        if row.occurrence_key in decided:
            event("kept on T+1")
            d = decided[row.occurrence_key]
            assert d.send_date == row.send_date, (row, d)
            assert d.kept


# --- the pre-filter never loses a contact with something in play ---------------------------------


def _md(d: date | None) -> str | None:
    return None if d is None else d.strftime("%m-%d")


def _in(md: str | None, ranges: tuple[tuple[str, str], ...]) -> bool:
    return md is not None and any(lo <= md <= hi for lo, hi in ranges)


@PROPS
@given(cases())
def test_prefilter_selects_every_contact_with_an_email_in_play(
    case: tuple[Contact, Config, Horizon],
) -> None:
    contact, config, horizon = case
    plan = schedule_contact(contact, [], config, horizon)
    if not plan.decisions:
        return
    pf = prefilter_plan(config, horizon)
    bmd, emd = _md(contact.birth_date), _md(contact.effective_date)
    selected = (
        pf.every_contact
        or _in(bmd, pf.birthday_ranges)
        or _in(emd, pf.effective_date_ranges)
        or any(
            contact.state in sf.states
            and (sf.every_contact or _in(bmd if sf.kind == BIRTHDAY else emd, sf.ranges))
            for sf in pf.state_filters
        )
    )
    assert selected, [d.occurrence.key for d in plan.decisions]


# --- rows already in the database ---------------------------------------------------------------

STATUSES = ["pre-scheduled", "skipped", "sent", "SENT", "delivered", "failed", "scheduled", "weird"]
TYPES = ["birthday", "effective_date", "aep", "post_window", "BIRTHDAY", "POST_WINDOW_BIRTHDAY"]


@st.composite
def with_rows(draw: st.DrawFn) -> tuple[Contact, Config, Horizon, list[ExistingRow]]:
    contact, config, horizon = draw(cases())
    fresh = schedule_contact(contact, [], config, horizon)
    keys = [d.occurrence.key for d in fresh.decisions] + [f"{contact.id}:birthday:1999"]
    rows = []
    for i in range(draw(st.integers(0, 6))):
        keyed = draw(st.booleans())
        send = horizon.as_of + timedelta(days=draw(st.integers(-10, 70)))
        rows.append(
            ExistingRow(
                id=100 + i,
                email_type=draw(st.sampled_from(TYPES)),
                send_date=draw(st.one_of(st.just(send), st.none())),
                status=draw(st.sampled_from(STATUSES)),
                occurrence_key=draw(st.sampled_from(keys)) if keyed else None,
                ideal_send_date=draw(st.one_of(st.none(), st.just(send))),
                event_year=draw(st.one_of(st.none(), st.just(send.year))),
                placed_run_id=draw(st.sampled_from(["run-1", "run-failed"])),
            )
        )
    # one row per key, as the unique index guarantees
    seen: set[str] = set()
    unique = []
    for r in rows:
        if r.occurrence_key is None or r.occurrence_key not in seen:
            unique.append(r)
            seen.add(r.occurrence_key or "")
    return contact, config, horizon, unique


@PROPS
@given(with_rows())
def test_rows_in_sending_side_statuses_are_never_touched(
    case: tuple[Contact, Config, Horizon, list[ExistingRow]],
) -> None:
    contact, config, horizon, rows = case
    plan = schedule_contact(contact, rows, config, horizon, frozenset({"run-failed"}))
    owned = {r.id for r in rows if r.status in ("pre-scheduled", "skipped")}
    by_id = {r.id: r for r in rows}
    not_owned_keys = {r.occurrence_key for r in rows if r.id not in owned and r.occurrence_key}
    decided_rows = [d.existing_row_id for d in plan.decisions if d.existing_row_id is not None]
    assert len(decided_rows) == len(set(decided_rows)), "one row claimed twice"
    assert set(decided_rows) <= owned
    assert set(plan.deletes) <= owned
    assert not set(plan.deletes) & set(decided_rows)
    for row_id in plan.deletes:
        sent = by_id[row_id].send_date
        assert sent is not None and horizon.in_range(sent)
    for d in plan.decisions:
        assert d.occurrence.key not in not_owned_keys
        if d.existing_row_id is not None and by_id[d.existing_row_id].occurrence_key is not None:
            assert by_id[d.existing_row_id].occurrence_key == d.occurrence.key
    assert not {d.occurrence.key for d in plan.decisions} & {
        n.occurrence.key for n in plan.not_written
    }
    # every owned row in the range is either claimed by a decision or removed
    for r in rows:
        if r.id in owned and r.send_date is not None and horizon.in_range(r.send_date):
            assert r.id in decided_rows or r.id in plan.deletes, r
