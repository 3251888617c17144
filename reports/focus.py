"""The cost report: FinOps FOCUS 1.2 line items, one per model and one per used pool for idle.

The report allocates the platform's GPU cost to the teams that use it (showback) for a billing
period that has not been invoiced: `EffectiveCost`, `ListCost` and `ContractedCost` carry the
amount, `BilledCost` is 0 and `InvoiceId` is empty, so importing it next to the cloud's own
bill does not count the GPUs twice. A billing period charges the hours its month has
(`planner.period`). Amounts are the plan's ledger lines (`planner.ledger`),
rounded once to the currency's minor unit, so they add up to the summary's total exactly.

`PricingQuantity` is the GPU-hours charged: the amount at the pool's price per GPU-hour, so
that `ListUnitPrice x PricingQuantity = ListCost` holds as FOCUS requires; `ConsumedQuantity`
is the GPU-hours the plan allocates. Tag keys the planner defines carry the registry's label
domain as their prefix (`planner.example.com/pool`), as its Kubernetes labels do; the
registry's own labels, team and priority are user-defined tags without one. The planner's
own columns follow the FOCUS ones with an `x_` prefix.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from decimal import Decimal

from planner import money
from planner.ledger import Line, hours_run, ledger
from planner.period import parse_period, priced_for
from planner.planfile import ModelPlan, Plan, PoolPlan

FOCUS_COLUMNS = [
    "BillingAccountId", "BillingAccountName", "BillingCurrency", "BillingPeriodStart",
    "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd", "ChargeCategory",
    "ChargeClass", "ChargeDescription", "ChargeFrequency", "ServiceCategory",
    "ServiceSubcategory", "ServiceName", "ProviderName", "PublisherName", "InvoiceIssuerName",
    "InvoiceId", "PricingQuantity", "PricingUnit", "ListUnitPrice", "ListCost",
    "ContractedUnitPrice", "ContractedCost", "EffectiveCost", "BilledCost", "PricingCurrency",
    "PricingCurrencyListUnitPrice", "PricingCurrencyContractedUnitPrice",
    "PricingCurrencyEffectiveCost", "CommitmentDiscountStatus", "ConsumedQuantity",
    "ConsumedUnit", "ResourceId", "ResourceName", "ResourceType", "SkuId", "SkuMeter",
    "SkuPriceId", "SkuPriceDetails", "SubAccountId", "SubAccountName", "Tags",
]
EXTRA_COLUMNS = [
    "x_Model", "x_Team", "x_Pool", "x_GpuType", "x_SharingMode", "x_GpuFraction", "x_Replicas",
    "x_Priority", "x_CostPerHour", "x_IdleCost",
]
#: The FOCUS applicability criteria this report meets, so the columns they make mandatory are
#: in it: team sub-accounts, tags, priced GPU-hours, GPU-hours used, resources with types.
FOCUS_CRITERIA = (
    "ACCOUNT_NAMING_SUPPORTED", "SUB_ACCOUNT_SUPPORTED", "TAGGING_SUPPORTED",
    "UNIT_PRICING_SUPPORTED", "PUBLIC_PRICE_LIST_SUPPORTED", "USAGE_MEASUREMENT_SUPPORTED",
    "BILLING_BASED_ON_PROVISIONED_RESOURCES_SUPPORTED", "RESOURCE_TYPE_ASSIGNMENT_SUPPORTED",
)
SERVICE_NAME = "Model serving on shared GPUs"
SERVICE_CATEGORY = "AI and Machine Learning"
SERVICE_SUBCATEGORY = "Machine Learning"
UNIT = "GPU-Hours"
NODE_UNIT = "Node-Hours"  # a CPU pool's: its nodes have no GPU to count
IDLE_ACCOUNT = "platform"  # the sub-account that carries idle capacity
QUANTITY_DIGITS = 10  # PricingQuantity: enough digits that price x quantity = cost to 1e-9
SIX_DIGITS = Decimal("0.000001")


def _timestamp(moment: datetime) -> str:
    """FOCUS date/time format: ISO 8601 in UTC with the `Z` designator."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _gpu_hour_price(pool: PoolPlan) -> Decimal:
    """One GPU-hour of the pool (a CPU pool's: one node-hour); of a pool with several node
    shapes, the average over the GPUs of the nodes bought."""
    if pool.gpu_type is None:
        return money.decimal(pool.price_per_node_hour)
    if pool.shapes and pool.gpu_count:
        return money.decimal(sum(s.nodes * s.price_per_node_hour for s in pool.shapes)) \
            / pool.gpu_count
    return money.decimal(pool.price_per_node_hour) / pool.gpus_per_node


def _sku(pool: PoolPlan) -> dict[str, str]:
    """The pool's GPU-hour (a CPU pool's node-hour) as a SKU, with one price per pool."""
    if pool.gpu_type is None:
        sku_id = f"node-hour/{pool.device}/{pool.instance_type or pool.name}"
        cpu: dict = {"x_InstanceType": pool.instance_type, "x_SharingMode": pool.sharing,
                     "x_PricePerNodeHour": float(money.decimal(pool.price_per_node_hour))}
        return {"SkuId": sku_id, "SkuMeter": "Node time", "SkuPriceId": f"{sku_id}/{pool.name}",
                "SkuPriceDetails": json.dumps(cpu, sort_keys=True)}
    types = "+".join(dict.fromkeys(s.instance_type for s in pool.chosen_shapes)) \
        if pool.shapes else pool.instance_type
    sku_id = f"gpu-hour/{pool.gpu_type}/{types or pool.name}"
    details = {"x_GpuType": pool.gpu_type, "x_GpuProduct": pool.gpu_product,
               "x_GpuMemoryMiB": pool.gpu_memory_mib, "x_GpusPerNode": pool.gpus_per_node,
               "x_SharingMode": pool.sharing,
               "x_PricePerNodeHour": float(money.decimal(pool.price_per_node_hour))}
    if pool.instance_type:
        details["x_InstanceType"] = pool.instance_type
    if pool.capacity_type != "on-demand" or pool.list_price_per_node_hour is not None:
        details["x_CapacityType"] = pool.capacity_type
        details["x_ListPricePerNodeHour"] = pool.list_price_per_node_hour
    if pool.shapes:
        details["x_NodeShapes"] = [{"x_InstanceType": s.instance_type,
                                    "x_GpusPerNode": s.gpus_per_node,
                                    "x_PricePerNodeHour": s.price_per_node_hour,
                                    "x_CapacityType": s.capacity_type,
                                    "x_ListPricePerNodeHour": s.list_price_per_node_hour,
                                    "x_Nodes": s.nodes} for s in pool.shapes]
    return {"SkuId": sku_id, "SkuMeter": "GPU time", "SkuPriceId": f"{sku_id}/{pool.name}",
            "SkuPriceDetails": json.dumps(details, sort_keys=True)}


def _list_ratios(plan: Plan) -> dict[tuple[str, str | None], Decimal]:
    """List price over price paid, per (pool, model) and per (pool, None) for its idle line,
    in the pools that pay less than list somewhere (spot, a commitment).

    A model pays each node's price for its share of it, so its ratio is that of the nodes its
    replicas take: 1 on on-demand nodes at list, the spot discount on spot ones, a mix where
    it spans both. The idle line takes what the pool's list cost leaves."""
    ratios: dict[tuple[str, str | None], Decimal] = {}
    for pool in plan.pools:
        if pool.list_cost_per_hour is None or not pool.cost_per_hour:
            continue
        whole = money.decimal(pool.list_cost_per_hour) / money.decimal(pool.cost_per_hour)
        paid: dict[str, list[Decimal]] = {}
        for node in pool.nodes:
            shape = pool.shape(node)
            price = money.decimal(shape.price_per_node_hour)
            listed = money.decimal(shape.list_price_per_node_hour or shape.price_per_node_hour)
            shares = [(r.model, money.decimal(r.gpu_fraction)) for g in node.gpus
                      for r in g.replicas] + [(r.model, Decimal(1)) for r in node.pods]
            for name, share in shares:
                sums = paid.setdefault(name, [Decimal(0), Decimal(0)])
                sums[0] += share * price
                sums[1] += share * listed
        listed_models = Decimal(0)
        for model in plan.models:
            if model.pool != pool.name:
                continue
            price_paid, price_listed = paid.get(model.name, [Decimal(0), Decimal(0)])
            ratio = price_listed / price_paid if price_paid else whole
            ratios[(pool.name, model.name)] = ratio
            listed_models += money.decimal(model.cost_per_hour) * ratio
        idle = money.decimal(pool.idle_cost_per_hour)
        ratios[(pool.name, None)] = (money.decimal(pool.list_cost_per_hour) - listed_models) \
            / idle if idle else whole
    return ratios


def _list_terms(ratio: Decimal | None, cost: Decimal, quantity: Decimal, price: Decimal,
                currency: str) -> tuple[Decimal, Decimal]:
    """ListCost and ListUnitPrice of a line: where it pays less than list (`ratio`, list over
    paid), its cost at the list prices of the nodes it uses, and the unit price that makes
    `ListUnitPrice x PricingQuantity = ListCost`; else the line's own."""
    if ratio is None or not quantity:
        return cost, price
    list_cost = money.rounded(cost * ratio, currency)
    return list_cost, (list_cost / quantity).quantize(Decimal(1).scaleb(-QUANTITY_DIGITS))


def _quantity(amount: Decimal, unit_price: Decimal) -> Decimal:
    """The GPU-hours `amount` pays for at `unit_price`."""
    if not unit_price:
        return Decimal(0)
    return (amount / unit_price).quantize(Decimal(1).scaleb(-QUANTITY_DIGITS))


def cost_rows(plan: Plan, period: str | None = None) -> list[dict]:
    """The FOCUS line items of `plan`, models first, then idle capacity per pool, over
    `period` at its hours (default: the plan's own period, else this month at the plan's
    hours)."""
    if period is not None:
        plan = priced_for(plan, period)
    start, end = parse_period(period or plan.metadata.period)
    hours = money.decimal(plan.metadata.hours_per_month)
    billing = plan.metadata.billing
    stamp = {"BillingAccountId": billing.account_id, "BillingAccountName": billing.account_name,
             "BillingCurrency": plan.summary.currency,
             "BillingPeriodStart": _timestamp(start), "BillingPeriodEnd": _timestamp(end),
             "ChargePeriodStart": _timestamp(start), "ChargePeriodEnd": _timestamp(end),
             "ChargeCategory": "Usage", "ChargeClass": None, "ChargeFrequency": "Usage-Based",
             "ServiceCategory": SERVICE_CATEGORY, "ServiceSubcategory": SERVICE_SUBCATEGORY,
             "ServiceName": SERVICE_NAME, "ProviderName": billing.provider,
             "PublisherName": billing.publisher, "InvoiceIssuerName": billing.invoice_issuer,
             "InvoiceId": None, "PricingUnit": UNIT, "ConsumedUnit": UNIT,
             "PricingCurrency": plan.summary.currency, "CommitmentDiscountStatus": None,
             "BilledCost": money.rounded(Decimal(0), plan.summary.currency)}
    pools = {p.name: p for p in plan.pools}
    models = {m.name: m for m in plan.models}
    rows = []
    ratios = _list_ratios(plan)
    for line in ledger(plan).lines:
        pool = pools[line.pool]
        price = _gpu_hour_price(pool)
        quantity = _quantity(line.cost_per_month, price)
        list_cost, list_price = _list_terms(ratios.get((pool.name, line.model)),
                                            line.cost_per_month, quantity, price,
                                            plan.summary.currency)
        units = {} if pool.gpu_type is not None else {"PricingUnit": NODE_UNIT,
                                                      "ConsumedUnit": NODE_UNIT}
        row = {**stamp, **units, **_sku(pool), "ListUnitPrice": list_price,
               "ContractedUnitPrice": price,
               "PricingQuantity": quantity,
               "ListCost": list_cost, "ContractedCost": line.cost_per_month,
               "EffectiveCost": line.cost_per_month, "PricingCurrencyListUnitPrice": list_price,
               "PricingCurrencyContractedUnitPrice": price,
               "PricingCurrencyEffectiveCost": line.cost_per_month,
               "x_Pool": pool.name, "x_GpuType": pool.gpu_type, "x_SharingMode": pool.sharing,
               "x_CostPerHour": line.cost_per_hour}
        if line.model is not None:
            model = models[line.model]
            row.update(_model_columns(model, pool, money.decimal(hours_run(model, plan)),
                                      tag_prefix(plan)))
        else:
            row.update(_idle_columns(line, pool, price, hours, tag_prefix(plan)))
        rows.append(row)
    return rows


def tag_prefix(plan: Plan) -> str:
    """The prefix of the tag keys the planner defines (FOCUS provider-defined tags)."""
    return f"{plan.metadata.label_domain}/"


def _model_columns(model: ModelPlan, pool: PoolPlan, hours: Decimal, prefix: str) -> dict:
    """A model's columns; `hours` are those it pays for (a batch model's runs)."""
    fraction = money.decimal(model.gpu_fraction)
    used = f"{fraction:.3f} GPU of {pool.gpu_type}"
    consumed = fraction
    if pool.gpu_type is None:  # a CPU pool: the nodes its pods' requests take
        consumed = (money.decimal(model.cost_per_hour)
                    / money.decimal(pool.price_per_node_hour)).quantize(SIX_DIGITS)
        used = f"{consumed:.3f} node of {pool.instance_type}"
    tags = {"team": model.team, "priority": model.priority, **model.labels,
            f"{prefix}pool": pool.name, f"{prefix}gpu-type": pool.device,
            f"{prefix}sharing": pool.sharing}
    runs = "" if model.batch is None else f", {hours:.2f} hours of batch runs"
    description = f"{model.name}: {model.replicas} replicas, {used} in {pool.name}{runs}"
    if model.cache is not None:
        # A reserved lazy cache's servers are paid by their members, each in proportion to
        # what it would cost loaded warm (planner.assembly.assemble); it has no pods of its own.
        tags[f"{prefix}cache"] = model.cache
        description = (f"{model.name}: share of lazy cache {model.cache} by its warm cost, "
                       f"{used} in {pool.name}")
    return {"ChargeDescription": description,
            "ConsumedQuantity": consumed * hours,
            "ResourceId": f"{pool.name}/{model.name}", "ResourceName": model.name,
            "ResourceType": "Model deployment", "SubAccountId": model.team,
            "SubAccountName": model.team, "Tags": json.dumps(tags, sort_keys=True),
            "x_Model": model.name, "x_Team": model.team, "x_GpuFraction": fraction,
            "x_Replicas": 0 if model.cache is not None else model.replicas,
            "x_Priority": model.priority, "x_IdleCost": None}


def _idle_columns(line: Line, pool: PoolPlan, price: Decimal, hours: Decimal,
                  prefix: str) -> dict:
    gpus = pool.gpu_count
    idle_units = (line.cost_per_hour / price if price else Decimal(0)).quantize(SIX_DIGITS)
    tags = {f"{prefix}pool": pool.name, f"{prefix}idle": True}
    cpu = pool.gpu_type is None
    held = f"{len(pool.nodes)} nodes" if cpu else f"{gpus} GPUs in {len(pool.nodes)} nodes"
    unused = f"{idle_units:.3f} {'node' if cpu else 'GPU'} unused"
    return {"ChargeDescription": f"idle capacity of {pool.name}: {held}, {unused}",
            "ConsumedQuantity": idle_units * hours,
            "ResourceId": f"{pool.name}/idle", "ResourceName": f"{pool.name} idle",
            "ResourceType": "Idle node capacity" if cpu else "Idle GPU capacity",
            "SubAccountId": IDLE_ACCOUNT,
            "SubAccountName": IDLE_ACCOUNT, "Tags": json.dumps(tags, sort_keys=True),
            "x_Model": None, "x_Team": None,
            "x_GpuFraction": Decimal(0) if cpu else idle_units, "x_Replicas": 0,
            "x_Priority": None, "x_IdleCost": line.cost_per_month}


def _cell(value) -> str:
    """A CSV cell: nothing for null; a decimal in plain notation with a decimal point.

    FOCUS types amounts and quantities as Decimal, and CSV readers (the FOCUS validator's
    among them) take `68` for an integer: an amount in a currency without a minor unit is
    written `68.0`, which is still exactly 68 yen.
    """
    if value is None:
        return ""
    if isinstance(value, Decimal):
        text = f"{value:f}"
        return text if "." in text else f"{text}.0"
    return str(value)


def render_cost_csv(plan: Plan, period: str | None = None) -> str:
    """cost.csv: FOCUS columns first, then the planner's `x_` columns."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    columns = FOCUS_COLUMNS + EXTRA_COLUMNS
    writer.writerow(columns)
    for row in cost_rows(plan, period):
        writer.writerow([_cell(row[c]) for c in columns])
    return buffer.getvalue()


def cost_frame(plan: Plan, period: str | None = None):
    """The line items as a pandas DataFrame, FOCUS columns first (amounts as Decimal)."""
    import pandas as pd

    return pd.DataFrame(cost_rows(plan, period), columns=FOCUS_COLUMNS + EXTRA_COLUMNS)


def rollup(plan: Plan, by: str) -> list[dict]:
    """Monthly cost by model, team or pool, idle capacity on its own line per pool.

    Sums of the ledger's lines, so a rollup adds up to the same total as cost.csv. Replicas
    are pods: a reserved lazy cache's members have none of their own, and by pool its server
    pods count instead.
    """
    sums: dict[str, dict] = {}
    replicas = {m.name: m.own_pods for m in plan.models}
    for line in ledger(plan).lines:
        if line.idle and by != "pool":
            name = f"(idle) {line.pool}"
        else:  # a model's line names its model and team
            name = {"model": line.model, "team": line.team, "pool": line.pool}[by] or line.pool
        entry = sums.setdefault(name, {by: name, "cost_per_month": Decimal(0), "replicas": 0})
        entry["cost_per_month"] += line.cost_per_month
        entry["replicas"] += replicas.get(line.model, 0) if line.model else 0
    if by == "pool":
        for pool in plan.pools:
            if pool.name in sums:
                sums[pool.name]["replicas"] += sum(c.servers for c in pool.held_caches())
    return [sums[name] for name in sorted(sums)]
