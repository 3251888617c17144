"""Solver benchmark: the greedy baseline and the engine on classic instances and fleets.

    python -m scripts.bench_solver --bpp ../shared/benchmarks/bpplib/*/*.txt --time-limit 10
    python -m scripts.bench_solver --vbp ../shared/benchmarks/vbp/panigrahy_d3/*.vbp
    python -m scripts.bench_solver --fleet 1000 --time-limit 60
    python -m scripts.bench_solver --demo
    python -m scripts.bench_solver --openb ../shared/traces/openb --time-limit 120

Prints CSV `instance,n,greedy_bins,bins,lower_bound,status,seconds,solver_seconds` on stdout
(bins are the cost for fleets, in currency per hour; for openb they are the GPUs allocated, and
the bound is an upper bound; `seconds` is the wall clock around the engine, `solver_seconds`
the engine's own clock, which `--deterministic` makes counted work that the time limit bounds
on any machine), then, on stderr, a summary against `optima.tsv` when one
lies beside the instance files or one folder up. A file that is not a valid instance is
reported on stderr and skipped; the rest still runs.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time
from pathlib import Path

from bench.instances import InstanceError, read_bpp, read_vbp
from solvers.engine import InfeasibleError, solve
from solvers.greedy import greedy
from solvers.problem import Problem


def _optima(path: Path) -> dict[str, int]:
    for folder in (path.parent, path.parent.parent):
        table = folder / "optima.tsv"
        if table.exists():
            with table.open() as handle:
                rows = csv.DictReader(handle, delimiter="\t")
                return {r["instance"]: int(r["optimum"]) for r in rows}
    return {}


def _better_greedy(problem: Problem):
    first, best = greedy(problem, "first"), greedy(problem, "best")
    return min(first, best, key=lambda s: (len(s.unplaced), s.cost))


def _run(name: str, problem: Problem, args, scale: float = 1.0) -> dict:
    baseline = _better_greedy(problem)
    start = time.perf_counter()  # the engine's own time; it runs its own greedy too
    solution = solve(problem, time_limit_s=args.time_limit, seed=args.seed,
                     workers=args.workers, deterministic=args.deterministic)
    seconds = time.perf_counter() - start
    row = {"instance": name, "n": sum(g.options[0].count for g in problem.groups),
           "greedy_bins": f"{baseline.cost / scale:g}", "bins": f"{solution.cost / scale:g}",
           "lower_bound": f"{solution.lower_bound / scale:g}", "status": solution.status,
           "seconds": f"{seconds:.2f}", "solver_seconds": f"{solution.seconds:.2f}"}
    print(",".join(str(v) for v in row.values()), flush=True)
    return {**row, "cost": solution.cost, "greedy": baseline.cost, "bound": solution.lower_bound,
            "time": seconds, "solver_time": solution.seconds, "unplaced": len(solution.unplaced)}


def _summary(label: str, rows: list[dict], optima: dict[str, int]) -> None:
    known = [r for r in rows if optima.get(r["instance"], -1) > 0]
    if not known:
        return
    hits = sum(r["cost"] == optima[r["instance"]] for r in known)
    greedy_hits = sum(r["greedy"] == optima[r["instance"]] for r in known)
    gaps = [(r["cost"] - optima[r["instance"]]) / optima[r["instance"]] for r in known]
    greedy_gaps = [(r["greedy"] - optima[r["instance"]]) / optima[r["instance"]] for r in known]
    proven = sum(r["status"] == "optimal" for r in rows)
    print(f"{label}: {len(rows)} instances, optimum known for {len(known)}; engine reaches it "
          f"on {hits} ({hits / len(known):.1%}), mean gap {statistics.mean(gaps):.2%}; greedy "
          f"on {greedy_hits} ({greedy_hits / len(known):.1%}), mean gap "
          f"{statistics.mean(greedy_gaps):.2%}; proven optimal {proven}; max time "
          f"{max(r['time'] for r in rows):.1f} s, "
          f"mean {statistics.mean(r['time'] for r in rows):.2f} s; solver's clock max "
          f"{max(r['solver_time'] for r in rows):.1f} s",
          file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bpp", nargs="*", type=Path, default=[])
    parser.add_argument("--vbp", nargs="*", type=Path, default=[])
    parser.add_argument("--fleet", nargs="*", type=int, default=[])
    parser.add_argument("--demo", action="store_true", help="the bundled demo registry")
    parser.add_argument("--openb", type=Path, help="folder of the openb trace's two CSV files")
    parser.add_argument("--time-limit", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--deterministic", action="store_true",
                        help="count work: --time-limit in CP-SAT deterministic seconds, one "
                        "worker; the same bins on any machine (seconds stay wall-clock)")
    args = parser.parse_args()
    print("instance,n,greedy_bins,bins,lower_bound,status,seconds,solver_seconds")
    for label, files, reader in (("bpp", args.bpp, read_bpp), ("vbp", args.vbp, read_vbp)):
        rows, optima, bad = [], {}, []
        for path in files:
            optima.update(_optima(path))
            try:
                rows.append(_run(path.stem, reader(path), args))
            except (InstanceError, InfeasibleError, OSError) as exc:
                # One bad file is reported and skipped; the rest of the family still runs.
                print(f"skipped {path}: {exc}", file=sys.stderr, flush=True)
                bad.append(path)
        _summary(label, rows, optima)
        if bad:
            print(f"{label}: {len(bad)} instance(s) skipped, see above", file=sys.stderr)
    fleets = [(f"fleet-{n}", _fleet_problem(n, args.seed)) for n in args.fleet]
    if args.demo:
        fleets.append(("demo", _demo_problem()))
    for name, problem in fleets:
        row = _run(name, problem, args, scale=10_000)
        print(f"{name}: gap {(row['cost'] - row['bound']) / row['cost']:.2%}, greedy "
              f"{row['greedy'] / 10_000:.2f}/h, engine {row['cost'] / 10_000:.2f}/h, "
              f"{row['unplaced']} unplaced, {row['time']:.1f} s", file=sys.stderr)
    if args.openb:
        _run_openb(args.openb, args)


def _run_openb(folder: Path, args) -> None:
    """Place the trace's pods on its own nodes; report GPUs allocated against best fit."""
    from bench.cluster import fit, objective_key
    from bench.cluster_search import place
    from bench.instances import read_openb

    cluster = read_openb(folder)
    start = time.perf_counter()
    baseline = fit(cluster, "best")
    baseline_seconds = time.perf_counter() - start
    found = place(cluster, time_limit_s=args.time_limit, seed=args.seed, workers=args.workers)
    greedy_milli = baseline.allocated_milli()
    milli = found.allocated_milli(cluster)
    print(f"openb,{len(cluster.pods)},{greedy_milli / 1000:g},{milli / 1000:g},"
          f"{found.upper_bound_milli / 1000:g},{found.status},{found.seconds:.2f},"
          f"{found.seconds:.2f}", flush=True)
    gpus = cluster.gpus
    demand = sum(p.gpu_demand_milli for p in cluster.pods) / 1000
    for label, allocated, assignment in (
            ("best-fit decreasing", greedy_milli / 1000, baseline.assignment),
            ("engine", milli / 1000, found.assignment)):
        unplaced = {level: sum(1 for p, a in zip(cluster.pods, assignment, strict=True)
                               if a is None and p.priority == level)
                    for level in sorted({p.priority for p in cluster.pods}, reverse=True)}
        print(f"openb {label}: {allocated:.2f} of {gpus} GPUs allocated "
              f"({allocated / gpus:.2%} of the cluster, {allocated / demand:.2%} of the "
              f"{demand:.2f} requested; {1 - allocated / gpus:.2%} unallocated); pods unplaced "
              f"by priority {unplaced}; placed weight by priority "
              f"{objective_key(cluster, assignment)}", file=sys.stderr)
    print(f"openb: upper bound {found.upper_bound_milli / 1000:.2f} GPUs "
          f"({found.upper_bound_milli / 1000 / gpus:.2%} of the cluster); engine within "
          f"{1 - milli / found.upper_bound_milli:.2%} of it; best fit took "
          f"{baseline_seconds:.1f} s, the engine {found.seconds:.1f} s", file=sys.stderr)


def _fleet_problem(models: int, seed: int) -> Problem:
    from bench.synthetic import generate_fleet
    from planner.demand.derive import derive
    from planner.demand.to_engine import build_problem

    fleet = generate_fleet(models, seed)
    return build_problem(fleet, derive(fleet)[0])


def _demo_problem() -> Problem:
    from planner.demand.derive import derive
    from planner.demand.to_engine import build_problem
    from planner.demo import demo_registry_path
    from planner.registry.loader import load_registry

    fleet = load_registry(demo_registry_path())
    return build_problem(fleet, derive(fleet)[0])


if __name__ == "__main__":
    main()
