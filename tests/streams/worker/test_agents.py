"""The agents' per-batch step (parse, store, decide, announce) on real SQLite files, without Kafka."""

from __future__ import annotations

from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest

from rules.config import DEFAULT_CONFIG
from streams.events.schema import validate_record
from streams.store.engine import Store, open_store
from streams.store.epochs import start_epoch
from streams.worker.batch import BatchProcessor, BatchResult, Guarded, Message, Unguarded
from streams.worker.database_process import rehearsal
from synthetic.sample_events import mixed_events
from tests.builders import rate_increase_q2_events
from tests.legacy_db import dump, make_legacy_db
from tests.sweeps import checksum

DAY = date(2026, 3, 10)  # the decision day of most tests: the events' day


def processor(db: Path, day: date = DAY) -> BatchProcessor:
    """The agents' step on ``db``, deciding as of ``day`` (the deployment's baseline day)."""
    store = open_store(str(db))
    store.migrate()
    new_day(store, day)
    return BatchProcessor(store, DEFAULT_CONFIG)


def new_day(store: Store, day: date) -> None:
    """The next decision day, as the next sweep would start it."""
    with store.engine.begin() as conn:
        start_epoch(conn, day, "baseline")


def msg(topic: str, offset: int, value: dict[str, object] | bytes, key: str = "1") -> Message:
    raw = value if isinstance(value, bytes) else orjson.dumps(value)
    return Message(topic, 0, offset, key.encode(), raw)


def test_click_upgrades_a_pending_cold_followup(tmp_path: Path) -> None:
    db = make_legacy_db(tmp_path / "a.db")
    p = processor(db)
    # Birthday March 24: ideal send March 10, the event's day.
    contact = {
        "event_id": "c1", "occurred_at": "2026-03-10T12:00:00Z", "op": "upsert", "contact_id": 1,
        "contact": {"email": "a@example.com", "zip_code": "75201", "state": "TX",
                    "birth_date": "1950-03-24", "effective_date": None},
    }
    r = p.process([msg("contacts", 0, contact)])
    assert [(c["email_type"], c["change"], c["scheduled_send_date"]) for _, c in r.changes] == [
        ("birthday", "created", "2026-03-10")
    ]
    sent = {
        "event_id": "s1", "occurred_at": "2026-03-10T14:00:00Z", "contact_id": 1,
        "occurrence_key": "1:birthday:2026", "status": "sent",
        "actual_send_datetime": "2026-03-10T13:30:00Z",
    }
    r = p.process([msg("email-status", 0, sent)])
    followup = [c for _, c in r.changes if c["email_type"].startswith("followup")]
    assert [(c["email_type"], c["change"], c["scheduled_send_date"]) for c in followup] == [
        ("followup_1_cold", "created", "2026-03-12")
    ]
    click = {"event_id": "k1", "occurred_at": "2026-03-11T09:00:00Z", "contact_id": 1, "tracking_id": "t"}
    r = p.process([msg("clicks", 0, click)])
    assert len(r.changes) == 1
    change = r.changes[0][1]
    assert change["email_type"] == "followup_2_clicked_no_hq" and change["change"] == "changed"
    assert change["previous"]["email_type"] == "followup_1_cold"
    assert change["cause"] == {"topic": "clicks", "event_id": "k1"}
    # The same click delivered again changes nothing.
    again = p.process([msg("clicks", 0, click)])
    assert again.duplicates == 1 and again.changes == []
    assert dump(db, "SELECT count(*) FROM tracking_clicks") == [(1,)]


def test_mixed_stream_with_malformed_events(tmp_path: Path) -> None:
    db = make_legacy_db(tmp_path / "a.db")
    p = processor(db)
    events = list(mixed_events(3000, seed=3, malformed_share=0.02))
    messages = [Message(e.topic, 0, i, e.key, e.value) for i, e in enumerate(events)]
    dead: list[dict[str, object]] = []
    applied = 0
    for start in range(0, len(messages), 250):
        r = p.process(messages[start : start + 250])
        dead.extend(r.deadletters)
        applied += r.applied
    bad = [m for m, e in zip(messages, events, strict=True) if e.malformed]
    assert sorted(d["offset"] for d in dead) == sorted(m.offset for m in bad)
    assert all(d["error"] and d["raw_base64"] for d in dead)
    good = [e for e in events if not e.malformed]
    assert applied == len(good)
    kinds = Counter(e.topic for e in good)
    upserted = {orjson.loads(e.value)["contact_id"] for e in good if e.topic == "contacts"}
    assert dump(db, "SELECT count(*) FROM contacts")[0][0] == len(upserted)
    # Every click and answer is stored, those that came before their contact too: they
    # count once the contact is there.
    assert dump(db, "SELECT count(*) FROM tracking_clicks")[0][0] == kinds["clicks"]
    assert dump(db, "SELECT count(*) FROM contact_events")[0][0] == kinds["health"]
    early = dump(db, "SELECT count(DISTINCT contact_id) FROM tracking_clicks WHERE contact_id NOT IN "
                 "(SELECT id FROM contacts)")[0][0]
    assert early >= 0 and dump(db, "SELECT count(*) FROM mw_parked_events") == [(0,)]


def test_the_start_up_rehearsal_decides_like_a_batch_and_leaves_nothing_behind(tmp_path: Path) -> None:
    """The worker rehearses the batch step once at start (streams.worker.database_process):
    every table as it was, and the same events applied for real afterwards as if it never ran."""
    events = list(mixed_events(400, seed=4))
    messages = [Message(e.topic, 0, i, e.key, e.value) for i, e in enumerate(events)]
    sums = []
    for rehearsed in (False, True):
        db = make_legacy_db(tmp_path / f"r{rehearsed}.db")
        p = processor(db)
        p.process(messages[:200])
        before = {t: dump(db, f"SELECT * FROM {t} ORDER BY 1") for t in TABLES_TOUCHED}
        if rehearsed:
            r = p.rehearse(rehearsal(DAY))
            # the whole step ran: stored, decided (one email created), engagement read
            assert (r.applied, r.deadletters, [c["change"] for _, c in r.changes]) == (3, [], ["created"])
            assert list(r.engagement) == [2_000_000_000]
            assert {t: dump(db, f"SELECT * FROM {t} ORDER BY 1") for t in TABLES_TOUCHED} == before
        p.process(messages[200:])
        p.store.close()
        sums.append(checksum(db))
    assert sums[0] == sums[1]


TABLES_TOUCHED = (
    "contacts", "email_schedules", "tracking_clicks", "contact_events", "mw_applied_events",
    "mw_applied_counts", "mw_contact_versions",
)


def test_batch_size_does_not_change_the_result(tmp_path: Path) -> None:
    events = list(mixed_events(1500, seed=9, malformed_share=0.01))
    sums = []
    for size in (1, 97, 1500):
        db = make_legacy_db(tmp_path / f"b{size}.db")
        p = processor(db)
        messages = [Message(e.topic, 0, i, e.key, e.value) for i, e in enumerate(events)]
        for start in range(0, len(messages), size):
            p.process(messages[start : start + size])
        p.store.close()
        sums.append(checksum(db))
    assert sums[0] == sums[1] == sums[2]


def test_guarded_and_unguarded_batches_give_the_same_database(tmp_path: Path) -> None:
    """The two ways of applying a batch: one transaction with the writes deferred, or a
    savepoint per event.  Same database, same announcements, same counts, duplicates and
    campaign events included."""
    at = "2026-03-10T10:00:00-05:00"
    events = list(mixed_events(1200, seed=11, malformed_share=0.01))
    messages = [Message(e.topic, 0, i, e.key, e.value) for i, e in enumerate(events)]
    campaign = [
        *rate_increase_q2_events(at),
        {"event_id": "a3", "occurred_at": at, "op": "targets", "instance_id": 3,
         "targets": [{"contact_id": cid, "trigger_date": "2026-03-30"} for cid in (1, 2, 3)]},
    ]
    messages[400:400] = [msg("campaigns", i, v, "3") for i, v in enumerate(campaign)]
    messages += messages[:150]  # read again, as after a crash

    def summary(r: BatchResult) -> tuple[object, ...]:
        return (r.changes, r.deadletters, r.applied, r.duplicates, r.engagement)

    seen = []
    for way in (Unguarded, Guarded):
        db = make_legacy_db(tmp_path / f"{way.__name__}.db")
        p = processor(db)
        results = [p.attempt(messages[start : start + 200], way) for start in range(0, len(messages), 200)]
        p.store.close()
        seen.append((checksum(db), [summary(r) for r in results]))
    assert seen[0] == seen[1]
    assert any(c["email_type"] == "campaign_rate_increase" for r in results for _, c in r.changes)
    assert sum(r.duplicates for r in results) == 150  # the batch read again


def test_campaign_events_schedule_and_reschedule_targets(tmp_path: Path) -> None:
    db = make_legacy_db(tmp_path / "a.db")
    p = processor(db)
    at = "2026-03-10T10:00:00-05:00"
    contact = {
        "event_id": "c7", "occurred_at": at, "op": "upsert", "contact_id": 7,
        "contact": {"email": "g@example.com", "zip_code": "75201", "state": "TX",
                    "birth_date": "1950-12-01", "effective_date": None},
    }
    campaign = [
        *rate_increase_q2_events(at),
        {"event_id": "a3", "occurred_at": at, "op": "targets", "instance_id": 3,
         "targets": [{"contact_id": 7, "trigger_date": "2026-03-30"}]},
    ]
    p.process([msg("contacts", 0, contact, "7")])
    r = p.process([msg("campaigns", i, v, "3") for i, v in enumerate(campaign)])
    assert [(c["email_type"], c["change"], c["scheduled_send_date"]) for _, c in r.changes] == [
        ("campaign_rate_increase", "created", "2026-03-16")
    ]
    assert dump(db, "SELECT status FROM contact_campaigns") == [("scheduled",)]
    # The instance now starts later: the email no longer belongs to it; the change is logged.
    later = dict(campaign[1], event_id="a4")
    later["instance"] = dict(campaign[1]["instance"], active_start_date="2026-03-20")  # type: ignore[arg-type]
    r = p.process([msg("campaigns", 3, later, "3")])
    assert [(c["occurrence_key"], c["change"]) for _, c in r.changes] == [
        ("7:campaign:3:2026-03-30", "cancelled")
    ]
    assert dump(
        db, "SELECT field_changed, old_value, new_value, changed_by FROM campaign_change_log"
    ) == [("active_start_date", "2026-03-01", "2026-03-20", "ops")]


def test_an_event_the_database_refuses_goes_alone_to_deadletter(tmp_path: Path) -> None:
    """A refusal the schema cannot see (an email another contact holds) undoes that event
    only: its batch's other events are applied, with the same result as one event per
    batch.  A status for a row that does not exist is no refusal: it waits for its row."""

    def upsert(cid: int, email: str, event_id: str) -> dict[str, object]:
        return {
            "event_id": event_id, "occurred_at": "2026-03-10T12:00:00Z", "op": "upsert",
            "contact_id": cid,
            "contact": {"email": email, "zip_code": "75201", "state": "TX",
                        "birth_date": "1950-03-24", "effective_date": None},
        }

    contacts = [
        upsert(1, "a@example.com", "c1"),
        upsert(2, "a@example.com", "c2"),  # contact 1's address: refused
        upsert(3, "c@example.com", "c3"),
    ]
    statuses = [
        {"event_id": "s1", "occurred_at": "2026-03-10T14:00:00Z", "contact_id": 1,
         "occurrence_key": "1:birthday:2026", "status": "sent"},
        {"event_id": "s2", "occurred_at": "2026-03-10T14:00:00Z", "contact_id": 3,
         "occurrence_key": "3:birthday:1999", "status": "sent"},  # no such row: refused
        {"event_id": "s3", "occurred_at": "2026-03-10T14:00:00Z", "contact_id": 3,
         "occurrence_key": "3:birthday:2026", "status": "delivered"},
    ]
    sums = []
    for size in (3, 1):
        db = make_legacy_db(tmp_path / f"r{size}.db")
        p = processor(db)
        dead: list[dict[str, object]] = []
        for topic, values in (("contacts", contacts), ("email-status", statuses)):
            messages = [msg(topic, i, v, str(v["contact_id"])) for i, v in enumerate(values)]
            for start in range(0, len(messages), size):
                dead.extend(p.process(messages[start : start + size]).deadletters)
        assert [(d["source_topic"], d["offset"]) for d in dead] == [("contacts", 1)]
        assert "already contact 1's" in str(dead[0]["error"])
        assert dump(db, "SELECT id FROM contacts ORDER BY id") == [(1,), (3,)]
        assert dump(db, "SELECT contact_id, status FROM email_schedules WHERE email_type = 'birthday' ORDER BY contact_id") == [
            (1, "sent"), (3, "delivered")
        ]
        assert dump(db, "SELECT occurrence_key FROM mw_status_facts ORDER BY 1") == [
            ("1:birthday:2026",), ("3:birthday:1999",), ("3:birthday:2026",)
        ]
        assert dump(db, "SELECT count(*) FROM mw_applied_events") == [(5,)]
        p.store.close()
        sums.append(checksum(db))
    assert sums[0] == sums[1]


def test_an_event_that_breaks_its_decision_goes_alone_to_deadletter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Something no check foresaw (here: the decision of contact 2 raising) costs that
    event only: it is in deadletter with the error, its batch's other events are applied."""
    import streams.worker.redecide as contact_sync

    decide = contact_sync._decide_contact

    def failing(*args: Any, **kwargs: Any) -> Any:
        if args[2][0] == 2:  # the contact's fields: id first
            raise ZeroDivisionError("division by zero")
        return decide(*args, **kwargs)

    monkeypatch.setattr(contact_sync, "_decide_contact", failing)
    db = make_legacy_db(tmp_path / "a.db")
    p = processor(db)
    upserts = [
        {"event_id": f"c{cid}", "occurred_at": "2026-03-10T12:00:00Z", "op": "upsert", "contact_id": cid,
         "contact": {"email": f"{cid}@example.com", "zip_code": "75201", "state": "TX",
                     "birth_date": "1950-03-24", "effective_date": None}}
        for cid in (1, 2, 3)
    ]
    r = p.process([msg("contacts", i, v, str(v["contact_id"])) for i, v in enumerate(upserts)])
    assert [(d["offset"], d["error"]) for d in r.deadletters] == [
        (1, "cannot be processed: ZeroDivisionError: division by zero")
    ]
    assert r.applied == 2
    assert dump(db, "SELECT contact_id FROM email_schedules ORDER BY contact_id") == [(1,), (3,)]
    assert dump(db, "SELECT event_id FROM mw_applied_events ORDER BY event_id") == [("c1",), ("c3",)]


def test_engagement_values_follow_the_stored_clicks_and_answers(tmp_path: Path) -> None:
    """The engagement table's value of a contact: its clicks and answers in the 35 days of
    event time before its latest one; none for a contact not known yet; the same value again
    for a batch read twice (its table write may be what a crash lost)."""
    db = make_legacy_db(tmp_path / "a.db")
    p = processor(db, date(2026, 1, 20))
    early = {"event_id": "k0", "occurred_at": "2026-01-20T15:00:00Z", "contact_id": 5, "tracking_id": "t0"}
    r = p.process([msg("clicks", 0, early, "5")])
    assert r.engagement == {}  # contact 5 not known yet
    contact = {
        "event_id": "c5", "occurred_at": "2026-01-21T12:00:00Z", "op": "upsert", "contact_id": 5,
        "contact": {"email": "e@example.com", "zip_code": "75201", "state": "TX",
                    "birth_date": "1950-12-24", "effective_date": None},
    }
    r = p.process([msg("contacts", 0, contact, "5")])
    assert r.engagement == {5: {"as_of": "2026-01-21", "clicks": ["2026-01-20T15:00:00Z"], "answers": []}}
    # The upsert read again (a crash lost its table write): the value is written again.
    r = p.process([msg("contacts", 0, contact, "5")])
    assert r.duplicates == 1
    assert r.engagement == {5: {"as_of": "2026-01-21", "clicks": ["2026-01-20T15:00:00Z"], "answers": []}}
    later = [
        {"event_id": "k1", "occurred_at": "2026-03-10T16:00:00-05:00", "contact_id": 5, "tracking_id": "t1"},
        {"event_id": "h1", "occurred_at": "2026-03-09T10:00:00Z", "contact_id": 5,
         "answers": {"has_medical_conditions": False, "main_questions_yes_count": 0}},
    ]
    batch = [msg("clicks", 1, later[0], "5"), msg("health", 0, later[1], "5")]
    r = p.process(batch)
    assert r.deadletters == []
    expected = {"as_of": "2026-03-10", "clicks": ["2026-03-10T21:00:00Z"], "answers": ["2026-03-09T10:00:00Z"]}
    assert r.engagement == {5: expected}  # January's click is out of the window
    validate_record("engagement", r.engagement[5])  # what the topic's schema promises
    again = p.process(batch)
    assert again.duplicates == 2 and again.engagement == {5: expected}


def test_a_click_after_a_window_skip_does_not_bring_the_skipped_email_back(tmp_path: Path) -> None:
    # KY, born 1964-08-22, effective 2012-11-11: the 2026 effective-date email (ideal
    # 2026-10-12) lies in the KY birthday window (..2026-10-21) and is skipped; its
    # post-window email is planned for 2026-10-22.  A click on 2026-10-15 decides the
    # contact again: the skip is final (its date has passed), no catch-up comes back.
    db = make_legacy_db(tmp_path / "a.db")
    p = processor(db, date(2026, 10, 12))
    contact = {
        "event_id": "c1", "occurred_at": "2026-10-12T07:00:00Z", "op": "upsert", "contact_id": 1,
        "contact": {"email": "a@example.com", "zip_code": "40202", "state": "KY",
                    "birth_date": "1964-08-22", "effective_date": "2012-11-11"},
    }
    p.process([msg("contacts", 0, contact)])
    before = dump(db, "SELECT occurrence_key, scheduled_send_date, status FROM email_schedules ORDER BY 1")
    assert before == [
        ("1:effective_date:2026", "2026-10-12", "skipped"),
        ("1:post_window:2026-10-21", "2026-10-22", "pre-scheduled"),
    ]
    for day, event_id in (("2026-10-15", "k1"), ("2026-10-19", "k2")):
        new_day(p.store, date.fromisoformat(day))  # the sweep of that morning started the day
        click = {"event_id": event_id, "occurred_at": f"{day}T15:00:00Z", "contact_id": 1, "tracking_id": "t"}
        r = p.process([msg("clicks", 0, click)])
        assert r.changes == []
    assert dump(db, "SELECT occurrence_key, scheduled_send_date, status FROM email_schedules ORDER BY 1") == before


def _upsert(cid: int, event_id: str, at: str, birth: str | None, effective: str | None) -> dict[str, object]:
    return {
        "event_id": event_id, "occurred_at": at, "op": "upsert", "contact_id": cid,
        "contact": {"email": f"{cid}@example.com", "zip_code": "75201", "state": "TX",
                    "birth_date": birth, "effective_date": effective},
    }


def test_a_decision_day_s_result_does_not_depend_on_its_batches(tmp_path: Path) -> None:
    # One email per 30 days.  Version 1 has an effective date (email on 2026-03-20), version 2
    # adds a birthday (email on 2026-03-17).  Decided once with version 2, both emails are
    # new and the later one is skipped; decided with version 1 first, the effective-date
    # email would be "kept" and the birthday skipped instead, had the first decision of the
    # day left a trace.  Each decision starts again from the day's base (streams/store/epochs.py).
    from rules.config import config_from_mapping

    tight, _ = config_from_mapping({"load_balancing": {"max_emails_per_contact_per_period": 1, "period_days": 30}})
    v1 = _upsert(1, "c1", "2026-03-10T12:00:00Z", None, "2010-04-19")
    v2 = _upsert(1, "c2", "2026-03-10T13:00:00Z", "1950-03-31", "2010-04-19")
    rows = []
    for batches in ([[v1, v2]], [[v1], [v2]]):
        db = make_legacy_db(tmp_path / f"b{len(batches)}.db")
        store = open_store(str(db))
        store.migrate()
        new_day(store, DAY)
        p = BatchProcessor(store, tight)
        offset = 0
        for batch in batches:
            p.process([msg("contacts", offset + i, v) for i, v in enumerate(batch)])
            offset += len(batch)
        store.close()
        rows.append(dump(db, "SELECT occurrence_key, scheduled_send_date, status FROM email_schedules ORDER BY 1"))
    assert rows[0] == rows[1] == [
        ("1:birthday:2026", "2026-03-17", "pre-scheduled"),
        ("1:effective_date:2026", "2026-03-20", "skipped"),
    ]


def test_a_status_before_its_contact_waits_and_takes_nothing_down(tmp_path: Path) -> None:
    # Issue 10, found 1: a 'sent' status for contact 7 queued before contact 7's upsert.
    db = make_legacy_db(tmp_path / "a.db")
    p = processor(db, date(2026, 3, 10))
    status = {"event_id": "s7", "occurred_at": "2026-03-10T14:00:00Z", "contact_id": 7,
              "occurrence_key": "7:birthday:2026", "status": "sent",
              "actual_send_datetime": "2026-03-10T13:30:00Z"}
    r = p.process([msg("email-status", 0, status, "7")])
    assert r.deadletters == [] and r.changes == []
    r = p.process([msg("contacts", 0, _upsert(7, "c7", "2026-03-10T14:00:05Z", "1950-03-24", None), "7")])
    assert r.deadletters == []
    assert dump(db, "SELECT id FROM contacts") == [(7,)]
    # The birthday row was decided, then took the status the sender had reported: it got its follow-up.
    assert dump(db, "SELECT occurrence_key, status FROM email_schedules ORDER BY 1") == [
        ("7:birthday:2026", "sent"),
        ("7:followup:7:birthday:2026", "pre-scheduled"),
    ]
    assert [(c["occurrence_key"], c["change"]) for _, c in r.changes] == [("7:followup:7:birthday:2026", "created")]
    # A later upsert of contact 7 is applied like any other.
    r = p.process([msg("contacts", 1, _upsert(7, "c7b", "2026-03-10T15:00:00Z", "1950-03-24", "2010-04-19"), "7")])
    assert r.deadletters == [] and dump(db, "SELECT effective_date FROM contacts") == [("2010-04-19",)]


def test_a_contact_published_with_an_old_time_is_decided_as_of_the_decision_day(tmp_path: Path) -> None:
    # Issue 10, found 3: an upsert whose event time is years ago (a row's updated_at) must
    # not decide as of then: no owned row dated before the decision day is ever written.
    db = make_legacy_db(tmp_path / "a.db")
    p = processor(db, date(2026, 12, 1))
    p.process([msg("contacts", 0, _upsert(56, "old", "2019-06-01T12:00:00Z", "1950-03-24", "2012-01-01"), "56")])
    dates = [d for (d,) in dump(db, "SELECT scheduled_send_date FROM email_schedules")]
    assert dates and min(dates) >= "2026-12-01"


def test_a_status_in_its_contact_s_batch_is_applied_live_and_in_replay(tmp_path: Path) -> None:
    # Issue 10, found 2: contact 5's upsert (15:00Z) and a 'sent' status of its birthday row
    # (15:10Z) in one batch.  Live, the row becomes sent and gets its follow-up; replay agrees.
    from tests.event_logs import DAY0, EventLog, LogEvent, agency_template, replay_of, run_live

    log = EventLog()
    log.add(LogEvent("contacts", 1, b"5", _upsert(5, "c5", "2026-03-10T15:00:00Z", "1950-03-24", None)))
    log.add(LogEvent("email-status", 1, b"5", {
        "event_id": "s5", "occurred_at": "2026-03-10T15:10:00Z", "contact_id": 5,
        "occurrence_key": "5:birthday:2026", "status": "sent"}))
    template = agency_template(tmp_path / "template.db")
    live = run_live(template, tmp_path, log, seed=3)
    db = tmp_path / "live-3.db"
    assert DAY0 == DAY
    assert dump(db, "SELECT occurrence_key, status FROM email_schedules ORDER BY 1") == [
        ("5:birthday:2026", "sent"),
        ("5:followup:5:birthday:2026", "pre-scheduled"),
    ]
    assert replay_of(log, live, tmp_path) == live.checksum == checksum(db)


def test_dead_letters_name_the_topic_with_its_prefix(tmp_path: Path) -> None:
    db = make_legacy_db(tmp_path / "a.db")
    store = open_store(str(db))
    store.migrate()
    new_day(store, DAY)
    p = BatchProcessor(store, DEFAULT_CONFIG, prefix="org206.")
    r = p.process([Message("clicks", 1, 17, b"3", b"{not json")])
    assert [(d["source_topic"], d["partition"], d["offset"], d["event_id"]) for d in r.deadletters] == [
        ("org206.clicks", 1, 17, "org206.clicks:1:17")
    ]


def test_a_campaign_changed_by_the_campaign_command_is_what_the_next_batch_decides_with(tmp_path: Path) -> None:
    """The campaign commands write the campaign tables directly (no event): a running
    worker must not go on deciding with the instance dates it loaded at start."""
    from streams.admin.campaigns import START_FIELD, change_dates
    from tests.sweeps import T, campaign_agency

    db = make_legacy_db(tmp_path / "agency.db")
    campaign_agency(db)
    step = processor(db, T)  # loads the campaign book now
    notice = "SELECT scheduled_send_date FROM email_schedules WHERE contact_id = 2 AND campaign_instance_id = 12"
    def upsert_ny(offset: int, event_id: str, at: str, email: str) -> Message:
        event = _upsert(2, event_id, at, "1950-12-20", None)
        event["contact"] = {"email": email, "zip_code": "10001", "state": "NY", "birth_date": "1950-12-20",
                            "effective_date": None}
        return msg("contacts", offset, event, "2")

    step.process([upsert_ny(0, "u1", "2026-04-01T10:00:00Z", "c2@example.com")])
    assert dump(db, notice) == [("2026-04-01",)]  # the notice on its start date
    change_dates(step.store, 12, {START_FIELD: date(2026, 4, 10)}, "ops")  # as `campaign dates` does
    step.process([upsert_ny(1, "u2", "2026-04-01T11:00:00Z", "c2+new@example.com")])
    assert dump(db, notice) == [("2026-04-10",)]
