"""Console benchmark: how long each page and API endpoint of ``mailwindow serve`` takes on a
large generated agency (the aim: every page under 300 ms at 1M contacts).

    .venv/bin/python bench/console.py                          # 200k contacts, generated once
    .venv/bin/python bench/console.py --contacts 1000000
    .venv/bin/python bench/console.py --db var/bench/my.db      # an agency you have (swept)
    .venv/bin/python bench/console.py --applied-events 1000000  # /metrics with that many applied events

A missing database is made with ``mailwindow gen`` (20 campaign instances targeting
10% of the contacts, 10% of them with an initial email awaiting its follow-up) and
swept with ``mailwindow sweep`` as of 2026-03-10, then cached in --workdir.  The
console runs as ``mailwindow serve`` in its own process, over real HTTP; each path is
asked once cold, then --repeat times (median and worst printed), and the server's peak
RSS (VmHWM) is printed at the end.  Not part of the tests: figures depend on the machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DAY = "2026-03-10"


def mailwindow(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "streams.cli", *args], cwd=ROOT, check=True)


def agency(path: Path, contacts: int) -> Path:
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    started = time.perf_counter()
    mailwindow(
        "gen", "--db", str(partial), "--contacts", str(contacts), "--as-of", DAY,
        "--campaign-instances", "20", "--campaign-share", "0.10", "--followups", str(contacts // 10),
    )
    mailwindow("sweep", "--db", str(partial), "--as-of", DAY)
    partial.rename(path)
    print(f"generated and swept {path} in {time.perf_counter() - started:.0f} s")
    return path


def migrate(db: Path) -> None:
    from streams.store.engine import open_store

    with open_store(str(db)) as store:
        for change in store.migrate():
            print(f"migrated {db.name}: {change}")


def add_applied_events(db: Path, count: int) -> None:
    """Applied-event bookkeeping as a worker leaves it (for /metrics' count per topic)."""
    con = sqlite3.connect(db)
    have = con.execute("SELECT count(*) FROM mw_applied_events WHERE event_id LIKE 'bench-%'").fetchone()[0]
    topics = ("contacts", "clicks", "health", "email-status", "campaigns")
    con.executemany(
        "INSERT INTO mw_applied_events (event_id, topic, occurred_at, source_partition, source_offset) "
        "VALUES (?, ?, '2026-03-09 12:00:00', ?, ?)",
        ((f"bench-{i}", topics[i % 5], i % 4, i) for i in range(have, count)),
    )
    # Written around the worker: its per-topic counts made again from the events.
    con.execute("DELETE FROM mw_applied_counts")
    con.execute("INSERT INTO mw_applied_counts (topic, applied) SELECT topic, count(*) FROM mw_applied_events GROUP BY topic")
    con.commit()
    con.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sample_contact(db: Path) -> tuple[int, str]:
    """A contact with a skipped email (a window on its timeline), and the start of its address."""
    con = sqlite3.connect(db)
    try:
        cid, email = con.execute(
            "SELECT c.id, c.email FROM contacts c JOIN email_schedules e ON e.contact_id = c.id "
            "WHERE e.status = 'skipped' ORDER BY c.id LIMIT 1"
        ).fetchone()
    finally:
        con.close()
    return int(cid), str(email)[:4]


def get(url: str) -> tuple[float, int, int]:
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            body = r.read()
            status = r.status
    except urllib.error.HTTPError as exc:
        body, status = exc.read(), exc.code
    return time.perf_counter() - started, status, len(body)


def wait_until_up(base: str, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        if proc.poll() is not None:
            raise SystemExit(f"mailwindow serve ended with {proc.returncode}")
        try:
            urllib.request.urlopen(base + "/static/console.css", timeout=1).read()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("mailwindow serve did not answer")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--contacts", type=int, default=200_000)
    p.add_argument("--db", help="an agency database to use as it is (already swept)")
    p.add_argument("--workdir", default=str(ROOT / "var" / "bench"))
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--applied-events", type=int, default=0, help="make mw_applied_events hold this many")
    args = p.parse_args()
    db = Path(args.db) if args.db else agency(Path(args.workdir) / f"console-{args.contacts}.db", args.contacts)
    migrate(db)  # a database made by an older version gets what this one reads
    if args.applied_events:
        add_applied_events(db, args.applied_events)
    cid, prefix = sample_contact(db)
    paths = [
        "/", "/api/dashboard", f"/contacts/{cid}", f"/api/contacts/{cid}", f"/contacts?q={prefix}",
        f"/api/contacts?q={prefix}", "/campaigns", "/api/campaigns", "/runs", "/api/runs",
        "/deadletters", "/api/deadletters", "/metrics", "/contacts/999999999999",
    ]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "MAILWINDOW_WEBHOOK_SECRET": "bench"}
    server = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "serve", "--db", str(db), "--port", str(port), "--today", DAY],
        cwd=ROOT, env=env,
    )
    try:
        wait_until_up(base, server)
        size = db.stat().st_size / 1e9
        print(f"{db} ({size:.2f} GB), contact {cid}; {platform.processor() or platform.machine()}, "
              f"{os.cpu_count()} CPUs, Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}")
        print(f"{'path':<36} {'status':>6} {'bytes':>9} {'first ms':>9} {'median ms':>10} {'worst ms':>9}")
        for path in paths:
            first, status, size_b = get(base + path)
            times = [get(base + path)[0] for _ in range(args.repeat)]
            print(
                f"{path:<36} {status:>6} {size_b:>9,} {first * 1000:>9.1f} "
                f"{statistics.median(times) * 1000:>10.1f} {max(times) * 1000:>9.1f}"
            )
        print(f"server peak RSS {peak_rss_mb(server.pid):.0f} MB")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
