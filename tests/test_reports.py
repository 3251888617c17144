"""Reports from a plan: manifests that validate and match the plan, the FOCUS cost report,
the summary, golden files, and atomic output folders."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from planner.planfile import load_plan
from reports.focus import EXTRA_COLUMNS, FOCUS_COLUMNS, cost_frame
from reports.gpu_operator import gpu_resource
from reports.manifests import render_manifests
from scripts.update_goldens import COMMAND, GOLDEN
from tests.conftest import edit_yaml
from tests.consumers import pod_template

CORE_GROUPS = ("v1", "apps/v1", "policy/v1", "scheduling.k8s.io/v1", "autoscaling/v2",
               "batch/v1")


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory) -> Path:
    from typer.testing import CliRunner

    from planner.cli import app

    out = tmp_path_factory.mktemp("demo") / "out"
    result = CliRunner().invoke(app, [*COMMAND, "--out", str(out)])
    assert result.exit_code == 0, result.stderr
    return out


@pytest.fixture(scope="module")
def plan(demo_out):
    return load_plan(demo_out / "plan.yaml")


def _documents(folder: Path):
    for path in sorted(folder.rglob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            yield path, document


def test_every_core_manifest_validates_strictly(demo_out, plan):
    version = plan.metadata.kubernetes_version
    checked = 0
    for _, document in _documents(demo_out / "manifests"):
        if document["apiVersion"] in CORE_GROUPS:
            kubernetes_validate.validate(document, version, strict=True)
            checked += 1
    assert checked >= len(plan.models) + len(plan.priority_classes)


def test_deployments_request_what_the_plan_says(demo_out, plan):
    pools = {p.name: p for p in plan.pools}
    for model in plan.models:
        if model.cache is not None:  # loaded into its cache's servers: no pods of its own
            assert not (demo_out / "manifests" / "models" / f"{model.name}.yaml").exists()
            continue
        documents = list(yaml.safe_load_all(
            (demo_out / "manifests" / "models" / f"{model.name}.yaml").read_text()))
        workload = documents[0]
        assert workload["kind"] == ("Deployment" if model.batch is None else "CronJob")
        template, replicas = pod_template(workload)
        assert replicas == model.replicas
        pod = template["spec"]
        resource, count = gpu_resource(model, pools[model.pool])
        container = pod["containers"][0]
        assert container["resources"]["requests"][resource] == str(count)
        assert container["resources"]["limits"][resource] == str(count)
        assert pod["priorityClassName"] == model.priority
        assert pod["nodeSelector"]["planner.example.com/pool"] == model.pool
        env = {e["name"]: e["value"] for e in container["env"]}
        assert env["MAX_CONCURRENCY"] == str(model.limits.max_concurrency)
        assert env["QUEUE_LIMIT"] == str(model.limits.queue_limit)
        assert [d["kind"] for d in documents[1:]] == (
            (["PodDisruptionBudget"] if model.replicas > 1 and not model.batch else [])
            + ([{"hpa": "HorizontalPodAutoscaler", "keda": "ScaledObject"}[
                model.autoscaling.by]] if model.autoscaling else []))
        if model.max_replicas_per_node == 1:
            [apart] = pod["affinity"]["podAntiAffinity"][
                "requiredDuringSchedulingIgnoredDuringExecution"]
            assert apart["labelSelector"]["matchLabels"] == {"app.kubernetes.io/name":
                                                             model.name}
        elif model.max_replicas_per_node:
            [spread] = pod["topologySpreadConstraints"]
            assert spread["maxSkew"] == model.max_replicas_per_node
            assert spread["minDomains"] > pools[model.pool].max_nodes


def test_mig_requests_match_the_chosen_layout(demo_out, plan):
    mig = next(p for p in plan.pools if p.sharing == "mig")
    documents = {d["metadata"]["name"]: d for _, d in _documents(demo_out / "manifests")
                 if d["kind"] in ("ConfigMap", "NodePool")}
    configs = yaml.safe_load(documents["placement-planner-mig-parted"]["data"]["config.yaml"])
    assert configs["mig-configs"].pop("all-disabled") == [{"devices": "all",
                                                           "mig-enabled": False}]
    layouts = {tuple(sorted(entry["mig-devices"].items()))
               for entries in configs["mig-configs"].values() for entry in entries}
    planned = {tuple(sorted(Counter(g.mig_layout).items())) for n in mig.nodes for g in n.gpus}
    assert layouts == planned
    for name in configs["mig-configs"]:
        node_pool = documents[name]  # one NodePool per layout, labelled for mig-parted
        assert node_pool["spec"]["template"]["metadata"]["labels"]["nvidia.com/mig.config"] \
            == name
    offered = Counter(profile for n in mig.nodes for g in n.gpus for profile in g.mig_layout)
    requested = Counter()
    for model in (m for m in plan.models if m.pool == mig.name):
        workload = next(yaml.safe_load_all(
            (demo_out / "manifests" / "models" / f"{model.name}.yaml").read_text()))
        requests = workload["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]
        [resource] = [k for k in requests if k.startswith("nvidia.com/mig-")]
        assert resource == f"nvidia.com/mig-{model.mig_slice}"
        requested[model.mig_slice] += model.replicas
    assert requested and all(requested[p] <= offered[p] for p in requested)


def test_time_slicing_config_has_the_replicas_the_plan_needs(demo_out, plan):
    pool = next(p for p in plan.pools if p.sharing == "time-slicing" and p.nodes)
    [config] = [d for _, d in _documents(demo_out / "manifests" / "gpu-operator")
                if d["metadata"]["name"] == "placement-planner-device-plugin"]
    sharing = yaml.safe_load(config["data"][pool.name])["sharing"]["timeSlicing"]
    assert sharing["renameByDefault"] is True
    busiest = max(len(g.replicas) for n in pool.nodes for g in n.gpus)
    assert sharing["resources"] == [{"name": "nvidia.com/gpu",
                                     "replicas": pool.replicas_per_gpu}]
    assert pool.replicas_per_gpu >= max(busiest, 2)


def test_kserve_target(plan):
    files = render_manifests(plan, target="kserve")
    # a lazy model with pods of its own (not in a cache's servers)
    lazy = next(m for m in plan.models if m.loading == "lazy" and m.cache is None)
    service = next(yaml.safe_load_all(files[f"manifests/models/{lazy.name}.yaml"]))
    assert service["kind"] == "InferenceService"
    predictor = service["spec"]["predictor"]
    assert predictor["minReplicas"] == 1 and predictor["maxReplicas"] == lazy.replicas
    assert predictor["containerConcurrency"] == lazy.limits.max_concurrency


def test_cost_report_adds_up_to_the_cent(plan):
    frame = cost_frame(plan, "2026-12")
    assert frame["EffectiveCost"].sum() == plan.summary.cost_per_month
    # List and effective cost differ only where a pool pays less than list: the demo's
    # batch pool, whose spot offer holds most of its models.
    discounted = {p.name for p in plan.pools if p.list_cost_per_hour is not None}
    assert discounted == {"batch-t4"}
    at_list = frame[~frame["x_Pool"].isin(discounted)]
    assert (at_list["EffectiveCost"] == at_list["ListCost"]).all()
    assert (frame["ListCost"] >= frame["EffectiveCost"]).all()
    assert (frame["ListCost"] > frame["EffectiveCost"]).any()
    assert (frame["EffectiveCost"] == frame["ContractedCost"]).all()
    idle = frame[frame["ResourceId"].str.endswith("/idle")]
    assert len(idle) == sum(1 for p in plan.pools if p.nodes)
    assert len(frame) == len(plan.models) + len(idle)


def test_cost_columns_are_focus_or_extension(demo_out):
    header = (demo_out / "cost.csv").read_text().splitlines()[0].split(",")
    assert header[:len(FOCUS_COLUMNS)] == FOCUS_COLUMNS
    assert all(c in FOCUS_COLUMNS or re.fullmatch(r"x_[A-Z]\w+", c) for c in header)
    assert header[len(FOCUS_COLUMNS):] == EXTRA_COLUMNS


def _normalized(text: str) -> str:
    return re.sub(r"\d+\.\d+ s\.", "<seconds> s.", text)


@pytest.mark.parametrize("name", ["summary.md", "cost.csv"])
def test_golden_reports(demo_out, name):
    """Regenerate with `python scripts/update_goldens.py` after an intended change."""
    assert _normalized((demo_out / name).read_text()) == _normalized((GOLDEN / name).read_text())


def test_golden_manifests(demo_out):
    """Regenerate with `python scripts/update_goldens.py` after an intended change."""
    produced = {p.relative_to(demo_out / "manifests"): p.read_text()
                for p in (demo_out / "manifests").rglob("*.yaml")}
    golden = {p.relative_to(GOLDEN / "manifests"): p.read_text()
              for p in (GOLDEN / "manifests").rglob("*.yaml")}
    assert produced == golden


def test_golden_dashboards(demo_out):
    """Regenerate with `python scripts/update_goldens.py` after an intended change."""
    produced = {p.relative_to(demo_out / "dashboards"): p.read_text()
                for p in (demo_out / "dashboards").rglob("*.json")}
    golden = {p.relative_to(GOLDEN / "dashboards"): p.read_text()
              for p in (GOLDEN / "dashboards").rglob("*.json")}
    assert produced and produced == golden


def test_report_command_renders_from_a_plan(cli, demo_out, tmp_path: Path):
    result = cli("report", "--plan", demo_out / "plan.yaml", "--out", tmp_path / "r",
                 "--period", "2026-12", "--format", "csv", "--group-by", "pool")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "r" / "cost.csv").read_text() == (demo_out / "cost.csv").read_text()
    rows = result.stdout.splitlines()
    assert rows[0] == "pool,cost_per_month,replicas"
    assert len(rows) == 1 + len([p for p in load_plan(demo_out / "plan.yaml").pools])


def test_unwritable_output_exit_2(cli, registry: Path, tmp_path: Path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = cli("plan", "--registry", registry, "--out", blocker / "out", "--solver", "greedy")
    assert result.exit_code == 2
    assert result.stderr == (f"error: {blocker / 'out'}: cannot write the output folder: "
                             f"{blocker} is a file; choose another --out\n")
    assert blocker.read_text() == "not a folder"


def test_failed_write_keeps_old_output(cli, registry: Path, tmp_path: Path, monkeypatch):
    out = tmp_path / "out"
    assert cli("plan", "--registry", registry, "--out", out, "--solver", "greedy").exit_code == 0
    old = (out / "plan.yaml").read_text()
    edit_yaml(registry / "models" / "spam-filter.yaml", lambda d: d["replicas"].update(min=5))

    def refuse(self, *args, **kwargs):
        if self.name == "cost.csv":
            raise PermissionError(13, "Permission denied")
        return original(self, *args, **kwargs)

    original = Path.write_text
    monkeypatch.setattr(Path, "write_text", refuse)
    result = cli("plan", "--registry", registry, "--out", out, "--solver", "greedy")
    monkeypatch.undo()
    assert result.exit_code == 2
    assert result.stderr.endswith("cannot write the output folder: Permission denied; choose "
                                  "another --out\n")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]  # no staging left
    assert (out / "plan.yaml").read_text() == old
