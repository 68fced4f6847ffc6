"""The delivery webhook (issue 13), without a broker: SendGrid's batches, signed, applied
through the worker's own batch step, each provider event once; a refused batch leaves
nothing behind."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from tests.legacy_db import add_contacts, dump, make_legacy_db
from tests.streams.console.console_app import console, sign
from tests.sweeps import sweep

T = date(2026, 4, 1)
# Contact 1 (TX) has its birthday on April 15: its birthday email is dated T (ideal send E - 14).
KEY = "1:birthday:2026"
FOLLOWUP = "1:followup:1:birthday:2026"
AT = int(datetime(2026, 4, 1, 14, 0, tzinfo=UTC).timestamp())


def recorded(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Everything a webhook batch could write."""
    return {
        table: dump(db, f"SELECT * FROM {table} ORDER BY 1")
        for table in ("email_schedules", "mw_applied_events", "mw_status_facts", "tracking_clicks")
    }


def event(kind: str, sg_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "event": kind, "email": "c1@example.com", "timestamp": AT, "sg_event_id": sg_id,
        "sg_message_id": "m1.filter", "contact_id": "1", "occurrence_key": KEY, **extra,
    }


@pytest.fixture
def agency(tmp_path: Path) -> Path:
    db = make_legacy_db(tmp_path / "a.db")
    add_contacts(db, [
        {"id": 1, "zip_code": "75201", "state": "TX", "birth_date": "1950-04-15"},
        {"id": 2, "zip_code": "75201", "state": "TX", "birth_date": "1951-04-25"},
    ])
    sweep(db, T)
    assert dump(db, "SELECT scheduled_send_date, status FROM email_schedules WHERE occurrence_key = ?", (KEY,)) == [
        (T.isoformat(), "pre-scheduled")
    ]
    return db


@pytest.fixture
def client(agency: Path) -> Iterator[TestClient]:
    with console(agency, T) as c:
        yield c


def post(client: TestClient, batch: object, *, signed: bool = True, raw: bytes | None = None) -> Any:
    body = raw if raw is not None else orjson.dumps(batch)
    return client.post("/webhooks/delivery", content=body, headers=sign(body) if signed else {})


def test_a_delivered_initial_email_is_recorded_and_gets_its_followup(agency: Path, client: TestClient) -> None:
    r = post(client, [event("delivered", "sg-1")])
    assert r.status_code == 200, r.text
    assert r.json() == {"received": 1, "applied": 1, "duplicates": 0, "ignored": 0, "schedule_changes": 1}
    rows = dump(agency, "SELECT occurrence_key, email_type, scheduled_send_date, status FROM email_schedules WHERE contact_id = 1 ORDER BY 1")
    assert rows == [
        (KEY, "birthday", "2026-04-01", "delivered"),
        (FOLLOWUP, "followup_1_cold", "2026-04-03", "pre-scheduled"),  # sent + 2 days
    ]
    assert dump(agency, "SELECT event_id, topic, source_partition, source_offset FROM mw_applied_events") == [
        ("sendgrid:sg-1", "email-status", None, None)  # on no topic: no position a sweep would count
    ]
    # The contact page shows it.
    page = client.get("/contacts/1").text
    assert 'data-type="birthday" data-status="delivered"' in page and FOLLOWUP in page


def test_a_click_is_recorded_as_a_click_and_upgrades_the_followup(agency: Path, client: TestClient) -> None:
    assert post(client, [event("delivered", "sg-1")]).status_code == 200
    r = post(client, [event("click", "sg-2", url="https://agency.example/quote", timestamp=AT + 3600)])
    assert r.json()["applied"] == 1
    assert dump(agency, "SELECT tracking_id, contact_id, clicked_at FROM tracking_clicks") == [
        (KEY, 1, "2026-04-01 15:00:00")
    ]
    assert dump(agency, "SELECT email_type FROM email_schedules WHERE occurrence_key = ?", (FOLLOWUP,)) == [
        ("followup_2_clicked_no_hq",)
    ]
    assert dump(agency, "SELECT status FROM email_schedules WHERE occurrence_key = ?", (KEY,)) == [("delivered",)]


def test_a_replayed_batch_applies_nothing_new(agency: Path, client: TestClient) -> None:
    batch = [event("delivered", "sg-1"), event("click", "sg-2")]
    assert post(client, batch).json()["applied"] == 2
    before = recorded(agency)
    again = post(client, batch)
    assert again.status_code == 200
    assert again.json() == {"received": 2, "applied": 0, "duplicates": 2, "ignored": 0, "schedule_changes": 0}
    assert recorded(agency) == before


@pytest.mark.parametrize("header", [None, "sha256=" + "0" * 64, "sha256=", "md5=abc", "garbage"])
def test_a_missing_or_wrong_signature_is_401_and_nothing_is_recorded(
    agency: Path, client: TestClient, header: str | None
) -> None:
    before = recorded(agency)
    body = orjson.dumps([event("delivered", "sg-1")])
    r = client.post("/webhooks/delivery", content=body, headers={} if header is None else {"X-Mailwindow-Signature": header})
    assert r.status_code == 401
    assert recorded(agency) == before


def test_a_signature_of_another_secret_or_body_is_refused(agency: Path, client: TestClient) -> None:
    before = recorded(agency)
    body = orjson.dumps([event("delivered", "sg-1")])
    assert client.post("/webhooks/delivery", content=body, headers=sign(body, b"other")).status_code == 401
    tampered = body.replace(b"delivered", b"bounce")
    assert client.post("/webhooks/delivery", content=tampered, headers=sign(body)).status_code == 401
    assert recorded(agency) == before


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"[{", "not JSON"),
        (b"", "not JSON"),
        (b'{"event": "delivered"}', "not a list"),
        (b"[1]", "event 0: not an object"),
        (b'[{"email": "a@b.c"}]', "event 0: field 'event'"),
    ],
)
def test_a_malformed_body_is_400_with_the_reason_and_nothing_is_recorded(
    agency: Path, client: TestClient, raw: bytes, reason: str
) -> None:
    before = recorded(agency)
    r = post(client, None, raw=raw)
    assert r.status_code == 400
    assert reason in r.json()["error"] and "nothing of the batch was recorded" in r.json()["error"]
    assert recorded(agency) == before


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"timestamp": "yesterday"}, "timestamp"),
        ({"timestamp": -5}, "timestamp"),
        ({"sg_event_id": None}, "sg_event_id"),
        ({"contact_id": "abc"}, "contact_id"),
        ({"contact_id": 0}, "contact_id"),
        ({"contact_id": "99999999999999999999"}, "contact_id"),
        ({"occurrence_key": ""}, "occurrence_key"),
    ],
)
def test_one_bad_item_refuses_the_whole_batch(agency: Path, client: TestClient, bad: dict[str, Any], field: str) -> None:
    before = recorded(agency)
    r = post(client, [event("delivered", "sg-1"), event("bounce", "sg-2", **bad)])
    assert r.status_code == 400
    assert f"event 1 ('bounce'): field '{field}'" in r.json()["error"]
    assert recorded(agency) == before  # the good first event is not recorded either


def test_an_occurrence_key_of_another_contact_is_refused(agency: Path, client: TestClient) -> None:
    before = recorded(agency)
    r = post(client, [event("bounce", "sg-1", contact_id="1", occurrence_key="2:birthday:2026")])
    assert r.status_code == 400
    assert "not a key of contact 1" in r.json()["error"]
    assert recorded(agency) == before
    assert dump(agency, "SELECT status FROM email_schedules WHERE occurrence_key = '2:birthday:2026'") == [
        ("pre-scheduled",)
    ]


def test_event_types_we_do_not_record_are_counted_as_ignored(agency: Path, client: TestClient) -> None:
    before = recorded(agency)
    ignored = [
        {"event": "open", "sg_event_id": "o1", "timestamp": AT},
        {"event": "processed"},  # custom arguments missing: not needed for what is not recorded
        {"event": "deferred", "contact_id": "junk"},
        {"event": "spamreport"},
        {"event": "brand_new_kind", "anything": [1, 2]},
    ]
    r = post(client, ignored)
    assert r.status_code == 200
    assert r.json() == {"received": 5, "applied": 0, "duplicates": 0, "ignored": 5, "schedule_changes": 0}
    assert recorded(agency) == before
    mixed = post(client, [*ignored, event("dropped", "sg-9")])
    assert mixed.json()["applied"] == 1 and mixed.json()["ignored"] == 5
    assert dump(agency, "SELECT status FROM email_schedules WHERE occurrence_key = ?", (KEY,)) == [("failed",)]


def test_bounces_and_drops_become_the_schema_s_statuses(agency: Path, client: TestClient) -> None:
    post(client, [event("delivered", "sg-1"), event("bounce", "sg-2", timestamp=AT + 60)])
    assert dump(agency, "SELECT status FROM mw_status_facts WHERE occurrence_key = ?", (KEY,)) == [("bounced",)]
    assert dump(agency, "SELECT status FROM email_schedules WHERE occurrence_key = ?", (KEY,)) == [("bounced",)]


def test_without_a_secret_the_webhook_refuses_everything(agency: Path) -> None:
    before = recorded(agency)
    with console(agency, T, secret=None) as client:
        r = post(client, [event("delivered", "sg-1")])
        metrics = client.get("/metrics").text
    assert r.status_code == 503 and "MAILWINDOW_WEBHOOK_SECRET" in r.json()["error"]
    assert recorded(agency) == before
    assert 'mailwindow_webhook_requests_total{outcome="unconfigured"} 1.0' in metrics


def test_a_database_without_a_decision_day_refuses_and_says_why(tmp_path: Path) -> None:
    from streams.store.engine import open_store

    db = make_legacy_db(tmp_path / "new.db")
    add_contacts(db, [{"id": 1, "zip_code": "75201", "birth_date": "1950-04-15"}])
    with open_store(str(db)) as store:
        store.migrate()
    before = recorded(db)
    with console(db, T) as client:
        r = post(client, [event("delivered", "sg-1")])
    assert r.status_code == 503 and "no decision day" in r.json()["error"]
    assert recorded(db) == before


def test_webhook_outcomes_are_counted_in_metrics(agency: Path, client: TestClient) -> None:
    post(client, [event("delivered", "sg-1")])
    post(client, [event("delivered", "sg-1")])
    post(client, [event("delivered", "sg-1")], signed=False)
    post(client, None, raw=b"[")
    text = client.get("/metrics").text
    assert 'mailwindow_webhook_requests_total{outcome="accepted"} 2.0' in text
    assert 'mailwindow_webhook_requests_total{outcome="unauthorized"} 1.0' in text
    assert 'mailwindow_webhook_requests_total{outcome="malformed"} 1.0' in text
    assert 'mailwindow_webhook_events_total{result="applied"} 1.0' in text
    assert 'mailwindow_webhook_events_total{result="duplicate"} 1.0' in text
    assert 'mailwindow_events_applied_total{topic="email-status"}' in text


def test_the_pages_never_write(agency: Path) -> None:
    """Reading every page leaves the file as it was (the pages' store is read-only)."""
    con = sqlite3.connect(agency)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    before = agency.read_bytes()
    with console(agency, T, webhook=False) as client:
        for path in ("/", "/api/dashboard", "/contacts/1", "/api/contacts/1", "/campaigns", "/runs", "/metrics",
                     "/deadletters", "/contacts?q=c"):
            assert client.get(path).status_code == 200, path
        assert post(client, [event("delivered", "sg-1")]).status_code == 503
    assert agency.read_bytes() == before
