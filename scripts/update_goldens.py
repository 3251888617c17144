"""Regenerate the golden files of the demo's outputs under tests/golden/demo/.

    python scripts/update_goldens.py

Runs `planner plan --registry planner/demo/registry --out DIR --seed 0 --workers 1
--period 2026-12` (one CP-SAT worker: among plans of equal cost, the same one on any machine) and
copies summary.md, cost.csv, manifests/ and dashboards/ from DIR. Review the diff before
committing it.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden" / "demo"
COMMAND = ["plan", "--registry", str(ROOT / "planner" / "demo" / "registry"), "--seed", "0",
           "--workers", "1", "--period", "2026-12"]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        subprocess.run([sys.executable, "-m", "planner", *COMMAND, "--out", str(out)],
                       check=True, capture_output=True)
        shutil.rmtree(GOLDEN, ignore_errors=True)
        GOLDEN.mkdir(parents=True)
        for name in ("summary.md", "cost.csv"):
            shutil.copy(out / name, GOLDEN / name)
        shutil.copytree(out / "manifests", GOLDEN / "manifests")
        shutil.copytree(out / "dashboards", GOLDEN / "dashboards")
    print(f"updated {GOLDEN}")


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    main()
