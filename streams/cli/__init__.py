"""The ``mailwindow`` command line.  Names and flags here are a contract other tools rely on.

One module per command, its flags beside its handler (``add_parser(sub)``
declares them and sets ``handler``): ``sweep``, ``explain``, ``gen``,
``rules``, ``checksum``, ``copy``, ``campaign``, ``worker``, ``baseline``
(``publish``), ``replay``, ``send-test-events``, ``serve``.  ``main`` turns every error a user can
cause into one line on stderr and exit code 2.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from rules.config import ConfigError
from streams.cli import (
    baseline,
    campaign,
    checksum,
    copy,
    explain,
    gen,
    replay,
    rules,
    send_test_events,
    serve,
    sweep,
    worker,
)
from streams.cli.common import Parser, UsageError

COMMANDS = (sweep, explain, rules, gen, checksum, copy, campaign, worker, baseline, replay, send_test_events, serve)


def parser() -> Parser:
    p = Parser(prog="mailwindow", description="Compliance-grade email scheduler.")
    sub = p.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    return p


def _loaded(module: str, name: str) -> tuple[type[BaseException], ...]:
    """The error class ``module.name`` when this run imported that module, else nothing: an
    error of a module never imported cannot have been raised, and importing one only to
    name its errors costs a short command (explain, checksum) part of its start."""
    found = sys.modules.get(module)
    return (getattr(found, name),) if found is not None else ()


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)  # --help and usage errors end here, before any heavy import
    try:
        result: int = args.handler(args)
        return result
    except Exception as exc:
        user_errors = (
            UsageError,
            ConfigError,
            *_loaded("streams.store.engine", "StoreError"),
            *_loaded("streams.sweep.summary", "SweepError"),
        )
        if isinstance(exc, user_errors):
            print(f"mailwindow {args.command}: {exc}", file=sys.stderr)
            return 2
        if isinstance(exc, _loaded("sqlalchemy.exc", "SQLAlchemyError")):
            orig = getattr(exc, "orig", None)
            first = str(orig or exc).splitlines()[0]
            print(f"mailwindow {args.command}: database error: {first}", file=sys.stderr)
            return 2
        if isinstance(exc, BrokenPipeError):
            # The reader went away (e.g. `| head`): not an error of ours.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
        raise
    except KeyboardInterrupt:
        print(f"mailwindow {args.command}: interrupted", file=sys.stderr)
        return 130
