"""Sweep benchmark: prints time, contacts processed vs scanned, rows written and
peak memory for generated agencies of several sizes.

    .venv/bin/python bench/sweep.py                      # 100k, 1M, 3M
    .venv/bin/python bench/sweep.py --sizes 100000       # one size
    .venv/bin/python bench/sweep.py --scenario campaigns # 1M, with campaigns and follow-ups
    .venv/bin/python bench/sweep.py --scenario campaigns --sizes 20000   # a quick check

Each measured sweep runs in a fresh process, so its peak RSS is its own; the bench
also samples the proportional set size (PSS) of that process and its children (decide
workers, side reads) every 0.1 s and prints the largest sum: all processes together.

    .venv/bin/python bench/sweep.py --measure COPY.db 2026-09-01   # one sweep, JSON

The machine drifts (the same sweep ran 10% slower an hour later on 2026-12-02), so a
change is judged against the code before it in interleaved runs, minutes apart:

    .venv/bin/python bench/sweep.py --compare HEAD~1 AGENCY.db 2026-03-10 [--runs 3]

runs the sweep of a fresh copy of AGENCY.db with REV's code, then with this tree's,
``--runs`` times, and prints each run's time, phases, the CPU of its worker processes and
its checksum (equal checksums: the change kept every row).  Without the memory sampler (it
costs about 3.6% of one core).

Scenarios per size:
- ``outside AEP``: first sweep on 2026-03-10 of a freshly generated database;
- ``next day``: the sweep of 2026-03-11 on the same database;
- ``AEP``: first sweep on 2026-09-01 (every valid contact gets its AEP email)
  of another fresh copy.
With ``--scenario campaigns`` the agency also has 20 campaign instances
targeting 10% of the contacts, and 10% of the contacts have an initial email
sent in the 35 days before 2026-03-10 awaiting its follow-up (with clicks and
health answers); it runs the ``outside AEP`` and ``next day`` sweeps and also
prints the emails per type (``summary.per_type``).
Generated databases are cached in --workdir (default var/bench) and reused.
Not part of the test suite: figures depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path
from typing import cast

ROOT = Path(__file__).resolve().parent.parent
GEN_AS_OF = date(2026, 3, 10)
# --scenario campaigns: campaign and follow-up data on top of the contacts.
CAMPAIGN_INSTANCES = 20
CAMPAIGN_SHARE = 0.10
FOLLOWUP_SHARE = 0.10  # initial emails awaiting follow-ups, per contact
DEFAULT_SIZES = {"standard": "100000,1000000,3000000", "campaigns": "1000000"}


def _one(db: str, as_of: str, full_scan: bool, code: str | None = None) -> None:
    """Child mode: run one sweep, print its figures as JSON.  ``code``: the checkout whose
    packages run it (``--compare``), this one by default."""
    sys.path.insert(0, code or str(ROOT))
    import rules
    from rules.config import DEFAULT_CONFIG
    from streams.store.engine import open_store
    from streams.sweep.run import run_sweep
    from streams.sweep.summary import SweepOptions

    store = open_store(db)
    # The one-time migration of a database the scheduler has not opened before (the first
    # sweep of a generated agency): timed apart from the sweep, which would otherwise do it.
    started = time.perf_counter()
    migration = store.migrate()
    migrate_s = time.perf_counter() - started
    started = time.perf_counter()
    s = run_sweep(store, DEFAULT_CONFIG, SweepOptions(as_of=date.fromisoformat(as_of), full_scan=full_scan))
    wall = time.perf_counter() - started
    store.close()
    # VmHWM, not getrusage: ru_maxrss survives exec, so this process would report the peak
    # of the bench process that started it (574 MB after generating a 1M agency).
    peak_mb = _vm_hwm_mb()
    # Worker processes (the decide phase) are children: the largest one's peak.
    worker_peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "wall_s": round(wall, 2),
                "migrate_s": round(migrate_s, 2) if migration else 0,
                "scanned": s.contacts_scanned,
                "processed": s.contacts_processed,
                "invalid": s.contacts_invalid,
                "written": s.rows_inserted + s.rows_updated + s.rows_deleted,
                "unchanged": s.rows_unchanged,
                "scheduled": s.emails_scheduled,
                "skipped": s.emails_skipped,
                "moved_cap": s.moved_by_daily_cap,
                "moved_smoothing": s.moved_by_smoothing,
                "peak_mb": round(peak_mb),
                "worker_peak_mb": round(worker_peak_mb),
                "per_type": s.per_type,
                "phase_s": s.phase_s,
                "prefilter": s.prefilter,
                "children_cpu_s": round(_children_cpu_s(), 1),
                "checksum": s.schedules_after_checksum,
                # which copy of the rules decided (rules/__init__.py): compiled or source
                "rules": "compiled" if getattr(rules, "compiled_from", None) else "source",
            }
        )
    )


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _compare(rev: str, source: Path, as_of: str, runs: int, workdir: Path) -> None:
    """Interleaved sweeps of copies of ``source``: REV's code, then this tree's, ``runs`` times."""
    trees = workdir / "compare"
    old_tree = trees / "rev"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "--force", str(old_tree), rev],
                   check=True, capture_output=True)
    try:
        if (old_tree / "scripts" / "compile_rules.py").exists():  # its rules compiled too
            subprocess.run([sys.executable, str(old_tree / "scripts" / "compile_rules.py")], check=True,
                           capture_output=True)
        print(f"machine: {platform.machine()}, {os.cpu_count()} cores; {source} on {as_of}")
        print("| run | code | rules | sweep s | decide | write | CPU s of its children (decide workers, side reads) | checksum |")
        print("|---|---|---|---|---|---|---|---|")
        for run in range(1, runs + 1):
            for label, code in ((rev, old_tree), ("this tree", ROOT)):
                db = _copy(source, trees / "run.db")
                out = subprocess.run(
                    [sys.executable, __file__, "--one", str(db), as_of, "--code", str(code)],
                    check=True, capture_output=True, text=True,
                ).stdout
                r = json.loads(out.strip().splitlines()[-1])
                phases = dict(r["phase_s"])
                print(
                    f"| {run} | {label} | {r.get('rules', 'source')} | {r['wall_s']} | {phases.get('decide')} | {phases.get('write')} | "
                    f"{r['children_cpu_s']} | {str(r['checksum'])[:24]} |",
                    flush=True,
                )
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old_tree)], capture_output=True)
        for p in trees.glob("run.db*"):
            p.unlink()
        trees.rmdir()


def _migration_note(figures: dict[str, object]) -> str:
    return f" (+ {figures['migrate_s']})" if figures.get("migrate_s") else ""


def _vm_hwm_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux


def _measure(db: Path, as_of: str, full_scan: bool = False) -> dict[str, object]:
    child = subprocess.Popen(
        [sys.executable, __file__, "--one", str(db), as_of] + (["--full-scan"] if full_scan else []),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    tree = _TreeMemory(child.pid)
    tree.start()
    out, err = child.communicate()
    tree.stop()
    if child.returncode:
        raise subprocess.CalledProcessError(child.returncode, child.args, out, err)
    figures: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    figures["all_processes_peak_mb"] = round(tree.peak_pss_kb / 1024)
    return figures


class _TreeMemory(threading.Thread):
    """The sweep's processes together (it and its decide and side processes), sampled
    every 0.1 s: the largest sum of their proportional set sizes (PSS), so the pages a
    forked child shares with its parent count once, not in each."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_pss_kb = 0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(0.1):
            self.peak_pss_kb = max(self.peak_pss_kb, sum(_pss_kb(p) for p in _tree(self.pid)))

    def stop(self) -> None:
        self._done.set()
        self.join()


def _tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended while listed
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def _pss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass  # ended while sampled
    return 0


def _generated(workdir: Path, n: int, scenario: str = "standard") -> tuple[Path, float | None]:
    sys.path.insert(0, str(ROOT))
    from synthetic.generate import generate_database

    name = f"agency-{n}" if scenario == "standard" else f"agency-{scenario}-{n}"
    path = workdir / f"{name}.db"
    if path.exists():
        return path, None
    tmp = workdir / f"{name}.db.part"
    for p in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
        p.unlink(missing_ok=True)
    campaigns = scenario == "campaigns"
    started = time.perf_counter()
    summary = generate_database(
        str(tmp),
        n,
        seed=42,
        as_of=GEN_AS_OF,
        campaign_instances=CAMPAIGN_INSTANCES if campaigns else 0,
        campaign_share=CAMPAIGN_SHARE,
        followup_initials=round(n * FOLLOWUP_SHARE) if campaigns else 0,
    )
    elapsed = time.perf_counter() - started
    tmp.rename(path)
    if campaigns:
        print(
            f"(campaigns: {summary.campaign_instances} instances, {summary.campaign_targets:,} targets;"
            f" {summary.followup_initials:,} follow-up initials, {summary.existing_followups:,} with"
            f" a follow-up already, {summary.tracking_clicks:,} clicks,"
            f" {summary.contact_events:,} contact events)",
            file=sys.stderr,
        )
    return path, elapsed


def _copy(src: Path, dst: Path) -> Path:
    for p in (dst, Path(f"{dst}-wal"), Path(f"{dst}-shm")):
        p.unlink(missing_ok=True)
    shutil.copyfile(src, dst)
    return dst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", help="contacts per agency, comma-separated (default: 100000,1000000,3000000; campaigns: 1000000)")
    ap.add_argument("--scenario", choices=sorted(DEFAULT_SIZES), default="standard")
    ap.add_argument("--workdir", default=str(ROOT / "var" / "bench"))
    ap.add_argument("--one", nargs=2, metavar=("DB", "AS_OF"), help=argparse.SUPPRESS)
    ap.add_argument("--full-scan", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument(
        "--measure", nargs=2, metavar=("DB", "AS_OF"),
        help="one sweep of DB (changed in place) on AS_OF, in a fresh process; prints its figures as JSON",
    )
    ap.add_argument(
        "--compare", nargs=3, metavar=("REV", "DB", "AS_OF"),
        help="interleaved sweeps of copies of DB on AS_OF: REV's code, then this tree's (see above)",
    )
    ap.add_argument("--runs", type=int, default=3, help="pairs of runs for --compare")
    ap.add_argument("--code", help=argparse.SUPPRESS)  # the checkout a --one child runs
    args = ap.parse_args()
    if args.compare:
        rev, db, as_of = args.compare
        _compare(rev, Path(db), as_of, args.runs, Path(args.workdir))
        return
    if args.measure:
        print(json.dumps(_measure(Path(args.measure[0]), args.measure[1], args.full_scan)))
        return
    if args.one:
        _one(args.one[0], args.one[1], args.full_scan, args.code)
        return
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    header = "| contacts | scenario | sweep s (+ one-time migration) | processed / scanned | rows written | unchanged | moved (cap / ED) | peak RSS MB (main / largest worker) | all processes MB (PSS) |"
    print(header)
    print("|---" * (header.count("|") - 1) + "|")
    per_type: list[tuple[int, str, dict[str, dict[str, int]]]] = []
    for n in (int(x) for x in (args.sizes or DEFAULT_SIZES[args.scenario]).split(",")):
        source, gen_s = _generated(workdir, n, args.scenario)
        if gen_s is not None:
            print(f"(generated {n:,} contacts in {gen_s:.1f} s)", file=sys.stderr)
        db = _copy(source, workdir / "run.db")
        rows = [
            ("outside AEP (2026-03-10)", _measure(db, "2026-03-10")),
            ("next day (2026-03-11)", _measure(db, "2026-03-11")),
        ]
        if args.scenario == "standard":
            db = _copy(source, workdir / "run.db")
            rows.append(("AEP season (2026-09-01)", _measure(db, "2026-09-01")))
        else:
            rows = [(f"campaigns, {name}", r) for name, r in rows]
            per_type += [(n, name, cast(dict[str, dict[str, int]], r["per_type"])) for name, r in rows]
        for name, r in rows:
            print(
                f"| {n:,} | {name} | {r['wall_s']}{_migration_note(r)} | {r['processed']:,} / {r['scanned']:,} | "
                f"{r['written']:,} | {r['unchanged']:,} | {r['moved_cap']:,} / {r['moved_smoothing']:,} | {r['peak_mb']} / {r.get('worker_peak_mb', '?')} | {r['all_processes_peak_mb']} |",
                flush=True,
            )
        for name, r in rows:
            phases = ", ".join(f"{k} {v}" for k, v in dict(r.get("phase_s", {})).items())  # type: ignore[call-overload]
            print(f"    ({n:,}, {name}: {phases}; {r.get('prefilter', '')})", file=sys.stderr)
    print(f"rules: {', '.join(sorted({str(r.get('rules', 'source')) for _, r in rows}))}")
    if per_type:
        print()
        print("| contacts | scenario | email type | pre-scheduled | skipped |")
        print("|---|---|---|---|---|")
        for n, name, counts in per_type:
            for kind, c in sorted(counts.items()):
                print(f"| {n:,} | {name} | {kind} | {c.get('pre-scheduled', 0):,} | {c.get('skipped', 0):,} |")
    for p in workdir.glob("run.db*"):
        p.unlink()


if __name__ == "__main__":
    main()
