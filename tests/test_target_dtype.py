"""Weights built in the target dtype where they are served, never in float32 first.

Checked on CPU by what torch allocates, not by time: a dispatch mode counts the bytes of every
new storage an operation creates (an output that is not one of its inputs' storage), by dtype;
their sum bounds the peak from above. A parameter registration hook records each weight's
dtype as the factory creates it.
"""

from __future__ import annotations

from collections import Counter

import pytest

torch = pytest.importorskip("torch")

from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402
from torch.utils._pytree import tree_leaves  # noqa: E402

from profiles.loading import building, instantiate  # noqa: E402
from profiles.schema import Source  # noqa: E402

# 256 -> 512 -> 512 -> 1: 394,753 parameters, 789,506 bytes in float16
SOURCE = Source.model_validate({
    "factory": "planner.demo.models:tabular_mlp",
    "kwargs": {"features": 256, "hidden": 512, "layers": 2}, "dtype": "float16",
    "input": {"shape": [256]}})
PARAMETERS = 256 * 512 + 512 + 512 * 512 + 512 + 512 + 1


class Allocations(TorchDispatchMode):
    """Bytes of the new storages operations create, by dtype."""

    def __init__(self):
        super().__init__()
        self.bytes: Counter[torch.dtype] = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = {t.untyped_storage().data_ptr() for t in tree_leaves((args, kwargs))
                  if isinstance(t, torch.Tensor)}
        for tensor in tree_leaves(out):
            if isinstance(tensor, torch.Tensor):
                storage = tensor.untyped_storage()
                if storage.data_ptr() not in inputs:
                    self.bytes[tensor.dtype] += storage.nbytes()
                    inputs.add(storage.data_ptr())
        return out


@pytest.fixture
def registered():
    """The dtype of every parameter when a module registers it."""
    seen: list[torch.dtype] = []
    handle = torch.nn.modules.module.register_module_parameter_registration_hook(
        lambda module, name, parameter: seen.append(parameter.dtype))
    yield seen
    handle.remove()


def test_weights_are_made_in_the_target_dtype(registered):
    with Allocations() as allocated:
        model = instantiate(SOURCE, torch.device("cpu"), torch.float16)
    assert set(registered) == {torch.float16} and len(registered) == 6
    assert {p.dtype for p in model.parameters()} == {torch.float16}
    assert sum(p.numel() for p in model.parameters()) == PARAMETERS
    assert allocated.bytes[torch.float32] == 0
    assert sum(allocated.bytes.values()) == 2 * PARAMETERS  # the weights, made once
    assert torch.get_default_dtype() == torch.float32  # restored


def test_the_count_sees_a_float32_build_then_cast(registered):
    """What the loader did before: float32 weights (4 bytes each), then 16-bit copies."""
    from planner.demo.models import tabular_mlp

    with Allocations() as allocated:
        model = tabular_mlp(**SOURCE.kwargs).to(torch.float16)  # type: ignore[arg-type]
    assert set(registered) == {torch.float32}
    assert allocated.bytes[torch.float32] == 4 * PARAMETERS
    assert allocated.bytes[torch.float16] == 2 * PARAMETERS
    assert {p.dtype for p in model.parameters()} == {torch.float16}


def test_building_restores_the_default_dtype_on_error():
    with pytest.raises(RuntimeError, match="boom"), building(torch.device("cpu"),
                                                             torch.bfloat16):
        assert torch.empty(1).dtype == torch.bfloat16
        raise RuntimeError("boom")
    assert torch.get_default_dtype() == torch.float32


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_peak_is_the_16_bit_weights():
    """On the GPU the caching allocator's peak is the 16-bit weights (rounded up to its
    512-byte blocks per tensor), not the float32 build's twice that."""
    device = torch.device("cuda")
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    model = instantiate(SOURCE, device, torch.float16)
    peak = torch.cuda.max_memory_allocated(device) - before
    assert {p.dtype for p in model.parameters()} == {torch.float16}
    assert 2 * PARAMETERS <= peak <= 2 * PARAMETERS + 512 * 6
