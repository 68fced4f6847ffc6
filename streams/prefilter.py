"""The indexed SQL half of the sweep's pre-filter, and the SQL count of valid contacts.

The month-day ranges come from ``rules.prefilter``; each becomes a range scan
on the expression indexes ``mw_contacts_birth_md`` / ``mw_contacts_effective_md``
(same expression text as ``store.month_day_sql``, so SQLite uses them).
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import Connection, text

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
    """Contacts with a usable email and a state: the base of the daily cap (SPEC section 7)."""
    params: dict[str, object] = {}
    codes = _in_list("usps", sorted(USPS_CODES), params)
    sql = (
        "SELECT count(*) FROM contacts c "
        f"LEFT JOIN mw_zip_states z ON z.zip5 = {_zip5_sql('c.zip_code')} "
        f"WHERE {_email_ok_sql('c.email')} "
        f"AND (z.state IS NOT NULL OR upper({_trim('c.state')}) IN {codes})"
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

    def md_branch(column: str, lo: str, hi: str, extra: str = "", join: str = "") -> str:
        nonlocal counter
        counter += 1
        params[f"lo{counter}"], params[f"hi{counter}"] = lo, hi
        return (
            f"SELECT c.id AS id FROM contacts c {join} "
            f"WHERE {month_day_sql(column)} BETWEEN :lo{counter} AND :hi{counter}{extra}"
        )

    for lo, hi in plan.birthday_ranges:
        parts.append(md_branch("birth_date", lo, hi))
    for lo, hi in plan.effective_date_ranges:
        parts.append(md_branch("effective_date", lo, hi))
    zip_join = f"LEFT JOIN mw_zip_states z ON z.zip5 = substr({_trim('c.zip_code')}, 1, 5)"
    for n, sf in enumerate(plan.state_filters):
        states = _in_list(f"st{n}_", sorted(sf.states), params)
        # Either reading of the state may be the one the rules use: take both.
        state_cond = f"(z.state IN {states} OR upper({_trim('c.state')}) IN {states})"
        if sf.every_contact:
            parts.append(f"SELECT c.id AS id FROM contacts c {zip_join} WHERE {state_cond}")
            continue
        column = "birth_date" if sf.kind == "birthday" else "effective_date"
        for lo, hi in sf.ranges:
            parts.append(md_branch(column, lo, hi, f" AND {state_cond}", zip_join))
    sql = " UNION ".join(parts) + " ORDER BY id"
    return [int(r[0]) for r in conn.execute(text(sql), params)]


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
