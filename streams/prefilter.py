"""The indexed SQL half of the sweep's pre-filter, and the SQL count of valid contacts.

The month-day ranges come from ``rules.prefilter``; each becomes a range scan
on the expression indexes ``mw_contacts_birth_md`` / ``mw_contacts_effective_md``
(same expression text as ``store.month_day_sql``, so SQLite uses them).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from functools import lru_cache

from sqlalchemy import Connection, text

from rules.contact import resolve_state
from rules.followup import INITIAL_LOOKBACK_DAYS
from rules.prefilter import PrefilterPlan
from rules.statuses import OWNED_STATUSES
from rules.zip_state import USPS_CODES
from streams.store import month_day_sql

_BLANK_SET = "' ' || char(9) || char(10) || char(13)"


def _trim(column: str) -> str:
    return f"trim({column}, {_BLANK_SET})"


def _zip5_sql(column: str) -> str:
    """The 5-digit ZIP of a raw field, exactly as ``rules.zip_state.zip5`` reads it, else NULL."""
    t = _trim(column)
    d5 = "[0-9]" * 5
    return (
        f"CASE WHEN (length({t}) = 5 AND {t} GLOB '{d5}') "
        f"OR (length({t}) = 10 AND {t} GLOB '{d5}-{'[0-9]' * 4}') "
        f"OR (length({t}) = 9 AND {t} GLOB '{'[0-9]' * 9}') "
        f"THEN substr({t}, 1, 5) END"
    )


def _email_ok_sql(column: str) -> str:
    """``rules.contact.usable_email`` in SQL: one '@' with text on both sides."""
    e = _trim(column)
    return (
        f"(instr({e}, '@') > 1 AND instr({e}, '@') < length({e}) "
        f"AND instr(substr({e}, instr({e}, '@') + 1), '@') = 0)"
    )


def _in_list(prefix: str, values: list[str], params: dict[str, object]) -> str:
    names = []
    for i, v in enumerate(values):
        name = f"{prefix}{i}"
        params[name] = v
        names.append(f":{name}")
    return "(" + ", ".join(names) + ")"


def count_valid_contacts(conn: Connection) -> int:
    """Contacts with a usable email and a state: the base of the daily cap (SPEC section 7).

    Each test starts with a cheap form that is right for clean values (GLOB
    patterns, raw column lookups) and falls back to the exact, trimming form
    only for the rest: the exact form alone costs seconds at 3M contacts.
    """
    params: dict[str, object] = {
        "one_at": "?*@?*",
        "two_at": "*@*@*",
        "blank_head": "[ \t\r\n]*",
        "blank_tail": "*[ \t\r\n]",
    }
    codes = _in_list("usps", sorted(USPS_CODES), params)
    clean_email = (
        "(email GLOB :one_at AND email NOT GLOB :two_at "
        "AND email NOT GLOB :blank_head AND email NOT GLOB :blank_tail)"
    )
    has_state = (
        f"(state IN {codes} OR zip_code IN (SELECT zip5 FROM mw_zip_states) "
        f"OR upper({_trim('state')}) IN {codes} "
        f"OR {_zip5_sql('zip_code')} IN (SELECT zip5 FROM mw_zip_states))"
    )
    sql = (
        f"SELECT count(*) FROM contacts WHERE ({clean_email} OR {_email_ok_sql('email')}) "
        f"AND {has_state}"
    )
    return int(conn.execute(text(sql), params).scalar_one())


def candidate_contact_ids(conn: Connection, plan: PrefilterPlan, range_start: str, range_end: str) -> list[int]:
    """Sorted ids of the contacts the pre-filter selects (plan.every_contact must be False)."""
    params: dict[str, object] = {"range_start": range_start, "range_end": range_end}
    owned = _in_list("owned", sorted(OWNED_STATUSES), params)
    parts = [
        "SELECT contact_id AS id FROM email_schedules "
        f"WHERE scheduled_send_date BETWEEN :range_start AND :range_end AND status IN {owned}"
    ]
    counter = 0

    def md_branch(column: str, lo: str, hi: str) -> str:
        nonlocal counter
        counter += 1
        params[f"lo{counter}"], params[f"hi{counter}"] = lo, hi
        return f"SELECT id FROM contacts WHERE {month_day_sql(column)} BETWEEN :lo{counter} AND :hi{counter}"

    for lo, hi in plan.birthday_ranges:
        parts.append(md_branch("birth_date", lo, hi))
    for lo, hi in plan.effective_date_ranges:
        parts.append(md_branch("effective_date", lo, hi))
    sql = " UNION ".join(parts)
    ids = {int(r[0]) for r in conn.execute(text(sql), params)}
    ids.update(_post_window_candidates(conn, plan))
    return sorted(ids)


def _post_window_candidates(conn: Connection, plan: PrefilterPlan) -> set[int]:
    """Contacts of the rule states whose base month-day lies in that state's range.

    The month-day range is an index scan (covering: it carries zip_code and
    state); the state test is done here with the rules' own state resolution,
    which is both exact and far cheaper than the same test in SQL.
    """
    found: set[int] = set()
    every = [sf for sf in plan.state_filters if sf.every_contact]
    by_column: dict[str, list[tuple[str, str, frozenset[str]]]] = {}
    for sf in plan.state_filters:
        if sf.every_contact:
            continue
        column = "birth_date" if sf.kind == "birthday" else "effective_date"
        by_column.setdefault(column, []).extend((lo, hi, sf.states) for lo, hi in sf.ranges)
    for column, items in sorted(by_column.items()):
        for cluster in _clusters(items):
            lo = min(i[0] for i in cluster)
            hi = max(i[1] for i in cluster)
            md = month_day_sql(column)
            rows = conn.execute(
                text(f"SELECT id, {md}, zip_code, state FROM contacts WHERE {md} BETWEEN :lo AND :hi"),
                {"lo": lo, "hi": hi},
            )
            for cid, month_day, zip_code, state_column in rows:
                state = _state_of(zip_code, state_column)
                if state is None:
                    continue
                for a, b, states in cluster:
                    if state in states and a <= month_day <= b:
                        found.add(int(cid))
                        break
    if every:
        wanted = frozenset().union(*(sf.states for sf in every))
        for cid, zip_code, state_column in conn.execute(text("SELECT id, zip_code, state FROM contacts")):
            if _state_of(zip_code, state_column) in wanted:
                found.add(int(cid))
    return found


def followup_candidate_ids(conn: Connection, as_of: date) -> set[int]:
    """Contacts with a sent or delivered email in ``[T - 35, T]``: candidate initial emails.

    By scheduled date or by actual send time (both indexed); an email sent
    days after its scheduled date is found by the second.
    """
    first = (as_of - timedelta(days=INITIAL_LOOKBACK_DAYS)).isoformat()
    params = {"first": first, "t": as_of.isoformat(), "after": (as_of + timedelta(days=1)).isoformat()}
    sql = (
        "SELECT contact_id FROM email_schedules WHERE scheduled_send_date BETWEEN :first AND :t "
        "AND lower(status) IN ('sent', 'delivered') "
        "UNION SELECT contact_id FROM email_schedules WHERE actual_send_datetime >= :first "
        "AND actual_send_datetime < :after AND lower(status) IN ('sent', 'delivered')"
    )
    return {int(r[0]) for r in conn.execute(text(sql), params)}


@lru_cache(maxsize=200_000)
def _state_of(zip_code: str | None, state_column: str | None) -> str | None:
    # The same few ZIP/state pairs recur across millions of contacts.
    return resolve_state(zip_code, state_column)[0]


def _clusters(
    items: list[tuple[str, str, frozenset[str]]],
) -> list[list[tuple[str, str, frozenset[str]]]]:
    """Group month-day ranges whose spans overlap, so each group is one index scan."""
    out: list[list[tuple[str, str, str]]] = []
    hi_so_far = ""
    for item in sorted(items, key=lambda i: (i[0], i[1])):
        if out and item[0] <= hi_so_far:
            out[-1].append(item)
            hi_so_far = max(hi_so_far, item[1])
        else:
            out.append([item])
            hi_so_far = item[1]
    return out


def all_contact_ids(conn: Connection, page: int = 50000) -> Iterator[int]:
    """Every contact id in order, a page at a time (keyset pagination, bounded memory)."""
    last = -(2**62)
    while True:
        ids = [
            int(r[0])
            for r in conn.execute(
                text("SELECT id FROM contacts WHERE id > :last ORDER BY id LIMIT :page"),
                {"last": last, "page": page},
            )
        ]
        if not ids:
            return
        yield from ids
        last = ids[-1]
