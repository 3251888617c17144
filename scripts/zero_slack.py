"""Zero-slack bin packing instances, whose optimum is known by construction.

    python scripts/zero_slack.py --out /tmp/zero_slack --instances 12 --seed 1

Each instance cuts `bins` bins of capacity C into random pieces (a few per bin, each cut point
drawn uniformly), then shuffles all pieces together. The pieces fill exactly `bins` bins, and
their total is `bins * C`, so no packing uses fewer: the optimum is `bins`. Files are BPPLIB
text (item count, capacity, one weight per line) with an `optima.tsv` beside them, so
`scripts/bench_solver.py --bpp DIR/*.txt` reports the gap to the optimum. Names hold the seed,
so that the rows of runs over several seeds stay apart.

Instances vary the capacity (from 150, like Falkenauer's triplets, to 100,000, like Scholl's
third set), the bins (20 to 200) and the pieces per bin (3 to 6), so that no one setting of the
engine is rewarded.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

CAPACITIES = (150, 1_000, 10_000, 100_000)
BINS = (20, 50, 100, 200)
PIECES = ((3, 3), (3, 4), (4, 6))


def cut_bin(rng: random.Random, capacity: int, pieces: int) -> list[int]:
    """One bin of `capacity` cut at `pieces - 1` distinct random points: pieces of at least 1
    that add up to the capacity."""
    points = sorted(rng.sample(range(1, capacity), pieces - 1))
    return [b - a for a, b in zip([0, *points], [*points, capacity], strict=True)]


def instance(rng: random.Random, capacity: int, bins: int, pieces: tuple[int, int]
             ) -> list[int]:
    """The shuffled pieces of `bins` bins of `capacity`, each cut into `pieces` (a range)."""
    weights = [w for _ in range(bins) for w in cut_bin(rng, capacity, rng.randint(*pieces))]
    rng.shuffle(weights)
    return weights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the instances")
    parser.add_argument("--instances", type=int, default=12)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = ["instance\tlower_bound\toptimum"]
    for index in range(args.instances):
        capacity = CAPACITIES[index % len(CAPACITIES)]
        bins = BINS[(index // len(CAPACITIES)) % len(BINS)]
        pieces = PIECES[index % len(PIECES)]
        weights = instance(rng, capacity, bins, pieces)
        name = f"zero_slack_s{args.seed}_c{capacity}_b{bins}_{index:03d}"
        (args.out / f"{name}.txt").write_text(
            f"{len(weights)}\n{capacity}\n" + "".join(f"{w}\n" for w in weights))
        rows.append(f"{name}\t{bins}\t{bins}")
    (args.out / "optima.tsv").write_text("\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
