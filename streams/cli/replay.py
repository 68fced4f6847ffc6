"""`mailwindow replay`: the live database rebuilt from the audit record; prints its checksum."""

from __future__ import annotations

import argparse

from streams.cli.common import Subparsers, UsageError, kafka_errors, kafka_flags


def add_parser(sub: Subparsers) -> None:
    r = sub.add_parser("replay", help="rebuild the live database from the audit record; print its checksum")
    kafka_flags(r)
    r.add_argument("--db", required=True, help="a new SQLite file")
    r.add_argument("--baseline", help="the baseline to start from (default: the latest)")
    r.add_argument("--snapshot", help="the baseline's snapshot file, when not where it was recorded")
    r.add_argument("--until", help="apply events up to this time (RFC 3339)")
    r.set_defaults(handler=run)


@kafka_errors
def run(args: argparse.Namespace) -> int:
    from streams.events.schema import EventError
    from streams.events.times import parse_datetime
    from streams.worker.replay import replay

    until = None
    if args.until:
        try:
            until = parse_datetime(args.until)
        except (EventError, ValueError):
            raise UsageError(f"--until {args.until!r} is not an RFC 3339 time with offset") from None
    print(replay(args.broker, args.prefix, args.db, until, args.baseline, args.snapshot))
    return 0
