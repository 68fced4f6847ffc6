"""The ``mailwindow`` command line.  Names and flags here are a contract other tools rely on.

One module per command, its flags beside its handler (``add_parser(sub)``
declares them and sets ``handler``): ``sweep``, ``explain``, ``gen``,
``checksum``, ``campaign``, ``worker``, ``baseline`` (``publish``),
``replay``, ``send-test-events``, ``serve``.  ``main`` turns every error a user can
cause into one line on stderr and exit code 2.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from sqlalchemy.exc import SQLAlchemyError

from rules.config import ConfigError
from streams.cli import (
    baseline,
    campaign,
    checksum,
    explain,
    gen,
    replay,
    send_test_events,
    serve,
    sweep,
    worker,
)
from streams.cli.common import Parser, UsageError

COMMANDS = (sweep, explain, gen, checksum, campaign, worker, baseline, replay, send_test_events, serve)


def parser() -> Parser:
    p = Parser(prog="mailwindow", description="Compliance-grade email scheduler.")
    sub = p.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from streams.store.engine import StoreError
    from streams.sweep.summary import SweepError

    args = parser().parse_args(argv)
    try:
        result: int = args.handler(args)
        return result
    except (UsageError, ConfigError, StoreError, SweepError) as exc:
        print(f"mailwindow {args.command}: {exc}", file=sys.stderr)
        return 2
    except SQLAlchemyError as exc:
        first = str(exc.orig if hasattr(exc, "orig") and exc.orig else exc).splitlines()[0]
        print(f"mailwindow {args.command}: database error: {first}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"mailwindow {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
