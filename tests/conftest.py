"""Rooted in the ``tests`` package, this conftest makes pytest (in its default ``prepend``
import mode) put the repository root on ``sys.path`` before any test module is imported,
whether the run is ``pytest tests`` or a single file: so that every test, its folder being
a package that mirrors the product's (``tests/rules``, ``tests/streams/<subpackage>``,
``tests/synthetic``), is imported as ``tests.<folder>.test_x`` and can
``from tests.builders import ...`` (or ``tests.legacy_db``, ``tests.sweeps``, ...).

Its fixtures, seen by every test folder: real SQLite databases in the legacy schema
(``legacy_db``) and generated agencies (``generated_db_factory``, ``generated_copy``); the
helpers they are made with are in ``tests/legacy_db.py``."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from synthetic.generate import generate_database
from tests.legacy_db import make_legacy_db


@pytest.fixture
def legacy_db(tmp_path: Path) -> Path:
    return make_legacy_db(tmp_path / "agency.db")


_GENERATED: dict[tuple[int, int], Path] = {}


@pytest.fixture(scope="session")
def generated_db_factory(tmp_path_factory: pytest.TempPathFactory) -> Callable[[int, int], Path]:
    """A generated database of N contacts, made once per session; tests get a copy."""

    def make(n: int, seed: int = 11) -> Path:
        key = (n, seed)
        if key not in _GENERATED:
            target = tmp_path_factory.mktemp("gen") / f"gen-{n}-{seed}.db"
            generate_database(str(target), n, seed=seed, as_of=date(2026, 3, 10))
            _GENERATED[key] = target
        return _GENERATED[key]

    return make


@pytest.fixture
def generated_copy(
    tmp_path: Path, generated_db_factory: Callable[[int, int], Path]
) -> Callable[..., Path]:
    counter = iter(range(1000))

    def copy(n: int = 3000, seed: int = 11) -> Path:
        src = generated_db_factory(n, seed)
        dst = tmp_path / f"copy-{next(counter)}.db"
        shutil.copyfile(src, dst)
        return dst

    return copy
