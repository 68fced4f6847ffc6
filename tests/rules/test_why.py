"""``rules.why.Why``: an explanation formatted when read reads exactly like the text it
stands for (explain prints it, tests compare it)."""

from __future__ import annotations

from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from rules.occurrence import Occurrence
from rules.placement import Horizon, place
from rules.why import Why

facts = st.one_of(st.dates(), st.integers(), st.text(max_size=20), st.none())


@given(facts, facts, st.text(max_size=10))
def test_it_reads_as_the_formatted_text(a: object, b: object, tail: str) -> None:
    text = f"{a} is before {b}"
    why = Why("{} is before {}", a, b)
    assert str(why) == text and f"{why}" == text and repr(why) == repr(text)
    assert why == text and text == why and hash(why) == hash(text)
    assert why + tail == text + tail
    assert (why + tail) + "!" == text + tail + "!"
    assert tail in why + tail


def test_it_differs_from_another_text() -> None:
    assert Why("{}", 1) != "2" and Why("{}", 1) != Why("{}", 2)
    assert Why("{}", 1) != 1  # a text, not the number


def test_a_placement_explains_itself_when_read() -> None:
    horizon = Horizon(date(2026, 3, 10))

    occ = Occurrence(
        key="1:birthday:2026",
        contact_id=1,
        email_type="birthday",
        event_date=date(2026, 3, 21),
        ideal_send_date=date(2026, 3, 20),
        priority=10,
        email_template=None,
        sms_template=None,
    )
    placed = place(occ, horizon, 7)
    assert placed is not None
    assert f"{placed.why}" == "ideal send date 2026-03-20 is in the range 2026-03-10..2026-04-09"
