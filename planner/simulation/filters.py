"""The kube-scheduler's filter plugins for what the manifests use, each returning the reason it
refuses a node (the scheduler's own wording) or None.

Nodes are read as their labels (`kubernetes.io/hostname` names one), placed pods as
(node labels, pod) pairs. Semantics follow kubernetes/kubernetes
pkg/scheduler/framework/plugins: `noderesources` (Fit), `tainttoleration`, `nodeaffinity`,
`podtopologyspread` and `interpodaffinity`, and the Kubernetes documentation of each.
"""

from __future__ import annotations

from collections import Counter

from planner.simulation.pods import PODS, Pod

HOSTNAME = "kubernetes.io/hostname"
Placed = list[tuple[dict[str, str], Pod]]


def resource_refusal(requested: dict[str, int], free: dict[str, int]) -> str | None:
    """NodeResourcesFit: every requested resource within what the node has left (its
    allocatable less the requests of the pods bound to it), one pod slot included."""
    if free.get(PODS, 1) < 1:
        return "Too many pods"
    short = sorted(name for name, amount in requested.items()
                   if amount > 0 and free.get(name, 0) < amount)
    return ", ".join(f"Insufficient {name}" for name in short) or None


def tolerates(toleration: dict, taint: dict) -> bool:
    """v1.Toleration.ToleratesTaint: an empty effect matches every effect, an empty key with
    `Exists` every key; `Exists` ignores the value, `Equal` (the default) compares it."""
    if toleration.get("effect") and toleration["effect"] != taint.get("effect"):
        return False
    if toleration.get("key") and toleration["key"] != taint.get("key"):
        return False
    operator = toleration.get("operator") or "Equal"
    if operator == "Exists":
        return True
    return operator == "Equal" and toleration.get("key") is not None and \
        (toleration.get("value") or "") == (taint.get("value") or "")


def taint_refusal(pod: Pod, taints: list[dict]) -> str | None:
    """TaintToleration: every NoSchedule and NoExecute taint of the node is tolerated."""
    for taint in taints:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not any(
                tolerates(t, taint) for t in pod.spec.get("tolerations") or []):
            value = f"{taint['key']}: {taint['value']}" if taint.get("value") else taint["key"]
            return f"node(s) had untolerated taint {{{value}}}"
    return None


def _requirement_matches(requirement: dict, labels: dict[str, str]) -> bool:
    """A NodeSelectorRequirement (or a label selector's expression): In, NotIn, Exists,
    DoesNotExist, and for nodes Gt and Lt on integer label values."""
    key, operator = requirement["key"], requirement["operator"]
    values = requirement.get("values") or []
    present = key in labels
    if operator == "In":
        return present and labels[key] in values
    if operator == "NotIn":
        return not present or labels[key] not in values
    if operator == "Exists":
        return present
    if operator == "DoesNotExist":
        return not present
    if operator in ("Gt", "Lt") and present and len(values) == 1:
        try:
            have, bound = int(labels[key]), int(values[0])
        except ValueError:
            return False
        return have > bound if operator == "Gt" else have < bound
    return False


def selector_matches(selector: dict | None, labels: dict[str, str]) -> bool:
    """A metav1.LabelSelector: matchLabels and matchExpressions, all ANDed; a null selector
    matches nothing, an empty one everything."""
    if selector is None:
        return False
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    return all(_requirement_matches(e, labels) for e in selector.get("matchExpressions") or [])


def node_affinity_matches(pod: Pod, labels: dict[str, str]) -> bool:
    """The pod's nodeSelector (every label equal) and its required node affinity (any of the
    nodeSelectorTerms, each term's expressions and fields all holding)."""
    if any(labels.get(k) != v for k, v in (pod.spec.get("nodeSelector") or {}).items()):
        return False
    required = (((pod.spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution"))
    if not required:
        return True
    fields = {"metadata.name": labels.get(HOSTNAME, "")}
    return any(
        all(_requirement_matches(e, labels) for e in term.get("matchExpressions") or []) and
        all(_requirement_matches(f, fields) for f in term.get("matchFields") or []) and
        bool(term.get("matchExpressions") or term.get("matchFields"))
        for term in required.get("nodeSelectorTerms") or [])


def node_affinity_refusal(pod: Pod, labels: dict[str, str]) -> str | None:
    """NodeAffinity."""
    return None if node_affinity_matches(pod, labels) else \
        "node(s) didn't match Pod's node affinity/selector"


def spread_refusal(pod: Pod, node: dict[str, str], nodes: list[dict[str, str]],
                   placed: Placed) -> str | None:
    """PodTopologySpread, for every DoNotSchedule constraint of `pod`.

    Eligible domains are the values of the key on the nodes that match the pod's node
    selector and affinity (nodeAffinityPolicy Honor) and carry every key of the pod's
    constraints; taints are ignored (nodeTaintsPolicy Ignore: both the defaults). Matching
    pods are counted in the pod's namespace; the global minimum is the least count over the
    eligible domains, or 0 when there are fewer of them than `minDomains` (default 1); the pod
    fits when `count(domain) + self - minimum <= maxSkew`, self being 1 when the pod matches
    its own selector.
    """
    constraints = [c for c in pod.spec.get("topologySpreadConstraints") or []
                   if c.get("whenUnsatisfiable", "DoNotSchedule") == "DoNotSchedule"]
    keys = {c["topologyKey"] for c in constraints}
    if not keys <= set(node):
        return "node(s) didn't match pod topology spread constraints (missing required label)"
    eligible = [n for n in nodes if keys <= set(n) and node_affinity_matches(pod, n)]
    for constraint in constraints:
        key = constraint["topologyKey"]
        domains = {n[key] for n in eligible}
        counts: Counter[str] = Counter({d: 0 for d in domains})
        hosts = {n.get(HOSTNAME) for n in eligible}
        for where, other in placed:
            if where.get(HOSTNAME) in hosts and where.get(key) in domains and \
                    other.namespace == pod.namespace and \
                    selector_matches(constraint.get("labelSelector"), other.labels):
                counts[where[key]] += 1
        minimum = 0 if len(domains) < (constraint.get("minDomains") or 1) else \
            min(counts.values(), default=0)
        own = 1 if selector_matches(constraint.get("labelSelector"), pod.labels) else 0
        if counts[node[key]] + own - minimum > constraint["maxSkew"]:
            return "node(s) didn't match pod topology spread constraints"
    return None


def _anti_terms(pod: Pod) -> list[dict]:
    return (((pod.spec.get("affinity") or {}).get("podAntiAffinity") or {})
            .get("requiredDuringSchedulingIgnoredDuringExecution") or [])


def _term_selects(term: dict, owner: Pod, other: Pod) -> bool:
    """Whether `owner`'s affinity term selects `other`: by namespace (the listed ones and those
    the namespaceSelector picks; an empty namespaceSelector picks all; neither means the
    owner's own) and by labels. Namespace labels are not modelled: a non-empty
    namespaceSelector picks only the listed namespaces."""
    selector = term.get("namespaceSelector")
    listed = term.get("namespaces") or []
    if selector == {}:
        in_namespace = True
    elif listed or selector is not None:
        in_namespace = other.namespace in listed
    else:
        in_namespace = other.namespace == owner.namespace
    return in_namespace and selector_matches(term.get("labelSelector"), other.labels)


def anti_affinity_refusal(pod: Pod, node: dict[str, str], placed: Placed) -> str | None:
    """InterPodAffinity, required anti-affinity both ways: the incoming pod's terms against
    the pods in the node's topology domain, and the existing pods' terms against it."""
    for where, other in placed:
        for term in _anti_terms(pod):
            key = term["topologyKey"]
            if key in node and where.get(key) == node[key] and _term_selects(term, pod, other):
                return "node(s) didn't match pod anti-affinity rules"
        for term in _anti_terms(other):
            key = term["topologyKey"]
            if key in node and where.get(key) == node[key] and _term_selects(term, other, pod):
                return "node(s) didn't satisfy existing pods anti-affinity rules"
    return None
