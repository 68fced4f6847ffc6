"""`mailwindow rules`: the state rules in force on a date, each with its dates and source."""

from __future__ import annotations

import argparse

import orjson

from streams.cli.common import Subparsers, UsageError, date_flag


def add_parser(sub: Subparsers) -> None:
    r = sub.add_parser("rules", help="the state rules in force on a date, with their dates and sources")
    r.add_argument("--as-of", help="the date (YYYY-MM-DD; default: today, Central)")
    r.add_argument("--all", action="store_true", help="every version, whatever its dates (not with --as-of)")
    r.add_argument("--state", help="one state (USPS code)")
    r.add_argument("--config", help="scheduler_config.yaml (default: the SPEC defaults)")
    r.add_argument("--json", action="store_true", help="print one JSON object")
    r.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from rules.config import config_digest
    from rules.rule_table import rule_table
    from rules.zip_state import USPS_CODES
    from streams.config_file import load_config_file

    if args.all and args.as_of:
        raise UsageError("--all lists every version: give it without --as-of")
    state = None
    if args.state is not None:
        state = args.state.strip().upper()
        if state not in USPS_CODES:
            raise UsageError(f"--state {args.state!r} is not a USPS state code")
    config, warnings = load_config_file(args.config)
    as_of = None if args.all else date_flag(args.as_of)
    lines = rule_table(config, as_of, state)
    digest = config_digest(config)
    if args.json:
        out = {
            "as_of": as_of.isoformat() if as_of else None,
            "config": args.config,
            "config_digest": digest,
            "warnings": warnings,
            "rules": [line.to_dict() for line in lines],
        }
        print(orjson.dumps(out).decode())
        return 0
    when = "every version" if as_of is None else f"in force on {as_of}"
    print(f"State rules {when} ({args.config or 'SPEC defaults'}; config digest {digest}):")
    if not lines:
        print(f"  none{' for ' + state if state else ''}: no window, no date excluded")
    kind_words = {"birthday": "birthday", "effective_date": "effective date", "year_round": "year-round"}
    for line in lines:
        print(
            f"  {line.state}  {kind_words[line.kind]:<14}  {line.window:<58}  "
            f"in force {line.in_force:<24}  {line.ages}"
        )
        print(f"      source: {line.rule.source or 'none given by the config'}")
        if line.rule.note:
            print(f"      note: {line.rule.note}")
    return 0
