"""The mutation fuzzer's invariant on a bounded number of cases: exit 0, 1 or 2, never 3, no
traceback, the registry untouched, nothing written outside --out. `scripts/fuzz_registry.py`
runs the same cases by the thousand."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from tests.fuzzing import run_many

SEED = 20261201


def check(outcomes) -> None:
    broken = [f"case {o.case} ({'; '.join(o.mutations)}): {o.broken}"
              for o in outcomes if o.broken]
    assert not broken, "\n".join(broken)


def test_validate_on_mutated_registries(tmp_path: Path):
    outcomes = run_many(tmp_path, SEED, range(100), "validate")
    check(outcomes)
    codes = Counter(o.exit_code for o in outcomes)
    assert codes[0] > 0 and codes[2] > 0  # the cases reach both valid and invalid registries


def test_plan_on_mutated_registries(tmp_path: Path):
    outcomes = run_many(tmp_path, SEED, range(20), "plan", ("--solver", "greedy"))
    check(outcomes)
    assert {o.exit_code for o in outcomes} <= {0, 1, 2}
