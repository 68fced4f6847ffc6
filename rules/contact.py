"""Contact validation (SPEC section 2).

A contact is usable when it has an email of the form ``local@domain`` and a
state.  The state comes from the 5-digit ZIP (full dataset lookup), else from
the ``state`` column; when both are present and disagree, the ZIP wins and the
disagreement is reported.  Unparseable dates count as missing and are
reported.  Invalid contacts get no emails; they never stop the others.

Choice written down: an email is ``local@domain`` with exactly one ``@`` and
both sides non-empty after trimming.  The SQL count of valid contacts used for
the daily cap (streams/sweep/prefilter.py) implements this same definition; a test
checks the two agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from rules.anniversary import parse_iso_date
from rules.bounds import excerpt
from rules.records import quick_init
from rules.zip_state import BLANKS, normalize_state_code, state_of_zip


@quick_init
@dataclass(frozen=True)
class ContactRecord:
    """A contact's fields as stored (raw text), the input of validation."""

    id: int
    email: str | None
    zip_code: str | None
    state: str | None
    birth_date: str | None
    effective_date: str | None
    phone_number: str | None = None


@quick_init
@dataclass(frozen=True)
class Contact:
    """A valid contact, ready for the rules."""

    id: int
    email: str
    state: str
    birth_date: date | None
    effective_date: date | None
    phone_number: str | None = None
    warnings: tuple[str, ...] = ()

    @property
    def has_phone(self) -> bool:
        return bool(self.phone_number and self.phone_number.strip(BLANKS))


@quick_init
@dataclass(frozen=True)
class InvalidContact:
    id: int
    reasons: tuple[str, ...]
    warnings: tuple[str, ...] = ()


def usable_email(raw: str | None) -> bool:
    if raw is None:
        return False
    email = raw.strip(BLANKS)
    local, at, domain = email.partition("@")
    return bool(at) and bool(local) and bool(domain) and "@" not in domain


def resolve_state(zip_code: str | None, state_column: str | None) -> tuple[str | None, str | None]:
    """The contact's state and, when ZIP and column disagree, the warning to report."""
    from_zip = state_of_zip(zip_code)
    from_column = normalize_state_code(state_column)
    if from_zip is None:
        return from_column, None
    if from_column is not None and from_column != from_zip:
        return from_zip, f"ZIP {zip_code!s} is in {from_zip} but state column says {from_column}; using {from_zip}"
    return from_zip, None


# Dates a contact's birth or policy can have.  Outside them a date is junk (9999-12-31 is a
# common "unknown" filler), and anniversaries of year 9999 cannot even be computed.
FIRST_YEAR, LAST_YEAR = 1850, 2200


def _date_field(raw: str | None, name: str, warnings: list[str]) -> date | None:
    parsed = parse_iso_date(raw)
    if parsed is None and raw is not None and raw.strip(BLANKS):
        warnings.append(f"{name} {excerpt(raw)} is not a date (YYYY-MM-DD); treated as missing")
    if parsed is not None and not FIRST_YEAR <= parsed.year <= LAST_YEAR:
        warnings.append(
            f"{name} {excerpt(raw)} is outside {FIRST_YEAR}..{LAST_YEAR}; treated as missing"
        )
        return None
    return parsed


def validate_contact(record: ContactRecord) -> Contact | InvalidContact:
    warnings: list[str] = []
    reasons: list[str] = []
    if not usable_email(record.email):
        reasons.append(f"email {excerpt(record.email)} is not of the form local@domain")
    state, disagreement = resolve_state(record.zip_code, record.state)
    if disagreement:
        warnings.append(disagreement)
    if state is None:
        reasons.append(
            f"no state: ZIP {excerpt(record.zip_code)} is unknown and state column {excerpt(record.state)} "
            "is not a USPS code"
        )
    birth = _date_field(record.birth_date, "birth_date", warnings)
    effective = _date_field(record.effective_date, "effective_date", warnings)
    if reasons or state is None or record.email is None:
        return InvalidContact(record.id, tuple(reasons), tuple(warnings))
    return Contact(
        id=record.id,
        email=record.email.strip(BLANKS),
        state=state,
        birth_date=birth,
        effective_date=effective,
        phone_number=record.phone_number,
        warnings=tuple(warnings),
    )
