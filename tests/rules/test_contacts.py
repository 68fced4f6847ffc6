"""SPEC section 2: which contacts are usable, their state, and what invalid ones get."""

from datetime import date

import pytest
import zipcodes

from rules.config import DEFAULT_CONFIG
from rules.contact import Contact, ContactRecord, InvalidContact, validate_contact
from rules.contact_schedule import ExistingRow, schedule_contact
from rules.placement import Horizon


def record(**fields: object) -> ContactRecord:
    base: dict[str, object] = {
        "id": 1,
        "email": "pat@example.com",
        "zip_code": None,
        "state": None,
        "birth_date": "1950-06-10",
        "effective_date": None,
    }
    base.update(fields)
    return ContactRecord(**base)  # type: ignore[arg-type]


def valid(**fields: object) -> Contact:
    result = validate_contact(record(**fields))
    assert isinstance(result, Contact), result
    return result


def invalid(**fields: object) -> InvalidContact:
    result = validate_contact(record(**fields))
    assert isinstance(result, InvalidContact), result
    return result


# --- email ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "email", [None, "", "   ", "pat.example.com", "@example.com", "pat@", " @ ", "pat@ "]
)
def test_unusable_email_makes_contact_invalid(email: str | None) -> None:
    c = invalid(email=email, zip_code="75201")
    assert any("email" in r for r in c.reasons)


def test_email_is_trimmed() -> None:
    assert valid(email="  pat@example.com\t", zip_code="75201").email == "pat@example.com"


def test_two_at_signs_is_not_local_at_domain() -> None:
    # rules/contact.py's documented choice: exactly one '@'
    invalid(email="pat@home@example.com", zip_code="75201")


# --- state ------------------------------------------------------------------------------------


def test_state_from_zip() -> None:
    assert valid(zip_code="90210").state == "CA"
    assert valid(zip_code="75201").state == "TX"


def test_zip_plus_4() -> None:
    assert valid(zip_code="90210-1234").state == "CA"
    assert valid(zip_code=" 10001-0001 ").state == "NY"


def test_state_column_when_zip_missing_or_unknown() -> None:
    assert valid(zip_code=None, state="TX").state == "TX"
    assert valid(zip_code="", state=" ny ").state == "NY"  # trimmed, case-insensitive
    assert valid(zip_code="00000", state="ca").state == "CA"  # unknown ZIP
    assert valid(zip_code="not a zip", state="MO").state == "MO"
    assert valid(zip_code=None, state="DC").state == "DC"
    assert valid(zip_code=None, state="PR").state == "PR"  # territory
    assert valid(zip_code=None, state="AE").state == "AE"  # military post office


@pytest.mark.parametrize(
    ("zip_code", "state"),
    [(None, None), ("", ""), ("00000", None), (None, "XX"), (None, "Texas"), ("abcde", "  ")],
)
def test_no_state_makes_contact_invalid(zip_code: str | None, state: str | None) -> None:
    c = invalid(zip_code=zip_code, state=state)
    assert any("state" in r for r in c.reasons)


def test_zip_wins_over_state_column_and_disagreement_is_reported() -> None:
    c = valid(zip_code="90210", state="NV")
    assert c.state == "CA"
    assert len(c.warnings) == 1
    assert "CA" in c.warnings[0] and "NV" in c.warnings[0]


def test_agreeing_zip_and_column_give_no_warning() -> None:
    assert valid(zip_code="90210", state="ca").warnings == ()


def _dataset_states(prefix: str) -> dict[str, set[str]]:
    """State -> ZIPs with this 3-digit prefix, straight from the zipcodes dataset."""
    out: dict[str, set[str]] = {}
    for z in zipcodes.list_all():
        if z["zip_code"].startswith(prefix):
            out.setdefault(z["state"], set()).add(z["zip_code"])
    return out


def test_prefix_063_straddles_ny_and_ct() -> None:
    assert valid(zip_code="06390").state == "NY"  # Fishers Island
    assert valid(zip_code="06320").state == "CT"  # New London
    # the full ZIP decides, even against the column
    c = valid(zip_code="06390", state="CT")
    assert c.state == "NY" and c.warnings


def test_prefix_726_straddles_ar_and_mo() -> None:
    assert valid(zip_code="72613").state == "AR"
    mo_zips = _dataset_states("726").get("MO")
    assert mo_zips, "the dataset has a 726xx ZIP in MO"
    for z in sorted(mo_zips):
        assert valid(zip_code=z).state == "MO"


def test_prefix_834_straddles_id_and_wy() -> None:
    states = _dataset_states("834")
    assert set(states) >= {"ID", "WY"}
    for st, zips in states.items():
        for z in sorted(zips):
            assert valid(zip_code=z).state == st
    assert valid(zip_code="83414").state == "WY"
    assert valid(zip_code="83201").state == "ID"


def test_mo_effective_window_follows_zip_state() -> None:
    # the state the windows use is the ZIP's, not the prefix's majority
    mo_zip = min(_dataset_states("726")["MO"])
    c = valid(zip_code=mo_zip, state="AR", birth_date=None, effective_date="2010-07-01")
    plan = schedule_contact(c, [], DEFAULT_CONFIG, Horizon(date(2025, 5, 20)))
    ed = [d for d in plan.decisions if d.occurrence.email_type == "effective_date"]
    assert ed and ed[0].skip_reason is not None and ed[0].skip_reason.startswith("MO ")


# --- dates ------------------------------------------------------------------------------------


def test_unparseable_dates_are_missing_and_reported() -> None:
    c = valid(zip_code="75201", birth_date="2025-02-30", effective_date="soon")
    assert c.birth_date is None and c.effective_date is None
    assert len(c.warnings) == 2
    assert any("2025-02-30" in w for w in c.warnings)
    assert any("soon" in w for w in c.warnings)


def test_dates_with_time_part_and_feb_29() -> None:
    c = valid(zip_code="75201", birth_date="1952-02-29", effective_date="2010-07-01T00:00:00")
    assert c.birth_date == date(1952, 2, 29)
    assert c.effective_date == date(2010, 7, 1)
    assert c.warnings == ()


def test_blank_date_is_missing_without_warning() -> None:
    c = valid(zip_code="75201", birth_date="", effective_date=None)
    assert c.birth_date is None and c.warnings == ()


def test_unparseable_birth_date_in_window_state_means_no_birthday_window() -> None:
    c = valid(zip_code="90210", birth_date="1955-05-32")
    plan = schedule_contact(c, [], DEFAULT_CONFIG, Horizon(date(2025, 4, 10)))
    assert all(d.occurrence.email_type != "birthday" for d in plan.decisions)
    assert plan.warnings == c.warnings and plan.warnings


# --- invalid contacts get nothing; their owned rows in the range go --------------------------


def test_invalid_contact_gets_no_emails_and_loses_owned_rows_in_range() -> None:
    t = date(2025, 9, 1)
    horizon = Horizon(t)  # range 2025-09-01..2025-10-01
    bad = invalid(email="nobody", zip_code="75201", birth_date="1950-09-20")
    rows = [
        ExistingRow(
            1,
            "birthday",
            date(2025, 9, 6),
            "pre-scheduled",
            "1:birthday:2025",
            date(2025, 9, 6),
            2025,
        ),
        ExistingRow(
            2, "aep", date(2025, 9, 15), "skipped", "1:aep:2025-09-15", date(2025, 9, 15), 2025
        ),
        ExistingRow(
            3, "aep", date(2025, 10, 1), "pre-scheduled", "1:aep:x", date(2025, 10, 1), 2025
        ),
        ExistingRow(4, "birthday", date(2025, 10, 2), "pre-scheduled", "1:birthday:x", None, 2025),
        ExistingRow(5, "birthday", date(2025, 8, 31), "pre-scheduled", "1:birthday:y", None, 2025),
        ExistingRow(6, "birthday", date(2025, 9, 10), "sent", "1:birthday:2024", None, 2024),
        ExistingRow(7, "BIRTHDAY", date(2025, 9, 10), "SKIPPED", None, None, 2023),
    ]
    plan = schedule_contact(bad, rows, DEFAULT_CONFIG, horizon)
    assert plan.decisions == ()
    assert sorted(plan.deletes) == [1, 2, 3]  # owned and dated in [T, T+H] only
    assert plan.invalid_reasons == bad.reasons


def test_invalid_contact_without_state_is_reported_with_reason() -> None:
    bad = invalid(zip_code=None, state=None)
    plan = schedule_contact(bad, [], DEFAULT_CONFIG, Horizon(date(2025, 1, 1)))
    assert plan.decisions == () and plan.deletes == ()
    assert any("state" in r for r in plan.invalid_reasons)


def test_filler_dates_far_in_the_future_are_treated_as_missing_not_a_crash() -> None:
    from datetime import date

    from rules.config import DEFAULT_CONFIG
    from rules.contact import ContactRecord, validate_contact
    from rules.contact_schedule import schedule_contact
    from rules.placement import Horizon

    contact = validate_contact(
        ContactRecord(1, "a@b.com", "75201", "TX", "9999-12-31", "0001-01-01", None)
    )
    assert contact.birth_date is None and contact.effective_date is None  # type: ignore[union-attr]
    assert any("outside" in w for w in contact.warnings)
    plan = schedule_contact(contact, [], DEFAULT_CONFIG, Horizon(date(2026, 3, 10)))
    assert [d.occurrence.email_type for d in plan.decisions] == []
