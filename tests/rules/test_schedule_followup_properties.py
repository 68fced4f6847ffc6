"""Properties of follow-ups and campaigns decided through ``schedule_contact`` (SPEC
sections 1, 4, 5, 7, 8, 9): behaviour only raises the type, one follow-up per initial email,
rows of the sending side are never touched, follow-ups never go out early or into a window;
campaign emails are those the SPEC puts in play, one campaign email a day."""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from rules.campaign import CampaignBook, CampaignInstance, CampaignTarget
from rules.config import DEFAULT_CONFIG, CampaignType
from rules.contact import Contact
from rules.contact_schedule import ContactSchedule, ExistingRow, schedule_contact
from rules.followup import (
    FOLLOWUP_TYPES,
    NO_BEHAVIOUR,
    Behaviour,
    Click,
    HealthAnswer,
    followup_rank,
)
from rules.placement import Horizon
from rules.statuses import PRE_SCHEDULED, SKIPPED
from tests.builders import (
    CID,
    FOLLOWED_UP_TYPES,
    FU_KEY,
    PAUSED,
    PLAN_NEWS,
    RATE_INCREASE,
    REGULATORY,
    TX,
    WELCOME,
    T,
    as_stored,
    campaign_types,
    followup_row,
    health_metadata,
    initial_row,
    schedule_on,
)
from tests.rules.oracle import excluded

PROPS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TYPES = campaign_types(RATE_INCREASE, REGULATORY)
BOOK = CampaignBook(TYPES, ())
OWNED = ("pre-scheduled", "skipped")
NOT_OWNED = (
    "sent",
    "Delivered",
    "delivered",
    "SENT",
    "processing",
    "scheduled",
    "accepted",
    "FAILED",
    "bounced",
    "weird",
    "SKIPPED",
    "Pre-Scheduled",
)
INITIAL_TYPES = (*FOLLOWED_UP_TYPES, "campaign_regulatory_notice")
FOLLOWUP_ROW_TYPES = (*FOLLOWUP_TYPES, "FOLLOWUP_COLD", "followup_legacy")


def schedule(
    rows: list[ExistingRow],
    behaviour: Behaviour = NO_BEHAVIOUR,
    contact: Contact | None = None,
    as_of: date = T,
) -> ContactSchedule:
    return schedule_on(
        as_of,
        contact or TX,
        rows,
        campaigns=BOOK,
        behaviour=behaviour,
        failed_runs=frozenset({"run-failed"}),
    )


# --- behaviour ---------------------------------------------------------------------------

times = st.datetimes(datetime(2025, 5, 25), datetime(2025, 6, 12))
answer_metadata = st.one_of(
    st.none(),
    st.sampled_from(["{not json", "[1]", "null", '{"has_medical_conditions": "yes"}']),
    health_metadata(max_yes_count=3),
)
clicks = st.lists(st.builds(Click, times), max_size=4)
answers = st.lists(st.builds(HealthAnswer, times, answer_metadata), max_size=4)
more_behaviour = st.one_of(st.builds(Click, times), st.builds(HealthAnswer, times, answer_metadata))

# the birthday email sent on 2025-06-05 at 08:31 (its event 2025-06-19), placed by no run
INITIAL = initial_row(placed_run_id=None)


def followup_type_of(plan: ContactSchedule) -> str:
    (d,) = [d for d in plan.decisions if d.occurrence.is_followup]
    assert d.occurrence.key == FU_KEY
    return d.occurrence.email_type


@PROPS
@given(
    clicks,
    answers,
    more_behaviour,
    st.one_of(st.none(), st.sampled_from(FOLLOWUP_ROW_TYPES)),
    st.sampled_from([T, T + timedelta(days=1)]),
)
def test_more_behaviour_never_lowers_the_decided_type(
    some_clicks: list[Click],
    some_answers: list[HealthAnswer],
    more: Click | HealthAnswer,
    pending_type: str | None,
    as_of: date,
) -> None:
    rows = [INITIAL]
    if pending_type is not None:  # a follow-up already pending, of some type
        rows.append(followup_row(email_type=pending_type, priority=None, event_date=None))
    before = Behaviour(tuple(some_clicks), tuple(some_answers))
    if isinstance(more, Click):
        after = Behaviour((*some_clicks, more), tuple(some_answers))
    else:
        after = Behaviour(tuple(some_clicks), (*some_answers, more))
    kind_before = followup_type_of(schedule(rows, before, as_of=as_of))
    kind_after = followup_type_of(schedule(rows, after, as_of=as_of))
    event(f"{kind_before} -> {kind_after}")
    assert followup_rank(kind_after) >= followup_rank(kind_before)
    if pending_type is not None:  # a pending follow-up is never downgraded
        assert followup_rank(kind_before) >= followup_rank(pending_type)


# --- random schedules of initial emails and follow-up rows --------------------------------------


def initial_key(email_type: str, i: int, send: date) -> str:
    kind = email_type.lower()
    if kind.startswith("post_window"):
        return f"{CID}:post_window:{(send - timedelta(days=1)).isoformat()}"
    if kind.startswith("campaign_"):
        return f"{CID}:campaign:{i}:{send.isoformat()}"
    if kind == "aep":
        return f"{CID}:aep:{send.isoformat()}"
    return f"{CID}:{kind}:{send.year - i}"  # distinct per row


@st.composite
def schedules(
    draw: st.DrawFn, statuses: tuple[str, ...] = ("sent", "delivered", "SENT", "Delivered")
) -> tuple[Contact, list[ExistingRow], Behaviour]:
    """A contact with initial emails (some legacy) and follow-up rows that may name them
    (by key, metadata or date), in any status."""
    rows: list[ExistingRow] = []
    initials: list[tuple[int, str | None, date]] = []
    for i in range(draw(st.integers(0, 4))):
        email_type = draw(st.sampled_from(INITIAL_TYPES))
        send = T + timedelta(days=draw(st.integers(-40, 2)))
        legacy = draw(st.booleans())
        key: str | None = None if legacy else initial_key(email_type, i, send)
        actual = draw(
            st.one_of(st.none(), st.just(datetime.combine(send, time(8, draw(st.integers(0, 59))))))
        )
        rows.append(
            ExistingRow(
                10 + i,
                email_type,
                send,
                draw(st.sampled_from(statuses)),
                occurrence_key=key,
                ideal_send_date=None if legacy else send,
                event_year=None if legacy else send.year,
                send_time=draw(st.one_of(st.none(), st.just(time(8, 30)))),
                actual_send_at=actual,
                priority=None if legacy else draw(st.integers(1, 10)),
                campaign_instance_id=i if email_type.startswith("campaign_") else None,
            )
        )
        initials.append((10 + i, key, send))
    for j in range(draw(st.integers(0, 4))):
        send = T + timedelta(days=draw(st.integers(-40, 40)))
        named = draw(st.one_of(st.none(), st.sampled_from(initials))) if initials else None
        how = draw(st.sampled_from(["key", "metadata", "none"]))
        fu_key: str | None = None
        metadata: str | None = None
        if named is not None and how == "key":
            row_id, ikey, _ = named
            fu_key = f"{CID}:followup:{ikey if ikey is not None else f'row{row_id}'}"
        elif named is not None and how == "metadata":
            row_id, ikey, _ = named
            metadata = json.dumps({"initial_key": ikey, "initial_row_id": row_id})
            fu_key = draw(st.one_of(st.none(), st.just(f"{CID}:followup:elsewhere{j}")))
        elif draw(st.booleans()):
            metadata = draw(st.sampled_from(["{broken", "[]", '{"x": 1}']))
        ideal = draw(st.one_of(st.none(), st.just(send), st.just(send - timedelta(days=3))))
        rows.append(
            ExistingRow(
                50 + j,
                draw(st.sampled_from(FOLLOWUP_ROW_TYPES)),
                send,
                draw(st.sampled_from(OWNED + NOT_OWNED)),
                occurrence_key=fu_key,
                ideal_send_date=ideal,
                event_year=send.year,
                placed_run_id=draw(st.sampled_from(["run-1", "run-failed"])),
                skip_reason=None,
                metadata=metadata,
            )
        )
    # one row per key, as the unique index guarantees
    seen: set[str] = set()
    unique = []
    for r in rows:
        if r.occurrence_key is None or r.occurrence_key not in seen:
            unique.append(r)
            if r.occurrence_key is not None:
                seen.add(r.occurrence_key)
    state = draw(st.sampled_from(["TX", "CA", "NV", "MO", "NY", "VA"]))
    contact = Contact(
        CID,
        "pat@example.com",
        state,
        draw(st.one_of(st.none(), st.dates(date(1940, 1, 1), date(1960, 12, 31)))),
        draw(st.one_of(st.none(), st.dates(date(2000, 1, 1), date(2024, 12, 31)))),
    )
    behaviour = Behaviour(tuple(draw(clicks)), tuple(draw(answers)))
    return contact, unique, behaviour


def fresh_initials(
    rows: list[ExistingRow], as_of: date, any_age: bool = False
) -> list[ExistingRow]:
    """SPEC section 8, read afresh: sent or delivered, a following-up type, sent in
    [T - 35, T] (``any_age``: sent on or before T)."""
    out = []
    for r in rows:
        kind = r.email_type.lower()
        if r.status.lower() not in ("sent", "delivered"):
            continue
        if not (
            kind in ("birthday", "effective_date", "aep")
            or kind.startswith("post_window")
            or kind == "campaign_rate_increase"
        ):
            continue
        sent = sent_on(r)
        oldest = date.min if any_age else as_of - timedelta(days=35)
        if sent is not None and oldest <= sent <= as_of:
            out.append(r)
    return out


def sent_on(row: ExistingRow) -> date | None:
    return row.actual_send_at.date() if row.actual_send_at else row.send_date


def has_followup_row(initial: ExistingRow, rows: list[ExistingRow]) -> bool:
    """SPEC section 8, read afresh: a follow-up row with the initial's follow-up key, or
    whose metadata names it, or a legacy one (no such key or metadata) of the contact dated
    within 35 days after its send date."""
    sent = sent_on(initial)
    assert sent is not None
    for r in rows:
        if not r.email_type.lower().startswith("followup"):
            continue
        if r.occurrence_key == followup_key_of(initial):
            return True
        named = None
        try:
            data = json.loads(r.metadata) if r.metadata else None
        except ValueError:
            data = None
        if isinstance(data, dict) and ("initial_key" in data or "initial_row_id" in data):
            named = data
        if named is not None:
            if initial.occurrence_key is not None and named.get("initial_key") is not None:
                if named["initial_key"] == initial.occurrence_key:
                    return True
            elif named.get("initial_row_id") == initial.id:
                return True
            continue
        keyed = r.occurrence_key is not None and r.occurrence_key.startswith(f"{CID}:followup:")
        if (
            not keyed
            and r.send_date is not None
            and sent <= r.send_date <= sent + timedelta(days=35)
        ):
            return True
    return False


def followup_key_of(row: ExistingRow) -> str:
    part = row.occurrence_key if row.occurrence_key is not None else f"row{row.id}"
    return f"{CID}:followup:{part}"


@PROPS
@given(schedules(), st.sampled_from([T, T + timedelta(days=1), T + timedelta(days=3)]))
def test_at_most_one_followup_per_initial_and_keys_unique(
    case: tuple[Contact, list[ExistingRow], Behaviour], as_of: date
) -> None:
    contact, rows, behaviour = case
    plan = schedule(rows, behaviour, contact, as_of)
    keys = [d.occurrence.key for d in plan.decisions]
    assert len(keys) == len(set(keys)), "two decisions share a key"
    claimed = [d.existing_row_id for d in plan.decisions if d.existing_row_id is not None]
    assert len(claimed) == len(set(claimed)), "one row claimed by two decisions"
    per_initial: dict[int, int] = {}
    for d in plan.decisions:
        if not d.occurrence.is_followup:
            continue
        assert d.occurrence.metadata is not None
        named = json.loads(d.occurrence.metadata)["initial_row_id"]
        per_initial[named] = per_initial.get(named, 0) + 1
    assert all(n == 1 for n in per_initial.values()), per_initial
    # every initial email in its 35 days has its follow-up: decided, not ours to write, or
    # (when neither) a follow-up row that answers it per SPEC section 8
    not_written = {n.occurrence.key for n in plan.not_written}
    for initial in fresh_initials(rows, as_of):
        key = followup_key_of(initial)
        event(f"fresh initial: {'decided' if key in keys else 'not written'}")
        assert not (key in keys and key in not_written), key
        if key not in keys and key not in not_written:
            assert has_followup_row(initial, rows), (initial, keys, not_written)
    # no follow-up for anything that is not an initial email (of any age: a pending
    # follow-up outlives its initial's 35 days)
    assert set(per_initial) <= {r.id for r in fresh_initials(rows, as_of, any_age=True)}


@PROPS
@given(schedules(statuses=OWNED + NOT_OWNED), st.sampled_from([T, T + timedelta(days=1)]))
def test_rows_in_non_owned_statuses_are_never_deleted_nor_decided(
    case: tuple[Contact, list[ExistingRow], Behaviour], as_of: date
) -> None:
    contact, rows, behaviour = case
    plan = schedule(rows, behaviour, contact, as_of)
    not_owned = {r.id for r in rows if r.status not in OWNED}
    event(f"{len(not_owned)} rows of the sending side")
    assert not set(plan.deletes) & not_owned
    assert not {d.existing_row_id for d in plan.decisions} & not_owned
    # and an owned row is never both decided and deleted
    assert not set(plan.deletes) & {d.existing_row_id for d in plan.decisions}


@PROPS
@given(schedules(), st.sampled_from([T, T + timedelta(days=1), T + timedelta(days=2)]))
def test_followups_never_before_t_nor_pre_scheduled_on_an_excluded_date(
    case: tuple[Contact, list[ExistingRow], Behaviour], as_of: date
) -> None:
    contact, rows, behaviour = case
    plan = schedule(rows, behaviour, contact, as_of)
    for d in plan.decisions:
        if not d.occurrence.is_followup:
            continue
        is_excluded = excluded(contact, DEFAULT_CONFIG, d.send_date)
        event(f"follow-up {d.status}")
        assert d.send_date >= as_of
        assert d.status in (PRE_SCHEDULED, SKIPPED)
        assert (d.status == PRE_SCHEDULED) == (not is_excluded), (d, contact)
        if d.status == SKIPPED:
            assert d.skip_reason is not None
        # placed on its ideal date, or after it (tomorrow, or kept)
        assert d.send_date >= d.occurrence.ideal_send_date or d.kept


@PROPS
@given(
    st.sampled_from(["TX", "CA", "NV", "NY"]),
    st.dates(date(1940, 1, 1), date(1960, 12, 31)),
    st.integers(-35, 0),
)
def test_followup_skips_call_for_no_post_window_email(
    state: str, birth: date, sent_days_ago: int
) -> None:
    """A sent campaign email's follow-up, skipped or not, changes none of the contact's
    other emails: in particular it never brings a post-window email with it."""
    contact = Contact(CID, "pat@example.com", state, birth, None)
    sent = T + timedelta(days=sent_days_ago)
    sent_campaign = ExistingRow(
        10,
        "campaign_rate_increase",
        sent,
        "delivered",
        occurrence_key=f"{CID}:campaign:3:{sent.isoformat()}",
        ideal_send_date=sent,
        priority=4,
        campaign_instance_id=3,
    )
    with_notice = schedule([sent_campaign], contact=contact)
    without = schedule([], contact=contact)
    fu = [d for d in with_notice.decisions if d.occurrence.is_followup]
    assert len(fu) == 1
    event(f"follow-up {fu[0].status}")
    assert {d.occurrence.key for d in with_notice.decisions if not d.occurrence.is_followup} == {
        d.occurrence.key for d in without.decisions
    }


# --- day after day ---------------------------------------------------------------------------


@st.composite
def histories(
    draw: st.DrawFn,
) -> tuple[Contact, date, list[ExistingRow], list[Click | HealthAnswer]]:
    start = draw(st.dates(date(2025, 1, 1), date(2025, 12, 31)))

    def near(days: int) -> date | None:
        """A date whose anniversaries fall near the simulated days (or none)."""
        if draw(st.integers(0, 3)) == 0:
            return None
        d = start + timedelta(days=draw(st.integers(-20, days)))
        if (d.month, d.day) == (2, 29):
            return d.replace(year=1952)
        return d.replace(year=draw(st.integers(1940, 1960)))

    contact = Contact(
        CID,
        "pat@example.com",
        draw(st.sampled_from(["TX", "TX", "CA", "MO", "NY", "ID"])),
        near(60),
        near(80),
    )
    rows = []
    for i in range(draw(st.integers(0, 2))):
        sent = start - timedelta(days=draw(st.integers(0, 40)))
        email_type = draw(st.sampled_from(INITIAL_TYPES))
        rows.append(
            ExistingRow(
                10 + i,
                email_type,
                sent,
                draw(st.sampled_from(["sent", "delivered"])),
                occurrence_key=initial_key(email_type, i, sent),
                ideal_send_date=sent,
                send_time=time(8, 30),
                priority=5,
            )
        )
    moments = st.datetimes(
        datetime.combine(start - timedelta(days=5), time(0)),
        datetime.combine(start + timedelta(days=30), time(0)),
    )
    behaviour = draw(
        st.lists(
            st.one_of(st.builds(Click, moments), st.builds(HealthAnswer, moments, answer_metadata)),
            max_size=6,
        )
    )
    return contact, start, rows, behaviour


def named_initial(row: ExistingRow) -> int | None:
    if row.metadata is None:
        return None
    value = json.loads(row.metadata).get("initial_row_id")
    return value if isinstance(value, int) else None


@PROPS
@given(histories())
def test_daily_sweeps_one_followup_per_initial_kept_and_never_lowered(
    case: tuple[Contact, date, list[ExistingRow], list[Click | HealthAnswer]],
) -> None:
    """A sweep every morning, its decisions written, the day's pre-scheduled rows sent by
    the sending side, behaviour arriving in between: per initial email at most one
    follow-up row ever; a pending follow-up keeps its date and its type only rises."""
    contact, start, initial_rows, behaviour = case
    rows: dict[int, ExistingRow] = {r.id: r for r in initial_rows}
    next_id = 1000
    seen_type: dict[int, int] = {}
    seen_date: dict[int, date] = {}
    for day in range(21):
        as_of = start + timedelta(days=day)
        morning = datetime.combine(as_of, time(0))
        known = Behaviour(
            tuple(b for b in behaviour if isinstance(b, Click) and b.at < morning),
            tuple(b for b in behaviour if isinstance(b, HealthAnswer) and b.at < morning),
        )
        plan = schedule_contact(
            contact,
            list(rows.values()),
            DEFAULT_CONFIG,
            Horizon(as_of),
            campaigns=BOOK,
            behaviour=known,
        )
        by_key = {r.occurrence_key: r for r in rows.values() if r.occurrence_key is not None}
        for row_id in plan.deletes:
            assert rows[row_id].status in OWNED
            del rows[row_id]
        for d in plan.decisions:
            if d.existing_row_id is None:
                # a new row: its key must be free (unique index)
                assert d.occurrence.key not in by_key, (as_of, d.occurrence.key)
                row_id, next_id = next_id, next_id + 1
            else:
                row_id = d.existing_row_id
                assert rows[row_id].status in OWNED
            old = rows.get(row_id)
            new = as_stored(d, row_id, f"run-{day}", send_time=time(8, 30))
            rows[row_id] = new
            if d.occurrence.is_followup and new.status == PRE_SCHEDULED and old is not None:
                assert followup_rank(new.email_type) >= seen_type.get(row_id, 0), (as_of, old, new)
                if old.send_date is not None and old.send_date >= as_of:
                    assert new.send_date == seen_date.get(row_id, old.send_date), (as_of, old, new)
            if d.occurrence.is_followup:
                seen_type[row_id] = max(seen_type.get(row_id, 0), followup_rank(new.email_type))
                if new.send_date is not None:
                    seen_date.setdefault(row_id, new.send_date)
        # one follow-up row per initial email
        per_initial: dict[int, list[int]] = {}
        for r in rows.values():
            if r.email_type.startswith("followup"):
                named = named_initial(r)
                assert named is not None
                per_initial.setdefault(named, []).append(r.id)
        assert all(len(ids) == 1 for ids in per_initial.values()), (as_of, per_initial)
        # the sending side sends today's pre-scheduled rows
        for r in list(rows.values()):
            if r.status == PRE_SCHEDULED and r.send_date == as_of:
                rows[r.id] = ExistingRow(
                    r.id,
                    r.email_type,
                    r.send_date,
                    "sent",
                    occurrence_key=r.occurrence_key,
                    ideal_send_date=r.ideal_send_date,
                    event_year=r.event_year,
                    placed_run_id=r.placed_run_id,
                    send_time=r.send_time,
                    actual_send_at=datetime.combine(as_of, time(8, 31)),
                    priority=r.priority,
                    campaign_instance_id=r.campaign_instance_id,
                    event_date=r.event_date,
                    metadata=r.metadata,
                )
    event(f"{sum(1 for r in rows.values() if r.email_type.startswith('followup'))} follow-ups")


# --- campaigns: which emails, and one campaign email a day -------------------------------------

CAMPAIGN_TYPES = campaign_types(
    RATE_INCREASE,
    PLAN_NEWS,
    CampaignType("plan_tips", priority=2),
    REGULATORY,
    WELCOME,
    CampaignType("annual_review", target_all_contacts=True, days_before_event=3, priority=7),
    PAUSED,
)
TARGET_STATUSES = ("pending", "scheduled", "skipped", "cancelled", "CANCELLED", "canceled")


@st.composite
def campaign_cases(
    draw: st.DrawFn,
) -> tuple[Contact, date, CampaignBook, list[CampaignTarget], list[ExistingRow]]:
    as_of = draw(st.dates(date(2025, 1, 1), date(2025, 12, 31)))

    def near(low: int, high: int) -> date:
        return as_of + timedelta(days=draw(st.integers(low, high)))

    def shift(days: int) -> date:
        return as_of + timedelta(days=days)

    instances = tuple(
        CampaignInstance(
            i,
            draw(st.sampled_from(sorted(CAMPAIGN_TYPES))),
            f"instance {i}",
            f"template_{i}",
            None,
            draw(st.one_of(st.none(), st.builds(shift, st.integers(-30, 12)))),
            draw(st.one_of(st.none(), st.builds(shift, st.integers(-5, 60)))),
        )
        for i in range(1, draw(st.integers(1, 5)) + 1)
    )
    # trigger dates from a few days, so that emails of several instances meet on one day
    triggers = st.builds(
        lambda n: as_of + timedelta(days=n), st.sampled_from([-9, -3, 0, 4, 10, 14, 18, 24, 45])
    )
    targets = [
        CampaignTarget(
            CID,
            draw(st.integers(1, len(instances) + 1)),  # sometimes an instance not given
            draw(st.one_of(st.none(), triggers, triggers, triggers, triggers)),
            draw(st.sampled_from(("pending",) * 6 + TARGET_STATUSES)),
        )
        for _ in range(draw(st.integers(1, 6)))
    ]
    # campaign rows of other instances already with the sending side, on days in the range
    held = [
        ExistingRow(
            500 + j,
            "campaign_plan_news",
            day,
            draw(st.sampled_from(["sent", "scheduled", "Delivered", "processing", "failed"])),
            occurrence_key=f"{CID}:campaign:{90 + j}:{day.isoformat()}",
            ideal_send_date=day,
            priority=draw(st.integers(1, 10)),
            campaign_instance_id=90 + j,
        )
        for j in range(draw(st.integers(0, 2)))
        for day in [draw(st.one_of(triggers, st.just(near(0, 30))))]
    ]
    contact = Contact(
        CID,
        "pat@example.com",
        draw(st.sampled_from(["TX", "TX", "CA", "MO", "NY"])),
        draw(st.one_of(st.none(), st.dates(date(1940, 1, 1), date(1960, 12, 31)))),
        draw(st.one_of(st.none(), st.dates(date(2000, 1, 1), date(2024, 12, 31)))),
    )
    return contact, as_of, CampaignBook(CAMPAIGN_TYPES, instances), targets, held


def expected_campaign_emails(
    book: CampaignBook, targets: list[CampaignTarget], horizon: Horizon
) -> dict[str, tuple[CampaignType, int, date, date]]:
    """SPEC sections 5 and 8, read afresh: key -> (type, instance, trigger, ideal date) of
    every campaign email in play."""
    out: dict[str, tuple[CampaignType, int, date, date]] = {}
    t = horizon.as_of
    for inst in book.instances:
        ctype = CAMPAIGN_TYPES[inst.campaign_type]
        if not ctype.active:
            continue
        own = [x for x in targets if x.instance_id == inst.id]
        triggers = []
        default = (
            inst.active_start_date + timedelta(days=ctype.days_before_event)
            if inst.active_start_date is not None
            else None
        )
        for x in own:
            if x.status.lower() in ("cancelled", "canceled"):
                continue
            trigger = x.trigger_date or default
            if trigger is not None:
                triggers.append(trigger)
        if ctype.target_all_contacts and not own and default is not None:
            triggers.append(default)
        for trigger in triggers:
            ideal = trigger - timedelta(days=ctype.days_before_event)
            if inst.active_start_date is not None and ideal < inst.active_start_date:
                continue
            if inst.active_end_date is not None and ideal > inst.active_end_date:
                continue
            in_range = t <= ideal <= horizon.range_end
            catch_up = horizon.lookback_start <= ideal < t and trigger >= t
            if in_range or catch_up:
                out[f"{CID}:campaign:{inst.id}:{trigger.isoformat()}"] = (
                    ctype,
                    inst.id,
                    trigger,
                    ideal,
                )
    return out


def rank(priority: int, instance: int | None, held: bool, key: str) -> tuple[int, int, float, str]:
    """SPEC section 7: the sending side's email first, then the lower priority number, then
    the lower instance id (then the key, so that equal emails still have an order)."""
    return (0 if held else 1, priority, instance if instance is not None else float("inf"), key)


@PROPS
@given(campaign_cases())
def test_campaign_emails_and_one_campaign_email_a_day(
    case: tuple[Contact, date, CampaignBook, list[CampaignTarget], list[ExistingRow]],
) -> None:
    contact, as_of, book, targets, held = case
    horizon = Horizon(as_of)
    plan = schedule_contact(contact, held, DEFAULT_CONFIG, horizon, campaigns=book, targets=targets)
    decided = {
        d.occurrence.key: d
        for d in plan.decisions
        if d.occurrence.email_type.startswith("campaign_")
    }
    expected = expected_campaign_emails(book, targets, horizon)
    event(f"{len(expected)} campaign emails")
    assert set(decided) == set(expected)
    sent_like = [r for r in held if r.status.lower() != "failed"]
    for key, d in decided.items():
        ctype, instance_id, trigger, ideal = expected[key]
        occ = d.occurrence
        assert (occ.email_type, occ.priority, occ.campaign_instance_id) == (
            f"campaign_{ctype.name}",
            ctype.priority,
            instance_id,
        )
        assert (occ.event_date, occ.ideal_send_date) == (trigger, ideal)
        if as_of <= ideal:
            assert d.send_date == ideal
        else:
            assert as_of <= d.send_date <= max(as_of, trigger - timedelta(days=1))
        is_excluded = ctype.respect_exclusion_windows and excluded(
            contact, DEFAULT_CONFIG, d.send_date
        )
        if is_excluded:
            assert d.status == SKIPPED and d.skip_reason != "campaign conflict", d
            continue
        # competitors on its day: the held rows and the other campaign emails not excluded
        rivals = [
            rank(r.priority or 10, r.campaign_instance_id, True, r.occurrence_key or "")
            for r in sent_like
            if r.send_date == d.send_date
        ]
        rivals += [
            rank(o.occurrence.priority, o.occurrence.campaign_instance_id, False, k)
            for k, o in decided.items()
            if k != key and o.send_date == d.send_date and o.status == PRE_SCHEDULED
        ]
        mine = rank(occ.priority, occ.campaign_instance_id, False, key)
        if d.status == SKIPPED:
            event("campaign conflict")
            assert d.skip_reason == "campaign conflict"
            assert any(r < mine for r in rivals), (d, rivals)
        else:
            assert d.status == PRE_SCHEDULED and d.skip_reason is None
            assert all(r > mine for r in rivals), (d, rivals)
    # one campaign email a day, none on a day the sending side holds one
    days = [d.send_date for d in decided.values() if d.status == PRE_SCHEDULED]
    assert len(days) == len(set(days))
    assert not set(days) & {r.send_date for r in sent_like}
    assert plan.deletes == ()
    assert all(d.existing_row_id is None for d in plan.decisions)
