"""US state of a ZIP code, from a maintained dataset of every 5-digit ZIP.

Three-digit prefixes are not enough: 063 holds both NY and CT ZIPs, 726 AR and
MO, 834 ID and WY.  We look up the full 5-digit code in the dataset of the
``zipcodes`` package (USPS data, including military and territory codes), kept
here as a compact table (``zip_states.txt``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

# Every USPS code a contact may legitimately live in: states, DC, territories
# and military post offices.
US_STATES: frozenset[str] = frozenset(
    """AL AK AZ AR CA CO CT DE FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT
    NE NV NH NJ NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY""".split()
)
TERRITORIES: frozenset[str] = frozenset("DC AS GU MP PR VI FM MH PW".split())
MILITARY: frozenset[str] = frozenset("AA AE AP".split())
USPS_CODES: frozenset[str] = US_STATES | TERRITORIES | MILITARY

# '75201', '95046-1234' and '950461234' are accepted; anything else is not a ZIP.
_ZIP_RE = re.compile(r"([0-9]{5})(?:-?[0-9]{4})?")

# The characters stripped from raw text fields.  The SQL pre-filter trims the
# very same set (streams/sweep/prefilter.py), so both sides read a field alike.
BLANKS = " \t\r\n"


# The dataset as this package ships it: one line per state, "CA 90001 90002 ...", made
# from the ``zipcodes`` package by ``scripts/zip-table`` (``zip_table_text``) and checked
# equal to it by tests/rules/test_zip_table.py.  Reading it takes about 10 ms; decoding
# the ``zipcodes`` package's own compressed JSON took 0.8-2 s, paid by every command.
ZIP_TABLE = "zip_states.txt"


@lru_cache(maxsize=1)
def zip_states() -> Mapping[str, str]:
    """Every known 5-digit ZIP code mapped to its USPS state code (loaded once)."""
    text = (Path(__file__).parent / ZIP_TABLE).read_text(encoding="ascii")
    table: dict[str, str] = {}
    for line in text.splitlines():
        state, *codes = line.split()
        table.update(dict.fromkeys(codes, state))
    return table


def zipcodes_dataset() -> dict[str, str]:
    """ZIP -> state as the ``zipcodes`` package has it (slow: for making and checking the table)."""
    import zipcodes

    return {z["zip_code"]: z["state"] for z in zipcodes.list_all()}  # type: ignore[no-untyped-call]


def zip_table_text(dataset: Mapping[str, str]) -> str:
    """The shipped table's text: states in order, each with its codes in order."""
    by_state: dict[str, list[str]] = {}
    for code, state in sorted(dataset.items()):
        by_state.setdefault(state, []).append(code)
    return "".join(f"{state} {' '.join(codes)}\n" for state, codes in sorted(by_state.items()))


def zip5(raw: str | None) -> str | None:
    """The 5-digit ZIP of a raw ZIP or ZIP+4 field, or None when it is not one."""
    if raw is None:
        return None
    if len(raw) == 5 and raw.isdigit() and raw.isascii():
        return raw  # the common case, without the pattern
    m = _ZIP_RE.fullmatch(raw.strip(BLANKS))
    return m.group(1) if m else None


def state_of_zip(raw: str | None) -> str | None:
    """The state of a raw ZIP field, or None when the ZIP is missing or unknown."""
    z = zip5(raw)
    return zip_states().get(z) if z else None


def normalize_state_code(raw: str | None) -> str | None:
    """A USPS code from a free-text state column (case and blanks ignored), or None."""
    if raw is None:
        return None
    code = raw.strip(BLANKS)
    # ASCII only: the SQL side (upper() in SQLite) folds ASCII letters alone.
    return code.upper() if code.isascii() and code.upper() in USPS_CODES else None
