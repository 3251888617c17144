"""`summary.md`: what a person reads first about a plan."""

from __future__ import annotations

from planner import money
from planner.ledger import Ledger, hours_run, ledger
from planner.planfile import (
    BelowMinPlan,
    HeadroomPlan,
    LazyCachePlan,
    ModelPlan,
    NodeLossSummary,
    Plan,
    RulePrice,
)
from reports.dra import FEATURE_GATES
from reports.format import money as _money
from reports.format import percent as _percent
from reports.format import rate as _rate
from reports.format import seconds_spent
from reports.manifests import KSERVE_SERVERLESS, knative_features
from reports.rollout import rollout


def _hours(plan: Plan) -> str:
    """Which hours the monthly amounts charge: a billing period's, or the planning figure."""
    hours = f"{plan.metadata.hours_per_month:g}"
    if plan.metadata.period is not None:
        return (f"- **Hours:** {hours} per month, the hours of the billing period "
                f"{plan.metadata.period}.")
    return (f"- **Hours:** {hours} per month, the planning figure (`hours_per_month`); "
            f"`--period YYYY-MM` charges a calendar month's hours instead.")


def _rollouts(plan: Plan) -> list[str]:
    """Which pools have room for surge pods and node replacement, and which models roll out
    one replica at a time instead."""
    lines = ["", "## Rollouts", "",
             "A rolling update starts a new pod before it stops an old one where the pool has "
             "room for it; Karpenter also needs room below a NodePool's limit to replace a "
             "node on drift or expiry before draining it.", "",
             "| pool | nodes planned | ceiling | room |", "|---|---:|---:|---|"]
    for pool in plan.pools:
        if pool.nodes:
            spare = pool.max_nodes - len(pool.nodes)
            room = f"{spare} more node{'s' if spare != 1 else ''}" if spare else \
                "none: at its ceiling, node replacement waits for a node to drain"
            lines.append(f"| {pool.name} | {len(pool.nodes)} | {pool.max_nodes} | {room} |")
    stopping = [(m, rollout(plan, m)) for m in plan.models  # a batch run ends, no rollout
                if m.cache is None and m.batch is None]
    stopping = [(m, r) for m, r in stopping if not r.surge]
    if stopping:
        lines += ["", "Without room for a surge pod, these update with `maxSurge: 0, "
                  "maxUnavailable: 1`:", "", "| model | replicas | why |", "|---|---:|---|"]
        lines += [f"| {m.name} | {m.replicas} | {r.why} |" for m, r in stopping]
    else:
        lines += ["", "Every model with pods of its own updates with `maxSurge: 1, "
                  "maxUnavailable: 0`."]
    zoned = {p.name for p in plan.pools if p.zones}
    if any(m.zone_max_skew is not None and m.pool in zoned for m in plan.models):
        lines += ["", "A model with a zone spread (`zone_max_skew`) surges onto a planned node "
                  "only in a zone where one more of its pods, old ones counted, keeps the "
                  "spread. That is checked for the first surge pod; later ones depend on which "
                  "node the scheduler picks and which old pod the ReplicaSet deletes, which "
                  "the plan does not model."]
    servers = [c.workload for c in plan.held_caches("triton")]
    if servers:
        lines += ["", f"Lazy cache servers ({', '.join(servers)}) are replaced in place "
                  "(`maxSurge: 0, maxUnavailable: 1`): a new server starts with no model "
                  "loaded, so a surge pod would keep none warm."]
    meshed = [c.workload for c in plan.held_caches("modelmesh")]
    if meshed:
        lines += ["", f"KServe ModelMesh rolls out its runtimes' pods ({', '.join(meshed)}) "
                  "itself, with `maxSurge: 75%, maxUnavailable: 15%` (its controller's "
                  "Deployment): a surge pod asks for a time-shared GPU and its host memory, "
                  "room the plan does not hold."]
    return lines


def _spares(headroom: HeadroomPlan) -> str:
    return ", ".join(f"{s.nodes} {s.instance_type}" + (f" ({s.node_pool})"
                     if s.node_pool != headroom.pool else "") for s in headroom.spares)


def node_loss_sentence(plan: Plan, where: str) -> str | None:
    """The node-loss sentence the summary and the pull-request comment share: the nodes whose
    loss drops a model below its replicas.min, what the headroom that prevents it costs, and
    `where` the details are."""
    loss = plan.node_loss
    if loss is None or not loss.nodes:
        return None
    if not loss.losses:
        return (f"every model keeps its replicas.min through the loss of any one of the "
                f"{loss.nodes} nodes.")
    models = {b.model for x in loss.losses for b in x.below_min}
    return (f"losing one of {len(loss.losses)} of the {loss.nodes} nodes drops {len(models)} "
            f"models below their replicas.min; the spare nodes that prevent it cost "
            f"{_money(loss.cost_per_month, plan.summary.currency)} per month ({where}).")


def node_loss_line(plan: Plan) -> list[str]:
    """One line of the summary's overview: the node-loss sentence."""
    sentence = node_loss_sentence(plan, "see Node loss")
    return [] if sentence is None else [f"- **Node loss:** {sentence}"]


def _below(below: BelowMinPlan) -> str:
    """`model (running of min)`, and for a cache's member the server pods it counts."""
    served = f", served by `{below.served_by}`" if below.served_by else ""
    return f"{below.model} ({below.running} of {below.replicas_min}{served})"


def _node_loss(plan: Plan, loss: NodeLossSummary) -> list[str]:
    """Which models each node's loss drops below replicas.min, and the cheapest headroom."""
    cur = plan.summary.currency
    lines = ["", "## Node loss", ""]
    if not loss.nodes:
        return lines + [f"More than {loss.limit} nodes: not replayed here; `planner simulate "
                        "--plan plan.yaml` loses each node in turn."]
    lines += [f"Each of the {loss.nodes} nodes lost in turn, its pods rescheduled on the "
              "nodes left as the scheduler would (`planner simulate` replays it)."]
    servers = sorted({cache.workload for m in plan.models
                      if (cache := plan.served_by(m)) is not None})
    if servers:
        lines[-1] += (" A lazy cache's members have no pods of their own: each counts the "
                      f"server pods of its cache ({', '.join(f'`{s}`' for s in servers)}).")
    if not loss.losses:
        return lines + ["", "Every model keeps its replicas.min through any one loss."]
    lines += ["", "| node lost | pool | models below replicas.min (running of min) |",
              "|---|---|---|"]
    lines += [f"| {x.node} | {x.pool} | {', '.join(_below(b) for b in x.below_min)} |"
              for x in loss.losses]
    lines += ["", "The cheapest spare nodes per pool that keep every model at its replicas.min "
              "through the loss of any one node (mixes of the kinds its NodePools launch, "
              "replayed):", "",
              "| pool | spare nodes | per month | within max_nodes | covers every loss |",
              "|---|---|---:|---|---|"]
    lines += [f"| {h.pool} | {_spares(h)} | {_money(h.cost_per_month, cur)} | "
              f"{'yes' if h.within_ceiling else '**no**'} | {'yes' if h.covers else '**no**'} |"
              for h in loss.headroom]
    lines.append(f"| total | | {_money(loss.cost_per_month, cur)} | | |")
    return lines


def not_enforced(plan: Plan) -> list[str]:
    """The plan's rules the cluster does not enforce, each with its pools: one line each."""
    return [f"{e.rule} in {', '.join(e.pools)}" for e in plan.enforcement if not e.enforced]


def _enforcement(plan: Plan) -> list[str]:
    """Which rules hold in the cluster, and which only in the plan."""
    lines = ["", "## What the cluster enforces", "",
             "The plan places each replica on one GPU; the scheduler enforces what the "
             "manifests say about nodes, and the GPU sharing mechanism what it bounds per pod.",
             "", "| rule | pools | enforced | by |", "|---|---|---|---|"]
    lines += [f"| {e.rule} | {', '.join(e.pools)} | {'yes' if e.enforced else '**no**'} | "
              f"{e.how} |" for e in plan.enforcement]
    if plan.metadata.sharing_backend == "dra":
        lines += ["", "GPUs are handed out by NVIDIA's DRA driver for GPUs: in pools that "
                  "share GPUs a ResourceClaim per planned node in `manifests/claims/`, used by "
                  "a Deployment per planned GPU or slice; in exclusive pools a "
                  "ResourceClaimTemplate per model. Install the driver with its feature gates "
                  f"{' and '.join(f'`{g}`' for g in FEATURE_GATES)} on; the ClusterPolicy "
                  "patch turns the GPU Operator's device plugin off. Karpenter does not yet "
                  "provision nodes for pods with resource claims: the pools' nodes must exist."]
    return lines


def _autoscaling(plan: Plan, costs) -> list[str]:
    """What the autoscaled models' replicas cost at the peak and at the expected mean."""
    scaled = [(m, m.autoscaling) for m in plan.models if m.autoscaling is not None]
    if not scaled:
        return []
    cur = plan.summary.currency
    by_model = costs.by_model()
    at_peak = sum(by_model[m.name] for m, _ in scaled)
    at_mean = money.rounded(sum(by_model[m.name] * a.min_replicas / a.max_replicas
                                for m, a in scaled), cur)
    keda = [m.name for m, a in scaled if a.by == "keda"]
    hpa = len(scaled) - len(keda)
    by = ([f"HorizontalPodAutoscaler on `{scaled[0][1].metric}` per pod"] if hpa else []) \
        + ([f"a KEDA ScaledObject on the engine's request rate in Prometheus for "
            f"{', '.join(keda)}"] if keda else [])
    return [f"- **Autoscaling:** {len(scaled)} model{'s' if len(scaled) != 1 else ''} scale "
            f"between the replicas of their expected mean traffic and of their peak "
            f"({'; '.join(by)}): their "
            f"replicas cost {_money(at_peak, cur)} per month at the peak, as planned, and "
            f"{_money(at_mean, cur)} at the mean; the nodes are planned for the peak, and "
            f"cost less at the mean only where Karpenter's consolidation empties one."]


def _batch_runs(plan: Plan, costs) -> list[str]:
    """The models that work in runs: their CronJob or Job, the hours they pay for."""
    runs = [m for m in plan.models if m.batch is not None]
    if not runs:
        return []
    cur, by_model = plan.summary.currency, costs.by_model()
    each = []
    for model in runs:
        assert model.batch is not None
        how = f"a CronJob (`{model.batch.schedule}`" + (
            f", {model.batch.time_zone})" if model.batch.time_zone else ")") \
            if model.batch.schedule else "a Job (one run)"
        each.append(f"{model.name} as {how}, {model.batch.run_hours:.2f} h a run, "
                    f"{hours_run(model, plan):,.2f} h a month: "
                    f"{_money(by_model[model.name], cur)}")
    return [f"- **Batch runs:** {'; '.join(each)}. Each run starts the planned replicas on "
            f"the GPUs planned for them and pays for the hours it runs; the nodes are planned "
            f"to stay, so those GPUs' other hours are in their pool's idle capacity."]


def _rule_prices(plan: Plan) -> list[str]:
    """What each rule costs, from the plan re-solved with it relaxed: the relaxations that
    place more models first, then the largest saving."""
    cur, hours = plan.summary.currency, plan.metadata.hours_per_month
    lines = ["", "## What the rules cost", "",
             "The plan re-solved with one rule relaxed at a time (`--price-rules`):", ""]
    binding = sorted((r for r in plan.rule_prices if r.saves_per_hour > 0 or r.placed_more),
                     key=RulePrice.rank)
    for r in binding:
        saving = money.rounded(money.monthly(r.saves_per_hour, hours), cur)
        what = f"saves {_money(saving, cur)} per month" if r.saves_per_hour >= 0 else \
            f"costs {_money(-saving, cur)} more per month"
        count = abs(r.placed_more)
        more = f" and places {count} {'more' if r.placed_more > 0 else 'fewer'} " \
            f"model{'s' if count != 1 else ''}" if r.placed_more else ""
        exact = "" if r.status == "optimal" else f" ({r.status}: the saving is at least this)"
        lines.append(f"- Relaxing **{r.rule}** ({r.relaxed}) {what}{more}{exact}.")
    free = [r.rule for r in plan.rule_prices if r not in binding]
    if not binding:
        lines.append("- No rule tried binds: relaxing any one of them saves nothing.")
    if free:
        lines += ["", f"Relaxing these saves nothing: {', '.join(free)}."]
    return lines


def loading_reason(model: ModelPlan) -> str:
    """Why the model loads as it does: its `auto` decision and its cache, from its reasons."""
    said = [r for r in model.reasons if r.startswith(("loading auto:", "lazy"))]
    return "; ".join(said) or f"loading: {model.loading} in its model file"


def cache_share(plan: Plan, model: ModelPlan) -> str:
    """What a reserved cache's member runs on instead of pods of its own: its cache's server
    pods, or where no manifest serves the cache, planned capacity only."""
    cache = plan.served_by(model)
    if cache is None:
        return f"in cache {model.cache}, planned capacity only"
    return f"served by {cache.workload} ({cache.servers} server pod" \
        f"{'s' if cache.servers != 1 else ''})"


def _cache_state(cache: LazyCachePlan) -> str:
    """What holds the cache in the cluster."""
    if not cache.reserved:
        return f"not reserved: members keep their pods ({cache.unserved})" if cache.unserved \
            else "not reserved: members keep their pods"
    if not cache.placed:
        return "not placed"
    if cache.server == "modelmesh":
        return f"KServe ModelMesh, ServingRuntime `{cache.workload}` (loads on a miss)"
    if cache.server == "triton":
        return (f"Triton servers `{cache.workload}` (explicit model control; loaded by "
                "whatever routes requests)")
    return f"planned capacity only: {cache.unserved}"


def _lazy(plan: Plan, target: str) -> list[str]:
    """The lazy caches with their cost against all-warm, what holds each in the cluster, and
    each lazy or `auto` decision."""
    cur = plan.summary.currency
    hours = plan.metadata.hours_per_month
    caches = [c for p in plan.pools for c in p.caches]
    lines = ["", "## Lazy loading", ""]
    if caches:
        lines += ["Lazily loaded models of a time-sliced pool share a cache: servers that "
                  "reserve room for the models active at once in the busiest hour, evicting the "
                  "least recently used when another loads. Costs are GPU shares (the larger of "
                  "memory and compute), against each member's own replicas loaded warm; a "
                  "reserved cache's cost is split over its members in proportion to what each "
                  "would cost warm.", "",
                  "| cache | models | held at once | active on average (busiest hour) | "
                  "servers | memory per server | cost per month | all warm per month | "
                  "difference | held by |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
        for c in caches:
            cost, warm = c.cost_per_hour * hours, c.all_warm_cost_per_hour * hours
            lines.append(f"| {c.name} | {', '.join(c.members)} | {c.slots} | "
                         f"{c.expected_active:g} ({c.busiest_hour:02d}:00 UTC) | {c.servers} | "
                         f"{c.memory_mib:,} MiB | {_money(cost, cur)} | {_money(warm, cur)} | "
                         f"{_money(cost - warm, cur, sign=True)} | {_cache_state(c)} |")
        lines.append("")
    decided = [m for m in plan.models if m.loading == "lazy" or any(
        r.startswith("loading auto:") for r in m.reasons)]
    lines += ["| model | loading | cache | why |", "|---|---|---|---|"]
    member_of = {name: c.name for c in caches for name in c.members}
    lines += [f"| {m.name} | {m.loading} | {member_of.get(m.name, '-')} | "
              f"{loading_reason(m)} |" for m in decided]
    meshed = plan.held_caches("modelmesh")
    if meshed:
        lines += ["", "KServe ModelMesh holds each cache whose members' model repositories "
                  "are in object storage: a ServingRuntime of Triton (`multiModel: true`, "
                  "`replicas` the planned servers) and an InferenceService per member in "
                  "ModelMesh mode. ModelMesh loads a member into a runtime pod on its first "
                  "request and evicts the least recently used when the pod's capacity is "
                  "used. That capacity is the Triton container's memory request less "
                  "`memBufferBytes`, set to the cache's memory per server: ModelMesh counts "
                  "container memory and sizes a model by its files on disk (times 1.25), not "
                  "by the GPU memory it takes, which nothing caps. Requests go through "
                  "ModelMesh's Service `modelmesh-serving` (gRPC 8033, REST 8008); its members "
                  "have no pods of their own. The cluster needs ModelMesh Serving installed, "
                  "its etcd, and a `storage-config` Secret in the runtime's namespace with the "
                  "storage's credentials (key `default_s3`, `default_gcs` or `default_azure`)."]
    served = plan.held_caches("triton")
    if served:
        lines += ["", "Each Triton cache server (a cache whose model repository is a folder in "
                  "the server's image, which ModelMesh cannot pull from) starts with no model "
                  "loaded (`--model-control-mode=explicit`) over its members' model "
                  "repositories. Nothing in these manifests loads one: whatever routes a "
                  "member's requests must load it with `POST /v2/repository/models/<model>/load` "
                  "on a miss and free the least recently used with `.../unload`, keeping at "
                  "most the cache's slots loaded (annotations `cache-slots`, "
                  "`cache-memory-mib`). Its members have no pods of their own."]
    capacity_only = [c for c in caches if c.reserved and c.server is None]
    lazy_alone = [m for m in plan.models if m.loading == "lazy" and m.cache is None]
    if capacity_only:
        lines += ["", f"**{', '.join(c.name for c in capacity_only)}: planned capacity "
                  "only.** The plan reserves the cache (policy.yaml `lazy_cache.reserve: "
                  "true`) and its members have no pods here, but no manifest here serves it: "
                  "a multi-model server that loads and evicts on request, deployed beside "
                  "these manifests, must hold them in the memory planned for it."]
    if lazy_alone:
        how = ("a KServe predictor scales from zero in serverless mode (`minReplicas: 0`) and "
               "keeps one pod in raw mode" if target == "kserve"
               else "each one's Deployment starts its pods loaded")
        lines += ["", f"{', '.join(m.name for m in lazy_alone)}: lazy is planned capacity "
                  f"only, with no shared server to load into: {how}, as the plan reserves "
                  "them."]
    return lines


def _kserve(plan: Plan, kserve_mode: str) -> list[str]:
    lines = ["", "## KServe", "", f"InferenceServices use `serving.kserve.io/deploymentMode: "
             f"{kserve_mode}`."]
    if kserve_mode == KSERVE_SERVERLESS:
        lines += ["Knative refuses their pod fields unless these feature flags are `enabled` "
                  "in the ConfigMap `config-features` of namespace `knative-serving`:", ""]
        lines += [f"- `{feature}`" for feature in knative_features(plan)]
        lines += ["", "Knative starts a new revision's pods before it retires the old ones: an "
                  "update needs room for all of a model's replicas at once, which the pools' "
                  "room above must hold."]
    return lines


def _headline(plan: Plan, costs: Ledger) -> list[str]:
    """The plan in a list: cost, baseline, autoscaling, batch runs, hours, solver, unplaced,
    node loss, the rules the cluster does not enforce."""
    s, solver, cur = plan.summary, plan.solver, plan.summary.currency
    total = costs.total
    return [
        "# Placement plan",
        "",
        f"- **Cost:** {_money(total, cur)} per month "
        f"({_rate(s.cost_per_hour, cur)} per hour) for {s.models} models, {s.replicas} "
        f"replicas on {s.gpus} GPUs in {s.nodes} nodes.",
        f"- **Baseline** (the placed models without sharing a GPU: every replica on GPUs of "
        f"its own, each model on the node shape of an admitting pool where that costs least, "
        f"in whole nodes as many as their replicas and spread need; unplaced models left "
        f"out): "
        f"{_money(s.baseline_cost_per_month, cur)} per month; this plan saves "
        f"{_money(s.baseline_cost_per_month - total, cur)} "
        f"({_percent(s.baseline_cost_per_month - total, s.baseline_cost_per_month)}).",
        *_autoscaling(plan, costs),
        *_batch_runs(plan, costs),
        _hours(plan),
        f"- **Solver:** {solver.name}, {solver.status}, gap {solver.gap:.2%} to the proven "
        f"lower bound of {_rate(solver.lower_bound, cur)} per hour, {seconds_spent(solver)}.",
        f"- **Unplaced models:** {s.unplaced}.",
        *node_loss_line(plan),
        *([f"- **Not enforced by the cluster** (held only by the plan): "
           f"{'; '.join(not_enforced(plan))}."] if not_enforced(plan) else []),
    ]


def _teams(plan: Plan, costs: Ledger) -> list[str]:
    cur, total = plan.summary.currency, costs.total
    lines = ["", "## Cost by team", "",
             "| team | models | replicas | cost per month | share |",
             "|---|---:|---:|---:|---:|"]
    teams = costs.by_team()
    for team in sorted(teams):
        members = [m for m in plan.models if m.team == team]
        lines.append(f"| {team} | {len(members)} | {sum(m.own_pods for m in members)} | "
                     f"{_money(teams[team], cur)} | {_percent(teams[team], total)} |")
    lines.append(f"| (idle capacity) | | | {_money(costs.idle, cur)} | "
                 f"{_percent(costs.idle, total)} |")
    return lines


def _pools(plan: Plan, costs: Ledger) -> list[str]:
    cur = plan.summary.currency
    lines = ["", "## Pools", "",
             "| pool | GPU | sharing | nodes | GPUs used | memory used | compute used | "
             "cost per month | idle per month |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    pools = costs.by_pool()
    idle = {line.pool: line.cost_per_month for line in costs.lines if line.idle}
    for pool in plan.pools:
        used = sum(len(n.gpus) for n in pool.nodes)
        shapes = ", ".join(f"{s.nodes} {s.label}" for s in pool.shapes if s.nodes)
        nodes = f"{len(pool.nodes)} ({shapes})" if shapes else str(len(pool.nodes))
        lines.append(
            f"| {pool.name} | {pool.device} | {pool.sharing} | {nodes} | "
            f"{used}/{pool.gpu_count} | "
            f"{_percent(pool.memory_used_mib, pool.memory_capacity_mib)} | "
            f"{_percent(pool.compute_used_milli, pool.compute_capacity_milli)} | "
            f"{_money(pools.get(pool.name, 0), cur)} | "
            f"{_money(idle.get(pool.name, 0), cur)} |")
    return lines


def _neighbours(plan: Plan, model: ModelPlan) -> str:
    """Who shares the model's GPUs: a cache member shares its server's (or the cache's
    planned capacity) with the cache's other members, loaded into the same server, and with
    the server's neighbours."""
    neighbours = ", ".join(model.shares_with)
    if model.cache is None:
        return neighbours or "-"
    where = "its server" if plan.served_by(model) is not None else "its planned capacity"
    return f"the other members of {model.cache}, in {where}" + (
        f"; beside it: {neighbours}" if neighbours else "")


def _models(plan: Plan, costs: Ledger) -> list[str]:
    cur = plan.summary.currency
    lines = ["", "## Models", "",
             "| model | team | pool | replicas | GPU share | memory per replica | "
             "memory per GPU | cost per month | planned to share GPUs with |",
             "|---|---|---|---:|---:|---:|---:|---:|---|"]
    by_model = costs.by_model()
    for model in plan.models:
        share = f"{model.gpus_per_replica} whole" if model.whole_gpus else (
            model.mig_slice or f"{model.compute_milli / 10:.1f}% compute")
        memory = f"{model.memory_mib * model.gpus_per_replica:,} MiB"
        per_gpu = f"{model.memory_mib:,} MiB"
        if model.gpus_per_replica == 0:
            share = f"none (CPU, {model.serving.cpu_milli}m)"
            memory, per_gpu = f"{model.serving.host_memory_mib:,} MiB host", "-"
        if model.cache is not None:
            share = cache_share(plan, model)
            memory, per_gpu = f"{model.memory_mib:,} MiB when loaded", "-"
        lines.append(f"| {model.name} | {model.team} | {model.pool} | {model.own_pods} | "
                     f"{share} | {memory} | {per_gpu} | "
                     f"{_money(by_model[model.name], cur)} | {_neighbours(plan, model)} |")
    return lines


def render_summary(plan: Plan, *, target: str = "deployment",
                   kserve_mode: str = "RawDeployment") -> str:
    """Every amount is a line of the plan's ledger or a sum of lines, as in cost.csv."""
    costs = ledger(plan)
    lines = [*_headline(plan, costs), *_teams(plan, costs), *_pools(plan, costs),
             *_models(plan, costs)]
    if plan.unplaced:
        lines += ["", "## Unplaced models", "", "| model | priority | why |", "|---|---|---|"]
        lines += [f"| {u.name} | {u.priority} | {'; '.join(u.reasons)} |"
                  for u in plan.unplaced]
    if plan.explanation:
        lines += ["", "## Why capacity ran out", ""] + [f"- {e}" for e in plan.explanation]
    if plan.rule_prices:
        lines += _rule_prices(plan)
    if plan.enforcement:
        lines += _enforcement(plan)
    if any(m.loading == "lazy" for m in plan.models):
        lines += _lazy(plan, target)
    lines += _rollouts(plan)
    if plan.node_loss is not None:
        lines += _node_loss(plan, plan.node_loss)
    if target == "kserve":
        lines += _kserve(plan, kserve_mode)
    estimated = [m.name for m in plan.models if m.estimated]
    if estimated:
        lines += ["", f"{len(estimated)} of {len(plan.models)} models are planned from "
                  "reference profiles or stated resources, not measurements; `planner profile` "
                  "measures them."]
    return "\n".join(lines) + "\n"
