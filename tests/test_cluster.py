"""Placing pods onto a fixed cluster: validity, priorities, the upper bound, brute-force optima,
and the openb reader."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.cluster import Cluster, Node, Pod, fit, objective_key, violations
from bench.cluster_bound import upper_bound_milli
from bench.cluster_search import place
from bench.instances import read_openb
from tests.conftest import SHARED

RESOURCES = ("cpu_milli", "memory_mib")


@st.composite
def clusters(draw, max_nodes: int = 2, max_pods: int = 5):
    nodes = tuple(Node(f"n{i}", draw(st.integers(1, 2)),
                       (draw(st.integers(4, 16)) * 1000, draw(st.integers(8, 32)) * 1024))
                  for i in range(draw(st.integers(1, max_nodes))))
    pods = []
    for i in range(draw(st.integers(1, max_pods))):
        gpus = draw(st.sampled_from([0, 1, 1, 1, 2]))
        milli = 1000 if gpus > 1 else draw(st.sampled_from([250, 400, 600, 1000])) if gpus else 0
        pods.append(Pod(f"p{i}", (draw(st.integers(1, 10)) * 1000, draw(st.integers(1, 24)) * 1024),
                        gpus, milli, draw(st.integers(0, 1))))
    return Cluster(RESOURCES, nodes, tuple(pods))


def _brute_force(cluster: Cluster) -> tuple[int, ...]:
    """The lexicographically best objective over every assignment."""
    choices = []
    for pod in cluster.pods:
        options = [None]
        for n, node in enumerate(cluster.nodes):
            options += [(n, gpus) for gpus in itertools.combinations(range(node.gpus), pod.gpus)]
        choices.append(options)
    return max(objective_key(cluster, a) for a in itertools.product(*choices)
               if not violations(cluster, a))


@settings(max_examples=40, deadline=None)
@given(clusters())
def test_search_reaches_the_brute_force_optimum_within_the_bound(cluster):
    found = place(cluster, time_limit_s=2.0, seed=0, workers=1)
    assert not violations(cluster, found.assignment)
    assert objective_key(cluster, found.assignment) == _brute_force(cluster)
    assert found.status == "optimal"
    assert found.allocated_milli(cluster) <= found.upper_bound_milli


@settings(max_examples=30, deadline=None)
@given(clusters(max_nodes=8, max_pods=30))
def test_search_is_valid_and_never_worse_than_best_fit(cluster):
    baseline = fit(cluster, "best")
    assert not violations(cluster, baseline.assignment)
    found = place(cluster, time_limit_s=0.5, seed=1, workers=1)
    assert not violations(cluster, found.assignment)
    assert objective_key(cluster, found.assignment) >= objective_key(cluster,
                                                                     baseline.assignment)
    assert found.allocated_milli(cluster) <= found.upper_bound_milli
    assert found.upper_bound_milli <= sum(p.gpu_demand_milli for p in cluster.pods)


def test_a_higher_priority_pod_is_never_given_up_for_more_gpu_below_it():
    # One GPU: the important pod wants 0.4, two best-effort pods 0.6 and 0.4 (1.0 together).
    cluster = Cluster(RESOURCES, (Node("n", 1, (8000, 8192)),), (
        Pod("important", (1000, 1024), 1, 400, priority=1),
        Pod("big", (1000, 1024), 1, 600, priority=0),
        Pod("small", (1000, 1024), 1, 400, priority=0),
    ))
    found = place(cluster, time_limit_s=2.0)
    placed = {p.name for p, a in zip(cluster.pods, found.assignment, strict=True) if a}
    assert placed == {"important", "big"}
    assert found.status == "optimal"


def test_gpu_bound_sees_shares_that_cannot_pair():
    # Three 0.6-GPU pods on two GPUs: the volume says 1.8 fits, but no GPU holds two of them.
    cluster = Cluster(RESOURCES, (Node("n", 2, (64000, 65536)),),
                      tuple(Pod(f"p{i}", (1000, 1024), 1, 600) for i in range(3)))
    assert upper_bound_milli(cluster) == 1200


def test_bound_counts_node_resources():
    # Two 1-GPU pods need 6 CPUs each; the node has 8 CPUs, so only one fits.
    cluster = Cluster(RESOURCES, (Node("n", 2, (8000, 65536)),),
                      tuple(Pod(f"p{i}", (6000, 1024), 1, 1000) for i in range(2)))
    assert upper_bound_milli(cluster) == 1000
    assert place(cluster, time_limit_s=1.0).allocated_milli(cluster) == 1000


def test_multi_gpu_pods_take_distinct_gpus_on_one_node():
    cluster = Cluster(RESOURCES, (Node("a", 4, (64000, 65536)), Node("b", 2, (64000, 65536))),
                      (Pod("four", (1000, 1024), 4, 1000), Pod("two", (1000, 1024), 2, 1000),
                       Pod("half", (1000, 1024), 1, 500)))
    found = place(cluster, time_limit_s=1.0)
    where = dict(zip((p.name for p in cluster.pods), found.assignment, strict=True))
    assert where["four"][0] == 0 and sorted(where["four"][1]) == [0, 1, 2, 3]
    assert where["two"][0] == 1 and len(set(where["two"][1])) == 2
    assert where["half"] is None
    assert found.status == "optimal"  # the whole cluster was one window, and nothing fits more


def _write_openb(folder: Path, pods: str) -> Path:
    (folder / "openb_node_list_gpu_node.csv").write_text(
        "sn,cpu_milli,memory_mib,gpu,model\nnode-a,32000,131072,2,T4\nnode-b,8000,32768,1,P100\n")
    (folder / "openb_pod_list_default.csv").write_text(
        "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,"
        "deletion_time,scheduled_time\n" + pods)
    return folder


def test_read_openb(tmp_path):
    folder = _write_openb(tmp_path, "p0,4000,8192,1,460,,LS,Running,0,10,0\n"
                                    "p1,2000,4096,0,0,,BE,Running,0,10,0\n"
                                    "p2,8000,16384,2,1000,,Burstable,Failed,0,10,\n")
    cluster = read_openb(folder)
    assert cluster.gpus == 3
    assert [(p.name, p.demand, p.gpus, p.gpu_milli, p.priority) for p in cluster.pods] == [
        ("p0", (4000, 8192), 1, 460, 1), ("p1", (2000, 4096), 0, 0, 0),
        ("p2", (8000, 16384), 2, 1000, 1)]


@pytest.mark.parametrize(("row", "message"), [
    ("p0,4000,8192,1,460,V100M16,LS,Running,0,10,0\n", ":2: gpu_spec 'V100M16' is not supported"),
    ("p0,4000,8192,1,460,,Gold,Running,0,10,0\n", ":2: unknown qos 'Gold'"),
])
def test_read_openb_refuses_what_it_cannot_honour(tmp_path, row, message):
    folder = _write_openb(tmp_path, row)
    with pytest.raises(ValueError, match=message):
        read_openb(folder)


@pytest.mark.skipif(not SHARED.exists(), reason="benchmark data not present")
def test_openb_trace_and_bounds():
    cluster = read_openb(SHARED / "traces" / "openb")
    assert (len(cluster.pods), len(cluster.nodes), cluster.gpus) == (8152, 1213, 6212)
    demand = sum(p.gpu_demand_milli for p in cluster.pods)
    assert demand == 6_086_800
    bound = upper_bound_milli(cluster)
    balanced = fit(cluster, "balanced")
    assert not violations(cluster, balanced.assignment)
    assert fit(cluster, "best").allocated_milli() <= balanced.allocated_milli() <= bound < demand
