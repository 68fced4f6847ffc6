"""`mailwindow sweep`: decide every email in the scheduling window and write it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from rules.bounds import MAX_LOOKAHEAD_DAYS, MAX_LOOKBACK_DAYS
from streams.cli.common import Subparsers, UsageError, at_most, date_flag

if TYPE_CHECKING:
    from rules.config import Config
    from streams.sweep.summary import SweepOptions, SweepSummary


def add_parser(sub: Subparsers) -> None:
    s = sub.add_parser("sweep", help="decide every email in the scheduling window and write it")
    s.add_argument("--db", required=True, help="SQLite path or SQLAlchemy URL")
    s.add_argument("--as-of", help="the date to schedule for (YYYY-MM-DD; default: today, Central)")
    s.add_argument("--config", help="scheduler_config.yaml")
    s.add_argument(
        "--lookahead", type=at_most(MAX_LOOKAHEAD_DAYS, "a sweep decides at most a year ahead"), default=30,
        help=f"days ahead (default 30, at most {MAX_LOOKAHEAD_DAYS})",
    )
    s.add_argument(
        "--lookback", type=at_most(MAX_LOOKBACK_DAYS, "catch-ups reach back at most a year"), default=7,
        help=f"days of catch-up (default 7, at most {MAX_LOOKBACK_DAYS})",
    )
    s.add_argument(
        "--full-scan", action="store_true",
        help="decide every contact (no ledger, no pre-filter; the same rows), refilling the ledger",
    )
    s.add_argument(
        "--take-over", action="store_true",
        help="mark every unfinished sweep failed and run (an operator's override: make sure none runs)",
    )
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.add_argument(
        "--dry-run", action="store_true",
        help="write nothing: run the sweep on a private copy of the database and print what it "
        "would change in the stored schedule (--json: every change)",
    )
    s.add_argument(
        "--scratch", metavar="DIR",
        help="with --dry-run: where the copy goes (needs room for a copy of the database; "
        "default: the system's temporary directory)",
    )
    s.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from streams.config_file import load_config_file
    from streams.store.engine import open_store
    from streams.sweep.run import run_sweep
    from streams.sweep.summary import SweepOptions

    if args.scratch and not args.dry_run:
        raise UsageError("--scratch is where a dry run copies the database: give --dry-run too")
    config, warnings = load_config_file(args.config)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    options = SweepOptions(
        as_of=date_flag(args.as_of),
        lookahead_days=args.lookahead,
        lookback_days=args.lookback,
        full_scan=args.full_scan,
        take_over=args.take_over,
    )
    progress = sys.stderr.isatty() and not args.json
    if args.dry_run:
        return _dry_run(args, config, options, progress)
    store = open_store(args.db)
    try:
        summary = run_sweep(store, config, options, progress=progress)
    finally:
        store.close()
    if args.json:
        sys.stdout.write(orjson.dumps(summary.to_dict()).decode() + "\n")
        return 0
    for line in summary_lines(summary):
        print(line)
    return 0


def _dry_run(args: argparse.Namespace, config: Config, options: SweepOptions, progress: bool) -> int:
    """``--dry-run``: the sweep on a copy (``streams.sweep.preview``); the database opened read-only."""
    from streams.store.engine import open_store
    from streams.sweep.preview import preview_sweep

    store = open_store(args.db, read_only=True)  # the dry run's promise: nothing is written
    try:
        scratch = Path(args.scratch) if args.scratch else None
        with preview_sweep(store, config, options, scratch=scratch, progress=progress) as preview:
            if args.json:
                preview.write_json(sys.stdout)
                return 0
            for line in preview.text_lines(store.target):
                print(line)
            print("the sweep, as run on the copy:")
            for line in summary_lines(preview.summary):
                print(f"  {line}")
    finally:
        store.close()
    return 0


def summary_lines(s: SweepSummary) -> list[str]:
    """What ``mailwindow sweep`` prints of a sweep's summary."""
    lines = [
        f"sweep {s.run_id} as of {s.as_of}: {s.status} in {s.elapsed_s:.1f} s",
        f"  pre-filter: {s.prefilter}",
        f"  contacts: {s.contacts_processed:,} processed of {s.contacts_scanned:,} ({s.contacts_invalid:,} invalid)",
        f"  emails: {s.emails_scheduled:,} pre-scheduled, {s.emails_skipped:,} skipped",
    ]
    width = max((len(t) for t in s.per_type), default=0)
    for email_type, counts in sorted(s.per_type.items()):
        lines.append(
            f"    {email_type:<{width}} {counts.get('pre-scheduled', 0):>9,} pre-scheduled "
            f"{counts.get('skipped', 0):>9,} skipped"
        )
    lines.append(
        f"  rows: {s.rows_inserted:,} inserted, {s.rows_updated:,} updated, "
        f"{s.rows_deleted:,} deleted, {s.rows_unchanged:,} unchanged"
    )
    lines.append(
        f"  balancing: daily cap {s.daily_cap:,} ({s.valid_contacts:,} valid contacts); "
        f"{s.moved_by_smoothing:,} moved by ED smoothing, {s.moved_by_daily_cap:,} by the cap, "
        f"{s.skipped_by_frequency_limit:,} skipped by the frequency limit"
    )
    for ex in s.invalid_examples[:10]:
        lines.append(f"  invalid contact {ex['contact_id']}: {'; '.join(ex['reasons'])}")  # type: ignore[arg-type]
    if s.contacts_invalid > 10:
        lines.append(f"  ... and {s.contacts_invalid - 10:,} more invalid contacts (see --json)")
    if s.warnings:
        lines.append(f"  {s.warnings:,} data warnings, e.g. {s.warning_examples[0]}")
    lines.append(f"  schedules checksum {s.schedules_after_checksum}")
    lines.append(f"  config digest {s.config_digest} (`mailwindow rules --config F` prints the same)")
    return lines
