"""Run the mutation fuzzer by the thousand: mutated demo registries through `planner validate`
and `planner plan --time-limit 2`, and count the outcomes.

    python -m scripts.fuzz_registry [--validate 10000] [--plan 1000] [--seed 20261201]

Prints one CSV line per broken case (case, command, what broke, the mutations) as it goes and
a summary per command: cases, exit codes, broken cases. Exits 1 when any case broke the
invariant (exit 3, a traceback, a hang, a changed registry, a file outside --out).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from pathlib import Path

from tests.fuzzing import Outcome, run_many


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--validate", type=int, default=10_000)
    parser.add_argument("--plan", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=20261201)
    args = parser.parse_args()

    def report(outcome: Outcome) -> None:
        if outcome.broken:
            print(f"{outcome.case},{outcome.command},{outcome.broken!r},"
                  f"{'; '.join(outcome.mutations)!r}", flush=True)

    print("case,command,broken,mutations")
    broken = 0
    for command, count, extra in (("validate", args.validate, ()),
                                  ("plan", args.plan, ("--time-limit", "2"))):
        with tempfile.TemporaryDirectory() as tmp:
            outcomes = run_many(Path(tmp), args.seed, range(count), command, extra, report)
        codes = Counter(o.exit_code for o in outcomes)
        failed = sum(1 for o in outcomes if o.broken)
        broken += failed
        print(f"summary: {command}: {count} cases, exit codes "
              f"{dict(sorted(codes.items()))}, {failed} broke the invariant", flush=True)
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
