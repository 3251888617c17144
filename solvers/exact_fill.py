"""Filling bins to the brim: minimum bin slack for one-dimensional packing.

When the lower bound says k bins and the items add up to nearly k full bins, only a packing
whose bins waste no more than k * capacity - total between them reaches the bound, and LP
rounding or local search rarely finds one among the many almost-full packings. This search
builds such a packing bin by bin: each bin takes the largest item left and the subset of the
rest that fills it the most (a subset-sum over item types with their remaining counts, as
bitsets), preferring larger items so that the small ones, which fit anywhere, are left for the
last bins. The waste allowed is a budget for the whole packing. When a bin would overspend
it, the search empties a few bins already made (one whose items unblock the largest item
left, the rest at random) and fills on with random tie-breaks: ruin and recreate, until every
item is packed or time runs out. Whatever it finds has the bins of the bound, so it is optimal.
"""

from __future__ import annotations

import random

from solvers.clock import BIT_WORD, STEP, charge, now

ATTEMPT_SHARE = 0.35  # after a first failure, the chance of each choice being made at random
RUINED = 3  # bins emptied after a failure: from this to 2 * RUINED - 1, in turn
BIN = 1e-5  # deterministic seconds charged per bin filled, besides its item types
LISTED_S = 0.2  # most time given to the pattern model of the bins emptied and the items left
LISTED_PATTERNS = 2_000  # most patterns listed for it
LISTED_BINS = 8  # and only when the bins left to fill are this few
OPENINGS = 50  # most bins tried for one that unblocks the search
CANDIDATE = 3e-6  # per item type that could join a bin, besides its bitset's words


def _shifted(bits: int, size: int, copies: int, mask: int) -> int:
    """Every sum of `bits` plus 0..copies items of `size`, at most the mask's length."""
    result = bits
    for _ in range(copies):
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
    layers = [1]  # layers[i]: the sums reachable with types before the i-th candidate
    candidates = [t for t, n in enumerate(left) if n and sizes[t] <= room]
    for t in candidates:
        layers.append(_shifted(layers[-1], sizes[t], min(left[t], room // sizes[t]), mask))
    charge(len(candidates) * (CANDIDATE + BIT_WORD * (room // 64 + 1) * 2))
    best = layers[-1].bit_length() - 1
    if room - best > waste_allowed:
        left[first] += 1
        return None
    contents = [first]
    rest = best
    # From the smallest type back: as few of it as the larger types allow, so the bin holds
    # the largest items that can fill it (or, at random, any count that still works).
    for i in range(len(candidates) - 1, -1, -1):
        t, below = candidates[i], layers[i]
        usable = [k for k in range(min(left[t], rest // sizes[t]) + 1)
                  if (below >> (rest - k * sizes[t])) & 1]
        k = rng.choice(usable) if rng is not None and rng.random() < ATTEMPT_SHARE \
            else usable[0]
        contents += [t] * k
        left[t] -= k
        rest -= k * sizes[t]
    return contents


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
    """
    waste = bins * capacity - sum(s * n for s, n in zip(sizes, demand, strict=True))
    if waste < 0 or any(s > capacity for s in sizes):
        return None
    rng = random.Random(seed)
    left = list(demand)
    allowed = waste
    packing: list[list[int]] = []
    failures = 0
    while now() < deadline:
        charge(BIN)
        contents = None if len(packing) == bins else _fill_one(
            capacity, sizes, left, allowed, rng if failures else None)
        if contents is not None:
            allowed -= capacity - sum(sizes[t] for t in contents)
            packing.append(contents)
            if not any(left):
                return packing
            continue
        failures += 1
        packing.sort(key=lambda b: sum(sizes[t] for t in b))  # most wasteful first
        charge(STEP)
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
            rest = _exactly(capacity, sizes, left, bins - len(packing), deadline=deadline,
                            seed=rng.randrange(1 << 30))
            if rest is not None:
                return packing + rest
    return None


def _opening(capacity: int, sizes: list[int], left: list[int], allowed: int,
             packing: list[list[int]], rng: random.Random) -> int | None:
    """A bin (index in `packing`, tried in random order) whose items, back with those left,
    would let the largest item left fill a bin within the waste allowed; None if no one bin
    does. Emptying it is the move that undoes what blocked the search."""
    first = next(t for t, n in enumerate(left) if n)
    room = capacity - sizes[first]
    mask = (1 << (room + 1)) - 1
    bits = 1
    for t, n in enumerate(left):
        if n and sizes[t] <= room:
            bits = _shifted(bits, sizes[t], min(n - (t == first), room // sizes[t]), mask)
    order = list(range(len(packing)))
    rng.shuffle(order)
    for b in order[:OPENINGS]:
        wasted = allowed + capacity - sum(sizes[t] for t in packing[b])
        sums = {0}
        for t in packing[b]:
            sums |= {x + sizes[t] for x in sums if x + sizes[t] <= room}
        charge(CANDIDATE * (len(sums) + len(left)))
        for x in sums:
            low = max(room - wasted - x, 0)
            if room - x >= low and (bits >> low) & ((1 << (room - x - low + 1)) - 1):
                return b
    return None


def _exactly(capacity: int, sizes: list[int], left: list[int], bins: int, *, deadline: float,
             seed: int) -> list[list[int]] | None:
    """The items `left` in `bins` bins by the explicit pattern model, when few patterns
    waste little enough to list them; None otherwise."""
    from solvers.patterns import pack_listed

    types = [t for t, n in enumerate(left) if n]
    outcome = pack_listed((capacity,), [(sizes[t],) for t in types], [left[t] for t in types],
                          bins, time_limit_s=min(LISTED_S, max(deadline - now(), 0.0)),
                          seed=seed, workers=1, max_patterns=LISTED_PATTERNS)
    if outcome is None or outcome.status != "found":
        return None
    return [[types[i] for i in contents] for contents in outcome.bins]


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
