"""`mailwindow baseline` (and its former name `publish`): record the database as the audit baseline."""

from __future__ import annotations

import argparse
from pathlib import Path

from streams.cli.common import (
    Subparsers,
    date_flag,
    kafka_errors,
    kafka_flags,
    non_negative,
    snapshot_dir,
)


def add_parser(sub: Subparsers) -> None:
    for name, what in (
        ("baseline", "record the database as the deployment's audit baseline (snapshot + record)"),
        ("publish", "the same as 'baseline' (its former name)"),
    ):
        b = sub.add_parser(name, help=what)
        kafka_flags(b)
        b.add_argument("--db", required=True, help="SQLite path or SQLAlchemy URL")
        b.add_argument("--config", help="the worker's config, recorded for replay")
        b.add_argument("--as-of", help="decision day until the first sweep (default today, Central)")
        b.add_argument("--snapshot-dir", help="where the snapshot goes (default: beside an SQLite database)")
        b.add_argument("--partitions", type=non_negative, help="of topics created now (default 4)")
        b.set_defaults(handler=run)


@kafka_errors
def run(args: argparse.Namespace) -> int:
    from streams.config_file import load_config_file
    from streams.store.engine import open_store
    from streams.worker.baseline import record_baseline
    from streams.worker.publish import publish_outbox

    config, _ = load_config_file(args.config)
    as_of = date_flag(args.as_of)
    store = open_store(args.db)
    try:
        store.migrate()
        b = record_baseline(store, config, as_of, snapshot_dir(args.snapshot_dir, args.db, Path.cwd()))
        published = publish_outbox(store, args.broker, args.prefix, args.partitions)
    finally:
        store.close()
    r = b.record
    print(
        f"baseline {b.baseline_id}: decision day {r['as_of']}, schedules {r['schedules_checksum']}\n"
        f"  snapshot {r['snapshot']['path']} ({r['snapshot']['sha256']}): archive it with the topics\n"
        f"  {published} record(s) published to {args.broker} (prefix {args.prefix!r})"
    )
    return 0
