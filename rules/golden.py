"""Golden snapshots of the state rules (issue 12): plain text a compliance officer reads and diffs.

For every state with a window rule or a year-round rule (and ``NO_RULE_STATES``,
states without any), and for a handful of contacts whose dates are the
calendar's awkward cases (``CASES``: February 29, January 10, December 31, the
1st of a month, an ordinary date), the text lists over ``YEARS``:

- each exclusion window: kind, year, anchor, start..end, the rule's source,
  what it blocks and its post-window email with every hop;
- each email the rules give: birthday, effective date and AEP with their ideal
  send dates, whether that date is excluded and by what (the skip reason a row
  would carry), and the post-window emails.

It is computed by the rules in ``rules/`` alone (no database, no clock, no
I/O): ``scripts/golden`` writes the files (``tests/rules/golden/<STATE>.txt``)
and ``tests/rules/test_golden.py`` compares them, so a rule change shows up as
a reviewed diff of committed files.

Choices written down:
- A case's effective date has the birth date's month and day, 60 years later
  (so both kinds of window and email meet the same awkward day), except the
  ordinary case, whose two dates differ.
- Emails are those of the years in ``YEARS`` (events in those years); windows
  are those of the same years.  An email of 2024 may still be excluded by a
  window of 2023: the reason names it.
- Campaign emails take no part (they are data of targets, not of rules).
- Each packaged profile (``rules.profiles``, issue 15) has its own folder,
  ``tests/rules/golden/profile-<NAME>/``, with the states the profile names, computed
  with the profile over the defaults: the diff against the default snapshot of a state
  is the profile's effect.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from difflib import unified_diff

from rules.config import BIRTHDAY, DEFAULT_CONFIG, EFFECTIVE_DATE, Config, WindowRule
from rules.contact import Contact
from rules.exclusion_window import ContactWindows, Window, contact_windows
from rules.occurrence import AEP, POST_WINDOW, yearly_occurrence
from rules.post_window import blocked_by, post_window_date, post_window_occurrence

YEARS = range(2024, 2033)  # 2024..2032: three leap years, windows across every New Year
NO_RULE_STATES: tuple[str, ...] = ("TX",)
FOLDER = "tests/rules/golden"  # where scripts/golden writes, relative to the repository
REGENERATE = "scripts/golden"


@dataclass(frozen=True)
class Case:
    what: str
    birth_date: date
    effective_date: date


CASES: tuple[Case, ...] = (
    Case("February 29", date(1952, 2, 29), date(2012, 2, 29)),
    Case("January 10", date(1955, 1, 10), date(2015, 1, 10)),
    Case("December 31", date(1950, 12, 31), date(2010, 12, 31)),
    Case("1st of a month", date(1950, 7, 1), date(2010, 7, 1)),
    Case("ordinary dates", date(1958, 5, 17), date(2016, 9, 23)),
)

_KIND_WORDS = {BIRTHDAY: "birthday", EFFECTIVE_DATE: "effective date"}
_TYPE_WIDTH = len("effective_date 2024")


def golden_states(config: Config = DEFAULT_CONFIG) -> list[str]:
    """Every state with a rule in ``config``, then the states without one."""
    with_rule = {r.state for r in config.window_rules} | set(config.year_round_codes)
    return sorted(with_rule) + [s for s in NO_RULE_STATES if s not in with_rule]


def golden_files(config: Config = DEFAULT_CONFIG) -> dict[str, str]:
    """File name (``CA.txt``) -> the snapshot text of that state."""
    return {f"{state}.txt": golden_text(state, config) for state in golden_states(config)}


def profile_folder(name: str) -> str:
    return f"{FOLDER}/profile-{name}"


def profile_files(name: str) -> dict[str, str]:
    """The snapshots of the states profile ``name`` names, under the profile over the defaults."""
    from rules.config import config_from_mapping
    from rules.profiles import profile_state_rules

    config = config_from_mapping({"state_rules": {"profile": name}})[0]
    data = profile_state_rules(name)[0]
    named = {str(s).upper() for section in data.values() if isinstance(section, dict) for s in section}
    named |= {
        (e["state"] if isinstance(e, dict) else str(e)).upper() for e in data.get("year_round_exclusion") or []
    }
    return {f"{s}.txt": golden_text(s, config, f"profile {name}") for s in sorted(named)}


def golden_sets() -> dict[str, dict[str, str]]:
    """Every snapshot folder -> its files: the defaults', then each packaged profile's."""
    from rules.profiles import PROFILE_NAMES

    return {FOLDER: golden_files(), **{profile_folder(n): profile_files(n) for n in PROFILE_NAMES}}


def golden_text(state: str, config: Config = DEFAULT_CONFIG, rules_of: str = "") -> str:
    timing = config.timing
    aep = ", ".join(f"{m:02d}-{d:02d}" for m, d in config.aep_dates)
    under = f" under {rules_of}" if rules_of else ""
    lines = [
        f"Golden snapshot of the scheduling rules for {state}{under} (SPEC sections 3-6).",
        f"Generated by {REGENERATE} from rules/ alone; do not edit by hand.  After a reviewed",
        f"rule change run {REGENERATE} and commit the diff; {REGENERATE} --check only compares.",
        "",
        f"Settings: pre-window {timing.pre_window_days} days; birthday email "
        f"{timing.birthday_days_before} days before the birthday; effective-date email "
        f"{timing.effective_date_days_before} days before the anniversary; AEP on {aep}; "
        f"years {YEARS[0]}..{YEARS[-1]}.",
        "",
        f"Rules of {state}:",
    ]
    rules = config.rules_for_state(state)
    year_round = config.year_round_for(state)
    lines.extend(_rule_lines(rule) for rule in rules)
    for rule in year_round:
        when = f" ({rule.version})" if rule.dated else ""
        lines.append(f"  year-round{when}: every date is excluded; source: {ContactWindows.cited(rule)}")
    if not rules and not year_round:
        lines.append("  none: no window, no date excluded")
    for number, case in enumerate(CASES, start=1):
        contact = Contact(
            number, f"golden{number}@example.com", state, case.birth_date, case.effective_date
        )
        lines.append("")
        lines.extend(_case_lines(case, contact, config))
    return "\n".join(lines) + "\n"


def compare(found: Mapping[str, str], expected: Mapping[str, str], folder: str = FOLDER) -> list[str]:
    """The differences between the files found and the expected ones, as unified diffs.

    Empty when they agree.  A missing file and a file no state needs any more count too.
    """
    out: list[str] = []
    for name in sorted(set(found) | set(expected)):
        old, new = found.get(name), expected.get(name)
        if old == new:
            continue
        if new is None:
            out.append(f"{folder}/{name}: no state has this snapshot any more (remove it)")
            continue
        out.extend(
            line.rstrip("\n")
            for line in unified_diff(
                (old or "").splitlines(keepends=True),
                new.splitlines(keepends=True),
                fromfile=f"{folder}/{name} (committed)" if old is not None else "/dev/null",
                tofile=f"{folder}/{name} (rules now)",
            )
        )
    return out


def _rule_lines(rule: WindowRule) -> str:
    kind = _KIND_WORDS[rule.kind]
    anchor = f"first day of the {kind} month" if rule.use_month_start else f"the {kind}"
    version = f" ({rule.version})" if rule.version else ""
    return (
        f"  {kind} window{version}: anchor {anchor}; from {rule.days_before} days + "
        f"{rule.pre_window_days} pre-window days before it to {rule.days_after} days after it; "
        f"source: {rule.source or 'none given by the config'}"
    )


def _case_lines(case: Case, contact: Contact, config: Config) -> list[str]:
    windows = contact_windows(contact.state, case.birth_date, case.effective_date, config)
    lines = [
        f"Contact {contact.id} ({case.what}): born {case.birth_date}, effective date {case.effective_date}",
        "  Windows:",
    ]
    emails: list[tuple[date, str, str]] = []  # (ideal send date, type and year, the rest)
    if windows.always_year_round:
        lines.append(
            f"    {contact.state} is year-round: every date is excluded; no post-window email"
        )
    all_windows = windows.windows_of_years(YEARS)
    if not all_windows and not windows.always_year_round:
        lines.append("    none")
    for w in sorted(all_windows, key=lambda w: (w.start, w.kind)):
        lines.extend(_window_lines(w, contact, windows, config, emails))
    for year in YEARS:
        for kind in (BIRTHDAY, EFFECTIVE_DATE):
            occ = yearly_occurrence(contact, kind, year, config)
            if occ is not None:
                emails.append(
                    (
                        occ.ideal_send_date,
                        f"{kind} {year}",
                        f"event {occ.event_date}  " + _verdict(occ.ideal_send_date, windows),
                    )
                )
        for month, day in config.aep_dates:
            event = date(year, month, day)
            emails.append((event, f"{AEP} {year}", f"event {event}  " + _verdict(event, windows)))
    lines.append("  Emails (ideal send date, type, event date: excluded or not):")
    for when, what, rest in sorted(emails):
        lines.append(f"    {when}  {what:<{_TYPE_WIDTH}}  {rest}")
    return lines


def _window_lines(
    w: Window,
    contact: Contact,
    windows: ContactWindows,
    config: Config,
    emails: list[tuple[date, str, str]],
) -> list[str]:
    lines = [
        f"    {_KIND_WORDS[w.kind]} window of {w.year}: anchor {w.anchor}, {w.start}..{w.end}; "
        + (f"{w.version}; " if w.version else "")
        + f"source: {w.cited}"
    ]
    if windows.always_year_round:
        lines.append("      (the state is year-round: no post-window email)")
        return lines
    blocking = blocked_by(w, contact, config)
    if not blocking:
        lines.append("      blocks no email: no post-window email")
        return lines
    lines.append("      blocks " + ", ".join(f"{kind} {d}" for kind, d in blocking))
    occ = post_window_occurrence(w, contact, windows, config)
    path = post_window_date(w, windows).path
    if occ is None:
        lines.append("      no post-window email; why:")
    else:
        lines.append(f"      post-window email on {occ.ideal_send_date}; how its date was found:")
        emails.append(
            (
                occ.ideal_send_date,
                POST_WINDOW,
                f"after {w.label}  " + _verdict(occ.ideal_send_date, windows),
            )
        )
    lines.extend(f"        {step}" for step in path)
    return lines


def _verdict(d: date, windows: ContactWindows) -> str:
    exclusion = windows.exclusion_on(d)
    return "allowed" if exclusion is None else f"EXCLUDED by {exclusion.reason}"
