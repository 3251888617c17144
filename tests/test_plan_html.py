"""plan.html: every pool, node and model of the plan drawn and named, each replica's blocks
counted, every registry string escaped, nothing fetched, and no error in a real browser."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from planner.planfile import Plan, load_plan
from reports.plan_html import render_plan_html
from tests import browser


@pytest.fixture(scope="module")
def demo_out(greedy_demo_out: Path) -> Path:
    return greedy_demo_out


@pytest.fixture(scope="module")
def plan(demo_out: Path) -> Plan:
    return load_plan(demo_out / "plan.yaml")


@pytest.fixture(scope="module")
def page(demo_out: Path) -> str:
    return (demo_out / "plan.html").read_text(encoding="utf-8")


def test_written_with_the_plan_and_rendered_from_it(page: str, plan: Plan):
    """The page is the plan's drawing, then the profiles `planner plan` had at hand."""
    without_profiles = render_plan_html(plan).removesuffix("</body>\n</html>\n")
    assert page.startswith(without_profiles)
    assert page[len(without_profiles):].startswith('<h2 id="profiles">Profiles</h2>')


def test_every_pool_node_and_model_appears(page: str, plan: Plan):
    assert len(plan.pools) == 5 and len(plan.models) == 32
    for pool in plan.pools:
        assert f'<section id="pool-{pool.name}">' in page
        assert f"<h2>Pool {pool.name}</h2>" in page
        for node in pool.nodes:
            assert f'<figure id="node-{node.name}">' in page
            shape = f" ({pool.shape(node).label})" if node.instance_type else ""
            assert f"<figcaption>{node.name}{shape}</figcaption>" in page
    for model in plan.models:
        assert f'<tr id="model-{model.name}"><td>{model.name}</td>' in page


def test_each_replica_is_drawn_on_each_of_its_gpus(page: str, plan: Plan):
    """Shared and whole GPUs show a memory and a compute block per replica; a MIG slice one;
    a lazy cache's server two, and its members none of their own."""
    for model in plan.models:
        blocks = len(re.findall(f'data-model="{re.escape(model.name)}"', page))
        per_gpu = 1 if model.mig_slice else 2
        own = 0 if model.cache else model.replicas * model.gpus_per_replica * per_gpu
        assert blocks == own, model.name
    for cache in [c for p in plan.pools for c in p.caches]:
        assert len(re.findall(f'data-cache="{re.escape(cache.name)}"', page)) == \
            (2 * cache.servers if cache.placed else 0)


def test_idle_cost_of_every_used_pool_is_stated(page: str, plan: Plan):
    from planner.ledger import ledger
    from reports.format import money

    idle = {line.pool: line.cost_per_month for line in ledger(plan).lines if line.idle}
    for pool in plan.pools:
        if pool.nodes:
            assert f"<b>{money(idle[pool.name], plan.summary.currency)}</b> (" in page


def test_memory_per_replica_is_per_replica(page: str, plan: Plan):
    multi = next(m for m in plan.models if m.gpus_per_replica > 1)
    row = page[page.index(f'<tr id="model-{multi.name}">'):]
    row = row[:row.index("</tr>")]
    assert (f"{multi.memory_mib * multi.gpus_per_replica:,} MiB "
            f"({multi.memory_mib:,} per GPU)") in row


def test_self_contained(page: str):
    """Nothing is fetched when the page opens: no scripts, links, images or remote URLs."""
    for tag in ("<script", "<link", "<img", "<iframe", "@import", "src="):
        assert tag not in page
    assert set(re.findall(r"https?://[^\s\"')]+", page)) == {"http://www.w3.org/2000/svg"}


def test_registry_strings_are_escaped(plan: Plan):
    hostile = "<script>alert(1)</script>"
    model = plan.models[0].model_copy(update={"reasons": [f"admitted by {hostile}"]})
    forged = plan.model_copy(update={
        "metadata": plan.metadata.model_copy(update={"registry": f"/srv/{hostile}"}),
        "models": [model, *plan.models[1:]],
        "explanation": [f'why "{hostile}" & more']})
    page = render_plan_html(forged)
    assert "<script" not in page
    assert "/srv/&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<li>admitted by &lt;script&gt;alert(1)&lt;/script&gt;</li>" in page
    assert "<li>why &quot;&lt;script&gt;alert(1)&lt;/script&gt;&quot; &amp; more</li>" in page


needs_chromium = pytest.mark.skipif(
    browser.chromium() is None and not os.environ.get("CI"),
    reason="chromium is not installed (apt-get install chromium); CI installs it")


@needs_chromium
def test_the_browser_reports_errors_it_sees(tmp_path: Path):
    """The check below can fail: a page with a script error and a missing image is caught."""
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><html><body><img src="missing.png">'
                   '<script>console.error("broken"); notDefined();</script></body></html>')
    errors = browser.load(bad).errors
    assert any("ERR_FILE_NOT_FOUND" in e for e in errors), errors
    assert "console.error: broken" in errors
    assert any("notDefined is not defined" in e for e in errors), errors


@needs_chromium
def test_opens_in_headless_chromium_without_errors(demo_out: Path, plan: Plan):
    result = browser.load(demo_out / "plan.html")
    assert result.errors == []
    assert result.messages == []
    assert result.screenshot_png.startswith(b"\x89PNG")
    names = [p.name for p in plan.pools] + [n.name for p in plan.pools for n in p.nodes] + \
        [m.name for m in plan.models]
    missing = [name for name in names if name not in result.text]
    assert missing == []


def test_profiles_are_plotted_with_slo_and_operating_point(page: str, plan: Plan):
    """Every placed model of the demo has a profile on its pool's GPU type: one figure each,
    its SLO line, and the operating point circled on both plots."""
    for model in plan.models:
        start = page.index(f'<figure class="profile" id="profile-{model.name}">')
        figure = page[start:page.index("</figure>", start)]
        assert figure.count("<circle ") == 2, model.name
        assert "<title>SLO p99 " in figure
        assert f"runs at concurrency {model.concurrency}</figcaption>" in figure
    assert page.count('<figure class="profile"') == len(plan.models)


def test_a_profile_without_an_operating_point_has_no_circle():
    from planner.demo import demo_registry_path
    from planner.registry.yamlsource import read_yaml
    from profiles.schema import Profile
    from reports.profile_plots import ProfileCurve, render_curve

    doc = read_yaml(demo_registry_path() / "profiles" / "intent-classifier" / "l4.yaml")
    figure = render_curve(ProfileCurve("intent-classifier", Profile.model_validate(doc.data),
                                       0.5, None))
    assert "<circle" not in figure
    assert "<title>SLO p99 0.5 ms</title>" in figure
    assert figure.endswith("no point meets the SLO</figcaption></figure>")


def test_check_draws_the_pools_that_changed_before_and_after(cli, registry: Path,
                                                             tmp_path: Path):
    """code-assistant's replicas 2 -> 4 on dedicated-h100 (more nodes): that pool is drawn
    twice, before and after; pools with the same placement are not drawn."""
    base = tmp_path / "base"
    assert cli("plan", "--registry", registry, "--solver", "greedy", "--out",
               base).exit_code == 0
    from tests.conftest import edit_yaml

    edit_yaml(registry / "models" / "code-assistant.yaml",
              lambda d: d["replicas"].update(min=4))
    result = cli("check", "--registry", registry, "--base-plan", base / "plan.yaml",
                 "--html", tmp_path / "html")
    assert result.exit_code == 0, result.stderr
    page = (tmp_path / "html" / "check.html").read_text()
    before = load_plan(base / "plan.yaml")
    assert '<h2 id="pool-dedicated-h100">Pool dedicated-h100</h2>' in page
    assert '<section id="before-pool-dedicated-h100">' in page
    assert '<section id="after-pool-dedicated-h100">' in page
    drawn = set(re.findall(r'<section id="after-pool-([a-z0-9-]+)">', page))
    assert drawn == set(re.findall(r'<section id="before-pool-([a-z0-9-]+)">', page))
    assert "dedicated-h100" in drawn and len(drawn) < len(before.pools)
    # one whole GPU per replica, a memory and a compute block each: 2 replicas, then 4
    assert page.count('data-model="code-assistant"') == 2 * 2 + 4 * 2
    if browser.chromium() is not None or os.environ.get("CI"):
        assert browser.load(tmp_path / "html" / "check.html").errors == []
