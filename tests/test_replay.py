"""`planner simulate-traffic`: the cache replay checked against cases worked by hand, the
same numbers for the same seed, and traces with bad rows refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from planner.replay.arrivals import synthetic
from planner.replay.cache import CachedModel, nearest_rank_p99, replay


def _run(models, capacity_mib, requests, policy="lru", horizon_s=30.0, thrash_window_s=10.0):
    arrivals = {name: np.array(times, dtype=float) for name, times in requests.items()}
    outcome = replay("c", models, capacity_mib, arrivals, policy, horizon_s, thrash_window_s)
    return outcome, {m.name: m for m in outcome.models}


@pytest.mark.parametrize("policy", ["lru", "lfu"])
def test_two_models_one_slot_by_hand(policy):
    """A (load 2 s) and B (load 3 s), 100 MiB each, a cache of 100 MiB.

    0: A misses, loads 0-2; A@0 waits 2 s, A@1 waits 1 s.
    2: B misses; A is loaded (ready at 2), evicted at 2; B loads 2-5, B@2 waits 3 s.
    10: A misses, B evicted at 10; A loads 10-12, A@10 waits 2 s; A was evicted 8 s ago
        (within the 10 s window): thrash.
    11: B misses; A still loading until 12, so B's load starts at 12 and evicts A; B@11 waits
        4 s; B was evicted 1 s ago: thrash. B@20 is a hit.
    Memory-time: A 0-2 and 10-12, B 2-10 and 12-30: 30 s x 100 MiB = 3000 MiB-s.
    p99 (nearest rank of 3 requests: the 3rd): A's waits 1, 2, 2 -> 2 s; B's 0, 3, 4 -> 4 s.
    """
    outcome, by_name = _run([CachedModel("a", 100, 2.0), CachedModel("b", 100, 3.0)], 100,
                            {"a": [0, 1, 10], "b": [2, 11, 20]}, policy)
    a, b = by_name["a"], by_name["b"]
    assert (a.requests, a.loads, a.waited, a.evictions, a.thrash) == (3, 2, 3, 2, 1)
    assert (b.requests, b.loads, b.waited, b.evictions, b.thrash) == (3, 2, 2, 1, 1)
    assert (a.p99_added_ms, b.p99_added_ms) == (2000.0, 4000.0)
    assert outcome.memory_mib_s == 3000.0
    assert outcome.occupancy == 1.0


def test_lru_and_lfu_choose_different_victims():
    """Three models of 100 MiB, a cache of 200, loads of 1 s. A@0,1,2, B@3, C@10, A@20.

    At 10 C misses with A and B loaded: LRU evicts A (last request at 2, B's at 3), so A@20
    misses again and evicts B (last at 3); LFU evicts B (1 request against A's 3), so A@20 is
    a hit.
    """
    requests = {"a": [0, 1, 2, 20], "b": [3], "c": [10]}
    models = [CachedModel(n, 100, 1.0) for n in "abc"]
    _, lru = _run(models, 200, requests, "lru")
    _, lfu = _run(models, 200, requests, "lfu")
    assert [(lru[n].loads, lru[n].evictions) for n in "abc"] == [(2, 1), (1, 1), (1, 0)]
    assert [(lfu[n].loads, lfu[n].evictions) for n in "abc"] == [(1, 0), (1, 1), (1, 0)]
    # A@0 waits its 1 s load; A@1 arrives as the load ends and waits nothing
    assert (lfu["a"].waited, lru["a"].waited) == (1, 2)


def test_p99_nearest_rank():
    assert nearest_rank_p99(np.array([5.0]), 100) == 0.0  # 1 of 100 waited: the 99th is 0
    assert nearest_rank_p99(np.array([5.0, 7.0]), 100) == 5.0
    assert nearest_rank_p99(np.empty(0), 0) == 0.0


def test_synthetic_traffic_is_the_same_for_a_seed():
    rates = {"a": (0.5,) * 24, "b": (0.1,) * 24}
    first, again, other = synthetic(rates, 24, 7), synthetic(rates, 24, 7), synthetic(rates, 24, 8)
    assert all(np.array_equal(first[n], again[n]) for n in rates)
    assert not np.array_equal(first["a"], other["a"])
    # a model's arrivals do not depend on the others
    assert np.array_equal(synthetic({"a": rates["a"]}, 24, 7)["a"], first["a"])
    # a day of Poisson traffic at 0.5 rps: 43,200 expected, within five standard deviations
    assert abs(len(first["a"]) - 43_200) < 5 * 43_200 ** 0.5
    assert np.all(np.diff(first["a"]) >= 0) and first["a"][-1] < 24 * 3600


def test_demo_day_table_and_same_seed(cli, greedy_demo_out: Path):
    plan = greedy_demo_out / "plan.yaml"
    result = cli("simulate-traffic", "--plan", plan, "--format", "json")
    assert result.exit_code == 0, result.stderr
    again = cli("simulate-traffic", "--plan", plan, "--format", "json")
    assert result.stdout == again.stdout
    data = json.loads(result.stdout)
    assert (data["seed"], data["hours"]) == (0, 24)
    assert [(c["cache"], c["policy"]) for c in data["caches"]] == [
        ("shared-l4/lazy-cache", "lru"), ("shared-l4/lazy-cache", "lfu")]
    rows = {m["model"]: m for m in data["caches"][0]["models"]}
    assert set(rows) == {"doc-layout-parser", "nsfw-detector", "sentiment-analyzer",
                         "spell-corrector", "ticket-router"}
    # the busy models load once and stay; the rare ones pay a cold start on most requests
    for busy in ("nsfw-detector", "sentiment-analyzer", "spell-corrector"):
        assert rows[busy]["cold_starts"] == 1 and rows[busy]["evictions"] == 0
    rare = rows["ticket-router"]
    assert rare["cold_starts"] >= 1 and rare["p99_added_ms"] == 2100.0  # its 2.1 s load
    assert 0 < data["caches"][0]["occupancy"] <= 1
    table = cli("simulate-traffic", "--plan", plan, "--eviction", "lru")
    assert table.exit_code == 0
    assert "shared-l4/lazy-cache, lru eviction: 24 h (seed 0)" in table.stdout
    assert "lfu" not in table.stdout


def test_trace_replayed_and_bad_rows_refused(cli, greedy_demo_out: Path, tmp_path: Path):
    plan = greedy_demo_out / "plan.yaml"
    trace = tmp_path / "trace.csv"
    trace.write_text("model,timestamp_s\nticket-router,0\ndoc-layout-parser,1\n"
                     "ticket-router,5000\nautocomplete,3\n")
    result = cli("simulate-traffic", "--plan", plan, "--trace", trace, "--format", "json",
                 "--eviction", "lru")
    assert result.exit_code == 0, result.stderr
    assert "1 requests in the trace go to models outside every lazy cache" in result.stderr
    data = json.loads(result.stdout)
    assert data["seed"] is None and data["hours"] == 2  # 5000 s: two hours
    rows = {m["model"]: m for m in data["caches"][0]["models"]}
    assert (rows["ticket-router"]["requests"], rows["ticket-router"]["cold_starts"]) == (2, 1)
    assert rows["sentiment-analyzer"]["requests"] == 0
    trace.write_text("model,timestamp_s\nticket-router,0\nticket-router,soon\n")
    bad = cli("simulate-traffic", "--plan", plan, "--trace", trace)
    assert bad.exit_code == 2
    assert f"{trace}:3: timestamp_s: 'soon' is not a number of seconds" in bad.stderr
    trace.write_text("when,what\n")
    assert cli("simulate-traffic", "--plan", plan, "--trace", trace).exit_code == 2
