"""Wall time of the CLI's quick paths against `python -c pass` in the same run:
`planner --help`, `planner validate` and `planner plan` on the demo, and `planner check` of a
one-line change to the demo in a temporary git repository, the job CI runs on pull requests.

    python scripts/bench_startup.py [--runs 10]

Prints CSV `command,median_s,ratio_to_python` on stdout.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "planner --help": [sys.executable, "-m", "planner", "--help"],
    "planner validate (demo)": [sys.executable, "-m", "planner", "validate"],
}


def median_seconds(argv: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _check_repo(folder: Path) -> list[str]:
    """A git repository with the demo registry and one uncommitted traffic change."""
    git = ["git", "-c", "user.email=bench@example.com", "-c", "user.name=bench"]
    subprocess.run([sys.executable, "-m", "planner", "init", str(folder / "registry")],
                   check=True, capture_output=True)
    subprocess.run([*git, "init", "-q"], cwd=folder, check=True)
    subprocess.run([*git, "add", "-A"], cwd=folder, check=True)
    subprocess.run([*git, "commit", "-qm", "base"], cwd=folder, check=True)
    model = folder / "registry" / "models" / "llm-rag-answerer.yaml"
    model.write_text(model.read_text().replace("peak_rps: 6,", "peak_rps: 30,"))
    return [sys.executable, "-m", "planner", "check", "--registry", str(folder / "registry"),
            "--base", "HEAD", "--format", "json"]


def main() -> None:
    parser = argparse.ArgumentParser(description="CLI start-up benchmark")
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    baseline = None
    print("command,median_s,ratio_to_python")
    with tempfile.TemporaryDirectory() as tmp:
        commands = {**COMMANDS,
                    "planner plan (demo)": [sys.executable, "-m", "planner", "plan"],
                    "planner check (demo, core install)": _check_repo(Path(tmp))}
        for name, argv in commands.items():
            seconds = median_seconds(argv, args.runs)
            baseline = baseline or seconds
            print(f"{name},{seconds:.3f},{seconds / baseline:.1f}")


if __name__ == "__main__":
    main()
