"""`mailwindow copy`: a whole agency database into another, e.g. from SQLite to PostgreSQL
(``streams.store.copy``); run again after an interruption, it continues."""

from __future__ import annotations

import argparse
import json
import sys

from streams.cli.common import Subparsers, at_most


def add_parser(sub: Subparsers) -> None:
    c = sub.add_parser(
        "copy",
        help="copy a whole agency database (SQLite <-> PostgreSQL), checked by row counts and checksum",
    )
    c.add_argument("--from", dest="source", required=True, metavar="SRC",
                   help="SQLite path or SQLAlchemy URL, read in one moment and never written")
    c.add_argument("--to", dest="target", required=True, metavar="DST",
                   help="SQLite path (created when missing) or URL of an empty database")
    c.add_argument("--force", action="store_true",
                   help="empty DST's tables first (refused otherwise when it has rows)")
    c.add_argument("--json", action="store_true", help="one JSON object instead of lines")
    c.add_argument("--page-rows", type=at_most(1_000_000, "rows per page"), default=None, metavar="N",
                   help="rows per committed page (default 5000)")
    c.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from streams.cli.common import UsageError
    from streams.store.copy import PAGE_ROWS, copy_agency

    if args.page_rows == 0:
        raise UsageError("--page-rows must be at least 1")

    def table_line(table: str, rows: int, copied: int, seconds: float) -> None:
        resumed = f" ({copied:,} by this run)" if copied != rows else ""
        print(f"{table:<24} {rows:>12,} rows{resumed}  {seconds:8.2f} s", flush=True)

    try:
        report = copy_agency(
            args.source,
            args.target,
            force=args.force,
            page_rows=args.page_rows or PAGE_ROWS,
            on_table=None if args.json else table_line,
        )
    except KeyboardInterrupt:
        print("mailwindow copy: interrupted: the same command continues the copy", file=sys.stderr)
        return 130
    differences = report.differences
    if args.json:
        print(json.dumps(report.to_dict()))
    else:
        print(f"source checksum {report.source_checksum}")
        print(f"target checksum {report.target_checksum}")
        if not differences:
            print(
                f"copied {report.source} into {report.target}: {len(report.tables)} tables,"
                f" {sum(t.source_rows for t in report.tables):,} rows, the same row counts and checksum"
                f" ({report.seconds:.1f} s{', resumed' if report.resumed else ''})"
            )
    if differences:
        print(f"mailwindow copy: the copy differs from the source: {'; '.join(differences)}", file=sys.stderr)
        return 1
    return 0
