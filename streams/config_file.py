"""Reading the scheduler's YAML config file (the shell half of rules/config.py)."""

from __future__ import annotations

from pathlib import Path

import yaml

from rules.config import DEFAULT_CONFIG, Config, ConfigError, config_from_mapping


def load_config_file(path: str | None) -> tuple[Config, list[str]]:
    """The config of a YAML file (defaults when path is None) and its warnings."""
    if path is None:
        return DEFAULT_CONFIG, []
    p = Path(path)
    try:
        raw = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc}") from None
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}: malformed YAML{where}: {problem}") from None
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping of sections")
    return config_from_mapping(data, source=str(path))
