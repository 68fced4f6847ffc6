"""`mailwindow worker`: the stream worker (agents on the input topics, the daily sweep)."""

from __future__ import annotations

import argparse
from pathlib import Path

from streams.cli.common import (
    Subparsers,
    UsageError,
    at_most,
    between,
    date_flag,
    default_state_dir,
    kafka_errors,
    kafka_flags,
    non_negative,
    seconds,
    snapshot_dir,
)


def add_parser(sub: Subparsers) -> None:
    w = sub.add_parser("worker", help="run the stream worker: agents on the input topics, daily sweep")
    kafka_flags(w)
    w.add_argument("--db", required=True, help="SQLite path or SQLAlchemy URL")
    w.add_argument("--config")
    w.add_argument("--partitions", type=non_negative, default=4, help="of the contact-keyed topics")
    w.add_argument(
        "--sweep-cron", default="30 3 * * *",
        help="when the daily sweep is due (cron, default 03:30); 'off': no automatic sweep",
    )
    w.add_argument("--timezone", default="America/Chicago", help="of --sweep-cron (default Central)")
    w.add_argument("--sweep-interval", type=seconds, help="also sweep every N seconds (demos, tests)")
    w.add_argument(
        "--today", help="the worker's today, YYYY-MM-DD (demos and tests of past dates; default: the real one)"
    )
    w.add_argument("--app-id", default="mailwindow", help="Faust app id (consumer group)")
    w.add_argument(
        "--datadir", help="Faust's local state directory (default ~/.local/state/mailwindow/APP_ID)"
    )
    w.add_argument(
        "--snapshot-dir",
        help="where the audit baseline's snapshot goes when the worker records one "
        "(default: a folder beside an SQLite database, else in --datadir)",
    )
    w.add_argument(
        "--health-port", type=at_most(65535, "a TCP port"),
        help="serve GET /health/live and /health/ready on this port (0: any free port, printed); "
        "default: not served",
    )
    w.add_argument(
        "--health-host", default="127.0.0.1",
        help="address of the health endpoints (default 127.0.0.1; 0.0.0.0 in a container)",
    )
    w.add_argument(
        "--stop-timeout", type=between(1.0, 3600.0, " seconds"), default=30.0,
        help="a stop (SIGTERM) taking longer ends the process with exit code 1 (default 30 s)",
    )
    w.add_argument(
        "--log-level", default="warning", choices=("debug", "info", "warning", "error"),
        help="of the worker's log on stderr (info: Faust's rebalances, recoveries and commits)",
    )
    w.set_defaults(handler=run)


@kafka_errors
def run(args: argparse.Namespace) -> int:
    import logging

    from croniter import croniter

    from streams.config_file import load_config_file
    from streams.store.engine import open_store
    from streams.worker.app import HealthEndpoint, WorkerSettings, run_worker
    from streams.worker.health import HealthPortError

    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    cron = None if args.sweep_cron == "off" else args.sweep_cron
    if cron is not None and not croniter.is_valid(cron):
        raise UsageError(f"--sweep-cron {args.sweep_cron!r} is not a cron expression (or 'off')")
    today = date_flag(args.today, "--today") if args.today else None
    config, _ = load_config_file(args.config)
    datadir = Path(args.datadir) if args.datadir else default_state_dir(args.app_id)
    store = open_store(args.db)
    try:
        store.migrate()
        datadir.mkdir(parents=True, exist_ok=True)
        settings = WorkerSettings(
            broker=args.broker,
            store=store,
            config=config,
            prefix=args.prefix,
            partitions=args.partitions or 1,
            sweep_cron=cron,
            sweep_timezone=args.timezone,
            app_id=args.app_id,
            today=today,
            snapshot_dir=snapshot_dir(args.snapshot_dir, args.db, datadir),
            extra={"datadir": str(datadir)},
        )
        health = None if args.health_port is None else HealthEndpoint(args.health_port, args.health_host)
        try:
            run_worker(settings, args.sweep_interval, health=health, stop_timeout_s=args.stop_timeout)
        except HealthPortError as exc:
            raise UsageError(str(exc)) from None
    finally:
        store.close()
    return 0
