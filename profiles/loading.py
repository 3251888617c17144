"""Building a model and its input batches from a model file's `source`. Imports torch."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from profiles.errors import ProfileError
from profiles.schema import InputSpec, Source


@contextmanager
def building(device: torch.device, dtype: torch.dtype) -> Iterator[None]:
    """Tensors created inside land on `device` in `dtype` from the start (torch's default
    device and floating dtype), so a factory's weights are never built in float32 first and
    then cast: that copy would double the memory the profile measures, and a 7B model in
    float32 does not even fit the GPU its 16-bit weights serve on."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with device:
            yield
    finally:
        torch.set_default_dtype(previous)


def build_model(source: Source, registry: Path, device: torch.device) -> torch.nn.Module:
    """The model in eval mode on `device`, its weights made in the source's dtype there; CPU
    runs in float32, the dtype CPUs serve in."""
    if source.torchscript is None:
        dtype = getattr(torch, source.dtype) if device.type == "cuda" else torch.float32
        return instantiate(source, device, dtype).eval()
    path = Path(source.torchscript)
    path = path if path.is_absolute() else registry / path
    if not path.is_file():
        raise ProfileError(f"source.torchscript: {path} not found")
    try:
        model = torch.jit.load(str(path), map_location=device)
    except RuntimeError as exc:
        raise ProfileError(f"source.torchscript: {path} is not a TorchScript file: "
                           f"{str(exc).strip().splitlines()[0]}") from None
    return model.eval()


def instantiate(source: Source, device: torch.device, dtype: torch.dtype) -> torch.nn.Module:
    """The source's factory called under `building(device, dtype)`; what it made elsewhere or
    in another floating dtype (a tensor it placed or typed itself) is moved after."""
    assert source.factory is not None  # the schema requires a factory or a TorchScript file
    module_name, function_name = source.factory.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ProfileError(f"source.factory: cannot import module '{module_name}': {exc}; "
                           "install the package that defines it") from None
    factory = getattr(module, function_name, None)
    if factory is None:
        raise ProfileError(f"source.factory: module '{module_name}' has no '{function_name}'")
    try:
        with building(device, dtype):
            model = factory(**source.kwargs)
    except TypeError as exc:
        raise ProfileError(f"source.kwargs: {exc}") from None
    if not isinstance(model, torch.nn.Module):
        raise ProfileError(f"source.factory: {source.factory} returned "
                           f"{type(model).__name__}, not a torch.nn.Module")
    return model.to(device=device, dtype=dtype)


def make_input(spec: InputSpec, batch: int, device: torch.device, model_dtype: torch.dtype,
               seed: int = 0) -> torch.Tensor:
    """A random batch matching the input spec: integer tokens in [low, high), or floats."""
    generator = torch.Generator().manual_seed(seed)
    shape = (batch, *spec.shape)
    if spec.dtype in ("int64", "int32"):
        high = spec.high if spec.high is not None else spec.low + 2
        tensor = torch.randint(spec.low, high, shape, generator=generator,
                               dtype=getattr(torch, spec.dtype))
    else:
        dtype = model_dtype if device.type == "cuda" else torch.float32
        tensor = torch.randn(shape, generator=generator).to(dtype)
    return tensor.to(device)


def check_input(model: torch.nn.Module, spec: InputSpec, device: torch.device,
                dtype: torch.dtype) -> None:
    """Run one request; a mismatch between the spec and the model is the user's to fix."""
    try:
        with torch.inference_mode():
            model(make_input(spec, 1, device, dtype))
    except (RuntimeError, IndexError, ValueError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ProfileError(f"source.input: the model rejects input of shape {list(spec.shape)} "
                           f"({spec.dtype}): {first}; fix source.input") from None
