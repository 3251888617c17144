"""Measure what the deterministic clock counts against the CPU the work takes, per phase.

The deterministic clock (`solvers.clock.WorkClock`) counts CP-SAT's deterministic time plus
fixed charges for the engine's own loops. For one counted second to be about one CPU second
on every family, each charge must be worth, per unit of work, what CP-SAT's deterministic
second is worth. This script solves each instance given in deterministic mode and splits the
process time and the counted time among the phases (exclusive: a phase's figures leave out
the phases it calls, and every CP-SAT solve is its own row). In the same process it solves a
reference CP-SAT model, so the table reads as ratios to CP-SAT's own deterministic second,
which a loaded machine shifts much less than it shifts raw seconds.

Columns: calls, counted s, CPU s, CPU per counted second, and that ratio over the reference
model's CPU per counted second (its deterministic second counts `clock.SAT_SECOND`) ("x
ref"). A phase whose "x ref" is 2 is charged half what it costs: its constants (named beside
it) should double. CPU per counted second itself is what a time limit becomes in CPU seconds
on this machine: `SAT_SECOND` is set so that it is about 1 on the development machine. The
CP-SAT rows are split by model size, with a least-squares fit of what their CPU leaves
uncounted against solves, counted time and model size: what `solvers.clock.SOLVE_CALL` and
`SOLVE_TERM` should add.

    python -m scripts.calibrate_clock --time-limit 10 FILE.txt|FILE.vbp ...
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from ortools.sat.python import cp_model

from bench.instances import read_bpp, read_vbp
from solvers import (
    arcflow,
    clock,
    cpsat,
    diving,
    engine,
    exact_fill,
    full_bins,
    pareto,
    partial_search,
    patterns,
    pricing,
    reduced_cost,
    repack,
    vector_fit,
)
from solvers.engine import solve

# (module, function, the constants that charge its work)
PHASES = [
    (engine, "greedy", "PLACE_STEP, GPU_ROW, REPLICA"),
    (exact_fill, "_fill_one", "CANDIDATE, BIT_WORD"),
    (exact_fill, "_pair", "CANDIDATE"),
    (exact_fill, "_opening", "SUM_ITEM, BIT_WORD, CANDIDATE"),
    (exact_fill, "_reach_table", "REACH_CELL"),
    (exact_fill, "patterns_within", "PATTERN_NODE, REACH_CELL"),
    (exact_fill, "cover", "MODEL_TERM"),
    (exact_fill, "fill_bins", "BIN, SUM_ITEM"),
    (patterns, "list_patterns", "PATTERN_STEP"),
    (patterns, "pack_with_patterns", "MODEL_TERM"),
    (pricing, "knapsack", "TABLE_PIECE, TABLE_CELL"),
    (pareto, "knapsack", "TABLE_PIECE, PARETO_STATE"),
    (pricing.PairExchanges, "__init__", "PAIR_WEIGHED"),
    (pricing.PairExchanges, "separate", "PAIR_WEIGHED, COLUMN_ENTRY"),
    (patterns, "_price_greedily", "PRICE_ENTRY"),
    (patterns, "_price_cp_sat", "none"),
    (patterns, "generate_columns", "LP_ROUND, LP_ENTRY, LP_PIVOT, LP_COLD_PIVOT"),
    (patterns, "round_columns", "ITEM_FIT, PRICE_ENTRY, COLUMN_ENTRY"),
    (patterns, "dive", "COLUMN_ENTRY"),
    (reduced_cost, "_patterns_within", "PATTERN_VISIT"),
    (reduced_cost, "pack_at_bound", "MODEL_TERM"),
    (patterns, "build_graph", "ARC"),
    (patterns, "pack_with_arc_flow", "none"),
    (repack, "_drain", "MODEL_TERM"),
    (repack, "empty_bins", "BIN_SCAN"),
    (arcflow, "_layers", "BIT_WORD"),
    (arcflow, "build", "ARC, BIT_WORD"),
    (arcflow, "flow_model", "MODEL_TERM"),
    (arcflow, "flow_of", "ARC, MODEL_TERM"),
    (arcflow, "bins_of", "none"),
    (cpsat, "build", "MODEL_TERM"),
    (cpsat, "extract", "none"),
    (vector_fit, "packings", "ITEM_FIT, PRICE_ENTRY"),
    (diving, "search", "STEP, COLUMN_ENTRY"),
    (full_bins, "fill", "COLUMN_ENTRY"),
    (full_bins, "_node", "LP_ROUND, LP_ENTRY, LP_PIVOT, TABLE_CELL, COLUMN_ENTRY"),
    (partial_search, "_search", "PART_BIN, PART_ITEM"),
    (partial_search, "tabu", "ITERATION (in _move)"),
    (partial_search, "_move", "ITERATION, MOVE, ROW"),
    (partial_search, "_finished", "BIT_WORD"),
    (partial_search, "_descend", "REFILL, BIT_WORD"),
]


class Split:
    """Exclusive CPU and counted time per phase, from a stack of the phases entered."""

    def __init__(self) -> None:
        self.stack = ["rest"]
        self.cpu: dict[str, float] = defaultdict(float)
        self.counted: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.solves: list[tuple[int, float, float]] = []  # (model terms, counted s, CPU s)
        self.last = (time.process_time(), 0.0)

    def tick(self) -> None:
        cpu, counted = time.process_time(), clock.now()
        top = self.stack[-1]
        self.cpu[top] += cpu - self.last[0]
        self.counted[top] += counted - self.last[1]
        self.last = (cpu, counted)

    def enter(self, label: str) -> None:
        self.tick()
        self.stack.append(label)
        self.calls[label] += 1

    def leave(self) -> None:
        self.tick()
        self.stack.pop()

    def reset(self) -> None:
        self.__init__()


SPLIT = Split()


def _wrap(module, name: str) -> None:
    original = getattr(module, name)
    label = f"{module.__name__.split('.')[-1]}.{name}"

    def wrapped(*args, **kwargs):
        SPLIT.enter(label)
        try:
            return original(*args, **kwargs)
        finally:
            SPLIT.leave()

    setattr(module, name, wrapped)


def _wrap_solve() -> None:
    original = clock.WorkClock.solve

    def wrapped(self, solver, model, callback=None):
        terms = len(model.proto.variables) + len(model.proto.constraints)
        SPLIT.enter("CP-SAT solve")  # with its SOLVE_CALL and SOLVE_TERM
        before, spent = time.process_time(), self.spent
        try:
            return original(self, solver, model, callback)
        finally:
            SPLIT.solves.append((terms, self.spent - spent, time.process_time() - before))
            SPLIT.leave()

    clock.WorkClock.solve = wrapped


def reference(seconds: float = 2.0) -> float:
    """CPU seconds per CP-SAT deterministic second, on a fixed bin-packing assignment model
    (long enough that its fixed costs do not matter)."""
    sizes = [(37 * i) % 61 + 20 for i in range(90)]
    bins = 40
    model = cp_model.CpModel()
    x = [[model.new_bool_var("") for _ in range(bins)] for _ in sizes]
    used = [model.new_bool_var("") for _ in range(bins)]
    for row in x:
        model.add_exactly_one(row)
    for b in range(bins):
        model.add(sum(s * x[i][b] for i, s in enumerate(sizes)) <= 150 * used[b])
    model.minimize(sum(used))
    solver = clock.new_deterministic_solver(seconds, seed=0)
    before = time.process_time()
    solver.solve(model)
    return (time.process_time() - before) / solver.deterministic_time


def _read(path: Path):
    return read_vbp(path) if path.suffix == ".vbp" else read_bpp(path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--time-limit", type=float, default=10.0)
    parser.add_argument("--per-instance", action="store_true",
                        help="print each instance's phase table, not only the totals")
    args = parser.parse_args()
    for module, name, _ in PHASES:
        _wrap(module, name)
    _wrap_solve()
    ref = [reference()]
    print(f"reference CP-SAT model: {ref[0]:.3f} CPU s per deterministic s")
    totals_cpu: dict[str, float] = defaultdict(float)
    totals_counted: dict[str, float] = defaultdict(float)
    totals_calls: dict[str, int] = defaultdict(int)
    solves: list[tuple[int, float, float]] = []
    print("instance,bins,lower_bound,status,counted_s,cpu_s,cpu_per_counted,x_ref")
    for path in args.files:
        problem = _read(path)
        SPLIT.reset()
        before = time.process_time()
        solution = solve(problem, time_limit_s=args.time_limit, seed=0, workers=1,
                         deterministic=True)
        cpu = time.process_time() - before
        ref.append(reference(0.5))
        scale = float(np.median(ref)) / clock.SAT_SECOND  # CP-SAT's CPU per counted second
        print(f"{path.stem},{solution.cost},{solution.lower_bound},{solution.status},"
              f"{solution.seconds:.2f},{cpu:.2f},{cpu / max(solution.seconds, 1e-9):.2f},"
              f"{cpu / max(solution.seconds, 1e-9) / scale:.2f}", flush=True)
        for label in SPLIT.cpu:
            totals_cpu[label] += SPLIT.cpu[label]
            totals_counted[label] += SPLIT.counted[label]
            totals_calls[label] += SPLIT.calls[label]
        solves += SPLIT.solves
        if args.per_instance:
            _table(SPLIT.calls, SPLIT.counted, SPLIT.cpu, scale, file=sys.stdout)
    scale = float(np.median(ref)) / clock.SAT_SECOND
    print(f"\nreference, median of {len(ref)}: {float(np.median(ref)):.3f} CPU s per "
          f"deterministic s, {scale:.3f} per counted s")
    print("\nAll instances, per phase (exclusive):")
    _table(totals_calls, totals_counted, totals_cpu, scale, file=sys.stdout)
    _solves(solves, scale)
    return 0


def _table(calls, counted, cpu, scale: float, *, file) -> None:
    notes = {f"{m.__name__.split('.')[-1]}.{n}": c for m, n, c in PHASES}
    print(f"  {'phase':32s} {'calls':>8s} {'counted':>8s} {'cpu':>8s} {'cpu/cnt':>8s} "
          f"{'x ref':>6s}  constants", file=file)
    for label in sorted(cpu, key=lambda k: -cpu[k]):
        if cpu[label] < 0.005 and counted[label] < 0.005:
            continue
        ratio = cpu[label] / counted[label] if counted[label] > 1e-9 else float("inf")
        print(f"  {label:32s} {calls[label]:8d} {counted[label]:8.3f} {cpu[label]:8.3f} "
              f"{ratio:8.2f} {ratio / scale:6.2f}  {notes.get(label, '')}", file=file)


def _solves(solves: list[tuple[int, float, float]], scale: float) -> None:
    """CP-SAT solves by model size, and the least-squares fit of what their CPU (in reference
    deterministic seconds) leaves uncounted against one solve, counted time and model terms."""
    if not solves:
        return
    terms = np.array([s[0] for s in solves], dtype=float)
    counted = np.array([s[1] for s in solves])
    cpu = np.array([s[2] for s in solves]) / scale
    print("\nCP-SAT solves by model size (variables + constraints):")
    print(f"  {'terms':>16s} {'solves':>7s} {'counted':>8s} {'cpu/ref':>8s} {'ms/solve':>9s}")
    edges = [0, 100, 1_000, 10_000, 100_000, float("inf")]
    for low, high in zip(edges, edges[1:], strict=False):
        inside = (terms >= low) & (terms < high)
        if inside.any():
            print(f"  {f'{low:g}-{high:g}':>16s} {int(inside.sum()):7d} "
                  f"{counted[inside].sum():8.3f} {cpu[inside].sum():8.3f} "
                  f"{cpu[inside].sum() / inside.sum() * 1e3:9.3f}")
    basis = np.vstack([np.ones_like(counted), counted, terms]).T
    fit, *_ = np.linalg.lstsq(basis, cpu - counted, rcond=None)
    # In CP-SAT's deterministic seconds, as SOLVE_CALL and SOLVE_TERM are set.
    fit[0] /= clock.SAT_SECOND
    fit[2] /= clock.SAT_SECOND
    print(f"  uncounted (cpu/ref - counted): {fit[0] * 1e3:.3f} ms per solve, "
          f"{fit[1]:+.3f} per counted s, {fit[2] * 1e6:.3f} us per model term")


if __name__ == "__main__":
    raise SystemExit(main())
