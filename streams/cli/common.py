"""What the commands share: the one-line refusal, argument types with their documented ranges, Kafka flags.

Each command is a module of this package with its flags beside its handler
(``add_parser(sub)`` declares them and sets ``handler``); ``streams.cli``
assembles them and turns every error a user can cause into one line.
"""

from __future__ import annotations

import argparse
import os
from datetime import date
from pathlib import Path
from typing import Any, NoReturn

from rules.bounds import FIRST_DATE, LAST_DATE, MAX_ID, excerpt
from streams.events.times import today_central

Subparsers = argparse._SubParsersAction  # what add_parser(sub) receives


class UsageError(ValueError):
    pass


class Parser(argparse.ArgumentParser):
    """argparse, with a refused argument said in one line (``--help`` shows the usage)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def date_flag(raw: str | None, flag: str = "--as-of") -> date:
    if raw is None:
        return today_central()
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise UsageError(f"{flag} {excerpt(raw)} is not a date (YYYY-MM-DD)") from None
    if not FIRST_DATE <= day <= LAST_DATE:
        raise UsageError(f"{flag} {raw} is outside the dates the scheduler decides about ({FIRST_DATE}..{LAST_DATE})")
    return day


def whole(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{excerpt(raw)} is not a whole number") from None


def non_negative(raw: str) -> int:
    value = whole(raw)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{excerpt(raw)} is negative")
    if value > MAX_ID:
        raise argparse.ArgumentTypeError(f"{excerpt(raw)} is too large (at most {MAX_ID})")
    return value


def at_most(maximum: int, what: str) -> Any:
    def parse(raw: str) -> int:
        value = non_negative(raw)
        if value > maximum:
            raise argparse.ArgumentTypeError(f"{excerpt(raw)} is more than {maximum} ({what})")
        return value

    return parse


def between(low: float, high: float, unit: str = "") -> Any:
    """A number within ``low..high`` (NaN and infinity are not)."""

    def parse(raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{excerpt(raw)} is not a number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{excerpt(raw)} is not between {low:g} and {high:g}{unit}")
        return value

    return parse


def id_arg(raw: str) -> int:
    value = whole(raw)
    if not 1 <= value <= MAX_ID:
        raise argparse.ArgumentTypeError(f"{excerpt(raw)} is not an id (1..{MAX_ID})")
    return value


def default_state_dir(app_id: str) -> Path:
    """Per-user state of a worker: never the current directory (a checkout, say)."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "mailwindow" / app_id


def snapshot_dir(given: str | None, db: str, fallback: Path) -> Path:
    if given:
        return Path(given)
    if "://" not in db:
        path = Path(db)
        return path.parent / f"{path.name}.baselines"
    return fallback / "baselines"


def kafka_errors(command: Any) -> Any:
    """A broker that cannot be reached, or topics that do not fit: one line, exit 2."""

    def run(args: argparse.Namespace) -> int:
        from aiokafka.errors import KafkaConnectionError, KafkaError

        from streams.worker.replay import ReplayError
        from streams.worker.topics import CoPartitioningError, TopicCreationError

        if args.command != "worker":  # its log is configured; elsewhere the client's chatter is noise
            import logging

            logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
        try:
            result: int = command(args)
            return result
        except KafkaConnectionError:
            raise UsageError(f"cannot reach the Kafka broker at {args.broker}") from None
        except (CoPartitioningError, TopicCreationError, ReplayError) as exc:
            raise UsageError(str(exc)) from None
        except KafkaError as exc:
            raise UsageError(f"Kafka at {args.broker}: {type(exc).__name__}: {exc}") from None

    return run



share = between(0.0, 1.0)
seconds = between(0.1, 86400.0, " seconds")


def kafka_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--broker", required=True, help="Kafka bootstrap host:port")
    p.add_argument("--prefix", default="", help="topic prefix of the agency, e.g. 'org206.'")
