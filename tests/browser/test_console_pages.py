"""What a person sees in the ops console (issue 13), read from the page Chromium rendered:
the elements it drew, their text, their place on the screen.  Each page is saved as a
screenshot (``conftest.screenshot``)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser.conftest import (
    CA_BIRTH,
    CA_EMAIL,
    CA_ID,
    CHANGED_END,
    CHANGED_INSTANCE,
    HOSTILE,
    HOSTILE_ID,
    NY_ID,
    TODAY,
    mailwindow_command,
)

WAIT_S = 30  # generous: the tests never assert how fast a page is


def load(driver: Any, url: str, ready: str) -> None:
    """Opens ``url`` and waits until the element ``ready`` (a CSS selector) is shown; fails
    when the page opened an alert (a value that ran as a script)."""
    driver.get(url)
    no_alert(driver)
    WebDriverWait(driver, WAIT_S).until(ec.visibility_of_element_located((By.CSS_SELECTOR, ready)))


def no_alert(driver: Any) -> None:
    try:
        alert = driver.switch_to.alert
    except NoAlertPresentException:
        return
    text = alert.text
    alert.dismiss()
    pytest.fail(f"{driver.current_url} opened an alert: {text!r}", pytrace=False)


@pytest.fixture(autouse=True)
def _no_alert_left_open(driver: Any) -> Iterator[None]:
    """One test's stray alert must not fail the next ones (the browser is the session's)."""
    yield
    try:
        driver.switch_to.alert.dismiss()
    except NoAlertPresentException:
        pass


def box(driver: Any, element: WebElement) -> dict[str, float]:
    """Where the element is drawn on the page, in CSS pixels."""
    r = driver.execute_script(
        "const r = arguments[0].getBoundingClientRect();"
        "return {left: r.left, right: r.right, top: r.top, bottom: r.bottom, width: r.width, height: r.height};",
        element,
    )
    return {k: float(v) for k, v in r.items()}


def overlapping(a: dict[str, float], b: dict[str, float]) -> bool:
    return a["left"] < b["right"] and b["left"] < a["right"] and a["top"] < b["bottom"] and b["top"] < a["bottom"]


# --- the dashboard ------------------------------------------------------------------------------


def test_the_dashboard_chart_shows_the_next_60_days_as_tall_as_the_api_counts(
    driver: Any, server: str, api: Callable[[str], Any], screenshot: Callable[[str], Path]
) -> None:
    load(driver, server + "/", "svg.chart.daily")
    screenshot("dashboard")
    data = api("/dashboard")
    chart = driver.find_element(By.CSS_SELECTOR, "svg.chart.daily")
    assert chart.is_displayed() and box(driver, chart)["width"] > 800  # the chart spans the page
    days = chart.find_elements(By.CSS_SELECTOR, "g.day")
    assert len(days) == 60
    shown = [d.get_attribute("data-day") for d in days]
    assert shown == [(TODAY + timedelta(days=i)).isoformat() for i in range(60)]
    assert shown[0] == TODAY.isoformat() and shown[-1] == (TODAY + timedelta(days=59)).isoformat()
    totals = {d["date"]: d["total"] for d in data["days"]}
    assert {d.get_attribute("data-day"): int(d.get_attribute("data-total") or -1) for d in days} == totals
    assert sum(totals.values()) > 100  # the agency has a schedule: the comparison means something

    # Each bar is as tall as its count, on one scale, standing on one baseline, left to right.
    heights: dict[str, float] = {}
    bottoms: set[int] = set()
    lefts: list[float] = []
    for d in days:
        segments = [box(driver, s) for s in d.find_elements(By.CSS_SELECTOR, "rect.segment")]
        heights[d.get_attribute("data-day")] = sum(s["height"] for s in segments)
        if segments:
            bottoms.add(round(max(s["bottom"] for s in segments)))
            lefts.append(min(s["left"] for s in segments))
    assert len(bottoms) == 1 and lefts == sorted(lefts)
    tallest = max(totals, key=lambda k: totals[k])
    px_per_email = heights[tallest] / totals[tallest]
    assert heights[tallest] > 30  # a bar a person can see and compare
    for day, n in totals.items():
        assert heights[day] == pytest.approx(n * px_per_email, abs=1.5), day

    # The daily cap, a dashed line at the height of that many emails, labelled.
    cap = chart.find_element(By.CSS_SELECTOR, "line.cap")
    assert data["daily_cap"] > 0 and int(cap.get_attribute("data-cap")) == data["daily_cap"]
    assert cap.value_of_css_property("stroke-dasharray") not in ("", "none")
    (baseline,) = bottoms
    cap_box = box(driver, cap)
    assert baseline - (cap_box["top"] + cap_box["bottom"]) / 2 == pytest.approx(data["daily_cap"] * px_per_email, abs=2)
    label = chart.find_element(By.CSS_SELECTOR, "text.cap-label")
    assert label.is_displayed() and label.text == f"daily cap {data['daily_cap']}"

    # The days emails were moved to are marked, the others are not.
    moved = {d["date"] for d in data["days"] if d["moved"]["smoothing"] + d["moved"]["daily_cap"]}
    assert moved
    assert {d.get_attribute("data-day") for d in days if d.find_elements(By.CSS_SELECTOR, "path.moved")} == moved

    # A legend names every email type and the moved mark, each name readable (no overlap).
    legend = chart.find_elements(By.CSS_SELECTOR, "g.legend text.legend-label")
    assert [t.text for t in legend] == [*data["email_types"], "moved by smoothing or the cap"]
    boxes = [box(driver, t) for t in legend]
    assert all(b["width"] > 0 for b in boxes)
    assert not any(overlapping(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    # Date labels under the bars: one a week, from today.
    ticks = [t.text for t in chart.find_elements(By.CSS_SELECTOR, "g.day text.axis")]
    assert ticks == [(TODAY + timedelta(days=i)).strftime("%m-%d") for i in range(0, 60, 7)]


def test_the_dashboard_lists_the_skips_the_sweeps_and_the_days(
    driver: Any, server: str, api: Callable[[str], Any], screenshot: Callable[[str], Path]
) -> None:
    load(driver, server + "/", "#skipped table")
    data = api("/dashboard")
    rows = driver.find_elements(By.CSS_SELECTOR, "#skipped tbody tr")
    shown = [tuple(td.text for td in r.find_elements(By.TAG_NAME, "td")) for r in rows]
    assert shown == [(r["reason"], str(r["count"])) for r in data["skipped_by_reason"]] and shown
    assert all(r.is_displayed() for r in rows)

    sweeps = driver.find_elements(By.CSS_SELECTOR, "#sweeps table.sweeps tbody tr")
    assert [s.get_attribute("data-run") for s in sweeps] == [s["run_id"] for s in data["sweeps"]]
    assert sweeps and sweeps[0].is_displayed() and "completed" in sweeps[0].text

    invalid = driver.find_element(By.ID, "invalid")
    assert f"{data['invalid_contacts']['count']} invalid contact(s)" in invalid.text
    links = invalid.find_elements(By.CSS_SELECTOR, "li a")
    assert [a.get_attribute("href") for a in links] == [
        f"{server}/contacts/{e['contact_id']}" for e in data["invalid_contacts"]["examples"]
    ]
    assert "No broker given" in driver.find_element(By.ID, "broker").text

    # The days as a table: folded away until its summary is clicked.
    table = driver.find_element(By.CSS_SELECTOR, "table.days")
    assert not table.is_displayed()
    driver.find_element(By.CSS_SELECTOR, "#daily details summary").click()
    WebDriverWait(driver, WAIT_S).until(ec.visibility_of(table))
    rows = table.find_elements(By.CSS_SELECTOR, "tbody tr")
    assert [r.find_elements(By.TAG_NAME, "td")[1].text for r in rows] == [str(d["total"]) for d in data["days"]]
    screenshot("dashboard-days-table")


# --- a contact ----------------------------------------------------------------------------------


def ca_birthday_window(year: int) -> tuple[date, date]:
    """SPEC section 4, CA: birthday, 30 days before, 60 after, pre_window 60 (both ends inclusive)."""
    anchor = CA_BIRTH.replace(year=year)
    return anchor - timedelta(days=30 + 60), anchor + timedelta(days=60)


def test_the_ca_contact_s_timeline_shades_its_window_and_shows_the_birthday_email_skipped(
    driver: Any, server: str, screenshot: Callable[[str], Path]
) -> None:
    load(driver, f"{server}/contacts/{CA_ID}", "svg.chart.timeline")
    screenshot("contact")
    chart = driver.find_element(By.CSS_SELECTOR, "svg.chart.timeline")
    first, last = TODAY.replace(year=TODAY.year - 1), TODAY.replace(year=TODAY.year + 1)
    assert driver.find_element(By.CSS_SELECTOR, "#timeline h2").text == f"{first} to {last}"

    # Every CA birthday window that meets the 24 months is shaded, and named.
    expected = [w for w in map(ca_birthday_window, range(first.year - 1, last.year + 2)) if w[1] >= first and w[0] <= last]
    bands = chart.find_elements(By.CSS_SELECTOR, "g.window")
    assert [(b.get_attribute("data-start"), b.get_attribute("data-end")) for b in bands] == [
        (s.isoformat(), e.isoformat()) for s, e in expected
    ]
    for band in bands:
        shade = band.find_element(By.TAG_NAME, "rect")
        assert shade.is_displayed() and box(driver, shade)["width"] > 5
        assert shade.value_of_css_property("fill") not in ("none", "rgb(0, 0, 0)")
        name = band.find_element(By.CSS_SELECTOR, "text.window-label")
        assert name.is_displayed() and name.text.startswith("CA birthday window")
    names = [box(driver, b.find_element(By.CSS_SELECTOR, "text.window-label")) for b in bands]
    assert not any(overlapping(a, b) for i, a in enumerate(names) for b in names[i + 1:])

    # This year's window covers today; its shade spans exactly its dates on the time axis.
    start, end = ca_birthday_window(TODAY.year)
    assert start <= TODAY <= end
    band = chart.find_element(By.CSS_SELECTOR, f'g.window[data-start="{start}"][data-end="{end}"]')
    assert band.find_element(By.CSS_SELECTOR, "text.window-label").text == f"CA birthday window {start}..{end}"
    shade = box(driver, band.find_element(By.TAG_NAME, "rect"))
    days_wide = (end - start).days + 1

    def at(x: float) -> float:  # where x falls in the window, 0 its first day's start, 1 its last day's end
        return (x - shade["left"]) / shade["width"]

    today_line = chart.find_element(By.CSS_SELECTOR, f'line.today[data-day="{TODAY}"]')
    assert today_line.is_displayed()
    today_box = box(driver, today_line)
    assert at((today_box["left"] + today_box["right"]) / 2) == pytest.approx((TODAY - start).days / days_wide, abs=0.01)

    # The birthday email: one dot, red for skipped, inside the window, 14 days before the birthday.
    send = CA_BIRTH.replace(year=TODAY.year) - timedelta(days=14)
    dots = chart.find_elements(By.CSS_SELECTOR, 'circle.email[data-type="birthday"]:not(.planned)')
    assert [(d.get_attribute("data-day"), d.get_attribute("data-status")) for d in dots] == [(send.isoformat(), "skipped")]
    (dot,) = dots
    assert dot.is_displayed() and dot.value_of_css_property("fill") == "rgb(197, 48, 48)"
    dot_box = box(driver, dot)
    centre = (dot_box["left"] + dot_box["right"]) / 2
    assert 0 < at(centre) < 1
    assert at(centre) == pytest.approx((send - start).days / days_wide, abs=0.01)
    # The status legend says what red means.
    legend = [t.text for t in chart.find_elements(By.CSS_SELECTOR, "g.legend text.legend-label")]
    assert "skipped" in legend and "pending" in legend

    # The table under the chart says it in words.
    row = driver.find_element(
        By.CSS_SELECTOR, f'table.emails tr[data-type="birthday"][data-day="{send}"][data-status="skipped"]'
    )
    cells = [td.text for td in row.find_elements(By.TAG_NAME, "td")]
    assert cells[:4] == [send.isoformat(), "birthday", "skipped", f"CA birthday window {start}..{end}"]
    window_rows = driver.find_elements(By.CSS_SELECTOR, "table.windows tbody tr")
    assert [(r.get_attribute("data-start"), r.get_attribute("data-end")) for r in window_rows] == [
        (s.isoformat(), e.isoformat()) for s, e in expected
    ]


def test_a_year_round_state_shades_the_whole_timeline(
    driver: Any, server: str, api: Callable[[str], Any], screenshot: Callable[[str], Path]
) -> None:
    load(driver, f"{server}/contacts/{NY_ID}", "svg.chart.timeline")
    screenshot("contact-year-round")
    chart = driver.find_element(By.CSS_SELECTOR, "svg.chart.timeline")
    first, last = TODAY.replace(year=TODAY.year - 1), TODAY.replace(year=TODAY.year + 1)
    shade = chart.find_element(By.CSS_SELECTOR, "rect.window.year-round")
    assert (shade.get_attribute("data-start"), shade.get_attribute("data-end")) == (first.isoformat(), last.isoformat())
    assert shade.is_displayed()
    shaded = box(driver, shade)
    lanes = [box(driver, line) for line in chart.find_elements(By.CSS_SELECTOR, "line.lane-line")]
    assert lanes and shaded["height"] > 20
    for lane in lanes:  # every lane lies under the shade, from its start to its end
        assert shaded["top"] < lane["top"] <= lane["bottom"] < shaded["bottom"]
        assert lane["left"] == pytest.approx(shaded["left"], abs=1.5)
        assert lane["right"] == pytest.approx(shaded["right"], abs=1.5)
    label = chart.find_element(By.CSS_SELECTOR, "text.window-label")
    assert label.is_displayed() and label.text.startswith("NY year-round")
    dots = chart.find_elements(By.CSS_SELECTOR, "circle.email:not(.planned)")
    assert dots and {d.get_attribute("data-status") for d in dots} == {"skipped"}
    assert all(d.value_of_css_property("fill") == "rgb(197, 48, 48)" for d in dots)


def test_the_contact_page_says_what_mailwindow_explain_prints(
    driver: Any, server: str, agency_db: Path
) -> None:
    load(driver, f"{server}/contacts/{CA_ID}", "pre.explain")
    printed = subprocess.run(
        [mailwindow_command(), "explain", "--db", str(agency_db), "--contact", str(CA_ID), "--as-of", TODAY.isoformat()],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout
    shown = driver.find_element(By.CSS_SELECTOR, "pre.explain")
    assert shown.is_displayed()
    assert [line.rstrip() for line in shown.text.splitlines()] == [line.rstrip() for line in printed.splitlines()]
    assert "CA birthday window" in printed  # the explanation is about this contact's window


def test_a_hostile_name_is_shown_as_text_and_runs_nothing(
    driver: Any, server: str, screenshot: Callable[[str], Path]
) -> None:
    load(driver, f"{server}/contacts/{HOSTILE_ID}", "h1 .name")
    no_alert(driver)
    screenshot("contact-hostile-name")
    name = driver.find_element(By.CSS_SELECTOR, "h1 .name")
    assert name.text == f"{HOSTILE} Doe"
    assert name.find_elements(By.CSS_SELECTOR, "*") == []  # text, not elements
    assert HOSTILE in driver.find_element(By.TAG_NAME, "body").text
    assert driver.find_elements(By.TAG_NAME, "script") == []  # the console's pages carry no script at all
    # Searched for, the same text is echoed back as text.
    box_ = driver.find_element(By.ID, "q")
    box_.send_keys(HOSTILE)
    box_.submit()
    WebDriverWait(driver, WAIT_S).until(ec.title_contains("Find a contact"))
    no_alert(driver)
    assert f"Contacts matching “{HOSTILE}”" == driver.find_element(By.TAG_NAME, "h1").text
    assert driver.find_elements(By.TAG_NAME, "script") == []
    screenshot("search-hostile")


def test_the_search_box_leads_to_the_contact_by_email_and_by_id(driver: Any, server: str) -> None:
    for typed in (CA_EMAIL, str(CA_ID)):
        load(driver, server + "/runs", "#q")
        field = driver.find_element(By.ID, "q")
        assert field.is_displayed()
        field.send_keys(typed)
        driver.find_element(By.CSS_SELECTOR, "form.search button[type=submit]").click()
        WebDriverWait(driver, WAIT_S).until(ec.url_to_be(f"{server}/contacts/{CA_ID}"))
        heading = driver.find_element(By.TAG_NAME, "h1").text
        assert heading == f"Contact {CA_ID}: Carla Window"
        assert CA_EMAIL in driver.find_element(By.CSS_SELECTOR, "p.facts").text


# --- campaigns, sweeps, dead letters --------------------------------------------------------------


def test_campaigns_show_their_tables(
    driver: Any, server: str, api: Callable[[str], Any], screenshot: Callable[[str], Path]
) -> None:
    load(driver, server + "/campaigns", "h1")
    screenshot("campaigns")
    data = api("/campaigns")
    assert driver.find_element(By.TAG_NAME, "h1").text == "Campaigns"
    assert [h.text for h in driver.find_elements(By.CSS_SELECTOR, "section h2")] == [
        "Types", "Instances", "Date changes (newest first)"
    ]
    for section, rows in (("types", data["types"]), ("instances", data["instances"]), ("changes", data["changes"])):
        shown = driver.find_elements(By.CSS_SELECTOR, f"#{section} tbody tr")
        assert len(shown) == len(rows) and all(r.is_displayed() for r in shown)
        if not rows:
            assert driver.find_element(By.CSS_SELECTOR, f"#{section} p").text.startswith("No ")
    assert data["types"] and data["instances"] and data["changes"]  # the agency has campaigns
    assert [r.find_element(By.TAG_NAME, "td").text for r in driver.find_elements(By.CSS_SELECTOR, "#types tbody tr")] == [
        t["name"] for t in data["types"]
    ]
    instances = driver.find_elements(By.CSS_SELECTOR, "#instances tbody tr")
    assert [r.get_attribute("data-instance") for r in instances] == [str(i["id"]) for i in data["instances"]]
    for row, instance in zip(instances, data["instances"], strict=True):
        cells = [td.text for td in row.find_elements(By.TAG_NAME, "td")]
        assert cells[1:3] == [instance["campaign_type"], instance["instance_name"]]
        shown = dict(part.rsplit(" ", 1) for part in cells[6].split(", ")) if instance["targets_by_status"] else {}
        assert {k: int(v) for k, v in shown.items()} == instance["targets_by_status"]
    changed = next(r for r in instances if r.get_attribute("data-instance") == str(CHANGED_INSTANCE))
    assert changed.find_elements(By.TAG_NAME, "td")[4].text == CHANGED_END
    (change,) = driver.find_elements(By.CSS_SELECTOR, "#changes tbody tr")
    cells = [td.text for td in change.find_elements(By.TAG_NAME, "td")]
    assert cells[1:] == [str(CHANGED_INSTANCE), "active_end_date", "-", CHANGED_END, "ops"]


def test_runs_show_the_sweeps_with_their_counts(
    driver: Any, server: str, api: Callable[[str], Any], screenshot: Callable[[str], Path]
) -> None:
    load(driver, server + "/runs", "table.sweeps")
    screenshot("runs")
    data = api("/runs")
    rows = driver.find_elements(By.CSS_SELECTOR, "table.sweeps tbody tr")
    assert [r.get_attribute("data-run") for r in rows] == [r["run_id"] for r in data["runs"]] and rows
    headers = [th.text for th in driver.find_elements(By.CSS_SELECTOR, "table.sweeps thead th")]
    cells = dict(zip(headers, (td.text for td in rows[0].find_elements(By.TAG_NAME, "td")), strict=True))
    assert [r.find_elements(By.TAG_NAME, "td")[1].text for r in rows] == [
        TODAY.isoformat(), (TODAY - timedelta(days=1)).isoformat()
    ]  # newest first
    run = data["runs"][0]
    assert cells["as of"] == TODAY.isoformat() and cells["status"] == "completed"
    assert cells["contacts decided / scanned"] == f"{run['contacts_processed']} / {run['contacts_scanned']}"
    assert cells["rows written"] == str(run["rows_written"])
    assert all(name in cells["phases"] for name in ("prepare", "decide", "write"))


def test_dead_letters_without_a_broker_say_so(driver: Any, server: str, screenshot: Callable[[str], Path]) -> None:
    load(driver, server + "/deadletters", "p.note")
    screenshot("deadletters")
    note = driver.find_element(By.CSS_SELECTOR, "p.note")
    assert note.text.startswith("no broker given")
    assert driver.find_elements(By.CSS_SELECTOR, "table.deadletters") == []
    assert "no broker (embedded)" in driver.find_element(By.TAG_NAME, "footer").text


# --- a sweep's dry run (issue 15) ---------------------------------------------------------------


def test_the_preview_page_shows_what_the_dry_run_command_counts(
    driver: Any, server: str, agency_db: Path, tmp_path: Path, screenshot: Callable[[str], Path]
) -> None:
    """A config file on disk typed into the form, previewed as of the console's day: the
    counts drawn are those of ``mailwindow sweep --dry-run --json`` with that file."""
    import orjson
    import yaml

    from tests.sweeps import changed_rules

    cfg = tmp_path / "changed_rules.yaml"
    cfg.write_text(yaml.safe_dump(changed_rules()))
    load(driver, server + "/preview", "#preview-form")
    assert driver.find_element(By.CSS_SELECTOR, 'nav a[href="/preview"]').get_attribute("aria-current") == "page"
    assert driver.find_element(By.ID, "as_of").get_attribute("value") == TODAY.isoformat()  # the console's day
    driver.find_element(By.ID, "config").send_keys(str(cfg))
    driver.find_element(By.CSS_SELECTOR, "#preview-form button[type=submit]").click()
    WebDriverWait(driver, 120).until(ec.visibility_of_element_located((By.ID, "counts")))
    no_alert(driver)
    screenshot("preview")

    dry = subprocess.run(
        [mailwindow_command(), "sweep", "--db", str(agency_db), "--config", str(cfg), "--as-of", TODAY.isoformat(),
         "--dry-run", "--json"],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert dry.returncode == 0, dry.stderr
    cli = orjson.loads(dry.stdout)
    by_change = cli["counts"]["by_change"]
    assert sum(by_change.values()) > 0 and by_change.get("skipped", 0) > 0
    shown = {
        r.get_attribute("data-change"): int(r.find_elements(By.TAG_NAME, "td")[1].text)
        for r in driver.find_elements(By.CSS_SELECTOR, "#counts tbody tr")
    }
    assert shown == {k: by_change.get(k, 0) for k in ("created", "deleted", "skipped", "unskipped", "moved")}
    assert driver.find_element(By.ID, "total").text == str(len(cli["changes"]))
    states = {
        r.get_attribute("data-group"): sum(int(td.text) for td in r.find_elements(By.TAG_NAME, "td")[1:])
        for r in driver.find_elements(By.CSS_SELECTOR, "#by-state tbody tr")
    }
    assert states == {s: sum(k.values()) for s, k in cli["counts"]["by_state"].items()}
    # The first changes of each kind, in the command's order, each row readable.
    for kind, n in by_change.items():
        if not n:
            assert driver.find_elements(By.CSS_SELECTOR, f'#examples table[data-kind="{kind}"]') == []
            continue
        table = driver.find_element(By.CSS_SELECTOR, f'#examples table[data-kind="{kind}"]')
        rows = table.find_elements(By.CSS_SELECTOR, "tbody tr")
        first = [c for c in cli["changes"] if c["change"] == kind][: min(10, n)]
        assert [int(r.find_element(By.TAG_NAME, "td").text) for r in rows] == [c["contact_id"] for c in first]
        assert all(r.is_displayed() for r in rows)
    assert driver.find_elements(By.CSS_SELECTOR, "#error") == []
