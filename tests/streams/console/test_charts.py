"""The SVG charts as pure functions: what they draw, and that no text becomes markup."""

from __future__ import annotations

import re
from datetime import date, timedelta

from streams.console.charts import Band, Mark, daily_chart, timeline_chart

DAY = date(2026, 3, 10)


def _days(n: int = 60) -> list[dict[str, object]]:
    return [
        {
            "date": (DAY + timedelta(days=i)).isoformat(),
            "by_type": {"birthday": i % 3, "<b>x</b>": 1},
            "total": i % 3 + 1,
            "moved": {"smoothing": 2 if i == 5 else 0, "daily_cap": 0},
            "skipped": 0,
            "other": 0,
        }
        for i in range(n)
    ]


def test_the_daily_chart_has_a_bar_per_day_the_cap_and_the_moves() -> None:
    svg = daily_chart(_days(), ["birthday", "<b>x</b>"], daily_cap=7)
    assert len(re.findall(r'<g class="day" ', svg)) == 60
    assert 'data-cap="7"' in svg and "daily cap 7" in svg
    assert re.findall(r'data-day="([0-9-]+)"[^>]*>(?:(?!</g>).)*class="moved" data-moved="2"', svg) == ["2026-03-15"]
    assert "<b>" not in svg and "&lt;b&gt;x&lt;/b&gt;" in svg


def test_the_daily_chart_without_a_cap_draws_no_cap_line() -> None:
    assert 'class="cap"' not in daily_chart(_days(3), ["birthday"], daily_cap=None)


def test_the_timeline_shades_windows_and_places_emails_in_their_lanes() -> None:
    first, last = date(2025, 3, 10), date(2027, 3, 10)
    band = Band(date(2026, 3, 21), date(2026, 6, 19), "CA birthday window 2026-03-21..2026-06-19", "<cite>")
    marks = [
        Mark(date(2026, 4, 6), "birthday", "skipped", "skipped", "CA birthday window"),
        Mark(date(2026, 6, 20), "post_window", "pre-scheduled", "pending", ""),
        Mark(date(2030, 1, 1), "aep", "planned", "planned", "outside the span: not drawn"),
    ]
    svg = timeline_chart(first, last, DAY, [band], marks, None)
    rect = re.search(r'data-start="2026-03-21" data-end="2026-06-19"[^>]*><rect x="([\d.]+)" y="[\d.-]+" width="([\d.]+)"', svg)
    dot = re.search(r'<circle class="email skipped" data-day="2026-04-06"[^>]* cx="([\d.]+)"', svg)
    assert rect and dot
    assert float(rect.group(1)) < float(dot.group(1)) < float(rect.group(1)) + float(rect.group(2))
    assert 'data-day="2030-01-01"' not in svg
    assert "&lt;cite&gt;" in svg and "<cite>" not in svg
    assert 'class="today" data-day="2026-03-10"' in svg


def test_a_year_round_state_shades_the_whole_span() -> None:
    svg = timeline_chart(date(2025, 3, 10), date(2027, 3, 10), DAY, [], [], "NY year-round (source)")
    assert 'class="window year-round" data-start="2025-03-10" data-end="2027-03-10"' in svg
