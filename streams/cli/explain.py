"""`mailwindow explain`: say, in plain words, why a contact gets each email."""

from __future__ import annotations

import argparse

from rules.bounds import MAX_LOOKAHEAD_DAYS, MAX_LOOKBACK_DAYS
from streams.cli.common import Subparsers, UsageError, at_most, date_flag, id_arg


def add_parser(sub: Subparsers) -> None:
    e = sub.add_parser("explain", help="say, in plain words, why a contact gets each email")
    e.add_argument("--db", required=True)
    e.add_argument("--contact", required=True, type=id_arg)
    e.add_argument("--as-of")
    e.add_argument("--config")
    e.add_argument("--lookahead", type=at_most(MAX_LOOKAHEAD_DAYS, "at most a year ahead"), default=30)
    e.add_argument("--lookback", type=at_most(MAX_LOOKBACK_DAYS, "at most a year back"), default=7)
    e.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from rules.placement import Horizon
    from streams.admin.contact_view import NoSuchContact, NotAnAgencyDatabase, gather_contact
    from streams.config_file import load_config_file
    from streams.store.engine import open_store

    config, _ = load_config_file(args.config)
    horizon = Horizon(date_flag(args.as_of), args.lookahead, args.lookback)
    store = open_store(args.db, read_only=True)  # reading never writes
    try:
        with store.engine.connect() as conn:
            facts = gather_contact(conn, args.contact, config, horizon)
    except NotAnAgencyDatabase:
        raise UsageError(f"{args.db} has no 'contacts' table: not an agency database") from None
    except NoSuchContact:
        raise UsageError(f"no contact with id {args.contact} in {args.db}") from None
    finally:
        store.close()
    # The same lines the console's contact page shows (streams.admin.contact_view).
    print("\n".join(facts.explanation()))
    for line in (*facts.stored_row_lines(), *facts.ledger_lines()):
        print(line)
    return 0
