"""Packings at the lower bound over the patterns that reduced costs allow (one dimension).

Take duals pi >= 0 under which no pattern is worth more than 1 (column generation's LP at its
optimum, or any duals divided by the most a pattern is worth, as Farley's bound does); their
bound is z = pi . demand. In a packing into k bins each pattern p used costs its reduced cost
1 - pi . p, each item beyond its type's demand costs its dual, and all of that adds up to
k - z. So no pattern whose reduced cost exceeds k - z is in such a packing, and no type whose
dual exceeds k - z is packed beyond its demand. Where the LP's value lies just under its
ceiling k, as on hard instances whose optimum is that ceiling, few patterns are left (on
hard-28, hundreds to thousands of the millions that fit), and CP-SAT decides over them alone
whether k bins hold the items: it finds the packing, or proves that k + 1 are needed. This is
the enumeration by reduced cost of branch-cut-and-price (Baldacci, Christofides and Mingozzi,
"An exact algorithm for the vehicle routing problem based on the set partitioning
formulation with additional cuts", Mathematical Programming, 2008; Pessoa, Sadykov, Uchoa
and Vanderbeck, "A generic exact solver for vehicle routing and related problems",
Mathematical Programming, 2020), whose final restricted model a MIP solver closes.

CP-SAT is asked for the fewest bins, at most k, with its LP at linearization level 2, on one
worker: a model that only asks for k bins leaves its search without the LP's guidance, and
on hard-28 ran out of 20 s where this one ends in a second; and the portfolio that several
workers run leaves this search out (with two workers, hard-28's BPP60 and BPP419 were still
open after 10 s; one worker closes each in under a second).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from solvers.clock import MODEL_TERM, PATTERN_VISIT, charge, now, solve_overhead
from solvers.patterns import Outcome, fits_table, pack_with_counts
from solvers.pricing import knapsack
from solvers.sat import new_solver

# Beyond this gap between the bins asked for and the LP's value, the patterns within it run
# to hundreds of thousands on every family measured (GI's 250-size instances: over 20,000 at
# a gap of 0.93), where hard-28's gaps are below 0.01.
MAX_GAP = 0.25
MAX_PATTERNS = 20_000  # more patterns within the gap than this: the model is not tried
# Partial patterns the listing visits at most before it takes the patterns within the gap to
# be too many: where the duals are about proportional to the sizes (items that fill the
# bound's bins exactly, the LP at their size) every partial pattern can still reach the
# gap, and on augmented IRUP's 402 sizes the listing ran to its deadline (2.2 counted
# seconds, 6 million visits); the listings that ended within their patterns' limit on
# hard-28, Wäscher and Scholl's third set visited 0.8 million at most.
MAX_VISITS = 100 * MAX_PATTERNS
TOLERANCE = 1e-7  # added to the gap, so that rounding in the duals drops no pattern
DEADLINE_STEPS = 4096  # search steps between readings of the clock
LINEARIZATION = 2  # CP-SAT's LP over every constraint, not only the linear ones it starts with
DEPTH = sys.getrecursionlimit() // 2  # items a pattern may hold: the search recurses per item


class _OutOfTime(Exception):
    pass


def _most_items(capacity: int, weights: list[int], demand: list[int]) -> int:
    """The most items a pattern can hold: the lightest first, as many as fit."""
    held, room = 0, capacity
    for w, d in sorted(zip(weights, demand, strict=True)):
        take = min(d, room // w)
        held, room = held + take, room - take * w
        if take < d:
            break
    return held


def pack_at_bound(capacity: int, weights: list[int], demand: list[int],
                  duals: Sequence[float], bins: int, *, deadline: float,
                  seed: int) -> Outcome:
    """A packing of the items (positive `weights` and `demand` by type) into at most `bins`
    bins from the patterns that `duals` allow: "found" with the bins (lists of type indexes),
    "impossible" with `lower_bound` bins + 1 when none exists, "unknown" when the gap leaves
    too many patterns, the deadline comes first or pricing's knapsack table, which finds the
    most a pattern is worth, would be too large (`patterns.fits_table`)."""
    values = [max(float(v), 0.0) for v in duals]
    if not values or max(values) <= 0 or _most_items(capacity, weights, demand) >= DEPTH \
            or not fits_table(capacity, [(w,) for w in weights], demand):
        return Outcome("unknown", [])
    best = knapsack(capacity, weights, values, demand).top()[0]
    if best <= 0:
        return Outcome("unknown", [])
    values = [v / best for v in values]  # no pattern worth more than 1 now
    gap = bins - sum(v * d for v, d in zip(values, demand, strict=True))
    if gap < -TOLERANCE:  # the LP's bound is above `bins` already
        return Outcome("impossible", [], bins + 1)
    if gap > MAX_GAP:
        return Outcome("unknown", [])
    gap = max(gap, 0.0) + TOLERANCE
    try:
        allowed = _patterns_within(capacity, weights, demand, values, 1 - gap, MAX_PATTERNS,
                                   deadline)
    except _OutOfTime:
        return Outcome("unknown", [])
    if allowed is None:
        return Outcome("unknown", [])
    left = deadline - now()
    if solve_overhead(len(allowed) + len(demand) + 1) >= left / 2:
        return Outcome("unknown", [])
    counts = [[(t, c) for t, c in enumerate(p) if c] for p in allowed if any(p)]
    charge(MODEL_TERM * 2 * (sum(len(c) for c in counts) + len(counts)))
    uses = [min(demand[t] // c for t, c in p) for p in counts]
    solver = new_solver(left, seed, workers=1)
    solver.parameters.linearization_level = LINEARIZATION
    found = pack_with_counts(counts, demand, bins, solver, cover=True, at_most=True,
                             uses=uses, exact=[v > gap for v in values], fewest=True)
    if found.status == "impossible":
        return Outcome("impossible", [], bins + 1)
    return found


def _patterns_within(capacity: int, weights: list[int], demand: list[int],
                     values: list[float], least: float, most: int, deadline: float
                     ) -> list[tuple[int, ...]] | None:
    """Every pattern (counts by type, within the capacity and the demand) worth at least
    `least` at `values`; None if more than `most`, or if more than `MAX_VISITS` partial
    patterns are visited. A depth-first search that takes the types by value per unit of
    weight, highest first, so that the room left times the next type's ratio bounds what a
    pattern can still gain. Raises `_OutOfTime` at the deadline."""
    order = sorted(range(len(values)), key=lambda t: -values[t] / weights[t])
    ratio = [values[t] / weights[t] for t in order]
    found: list[tuple[int, ...]] = []
    counts = [0] * len(values)
    steps = 0

    def visit(start: int, room: int, value: float) -> bool:
        nonlocal steps
        if value >= least:
            found.append(tuple(counts))
            if len(found) > most:
                return False
        for k in range(start, len(order)):
            steps += 1
            if steps > MAX_VISITS:
                return False
            if steps % DEADLINE_STEPS == 0:
                charge(PATTERN_VISIT * DEADLINE_STEPS)
                if now() >= deadline:
                    raise _OutOfTime
            if value + room * ratio[k] < least:
                return True
            t = order[k]
            if weights[t] <= room and counts[t] < demand[t]:
                counts[t] += 1
                going = visit(k, room - weights[t], value + values[t])
                counts[t] -= 1
                if not going:
                    return False
        return True

    complete = visit(0, capacity, 0.0)
    charge(PATTERN_VISIT * (steps % DEADLINE_STEPS))
    return found if complete else None
