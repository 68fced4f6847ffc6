"""Compile the rules with mypyc into var/compiled-rules (``rules/__init__.py`` says when
that build runs instead of the source).

    .venv/bin/python scripts/compile_rules.py          # build when the sources changed
    .venv/bin/python scripts/compile_rules.py --force  # build again

The build runs in a temporary copy of the package, so nothing is written beside the
sources, and replaces var/compiled-rules only once it is whole: an interrupted build
leaves the last one (or none), never half of one.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Not compiled: this package's __init__ (it chooses between source and build) and the two
# modules that read files beside their source (zip_state's table, golden's snapshots).
NOT_COMPILED = {"__init__.py", "zip_state.py", "golden.py"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--force", action="store_true", help="build even when the build is current")
    args = ap.parse_args()
    # The build's own imports must see the source, whatever build is there.
    os.environ["MAILWINDOW_PURE_RULES"] = "1"
    sys.path.insert(0, str(ROOT))
    import rules

    if not args.force and rules.current_build() is not None:
        print(f"compile-rules: {rules.BUILD_DIR} is current")
        return 0
    print("compile-rules: compiling the rules with mypyc (about 40 s)...", file=sys.stderr)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="compile-rules-") as tmp:
        work = Path(tmp) / "work"
        shutil.copytree(rules.SOURCE_DIR, work / "rules", ignore=shutil.ignore_patterns("__pycache__"))
        digest = rules.source_digest(work / "rules")
        modules = sorted(p.name for p in (work / "rules").glob("*.py") if p.name not in NOT_COMPILED)
        done = subprocess.run(
            [str(Path(sys.executable).with_name("mypyc")), "--config-file", str(ROOT / "pyproject.toml"),
             *(f"rules/{m}" for m in modules)],
            cwd=work, capture_output=True, text=True,
        )
        if done.returncode:
            sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
            print("compile-rules: mypyc failed (output above); the rules run as source", file=sys.stderr)
            return 1
        shared = [p for p in work.glob("*__mypyc*.so")]
        if len(shared) != 1:
            print(f"compile-rules: expected one shared library, found {len(shared)}", file=sys.stderr)
            return 1
        staged = Path(tmp) / "compiled-rules"
        (staged / "rules").mkdir(parents=True)
        shutil.copy2(shared[0], staged / shared[0].name)
        built = []
        for m in modules:
            found = list((work / "rules").glob(f"{m[:-3]}.*.so"))
            if len(found) != 1:
                print(f"compile-rules: no extension built for rules/{m}", file=sys.stderr)
                return 1
            shutil.copy2(found[0], staged / "rules" / found[0].name)
            built.append(f"rules/{found[0].name}")
        manifest = {"sources": digest, **rules.build_identity(), "shared": shared[0].name, "modules": built}
        (staged / rules.MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
        target = rules.BUILD_DIR
        target.parent.mkdir(parents=True, exist_ok=True)
        old = target.with_name(target.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if target.exists():
            target.rename(old)
        shutil.move(str(staged), str(target))
        shutil.rmtree(old, ignore_errors=True)
    print(f"compile-rules: {len(built)} modules compiled into {target} in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
