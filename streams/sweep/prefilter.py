"""The indexed SQL half of the sweep's pre-filter, and the SQL count of valid contacts.

The month-day ranges come from ``rules.prefilter``; each becomes a range scan
on the expression indexes ``mw_contacts_birth_md`` / ``mw_contacts_effective_md``
(same expression text as ``store.month_day_sql``, so SQLite uses them).
The SQL is the dialect's (``conn.dialect.name``): SQLite's GLOB, instr and
char() are PostgreSQL's ~, strpos and chr.

Contact ids another program wrote (issue 11): every id read here goes
through ``streams.store.schedules.contact_id_of``; a contact whose id is not an
integer in ``1..MAX_ID`` (text, a float, NULL, 0) is never selected, so it
gets no decision and stops no run, and ``unusable_contacts`` lists it for the
run's report.  Choices written down here (the SPEC is silent on them):

- Such a contact is reported as invalid by every sweep (but one limited to
  the contacts its caller names), whether or not the pre-filter would have
  selected it: it can never be decided, and the agency has to fix it.  It is
  not counted among the valid contacts of the daily cap
  (``count_valid_contacts``), nor among the contacts processed.
- Its rows, if any, are left alone: their contact cannot be told apart from
  another (is ``'105'`` contact 105?), and a run only changes the rows of the
  contacts it decides.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import date, timedelta
from functools import lru_cache

from sqlalchemy import Connection, text

from rules.bounds import MAX_ID, excerpt
from rules.contact import resolve_state
from rules.followup import INITIAL_LOOKBACK_DAYS
from rules.prefilter import PrefilterPlan
from rules.statuses import OWNED_STATUSES
from rules.zip_state import USPS_CODES
from streams.store.bulk import driver_pages, driver_rows
from streams.store.dialects import POSTGRESQL, month_day_sql, trim_blanks_sql
from streams.store.schedules import IN_LIST_SIZE, contact_id_of, placeholder, unusable_id_reason

_REGEX_SPECIAL = frozenset(".^$+(){}|\\")


def _glob_pattern(pattern: str, dialect: str) -> str:
    """A GLOB pattern as the dialect takes it: for PostgreSQL's ~, the same match as an
    anchored regular expression (* any text, ? one character, [...] a set, as in GLOB)."""
    if dialect != POSTGRESQL:
        return pattern
    out, in_set = ["^"], False
    for ch in pattern:
        if in_set:
            in_set = ch != "]"
            out.append(ch)
        elif ch == "[":
            in_set = True
            out.append(ch)
        else:
            out.append({"*": ".*", "?": "."}.get(ch, "\\" + ch if ch in _REGEX_SPECIAL else ch))
    return "".join(out) + "$"


def _glob_sql(expr: str, pattern_sql: str, dialect: str, negate: bool = False) -> str:
    """``expr`` matched against a pattern (made by ``_glob_pattern``)."""
    if dialect == POSTGRESQL:
        return f"{expr} {'!~' if negate else '~'} {pattern_sql}"
    return f"{expr} {'NOT GLOB' if negate else 'GLOB'} {pattern_sql}"


def _position_sql(needle: str, haystack: str, dialect: str) -> str:
    """1-based position of ``needle`` in ``haystack``, 0 when absent."""
    return f"strpos({haystack}, {needle})" if dialect == POSTGRESQL else f"instr({haystack}, {needle})"


def _zip5_sql(column: str, dialect: str) -> str:
    """The 5-digit ZIP of a raw field, exactly as ``rules.zip_state.zip5`` reads it, else NULL."""
    t = trim_blanks_sql(column, dialect)
    d5 = "[0-9]" * 5

    def glob(pattern: str) -> str:  # constant digit patterns, safe to write into the SQL
        return _glob_sql(t, f"'{_glob_pattern(pattern, dialect)}'", dialect)

    return (
        f"CASE WHEN (length({t}) = 5 AND {glob(d5)}) "
        f"OR (length({t}) = 10 AND {glob(f'{d5}-' + '[0-9]' * 4)}) "
        f"OR (length({t}) = 9 AND {glob('[0-9]' * 9)}) "
        f"THEN substr({t}, 1, 5) END"
    )


def _email_ok_sql(column: str, dialect: str) -> str:
    """``rules.contact.usable_email`` in SQL: one '@' with text on both sides."""
    e = trim_blanks_sql(column, dialect)
    at = _position_sql("'@'", e, dialect)
    at_after_at = _position_sql("'@'", f"substr({e}, {at} + 1)", dialect)
    return f"({at} > 1 AND {at} < length({e}) AND {at_after_at} = 0)"


def _in_list(prefix: str, values: list[str], params: dict[str, object]) -> str:
    names = []
    for i, v in enumerate(values):
        name = f"{prefix}{i}"
        params[name] = v
        names.append(f":{name}")
    return "(" + ", ".join(names) + ")"


def count_valid_contacts(conn: Connection) -> int:
    """Contacts with a usable email and a state: the base of the daily cap (SPEC section 7).

    A sweep counts them as ``usable_contact_count`` less the ``invalid_contact_ids``
    (``streams.sweep.valid_contacts``); this is the same figure in one statement.
    """
    params: dict[str, object] = {}
    valid = _valid_sql(conn.dialect.name, params)
    sql = f"SELECT count(*) FROM contacts WHERE {valid} AND {_usable_id_sql(conn.dialect.name)}"
    return int(conn.execute(text(sql), params).scalar_one())


def invalid_contact_ids(conn: Connection, among: Sequence[int] | None = None) -> list[int]:
    """The contacts with a usable id but no usable email or no state, in id order: of every
    contact, or of those ``among`` (a contact no longer there is not one of them)."""
    params: dict[str, object] = {}
    dialect = conn.dialect.name
    # NULL (a NULL email) is not valid either; NOT COALESCE(...) gave the same rows 5x slower.
    where = f"{_usable_id_sql(dialect)} AND CASE WHEN {_valid_sql(dialect, params)} THEN 0 ELSE 1 END = 1"
    if among is None:
        return sorted(_usable(r[0] for r in conn.execute(text(f"SELECT id FROM contacts WHERE {where}"), params)))
    found: set[int] = set()
    for start in range(0, len(among), IN_LIST_SIZE):
        part = among[start : start + IN_LIST_SIZE]
        params.update({f"c{i}": cid for i, cid in enumerate(part)})
        ids = ", ".join(f":c{i}" for i in range(len(part)))
        sql = f"SELECT id FROM contacts WHERE id IN ({ids}) AND {where}"
        found |= _usable(r[0] for r in conn.execute(text(sql), params))
    return sorted(found)


def usable_contact_count(conn: Connection, contacts: int) -> int:
    """Contacts whose id is usable (``_usable_id_sql``), of the ``contacts`` the table holds
    (``count(*)``, which the caller has read); on SQLite's rowid, counted without a scan
    of the rows (the plain test reads every row: 1.9 s at 3M contacts)."""
    dialect = conn.dialect.name
    if dialect != POSTGRESQL and _id_is_rowid(conn):
        # A rowid is an integer, never NULL: the usable ones are those from 1 up.
        return contacts - int(conn.execute(text("SELECT count(*) FROM contacts WHERE id < 1")).scalar_one())
    return int(conn.execute(text(f"SELECT count(*) FROM contacts WHERE {_usable_id_sql(dialect)}")).scalar_one())


def _valid_sql(dialect: str, params: dict[str, object]) -> str:
    """A usable email and a state, as SQL over ``contacts`` (its values go into ``params``).

    Each test starts with a cheap form that is right for clean values (GLOB
    patterns, raw column lookups) and falls back to the exact, trimming form
    only for the rest: the exact form alone costs seconds at 3M contacts.
    """
    globs = {
        "one_at": "?*@?*",
        "two_at": "*@*@*",
        "blank_head": "[ \t\r\n]*",
        "blank_tail": "*[ \t\r\n]",
    }
    params.update({k: _glob_pattern(v, dialect) for k, v in globs.items()})
    codes = _in_list("usps", sorted(USPS_CODES), params)
    clean_email = (
        f"({_glob_sql('email', ':one_at', dialect)} "
        f"AND {_glob_sql('email', ':two_at', dialect, negate=True)} "
        f"AND {_glob_sql('email', ':blank_head', dialect, negate=True)} "
        f"AND {_glob_sql('email', ':blank_tail', dialect, negate=True)})"
    )
    has_state = (
        f"(state IN {codes} OR zip_code IN (SELECT zip5 FROM mw_zip_states) "
        f"OR upper({trim_blanks_sql('state', dialect)}) IN {codes} "
        f"OR {_zip5_sql('zip_code', dialect)} IN (SELECT zip5 FROM mw_zip_states))"
    )
    return f"({clean_email} OR {_email_ok_sql('email', dialect)}) AND {has_state}"


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
        return f"SELECT id FROM contacts WHERE {month_day_sql(column, conn.dialect.name)} BETWEEN :lo{counter} AND :hi{counter}"

    for lo, hi in plan.birthday_ranges:
        parts.append(md_branch("birth_date", lo, hi))
    for lo, hi in plan.effective_date_ranges:
        parts.append(md_branch("effective_date", lo, hi))
    sql = " UNION ".join(parts)
    ids = _usable(r[0] for r in conn.execute(text(sql), params))
    ids.update(_post_window_candidates(conn, plan))
    return sorted(ids)


def _post_window_candidates(conn: Connection, plan: PrefilterPlan) -> set[int]:
    """Contacts of the rule states whose base month-day lies in that state's range.

    The month-day range is an index scan (covering: it carries zip_code and
    state); the state test is done here with the rules' own state resolution,
    which is both exact and far cheaper than the same test in SQL.
    """
    found: set[object] = set()  # stored ids, usable or not (``_usable``)
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
            md = month_day_sql(column, conn.dialect.name)
            ph = placeholder(conn)
            sql = f"SELECT id, {md}, zip_code, state FROM contacts WHERE {md} BETWEEN {ph} AND {ph}"
            # The driver's rows: at 3M contacts this reads about 1.5 million of them.
            for rows in driver_pages(conn, sql, (lo, hi), _PAGE_ROWS):
                for cid, month_day, zip_code, state_column in rows:
                    state = _state_of(zip_code, state_column)
                    if state is None:
                        continue
                    for a, b, states in cluster:
                        if state in states and a <= month_day <= b:
                            found.add(cid)
                            break
    if every:
        wanted = frozenset().union(*(sf.states for sf in every))
        for rows in driver_pages(conn, "SELECT id, zip_code, state FROM contacts", (), _PAGE_ROWS):
            found.update(cid for cid, zip_code, state_column in rows if _state_of(zip_code, state_column) in wanted)
    return _usable(found)


_PAGE_ROWS = 20_000


def followup_candidate_ids(conn: Connection, as_of: date, since: date | None = None) -> set[int]:
    """Contacts with a sent or delivered email in ``[T - 35, T]``: candidate initial emails.
    With ``since``, only those sent in ``[max(since, T - 35), T]``: an incremental sweep's
    slice, the emails that entered the 35 days since its last run (such as one stored as
    sent with a time still to come then).

    By scheduled date or by actual send time (both indexed); an email sent
    days after its scheduled date is found by the second.
    """
    earliest = as_of - timedelta(days=INITIAL_LOOKBACK_DAYS)
    first = max(since, earliest) if since is not None else earliest
    params = {"first": first.isoformat(), "t": as_of.isoformat(), "after": (as_of + timedelta(days=1)).isoformat()}
    sql = (
        "SELECT contact_id FROM email_schedules WHERE scheduled_send_date BETWEEN :first AND :t "
        "AND lower(status) IN ('sent', 'delivered') "
        "UNION SELECT contact_id FROM email_schedules WHERE actual_send_datetime >= :first "
        "AND actual_send_datetime < :after AND lower(status) IN ('sent', 'delivered')"
    )
    return _usable(r[0] for r in conn.execute(text(sql), params))


def _usable(stored: Iterable[object]) -> set[int]:
    """The usable contact ids among stored ones (module docstring)."""
    return {cid for value in stored if (cid := contact_id_of(value)) is not None}


def _usable_id_sql(dialect: str) -> str:
    """``contact_id_of`` in SQL, for ``contacts.id``."""
    if dialect == POSTGRESQL:
        return f"id BETWEEN 1 AND {MAX_ID}"  # an integer column: NULL fails too
    return "(typeof(id) = 'integer' AND id >= 1)"


def unusable_contacts(conn: Connection) -> list[tuple[str, str]]:
    """(the id as shown, the reason) of each contact whose id is not usable, in id order.

    SQLite's legacy ``id INTEGER PRIMARY KEY`` (the rowid) can only hold an
    integer, and neither it nor PostgreSQL's primary key is ever NULL, so there only
    ``id < 1`` is looked for, on the key: no scan (``id IS NULL OR`` made SQLite read
    every contact, 0.2-0.3 s at 3M).
    """
    dialect = conn.dialect.name
    if dialect == POSTGRESQL or _id_is_rowid(conn):
        sql = "SELECT id FROM contacts WHERE id < 1 ORDER BY id"
    else:
        sql = f"SELECT id FROM contacts WHERE NOT {_usable_id_sql(dialect)} ORDER BY id"
    return [(excerpt(v), unusable_id_reason(v)) for (v,) in conn.execute(text(sql)) if contact_id_of(v) is None]


def _id_is_rowid(conn: Connection) -> bool:
    """Whether SQLite's ``contacts.id`` is the table's rowid (an ``INTEGER PRIMARY KEY``)."""
    pk = [r for r in conn.exec_driver_sql("PRAGMA table_info(contacts)") if r[5]]
    if len(pk) != 1 or str(pk[0][1]).lower() != "id" or str(pk[0][2]).upper() != "INTEGER":
        return False
    # A primary key that is not the rowid (WITHOUT ROWID, or a DESC quirk) has an index of its own.
    return not any(r[3] == "pk" for r in conn.exec_driver_sql("PRAGMA index_list(contacts)"))


@lru_cache(maxsize=200_000)
def _state_of(zip_code: str | None, state_column: str | None) -> str | None:
    # The same few ZIP/state pairs recur across millions of contacts.
    return resolve_state(zip_code, state_column)[0]


def _clusters(
    items: list[tuple[str, str, frozenset[str]]],
) -> list[list[tuple[str, str, frozenset[str]]]]:
    """Group month-day ranges whose spans overlap, so each group is one index scan."""
    out: list[list[tuple[str, str, frozenset[str]]]] = []
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
    """Every usable contact id in order, a page at a time (keyset pagination, bounded memory).

    The page boundary is the stored value, usable or not: SQLite orders text
    after every number, so a page ending on ``'C105'`` goes on from there.
    """
    last: object = 0  # no usable id is below 1
    ph = placeholder(conn)
    sql = f"SELECT id FROM contacts WHERE id > {ph} ORDER BY id LIMIT {ph}"
    while True:
        stored = [r[0] for r in driver_rows(conn, sql, (last, page))]
        if not stored:
            return
        yield from (cid for value in stored if (cid := contact_id_of(value)) is not None)
        last = stored[-1]
