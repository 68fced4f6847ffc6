"""The compiled rules (``rules/__init__.py``, ``scripts/compile-rules``): the suite runs the
build that a sweep runs, a build never shadows a changed source, and the rules' tests
pass as source too."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import rules
from rules import contact_schedule, zip_state

ROOT = Path(__file__).resolve().parents[2]


def test_the_suite_runs_the_build_a_sweep_runs() -> None:
    # scripts/setup builds it; a stale or missing build would leave the whole suite
    # testing only the source while sweeps run the build.
    assert rules.compiled_from == str(rules.BUILD_DIR), (
        f"the rules run as source: run scripts/compile-rules (or unset {rules.PURE_ENV})"
    )
    assert contact_schedule.__file__.startswith(str(rules.BUILD_DIR))
    assert contact_schedule.__file__.endswith(".so")
    # Not compiled: it reads its table beside its source.
    assert zip_state.__file__ == str(rules.SOURCE_DIR / "zip_state.py")


def _copy_with_build(tmp_path: Path) -> Path:
    """The package and its build in another checkout's places."""
    shutil.copytree(rules.SOURCE_DIR, tmp_path / "rules", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(rules.BUILD_DIR, tmp_path / "var" / "compiled-rules")
    return tmp_path


def _runs(root: Path, **env: str) -> str:
    """Where ``rules.contact`` is loaded from in a fresh interpreter run from ``root``."""
    clean = {k: v for k, v in os.environ.items() if k != rules.PURE_ENV}
    out = subprocess.run(
        [sys.executable, "-c", "import rules.contact as c, rules; print(rules.compiled_from, c.__file__)"],
        cwd=root, env={**clean, "PYTHONPATH": str(root), **env}, capture_output=True, text=True, check=True,
    )
    compiled_from, path = out.stdout.split()
    assert (compiled_from == "None") == path.endswith(".py")
    assert path.startswith(str(root)), path  # this copy's package or build, not the checkout's
    return "build" if compiled_from != "None" else "source"


@pytest.mark.skipif(rules.compiled_from is None, reason="needs the build (the test above fails then)")
def test_a_build_runs_only_for_its_own_sources_and_python(tmp_path: Path) -> None:
    root = _copy_with_build(tmp_path)
    assert _runs(root) == "build"
    assert _runs(root, **{rules.PURE_ENV: "1"}) == "source"

    manifest_path = root / "var" / "compiled-rules" / rules.MANIFEST
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest_path.write_text(json.dumps({**manifest, "python": "3.11.0 (another build)"}), encoding="utf-8")
    assert _runs(root) == "source"
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    assert _runs(root) == "build"

    # One rule edited after the build: every module runs as source until it is built again.
    edited = root / "rules" / "post_window.py"
    edited.write_text(edited.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    assert _runs(root) == "source"

    manifest_path.write_text("{not json", encoding="utf-8")
    assert _runs(root) == "source"


@pytest.mark.skipif(os.environ.get(rules.PURE_ENV) == "1", reason="this is that run")
def test_the_rules_tests_pass_as_source() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "tests/rules",
         f"--ignore={Path(__file__).relative_to(ROOT)}"],
        cwd=ROOT, env={**os.environ, rules.PURE_ENV: "1"}, capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert " passed" in done.stdout.splitlines()[-1]
