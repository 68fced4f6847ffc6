"""Packaged state-rule profiles: opt-in sets of dated, cited rules (issue 15).

A config selects one with ``state_rules.profile: NAME``; each state and kind the
profile names replaces the config's rule of that state and kind
(``rules.config._with_profile``).  A profile is a YAML file beside this module,
``NAME.yaml``, whose ``state_rules`` section has the config's shape; its
``about`` says what it is.  The files are the project's own (reviewed like code),
so they are read with PyYAML's safe loader, not the guarded reader of agency files.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

_FOLDER = Path(__file__).resolve().parent
PROFILE_NAMES: tuple[str, ...] = tuple(sorted(p.stem for p in _FOLDER.glob("*.yaml")))


@cache
def _profile(name: str) -> dict[str, Any]:
    data = yaml.safe_load((_FOLDER / f"{name}.yaml").read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("state_rules"), dict):
        raise ValueError(f"profile {name}: no state_rules mapping in {_FOLDER / name}.yaml")
    return data


def profile_state_rules(name: str) -> tuple[dict[str, Any], str]:
    """The profile's ``state_rules`` mapping and the name its errors give as their source."""
    return _profile(name)["state_rules"], f"profile {name}"


def profile_about(name: str) -> str:
    return str(_profile(name).get("about", ""))
