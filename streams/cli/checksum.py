"""`mailwindow checksum`: the digest of the scheduler's decisions, read-only."""

from __future__ import annotations

import argparse

from streams.cli.common import Subparsers, UsageError


def add_parser(sub: Subparsers) -> None:
    c = sub.add_parser("checksum", help="digest of the scheduler's decisions, to compare databases")
    c.add_argument("--db", required=True)
    c.add_argument(
        "--key-order",
        action="store_true",
        help="the digest of versions before 2026-12 (sha256: over the rows in key order), to compare with one they recorded",
    )
    c.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from sqlalchemy import inspect

    from streams.store.checksum import key_order_checksum, schedule_checksum
    from streams.store.engine import open_store

    store = open_store(args.db, read_only=True)  # an auditor's copy: read, never changed
    try:
        with store.engine.connect() as conn:
            if not inspect(conn).has_table("email_schedules"):
                raise UsageError(f"{args.db} has no 'email_schedules' table: not an agency database")
            print(key_order_checksum(conn) if args.key_order else schedule_checksum(conn))
    finally:
        store.close()
    return 0
