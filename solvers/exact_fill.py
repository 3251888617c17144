"""Filling bins to the brim: minimum bin slack for one-dimensional packing.

When the lower bound says k bins and the items add up to nearly k full bins, only a packing
whose bins waste no more than k * capacity - total between them reaches the bound, and LP
rounding or local search rarely finds one among the many almost-full packings.

First, where the bins that waste so little are few (Falkenauer's triplets: a few thousand
triples fill a bin exactly), they are listed, depth-first over the types and only along
branches that a table of the loads each suffix of types can make says still end in such a
bin, so the work follows the bins listed; CP-SAT then picks k of them that hold every item
exactly once (an exact cover, complete: no packing is missed). Where every such bin is too
many to list, or their loads too large a table (a capacity of 100,000 and hundreds of sizes),
the bins of at most as many items as the packing needs on average are listed instead, without
the table, and covered the same way: not complete (a packing at the bound may need a bin of
more items), but where every bin holds one large item and its complements, as in cut bins of
three pieces, those few hundred bins hold the whole packing.

Otherwise the search builds such a packing bin by bin: each bin takes the largest item left
and the subset of the rest that fills it the most (a subset-sum over item types with their
remaining counts, as bitsets): one or two items when they do, else the largest items that
do, as a depth-first search in decreasing order finds them. Few items per bin leaves the
bins after it the items they need, where in a packing of zero slack every bin must still
add up exactly. The waste allowed is a budget for the whole packing. When a bin would
overspend it, the search empties a few bins already made (one whose items unblock the
largest item left, the rest at random) and fills on with random tie-breaks: ruin and
recreate, with the exact cover of the bins left when they are few, until every item is
packed or time runs out (Schrimpf, Schneider, Stamm-Wilbrandt and Dueck, "Record breaking
optimization results using the ruin and recreate principle", Journal of Computational
Physics, 2000). Whatever it finds has the bins of the bound, so it is optimal. A search that
at half its time has never come near enough the end for the exact cover to close it stops
there, leaving the rest of the time to the phases after it.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_left, bisect_right

import numpy as np

from solvers.clock import BIT_WORD, MODEL_TERM, PATTERN_STEP, charge, now
from solvers.patterns import pack_with_counts
from solvers.sat import new_solver

ATTEMPT_SHARE = 0.2  # after a first failure, the chance of each choice being made at random
RUINED = 3  # bins emptied after a failure: from this to 2 * RUINED - 1, in turn
BIN = 1e-5  # deterministic seconds charged per bin filled, besides its item types
LISTED_S = 0.2  # most time given to the pattern model of the bins emptied and the items left
LISTED_PATTERNS = 5_000  # most patterns listed for it
LISTED_BINS = 8  # and only when the bins left to fill are this few
WHOLE_PATTERNS = 20_000  # most bins listed for the exact cover of the whole packing
WHOLE_LISTING = 0.15  # the share of the time that listing them may take
FEW_COVER = 1 / 8  # the share of the time for the cover of the bins of few items only
TABLE_CELLS = 8_000_000  # most cells of the table of reachable loads that lists them
REACH_CELL = 2e-9  # deterministic seconds per cell of that table made or read
PATTERN_NODE = 8e-6  # per step of the listing, besides the table cells it reads
OPENINGS = 50  # most bins tried for one that unblocks the search
CANDIDATE = 1e-6  # per item type that could join a bin, besides its bitset's words
SUM_ITEM = 1e-7  # per item and subset sum of a bin, when sums are listed or bins sorted


def _shifted(bits: int, size: int, copies: int, mask: int) -> int:
    """Every sum of `bits` plus 0..copies items of `size`, at most the mask's length. Charged
    by the words of each copy's shift, mask and union: charged one pass a size whatever its
    copies, the fill on GI's large capacities counted a quarter of its work (csBB500_8: 0.95
    counted seconds for 4.0 on the wall)."""
    words = (mask.bit_length() + 63) // 64
    result = bits
    for _ in range(copies):
        charge(BIT_WORD * words * 3)
        bits = (bits << size) & mask
        if not bits:
            break
        result |= bits
    return result


def _fill_one(capacity: int, sizes: list[int], left: list[int], waste_allowed: int,
              rng: random.Random | None) -> list[int] | None:
    """One bin from the items `left` (counts per type, types in decreasing size): the largest
    item left and the most-filling subset of the rest; None when even that wastes more than
    `waste_allowed`. `left` is updated."""
    first = next(t for t, n in enumerate(left) if n)
    if rng is not None and rng.random() < ATTEMPT_SHARE:
        others = [t for t, n in enumerate(left) if n and t != first][:2]
        first = rng.choice([first, *others])
    left[first] -= 1
    room = capacity - sizes[first]
    mask = (1 << (room + 1)) - 1
    candidates = [t for t, n in enumerate(left) if n and sizes[t] <= room]
    # layers[i]: the sums reachable with the candidates from the i-th on (smaller types)
    layers = [1] * (len(candidates) + 1)
    for i in range(len(candidates) - 1, -1, -1):
        t = candidates[i]
        layers[i] = _shifted(layers[i + 1], sizes[t], min(left[t], room // sizes[t]), mask)
    charge(len(candidates) * CANDIDATE)
    best = layers[0].bit_length() - 1
    if room - best > waste_allowed:
        left[first] += 1
        return None
    pair = _pair(sizes, left, candidates, best, rng)
    if pair is not None:
        for t in pair:
            left[t] -= 1
        return [first, *pair]
    contents = [first]
    rest = best
    # From the largest type down: as many of it as the smaller types allow, so the bin holds
    # the largest items that fill it and keeps few items (the first subset a depth-first
    # search in decreasing order finds); at random, any count that still works.
    for i, t in enumerate(candidates):
        if not rest:
            break
        usable = [k for k in range(min(left[t], rest // sizes[t]) + 1)
                  if (layers[i + 1] >> (rest - k * sizes[t])) & 1]
        k = rng.choice(usable) if rng is not None and rng.random() < ATTEMPT_SHARE \
            else usable[-1]
        contents += [t] * k
        left[t] -= k
        rest -= k * sizes[t]
    return contents


def _pair(sizes: list[int], left: list[int], candidates: list[int], total: int,
          rng: random.Random | None) -> list[int] | None:
    """One or two items left (of the `candidates` types) adding up to `total`, the larger
    as large as can be (at random, any); None if none do. A bin of fewer items leaves more
    items to the bins left, where they must still add up exactly."""
    of_size = {sizes[t]: t for t in candidates}
    if total in of_size:
        return [of_size[total]]
    pairs = []
    for t in candidates:
        if 2 * sizes[t] < total:
            break
        other = of_size.get(total - sizes[t])
        if other is not None and (other != t or left[t] >= 2):
            pairs.append([t, other])
            if rng is None or rng.random() >= ATTEMPT_SHARE:
                break
    charge(CANDIDATE + SUM_ITEM * len(candidates))
    if not pairs:
        return None
    return rng.choice(pairs) if rng is not None and len(pairs) > 1 else pairs[-1]


def fill_bins(capacity: int, sizes: list[int], demand: list[int], bins: int, *,
              deadline: float, seed: int) -> list[list[int]] | None:
    """A packing of `demand` items of `sizes` (in decreasing order) into at most `bins` bins
    of `capacity`, as lists of type indexes; None if none is found by `deadline`.

    The first pass fills bin after bin. When a bin cannot be filled within the waste left (or
    the bins run out), a few bins already made are emptied back into the items left: one
    whose items would let the largest item left fill a bin (else the most wasteful), and the
    rest at random; then filling goes on with random tie-breaks, and when the items left are
    few, the pattern model finishes them. A ruin and recreate search that keeps most of what
    it built.

    The exact cover of the bins left starts only where a failure leaves at most
    `LISTED_BINS` bins to fill after `RUINED` or more are emptied. A search that by half its
    time has never filled all but `LISTED_BINS - RUINED` bins hands the rest of its time
    back (None): where it ends that far off (on hard-28, 7 to 25 bins short after its whole
    time) it does not succeed, and where it succeeded (Wäscher, zero-slack instances) it
    had come that near, or found the packing, by half its time (scripts/BENCHMARKS.md).
    """
    waste = bins * capacity - sum(s * n for s, n in zip(sizes, demand, strict=True))
    if waste < 0 or any(s > capacity for s in sizes):
        return None
    rng = random.Random(seed)
    whole = _whole(capacity, sizes, demand, bins, waste, deadline=deadline, seed=seed)
    if whole is not None:
        return whole
    left = list(demand)
    allowed = waste
    packing: list[list[int]] = []
    failures = deepest = 0
    halfway = now() + (deadline - now()) / 2
    while now() < deadline:
        charge(BIN)
        # The packing at hand counts too: a first pass with no failure yet, or a recreate
        # that got further than any failure so far, may be about to finish.
        if now() >= halfway and bins - max(deepest, len(packing)) > LISTED_BINS - RUINED:
            return None  # never near enough the end for the exact cover to start
        contents = None if len(packing) == bins else _fill_one(
            capacity, sizes, left, allowed, rng if failures else None)
        if contents is not None:
            allowed -= capacity - sum(sizes[t] for t in contents)
            packing.append(contents)
            if not any(left):
                return packing
            continue
        failures += 1
        deepest = max(deepest, len(packing))
        packing.sort(key=lambda b: sum(sizes[t] for t in b))  # most wasteful first
        charge(SUM_ITEM * sum(len(b) for b in packing))
        opening = _opening(capacity, sizes, left, allowed, packing, rng)
        emptied = min(len(packing), RUINED + failures % RUINED)
        others = rng.sample(range(len(packing)), emptied)
        chosen = {0 if opening is None else opening, *others[:emptied - 1]} if packing else set()
        for b in chosen:
            for t in packing[b]:
                left[t] += 1
            allowed += capacity - sum(sizes[t] for t in packing[b])
        packing = [b for i, b in enumerate(packing) if i not in chosen]
        if bins - len(packing) <= LISTED_BINS:
            rest = pack_left(capacity, sizes, left, bins - len(packing),
                             deadline=min(deadline, now() + LISTED_S),
                             seed=rng.randrange(1 << 30))
            if rest is not None:
                return packing + rest
    return None


def _whole(capacity: int, sizes: list[int], demand: list[int], bins: int, waste: int, *,
           deadline: float, seed: int) -> list[list[int]] | None:
    """The exact cover of every bin that wastes at most `waste`, when there are few such
    bins (Falkenauer's triplets: three items fill each bin, and a few thousand triples
    do), within half the time; else the cover of those bins that hold at most as many
    items as `bins` bins hold on average (every packing into `bins` bins has a bin of at
    least that many), within `FEW_COVER` of it. None when neither is listed or covered in time."""
    share = max(deadline - now(), 0.0)
    listing_end = now() + share * WHOLE_LISTING
    listed = patterns_within(capacity, sizes, demand, waste, limit=WHOLE_PATTERNS,
                             deadline=listing_end)
    if listed is not None:
        return cover(listed, demand, bins,
                     time_limit_s=min(deadline, now() + share / 2) - now(), seed=seed)
    few = few_item_patterns(capacity, sizes, demand, waste, most_items=math.ceil(
        sum(demand) / bins), limit=WHOLE_PATTERNS, deadline=listing_end)
    if few is None:
        return None
    return cover(few, demand, bins, time_limit_s=min(deadline, now() + share * FEW_COVER) - now(),
                 seed=seed)


def few_item_patterns(capacity: int, sizes: list[int], demand: list[int], waste: int, *,
                      most_items: int, limit: int, deadline: float
                      ) -> list[list[tuple[int, int]]] | None:
    """Every bin of at most `most_items` items that wastes at most `waste` (types in
    decreasing size, within their counts), as (type, count) pairs; None when there are more
    than `limit`, or at `deadline`.

    Depth-first over the types in order like `patterns_within`, but with no table of
    reachable loads, so its memory does not grow with the capacity: a branch stops where the
    items it may still add, none larger than the next type, cannot bring the load within the
    waste, and the last item is looked up by its size among the types left (a binary search:
    the types of a size in a range are a run of the decreasing order)."""
    negated = [-s for s in sizes]  # increasing, for bisect
    found: list[list[tuple[int, int]]] = []
    chosen: list[tuple[int, int]] = []

    def extend(start: int, load: int, items_left: int) -> bool:
        charge(PATTERN_STEP)
        if now() > deadline:
            return False
        if load >= capacity - waste and chosen:
            found.append(list(chosen))
        if items_left == 0:
            return len(found) <= limit
        # the types from `start` on that fit the room left
        first = max(start, bisect_left(negated, load - capacity))
        if items_left == 1:
            last = bisect_right(negated, load + waste - capacity)
            charge(PATTERN_STEP * max(last - first, 0))
            found.extend([*chosen, (t, 1)] for t in range(first, last) if demand[t])
            return len(found) <= limit
        for t in range(first, len(sizes)):
            charge(PATTERN_STEP)
            if load + items_left * sizes[t] < capacity - waste:
                break  # no item from here on is large enough
            for k in range(1, min(demand[t], items_left, (capacity - load) // sizes[t]) + 1):
                chosen.append((t, k))
                going = extend(t + 1, load + k * sizes[t], items_left - k)
                chosen.pop()
                if not going:
                    return False
        return len(found) <= limit

    return found if extend(0, 0, most_items) else None


def _opening(capacity: int, sizes: list[int], left: list[int], allowed: int,
             packing: list[list[int]], rng: random.Random) -> int | None:
    """A bin (index in `packing`, tried in random order) whose items, back with those left,
    would let the largest item left fill a bin within the waste allowed; None if no one bin
    does. Emptying it is the move that undoes what blocked the search."""
    first = next(t for t, n in enumerate(left) if n)
    room = capacity - sizes[first]
    mask = (1 << (room + 1)) - 1
    bits = 1
    candidates = [t for t, n in enumerate(left) if n and sizes[t] <= room]
    for t in candidates:
        bits = _shifted(bits, sizes[t], min(left[t] - (t == first), room // sizes[t]), mask)
    charge(CANDIDATE * len(candidates))
    order = list(range(len(packing)))
    rng.shuffle(order)
    for b in order[:OPENINGS]:
        wasted = allowed + capacity - sum(sizes[t] for t in packing[b])
        sums = {0}
        for t in packing[b]:
            sums |= {x + sizes[t] for x in sums if x + sizes[t] <= room}
        charge(SUM_ITEM * len(sums) * (len(packing[b]) + 1))
        for x in sums:
            low = max(room - wasted - x, 0)
            if room - x >= low and (bits >> low) & ((1 << (room - x - low + 1)) - 1):
                return b
    return None


def _reach_table(capacity: int, sizes: list[int], demand: list[int]) -> np.ndarray | None:
    """table[t, v]: how many of the loads 0..v-1 the types from t on can make (with their
    counts), so that whether a load in [lo, hi] is reachable is one subtraction; None when
    the table would exceed `TABLE_CELLS`."""
    types = len(sizes)
    if (types + 1) * (capacity + 2) > TABLE_CELLS:
        return None
    reach = np.zeros((types + 1, capacity + 1), dtype=bool)
    reach[types, 0] = True
    for t in range(types - 1, -1, -1):
        row = reach[t + 1].copy()
        for k in range(1, min(demand[t], capacity // sizes[t]) + 1):
            row[k * sizes[t]:] |= reach[t + 1, :capacity + 1 - k * sizes[t]]
        reach[t] = row
    table = np.zeros((types + 1, capacity + 2), dtype=np.int32)
    np.cumsum(reach, axis=1, out=table[:, 1:])
    charge(REACH_CELL * (types + 1) * (capacity + 1) * 3)
    return table


def patterns_within(capacity: int, sizes: list[int], demand: list[int], waste: int, *,
                    limit: int, deadline: float) -> list[list[tuple[int, int]]] | None:
    """Every bin that wastes at most `waste` (a multiset of the types, in decreasing size,
    within their counts), as (type, count) pairs; None when there are more than `limit`, or
    at `deadline`, or the reachable loads take too large a table.

    Depth-first over the types in order, each step one more type and its count, and only
    steps after which the smaller types can still bring the load within the waste: every
    branch ends in a bin, so the work follows the bins listed, not the subsets tried."""
    table = _reach_table(capacity, sizes, demand)
    if table is None:
        return None
    size_of = np.array(sizes, dtype=np.int64)
    found: list[list[tuple[int, int]]] = []
    chosen: list[tuple[int, int]] = []

    def reachable(rows: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        lo = np.maximum(lo, 0)
        ok = hi >= lo
        hi, lo = np.where(ok, hi, 0), np.where(ok, lo, 0)
        return ok & (table[rows, hi + 1] > table[rows, lo])

    def extend(start: int, load: int) -> bool:
        if load >= capacity - waste and chosen:
            found.append(list(chosen))
            if len(found) > limit:
                return False
        types = np.arange(start, len(sizes))
        charge(PATTERN_NODE + REACH_CELL * len(types))
        if now() > deadline:
            return False
        # One item of type t, then loads the types from t on make (a superset of what is
        # left after it: a filter, checked exactly for each count below).
        for t in types[reachable(types, capacity - waste - load - size_of[start:],
                                 capacity - load - size_of[start:])].tolist():
            for k in range(1, min(demand[t], (capacity - load) // sizes[t]) + 1):
                after = load + k * sizes[t]
                if table[t + 1, capacity - after + 1] <= table[t + 1, max(
                        capacity - waste - after, 0)]:
                    continue
                chosen.append((t, k))
                going = extend(t + 1, after)
                chosen.pop()
                if not going:
                    return False
        return True

    return found if extend(0, 0) else None


def cover(patterns: list[list[tuple[int, int]]], demand: list[int], bins: int, *,
          time_limit_s: float, seed: int) -> list[list[int]] | None:
    """At most `bins` bins of the listed patterns holding every item exactly once (the model
    of `solvers.patterns`, on one worker), as lists of type indexes; None if not found in
    time. Exact when the patterns are every bin that wastes no more than the packing may."""
    charge(MODEL_TERM * sum(len(p) for p in patterns))
    solver = new_solver(max(time_limit_s, 0.01), seed, 1)
    found = pack_with_counts(patterns, demand, bins, solver, at_most=True, uses=[
        min(bins, *(demand[t] // k for t, k in p)) for p in patterns])
    return found.bins if found.status == "found" else None


def pack_left(capacity: int, sizes: list[int], left: list[int], bins: int, *,
              deadline: float, seed: int) -> list[list[int]] | None:
    """The items `left` in `bins` bins by the exact cover of every bin that wastes no more
    than they may, when those bins are few enough to list; None otherwise."""
    waste = bins * capacity - sum(s * n for s, n in zip(sizes, left, strict=True))
    types = [t for t, n in enumerate(left) if n]
    if waste < 0:
        return None
    share = max(deadline - now(), 0.0)
    listed = patterns_within(capacity, [sizes[t] for t in types], [left[t] for t in types],
                             waste, limit=LISTED_PATTERNS, deadline=now() + share / 4)
    if listed is None:
        return None
    found = cover(listed, [left[t] for t in types], bins, time_limit_s=deadline - now(),
                  seed=seed)
    return None if found is None else [[types[i] for i in b] for b in found]


def one_dimension(capacity: tuple[int, ...], sizes: list[tuple[int, ...]]) -> int | None:
    """The one dimension the items need, when every size is zero in every other dimension
    and positive in it (a pool where only memory counts, say); None otherwise."""
    used = {d for size in sizes for d, v in enumerate(size) if v}
    if len(used) != 1:
        return None
    d = used.pop()
    return d if all(size[d] > 0 for size in sizes) and capacity[d] > 0 else None


def fill(capacity: tuple[int, ...], sizes: list[tuple[int, ...]], demand: list[int],
         bins: int, *, deadline: float, seed: int) -> list[list[int]] | None:
    """`fill_bins` for items that need one dimension (None for any others), in the caller's
    type order."""
    d = one_dimension(capacity, sizes)
    if d is None:
        return None
    order = sorted(range(len(sizes)), key=lambda t: (-sizes[t][d], t))
    found = fill_bins(capacity[d], [sizes[t][d] for t in order], [demand[t] for t in order],
                      bins, deadline=deadline, seed=seed)
    return None if found is None else [[order[t] for t in contents] for contents in found]
