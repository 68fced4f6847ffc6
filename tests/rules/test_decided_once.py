"""SPEC section 5, "placement is decided once": a kept row stays claimed until its date,
and a decision whose date has passed is final (``rules/decided_once.py``).

Most cases run one contact day after day, the way an agency runs the scheduler: the
rules decide, the decisions are stored, the sending side sends each day's
``pre-scheduled`` rows; then the test looks at what went out.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

from rules.campaign import CampaignBook
from rules.config import DEFAULT_CONFIG, Config
from rules.contact import Contact, ContactRecord, validate_contact
from rules.contact_schedule import ContactSchedule, ExistingRow, schedule_contact
from rules.decided_once import final_decision, kept_placement, occurrence_for_key
from rules.exclusion_window import contact_windows
from rules.explain import explain_contact
from rules.frequency_limit import FREQUENCY_LIMIT_REASON
from rules.placement import Horizon
from rules.statuses import PRE_SCHEDULED, SKIPPED
from tests.builders import RATE_INCREASE, as_stored, campaign_types, instance, target

TX = Contact(7, "pat@example.com", "TX", None, None)
AEP_KEY = "7:aep:2025-09-15"


def aep_row(send: date, status: str = PRE_SCHEDULED, ideal: date = date(2025, 9, 15)) -> ExistingRow:
    """The 2025 AEP email as the sweep of 2025-08-16 stored it after a daily-cap move."""
    return ExistingRow(
        1, "aep", send, status, occurrence_key=AEP_KEY, ideal_send_date=ideal,
        event_year=2025, placed_run_id="run-0816", event_date=date(2025, 9, 15),
    )


def decided(plan: ContactSchedule, key: str):  # type: ignore[no-untyped-def]
    found = [d for d in plan.decisions if d.occurrence.key == key]
    return found[0] if found else None


# --- a kept row stays claimed until its date ----------------------------------------------------


def test_aep_email_moved_by_the_cap_is_kept_after_the_aep_date() -> None:
    # Moved from 2025-09-15 to 2025-09-19: on 09-16 the 2025 AEP occurrence is out of
    # play (E < T), but its row is claimed until 09-19 and goes out that day.
    row = aep_row(date(2025, 9, 19))
    for day in range(16, 20):
        plan = schedule_contact(TX, [row], DEFAULT_CONFIG, Horizon(date(2025, 9, day)))
        d = decided(plan, AEP_KEY)
        assert d is not None and d.kept and d.send_date == date(2025, 9, 19), day
        assert d.status == PRE_SCHEDULED and d.existing_row_id == 1
        assert plan.deletes == ()
    # the day after, its date has passed: history, neither deleted nor decided again
    plan = schedule_contact(TX, [row], DEFAULT_CONFIG, Horizon(date(2025, 9, 20)))
    assert decided(plan, AEP_KEY) is None and plan.deletes == ()


def test_aep_row_of_a_date_no_longer_configured_is_released() -> None:
    config = Config(aep_dates=((10, 1),))
    plan = schedule_contact(TX, [aep_row(date(2025, 9, 19))], config, Horizon(date(2025, 9, 16)))
    assert decided(plan, AEP_KEY) is None and plan.deletes == (1,)


def test_aep_row_dated_far_beyond_any_cap_move_is_released() -> None:
    # a row the rules could not have placed (a hand edit): not claimed
    plan = schedule_contact(TX, [aep_row(date(2025, 10, 10))], DEFAULT_CONFIG, Horizon(date(2025, 9, 20)))
    assert decided(plan, AEP_KEY) is None and plan.deletes == (1,)


def test_changed_birth_date_releases_the_kept_row() -> None:
    # birthday 2025 kept on 2025-06-03 (ideal 2025-05-27); the birth date changes to
    # 1950-08-10: ideal 2025-07-27, outside the range of 2025-05-29: the row goes.
    born_june = Contact(1, "pat@example.com", "TX", date(1950, 6, 10), None)
    row = ExistingRow(
        10, "birthday", date(2025, 6, 3), PRE_SCHEDULED, "1:birthday:2025", date(2025, 5, 27),
        2025, "run-1",
    )
    t = Horizon(date(2025, 5, 29))
    assert decided(schedule_contact(born_june, [row], DEFAULT_CONFIG, t), "1:birthday:2025").kept
    born_august = replace(born_june, birth_date=date(1950, 8, 10))
    plan = schedule_contact(born_august, [row], DEFAULT_CONFIG, t)
    assert decided(plan, "1:birthday:2025") is None and plan.deletes == (10,)


def test_cancelled_target_releases_the_campaign_row() -> None:
    book = CampaignBook(campaign_types(RATE_INCREASE), (instance(3, start=date(2025, 1, 1)),))
    contact = Contact(42, "pat@example.com", "TX", None, None)
    trigger = date(2025, 6, 20)
    key = f"42:campaign:3:{trigger}"
    t = Horizon(date(2025, 6, 1))
    first = schedule_contact(contact, [], DEFAULT_CONFIG, t, campaigns=book, targets=[target(3, trigger)])
    (d,) = first.decisions
    assert d.occurrence.key == key and d.send_date == date(2025, 6, 6)
    stored = as_stored(d, 20)
    pending = schedule_contact(
        contact, [stored], DEFAULT_CONFIG, t, campaigns=book, targets=[target(3, trigger)]
    )
    assert decided(pending, key).kept
    cancelled = schedule_contact(
        contact, [stored], DEFAULT_CONFIG, t, campaigns=book,
        targets=[target(3, trigger, status="cancelled")],
    )
    assert decided(cancelled, key) is None and cancelled.deletes == (20,)


def test_invalid_contact_releases_every_row_in_the_range() -> None:
    invalid = validate_contact(ContactRecord(7, "not-an-email", "75201", "TX", None, None))
    plan = schedule_contact(invalid, [aep_row(date(2025, 9, 19))], DEFAULT_CONFIG, Horizon(date(2025, 9, 16)))
    assert plan.deletes == (1,)


def test_post_window_key_names_its_occurrence_while_the_window_blocks() -> None:
    # KY, born 1964-08-22: window 2026-06-23..2026-10-21 blocks the 2026 birthday email
    ky = Contact(5, "pat@example.com", "KY", date(1964, 8, 22), None)
    windows = contact_windows(ky.state, ky.birth_date, ky.effective_date, DEFAULT_CONFIG)
    occ = occurrence_for_key(ky, "5:post_window:2026-10-21", DEFAULT_CONFIG, windows)
    assert occ is not None and occ.ideal_send_date == date(2026, 10, 22)
    # no window ends that day: nothing
    assert occurrence_for_key(ky, "5:post_window:2026-10-20", DEFAULT_CONFIG, windows) is None
    # another contact's key, or a key of another kind: nothing
    assert occurrence_for_key(ky, "6:post_window:2026-10-21", DEFAULT_CONFIG, windows) is None
    assert occurrence_for_key(ky, "5:birthday:2026", DEFAULT_CONFIG, windows) is None


# --- a decision whose date has passed is final --------------------------------------------------


def run_days(
    contact: Contact, first: date, last: date, config: Config = DEFAULT_CONFIG,
    rows: list[ExistingRow] | None = None,
) -> list[ExistingRow]:
    """One decision a day from ``first`` to ``last``; each day's pre-scheduled rows are sent."""
    stored = {r.occurrence_key: r for r in rows or []}
    next_id = 100
    day = first
    while day <= last:
        plan = schedule_contact(contact, list(stored.values()), config, Horizon(day))
        gone = set(plan.deletes)
        stored = {k: r for k, r in stored.items() if r.id not in gone}
        for d in plan.decisions:
            old = stored.get(d.occurrence.key)
            if old is not None and old.status not in (PRE_SCHEDULED, SKIPPED):
                continue
            row_id = old.id if old is not None else next_id
            next_id += 1
            stored[d.occurrence.key] = as_stored(d, row_id)
        for key, r in list(stored.items()):
            if r.send_date == day and r.status == PRE_SCHEDULED:
                stored[key] = replace(r, status="sent")
        day += timedelta(days=1)
    return list(stored.values())


def test_window_skip_is_answered_by_the_post_window_email_only() -> None:
    # The contact: KY, born 1964-08-22, effective 2012-11-11.  The 2026
    # effective-date email (ideal 2026-10-12) falls in the KY birthday window
    # (2026-06-23..2026-10-21) and is skipped; the post-window email goes out on
    # 2026-10-22, and the skipped email must never come back as a catch-up.
    ky = Contact(9, "pat@example.com", "KY", date(1964, 8, 22), date(2012, 11, 11))
    rows = run_days(ky, date(2026, 9, 1), date(2026, 11, 15))
    by_key = {r.occurrence_key: r for r in rows}
    ed = by_key["9:effective_date:2026"]
    assert ed.status == SKIPPED and ed.send_date == date(2026, 10, 12)
    assert ed.skip_reason == "KY birthday window 2026-06-23..2026-10-21"
    pw = by_key["9:post_window:2026-10-21"]
    assert pw.status == "sent" and pw.send_date == date(2026, 10, 22)
    sent = sorted((r.send_date, r.email_type) for r in rows if r.status == "sent")
    assert [t for _, t in sent].count("effective_date") == 0
    assert len({d for d, _ in sent}) == len(sent), f"two emails on one day: {sent}"


def test_frequency_limit_skip_is_not_retried() -> None:
    t = date(2025, 9, 23)
    skipped = ExistingRow(
        3, "birthday", date(2025, 9, 22), SKIPPED, "1:birthday:2025", date(2025, 9, 22), 2025,
        "run-1", skip_reason=FREQUENCY_LIMIT_REASON,
    )
    born = Contact(1, "pat@example.com", "TX", date(1950, 10, 6), None)  # ideal 2025-09-22
    for day in range(7):  # the whole lookback, in which a catch-up would be possible
        plan = schedule_contact(born, [skipped], DEFAULT_CONFIG, Horizon(t + timedelta(days=day)))
        assert plan.decisions == () and plan.deletes == ()
        (n,) = plan.not_written
        assert n.final
        assert n.reason == "decided on 2025-09-22: skipped, final; skip reason: frequency limit"


def test_legacy_owned_row_before_t_is_final_not_adopted() -> None:
    # a legacy pre-scheduled row without a key, same type and event year, dated before T
    legacy = ExistingRow(9, "birthday", date(2025, 5, 28), PRE_SCHEDULED, None, None, 2025, None)
    born = Contact(1, "pat@example.com", "TX", date(1950, 6, 10), None)  # ideal 2025-05-27
    plan = schedule_contact(born, [legacy], DEFAULT_CONFIG, Horizon(date(2025, 5, 29)))
    assert plan.decisions == () and plan.deletes == ()
    assert [n.final for n in plan.not_written] == [True]


def test_final_and_kept_say_so() -> None:
    row = aep_row(date(2025, 9, 19))
    assert final_decision(row, date(2025, 9, 19)) is None
    assert final_decision(row, date(2025, 9, 20)) == "decided on 2025-09-19: pre-scheduled, final"
    assert final_decision(replace(row, status="sent"), date(2025, 9, 20)) is None  # not ours
    plan = schedule_contact(TX, [row], DEFAULT_CONFIG, Horizon(date(2025, 9, 16)))
    d = decided(plan, AEP_KEY)
    assert d is not None
    assert kept_placement(d.occurrence, row, date(2025, 9, 16), frozenset()) is not None
    assert kept_placement(d.occurrence, row, date(2025, 9, 16), frozenset({"run-0816"})) is None


def test_explain_says_kept_until_its_date_and_final() -> None:
    lines = "\n".join(
        explain_contact(TX, [aep_row(date(2025, 9, 19))], DEFAULT_CONFIG, Horizon(date(2025, 9, 16)))
    )
    assert "kept from an earlier sweep until its date" in lines
    ky = Contact(9, "pat@example.com", "KY", date(1964, 8, 22), date(2012, 11, 11))
    skipped = ExistingRow(
        4, "effective_date", date(2026, 10, 12), SKIPPED, "9:effective_date:2026",
        date(2026, 10, 12), 2026, "run-1", skip_reason="KY birthday window 2026-06-23..2026-10-21",
    )
    lines = "\n".join(explain_contact(ky, [skipped], DEFAULT_CONFIG, Horizon(date(2026, 10, 14))))
    assert "DECIDED: decided on 2026-10-12: skipped, final" in lines
