"""`mailwindow explain`: say, in plain words, why a contact gets each email."""

from __future__ import annotations

import argparse

from rules.bounds import MAX_LOOKAHEAD_DAYS, MAX_LOOKBACK_DAYS, shown
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
    from sqlalchemy import inspect, text

    from rules.contact import validate_contact
    from rules.explain import explain_contact
    from rules.followup import NO_BEHAVIOUR
    from rules.placement import Horizon
    from streams.config_file import load_config_file
    from streams.store.behaviour import behaviour_since, fetch_behaviour
    from streams.store.campaigns import fetch_targets, load_campaign_book
    from streams.store.engine import open_store
    from streams.store.schedules import fetch_contacts, fetch_rows

    config, _ = load_config_file(args.config)
    horizon = Horizon(date_flag(args.as_of), args.lookahead, args.lookback)
    cid = args.contact
    store = open_store(args.db, read_only=True)  # reading never writes
    try:
        with store.engine.connect() as conn:
            if not inspect(conn).has_table("contacts"):
                raise UsageError(f"{args.db} has no 'contacts' table: not an agency database")
            records = fetch_contacts(conn, [args.contact])
            if not records:
                raise UsageError(f"no contact with id {args.contact} in {args.db}")
            stored = fetch_rows(conn, [cid]).get(cid, [])
            book = load_campaign_book(conn, config).book
            targets, _ = fetch_targets(conn, [cid], (i.id for i in book.instances))
            behaviour = fetch_behaviour(conn, [cid], behaviour_since(horizon.as_of)).get(cid)
            notes = {
                int(r[0]): f"{shown(r[1])} on {shown(r[2])} ({shown(r[3])}){' - ' + shown(r[4]) if r[4] else ''}"
                for r in conn.execute(
                    text(
                        "SELECT id, status, scheduled_send_date, email_type, catchup_note "
                        "FROM email_schedules WHERE contact_id = :c"
                    ),
                    {"c": args.contact},
                )
            }
    finally:
        store.close()
    contact = validate_contact(records[0])
    lines = explain_contact(
        contact,
        [r.existing for r in stored],
        config,
        horizon,
        notes,
        campaigns=book,
        targets=targets.get(cid, ()),
        behaviour=behaviour or NO_BEHAVIOUR,
    )
    print("\n".join(lines))
    if stored:
        print("\nStored rows:")
        for r in stored:
            e = r.existing
            print(f"  row {e.id}: {shown(e.email_type)} {e.send_date} {shown(e.status)} key={shown(e.occurrence_key)}")
    return 0
