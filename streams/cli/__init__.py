"""The ``mailwindow`` command line.  Names and flags here are a contract other tools rely on."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any, NoReturn
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy.exc import SQLAlchemyError

from rules.bounds import (
    FIRST_DATE,
    LAST_DATE,
    MAX_ID,
    MAX_LOOKAHEAD_DAYS,
    MAX_LOOKBACK_DAYS,
    excerpt,
    shown,
)
from rules.config import MAX_PRIORITY, ConfigError

CENTRAL = ZoneInfo("America/Chicago")


class UsageError(ValueError):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse, with a refused argument said in one line (``--help`` shows the usage)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _as_of(raw: str | None, flag: str = "--as-of") -> date:
    if raw is None:
        return datetime.now(CENTRAL).date()  # SPEC 1: default is today in Central Time
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise UsageError(f"{flag} {excerpt(raw)} is not a date (YYYY-MM-DD)") from None
    if not FIRST_DATE <= day <= LAST_DATE:
        raise UsageError(f"{flag} {raw} is outside the dates the scheduler decides about ({FIRST_DATE}..{LAST_DATE})")
    return day


def _whole(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{excerpt(raw)} is not a whole number") from None


def _non_negative(raw: str) -> int:
    value = _whole(raw)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{excerpt(raw)} is negative")
    if value > MAX_ID:
        raise argparse.ArgumentTypeError(f"{excerpt(raw)} is too large (at most {MAX_ID})")
    return value


def _at_most(maximum: int, what: str) -> Any:
    def parse(raw: str) -> int:
        value = _non_negative(raw)
        if value > maximum:
            raise argparse.ArgumentTypeError(f"{excerpt(raw)} is more than {maximum} ({what})")
        return value

    return parse


def _between(low: float, high: float, unit: str = "") -> Any:
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


_share = _between(0.0, 1.0)
_seconds = _between(0.1, 86400.0, " seconds")


def _id(raw: str) -> int:
    value = _whole(raw)
    if not 1 <= value <= MAX_ID:
        raise argparse.ArgumentTypeError(f"{excerpt(raw)} is not an id (1..{MAX_ID})")
    return value


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="mailwindow", description="Compliance-grade email scheduler.")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("sweep", help="decide every email in the scheduling window and write it")
    s.add_argument("--db", required=True, help="SQLite path or SQLAlchemy URL")
    s.add_argument("--as-of", help="the date to schedule for (YYYY-MM-DD; default: today, Central)")
    s.add_argument("--config", help="scheduler_config.yaml")
    s.add_argument(
        "--lookahead", type=_at_most(MAX_LOOKAHEAD_DAYS, "a sweep decides at most a year ahead"), default=30,
        help=f"days ahead (default 30, at most {MAX_LOOKAHEAD_DAYS})",
    )
    s.add_argument(
        "--lookback", type=_at_most(MAX_LOOKBACK_DAYS, "catch-ups reach back at most a year"), default=7,
        help=f"days of catch-up (default 7, at most {MAX_LOOKBACK_DAYS})",
    )
    s.add_argument("--full-scan", action="store_true", help="process every contact (no pre-filter)")
    s.add_argument(
        "--take-over", action="store_true",
        help="mark every unfinished sweep failed and run (an operator's override: make sure none runs)",
    )
    s.add_argument("--json", action="store_true", help="print one JSON object")

    e = sub.add_parser("explain", help="say, in plain words, why a contact gets each email")
    e.add_argument("--db", required=True)
    e.add_argument("--contact", required=True, type=_id)
    e.add_argument("--as-of")
    e.add_argument("--config")
    e.add_argument("--lookahead", type=_at_most(MAX_LOOKAHEAD_DAYS, "at most a year ahead"), default=30)
    e.add_argument("--lookback", type=_at_most(MAX_LOOKBACK_DAYS, "at most a year back"), default=7)

    g = sub.add_parser("gen", help="create a legacy-schema database of synthetic contacts")
    g.add_argument("--db", required=True)
    g.add_argument("--contacts", required=True, type=_non_negative)
    g.add_argument("--seed", type=int, default=1)
    g.add_argument("--as-of", help="date the synthetic history is anchored on (default 2026-03-10)")
    g.add_argument("--campaign-instances", type=_non_negative, default=0, help="campaign instances to create")
    g.add_argument("--campaign-share", type=_share, default=0.10, help="share of contacts targeted (default 0.10)")
    g.add_argument("--followups", type=_non_negative, default=0, help="sent emails awaiting follow-ups")

    c = sub.add_parser("checksum", help="digest of the scheduler's decisions, to compare databases")
    c.add_argument("--db", required=True)

    _campaign_parser(sub)
    _event_parsers(sub)
    return p


def _event_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    def kafka(p: argparse.ArgumentParser) -> None:
        p.add_argument("--broker", required=True, help="Kafka bootstrap host:port")
        p.add_argument("--prefix", default="", help="topic prefix of the agency, e.g. 'org206.'")

    w = sub.add_parser("worker", help="run the stream worker: agents on the input topics, daily sweep")
    kafka(w)
    w.add_argument("--db", required=True, help="SQLite path or SQLAlchemy URL")
    w.add_argument("--config")
    w.add_argument("--partitions", type=_non_negative, default=4, help="of the contact-keyed topics")
    w.add_argument(
        "--sweep-cron", default="30 3 * * *",
        help="when the daily sweep is due (cron, default 03:30); 'off': no automatic sweep",
    )
    w.add_argument("--timezone", default="America/Chicago", help="of --sweep-cron (default Central)")
    w.add_argument("--sweep-interval", type=_seconds, help="also sweep every N seconds (demos, tests)")
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
        "--log-level", default="warning", choices=("debug", "info", "warning", "error"),
        help="of the worker's log on stderr (info: Faust's rebalances, recoveries and commits)",
    )

    for name, what in (
        ("baseline", "record the database as the deployment's audit baseline (snapshot + record)"),
        ("publish", "the same as 'baseline' (its former name)"),
    ):
        b = sub.add_parser(name, help=what)
        kafka(b)
        b.add_argument("--db", required=True, help="SQLite path or SQLAlchemy URL")
        b.add_argument("--config", help="the worker's config, recorded for replay")
        b.add_argument("--as-of", help="decision day until the first sweep (default today, Central)")
        b.add_argument("--snapshot-dir", help="where the snapshot goes (default: beside an SQLite database)")
        b.add_argument("--partitions", type=_non_negative, help="of topics created now (default 4)")

    r = sub.add_parser("replay", help="rebuild the live database from the audit record; print its checksum")
    kafka(r)
    r.add_argument("--db", required=True, help="a new SQLite file")
    r.add_argument("--baseline", help="the baseline to start from (default: the latest)")
    r.add_argument("--snapshot", help="the baseline's snapshot file, when not where it was recorded")
    r.add_argument("--until", help="apply events up to this time (RFC 3339)")

    t = sub.add_parser("send-test-events", help="publish synthetic contact, click and health events")
    kafka(t)
    t.add_argument("--count", type=_non_negative, default=1000)
    t.add_argument("--seed", type=int, default=1)
    t.add_argument("--malformed-share", type=_share, default=0.01)
    t.add_argument(
        "--partitions", type=_non_negative, help="of topics created now (default: the existing ones', else 4)"
    )


def _campaign_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``mailwindow campaign ...`` (SPEC 8); the work is streams/campaign_admin.py's."""
    cp = sub.add_parser("campaign", help="manage campaign types, instances, dates and targets")
    csub = cp.add_subparsers(dest="campaign_command", required=True)

    t = csub.add_parser("type", help="create a campaign type or change the given fields of it")
    t.add_argument("--db", required=True)
    t.add_argument("--config", help="scheduler_config.yaml (a new type starts from its values)")
    t.add_argument("name", help="lower-case letters, digits and _")
    t.add_argument(
        "--priority", type=_at_most(MAX_PRIORITY, "lower is more important"), dest="priority", metavar="N",
    )
    t.add_argument(
        "--days-before", type=_whole, dest="days_before_event", metavar="N",
        help="days before the trigger date (negative: after it)",
    )
    for on, off, dest in (
        ("--respect-windows", "--ignore-windows", "respect_exclusion_windows"),
        ("--followups", "--no-followups", "enable_followups"),
        ("--target-all", "--no-target-all", "target_all_contacts"),
        ("--active", "--inactive", "active"),
    ):
        group = t.add_mutually_exclusive_group()
        group.add_argument(on, dest=dest, action="store_const", const=True, default=None)
        group.add_argument(off, dest=dest, action="store_const", const=False, default=None)

    i = csub.add_parser("instance", help="create a campaign instance; prints its id")
    i.add_argument("--db", required=True)
    i.add_argument("--config")
    i.add_argument("type", help="campaign type (table campaign_types or the config)")
    i.add_argument("name", help="instance name, unique within its type")
    i.add_argument("--start", help="active start date YYYY-MM-DD")
    i.add_argument("--end", help="active end date YYYY-MM-DD")
    i.add_argument("--email-template")
    i.add_argument("--sms-template")
    i.add_argument("--metadata", help="JSON")

    d = csub.add_parser("dates", help="change an instance's active dates (logged)")
    d.add_argument("--db", required=True)
    d.add_argument("--config")
    d.add_argument("instance_id", type=_id)
    d.add_argument("--start", help="YYYY-MM-DD, or none to clear")
    d.add_argument("--end", help="YYYY-MM-DD, or none to clear")
    d.add_argument("--by", help="who made the change (default: the OS user)")
    d.add_argument("--apply", action="store_true", help="reschedule the targets now (a sweep)")
    d.add_argument("--as-of", help="the --apply sweep's date (default: today, Central)")

    g = csub.add_parser("targets", help="import targets from CSV contact_id,trigger_date[,metadata]")
    g.add_argument("--db", required=True)
    g.add_argument("instance_id", type=_id)
    g.add_argument("file", help="CSV file")

    lst = csub.add_parser("list", help="campaign types and instances")
    lst.add_argument("--db", required=True)
    lst.add_argument("--config")


def _cmd_sweep(args: argparse.Namespace) -> int:
    from streams.config_file import load_config_file
    from streams.store.engine import open_store
    from streams.sweep.run import SweepOptions, run_sweep

    config, warnings = load_config_file(args.config)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    options = SweepOptions(
        as_of=_as_of(args.as_of),
        lookahead_days=args.lookahead,
        lookback_days=args.lookback,
        full_scan=args.full_scan,
        take_over=args.take_over,
    )
    store = open_store(args.db)
    try:
        summary = run_sweep(store, config, options, progress=sys.stderr.isatty() and not args.json)
    finally:
        store.close()
    if args.json:
        sys.stdout.write(orjson.dumps(summary.to_dict()).decode() + "\n")
        return 0
    s = summary
    print(f"sweep {s.run_id} as of {s.as_of}: {s.status} in {s.elapsed_s:.1f} s")
    print(f"  pre-filter: {s.prefilter}")
    print(
        f"  contacts: {s.contacts_processed:,} processed of {s.contacts_scanned:,} "
        f"({s.contacts_invalid:,} invalid)"
    )
    print(f"  emails: {s.emails_scheduled:,} pre-scheduled, {s.emails_skipped:,} skipped")
    width = max((len(t) for t in s.per_type), default=0)
    for email_type, counts in sorted(s.per_type.items()):
        print(
            f"    {email_type:<{width}} {counts.get('pre-scheduled', 0):>9,} pre-scheduled "
            f"{counts.get('skipped', 0):>9,} skipped"
        )
    print(
        f"  rows: {s.rows_inserted:,} inserted, {s.rows_updated:,} updated, "
        f"{s.rows_deleted:,} deleted, {s.rows_unchanged:,} unchanged"
    )
    print(
        f"  balancing: daily cap {s.daily_cap:,} ({s.valid_contacts:,} valid contacts); "
        f"{s.moved_by_smoothing:,} moved by ED smoothing, {s.moved_by_daily_cap:,} by the cap, "
        f"{s.skipped_by_frequency_limit:,} skipped by the frequency limit"
    )
    for ex in s.invalid_examples[:10]:
        print(f"  invalid contact {ex['contact_id']}: {'; '.join(ex['reasons'])}")  # type: ignore[arg-type]
    if s.contacts_invalid > 10:
        print(f"  ... and {s.contacts_invalid - 10:,} more invalid contacts (see --json)")
    if s.warnings:
        print(f"  {s.warnings:,} data warnings, e.g. {s.warning_examples[0]}")
    print(f"  schedules checksum {s.schedules_after_checksum}")
    return 0


def _cmd_explain(args: argparse.Namespace) -> int:
    from sqlalchemy import inspect, text

    from rules.contact import validate_contact
    from rules.explain import explain_contact
    from rules.followup import NO_BEHAVIOUR
    from rules.placement import Horizon
    from streams.config_file import load_config_file
    from streams.store.campaigns import (
        behaviour_since,
        fetch_behaviour,
        fetch_targets,
        load_campaign_book,
    )
    from streams.store.engine import open_store
    from streams.store.schedules import fetch_contacts, fetch_rows

    config, _ = load_config_file(args.config)
    horizon = Horizon(_as_of(args.as_of), args.lookahead, args.lookback)
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


def _cmd_gen(args: argparse.Namespace) -> int:
    from synthetic.generate import generate_database

    as_of = _as_of(args.as_of) if args.as_of else None
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


def _cmd_checksum(args: argparse.Namespace) -> int:
    from sqlalchemy import inspect

    from streams.store.checksum import schedule_checksum
    from streams.store.engine import open_store

    store = open_store(args.db, read_only=True)  # an auditor's copy: read, never changed
    try:
        with store.engine.connect() as conn:
            if not inspect(conn).has_table("email_schedules"):
                raise UsageError(f"{args.db} has no 'email_schedules' table: not an agency database")
            print(schedule_checksum(conn))
    finally:
        store.close()
    return 0


def _cmd_campaign(args: argparse.Namespace) -> int:
    from streams.admin.campaigns import CampaignError, run_campaign_command

    as_of = _as_of(getattr(args, "as_of", None))
    try:
        return run_campaign_command(args, as_of)
    except CampaignError as exc:
        raise UsageError(str(exc)) from None  # main's one-line error, exit code 2


def default_state_dir(app_id: str) -> Path:
    """Per-user state of a worker: never the current directory (a checkout, say)."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "mailwindow" / app_id


def _snapshot_dir(given: str | None, db: str, fallback: Path) -> Path:
    if given:
        return Path(given)
    if "://" not in db:
        path = Path(db)
        return path.parent / f"{path.name}.baselines"
    return fallback / "baselines"


def _kafka_errors(command: Any) -> Any:
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


@_kafka_errors
def _cmd_worker(args: argparse.Namespace) -> int:
    import logging

    from croniter import croniter

    from streams.config_file import load_config_file
    from streams.store.engine import open_store
    from streams.worker.app import WorkerSettings, run_worker

    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    cron = None if args.sweep_cron == "off" else args.sweep_cron
    if cron is not None and not croniter.is_valid(cron):
        raise UsageError(f"--sweep-cron {args.sweep_cron!r} is not a cron expression (or 'off')")
    today = _as_of(args.today, "--today") if args.today else None
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
            snapshot_dir=_snapshot_dir(args.snapshot_dir, args.db, datadir),
            extra={"datadir": str(datadir)},
        )
        run_worker(settings, args.sweep_interval)
    finally:
        store.close()
    return 0


@_kafka_errors
def _cmd_baseline(args: argparse.Namespace) -> int:
    from streams.config_file import load_config_file
    from streams.store.engine import open_store
    from streams.worker.baseline import record_baseline
    from streams.worker.publish import publish_outbox

    config, _ = load_config_file(args.config)
    as_of = _as_of(args.as_of)
    store = open_store(args.db)
    try:
        store.migrate()
        b = record_baseline(store, config, as_of, _snapshot_dir(args.snapshot_dir, args.db, Path.cwd()))
        published = publish_outbox(store, args.broker, args.prefix, args.partitions)
    finally:
        store.close()
    r = b.record
    print(
        f"baseline {b.baseline_id}: decision day {r['as_of']}, schedules {r['schedules_checksum']}\n"
        f"  snapshot {r['snapshot']['path']} ({r['snapshot']['sha256']}): archive it with the topics\n"
        f"  {published} record(s) published to {args.broker} (prefix {args.prefix!r})"
    )
    return 0


@_kafka_errors
def _cmd_replay(args: argparse.Namespace) -> int:
    from streams.events.codec import EventError, parse_datetime
    from streams.worker.replay import replay

    until = None
    if args.until:
        try:
            until = parse_datetime(args.until)
        except (EventError, ValueError):
            raise UsageError(f"--until {args.until!r} is not an RFC 3339 time with offset") from None
    print(replay(args.broker, args.prefix, args.db, until, args.baseline, args.snapshot))
    return 0


@_kafka_errors
def _cmd_send_test_events(args: argparse.Namespace) -> int:
    from streams.worker.publish import send_test_events

    sent = send_test_events(
        args.broker, args.prefix, args.count, args.seed, args.malformed_share, args.partitions
    )
    print(f"sent {sent:,} events to {args.broker} (prefix {args.prefix!r})")
    return 0


COMMANDS = {
    "sweep": _cmd_sweep,
    "explain": _cmd_explain,
    "gen": _cmd_gen,
    "checksum": _cmd_checksum,
    "campaign": _cmd_campaign,
    "worker": _cmd_worker,
    "replay": _cmd_replay,
    "send-test-events": _cmd_send_test_events,
    "baseline": _cmd_baseline,
    "publish": _cmd_baseline,
}


def main(argv: Sequence[str] | None = None) -> int:
    from streams.store.engine import StoreError
    from streams.sweep.run import SweepError

    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
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


if __name__ == "__main__":
    sys.exit(main())
