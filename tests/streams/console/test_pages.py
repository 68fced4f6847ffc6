"""The console's pages and their JSON twins on real SQLite files (issue 13): what a person
sees on each page is what the database holds, said the same way as JSON."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import markupsafe
import orjson
import pytest

from rules.config import DEFAULT_CONFIG
from rules.exclusion_window import contact_windows
from streams.cli import main
from tests.legacy_db import add_contacts, dump, make_legacy_db
from tests.streams.console.console_app import console
from tests.sweeps import T, campaign_agency, crafted, sweep

GEN_DAY = date(2026, 3, 10)  # the generated agencies' day


def esc(text: str, quote: bool = True) -> str:
    """A value as an HTML page must hold it: escaped (as Jinja2's autoescape does)."""
    return str(markupsafe.escape(text))


VOLUME = "(status = 'pre-scheduled' OR lower(status) IN ('scheduled', 'processing', 'sent', 'delivered', 'accepted'))"


@pytest.fixture
def generated(generated_copy: Callable[..., Path]) -> Path:
    db = generated_copy(3000)
    sweep(db, GEN_DAY)
    return db


def _days_in_svg(page: str) -> dict[str, int]:
    return {d: int(n) for d, n in re.findall(r'<g class="day" data-day="([0-9-]+)" data-total="(\d+)"', page)}


def test_the_dashboard_has_60_days_counted_as_the_database_holds_them(generated: Path) -> None:
    with console(generated, GEN_DAY) as client:
        data = client.get("/api/dashboard").json()
        page = client.get("/").text
    days = [d["date"] for d in data["days"]]
    assert days == [(GEN_DAY + timedelta(days=i)).isoformat() for i in range(60)]
    last = days[-1]
    totals = dict(dump(
        generated,
        f"SELECT scheduled_send_date, count(*) FROM email_schedules WHERE {VOLUME} "
        "AND scheduled_send_date BETWEEN ? AND ? GROUP BY 1",
        (days[0], last),
    ))
    skipped = dict(dump(
        generated,
        "SELECT scheduled_send_date, count(*) FROM email_schedules WHERE status = 'skipped' "
        "AND scheduled_send_date BETWEEN ? AND ? GROUP BY 1",
        (days[0], last),
    ))
    birthdays = dict(dump(
        generated,
        f"SELECT scheduled_send_date, count(*) FROM email_schedules WHERE {VOLUME} AND email_type = 'birthday' "
        "AND scheduled_send_date BETWEEN ? AND ? GROUP BY 1",
        (days[0], last),
    ))
    assert sum(totals.values()) > 100  # the agency has a schedule: the comparison means something
    for d in data["days"]:
        assert d["total"] == totals.get(d["date"], 0) == sum(d["by_type"].values())
        assert d["skipped"] == skipped.get(d["date"], 0)
        assert d["by_type"].get("birthday", 0) == birthdays.get(d["date"], 0)
    # The chart shows the same 60 bars, each as tall as the JSON says.
    assert _days_in_svg(page) == {d["date"]: d["total"] for d in data["days"]}


def test_the_dashboard_shows_the_cap_the_moves_the_skips_and_the_sweeps(generated: Path) -> None:
    with console(generated, GEN_DAY) as client:
        data = client.get("/api/dashboard").json()
        page = client.get("/").text
    ((summary,),) = dump(generated, "SELECT summary FROM scheduler_checkpoints WHERE status = 'completed'")
    assert data["daily_cap"] == orjson.loads(summary)["daily_cap"] > 0
    assert f'data-cap="{data["daily_cap"]}"' in page
    moved = dump(
        generated,
        "SELECT scheduled_send_date, count(*) FROM email_schedules WHERE catchup_note LIKE 'moved by%' GROUP BY 1",
    )
    assert moved, "the generated agency has emails moved by smoothing"
    for day, n in moved:
        shown = next(d for d in data["days"] if d["date"] == day)
        assert shown["moved"]["smoothing"] + shown["moved"]["daily_cap"] == n
        assert re.search(rf'data-day="{day}"[^>]*>.*?<path class="moved" data-moved="{n}"', page)
    reasons = {r["reason"]: r["count"] for r in data["skipped_by_reason"]}
    assert sum(reasons.values()) == sum(d["skipped"] for d in data["days"])
    assert all(not re.search(r"\d{4}-\d{2}-\d{2}", r) for r in reasons)  # grouped without window dates
    for reason in reasons:
        assert f"<td>{esc(reason)}</td>" in page
    (run_id,) = dump(generated, "SELECT scheduler_run_id FROM scheduler_checkpoints")[0]
    assert [s["run_id"] for s in data["sweeps"]] == [run_id] and run_id in page
    invalid = data["invalid_contacts"]
    assert invalid["count"] > 0 and invalid["examples"]
    first = invalid["examples"][0]
    assert f'href="/contacts/{first["contact_id"]}"' in page
    assert esc(first["reasons"][0]) in page


def test_a_ca_contact_s_timeline_shades_its_birthday_window_and_shows_the_email_skipped(tmp_path: Path) -> None:
    db = make_legacy_db(tmp_path / "a.db")
    crafted(db)  # contact 2: CA, birthday April 20
    sweep(db, T)
    ((reason, send_date),) = dump(
        db, "SELECT skip_reason, scheduled_send_date FROM email_schedules WHERE contact_id = 2 AND email_type = 'birthday'"
    )
    with console(db, T) as client:
        data = client.get("/api/contacts/2").json()
        page = client.get("/contacts/2").text
    this_year = [w for w in data["timeline"]["windows"] if w["start"] <= "2026-04-20" <= w["end"]]
    assert len(this_year) == 1
    window = this_year[0]
    # What the stored skip says, and what the rules say CA's birthday window of 2026 is.
    (rule,) = contact_windows("CA", date(1950, 4, 20), None, DEFAULT_CONFIG).windows_of_years(range(2026, 2027))
    assert (window["start"], window["end"]) == (rule.start.isoformat(), rule.end.isoformat())
    assert reason == window["label"] == f"CA birthday window {window['start']}..{window['end']}"
    assert window["start"] <= send_date <= window["end"]
    birthday = [e for e in data["timeline"]["emails"] if e["type"] == "birthday" and e["status"] != "planned"]
    assert birthday == [
        {**birthday[0], "date": send_date, "status": "skipped", "status_class": "skipped", "skip_reason": reason}
    ]
    # In the picture: the window is shaded over those dates, named, and the birthday's dot sits in it.
    band = re.search(
        rf'<g class="window" data-start="{window["start"]}" data-end="{window["end"]}" '
        r'data-label="([^"]*)"><rect x="([\d.]+)" y="[\d.-]+" width="([\d.]+)"',
        page,
    )
    assert band and html.unescape(band.group(1)) == reason
    dot = re.search(
        rf'<circle class="email skipped" data-day="{send_date}" data-type="birthday" data-status="skipped" cx="([\d.]+)"',
        page,
    )
    assert dot
    x0, width, cx = float(band.group(2)), float(band.group(3)), float(dot.group(1))
    assert x0 < cx < x0 + width
    # Windows are drawn to scale: the year's other days map outside this one.
    span = (date.fromisoformat(data["timeline"]["last"]) - date.fromisoformat(data["timeline"]["first"])).days
    days_wide = (date.fromisoformat(window["end"]) - date.fromisoformat(window["start"])).days + 1
    assert width == pytest.approx((960 - 120 - 12) * days_wide / span, abs=1.0)
    assert f'>{esc(reason)}</text>' in page  # named on the chart


def test_the_contact_page_says_what_explain_prints(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = make_legacy_db(tmp_path / "a.db")
    crafted(db)
    sweep(db, T)
    for cid in (2, 3, 4, 6):  # a CA window, a year-round state, an invalid contact, a MO window
        assert main(["explain", "--db", str(db), "--contact", str(cid), "--as-of", T.isoformat()]) == 0
        printed = capsys.readouterr().out
        with console(db, T) as client:
            data = client.get(f"/api/contacts/{cid}").json()
            page = client.get(f"/contacts/{cid}").text
        assert "\n".join(data["explanation"]) + "\n" == printed
        assert esc("\n".join(data["explanation"])) in page


def test_the_contact_page_lists_its_rows_clicks_and_answers(tmp_path: Path) -> None:
    db = make_legacy_db(tmp_path / "a.db")
    crafted(db)
    sweep(db, T)
    con_rows = dump(db, "SELECT id, occurrence_key, status FROM email_schedules WHERE contact_id = 1")
    import sqlite3

    con = sqlite3.connect(db)
    con.execute("INSERT INTO tracking_clicks (tracking_id, contact_id, clicked_at) VALUES ('trk-77', 1, '2026-03-30 10:00:00')")
    con.execute(
        "INSERT INTO contact_events (contact_id, event_type, metadata, created_at) VALUES "
        "(1, 'eligibility_answered', '{\"has_medical_conditions\": true}', '2026-03-31 09:00:00')"
    )
    con.commit()
    con.close()
    with console(db, T) as client:
        data = client.get("/api/contacts/1").json()
        page = client.get("/contacts/1").text
    assert [(r["id"], r["occurrence_key"], r["status"]) for r in data["rows"]] == con_rows
    assert [c["tracking_id"] for c in data["clicks"]] == ["trk-77"] and "trk-77" in page
    assert [a["event_type"] for a in data["answers"]] == ["eligibility_answered"]
    assert esc('{"has_medical_conditions": true}') in page
    for _, key, _ in con_rows:
        assert key in page


HOSTILE = "<script>alert(1)</script>"


def test_every_value_is_text_not_markup(tmp_path: Path) -> None:
    db = make_legacy_db(tmp_path / "a.db")
    add_contacts(db, [{
        "id": 9, "first_name": HOSTILE, "last_name": '"><img src=x onerror=alert(2)>',
        "email": "x<b>@example.com", "zip_code": "90210", "state": "CA", "birth_date": "1950-04-20",
    }])
    sweep(db, T)
    import sqlite3

    con = sqlite3.connect(db)  # a skip reason and a type another program wrote
    con.execute(
        "INSERT INTO email_schedules (contact_id, email_type, scheduled_send_date, status, skip_reason) "
        "VALUES (9, '<i>aep</i>', '2026-04-02', 'skipped', '<script>x()</script>')"
    )
    con.commit()
    con.close()
    with console(db, T) as client:
        data = client.get("/api/contacts/9").json()
        pages = [client.get(p).text for p in ("/contacts/9", "/", f"/contacts?q={HOSTILE}", "/contacts?q=x%3Cb")]
    assert data["contact"]["first_name"] == HOSTILE  # JSON gives the value as stored
    for page in pages:
        assert "<script>" not in page and "<img" not in page and "<i>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages[0]
    assert "&lt;i&gt;aep&lt;/i&gt;" in pages[0] and "&lt;script&gt;x()&lt;/script&gt;" in pages[1]
    assert "x&lt;b&gt;@example.com" in pages[3]  # found by the start of its address, shown as text


@pytest.mark.parametrize(
    "path", ["/contacts/abc", "/contacts/0", "/contacts/-3", "/contacts/1.5", "/contacts/99999999999999999999999",
             "/contacts/9223372036854775807", "/contacts/%F0%9F%98%80", "/contacts/42"]
)
def test_an_id_that_is_no_contact_is_404_never_500(legacy_db: Path, path: str) -> None:
    add_contacts(legacy_db, [{"id": 1, "zip_code": "75201", "birth_date": "1950-04-20"}])
    sweep(legacy_db, T)
    with console(legacy_db, T) as client:
        page = client.get(path)
        api = client.get("/api" + path)
    assert page.status_code == api.status_code == 404
    assert "error" in api.json() and "Not found" in page.text


def test_the_search_box_finds_by_id_and_by_address(tmp_path: Path) -> None:
    db = make_legacy_db(tmp_path / "a.db")
    crafted(db)
    sweep(db, T)
    with console(db, T) as client:
        by_id = client.get("/contacts", params={"q": "5"}, follow_redirects=False)
        by_email = client.get("/contacts", params={"q": "c6@example.com"}, follow_redirects=False)
        prefix = client.get("/contacts", params={"q": "c"})
        api = client.get("/api/contacts", params={"q": "c"}).json()
        none = client.get("/contacts", params={"q": "zz"})
    assert (by_id.status_code, by_id.headers["location"]) == (303, "/contacts/5")
    assert (by_email.status_code, by_email.headers["location"]) == (303, "/contacts/6")
    emails = [m["email"] for m in api["matches"]]
    assert emails == sorted(e for (e,) in dump(db, "SELECT email FROM contacts WHERE email LIKE 'c%'"))
    assert all(f'href="/contacts/{m["id"]}"' in prefix.text for m in api["matches"])
    assert none.status_code == 200 and "No contact" in none.text


def test_campaigns_show_types_instances_changes_and_targets_by_status(tmp_path: Path) -> None:
    db = make_legacy_db(tmp_path / "a.db")
    campaign_agency(db)
    sweep(db, T)
    assert main(["campaign", "dates", "11", "--db", str(db), "--end", "2026-07-31", "--by", "ops", "--as-of", T.isoformat()]) == 0
    with console(db, T) as client:
        data = client.get("/api/campaigns").json()
        page = client.get("/campaigns").text
    assert {t["name"] for t in data["types"]} >= {"rate_increase", "regulatory_notice", "promotion"}
    by_status = {
        (i, s): n for i, s, n in dump(
            db, "SELECT campaign_instance_id, status, count(*) FROM contact_campaigns GROUP BY 1, 2"
        )
    }
    shown = {(i["id"], s): n for i in data["instances"] for s, n in i["targets_by_status"].items()}
    assert shown == by_status
    for i in data["instances"]:
        assert f"<td>{esc(i['instance_name'])}</td>" in page
    changes = dump(db, "SELECT campaign_instance_id, field_changed, new_value FROM campaign_change_log ORDER BY id DESC")
    assert changes and [(c["campaign_instance_id"], c["field_changed"], c["new_value"]) for c in data["changes"]] == changes
    assert "2026-07-31" in page


def test_runs_list_the_sweeps_newest_first_with_their_phases(tmp_path: Path) -> None:
    db = make_legacy_db(tmp_path / "a.db")
    crafted(db)
    for day in (T, T + timedelta(days=1), T + timedelta(days=2)):
        sweep(db, day)
    with console(db, T + timedelta(days=2)) as client:
        data = client.get("/api/runs").json()
        page = client.get("/runs").text
        older = client.get("/api/runs", params={"before": str(data["runs"][1]["id"])}).json()
    stored = dump(db, "SELECT scheduler_run_id, as_of, contacts_processed FROM scheduler_checkpoints ORDER BY id DESC")
    assert [(r["run_id"], r["as_of"], r["contacts_processed"]) for r in data["runs"]] == stored
    for r in data["runs"]:
        assert r["status"] == "completed" and r["elapsed_s"] is not None
        assert {"prepare", "decide", "write"} <= set(r["phase_s"])
        assert r["run_id"] in page
    assert [r["run_id"] for r in older["runs"]] == [stored[2][0]]


def test_dead_letters_without_a_broker_say_so(legacy_db: Path) -> None:
    sweep(legacy_db, T)
    with console(legacy_db, T) as client:
        data = client.get("/api/deadletters").json()
        page = client.get("/deadletters").text
        dash = client.get("/").text
    assert data["broker"] is None and data["deadletters"] == []
    assert "no broker given" in page and "No broker given" in dash


def test_metrics_in_prometheus_text(generated: Path) -> None:
    with console(generated, GEN_DAY) as client:
        data = client.get("/api/dashboard").json()
        client.post("/webhooks/delivery", content=b"[]", headers={"X-Mailwindow-Signature": "sha256=00"})
        text = client.get("/metrics").text
    first = data["days"][0]
    for email_type, n in first["by_type"].items():
        assert f'mailwindow_emails_scheduled{{day="{first["date"]}",email_type="{email_type}"}} {float(n)}' in text
    decided = data["sweeps"][0]["contacts_processed"]
    assert f"mailwindow_sweep_contacts_decided {float(decided)}" in text
    assert "mailwindow_sweep_duration_seconds " in text
    assert 'mailwindow_webhook_requests_total{outcome="unauthorized"} 1.0' in text


def test_static_files_are_served_from_the_package(legacy_db: Path) -> None:
    sweep(legacy_db, T)
    with console(legacy_db, T) as client:
        css = client.get("/static/console.css")
        page = client.get("/").text
    assert css.status_code == 200 and "svg" in css.text
    assert 'href="/static/console.css"' in page and "http" not in re.sub(r'xmlns="http[^"]*"', "", page.split("<main>")[0])


def test_the_invalid_count_is_the_agency_s_even_after_an_incremental_sweep(generated: Path) -> None:
    from rules.contact import ContactRecord, InvalidContact, validate_contact

    records = dump(generated, "SELECT id, email, zip_code, state, birth_date, effective_date, phone_number FROM contacts")
    invalid = sum(isinstance(validate_contact(ContactRecord(*r)), InvalidContact) for r in records)
    assert invalid > 0
    nxt = sweep(generated, GEN_DAY + timedelta(days=1))  # decides only what can have changed
    assert nxt.incremental and nxt.contacts_invalid < invalid
    with console(generated, GEN_DAY + timedelta(days=1)) as client:
        data = client.get("/api/dashboard").json()["invalid_contacts"]
        page = client.get("/").text
    assert data["run_id"] == nxt.run_id
    assert data["count"] == invalid
    # Examples from the newest sweep that decided invalid contacts, named.
    examples_from = data["examples_run_id"]
    assert data["examples"] and (examples_from == nxt.run_id) == (nxt.contacts_invalid > 0)
    assert f"{invalid} invalid contact(s) in the agency" in page and examples_from in page
    shown = {e["contact_id"] for e in data["examples"]}
    assert shown <= {r[0] for r in records if isinstance(validate_contact(ContactRecord(*r)), InvalidContact)}


def test_the_preview_page_shows_the_dry_run_s_counts_as_the_command_prints_them(
    generated: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``/preview`` (issue 15): a config file on disk previewed as of a day, with the numbers of
    ``mailwindow sweep --dry-run --json``; the database unchanged."""
    import hashlib

    import yaml

    from streams.sweep.preview import CHANGE_KINDS
    from tests.sweeps import changed_rules

    cfg = tmp_path / "changed.yaml"
    cfg.write_text(yaml.safe_dump(changed_rules()))
    day = (GEN_DAY + timedelta(days=1)).isoformat()
    stored = hashlib.sha256(generated.read_bytes()).hexdigest()
    with console(generated, GEN_DAY) as client:
        blank = client.get("/preview")
        data = client.get("/api/preview", params={"config": str(cfg), "as_of": day}).json()
        page = client.get("/preview", params={"config": str(cfg), "as_of": day}).text
        missing = client.get("/api/preview", params={"config": str(tmp_path / "nope.yaml")})
        bad_day = client.get("/preview", params={"config": str(cfg), "as_of": "2026-02-30"})
    assert hashlib.sha256(generated.read_bytes()).hexdigest() == stored
    assert main(["sweep", "--db", str(generated), "--config", str(cfg), "--as-of", day, "--dry-run", "--json"]) == 0
    cli = orjson.loads(capsys.readouterr().out)

    assert blank.status_code == 200 and 'id="preview-form"' in blank.text and 'id="counts"' not in blank.text
    assert 'href="/preview" aria-current="page"' in blank.text  # in the nav
    result = data["result"]
    assert data["error"] is None and result["dry_run"] is True
    assert result["counts"] == cli["counts"] and result["other_changes"] == cli["other_changes"]
    assert result["total"] == len(cli["changes"]) > 0
    assert list(cli["counts"]["by_change"]) == list(CHANGE_KINDS)  # every kind, 0 too
    assert list(result["examples"]) == [k for k, n in cli["counts"]["by_change"].items() if n]
    for kind, n in cli["counts"]["by_change"].items():
        assert re.search(rf'<tr data-change="{kind}"><td>{kind}</td><td class="n">{n}</td></tr>', page)
        if n:
            first = [c for c in cli["changes"] if c["change"] == kind][:10]
            assert result["examples"][kind] == first
            assert f"<h3>{kind}: {len(first)} of {n}</h3>" in page
    assert f'<span id="total">{result["total"]}</span>' in page
    for group, kinds in [*cli["counts"]["by_state"].items(), *cli["counts"]["by_type"].items()]:
        cells = "".join(f'<td class="n">{kinds.get(k, 0)}</td>' for k in CHANGE_KINDS)
        assert f'<tr data-group="{esc(group)}"><td>{esc(group)}</td>{cells}</tr>' in page
    assert result["summary"]["schedules_after_checksum"] == cli["summary"]["schedules_after_checksum"]
    assert missing.status_code == 400 and missing.json()["error"] == f"config file not found: {tmp_path / 'nope.yaml'}"
    assert bad_day.status_code == 400 and "as-of &#39;2026-02-30&#39; is not a date" in bad_day.text
