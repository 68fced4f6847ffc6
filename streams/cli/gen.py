"""`mailwindow gen`: a legacy-schema database of synthetic contacts (synthetic/)."""

from __future__ import annotations

import argparse

from streams.cli.common import Subparsers, UsageError, date_flag, non_negative, share


def add_parser(sub: Subparsers) -> None:
    g = sub.add_parser("gen", help="create a legacy-schema database of synthetic contacts")
    g.add_argument("--db", required=True)
    g.add_argument("--contacts", required=True, type=non_negative)
    g.add_argument("--seed", type=int, default=1)
    g.add_argument("--as-of", help="date the synthetic history is anchored on (default 2026-03-10)")
    g.add_argument("--campaign-instances", type=non_negative, default=0, help="campaign instances to create")
    g.add_argument("--campaign-share", type=share, default=0.10, help="share of contacts targeted (default 0.10)")
    g.add_argument("--followups", type=non_negative, default=0, help="sent emails awaiting follow-ups")
    g.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from synthetic.generate import generate_database

    as_of = date_flag(args.as_of) if args.as_of else None
    if not 0.0 <= args.campaign_share <= 1.0:
        raise UsageError(f"--campaign-share {args.campaign_share} is not between 0 and 1")
    try:
        summary = generate_database(
            args.db,
            args.contacts,
            seed=args.seed,
            as_of=as_of,
            campaign_instances=args.campaign_instances,
            campaign_share=args.campaign_share,
            followup_initials=args.followups,
        )
    except ValueError as exc:  # an argument the generator cannot work with: it says which
        raise UsageError(str(exc)) from None
    extra = (
        f", {summary.campaign_instances} campaign instances, {summary.campaign_targets:,} targets, "
        f"{summary.followup_initials:,} emails awaiting follow-ups, {summary.tracking_clicks:,} clicks, "
        f"{summary.contact_events:,} events"
        if summary.campaign_instances or summary.followup_initials
        else ""
    )
    print(
        f"created {args.db}: {summary.contacts:,} contacts ({summary.invalid_contacts:,} invalid), "
        f"{summary.history_rows:,} history rows{extra} in {summary.elapsed_s:.1f} s"
    )
    return 0
