"""`mailwindow sweep`: decide every email in the scheduling window and write it."""

from __future__ import annotations

import argparse
import sys

import orjson

from rules.bounds import MAX_LOOKAHEAD_DAYS, MAX_LOOKBACK_DAYS
from streams.cli.common import Subparsers, at_most, date_flag


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
    s.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from streams.config_file import load_config_file
    from streams.store.engine import open_store
    from streams.sweep.run import run_sweep
    from streams.sweep.summary import SweepOptions

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
    store = open_store(args.db)
    try:
        summary = run_sweep(store, config, options, progress=sys.stderr.isatty() and not args.json)
    finally:
        store.close()
    if args.json:
        sys.stdout.write(orjson.dumps(summary.to_dict()).decode() + "\n")
        return 0
    s = summary
    print(f"sweep {s.run_id} as of {s.as_of}: {s.status} in {s.elapsed_s:.1f} s")
    print(f"  pre-filter: {s.prefilter}")
    print(
        f"  contacts: {s.contacts_processed:,} processed of {s.contacts_scanned:,} "
        f"({s.contacts_invalid:,} invalid)"
    )
    print(f"  emails: {s.emails_scheduled:,} pre-scheduled, {s.emails_skipped:,} skipped")
    width = max((len(t) for t in s.per_type), default=0)
    for email_type, counts in sorted(s.per_type.items()):
        print(
            f"    {email_type:<{width}} {counts.get('pre-scheduled', 0):>9,} pre-scheduled "
            f"{counts.get('skipped', 0):>9,} skipped"
        )
    print(
        f"  rows: {s.rows_inserted:,} inserted, {s.rows_updated:,} updated, "
        f"{s.rows_deleted:,} deleted, {s.rows_unchanged:,} unchanged"
    )
    print(
        f"  balancing: daily cap {s.daily_cap:,} ({s.valid_contacts:,} valid contacts); "
        f"{s.moved_by_smoothing:,} moved by ED smoothing, {s.moved_by_daily_cap:,} by the cap, "
        f"{s.skipped_by_frequency_limit:,} skipped by the frequency limit"
    )
    for ex in s.invalid_examples[:10]:
        print(f"  invalid contact {ex['contact_id']}: {'; '.join(ex['reasons'])}")  # type: ignore[arg-type]
    if s.contacts_invalid > 10:
        print(f"  ... and {s.contacts_invalid - 10:,} more invalid contacts (see --json)")
    if s.warnings:
        print(f"  {s.warnings:,} data warnings, e.g. {s.warning_examples[0]}")
    print(f"  schedules checksum {s.schedules_after_checksum}")
    return 0
