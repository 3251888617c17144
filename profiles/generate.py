"""Measuring generation: prefill and a decode loop with a KV cache, per concurrency level.

A generating model is called as `model(tokens)` to prefill a batch of prompts and
`model(next_tokens, cache)` to decode one token per sequence, each returning the next-token
logits and the cache (the protocol of `planner.demo.models.causal_lm`). At concurrency `c`, a
round prefills `c` prompts of `input_tokens` together and decodes `output_tokens` more, greedy:

- TTFT: the prefill's duration (the batch's prompts arrive together);
- TPOT: each decode step's duration (every sequence gets one token per step);
- prefill tokens/s: c x input_tokens over the prefill; decode tokens/s: c over the mean step;
- end to end: TTFT plus the round's steps; throughput: c over the mean round.

`rounds` rounds per level after one warm-up round: the work is fixed by counts, never by time.
torch is imported inside the functions, as in every measuring module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Round:
    ttft_s: float
    steps_s: list[float]


def _round(model: torch.nn.Module, prompts: torch.Tensor, output_tokens: int,
           sync: Callable[[], None], clock: Callable[[], float]) -> Round:
    import torch

    with torch.inference_mode():
        start = clock()
        logits, cache = model(prompts)
        sync()
        ttft = clock() - start
        steps = []
        for _ in range(output_tokens - 1):
            start = clock()
            logits, cache = model(logits.argmax(dim=-1, keepdim=True), cache)
            sync()
            steps.append(clock() - start)
    return Round(ttft, steps)


def _level(concurrency: int, input_tokens: int, rounds: list[Round]) -> dict[str, Any]:
    ttft = np.array([r.ttft_s for r in rounds]) * 1000
    steps = np.array([s for r in rounds for s in r.steps_s]) * 1000
    ends = np.array([r.ttft_s + sum(r.steps_s) for r in rounds]) * 1000
    mean_step_ms = float(steps.mean()) if steps.size else float(ttft.mean())
    p50, p95, p99 = (float(v) for v in np.percentile(ends, [50, 95, 99]))
    return {
        "concurrency": concurrency,
        "ttft_p50_ms": round(float(np.percentile(ttft, 50)), 3),
        "ttft_p99_ms": round(float(np.percentile(ttft, 99)), 3),
        "tpot_p50_ms": round(float(np.percentile(steps, 50)) if steps.size else 0.0, 3),
        "tpot_p99_ms": round(float(np.percentile(steps, 99)) if steps.size else 0.0, 3),
        "prefill_tokens_per_s": round(concurrency * input_tokens * 1000 / float(ttft.mean()), 1),
        "decode_tokens_per_s": round(concurrency * 1000 / mean_step_ms, 1),
        "throughput_rps": round(concurrency * 1000 / float(ends.mean()), 3),
        "p50_ms": round(p50, 3), "p95_ms": round(p95, 3), "p99_ms": round(p99, 3),
    }


def measure_generation(model: torch.nn.Module, *, vocab: int, levels: tuple[int, ...],
                       input_tokens: int, output_tokens: int, rounds: int,
                       device: torch.device, peak_mib: Callable[[], float],
                       clock: Callable[[], float]) -> list[dict[str, Any]]:
    """One measured level per concurrency: TTFT, TPOT, tokens/s, end-to-end latency and the
    peak memory with the KV cache of `concurrency` sequences."""
    import torch

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    generator = torch.Generator().manual_seed(0)
    points = []
    for c in levels:
        prompts = torch.randint(0, vocab, (c, input_tokens), generator=generator).to(device)
        _round(model, prompts, output_tokens, sync, clock)  # warm-up
        measured = [_round(model, prompts, output_tokens, sync, clock) for _ in range(rounds)]
        points.append({**_level(c, input_tokens, measured),
                       "peak_memory_mib": round(peak_mib(), 1)})
    return points
