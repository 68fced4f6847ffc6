"""Scheduler configuration: frozen typed objects built from the legacy YAML shape.

``config_from_mapping`` takes already-parsed YAML (a plain mapping) and either
returns a ``Config`` plus the warnings to show once, or raises ``ConfigError``
naming the offending key.  Reading the file is the shell's job
(``streams/config_file.py``), which adds the file's line to the message.

Limits (issue 11: one bad value never stops the agency's scheduling; it is
refused at start in one short line naming the file, the line and the full
key path, never a traceback):

- **The file** (checked by ``streams/config_file.py`` before anything is
  built): at most ``MAX_CONFIG_BYTES`` (1,000,000 bytes; the legacy file is
  3 KB); mappings and lists nested at most ``MAX_NESTING`` (32) deep, aliases
  expanded (the scheduler reads 4 levels); at most ``MAX_NODES`` (100,000)
  keys, values and collections once every alias is expanded (the legacy file
  has 239).  A key appears once per mapping, at any depth.
- **Whole numbers**, inclusive ranges:

  - ``0..MAX_DAYS`` (366): ``timing_constants.birthday_email_days_before``,
    ``.effective_date_days_before``, ``.pre_window_exclusion_days``; every
    window's ``window_before_days``, ``window_after_days``,
    ``pre_window_extension_days``; ``load_balancing.ed_smoothing_window_days``.
  - ``1..MAX_DAYS``: ``timing_constants.followup_days_after``,
    ``load_balancing.catch_up_spread_days``, ``load_balancing.period_days``.
  - ``-MAX_DAYS..MAX_DAYS``: ``campaign_types.*.days_before_event``.
  - ``0..MAX_PRIORITY`` (1000): ``priorities.*``, ``campaign_types.*.priority``.
  - ``1..MAX_EMAILS_PER_PERIOD`` (1000):
    ``load_balancing.max_emails_per_contact_per_period``.
  - ``0..MAX_DAILY_LIMIT`` (10**9): ``load_balancing.ed_daily_soft_limit``.
  - ``1..12`` and ``1..31``: ``aep_config.default_dates[i].month`` and ``.day``
    (and the date must exist in every year).

  Why these: 366 days is a year with its leap day.  A sweep decides at most a
  year ahead and back (``rules.bounds``), so no offset, window, spread or
  period needs more, and date arithmetic stays centuries inside Python's
  dates.  A thousand priority levels and a thousand emails per contact and
  period are far beyond any use (the defaults use 1..10 and 2); 10**9 emails
  a day is more than any agency sends.  Every value the legacy file and the
  SPEC defaults use lies well inside.
- **Fractions** are finite numbers (no inf, no nan) within their range:
  percentages ``0..1``, ``overage_threshold`` ``1..100``.
- **Text shown back**: every bad value and every key name a message quotes
  goes through ``rules.bounds.excerpt`` (at most 80 characters, one line).

Choices written down here (SPEC section 11 is silent on them):
- Unknown keys *inside* a section the scheduler uses are refused: a typo in a
  compliance setting must never be silently ignored.  Unknown or unused
  top-level sections (``processing``, ``logging``, ``database`` in the legacy
  file) are reported once as a warning.
- ``priorities`` is an optional section of our own (birthday, effective_date,
  aep, post_window); the legacy file has none, so the SPEC defaults apply.
- An AEP date must exist in every year: February 29 is refused.
- A key given twice in one mapping is refused, wherever it is: YAML keeps the
  last silently.  Keys are compared as read (``1`` and ``0x1`` are one key),
  and a state's window as the rules read it (``CA`` and ``ca`` are one state).
  Merge keys (``<<: *base``) work as in YAML: the keys they bring are
  overridden by the mapping's own, which is not a duplicate.
- Anchors and aliases work; an anchor defined twice, an alias used before its
  anchor, and an alias inside the node it names (a loop) are refused.
- ``campaign_types.*.days_before_event`` lies within a year either way, and
  ``followup_days_after`` within a year, like every other count of days; the
  same year bounds a ``campaign_types`` row (``rules.campaign`` takes
  ``MAX_DAYS`` from here), ``mailwindow campaign type`` and the campaigns
  topic's schema.  Priorities are held to ``MAX_PRIORITY`` there too.
- A key name is shown as written when it is short and printable, otherwise
  quoted as an excerpt, so that a message stays one short line.
- A config window without a ``source`` that equals the default rule of its
  state and kind (days before and after, month start) keeps the default's
  source; one the agency changed has none until the config gives it.
- A window's ``source`` (its statute or bulletin, issue 12) is optional text on
  one line (``explain`` shows it in one line); a window the config gives
  without one has source "".  ``year_round_exclusion`` is a list of codes, so
  a year-round state keeps the source of the defaults (``year_round_source``).
- The file is one YAML document in UTF-8; a second document (``---``) is
  refused, as PyYAML's loader refuses it, but with its line.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime
from types import MappingProxyType
from typing import Any

from rules.bounds import EXCERPT_CHARS, excerpt
from rules.zip_state import USPS_CODES

BIRTHDAY = "birthday"
EFFECTIVE_DATE = "effective_date"
WINDOW_KINDS = (BIRTHDAY, EFFECTIVE_DATE)


MAX_CONFIG_BYTES = 1_000_000
MAX_NESTING = 32
MAX_NODES = 100_000
MAX_DAYS = 366
MAX_PRIORITY = 1000
MAX_EMAILS_PER_PERIOD = 1000
MAX_DAILY_LIMIT = 10**9


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message names the key.

    ``key`` and ``problem`` (when the error is about one key) let the file
    reader put the key's line into the message.
    """

    def __init__(self, message: str, *, key: str | None = None, problem: str | None = None) -> None:
        super().__init__(message)
        self.key = key
        self.problem = problem


def quoted(value: object) -> str:
    """A value as a message quotes it: ``rules.bounds.excerpt``, even of an unprintable int."""
    try:
        return excerpt(value)
    except ValueError:  # Python will not print an int of more than 4,300 digits
        return f"a {type(value).__name__} too large to show"


def key_name(name: object) -> str:
    """A key as a key path shows it: as written when short and printable, else quoted."""
    try:
        text = str(name)
    except ValueError:
        return quoted(name)
    if text and len(text) <= EXCERPT_CHARS and text.isprintable():
        return text
    return quoted(name)


def join_key(path: str, name: object) -> str:
    """The key path of ``name`` inside ``path``, as every message writes it."""
    shown = key_name(name)
    return f"{path}.{shown}" if path else shown


@dataclass(frozen=True)
class WindowRule:
    """One state's exclusion window around a yearly date (SPEC section 4).

    ``source`` is the statute or bulletin the rule comes from, shown by
    ``explain`` and the golden snapshots (tests/rules/golden); "" when the
    config that gave the rule names none.  It never changes a date or a skip
    reason, so two rules that differ only in their source compare equal (a
    cache keyed by a rule must key by its source too: ``rules.exclusion_window``).
    """

    state: str
    kind: str  # BIRTHDAY or EFFECTIVE_DATE
    days_before: int
    days_after: int
    pre_window_days: int
    use_month_start: bool = False
    source: str = field(default="", compare=False)
    # A dated version (issue 15, SPEC section 4): in force on the window anchors from
    # ``effective_from`` to ``effective_until`` (inclusive; None: unbounded), and only
    # for contacts whose age on the anchor lies in ``min_age..max_age`` (inclusive).
    effective_from: date | None = None
    effective_until: date | None = None
    min_age: int | None = None
    max_age: int | None = None
    note: str = field(default="", compare=False)  # e.g. "awaits the agency's confirmation"

    @property
    def banded(self) -> bool:
        return self.min_age is not None or self.max_age is not None

    @property
    def dated(self) -> bool:
        """Whether this is one version among possibly several: dates or an age band."""
        return self.effective_from is not None or self.effective_until is not None or self.banded

    def in_force_on(self, d: date) -> bool:
        return in_period(d, self.effective_from, self.effective_until)

    def covers_age(self, age: int | None) -> bool:
        """Whether an age on the anchor is in the band; an unknown age is (the safer reading), and
        a band without ``min_age`` has no lower bound (an age below 0 is a birth date typed
        in the future: bad data, not a reason to drop a window)."""
        if age is None:
            return True
        return (self.min_age is None or self.min_age <= age) and (self.max_age is None or age <= self.max_age)

    @property
    def version(self) -> str:
        """The version's dates and age band as a reason names them, "" for an undated rule."""
        return version_text(self.effective_from, self.effective_until, self.min_age, self.max_age)


@dataclass(frozen=True)
class YearRoundRule:
    """A state where every date is excluded, from ``effective_from`` to ``effective_until``
    (inclusive; None: unbounded)."""

    state: str
    effective_from: date | None = None
    effective_until: date | None = None
    source: str = field(default="", compare=False)
    note: str = field(default="", compare=False)

    @property
    def dated(self) -> bool:
        return self.effective_from is not None or self.effective_until is not None

    def in_force_on(self, d: date) -> bool:
        return in_period(d, self.effective_from, self.effective_until)

    @property
    def version(self) -> str:
        return version_text(self.effective_from, self.effective_until, None, None)


def in_period(d: date, first: date | None, last: date | None) -> bool:
    return (first is None or first <= d) and (last is None or d <= last)


def period_text(first: date | None, last: date | None) -> str:
    """``always``, ``from D``, ``until D`` or ``D1..D2``: an inclusive period as every text says it."""
    if first is None and last is None:
        return "always"
    if first is None:
        return f"until {last}"
    return f"from {first}" if last is None else f"{first}..{last}"


def band_text(min_age: int | None, max_age: int | None) -> str:
    """``65-75`` or ``65 and over``; "" without a band."""
    if min_age is None and max_age is None:
        return ""
    return f"{min_age if min_age is not None else 0}-{max_age}" if max_age is not None else f"{min_age} and over"


def version_text(
    first: date | None, last: date | None, min_age: int | None, max_age: int | None
) -> str:
    """``rule from 2025-07-01``, ``rule 2024-01-01..2025-06-30, ages 65-75``; "" when undated."""
    parts = []
    if first is not None or last is not None:
        parts.append(f"rule {period_text(first, last)}")
    band = band_text(min_age, max_age)
    if band:
        parts.append(f"ages {band}" if parts else f"rule for ages {band}")
    return ", ".join(parts)


@dataclass(frozen=True)
class Timing:
    send_time: str = "08:30:00"
    birthday_days_before: int = 14
    effective_date_days_before: int = 30
    pre_window_days: int = 60
    followup_days_after: int = 2


@dataclass(frozen=True)
class LoadBalancing:
    daily_send_percentage_cap: float = 0.07
    ed_daily_soft_limit: int = 15
    ed_soft_limit_percentage: float = 0.30
    ed_smoothing_window_days: int = 2
    overage_threshold: float = 1.2
    catch_up_spread_days: int = 7
    max_emails_per_contact_per_period: int = 2
    period_days: int = 14
    enabled: bool = True  # off: no smoothing and no daily cap (agents and sweep agree)


@dataclass(frozen=True)
class Priorities:
    birthday: int = 5
    effective_date: int = 5
    aep: int = 3
    post_window: int = 8


@dataclass(frozen=True)
class CampaignType:
    name: str
    respect_exclusion_windows: bool = True
    enable_followups: bool = True
    days_before_event: int = 0
    target_all_contacts: bool = False
    priority: int = 10
    active: bool = True


# The SPEC section 4 table, each rule with the source it comes from.  A source is
# written only where a public text states it (the comment says where it was
# found); otherwise UNCONFIRMED_SOURCE says so.  The window lengths are the
# SPEC's, not re-derived from these texts: where a text found reads differently,
# the comment says so for counsel to review (issue 12).
UNCONFIRMED_SOURCE = "SPEC section 4 default; statute to be confirmed by agency counsel"

DEFAULT_WINDOW_RULES: tuple[WindowRule, ...] = (
    # California SB 407 (Monning), chaptered as Stats. 2019, ch. 549, amends Ins. Code
    # § 10192.11 and Health & Safety Code § 1358.11 (bill text on legiscan.com/CA/text/SB407;
    # abstract on open.pluralpolicy.com/ca/bills/20192020/SB407: the annual open enrollment
    # period); senior65.com: SB 407 made it 60 days after the birthday from 2020-07-01.
    WindowRule(
        "CA", BIRTHDAY, 30, 60, 60,
        source="Cal. SB 407 (Stats. 2019, ch. 549), amending Ins. Code § 10192.11 "
        "and Health & Safety Code § 1358.11",
    ),
    # Idaho Department of Insurance, doi.idaho.gov/shiba (Recent Changes to Medicare
    # Supplement Law and Rules): Senate Bill 1143 (2021) and rule IDAPA 18.04.10, a 63-day
    # enrollment period beginning on the birthday, effective after 2022-02-28.
    WindowRule(
        "ID", BIRTHDAY, 0, 63, 60,
        source="Idaho SB 1143 (2021); IDAPA 18.04.10 (63 days from the birthday, from 2022-03-01)",
    ),
    # Kentucky HB 345 (2023), signed April 2023: an annual 60-day window around the birthday
    # (Dialysis Patient Citizens release, einpresswire.com, 2023-04-06).  No KRS section
    # number was found stated anywhere.
    WindowRule(
        "KY", BIRTHDAY, 0, 60, 60,
        source="Kentucky HB 345 (2023); KRS section to be confirmed by agency counsel",
    ),
    # Maryland HB 247, 2022 Laws of Maryland ch. 680, adds Insurance § 15-909(b)(6): the 30
    # days following the birthday, on and after 2023-07-01 (chaptered text on
    # app.legiplex.com/md/legislature/2022/2022-r/bills/hb247).
    WindowRule(
        "MD", BIRTHDAY, 0, 30, 60,
        source="Md. Code, Insurance § 15-909(b)(6) (2022 Md. Laws ch. 680, HB 247; from 2023-07-01)",
    ),
    # NRS 687B.352(1): an annual open enrollment period "commencing with the first day of the
    # birthday month" and open for at least 60 days (statute text on casetext.com).
    WindowRule(
        "NV", BIRTHDAY, 0, 60, 60, use_month_start=True,
        source="NRS 687B.352",
    ),
    # Oklahoma Insurance Department, oid.ok.gov (New Medicare Supplement Open Enrollment
    # FAQs): the birthday rule is the change made to OAC 365:10-5-129.
    WindowRule("OK", BIRTHDAY, 0, 60, 60, source="Okla. Admin. Code 365:10-5-129"),
    # OAR 836-052-0143, Annual Opportunity to Select Another Medicare Supplement Policy
    # (regulations.justia.com, current through 2024-09-01).  Note for counsel: that text
    # reads "beginning 30 days prior to a person's birthday and for 30 days after", where
    # the SPEC's default is 0 days before and 31 after.
    WindowRule("OR", BIRTHDAY, 0, 31, 60, source="OAR 836-052-0143"),
    # Virginia HB 2100 / SB 1199 (2025) add Code § 38.2-3611, Annual open enrollment period
    # (introduced text on legiscan.com/VA/text/HB2100/2025; signed 2025-03-24 per
    # billtrack50.com; in force 2025-07-01 per the Farr Law Firm newsletter).  Note for
    # counsel: that text gives at least 60 days from the birthday, the SPEC's default 30.
    WindowRule(
        "VA", BIRTHDAY, 0, 30, 60,
        source="Va. Code § 38.2-3611 (2025 HB 2100 / SB 1199; from 2025-07-01)",
    ),
    # Missouri's "anniversary rule" is described (medicareresources.org: 30 days before and
    # after the policy anniversary) but no statute or regulation number was found stated.
    WindowRule("MO", EFFECTIVE_DATE, 30, 33, 60, source=UNCONFIRMED_SOURCE),
)
DEFAULT_YEAR_ROUND: frozenset[str] = frozenset({"CT", "MA", "NY", "WA"})
# Year-round states: continuous guaranteed issue in CT, MA and NY is described by
# medicareresources.org and medigapwindow.com, and continuous open enrollment in WA by a
# broker FAQ (heymoellc.freshdesk.com), none with a statute or regulation number.
DEFAULT_YEAR_ROUND_RULES: tuple[YearRoundRule, ...] = tuple(
    YearRoundRule(state, source=UNCONFIRMED_SOURCE) for state in sorted(DEFAULT_YEAR_ROUND)
)


def year_round_source(state: str) -> str:
    """The source of a year-round state in the defaults, "" for a state the defaults lack.

    A config that lists a year-round state by its code alone (the legacy shape) keeps this
    citation: the citation of a state's law does not depend on the config.
    """
    for rule in DEFAULT_YEAR_ROUND_RULES:
        if rule.state == state:
            return rule.source
    return ""

DEFAULT_EMAIL_TEMPLATES: Mapping[str, str] = MappingProxyType(
    {
        "birthday": "birthday_standard_v1",
        "effective_date": "effective_date_standard_v1",
        "aep": "aep_standard_v1",
        "post_window": "post_window_catchup_v1",
        "followup_1_cold": "followup_cold_v1",
        "followup_2_clicked_no_hq": "followup_clicked_v1",
        "followup_3_hq_no_yes": "followup_healthy_v1",
        "followup_4_hq_with_yes": "followup_conditions_v1",
    }
)
DEFAULT_SMS_TEMPLATES: Mapping[str, str] = MappingProxyType(
    {
        "birthday": "birthday_sms_v1",
        "effective_date": "effective_date_sms_v1",
        "followup_1_cold": "followup_cold_sms_v1",
    }
)

# The legacy file names follow-up templates by behaviour; the rows use the type.
_FOLLOWUP_TEMPLATE_NAMES = {
    "cold": "followup_1_cold",
    "clicked_no_hq": "followup_2_clicked_no_hq",
    "hq_no_conditions": "followup_3_hq_no_yes",
    "hq_with_conditions": "followup_4_hq_with_yes",
}


@dataclass(frozen=True, eq=False)  # identity hash: configs key the rules' caches
class Config:
    timing: Timing = Timing()
    aep_dates: tuple[tuple[int, int], ...] = ((9, 15),)
    load_balancing: LoadBalancing = LoadBalancing()
    priorities: Priorities = Priorities()
    year_round_rules: tuple[YearRoundRule, ...] = DEFAULT_YEAR_ROUND_RULES
    window_rules: tuple[WindowRule, ...] = DEFAULT_WINDOW_RULES  # every version of every rule
    campaign_types: Mapping[str, CampaignType] = field(
        default_factory=lambda: MappingProxyType({})
    )
    email_templates: Mapping[str, str] = field(default_factory=lambda: DEFAULT_EMAIL_TEMPLATES)
    sms_templates: Mapping[str, str] = field(default_factory=lambda: DEFAULT_SMS_TEMPLATES)

    def rules_for_state(self, state: str | None) -> tuple[WindowRule, ...]:
        """The window rules of a state, birthday rules first (the report order)."""
        if state is None:
            return ()
        by_state = _rules_by_state(self.window_rules)
        return by_state.get(state, ())

    def year_round_for(self, state: str | None) -> tuple[YearRoundRule, ...]:
        """The year-round rules of a state (several when dated), earliest first."""
        return tuple(r for r in self.year_round_rules if r.state == state)

    def always_year_round(self, state: str | None) -> bool:
        """Whether every date of every year is excluded in ``state`` (an undated year-round rule)."""
        return any(not r.dated for r in self.year_round_for(state))

    @property
    def year_round_codes(self) -> frozenset[str]:
        """The states with a year-round rule in force on some date."""
        return frozenset(r.state for r in self.year_round_rules)

    def to_dict(self) -> dict[str, Any]:
        """The whole config in the YAML file's shape: ``config_from_mapping`` reads it back
        to an equal config.  For sweep-run records (replay) and audits."""
        timing = self.timing
        email_names = {kind: name for name, kind in _ANNIVERSARY_TEMPLATE_NAMES.items()}
        followup_names = {kind: name for name, kind in _FOLLOWUP_TEMPLATE_NAMES.items()}
        sms_names = {kind: kind for kind in _SMS_TEMPLATE_NAMES.values()}
        return {
            "timing_constants": {
                "send_time": timing.send_time,
                "birthday_email_days_before": timing.birthday_days_before,
                "effective_date_days_before": timing.effective_date_days_before,
                "pre_window_exclusion_days": timing.pre_window_days,
                "followup_days_after": timing.followup_days_after,
            },
            "aep_config": {"default_dates": [{"month": m, "day": d} for m, d in self.aep_dates]},
            "load_balancing": _dataclass_dict(self.load_balancing),
            "priorities": _dataclass_dict(self.priorities),
            "state_rules": {
                "year_round_exclusion": [_year_round_entry(r) for r in self.year_round_rules],
                "birthday_windows": _windows_dict(self.window_rules, BIRTHDAY),
                "effective_date_windows": _windows_dict(self.window_rules, EFFECTIVE_DATE),
            },
            "campaign_types": {
                name: {k: v for k, v in _dataclass_dict(ct).items() if k != "name"}
                for name, ct in sorted(self.campaign_types.items())
            },
            "email_templates": {
                "anniversary": {
                    email_names[k]: v for k, v in sorted(self.email_templates.items()) if k in email_names
                },
                "followups": {
                    followup_names[k]: v
                    for k, v in sorted(self.email_templates.items())
                    if k in followup_names
                },
                "sms": {sms_names[k]: v for k, v in sorted(self.sms_templates.items()) if k in sms_names},
            },
        }


def config_digest(config: Config) -> str:
    """``sha256:<hex>`` of the whole config (its ``to_dict``): which rules a sweep ran under.

    Recorded in every sweep's checkpoint summary, so an audit can match a run to the rule
    file (``mailwindow rules --config F`` prints the same digest).  Sources and notes are
    part of it: a citation is part of what the run applied.
    """
    text = json.dumps(config.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


_RULE_CACHE: dict[int, tuple[tuple[WindowRule, ...], dict[str, tuple[WindowRule, ...]]]] = {}


def _rules_by_state(rules: tuple[WindowRule, ...]) -> dict[str, tuple[WindowRule, ...]]:
    cached = _RULE_CACHE.get(id(rules))
    if cached is not None and cached[0] is rules:
        return cached[1]
    grouped: dict[str, list[WindowRule]] = {}
    for rule in rules:
        grouped.setdefault(rule.state, []).append(rule)
    result = {s: tuple(sorted(rs, key=rule_order)) for s, rs in grouped.items()}
    _RULE_CACHE[id(rules)] = (rules, result)
    return result


def rule_order(rule: WindowRule) -> tuple[int, str, date]:
    """Birthday rules first (the report order), then by state, each state's versions by date:
    the order in which a contact's windows are asked, so the window a skip names never
    depends on the order of the config file."""
    return (WINDOW_KINDS.index(rule.kind), rule.state, rule.effective_from or date.min)


def _dataclass_dict(obj: Any) -> dict[str, Any]:
    return {f.name: getattr(obj, f.name) for f in fields(obj)}


def _windows_dict(rules: tuple[WindowRule, ...], kind: str) -> dict[str, Any]:
    """A state with one undated rule as a mapping (the legacy shape), else its list of versions."""
    by_state: dict[str, list[WindowRule]] = {}
    for r in rules:
        if r.kind == kind:
            by_state.setdefault(r.state, []).append(r)
    out: dict[str, Any] = {}
    for state, versions in sorted(by_state.items()):
        entries = [_window_entry(r) for r in sorted(versions, key=_version_order)]
        out[state] = entries[0] if len(entries) == 1 and not versions[0].dated else entries
    return out


def _window_entry(r: WindowRule) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "window_before_days": r.days_before,
        "window_after_days": r.days_after,
        "pre_window_extension_days": r.pre_window_days,
    }
    if r.use_month_start:
        entry["use_month_start"] = True
    entry.update(_dated_entry(r.effective_from, r.effective_until, r.source, r.note))
    for name in ("min_age", "max_age"):
        if getattr(r, name) is not None:
            entry[name] = getattr(r, name)
    return entry


def _year_round_entry(r: YearRoundRule) -> str | dict[str, Any]:
    if not r.dated and r.source == year_round_source(r.state) and not r.note:
        return r.state
    return {"state": r.state, **_dated_entry(r.effective_from, r.effective_until, r.source, r.note)}


def _dated_entry(first: date | None, last: date | None, source: str, note: str) -> dict[str, Any]:
    entry: dict[str, Any] = {}
    if first is not None:
        entry["effective_from"] = first.isoformat()
    if last is not None:
        entry["effective_until"] = last.isoformat()
    if source:
        entry["source"] = source
    if note:
        entry["note"] = note
    return entry


def _version_order(r: WindowRule | YearRoundRule) -> tuple[date, str]:
    return (r.effective_from or date.min, r.state)


DEFAULT_CONFIG = Config()

_USED_SECTIONS = {
    "timing_constants",
    "aep_config",
    "load_balancing",
    "priorities",
    "state_rules",
    "campaign_types",
    "email_templates",
}
_TIME_RE = re.compile(r"([01]\d|2[0-3]):([0-5]\d):([0-5]\d)")


class _Reader:
    """Reads typed values out of a mapping, naming the full key in every error."""

    def __init__(self, data: Mapping[str, Any], path: str, source: str) -> None:
        if not isinstance(data, Mapping):
            problem = f"must be a mapping, got {type(data).__name__}"
            raise ConfigError(f"{source}: {path or 'top level'} {problem}", key=path, problem=problem)
        self.data = data
        self.path = path
        self.source = source

    def key(self, name: object) -> str:
        return join_key(self.path, name)

    def fail(self, name: object, problem: str) -> ConfigError:
        key = self.key(name)
        return ConfigError(f"{self.source}: {key}: {problem}", key=key, problem=problem)

    def reject_unknown(self, allowed: set[str]) -> None:
        for name in self.data:
            if name not in allowed:
                raise self.fail(name, f"unknown key (expected one of {', '.join(sorted(allowed))})")

    def sub(self, name: str) -> _Reader | None:
        if name not in self.data or self.data[name] is None:
            return None
        value = self.data[name]
        if not isinstance(value, Mapping):
            raise self.fail(name, f"must be a mapping, got {type(value).__name__}")
        return _Reader(value, self.key(name), self.source)

    def integer(self, name: str, default: int, *, maximum: int, minimum: int = 0) -> int:
        if name not in self.data:
            return default
        value = self.data[name]
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(name, f"must be a whole number, got {quoted(value)}")
        if value < minimum:
            raise self.fail(name, f"must be at least {minimum}, got {quoted(value)}")
        if value > maximum:
            raise self.fail(name, f"must be at most {maximum}, got {quoted(value)}")
        return value

    def fraction(self, name: str, default: float, low: float, high: float) -> float:
        if name not in self.data:
            return default
        value = self.data[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(name, f"must be a number, got {quoted(value)}")
        if isinstance(value, float) and not math.isfinite(value):
            raise self.fail(name, f"must be a finite number, got {quoted(value)}")
        # compared before float(): an int too large for a float must be refused, not overflow
        if not (low <= value <= high):
            raise self.fail(name, f"must lie between {low} and {high}, got {quoted(value)}")
        return float(value)

    def boolean(self, name: str, default: bool) -> bool:
        if name not in self.data:
            return default
        value = self.data[name]
        if not isinstance(value, bool):
            raise self.fail(name, f"must be true or false, got {quoted(value)}")
        return value

    def text(self, name: str, default: str) -> str:
        if name not in self.data:
            return default
        value = self.data[name]
        if not isinstance(value, str) or not value.strip():
            raise self.fail(name, f"must be a non-empty string, got {quoted(value)}")
        return value


def _state_code(reader: _Reader, name: object, value: Any) -> str:
    if not isinstance(value, str) or value.strip().upper() not in USPS_CODES:
        raise reader.fail(name, f"{quoted(value)} is not a USPS state code")
    return value.strip().upper()


def _timing(r: _Reader | None) -> Timing:
    if r is None:
        return Timing()
    d = Timing()
    r.reject_unknown(
        {
            "send_time",
            "birthday_email_days_before",
            "effective_date_days_before",
            "pre_window_exclusion_days",
            "followup_days_after",
        }
    )
    send_time = r.text("send_time", d.send_time)
    if not _TIME_RE.fullmatch(send_time):
        raise r.fail("send_time", f"must be HH:MM:SS (24-hour), got {quoted(send_time)}")
    return Timing(
        send_time=send_time,
        birthday_days_before=r.integer(
            "birthday_email_days_before", d.birthday_days_before, maximum=MAX_DAYS
        ),
        effective_date_days_before=r.integer(
            "effective_date_days_before", d.effective_date_days_before, maximum=MAX_DAYS
        ),
        pre_window_days=r.integer("pre_window_exclusion_days", d.pre_window_days, maximum=MAX_DAYS),
        followup_days_after=r.integer(
            "followup_days_after", d.followup_days_after, minimum=1, maximum=MAX_DAYS
        ),
    )


def _aep_dates(r: _Reader | None) -> tuple[tuple[int, int], ...]:
    if r is None:
        return ((9, 15),)
    r.reject_unknown({"default_dates", "years"})
    raw = r.data.get("default_dates")
    if raw is None:
        return ((9, 15),)
    if not isinstance(raw, list) or not raw:
        raise r.fail("default_dates", "must be a non-empty list of {month, day}")
    dates: list[tuple[int, int]] = []
    for i, item in enumerate(raw):
        item_reader = _Reader(item, r.key(f"default_dates[{i}]"), r.source)
        item_reader.reject_unknown({"month", "day"})
        month = item_reader.integer("month", -1, minimum=1, maximum=12)
        day = item_reader.integer("day", -1, minimum=1, maximum=31)
        if month == -1 or day == -1:
            raise item_reader.fail("month", "both month and day are required")
        try:
            date(2001, month, day)  # a non-leap year: the date must exist every year
        except ValueError:
            raise item_reader.fail("day", f"{month}/{day} is not a date in every year") from None
        dates.append((month, day))
    return tuple(sorted(set(dates)))


def _load_balancing(r: _Reader | None) -> LoadBalancing:
    d = LoadBalancing()
    if r is None:
        return d
    r.reject_unknown({f.name for f in fields(LoadBalancing)})
    return LoadBalancing(
        daily_send_percentage_cap=r.fraction(
            "daily_send_percentage_cap", d.daily_send_percentage_cap, 0.0, 1.0
        ),
        ed_daily_soft_limit=r.integer(
            "ed_daily_soft_limit", d.ed_daily_soft_limit, maximum=MAX_DAILY_LIMIT
        ),
        ed_soft_limit_percentage=r.fraction(
            "ed_soft_limit_percentage", d.ed_soft_limit_percentage, 0.0, 1.0
        ),
        ed_smoothing_window_days=r.integer(
            "ed_smoothing_window_days", d.ed_smoothing_window_days, maximum=MAX_DAYS
        ),
        overage_threshold=r.fraction("overage_threshold", d.overage_threshold, 1.0, 100.0),
        catch_up_spread_days=r.integer(
            "catch_up_spread_days", d.catch_up_spread_days, minimum=1, maximum=MAX_DAYS
        ),
        max_emails_per_contact_per_period=r.integer(
            "max_emails_per_contact_per_period",
            d.max_emails_per_contact_per_period,
            minimum=1,
            maximum=MAX_EMAILS_PER_PERIOD,
        ),
        period_days=r.integer("period_days", d.period_days, minimum=1, maximum=MAX_DAYS),
        enabled=r.boolean("enabled", d.enabled),
    )


def _priorities(r: _Reader | None) -> Priorities:
    d = Priorities()
    if r is None:
        return d
    r.reject_unknown({f.name for f in fields(Priorities)})
    return Priorities(
        **{
            f.name: r.integer(f.name, getattr(d, f.name), maximum=MAX_PRIORITY)
            for f in fields(Priorities)
        }
    )


_WINDOW_KEYS = frozenset(
    {
        "window_before_days",
        "window_after_days",
        "pre_window_extension_days",
        "use_month_start",
        "source",
        "note",
        "effective_from",
        "effective_until",
        "min_age",
        "max_age",
    }
)
_YEAR_ROUND_KEYS = frozenset({"state", "source", "note", "effective_from", "effective_until"})
MAX_AGE = 130
_WINDOW_SECTIONS = (("birthday_windows", BIRTHDAY), ("effective_date_windows", EFFECTIVE_DATE))


def _state_rules(
    r: _Reader | None, default_pre_window: int
) -> tuple[tuple[YearRoundRule, ...], tuple[WindowRule, ...]]:
    """Year-round and window rules; a rule without pre_window_extension_days takes timing's default."""
    if r is None:
        return DEFAULT_YEAR_ROUND_RULES, tuple(
            replace(rule, pre_window_days=default_pre_window) for rule in DEFAULT_WINDOW_RULES
        )
    r.reject_unknown({"year_round_exclusion", "birthday_windows", "effective_date_windows", "profile"})
    year_round, rules = _rules_of(r, default_pre_window, defaults=True)
    if "profile" in r.data:
        year_round, rules = _with_profile(r, default_pre_window, year_round, rules)
    return year_round, rules


def _rules_of(
    r: _Reader, default_pre_window: int, *, defaults: bool
) -> tuple[tuple[YearRoundRule, ...], tuple[WindowRule, ...]]:
    """The rules a ``state_rules`` mapping gives; a section it lacks keeps the defaults
    (``defaults``) or gives none (a profile names only what it changes)."""
    year_round = DEFAULT_YEAR_ROUND_RULES if defaults else ()
    if "year_round_exclusion" in r.data:
        year_round = _year_round(r)
    rules: list[WindowRule] = []
    for section, kind in _WINDOW_SECTIONS:
        if section not in r.data:
            if defaults:
                rules.extend(
                    replace(rule, pre_window_days=default_pre_window)
                    for rule in DEFAULT_WINDOW_RULES
                    if rule.kind == kind
                )
            continue
        sub = r.sub(section)
        if sub is not None:
            rules.extend(_window_section(sub, kind, default_pre_window))
    return year_round, tuple(rules)


def _year_round(r: _Reader) -> tuple[YearRoundRule, ...]:
    raw = r.data["year_round_exclusion"] or []
    if not isinstance(raw, list):
        raise r.fail("year_round_exclusion", "must be a list of state codes or {state, effective_from, ...}")
    found: list[tuple[str, YearRoundRule]] = []
    for i, item in enumerate(raw):
        name = f"year_round_exclusion[{i}]"
        if not isinstance(item, Mapping):
            state = _state_code(r, name, item)
            found.append((r.key(name), YearRoundRule(state, source=year_round_source(state))))
            continue
        e = _Reader(item, r.key(name), r.source)
        e.reject_unknown(set(_YEAR_ROUND_KEYS))
        if "state" not in e.data:
            raise r.fail(name, "an entry with dates needs its state")
        state = _state_code(e, "state", e.data["state"])
        first, last = _period(e)
        source = _one_line(e, "source") or (year_round_source(state) if first is last is None else "")
        found.append((e.path, YearRoundRule(state, first, last, source, _one_line(e, "note"))))
    _refuse_overlaps(r, [(key, rule.state, "year-round", rule) for key, rule in found])
    return tuple(rule for _, rule in found)


def _window_section(sub: _Reader, kind: str, default_pre_window: int) -> list[WindowRule]:
    given: dict[str, object] = {}
    rules: list[WindowRule] = []
    for state_name in sub.data:
        state = _state_code(sub, state_name, state_name)
        if state in given:  # 'CA' and 'ca': two keys to YAML, one state to the rules
            also = quoted(given[state])
            raise sub.fail(state_name, f"state {state} is given twice (also as {also})")
        given[state] = state_name
        value = sub.data[state_name]
        if isinstance(value, list):
            if not value:
                raise sub.fail(state_name, "a list of versions needs at least one version")
            readers = [
                _Reader(item, f"{sub.key(state_name)}[{i}]", sub.source) for i, item in enumerate(value)
            ]
        else:
            w = sub.sub(str(state_name))
            if w is None:
                raise sub.fail(state_name, "must be a mapping of window settings or a list of versions")
            readers = [w]
        versions = [(w.path, _window_version(w, state, kind, default_pre_window)) for w in readers]
        _refuse_overlaps(sub, [(key, state, kind, rule) for key, rule in versions])
        rules.extend(rule for _, rule in versions)
    return rules


def _window_version(w: _Reader, state: str, kind: str, default_pre_window: int) -> WindowRule:
    w.reject_unknown(set(_WINDOW_KEYS))
    first, last = _period(w)
    min_age = w.integer("min_age", -1, maximum=MAX_AGE)
    max_age = w.integer("max_age", -1, maximum=MAX_AGE)
    if min_age >= 0 and max_age >= 0 and min_age > max_age:
        raise w.fail("max_age", f"must be at least min_age ({min_age}), got {max_age}")
    rule = WindowRule(
        state=state,
        kind=kind,
        days_before=w.integer("window_before_days", 0, maximum=MAX_DAYS),
        days_after=w.integer("window_after_days", 0, maximum=MAX_DAYS),
        pre_window_days=w.integer("pre_window_extension_days", default_pre_window, maximum=MAX_DAYS),
        use_month_start=w.boolean("use_month_start", False),
        source=_one_line(w, "source"),
        effective_from=first,
        effective_until=last,
        min_age=min_age if min_age >= 0 else None,
        max_age=max_age if max_age >= 0 else None,
        note=_one_line(w, "note"),
    )
    return rule if rule.source else _with_default_source(rule)


def _period(r: _Reader) -> tuple[date | None, date | None]:
    first, last = _date(r, "effective_from"), _date(r, "effective_until")
    if first is not None and last is not None and last < first:
        raise r.fail("effective_until", f"{last} is before effective_from ({first})")
    return first, last


def _date(r: _Reader, name: str) -> date | None:
    """A date written as YAML's ``2025-07-01`` (read as a date) or as that text."""
    if name not in r.data or r.data[name] is None:
        return None
    value = r.data[name]
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise r.fail(name, f"must be a date YYYY-MM-DD, got {quoted(value)}")


def _refuse_overlaps(r: _Reader, versions: list[tuple[str, str, str, WindowRule | YearRoundRule]]) -> None:
    """Versions of one state and kind must not be in force on one day (SPEC section 4)."""
    by_rule: dict[tuple[str, str], list[tuple[str, WindowRule | YearRoundRule]]] = {}
    for key, state, kind, rule in versions:
        by_rule.setdefault((state, kind), []).append((key, rule))
    for group in by_rule.values():
        ordered = sorted(group, key=lambda kr: kr[1].effective_from or date.min)
        for (key_a, a), (key_b, b) in itertools.pairwise(ordered):
            if a.effective_until is None or b.effective_from is None or a.effective_until >= b.effective_from:
                problem = (
                    f"in force {period_text(b.effective_from, b.effective_until)}, overlaps {key_a} "
                    f"(in force {period_text(a.effective_from, a.effective_until)}): "
                    "versions of one state and kind must not overlap"
                )
                raise ConfigError(f"{r.source}: {key_b}: {problem}", key=key_b, problem=problem)


def _with_profile(
    r: _Reader,
    default_pre_window: int,
    year_round: tuple[YearRoundRule, ...],
    rules: tuple[WindowRule, ...],
) -> tuple[tuple[YearRoundRule, ...], tuple[WindowRule, ...]]:
    """The config's rules with a packaged profile's: each state and kind the profile names
    takes the profile's versions instead of the config's (``rules.profiles``)."""
    from rules.profiles import PROFILE_NAMES, profile_state_rules

    name = r.data["profile"]
    if name not in PROFILE_NAMES:
        raise r.fail("profile", f"unknown profile {quoted(name)} (known: {', '.join(PROFILE_NAMES)})")
    data, where = profile_state_rules(str(name))
    p_year_round, p_rules = _rules_of(_Reader(data, "state_rules", where), default_pre_window, defaults=False)
    replaced = {(x.state, x.kind) for x in p_rules}
    replaced_year_round = {x.state for x in p_year_round}
    return (
        tuple(x for x in year_round if x.state not in replaced_year_round) + p_year_round,
        tuple(x for x in rules if (x.state, x.kind) not in replaced) + p_rules,
    )


def _with_default_source(rule: WindowRule) -> WindowRule:
    """A config rule without a source, the same as the default rule of its state and kind,
    keeps the default's citation (the legacy file restates every default without one); a
    rule the agency changed is not what the citation says, so it keeps none."""
    for default in DEFAULT_WINDOW_RULES:
        same = (
            default.state == rule.state
            and default.kind == rule.kind
            and default.days_before == rule.days_before
            and default.days_after == rule.days_after
            and default.use_month_start == rule.use_month_start
            and not rule.dated
        )
        if same:
            return replace(rule, source=default.source)
    return rule


def _one_line(r: _Reader, name: str) -> str:
    """A ``source`` or ``note``: one line of text (explain shows it in one line), "" when absent."""
    if name not in r.data:
        return ""
    value = r.data[name]
    if not isinstance(value, str):
        what = "a statute or bulletin citation" if name == "source" else "one line"
        raise r.fail(name, f"must be text ({what}), got {quoted(value)}")
    if not value.isprintable():
        raise r.fail(name, f"must be one line of printable text, got {quoted(value)}")
    return value


def _campaign_types(r: _Reader | None) -> Mapping[str, CampaignType]:
    if r is None:
        return MappingProxyType({})
    out: dict[str, CampaignType] = {}
    allowed = {f.name for f in fields(CampaignType)} - {"name"}
    for name in r.data:
        if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9_]+", name):
            raise r.fail(name, "campaign type names are lower-case letters, digits and _")
        c = r.sub(name)
        if c is None:
            raise r.fail(name, "must be a mapping of campaign settings")
        c.reject_unknown(allowed)
        d = CampaignType(name)
        out[name] = CampaignType(
            name=name,
            respect_exclusion_windows=c.boolean(
                "respect_exclusion_windows", d.respect_exclusion_windows
            ),
            enable_followups=c.boolean("enable_followups", d.enable_followups),
            days_before_event=c.integer(
                "days_before_event", 0, minimum=-MAX_DAYS, maximum=MAX_DAYS
            ),
            target_all_contacts=c.boolean("target_all_contacts", d.target_all_contacts),
            priority=c.integer("priority", d.priority, maximum=MAX_PRIORITY),
            active=c.boolean("active", d.active),
        )
    return MappingProxyType(out)


_ANNIVERSARY_TEMPLATE_NAMES = {t: t for t in ("birthday", "effective_date", "aep", "post_window")}
# SMS templates: the yearly types, and follow-ups by their legacy names
# ('followup_cold') or by their type ('followup_1_cold').
_SMS_TEMPLATE_NAMES = {
    **_ANNIVERSARY_TEMPLATE_NAMES,
    **{f"followup_{legacy}": kind for legacy, kind in _FOLLOWUP_TEMPLATE_NAMES.items()},
    **{kind: kind for kind in _FOLLOWUP_TEMPLATE_NAMES.values()},
}


def _templates(r: _Reader | None) -> tuple[Mapping[str, str], Mapping[str, str]]:
    email = dict(DEFAULT_EMAIL_TEMPLATES)
    sms = dict(DEFAULT_SMS_TEMPLATES)
    if r is None:
        return MappingProxyType(email), MappingProxyType(sms)
    r.reject_unknown({"anniversary", "followups", "sms"})
    for section, target, names in (
        ("anniversary", email, _ANNIVERSARY_TEMPLATE_NAMES),
        ("followups", email, _FOLLOWUP_TEMPLATE_NAMES),
        ("sms", sms, _SMS_TEMPLATE_NAMES),
    ):
        sub = r.sub(section)
        if sub is None:
            continue
        sub.reject_unknown(set(names))
        for name in sub.data:
            target[names[str(name)]] = sub.text(str(name), "")
    return MappingProxyType(email), MappingProxyType(sms)


def config_from_mapping(data: Mapping[str, Any] | None, source: str = "config") -> tuple[Config, list[str]]:
    """Build a Config from parsed YAML; returns it with the warnings to report once."""
    if data is None:
        return DEFAULT_CONFIG, []
    top = _Reader(data, "", source)
    warnings = [
        f"{source}: section {quoted(name)} is not used by the scheduler and is ignored"
        for name in data
        if name not in _USED_SECTIONS
    ]
    timing = _timing(top.sub("timing_constants"))
    year_round, window_rules = _state_rules(top.sub("state_rules"), timing.pre_window_days)
    email_templates, sms_templates = _templates(top.sub("email_templates"))
    config = Config(
        timing=timing,
        aep_dates=_aep_dates(top.sub("aep_config")),
        load_balancing=_load_balancing(top.sub("load_balancing")),
        priorities=_priorities(top.sub("priorities")),
        year_round_rules=tuple(sorted(year_round, key=_version_order)),
        window_rules=tuple(sorted(window_rules, key=rule_order)),
        campaign_types=_campaign_types(top.sub("campaign_types")),
        email_templates=email_templates,
        sms_templates=sms_templates,
    )
    return config, warnings
