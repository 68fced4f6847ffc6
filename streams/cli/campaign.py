"""`mailwindow campaign ...`: campaign types, instances, dates and targets (SPEC 8).

The flags and the printing are here; the work is ``streams.admin.campaigns``'s, imported
by each handler (it brings SQLAlchemy; ``mailwindow --help`` should not wait for it).
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from rules.bounds import excerpt
from rules.config import MAX_PRIORITY, CampaignType, Config
from streams.cli.common import Subparsers, UsageError, at_most, date_flag, id_arg, whole

if TYPE_CHECKING:
    from streams.store.engine import Store


def add_parser(sub: Subparsers) -> None:
    cp = sub.add_parser("campaign", help="manage campaign types, instances, dates and targets")
    csub = cp.add_subparsers(dest="campaign_command", required=True)

    t = csub.add_parser("type", help="create a campaign type or change the given fields of it")
    t.add_argument("--db", required=True)
    t.add_argument("--config", help="scheduler_config.yaml (a new type starts from its values)")
    t.add_argument("name", help="lower-case letters, digits and _")
    t.add_argument(
        "--priority", type=at_most(MAX_PRIORITY, "lower is more important"), dest="priority", metavar="N",
    )
    t.add_argument(
        "--days-before", type=whole, dest="days_before_event", metavar="N",
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
    d.add_argument("instance_id", type=id_arg)
    d.add_argument("--start", help="YYYY-MM-DD, or none to clear")
    d.add_argument("--end", help="YYYY-MM-DD, or none to clear")
    d.add_argument("--by", help="who made the change (default: the OS user)")
    d.add_argument("--apply", action="store_true", help="reschedule the targets now (a sweep)")
    d.add_argument("--as-of", help="the --apply sweep's date (default: today, Central)")

    g = csub.add_parser("targets", help="import targets from CSV contact_id,trigger_date[,metadata]")
    g.add_argument("--db", required=True)
    g.add_argument("instance_id", type=id_arg)
    g.add_argument("file", help="CSV file")

    lst = csub.add_parser("list", help="campaign types and instances")
    lst.add_argument("--db", required=True)
    lst.add_argument("--config")
    cp.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from streams.admin import campaigns as admin

    day = date_flag(getattr(args, "as_of", None))
    try:
        return _run_campaign_command(args, day)
    except admin.CampaignError as exc:
        raise UsageError(str(exc)) from None  # main's one-line error, exit code 2


def _describe_type(t: CampaignType) -> str:
    offset = t.days_before_event
    when = f"{offset} days before the trigger" if offset >= 0 else f"{-offset} days after the trigger"
    return (
        f"priority {t.priority}, {when}, "
        f"{'respects' if t.respect_exclusion_windows else 'ignores'} exclusion windows, "
        f"follow-ups {'on' if t.enable_followups else 'off'}, "
        f"{'all contacts' if t.target_all_contacts else 'listed targets'}, "
        f"{'active' if t.active else 'inactive'}"
    )


def _span(start: object, end: object) -> str:
    return f"{start or 'open'}..{end or 'open'}"


def _cmd_type(store: Store, config: Config, args: argparse.Namespace) -> int:
    from streams.admin import campaigns as admin

    given: dict[str, int | bool] = {
        f: getattr(args, f) for f in admin.TYPE_FIELDS if getattr(args, f, None) is not None
    }
    r = admin.set_campaign_type(store, config, args.name, given)
    if r.created:
        stored = CampaignType(r.name, **{f: new for f, (_, new) in r.changes.items()})  # type: ignore[arg-type]
        print(f"created campaign type {r.name} (unset fields from {r.base}): {_describe_type(stored)}")
    elif r.changes:
        said = ", ".join(f"{f} {_show(old)} -> {_show(new)}" for f, (old, new) in r.changes.items())
        print(f"changed campaign type {r.name}: {said}")
    else:
        print(f"campaign type {r.name} unchanged ({'already so' if given else 'no field given'})")
    return 0


def _show(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _cmd_instance(store: Store, config: Config, args: argparse.Namespace) -> int:
    from streams.admin import campaigns as admin

    start = admin.parse_day(args.start, "--start") if args.start is not None else None
    end = admin.parse_day(args.end, "--end") if args.end is not None else None
    new = admin.create_instance(
        store,
        config,
        args.type,
        args.name,
        start=start,
        end=end,
        email_template=args.email_template,
        sms_template=args.sms_template,
        metadata=args.metadata,
    )
    print(
        f"created campaign instance {new.id}: {new.campaign_type}/{new.instance_name} "
        f"active {_span(new.start, new.end)} (type from the {new.type_source})"
    )
    if not new.type_active:
        print(
            f"warning: campaign type {new.campaign_type} is inactive: the instance sends nothing "
            "until it is active",
            file=sys.stderr,
        )
    return 0


def _cmd_dates(store: Store, config: Config, args: argparse.Namespace, as_of: date) -> int:
    from streams.admin import campaigns as admin
    from streams.sweep.run import run_sweep
    from streams.sweep.summary import SweepError, SweepOptions

    given: dict[str, date | None] = {}
    if args.start is not None:
        given[admin.START_FIELD] = admin.parse_day_or_none(args.start, "--start")
    if args.end is not None:
        given[admin.END_FIELD] = admin.parse_day_or_none(args.end, "--end")
    by = args.by if args.by is not None and args.by.strip() else admin.default_user()
    r = admin.change_dates(store, args.instance_id, given, by)
    label = f"campaign instance {r.instance.id} ({r.instance.campaign_type}/{r.instance.instance_name})"
    if not r.changes:
        print(f"{label}: dates unchanged, nothing logged" + (", no sweep run" if args.apply else ""))
        return 0
    for c in r.changes:
        print(f"{label}: {c.field} {c.old or 'none'} -> {c.new or 'none'} (logged, by {by})")
    if not args.apply:
        print("its targets are rescheduled by the next sweep (or run again with --apply)")
        return 0
    targets = admin._read(store, lambda conn: admin.reschedule_targets(conn, config, r.instance))
    options = SweepOptions(as_of=as_of, contact_ids=targets)
    try:
        s = run_sweep(store, config, options)
    except SweepError as exc:
        raise admin.CampaignError(
            f"{label}: dates changed and logged, but the sweep failed ({exc}); "
            "the next sweep reschedules its targets"
        ) from None
    admin.clear_rescheduling(store, r.log_ids)
    who = "every contact (the type targets all contacts)" if targets is None else f"{len(targets)} contact(s)"
    print(
        f"sweep {s.run_id} as of {s.as_of} for {who}: {s.status}; "
        f"{s.contacts_processed} processed, {s.emails_scheduled} pre-scheduled, "
        f"{s.emails_skipped} skipped; rows {s.rows_inserted} inserted, {s.rows_updated} updated, "
        f"{s.rows_deleted} deleted, {s.rows_unchanged} unchanged"
    )
    return 0


def _cmd_targets(store: Store, args: argparse.Namespace) -> int:
    from streams.admin import campaigns as admin

    path = Path(args.file)
    r = admin.import_targets(store, args.instance_id, path)
    for line, problem in r.problems:
        print(f"{path}:{line}: {problem}", file=sys.stderr)
    extra = f" ({r.unchanged} already present, unchanged)" if r.unchanged else ""
    print(f"imported {r.imported}, updated {r.updated}, skipped {r.skipped}{extra}")
    return 1 if r.skipped else 0


def _cmd_list(store: Store, config: Config) -> int:
    from streams.admin import campaigns as admin

    listing = admin.list_campaigns(store, config)
    print("campaign types:" if listing.types else "campaign types: none")
    names = {t.name: t for t, _ in listing.types}
    for t, source in listing.types:
        print(f"  {t.name} ({source}): {_describe_type(t)}")
    print("campaign instances:" if listing.instances else "campaign instances: none")
    for inst, count in listing.instances:
        ctype = names.get(inst.campaign_type)
        who = f"{count} target(s)"
        if ctype is None:
            who += ", unknown type: sends nothing"
        elif ctype.target_all_contacts:
            who = f"all contacts ({count} target row(s))"
        templates = ", ".join(
            f"{k} {v}" for k, v in (("email", inst.email_template), ("sms", inst.sms_template)) if v
        )
        print(
            f"  {inst.id}: {inst.campaign_type}/{inst.instance_name} "
            f"active {_span(inst.active_start_date, inst.active_end_date)}, {who}"
            + (f", templates {templates}" if templates else "")
        )
    return 0


def _run_campaign_command(args: argparse.Namespace, as_of: date) -> int:
    """Run ``mailwindow campaign <sub-command>``; the exit code (0, or 1 for skipped CSV rows)."""
    from streams.admin import campaigns as admin
    from streams.config_file import load_config_file
    from streams.store.engine import open_store

    config, warnings = load_config_file(getattr(args, "config", None))
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    sub = args.campaign_command
    if sub == "list":  # reading never writes: an auditor's read-only copy will do
        store = open_store(args.db, read_only=True)
        try:
            return _cmd_list(store, config)
        finally:
            store.close()
    store = open_store(args.db)
    try:
        store.migrate()  # adds the campaign tables to a database lacking them
        if sub == "type":
            return _cmd_type(store, config, args)
        if sub == "instance":
            return _cmd_instance(store, config, args)
        if sub == "dates":
            return _cmd_dates(store, config, args, as_of)
        if sub == "targets":
            return _cmd_targets(store, args)
        raise admin.CampaignError(f"unknown campaign sub-command {excerpt(sub)}")
    finally:
        store.close()
