"""Vector packing instances of Panigrahy et al.'s classes in any number of dimensions.

    python -m scripts.vbp_classes --out /tmp/vbp_d5 --dimensions 5 --items 60 250 --seed 1

The classes are those of "Heuristics for Vector Bin Packing" (Panigrahy, Talwar, Uyeda and
Wieder, 2011), which carry Caprara and Toth's two-dimensional classes to d dimensions, as
Mommessin et al.'s generator writes them (github.com/Vectorpack/experiments_vector_paper,
`data/scripts/generate_Panigrahy_multidim.py`):

- classes 1 to 6: every size uniform in [alpha, beta] on its own, capacity h: class 1
  [100, 400] of 1000, class 2 [1, 1000] of 1000, class 3 [200, 800] of 1000, class 4
  [50, 200] of 1000, class 5 [25, 100] of 1000, class 6 [20, 100] of 150;
- class 7, positively correlated pairs: dimensions in pairs, the first uniform in [20, 99],
  the second within 10 of it; an odd last dimension uniform in [20, 99]; capacity 150;
- class 8, negatively correlated pairs: the second of a pair uniform in [110 - w, 130 - w];
- class 9, capacity 100: 2d units dropped at random into the d dimensions, each unit worth
  s (uniform in [10, 40]), plus 0 or 1 per dimension; items larger than the bin redrawn.

The optimum of these instances is unknown; `optima.tsv` beside them gives the lower bound the
engine proves no better than (the per-dimension Martello-Toth L2 bound) in `lower_bound` and 0
as the optimum, so `scripts/bench_solver.py --vbp DIR/*.vbp` reports bins and bounds without
claiming a gap to an optimum. Files are the `.vbp` format (dimensions, capacities, item types,
then sizes and a demand of 1 per item).
"""

from __future__ import annotations

import argparse
import random
from collections import Counter
from pathlib import Path

from solvers.bounds import martello_toth_l2

UNIFORM = {1: (1000, 100, 400), 2: (1000, 1, 1000), 3: (1000, 200, 800),
           4: (1000, 50, 200), 5: (1000, 25, 100), 6: (150, 20, 100)}
CLASSES = (*UNIFORM, 7, 8, 9)


def _paired(rng: random.Random, dimensions: int, second) -> list[int]:
    """Classes 7 and 8: dimensions in pairs whose second size follows from the first."""
    sizes: list[int] = []
    for _ in range(dimensions // 2):
        first = rng.randint(20, 99)
        sizes += [first, second(first)]
    if dimensions % 2:
        sizes.append(rng.randint(20, 99))
    return sizes


def _class9(rng: random.Random, dimensions: int) -> list[int]:
    while True:
        units = Counter(rng.randrange(dimensions) for _ in range(2 * dimensions))
        unit = rng.randint(10, 40)
        sizes = [unit * units[d] + rng.randint(0, 1) for d in range(dimensions)]
        if max(sizes) <= 100:
            return sizes


def item(rng: random.Random, cls: int, dimensions: int) -> list[int]:
    """One item's sizes in class `cls`."""
    if cls in UNIFORM:
        _, low, high = UNIFORM[cls]
        return [rng.randint(low, high) for _ in range(dimensions)]
    if cls == 7:
        return _paired(rng, dimensions, lambda w: rng.randint(w - 10, w + 10))
    if cls == 8:
        return _paired(rng, dimensions, lambda w: rng.randint(110 - w, 130 - w))
    return _class9(rng, dimensions)


def capacity(cls: int) -> int:
    return UNIFORM[cls][0] if cls in UNIFORM else (150 if cls in (7, 8) else 100)


def lower_bound(cap: int, items: list[list[int]]) -> int:
    """The largest per-dimension L2 bound: what the engine starts from."""
    return max(martello_toth_l2(Counter(row[d] for row in items), cap)
               for d in range(len(items[0])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the instances")
    parser.add_argument("--dimensions", type=int, required=True)
    parser.add_argument("--items", type=int, nargs="+", default=[60, 250])
    parser.add_argument("--classes", type=int, nargs="+", default=list(CLASSES),
                        choices=CLASSES)
    parser.add_argument("--instances", type=int, default=1, help="per class and size")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = ["instance\tlower_bound\toptimum"]
    for cls in args.classes:
        for count in args.items:
            for index in range(args.instances):
                items = [item(rng, cls, args.dimensions) for _ in range(count)]
                cap = capacity(cls)
                name = f"class{cls}_{count}_{args.dimensions}_{index}"
                lines = [str(args.dimensions), " ".join([str(cap)] * args.dimensions),
                         str(count), *(" ".join(map(str, row)) + " 1" for row in items)]
                (args.out / f"{name}.vbp").write_text("\n".join(lines) + "\n")
                rows.append(f"{name}\t{lower_bound(cap, items)}\t0")
    (args.out / "optima.tsv").write_text("\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
