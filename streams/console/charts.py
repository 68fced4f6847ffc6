"""The console's two charts as server-rendered SVG: pure functions from data to markup.

No JavaScript and no charting library: the pages work offline and print as
they look.  Every text (a label, a ``<title>`` tooltip, an attribute) goes
through ``_esc``, so an email type or a skip reason stored by another program
cannot become markup.  The elements carry ``data-*`` attributes (a day, a
window's dates, an email's status) so a test, or a person's browser tools,
can read what is drawn without measuring pixels.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

# Colours of the email types, in the order the types are listed (then repeated).
TYPE_COLOURS = (
    "#4c78a8", "#f58518", "#54a24b", "#b279a2", "#e45756",
    "#72b7b2", "#eeca3b", "#9d755d", "#ff9da6", "#bab0ac",
)
STATUS_COLOURS = {
    "pending": "#2b6cb0",
    "sent": "#2f855a",
    "skipped": "#c53030",
    "failed": "#6b46c1",
    "planned": "#718096",
}


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _nice_max(value: float) -> int:
    """The smallest 1, 2 or 5 times a power of ten at least ``value`` (an axis's top)."""
    if value <= 0:
        return 1
    step = 1
    while True:
        for m in (1, 2, 5):
            if step * m >= value:
                return step * m
        step *= 10


# --- the dashboard's daily bars ---------------------------------------------------------------

W, PLOT_H = 960, 260
LEFT, RIGHT, TOP, AXIS = 56, 12, 16, 24
LEGEND_ROW = 16


def daily_chart(days: Sequence[dict[str, Any]], types: Sequence[str], daily_cap: int | None) -> str:
    """Stacked bars per day by email type, the daily cap as a dashed line, and a mark over
    each day where the sweep moved emails (smoothing or the cap) to it.

    ``days``: the dashboard's days (``streams.console.dashboard.days_of``).
    """
    n = max(1, len(days))
    legend, legend_rows = _legend(types, colour_of(types), TOP + PLOT_H + AXIS)
    height = TOP + PLOT_H + AXIS + legend_rows * LEGEND_ROW + 8
    plot_w, plot_h = W - LEFT - RIGHT, PLOT_H
    highest = max([int(d["total"]) for d in days] + [int((daily_cap or 0) * 1.1)])
    step = _nice_max(highest / 5)
    top: int = step * max(1, -(-highest // step))
    bar_w = plot_w / n

    def y(v: float) -> float:
        return TOP + plot_h - plot_h * v / top

    colour = colour_of(types)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart daily" viewBox="0 0 {W} {height}" '
        f'role="img" aria-label="emails per day for the next {n} days">'
    ]
    out.extend(_y_axis(top, step, y))
    for i, d in enumerate(days):
        out.append(_day_bar(d, i, bar_w, types, colour, y))
    if daily_cap:
        cy = y(daily_cap)
        out.append(
            f'<line class="cap" data-cap="{daily_cap}" x1="{LEFT}" x2="{W - RIGHT}" y1="{cy:.1f}" y2="{cy:.1f}">'
            f"<title>daily cap {daily_cap}</title></line>"
            f'<text class="cap-label" x="{W - RIGHT - 4}" y="{cy - 4:.1f}" text-anchor="end">'
            f"daily cap {daily_cap}</text>"
        )
    out.append(legend)
    out.append("</svg>")
    return "".join(out)


def colour_of(types: Sequence[str]) -> dict[str, str]:
    return {t: TYPE_COLOURS[i % len(TYPE_COLOURS)] for i, t in enumerate(types)}


def _y_axis(top: int, step: int, y: Any) -> list[str]:
    return [
        f'<line class="grid" x1="{LEFT}" x2="{W - RIGHT}" y1="{y(v):.1f}" y2="{y(v):.1f}"/>'
        f'<text class="axis" x="{LEFT - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v}</text>'
        for v in range(0, top + 1, step)
    ]


def _day_bar(d: dict[str, Any], i: int, bar_w: float, types: Sequence[str], colour: dict[str, str], y: Any) -> str:
    x = LEFT + i * bar_w
    day = _esc(d["date"])
    parts = [f'<g class="day" data-day="{day}" data-total="{int(d["total"])}">']
    base = 0
    for t in types:
        count = d["by_type"].get(t, 0)
        if not count:
            continue
        top_y, bottom_y = y(base + count), y(base)
        parts.append(
            f'<rect class="segment" data-type="{_esc(t)}" data-count="{int(count)}" x="{x + 1:.1f}" '
            f'y="{top_y:.1f}" width="{max(1.0, bar_w - 2):.1f}" height="{bottom_y - top_y:.1f}" '
            f'fill="{colour[t]}"><title>{day} {_esc(t)}: {int(count)}</title></rect>'
        )
        base += count
    moved = d["moved"]["smoothing"] + d["moved"]["daily_cap"]
    if moved:
        cx, cy = x + bar_w / 2, y(base) - 7
        parts.append(
            f'<path class="moved" data-moved="{int(moved)}" d="M{cx - 4:.1f},{cy - 4:.1f} '
            f'L{cx + 4:.1f},{cy - 4:.1f} L{cx:.1f},{cy + 3:.1f} Z">'
            f"<title>{day}: {int(moved)} moved here ({int(d['moved']['smoothing'])} by effective-date "
            f"smoothing, {int(d['moved']['daily_cap'])} by the daily cap)</title></path>"
        )
    if i % 7 == 0:
        parts.append(
            f'<text class="axis" x="{x + bar_w / 2:.1f}" y="{TOP + PLOT_H + 16}" text-anchor="middle">'
            f"{_esc(str(d['date'])[5:])}</text>"
        )
    parts.append("</g>")
    return "".join(parts)


def _legend(types: Sequence[str], colour: dict[str, str], top: int) -> tuple[str, int]:
    """The legend below the axis, wrapped into rows; returns it and its number of rows."""
    entries = [(t, f'fill="{colour[t]}"', "rect") for t in types]
    entries.append(("moved by smoothing or the cap", 'class="moved"', "path"))
    parts = ['<g class="legend">']
    x, row = LEFT, 0
    for label, paint, shape in entries:
        width = 24 + 7 * len(label)
        if x + width > W - RIGHT and x > LEFT:
            x, row = LEFT, row + 1
        y = top + row * LEGEND_ROW
        if shape == "rect":
            parts.append(f'<rect x="{x}" y="{y}" width="10" height="10" {paint}/>')
        else:
            parts.append(f'<path {paint} d="M{x},{y} L{x + 10},{y} L{x + 5},{y + 8} Z"/>')
        parts.append(f'<text class="legend-label" x="{x + 14}" y="{y + 9}">{_esc(label)}</text>')
        x += width
    parts.append("</g>")
    return "".join(parts), row + 1


# --- a contact's timeline ---------------------------------------------------------------------


@dataclass(frozen=True)
class Band:
    """An exclusion window on the timeline."""

    start: date
    end: date
    label: str  # e.g. 'CA birthday window 2026-03-26..2026-06-24'
    source: str


@dataclass(frozen=True)
class Mark:
    """An email on the timeline."""

    day: date
    email_type: str
    status: str  # as stored ('planned': no row yet)
    status_class: str  # one of STATUS_COLOURS
    detail: str  # its tooltip: key, reason, note


TL_W, TL_LANE, TL_TOP, TL_LEFT = 960, 26, 40, 120


def timeline_chart(
    first: date, last: date, today: date, bands: Sequence[Band], marks: Sequence[Mark], year_round: str | None
) -> str:
    """``first..last`` left to right: the windows shaded and named, one lane per email type
    with each email a dot coloured by its status, today a line."""
    span = max(1, (last - first).days)
    plot_w = TL_W - TL_LEFT - 12
    lanes = sorted({m.email_type for m in marks})
    # The frame holds the windows, lanes and axis; the status legend is a row below it.
    frame = TL_TOP + TL_LANE * max(1, len(lanes)) + 62
    height = frame + 18

    def x(d: date) -> float:
        return TL_LEFT + plot_w * (d - first).days / span

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart timeline" viewBox="0 0 {TL_W} {height}" '
        f'role="img" aria-label="timeline {first} to {last}">'
    ]
    if year_round:
        out.append(
            f'<rect class="window year-round" data-start="{first}" data-end="{last}" x="{TL_LEFT}" '
            f'y="{TL_TOP - 14}" width="{plot_w}" height="{frame - TL_TOP - 30}">'
            f"<title>{_esc(year_round)}: every date excluded</title></rect>"
            f'<text class="window-label" x="{TL_LEFT + 4}" y="{TL_TOP - 18}">{_esc(year_round)}</text>'
        )
    for k, b in enumerate(bands):
        out.append(_band(b, k, x, first, last, frame))
    out.extend(_months(first, last, x, frame))
    for i, lane in enumerate(lanes):
        ly = TL_TOP + TL_LANE * i + TL_LANE / 2
        out.append(
            f'<text class="lane" x="{TL_LEFT - 8}" y="{ly + 4:.1f}" text-anchor="end">{_esc(lane)}</text>'
            f'<line class="lane-line" x1="{TL_LEFT}" x2="{TL_W - 12}" y1="{ly:.1f}" y2="{ly:.1f}"/>'
        )
    for m in marks:
        if first <= m.day <= last:
            out.append(_mark(m, x(m.day), TL_TOP + TL_LANE * lanes.index(m.email_type) + TL_LANE / 2))
    tx = x(today)
    out.append(
        f'<line class="today" data-day="{today}" x1="{tx:.1f}" x2="{tx:.1f}" y1="{TL_TOP - 30}" '
        f'y2="{frame - 30}"><title>today {today}</title></line>'
        f'<text class="today-label" x="{tx + 3:.1f}" y="{frame - 32}">today</text>'
    )
    out.append(_status_legend(height))
    out.append("</svg>")
    return "".join(out)


def _band(b: Band, k: int, x: Any, first: date, last: date, height: int) -> str:
    x0, x1 = x(max(b.start, first)), x(min(b.end, last) + timedelta(days=1))
    label_y = TL_TOP - 18 - 12 * (k % 2)  # alternate rows: neighbouring windows' names do not overlap
    # Near the right edge the name ends where the window ends, so it stays in the picture.
    anchor = f'x="{x1 - 2:.1f}" text-anchor="end"' if x0 > TL_W - 260 else f'x="{x0 + 2:.1f}"'
    return (
        f'<g class="window" data-start="{b.start}" data-end="{b.end}" data-label="{_esc(b.label)}">'
        f'<rect x="{x0:.1f}" y="{TL_TOP - 14}" width="{max(1.0, x1 - x0):.1f}" height="{height - TL_TOP - 30}">'
        f"<title>{_esc(b.label)} (source: {_esc(b.source)})</title></rect>"
        f'<text class="window-label" {anchor} y="{label_y}">{_esc(b.label)}</text></g>'
    )


def _months(first: date, last: date, x: Any, height: int) -> list[str]:
    out = []
    d = date(first.year, first.month, 1)
    while d <= last:
        if d >= first:
            out.append(
                f'<line class="month" x1="{x(d):.1f}" x2="{x(d):.1f}" y1="{TL_TOP - 14}" y2="{height - 30}"/>'
                f'<text class="axis" x="{x(d) + 2:.1f}" y="{height - 20}">{_month_label(d, first)}</text>'
            )
            if d.month == 1:  # the year under its first month: the labels stay short
                out.append(f'<text class="axis" x="{x(d) + 2:.1f}" y="{height - 8}">{d.year}</text>')
        d = date(d.year + (d.month == 12), d.month % 12 + 1, 1)
    return out


def _month_label(d: date, first: date) -> str:
    return f"{d:%b}"


def _mark(m: Mark, cx: float, cy: float) -> str:
    colour = STATUS_COLOURS.get(m.status_class, STATUS_COLOURS["failed"])
    fill = "none" if m.status_class == "planned" else colour
    return (
        f'<circle class="email {_esc(m.status_class)}" data-day="{m.day}" data-type="{_esc(m.email_type)}" '
        f'data-status="{_esc(m.status)}" cx="{cx:.1f}" cy="{cy:.1f}" r="6" fill="{fill}" stroke="{colour}" '
        f'stroke-width="2"><title>{m.day} {_esc(m.email_type)}: {_esc(m.status)}'
        f"{' - ' + _esc(m.detail) if m.detail else ''}</title></circle>"
    )


def _status_legend(height: int) -> str:
    parts = ['<g class="legend">']
    x = TL_LEFT
    for name, colour in STATUS_COLOURS.items():
        fill = "none" if name == "planned" else colour
        parts.append(
            f'<circle cx="{x + 5}" cy="{height - 8}" r="5" fill="{fill}" stroke="{colour}" stroke-width="2"/>'
            f'<text class="legend-label" x="{x + 14}" y="{height - 4}">{name}</text>'
        )
        x += 90
    parts.append("</g>")
    return "".join(parts)
