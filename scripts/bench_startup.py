"""Start-up cost of the CLI: wall time of `planner --help` and `planner validate` on the demo,
against `python -c pass` in the same run.

    python scripts/bench_startup.py [--runs 10]

Prints CSV `command,median_s,ratio_to_python` on stdout.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

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


def main() -> None:
    parser = argparse.ArgumentParser(description="CLI start-up benchmark")
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    baseline = None
    print("command,median_s,ratio_to_python")
    for name, argv in COMMANDS.items():
        seconds = median_seconds(argv, args.runs)
        baseline = baseline or seconds
        print(f"{name},{seconds:.3f},{seconds / baseline:.1f}")


if __name__ == "__main__":
    main()
