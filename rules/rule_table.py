"""The state rules in force on a date, as ``mailwindow rules`` lists them (issue 15).

A window version is listed when its period (``effective_from..effective_until``)
contains the date; the version a window actually uses is chosen by that window's
anchor (``rules.exclusion_window``), so on the day of a change the table shows the
new version while windows anchored before it keep the old one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from rules.config import BIRTHDAY, Config, WindowRule, YearRoundRule, band_text, period_text

YEAR_ROUND = "year_round"
_KIND_ORDER = {BIRTHDAY: 0, "effective_date": 1, YEAR_ROUND: 2}


@dataclass(frozen=True)
class RuleLine:
    state: str
    kind: str  # birthday, effective_date or year_round
    rule: WindowRule | YearRoundRule

    @property
    def window(self) -> str:
        r = self.rule
        if isinstance(r, YearRoundRule):
            return "every date excluded"
        anchor = "1st of the birth month" if r.use_month_start else "the date"
        return f"{r.days_before} before, {r.days_after} after {anchor} (+{r.pre_window_days} pre-window)"

    @property
    def in_force(self) -> str:
        return period_text(self.rule.effective_from, self.rule.effective_until)

    @property
    def ages(self) -> str:
        r = self.rule
        return "any age" if isinstance(r, YearRoundRule) else band_text(r.min_age, r.max_age) or "any age"

    def to_dict(self) -> dict[str, Any]:
        r = self.rule
        out: dict[str, Any] = {"state": self.state, "kind": self.kind}
        if isinstance(r, WindowRule):
            out.update(
                window_before_days=r.days_before,
                window_after_days=r.days_after,
                pre_window_extension_days=r.pre_window_days,
                use_month_start=r.use_month_start,
                min_age=r.min_age,
                max_age=r.max_age,
            )
        out.update(
            effective_from=r.effective_from.isoformat() if r.effective_from else None,
            effective_until=r.effective_until.isoformat() if r.effective_until else None,
            source=r.source,
            note=r.note,
        )
        return out


def rule_table(config: Config, as_of: date | None, state: str | None = None) -> list[RuleLine]:
    """The rules in force on ``as_of`` (every version when None), by state and kind."""
    lines = [RuleLine(r.state, r.kind, r) for r in config.window_rules]
    lines += [RuleLine(r.state, YEAR_ROUND, r) for r in config.year_round_rules]
    return sorted(
        (
            line
            for line in lines
            if (state is None or line.state == state)
            and (as_of is None or line.rule.in_force_on(as_of))
        ),
        key=lambda line: (line.state, _KIND_ORDER[line.kind], line.rule.effective_from or date.min),
    )
