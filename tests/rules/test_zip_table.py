"""The ZIP -> state table the rules read is the ``zipcodes`` dataset, code for code."""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

import rules.zip_state as zip_state
from rules.zip_state import (
    ZIP_TABLE,
    state_of_zip,
    zip5,
    zip_states,
    zip_table_text,
    zipcodes_dataset,
)


def test_the_shipped_table_is_the_zipcodes_dataset() -> None:
    dataset = zipcodes_dataset()
    assert len(dataset) > 40_000
    assert dict(zip_states()) == dataset
    # and the file is exactly what scripts/zip-table writes (a reviewer diffs it)
    shipped = (Path(zip_state.__file__).parent / ZIP_TABLE).read_text(encoding="ascii")
    assert shipped == zip_table_text(dataset)


def test_codes_that_three_digit_prefixes_get_wrong() -> None:
    # 063 holds NY (Fishers Island) and CT; 834 holds ID and WY.
    assert state_of_zip("06390") == "NY"
    assert state_of_zip("06340") == "CT"
    assert state_of_zip("83414") == "WY"
    assert state_of_zip("83401") == "ID"
    assert state_of_zip("00000") is None


def test_the_table_text_round_trips() -> None:
    sample = {"90210": "CA", "10001": "NY", "90001": "CA"}
    assert zip_table_text(sample) == "CA 90001 90210\nNY 10001\n"


def test_reading_the_table_does_not_load_the_zipcodes_package() -> None:
    import sys

    zip_states.cache_clear()
    sys.modules.pop("zipcodes", None)
    assert len(zip_states()) > 40_000
    assert "zipcodes" not in sys.modules


@settings(max_examples=500, deadline=None)
@given(
    st.one_of(
        st.text(alphabet="0123456789", min_size=4, max_size=10),
        st.text(alphabet="0123456789-٣ \t", min_size=0, max_size=12),
    )
)
def test_a_zip_field_reads_as_its_pattern_says(raw: str) -> None:
    """Five ASCII digits are read without the pattern; every field reads as the pattern says
    (Arabic-Indic digits are digits to ``str.isdigit``, not to a ZIP)."""
    m = re.fullmatch(r"([0-9]{5})(?:-?[0-9]{4})?", raw.strip(" \t\r\n"))
    assert zip5(raw) == (m.group(1) if m else None)
