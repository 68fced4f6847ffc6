"""`mailwindow send-test-events`: synthetic input events (synthetic/) for demos."""

from __future__ import annotations

import argparse

from streams.cli.common import Subparsers, kafka_errors, kafka_flags, non_negative, share


def add_parser(sub: Subparsers) -> None:
    t = sub.add_parser("send-test-events", help="publish synthetic contact, click and health events")
    kafka_flags(t)
    t.add_argument("--count", type=non_negative, default=1000)
    t.add_argument("--seed", type=int, default=1)
    t.add_argument("--malformed-share", type=share, default=0.01)
    t.add_argument(
        "--partitions", type=non_negative, help="of topics created now (default: the existing ones', else 4)"
    )
    t.set_defaults(handler=run)


@kafka_errors
def run(args: argparse.Namespace) -> int:
    from streams.worker.publish import send_test_events

    sent = send_test_events(
        args.broker, args.prefix, args.count, args.seed, args.malformed_share, args.partitions
    )
    print(f"sent {sent:,} events to {args.broker} (prefix {args.prefix!r})")
    return 0
