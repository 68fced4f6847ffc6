"""The ops console in a real browser (issue 13): ``mailwindow serve`` as a subprocess on a
generated and swept agency, read by headless Chromium from Debian's packages (``chromium``,
``chromium-driver``; ``scripts/test`` installs them when missing) through Selenium.

Without Chromium or its driver the tests here FAIL with the one-line reason, as the Kafka
and PostgreSQL ones do: a run without a browser must not pass.

Every page a test loads is saved as a full-page PNG under ``$MAILWINDOW_SCREENSHOTS``
(default ``var/screenshots/`` in the repository, which git ignores); the directory is
printed at the end of the run.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from synthetic.generate import generate_database
from tests.legacy_db import add_contacts
from tests.sweeps import sweep

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WINDOW = (1400, 1000)

TODAY = date(2026, 3, 10)  # the generated agencies' day, the console's --today
GENERATED_CONTACTS = 3000

# Crafted contacts added to the generated agency (its ids are 1..GENERATED_CONTACTS).
CA_ID = 900001
CA_EMAIL = "ca.window@example.com"
CA_BIRTH = date(1950, 3, 30)  # birthday email on 03-16, inside the CA window around 03-30
HOSTILE_ID = 900002
HOSTILE = "<script>alert(1)</script>"
NY_ID = 900003
CHANGED_INSTANCE, CHANGED_END = 4, "2026-06-30"  # a generated campaign instance given an end date

_SAVED: list[Path] = []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def mailwindow_command() -> str:
    beside = Path(sys.executable).with_name("mailwindow")
    if beside.exists():
        return str(beside)
    found = shutil.which("mailwindow")
    if found is None:
        pytest.fail("the mailwindow command is not installed (scripts/setup installs it)", pytrace=False)
    return found


@pytest.fixture(scope="session")
def agency_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated agency as ``scripts/demo`` makes one (campaigns, sent initial emails with
    their clicks and answers), a campaign's end date changed, and crafted contacts: in CA,
    one whose birthday email falls in its window; one named ``<script>alert(1)</script>``;
    one in NY (year-round); swept the day before ``TODAY`` and on ``TODAY``."""
    db = tmp_path_factory.mktemp("browser") / "agency.db"
    generate_database(
        str(db), GENERATED_CONTACTS, seed=11, as_of=TODAY, campaign_instances=6, followup_initials=300
    )
    add_contacts(
        db,
        [
            {"id": CA_ID, "first_name": "Carla", "last_name": "Window", "email": CA_EMAIL,
             "zip_code": "90210", "state": "CA", "birth_date": CA_BIRTH.isoformat()},
            {"id": HOSTILE_ID, "first_name": HOSTILE, "last_name": "Doe", "email": "hostile@example.com",
             "zip_code": "75201", "state": "TX", "birth_date": "1950-07-04"},
            {"id": NY_ID, "first_name": "Nia", "last_name": "Yearround", "email": "ny@example.com",
             "zip_code": "10001", "state": "NY", "birth_date": "1950-03-25"},
        ],
    )
    changed = subprocess.run(
        [mailwindow_command(), "campaign", "dates", str(CHANGED_INSTANCE), "--db", str(db), "--end", CHANGED_END,
         "--by", "ops", "--as-of", TODAY.isoformat()],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert changed.returncode == 0, changed.stderr
    sweep(db, TODAY - timedelta(days=1))  # the daily sweeps: yesterday's, then today's
    sweep(db, TODAY)
    return db


@pytest.fixture(scope="session")
def server(agency_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``mailwindow serve`` on a free port of 127.0.0.1: its base URL, once it answers."""
    port = _free_port()
    log_path = tmp_path_factory.mktemp("serve") / "serve.log"
    env = {k: v for k, v in os.environ.items() if k != "MAILWINDOW_WEBHOOK_SECRET"}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [mailwindow_command(), "serve", "--db", str(agency_db), "--today", TODAY.isoformat(), "--port", str(port)],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"mailwindow serve exited with {proc.returncode}: {log_path.read_text()}", pytrace=False)
            try:
                with urllib.request.urlopen(base + "/api/runs", timeout=5) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"mailwindow serve did not answer within 60 s: {log_path.read_text()}", pytrace=False)
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


@pytest.fixture(scope="session")
def api(server: str) -> Callable[[str], Any]:
    """A page's JSON twin, read over HTTP without the browser."""

    def get(path: str) -> Any:
        with urllib.request.urlopen(server + "/api" + path, timeout=30) as r:
            return orjson.loads(r.read())

    return get


@pytest.fixture(scope="session")
def driver() -> Iterator[Any]:
    """Headless Chromium driven through Debian's chromedriver."""
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not os.path.exists(path):
            pytest.fail(f"{path} is missing: install Debian's {package} package (scripts/test does)", pytrace=False)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 f"--window-size={WINDOW[0]},{WINDOW[1]}", "--hide-scrollbars", "--lang=en-US"):
        options.add_argument(flag)
    # An alert a page opened stays open for the test to find (not dismissed by the driver).
    options.set_capability("unhandledPromptBehavior", "ignore")
    browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    browser.set_page_load_timeout(60)
    try:
        yield browser
    finally:
        browser.quit()


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    where = Path(os.environ.get("MAILWINDOW_SCREENSHOTS") or ROOT / "var" / "screenshots")
    where.mkdir(parents=True, exist_ok=True)
    return where


@pytest.fixture
def screenshot(driver: Any, screenshot_dir: Path) -> Callable[[str], Path]:
    """Saves the whole page the browser shows (the window made as tall as the page)."""

    def save(name: str) -> Path:
        page_height = "return Math.max(document.body.scrollHeight, document.documentElement.scrollHeight)"
        for _ in range(3):  # the window's frame takes some of its height: grow until the page fits
            short = int(driver.execute_script(page_height + " - window.innerHeight"))
            if short <= 0:
                break
            driver.set_window_size(WINDOW[0], driver.get_window_size()["height"] + short)
        try:
            path = screenshot_dir / f"{name}.png"
            assert driver.save_screenshot(str(path)), f"no screenshot saved at {path}"
            _SAVED.append(path)
            return path
        finally:
            driver.set_window_size(*WINDOW)

    return save


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _SAVED:
        terminalreporter.write_line(
            f"browser screenshots ({len(_SAVED)}) in {_SAVED[0].parent}: " + ", ".join(p.name for p in _SAVED)
        )
