"""The LLM model kind: read from the model file (or a config.json), refused at load when its
longest context can never fit, and its configuration (TP degree, precision, concurrency)
chosen per pool as the cheapest that meets TTFT and TPOT.

The numbers below follow from `profiles.generation` on an H100 80GB (3350 GB/s at 70%,
989 TFLOP/s 16-bit and 1979 FP8 at 35%, TP scaling 85%) for a Llama-3.1-70B shape, 1024/2048
prompt tokens (mean/p95) and 256/512 output tokens:

    precision TP  TTFT p99  TPOT p99  memory per GPU, 1 sequence of 8192 tokens
    bf16      1   1063 ms   211 ms    138,291 MiB (an H100 holds 73,403 after 10%)
    bf16      2    626 ms   125 ms     69,698 MiB
    bf16      4    314 ms    63 ms     35,401 MiB
    fp8       1    532 ms   106 ms     71,006 MiB
    fp8       2    314 ms    63 ms     36,055 MiB
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from planner.demand.derive import Demand, derive
from planner.registry.loader import load_registry
from tests.conftest import edit_yaml

LLAMA_70B = {"layers": 80, "hidden": 8192, "heads": 64, "kv_heads": 8, "intermediate": 28672,
             "vocab": 128256}


def _as_llm(registry: Path, name: str = "llm-chat-70b", **llm) -> Path:
    """Turn the demo's 70B model into the LLM kind; `llm` overrides its section."""
    path = registry / "models" / f"{name}.yaml"
    shutil.rmtree(registry / "profiles" / name, ignore_errors=True)

    def change(data: dict) -> None:
        for key in ("gpus_per_replica", "source"):
            data.pop(key, None)
        data["traffic"] = {"peak_rps": 0.1}
        data["limits"]["max_concurrency"] = 8
        data["slo"] = {"p99_ms": 30000}
        data["llm"] = {"architecture": LLAMA_70B, "max_context_tokens": 8192,
                       "input_tokens": {"mean": 1024, "p95": 2048},
                       "output_tokens": {"mean": 256, "p95": 512},
                       "slo": {"ttft_p99_ms": 2000, "tpot_p99_ms": 100}, **llm}

    edit_yaml(path, change)
    return path


def _demand(registry: Path, name: str = "llm-chat-70b") -> Demand:
    demands, rejections = derive(load_registry(registry))
    assert len(demands[name]) == 1, rejections[name]
    return demands[name][0]


def test_tp_choice_takes_the_fewest_gpus_that_meet_tpot(registry: Path):
    # TP 1 never fits an H100, TP 2 misses the 100 ms TPOT (125 ms), TP 4 meets it with one
    # replica (4 GPUs) where TP 8 would take 8.
    _as_llm(registry)
    demand = _demand(registry)
    assert demand.llm is not None
    assert (demand.gpus_per_replica, demand.replicas, demand.llm.precision) == (4, 1, "bf16")
    assert demand.llm.max_num_seqs == 8 and demand.llm.max_model_len == 8192
    assert demand.notes[0].startswith(
        "TP 4 bf16 (roofline), at most 8 sequences of 8192 tokens: 4 GPU(s); TTFT p99 314.9 ms "
        "(SLO 2000), TPOT p99 63.6 ms (SLO 100)")
    assert demand.notes[1] == (
        "cheaper configurations fail: TP 2 bf16 (roofline): TTFT p99 626 ms and TPOT p99 125 ms "
        "at concurrency 1 on h100-80gb (SLO 2000 ms and 100 ms); TP 1 bf16 (roofline): one "
        "sequence of 8192 tokens needs weights 134,571 + workspace 88 + CUDA context 1,072 + KV "
        "cache 2,560 = 138,291 MiB per GPU at TP 1, 73,403 allowed")
    assert demand.notes[2] == (
        "not TP 8 bf16 (roofline): 8 GPU(s): 1 replica(s) for the peak of 0.1 rps at 80% "
        "target utilisation, each at most 8 sequences serving 3.039 rps at a p99 of 5,417 ms")


def test_fp8_allowed_halves_the_gpus(registry: Path):
    # FP8 at TP 2 meets TPOT (63 ms); at TP 1 it misses (106 ms), so 2 GPUs.
    _as_llm(registry, precisions=["bf16", "fp8"])
    demand = _demand(registry)
    assert demand.llm is not None
    assert (demand.gpus_per_replica, demand.replicas, demand.llm.precision) == (2, 1, "fp8")
    assert "TP 1 fp8 (roofline): TTFT p99 532.2 ms and TPOT p99 106 ms" in demand.notes[1]


def test_engine_preallocation_is_the_packed_share(registry: Path):
    _as_llm(registry)
    demand = _demand(registry)
    assert demand.llm is not None
    # 39,885 MiB per GPU at 8 sequences: 49% of 81,559 MiB, packed as 39,963 MiB
    assert demand.llm.gpu_memory_utilization == 0.49
    assert demand.memory_mib == 39_963


def test_context_that_fits_no_gpu_is_exit_2_with_the_numbers(cli, registry: Path):
    model = _as_llm(registry, tensor_parallel=[1, 2], max_context_tokens=131072)
    result = cli("validate", "--registry", registry)
    assert result.exit_code == 2
    line = next(i for i, text in enumerate(model.read_text().splitlines(), 1)
                if text.strip().startswith("max_context_tokens:"))
    assert result.stderr == (
        f"error: {model}:{line}: llm.max_context_tokens: no configuration fits a pool that "
        "admits it: one sequence of max_context_tokens 131072 needs weights 67,285 + workspace "
        "60 + CUDA context 1,072 + KV cache 20,480 = 88,898 MiB per GPU at TP 2 (bf16), a GPU "
        "of dedicated-h100 (h100-80gb) holds 73,403 MiB after the 10% headroom; lower "
        "max_context_tokens, allow more llm.tensor_parallel degrees or a smaller precision "
        "(fp8, int4), or admit the model to a pool with larger GPUs\n")


def test_architecture_from_a_config_json(registry: Path):
    config = {"num_hidden_layers": 80, "hidden_size": 8192, "num_attention_heads": 64,
              "num_key_value_heads": 8, "intermediate_size": 28672, "vocab_size": 128256}
    (registry / "configs").mkdir()
    (registry / "configs" / "llama-70b.json").write_text(json.dumps(config))
    path = _as_llm(registry)
    edit_yaml(path, lambda d: d["llm"].update(architecture=None,
                                              config_json="configs/llama-70b.json"))
    edit_yaml(path, lambda d: d["llm"].pop("architecture"))
    fleet = load_registry(registry)
    llm = fleet.models["llm-chat-70b"].llm
    assert llm is not None and llm.architecture is not None
    assert llm.architecture.parameter_count() == 70_553_706_496


def test_a_broken_config_json_names_the_field(cli, registry: Path):
    (registry / "configs").mkdir()
    (registry / "configs" / "broken.json").write_text('{"hidden_size": 8192}')
    path = _as_llm(registry)
    edit_yaml(path, lambda d: d["llm"].pop("architecture"))
    edit_yaml(path, lambda d: d["llm"].update(config_json="configs/broken.json"))
    result = cli("validate", "--registry", registry)
    assert result.exit_code == 2
    assert ("llm.config_json: configs/broken.json is not a usable Hugging Face config.json: "
            "config.json lacks num_hidden_layers, num_attention_heads, vocab_size") \
        in result.stderr


@pytest.mark.parametrize("change, message", [
    (lambda d: d.update(gpus_per_replica=2), "remove gpus_per_replica"),
    (lambda d: d["serving"].update(engine="triton"), "needs serving.engine vllm, sglang, tgi"),
    (lambda d: d["llm"]["output_tokens"].update(p95=8000),
     "input_tokens.p95 + output_tokens.p95 (10048) exceeds max_context_tokens (8192)"),
])
def test_llm_kind_mistakes_are_exit_2(cli, registry: Path, change, message):
    path = _as_llm(registry)
    edit_yaml(path, change)
    result = cli("validate", "--registry", registry)
    assert result.exit_code == 2
    assert message in result.stderr


def test_manifests_pass_the_engine_its_flags_and_validate(cli, registry: Path, tmp_path: Path):
    # vision-language-assistant as an SGLang 13B with TP degrees 2 and 4 only, next to the
    # 70B on vLLM: both get their flags, /dev/shm and a health probe.
    _as_llm(registry)
    _as_llm(registry, "vision-language-assistant", tensor_parallel=[2, 4],
            architecture={"layers": 40, "hidden": 5120, "heads": 40, "intermediate": 13824,
                          "vocab": 32000})
    edit_yaml(registry / "models" / "vision-language-assistant.yaml",
              lambda d: d["serving"].update(engine="sglang"))
    out = tmp_path / "out"
    result = cli("plan", "--registry", registry, "--solver", "greedy", "--out", out)
    assert result.exit_code == 0, result.stderr
    plan = yaml.safe_load((out / "plan.yaml").read_text())
    models = {m["name"]: m for m in plan["models"]}
    for name, flags in [
        ("llm-chat-70b", ["--served-model-name", "llm-chat-70b", "--port", "8080",
                          "--tensor-parallel-size", "4", "--max-num-seqs", "8", "--max-model-len",
                          "8192", "--gpu-memory-utilization", "0.49",
                          "--max-num-batched-tokens", "512"]),
        ("vision-language-assistant", ["--served-model-name", "vision-language-assistant",
                                       "--port", "8080", "--tp-size",
                                       str(models["vision-language-assistant"]["llm"][
                                           "tensor_parallel"]), "--max-running-requests"]),
    ]:
        deployment = next(d for d in yaml.safe_load_all(
            (out / "manifests" / "models" / f"{name}.yaml").read_text())
            if d["kind"] == "Deployment")
        kubernetes_validate.validate(deployment, "1.33", strict=True)
        pod = deployment["spec"]["template"]["spec"]
        container = pod["containers"][0]
        assert container["args"][:len(flags)] == flags
        assert container["readinessProbe"]["httpGet"] == {"path": "/health", "port": 8080}
        assert container["volumeMounts"] == [{"name": "dshm", "mountPath": "/dev/shm"}]
        assert pod["volumes"] == [{"name": "dshm", "emptyDir": {"medium": "Memory"}}]


def test_memory_caps_the_sequences_and_the_plan_says_so(registry: Path):
    # At TP 8 with 131,072-token sequences, 8 fit an H100 (58,891 MiB), 16 would not.
    _as_llm(registry, tensor_parallel=[8], max_context_tokens=131072)
    edit_yaml(registry / "models" / "llm-chat-70b.yaml",
              lambda d: d["limits"].update(max_concurrency=16))
    demand = _demand(registry)
    assert demand.llm is not None and demand.llm.max_num_seqs == 8
    # weights 16,821 + workspace 47 + context 1,072 + KV 16 x 131,072 x 40 KiB = 81,920
    assert "at most 8 sequences: 16 of 131072 tokens need 99,861 MiB per GPU, 73,403 " \
           "allowed" in demand.notes


@pytest.mark.parametrize("engine, flags", [
    ("vllm", ["--served-model-name", "llm-chat-70b", "--port", "8080",
              "--tensor-parallel-size", "4", "--max-num-seqs", "16",
              "--max-model-len", "8192", "--gpu-memory-utilization", "0.56",
              "--max-num-batched-tokens", "512"]),
    ("sglang", ["--served-model-name", "llm-chat-70b", "--port", "8080", "--tp-size", "4",
                "--max-running-requests", "16",
                "--context-length", "8192", "--mem-fraction-static", "0.56",
                "--chunked-prefill-size", "512"]),
    ("tgi", ["--port", "8080", "--num-shard", "4", "--max-total-tokens", "8192",
             "--max-batch-total-tokens", "131072", "--cuda-memory-fraction", "0.56"]),
])
def test_each_engine_gets_the_planned_configuration(greedy_demo_out: Path, engine, flags):
    from planner.planfile import load_plan
    from reports.engine_flags import engine_args

    plan = load_plan(greedy_demo_out / "plan.yaml")
    chat = next(m for m in plan.models if m.name == "llm-chat-70b")
    assert chat.llm is not None and chat.llm.precision == "bf16"
    model = chat.model_copy(update={"serving": chat.serving.model_copy(update={"engine": engine})})
    assert engine_args(model) == flags
    fp8 = model.model_copy(update={"llm": chat.llm.model_copy(update={"precision": "fp8"})})
    assert engine_args(fp8)[-2:] == ["--quantize" if engine == "tgi" else "--quantization", "fp8"]


def test_vision_language_assistant_says_why_not_one_gpu_per_replica():
    """The demo's 13B-class decoder fits one H100, but at TP 1 a replica's end-to-end p99 at
    16 sequences is 10,068 ms (SLO 10,000) and their memory 77,147 MiB (73,403 allowed), so a
    replica holds 8 sequences and serves 2.663 rps: the peak of 5 rps at 80% needs
    ceil(5 / (2.663 x 0.8)) = 3 replicas, 3 H100s, against one replica of TP 2 on 2."""
    from planner.demo import demo_registry_path

    demands, _ = derive(load_registry(demo_registry_path()))
    [demand] = demands["vision-language-assistant"]
    assert demand.llm is not None
    assert (demand.replicas, demand.llm.tensor_parallel) == (1, 2)
    assert demand.notes[1] == (
        "not TP 1 bf16 (roofline): 3 GPU(s): 3 replica(s) for the peak of 5 rps at 80% target "
        "utilisation, each at most 8 sequences serving 2.663 rps at a p99 of 7,457 ms "
        "(16 sequences: 77,147 MiB per GPU, 73,403 allowed; p99 10,068 ms, SLO 10,000 ms)")
