"""`mailwindow serve`: the ops console (read-only pages, their JSON twins, /metrics) and the
email provider's delivery webhook, on 127.0.0.1 unless told otherwise."""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

from streams.cli.common import Subparsers, UsageError, at_most, date_flag

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def add_parser(sub: Subparsers) -> None:
    s = sub.add_parser("serve", help="the ops console: dashboard, contacts, campaigns, sweeps; delivery webhook")
    s.add_argument("--db", required=True, help="SQLite path or SQLAlchemy URL")
    s.add_argument("--broker", help="Kafka bootstrap host:port: webhook events go to the topics; lag and dead letters shown")
    s.add_argument("--prefix", default="", help="topic prefix of the agency, e.g. 'org206.' (with --broker)")
    s.add_argument("--app-id", default="mailwindow", help="the worker's Faust app id (consumer group), for its lag")
    s.add_argument("--config", help="scheduler_config.yaml")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    s.add_argument("--port", type=at_most(65535, "a TCP port"), default=8080, help="default 8080")
    s.add_argument(
        "--webhook-secret-env", default="MAILWINDOW_WEBHOOK_SECRET",
        help="the environment variable holding the webhook's HMAC secret (default MAILWINDOW_WEBHOOK_SECRET; "
        "unset: the webhook refuses every request)",
    )
    s.add_argument("--today", help="the console's today, YYYY-MM-DD (demos and tests; default: today, Central)")
    s.add_argument(
        "--scratch", metavar="DIR",
        help="where the /preview page copies the database for a dry run (needs room for a copy; "
        "default: the system's temporary directory)",
    )
    s.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from streams.config_file import load_config_file
    from streams.console.app import ConsoleOptions, make_app
    from streams.console.queries import missing_schema
    from streams.store.engine import open_store

    if args.prefix and not args.broker:
        raise UsageError("--prefix names the topics of a broker: give --broker too")
    if not _ENV_NAME.match(args.webhook_secret_env):
        raise UsageError(f"--webhook-secret-env {args.webhook_secret_env!r} is not an environment variable name")
    today = date_flag(args.today, "--today") if args.today else None
    config, warnings = load_config_file(args.config)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    secret = os.environ.get(args.webhook_secret_env)
    # Without a broker the webhook applies batches itself: it gets the one writable store,
    # which also adds what an older database lacks (as the worker and the sweep do).
    webhook_store = None
    if not args.broker:
        webhook_store = open_store(args.db)
        webhook_store.migrate()
    store = open_store(args.db, read_only=True)  # every page reads through this: reading never writes
    try:
        with store.engine.connect() as conn:
            missing = missing_schema(conn)
        if missing:
            raise UsageError(
                f"{args.db} lacks {', '.join(missing[:5])}: run `mailwindow sweep` or the worker on it first"
            )
        options = ConsoleOptions(
            today=today,
            broker=args.broker,
            prefix=args.prefix,
            app_id=args.app_id,
            webhook_secret=secret.encode() if secret else None,
            webhook_secret_env=args.webhook_secret_env,
            scratch=Path(args.scratch) if args.scratch else None,
        )
        app = make_app(store, config, options, webhook_store=webhook_store)
        if not secret:
            print(f"warning: {args.webhook_secret_env} is not set: the delivery webhook refuses every request", file=sys.stderr)
        print(f"mailwindow console on http://{_shown_host(args.host)}:{args.port}/ (Ctrl-C stops it)", file=sys.stderr)
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning", server_header=False)
    finally:
        store.close()
        if webhook_store is not None:
            webhook_store.close()
    return 0


def _shown_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
