"""The functional core of mailwindow: pure scheduling rules.

Nothing in this package reads the clock, opens a file or a socket, or knows
about SQL or Kafka.  Every function takes the contact, the config and the
as-of date it needs and returns a decision together with its reason.
(The one exception is ``zip_state``, which reads the ZIP dataset shipped
inside the ``zipcodes`` package once, lazily: that is static reference data.)

The same modules compiled
-------------------------
``scripts/compile-rules`` (run by ``scripts/setup``) compiles most of these modules
with mypyc into ``var/compiled-rules``: the same source, as C extensions.  A sweep of
the AEP season spends most of its time in these functions, and compiled they take
about a quarter less (README, "Compiled rules").  This file, never compiled, chooses
at import which copy runs: the compiled one only when its build says it was made from
exactly these sources (``source_digest``) by this Python; otherwise, or with
``MAILWINDOW_PURE_RULES=1`` in the environment, the source.  So an edited rule is never
shadowed by an older build: it runs as source until ``scripts/compile-rules`` builds it
again.  ``compiled_from`` says which runs.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import json
import os
import sys
from pathlib import Path

PURE_ENV = "MAILWINDOW_PURE_RULES"
SOURCE_DIR = Path(__file__).resolve().parent
BUILD_DIR = SOURCE_DIR.parent / "var" / "compiled-rules"
MANIFEST = "manifest.json"


def source_digest(folder: Path = SOURCE_DIR) -> str:
    """The digest of the package's modules (not its data or sub-packages): what a build
    of them must have been made from."""
    h = hashlib.sha256()
    for path in sorted(folder.glob("*.py")):
        h.update(path.name.encode())
        h.update(b"\0")
        h.update(path.read_bytes())
        h.update(b"\0")
    return h.hexdigest()


def build_identity() -> dict[str, str]:
    """What a build must match besides the sources: this interpreter, exactly."""
    return {"python": sys.version, "cache_tag": str(sys.implementation.cache_tag), "abiflags": sys.abiflags}


def current_build(build_dir: Path = BUILD_DIR, source_dir: Path = SOURCE_DIR) -> dict[str, object] | None:
    """The build's manifest when it was made from these sources by this Python, else None."""
    try:
        manifest = json.loads((build_dir / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("sources") != source_digest(source_dir):
        return None
    if any(manifest.get(k) != v for k, v in build_identity().items()):
        return None
    files = [manifest.get("shared"), *manifest.get("modules", [])]
    if not all(isinstance(f, str) and (build_dir / f).is_file() for f in files):
        return None
    return manifest


def _use_build() -> str | None:
    """Put the compiled modules first on this package's path, when they may run."""
    if os.environ.get(PURE_ENV, "") not in ("", "0"):
        return None
    manifest = current_build()
    if manifest is None:
        return None
    # Every compiled module imports the build's shared library by its top-level name;
    # loaded here, it needs no entry on sys.path.
    shared = BUILD_DIR / str(manifest["shared"])
    name = shared.name.split(".", 1)[0]
    loader = importlib.machinery.ExtensionFileLoader(name, str(shared))
    spec = importlib.util.spec_from_file_location(name, shared, loader=loader)
    if spec is None:
        return None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    __path__.insert(0, str(BUILD_DIR / "rules"))
    return str(BUILD_DIR)


compiled_from: str | None = _use_build()
