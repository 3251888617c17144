"""`plan.html`: the plan drawn, for a person to look at rather than read.

One self-contained page (inline CSS and SVG, no script, nothing fetched when it is opened): per
pool its nodes and GPUs to scale, each GPU's memory and compute split among its replicas and
coloured by team, the idle part hatched and priced; MIG GPUs cut into their layout's slices;
per model where its replicas run and the plan's reasons; the cost by team and by pool. Every
string from the plan passes through `html.escape`.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from html import escape

from planner.ledger import ledger
from planner.planfile import GpuPlan, ModelPlan, NodePlan, Plan, PoolPlan
from reports.format import money, percent, rate, seconds_spent
from reports.profile_plots import ProfileCurve, render_curve
from reports.summary import cache_share

# Colour-blind-safe categorical colours (Okabe-Ito, then Tableau), one per team in name order.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442",
           "#4E79A7", "#59A14F", "#B07AA1", "#9C755F", "#EDC948")
GPU_WIDTH = 46  # px of one GPU column in a node drawing
GPU_HEIGHT = 150  # px of the largest GPU's memory in the plan; others are scaled to it
_MIG_SLICES = re.compile(r"^(\d+)g\.")
# The hatching of idle capacity, defined once and referenced by every drawing as url(#idle).
IDLE_PATTERN = ('<svg width="0" height="0" style="position:absolute" aria-hidden="true"><defs>'
                '<pattern id="idle" width="6" height="6" patternUnits="userSpaceOnUse" '
                'patternTransform="rotate(45)"><rect width="6" height="6" fill="#eee"/>'
                '<rect width="2" height="6" fill="#c8c8c8"/></pattern></defs></svg>')

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;
color:#1d1d1f;background:#fff;max-width:1400px}
h1{font-size:22px;margin:0 0 8px}h2{font-size:18px;margin:28px 0 6px}
h3{font-size:15px;margin:18px 0 4px}
.totals{display:flex;flex-wrap:wrap;gap:12px;margin:12px 0}
.card{border:1px solid #d0d0d7;border-radius:6px;padding:8px 12px;min-width:150px}
.card b{display:block;font-size:18px}.muted{color:#5f6368}
.legend span{display:inline-block;margin:0 14px 4px 0}
.swatch{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:5px;
vertical-align:-1px;border:1px solid #0003}
.idle{background:repeating-linear-gradient(45deg,#eee 0 3px,#c8c8c8 3px 5px)}
.nodes{display:flex;flex-wrap:wrap;gap:14px;align-items:flex-end}
figure{margin:0;border:1px solid #d0d0d7;border-radius:6px;padding:6px 8px}
figcaption{font-size:12px;color:#5f6368}
table{border-collapse:collapse;margin:6px 0 12px}
th,td{border-bottom:1px solid #e3e3e8;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f5f5f7}td.n{text-align:right;font-variant-numeric:tabular-nums}
ul.reasons{margin:0;padding-left:16px}table.models{width:100%}
table.models td.where{max-width:260px;font-size:12px}
table.models td.why{min-width:420px;font-size:12px}
.warn{color:#a50e0e}.profiles{display:flex;flex-wrap:wrap;gap:12px}
figure.profile svg{margin-right:6px}
"""


@dataclass(frozen=True)
class _Where:
    node: str
    gpu: int | None  # None: a CPU pod
    replica: int


def _colours(*plans: Plan) -> dict[str, str]:
    teams = sorted({m.team for plan in plans for m in plan.models}
                   | {u.team for plan in plans for u in plan.unplaced})
    return {team: PALETTE[i % len(PALETTE)] for i, team in enumerate(teams)}


def _swatch(colour: str) -> str:
    return f'<span class="swatch" style="background:{colour}"></span>'


def _anchor(kind: str, name: str) -> str:
    return escape(f"{kind}-{name}", quote=True)


def _slot_title(slot_model: str, replica: int, memory_mib: int, compute_milli: int,
                team: str) -> str:
    return (f"{slot_model} #{replica} ({team}): {memory_mib:,} MiB, "
            f"{compute_milli / 10:.1f}% compute")


def _gpu_svg(gpu: GpuPlan, pool: PoolPlan, x: int, height: int, models: dict[str, ModelPlan],
             colours: dict[str, str]) -> list[str]:
    """One GPU: its memory (left bar) and compute (right bar) stacked by replica, the unused
    rest hatched; a MIG GPU as its layout's slices, each filled by its replica or hatched."""
    parts = [f'<g class="gpu" data-gpu="{gpu.index}">',
             f'<rect x="{x}" y="0" width="{GPU_WIDTH}" height="{height}" fill="url(#idle)" '
             f'stroke="#555"><title>GPU {gpu.index}: idle capacity</title></rect>']
    if gpu.mig_layout:
        parts += _mig_svg(gpu, x, height, models, colours)
    else:
        half = GPU_WIDTH // 2
        for column, (used, capacity) in enumerate((("memory", pool.gpu_memory_mib),
                                                   ("compute", 1000))):
            top = height
            for slot in gpu.replicas:
                amount = slot.memory_mib if used == "memory" else slot.compute_milli
                if gpu.whole:
                    amount = capacity if used == "compute" else slot.memory_mib
                size = max(1, round(height * min(amount, capacity) / capacity))
                top -= size
                model = models.get(slot.model)
                team = model.team if model else ""
                title = _slot_title(slot.model, slot.replica, slot.memory_mib,
                                    slot.compute_milli, team)
                parts.append(
                    f'<rect x="{x + column * half}" y="{max(top, 0)}" width="{half}" '
                    f'height="{size}" fill="{colours.get(team, "#888")}" stroke="#fff" '
                    f'stroke-width="0.5" data-model="{escape(slot.model, quote=True)}">'
                    f"<title>{escape(title)}</title></rect>")
            for server in gpu.caches:
                amount = server.memory_mib if used == "memory" else server.compute_milli
                size = max(1, round(height * min(amount, capacity) / capacity))
                top -= size
                title = (f"{server.cache} server {server.server}: lazily loaded models, "
                         f"{server.memory_mib:,} MiB, {server.compute_milli / 10:g}% compute "
                         "reserved")
                parts.append(
                    f'<rect x="{x + column * half}" y="{max(top, 0)}" width="{half}" '
                    f'height="{size}" fill="#bbb" stroke="#fff" stroke-width="0.5" '
                    f'data-cache="{escape(server.cache, quote=True)}">'
                    f"<title>{escape(title)}</title></rect>")
    parts.append(f'<text x="{x + GPU_WIDTH / 2}" y="{height + 12}" font-size="10" '
                 f'text-anchor="middle">{"MIG " if gpu.mig_layout else ""}{gpu.index}</text>')
    parts.append("</g>")
    return parts


def _mig_svg(gpu: GpuPlan, x: int, height: int, models: dict[str, ModelPlan],
             colours: dict[str, str]) -> list[str]:
    layout = gpu.mig_layout or []
    sizes = [int(m.group(1)) if (m := _MIG_SLICES.match(s)) else 1 for s in layout]
    total = sum(sizes) or 1
    free = list(gpu.replicas)
    parts, top = [], 0
    for name, size in zip(layout, sizes, strict=True):
        span = round(height * size / total)
        slot = next((s for s in free if s.slice == name), None)
        if slot is not None:
            free.remove(slot)
            model = models.get(slot.model)
            team = model.team if model else ""
            title = f"{name}: " + _slot_title(slot.model, slot.replica, slot.memory_mib,
                                               slot.compute_milli, team)
            parts.append(f'<rect x="{x}" y="{top}" width="{GPU_WIDTH}" height="{span}" '
                         f'fill="{colours.get(team, "#888")}" stroke="#fff" '
                         f'data-model="{escape(slot.model, quote=True)}">'
                         f"<title>{escape(title)}</title></rect>")
        else:
            parts.append(f'<rect x="{x}" y="{top}" width="{GPU_WIDTH}" height="{span}" '
                         f'fill="url(#idle)" stroke="#555"><title>{escape(name)}: idle slice'
                         "</title></rect>")
        parts.append(f'<text x="{x + 3}" y="{top + 11}" font-size="9" fill="#111">'
                     f"{escape(name)}</text>")
        top += span
    return parts


def _caption(node: NodePlan, shape: str = "") -> str:
    """A node's name, its shape where its pool has several, and its zone where the plan puts
    it in one: `shared-l4-0 (g6.12xlarge), zone us-east-1a`."""
    return node.name + shape + (f", zone {node.zone}" if node.zone else "")


def _zones_text(pool: PoolPlan) -> str:
    """Where the pool lists zones, its nodes per zone: `; zones a (2 nodes), b (1 node)`."""
    if not pool.zones:
        return ""
    counts = {zone: sum(1 for n in pool.nodes if n.zone == zone) for zone in pool.zones}
    return "; zones " + ", ".join(f"{escape(zone)} ({count} node{'s' if count != 1 else ''})"
                                  for zone, count in counts.items())


def _cpu_node_figure(node: NodePlan, height: int, models: dict[str, ModelPlan],
                     colours: dict[str, str], prefix: str = "") -> str:
    """A CPU pool's node: one block per pod (it has no GPU to draw)."""
    parts = [f'<figure id="{prefix}{_anchor("node", node.name)}">',
             f'<svg xmlns="http://www.w3.org/2000/svg" width="{GPU_WIDTH}" '
             f'height="{height + 16}" role="img" '
             f'aria-label="node {escape(node.name, quote=True)}">',
             f'<rect x="0" y="0" width="{GPU_WIDTH}" height="{height}" fill="url(#idle)" '
             'stroke="#555"><title>CPU node</title></rect>']
    span = height / max(len(node.pods), 1)
    for i, slot in enumerate(node.pods):
        model = models.get(slot.model)
        team = model.team if model else ""
        title = f"{slot.model} #{slot.replica} ({team})"
        if model is not None:
            title += (f": {model.serving.cpu_milli}m CPU, {model.serving.host_memory_mib:,} MiB "
                      "host memory")
        parts.append(f'<rect x="0" y="{round(i * span)}" width="{GPU_WIDTH}" '
                     f'height="{round(span)}" fill="{colours.get(team, "#888")}" stroke="#fff" '
                     f'data-model="{escape(slot.model, quote=True)}">'
                     f"<title>{escape(title)}</title></rect>")
    parts.append(f'<text x="{GPU_WIDTH / 2}" y="{height + 12}" font-size="10" '
                 'text-anchor="middle">CPU</text>')
    parts += ["</svg>", f"<figcaption>{escape(_caption(node))}</figcaption>", "</figure>"]
    return "".join(parts)


def _node_figure(node: NodePlan, pool: PoolPlan, height: int, models: dict[str, ModelPlan],
                 colours: dict[str, str], prefix: str = "") -> str:
    if pool.gpu_type is None:
        return _cpu_node_figure(node, height, models, colours, prefix)
    by_index = {gpu.index: gpu for gpu in node.gpus}
    gpus_per_node = pool.shape(node).gpus_per_node
    width = gpus_per_node * (GPU_WIDTH + 6)
    parts = [f'<figure id="{prefix}{_anchor("node", node.name)}">',
             f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 16}" '
             f'role="img" aria-label="node {escape(node.name, quote=True)}">']
    for index in range(gpus_per_node):
        x = index * (GPU_WIDTH + 6)
        gpu = by_index.get(index)
        if gpu is None:
            parts.append(f'<rect x="{x}" y="0" width="{GPU_WIDTH}" height="{height}" '
                         f'fill="url(#idle)" stroke="#999" stroke-dasharray="3 2">'
                         f"<title>GPU {index}: unused</title></rect>")
            parts.append(f'<text x="{x + GPU_WIDTH / 2}" y="{height + 12}" font-size="10" '
                         f'text-anchor="middle">{index}</text>')
        else:
            parts += _gpu_svg(gpu, pool, x, height, models, colours)
    shape = f" ({pool.shape(node).label})" if node.instance_type else ""
    parts += ["</svg>", f"<figcaption>{escape(_caption(node, shape))}</figcaption>",
              "</figure>"]
    return "".join(parts)


def _shapes_text(pool: PoolPlan, currency: str) -> str:
    """The pool's node shapes: GPUs per node and price, and (of several) the nodes of each."""
    shapes = pool.shapes or [pool.shape(NodePlan(name="", index=0, gpus=[]))]
    texts = [f"{s.gpus_per_node} GPU{'s' if s.gpus_per_node != 1 else ''} per node at "
             f"{escape(rate(s.price_per_node_hour, currency))} per node-hour"
             + (f" ({escape(s.label)}: {s.nodes} nodes)" if pool.shapes else "")
             for s in shapes]
    return ", or ".join(texts)


def _pool_section(pool: PoolPlan, plan: Plan, height: int, costs: dict[str, Decimal],
                  idle: dict[str, Decimal], models: dict[str, ModelPlan],
                  colours: dict[str, str], prefix: str = "", heading: str | None = None
                  ) -> list[str]:
    cur = plan.summary.currency
    pool_cost = costs.get(pool.name, Decimal(0))
    pool_idle = idle.get(pool.name, Decimal(0))
    replicas = {replica for n in pool.nodes for replica in n.replicas()}
    gpus = sum(len(n.gpus) for n in pool.nodes)
    if pool.gpu_type is None:
        about = (f'<p class="muted">CPU nodes ({escape(pool.instance_type)}, no GPU) at '
                 f"{escape(rate(pool.price_per_node_hour, cur))} per node-hour; "
                 f"{len(pool.nodes)} of at most {pool.max_nodes} nodes{_zones_text(pool)}, "
                 f"{len(replicas)} replicas.</p>")
    else:
        about = (f'<p class="muted">{escape(pool.gpu_type)} ({pool.gpu_memory_mib:,} MiB per '
                 f"GPU), {escape(pool.sharing)}, {_shapes_text(pool, cur)}; "
                 f"{len(pool.nodes)} of at most {pool.max_nodes} nodes{_zones_text(pool)}, "
                 f"{gpus} GPUs used, "
                 f"{len(replicas)} replicas; memory "
                 f"{percent(pool.memory_used_mib, pool.memory_capacity_mib)}, compute "
                 f"{percent(pool.compute_used_milli, pool.compute_capacity_milli)} used.</p>")
    lines = [f'<section id="{prefix}{_anchor("pool", pool.name)}">',
             heading or f"<h2>Pool {escape(pool.name)}</h2>", about,
             f"<p><b>{escape(money(pool_cost, cur))}</b> per month, of which "
             f'<span class="swatch idle"></span><b>{escape(money(pool_idle, cur))}</b> '
             f"({percent(pool_idle, pool_cost)}) pays for idle capacity.</p>"]
    if not pool.nodes:
        lines.append('<p class="muted">No nodes: nothing is placed here.</p>')
    else:
        lines.append('<div class="nodes">')
        lines += [_node_figure(node, pool, height, models, colours, prefix)
                  for node in pool.nodes]
        lines.append("</div>")
        if pool.gpu_type is not None and not any(g.mig_layout for n in pool.nodes
                                                 for g in n.gpus):
            lines.append('<p class="muted">Each GPU: memory on the left, compute on the '
                         "right, one block per replica.</p>")
    lines.append("</section>")
    return lines


def _placements(plan: Plan) -> dict[str, list[_Where]]:
    where: dict[str, list[_Where]] = defaultdict(list)
    for pool in plan.pools:
        for node in pool.nodes:
            for gpu in node.gpus:
                for slot in gpu.replicas:
                    where[slot.model].append(_Where(node.name, gpu.index, slot.replica))
                for server in gpu.caches:  # by the cache's name, which its members name
                    where[server.cache].append(_Where(node.name, gpu.index, server.server))
            for slot in node.pods:
                where[slot.model].append(_Where(node.name, None, slot.replica))
    return where


def _models_table(plan: Plan, colours: dict[str, str], by_model: dict[str, Decimal]
                  ) -> list[str]:
    cur = plan.summary.currency
    where = _placements(plan)
    lines = ['<h2 id="models">Models</h2>', '<table class="models">',
             "<tr><th>model</th><th>team</th><th>pool</th><th>replicas</th>"
             "<th>memory per replica</th><th>GPU share</th><th>cost per month</th>"
             "<th>where</th><th>why</th></tr>"]
    for m in plan.models:
        places: dict[int, list[str]] = defaultdict(list)
        for w in where.get(m.name, []):
            places[w.replica].append(w.node if w.gpu is None else f"{w.node}/{w.gpu}")
        place = "; ".join(f"#{r}: {', '.join(places[r])}" for r in sorted(places))
        if m.cache is not None:  # no pods: where its cache's servers run, or are reserved
            kind = "server" if plan.served_by(m) is not None else "reserved"
            place = "; ".join(f"{kind} #{w.replica}: {w.node}/{w.gpu}"
                              for w in where.get(m.cache, [])) or "-"
        share = (f"{m.gpus_per_replica} whole GPU{'s' if m.gpus_per_replica > 1 else ''}"
                 if m.whole_gpus else m.mig_slice or f"{m.compute_milli / 10:.1f}% compute")
        memory = f"{m.memory_mib * m.gpus_per_replica:,} MiB"
        if m.gpus_per_replica == 0:
            share = f"none (CPU, {m.serving.cpu_milli}m)"
            memory = f"{m.serving.host_memory_mib:,} MiB host"
        if m.gpus_per_replica > 1:
            memory += f" ({m.memory_mib:,} per GPU)"
        if m.cache is not None:
            share, memory = cache_share(plan, m), f"{m.memory_mib:,} MiB when loaded"
        reasons = "".join(f"<li>{escape(r)}</li>" for r in m.reasons)
        lines.append(
            f'<tr id="{_anchor("model", m.name)}"><td>{escape(m.name)}</td>'
            f"<td>{_swatch(colours[m.team])}{escape(m.team)}</td>"
            f'<td><a href="#{_anchor("pool", m.pool)}">{escape(m.pool)}</a></td>'
            f'<td class="n">{m.own_pods}</td><td class="n">{memory}</td>'
            f"<td>{escape(share)}</td>"
            f'<td class="n">{escape(money(by_model.get(m.name, Decimal(0)), cur))}</td>'
            f'<td class="where">{escape(place)}</td>'
            f'<td class="why"><ul class="reasons">{reasons}</ul></td></tr>')
    lines.append("</table>")
    if plan.unplaced:
        lines += ['<h2 id="unplaced" class="warn">Unplaced models</h2>', "<table>",
                  "<tr><th>model</th><th>team</th><th>priority</th><th>why</th></tr>"]
        lines += [f'<tr id="{_anchor("model", u.name)}"><td>{escape(u.name)}</td>'
                  f"<td>{escape(u.team)}</td><td>{escape(u.priority)}</td>"
                  f"<td>{escape('; '.join(u.reasons))}</td></tr>" for u in plan.unplaced]
        lines.append("</table>")
    if plan.explanation:
        lines += ["<h3>Why capacity ran out</h3>", "<ul>"]
        lines += [f"<li>{escape(e)}</li>" for e in plan.explanation]
        lines.append("</ul>")
    return lines


def _bars(rows: list[tuple[str, Decimal, str]], total: Decimal, currency: str) -> list[str]:
    """A horizontal bar per row, to scale with the largest, and its amount and share."""
    largest = max((amount for _, amount, _ in rows), default=Decimal(0)) or Decimal(1)
    lines = ["<table>"]
    for label, amount, colour in rows:
        width = round(260 * float(amount / largest))
        fill = 'fill="url(#idle)"' if colour == "idle" else f'fill="{colour}"'
        lines.append(
            f"<tr><td>{escape(label)}</td><td>"
            f'<svg xmlns="http://www.w3.org/2000/svg" width="262" height="14">'
            f'<rect x="0" y="1" width="{width}" height="12" {fill} stroke="#555" '
            'stroke-width="0.5"/></svg></td>'
            f'<td class="n">{escape(money(amount, currency))}</td>'
            f'<td class="n">{percent(amount, total)}</td></tr>')
    lines.append("</table>")
    return lines


def render_plan_html(plan: Plan, curves: Sequence[ProfileCurve] = ()) -> str:
    """The whole page; with `curves` (the profiles the plan was made from), their plots."""
    s, solver, cur = plan.summary, plan.solver, plan.summary.currency
    costs = ledger(plan)
    total = costs.total
    colours = _colours(plan)
    models = {m.name: m for m in plan.models}
    largest = max((p.gpu_memory_mib for p in plan.pools), default=1)
    idle = {line.pool: line.cost_per_month for line in costs.lines if line.idle}
    by_pool = costs.by_pool()
    cards = [
        ("cost per month", money(total, cur)),
        ("idle capacity", f"{money(costs.idle, cur)} ({percent(costs.idle, total)})"),
        ("baseline per month", money(s.baseline_cost_per_month, cur)),
        ("savings", f"{money(s.baseline_cost_per_month - total, cur)} "
                    f"({percent(s.baseline_cost_per_month - total, s.baseline_cost_per_month)})"),
        ("placed", f"{s.models} models, {s.replicas} replicas"),
        ("hardware", f"{s.gpus} GPUs in {s.nodes} nodes"),
        ("unplaced", str(s.unplaced)),
    ]
    lines = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             "<title>Placement plan</title>", f"<style>{STYLE}</style>", "</head>", "<body>",
             IDLE_PATTERN,
             "<h1>Placement plan</h1>",
             f'<p class="muted">Registry {escape(plan.metadata.registry)}; planner '
             f"{escape(plan.metadata.planner_version)}; solver {escape(solver.name)} "
             f"{escape(solver.status)}, gap {solver.gap:.2%}, {seconds_spent(solver)}"
             + (f"; {solver.moved_replicas} replicas moved against the base plan"
                if solver.moved_replicas else "") + ".</p>",
             '<div class="totals">']
    lines += [f'<div class="card"><span class="muted">{escape(k)}</span><b>{escape(v)}</b></div>'
              for k, v in cards]
    lines += ["</div>", '<p class="legend">']
    lines += [f"<span>{_swatch(c)}{escape(t)}</span>" for t, c in colours.items()]
    lines += ['<span><span class="swatch idle"></span>idle capacity</span></p>',
              '<p class="muted">GPUs are drawn to scale: height is the GPU\'s memory; each '
              "block is one replica, its height that replica's share. Hover a block for "
              "its model.</p>"]
    for pool in plan.pools:
        lines += _pool_section(pool, plan, max(60, round(GPU_HEIGHT * pool.gpu_memory_mib
                                                         / largest)),
                               by_pool, idle, models, colours)
    lines += _models_table(plan, colours, costs.by_model())
    lines += ['<h2 id="cost">Cost per month</h2>', "<h3>By team</h3>"]
    teams = costs.by_team()
    lines += _bars([(t, teams[t], colours[t]) for t in sorted(teams)]
                   + [("(idle capacity)", costs.idle, "idle")], total, cur)
    lines.append("<h3>By pool</h3>")
    lines += _bars([(p.name, by_pool.get(p.name, Decimal(0)), "#7f7f7f") for p in plan.pools],
                   total, cur)
    if curves:
        lines += ['<h2 id="profiles">Profiles</h2>',
                  '<p class="muted">Per model, its profile on the GPU type of its pool: '
                  "throughput and latency (p50 green, p99 pink) against concurrency, the SLO "
                  "dashed, the plan's operating point circled.</p>", '<div class="profiles">']
        lines += [render_curve(curve) for curve in curves]
        lines.append("</div>")
    lines += ["</body>", "</html>"]
    return "\n".join(lines) + "\n"


def _layout(pool: PoolPlan) -> tuple:
    """What a drawing of the pool shows: its nodes (and their zones), GPUs, layouts and
    replicas."""
    return tuple((n.name, n.zone) for n in pool.nodes) + \
        tuple((n.name, g.index, tuple(g.mig_layout or ()),
               tuple(sorted((r.model, r.replica, r.memory_mib, r.compute_milli, r.slice or "")
                            for r in g.replicas)))
              for n in pool.nodes for g in n.gpus) + \
        tuple((n.name, -1, (), tuple(sorted((r.model, r.replica, 0, 0, "") for r in n.pods)))
              for n in pool.nodes if n.pods)


def render_change_html(base: Plan, new: Plan) -> str:
    """A change to the registry drawn: the cost before and after, and each pool whose
    placement changed as it was and as it will be, to the same scale and colours."""
    cur = new.summary.currency
    colours = _colours(base, new)
    before_pools = {p.name: p for p in base.pools}
    after_pools = {p.name: p for p in new.pools}
    names = [p.name for p in new.pools] + [n for n in before_pools if n not in after_pools]
    changed = [n for n in names if n not in before_pools or n not in after_pools
               or _layout(before_pools[n]) != _layout(after_pools[n])]
    largest = max((p.gpu_memory_mib for p in [*base.pools, *new.pools]), default=1)
    sides = []
    for plan in (base, new):
        costs = ledger(plan)
        sides.append((plan, costs, {m.name: m for m in plan.models}, costs.by_pool(),
                      {line.pool: line.cost_per_month for line in costs.lines if line.idle}))
    totals = [ledger(base).total, ledger(new).total]
    lines = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             "<title>Placement change</title>", f"<style>{STYLE}</style>", "</head>", "<body>",
             IDLE_PATTERN, "<h1>Placement change</h1>", '<div class="totals">',
             f'<div class="card"><span class="muted">cost per month before</span>'
             f"<b>{escape(money(totals[0], cur))}</b></div>",
             f'<div class="card"><span class="muted">after</span>'
             f"<b>{escape(money(totals[1], cur))}</b></div>",
             f'<div class="card"><span class="muted">change</span>'
             f"<b>{escape(money(totals[1] - totals[0], cur, sign=True))}</b></div>",
             f'<div class="card"><span class="muted">pools changed</span>'
             f"<b>{len(changed)} of {len(names)}</b></div>", "</div>", '<p class="legend">']
    lines += [f"<span>{_swatch(c)}{escape(t)}</span>" for t, c in colours.items()]
    lines.append('<span><span class="swatch idle"></span>idle capacity</span></p>')
    if not changed:
        lines.append('<p class="muted">No pool changes.</p>')
    for name in changed:
        lines.append(f'<h2 id="{_anchor("pool", name)}">Pool {escape(name)}</h2>')
        for label, (plan, _, models, by_pool, idle) in zip(("before", "after"), sides,
                                                         strict=True):
            pool = (before_pools if label == "before" else after_pools).get(name)
            if pool is None:
                lines.append(f'<h3>{label}</h3><p class="muted">No such pool.</p>')
                continue
            height = max(60, round(GPU_HEIGHT * pool.gpu_memory_mib / largest))
            lines += _pool_section(pool, plan, height, by_pool, idle, models, colours,
                                   prefix=f"{label}-", heading=f"<h3>{label}</h3>")
    lines += ["</body>", "</html>"]
    return "\n".join(lines) + "\n"
