"""Where training runs and how fast: device choice, bf16 autocast, channels_last, pinned memory.

Each decision is a small pure function of the device (and the hardware's answers passed in), so
the CUDA choices are testable on a CPU-only machine.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

import torch
from torch import nn

from recipe_core.errors import ConfigError

# Datasets up to this many bytes (uint8 images) live on the GPU: no host->device copy per step.
GPU_RESIDENT_BYTES = 4 * 1024**3


def resolve_device(device: str, *, cuda_available: bool | None = None) -> torch.device:
    """ "auto" -> cuda when present else cpu; asking for cuda without one is a ConfigError."""
    has_cuda = torch.cuda.is_available() if cuda_available is None else cuda_available
    if device == "auto":
        device = "cuda" if has_cuda else "cpu"
    if device.startswith("cuda"):
        if not has_cuda:
            raise ConfigError(
                f"Device {device!r} was requested but PyTorch sees no CUDA GPU here "
                f"(torch {torch.__version__}). Use --device cpu (or auto), or install a "
                "CUDA build of PyTorch on a machine with an NVIDIA GPU."
            )
        index = int(device.split(":")[1]) if ":" in device else 0
        count = torch.cuda.device_count() if cuda_available is None else index + 1
        if index >= count:
            raise ConfigError(
                f"Device {device!r} does not exist: {count} GPU(s) visible "
                f"(cuda:0..cuda:{count - 1})."
            )
        return torch.device("cuda", index)
    if device == "cpu":
        return torch.device("cpu")
    raise ConfigError(f"Unknown device {device!r}. Use 'auto', 'cpu', 'cuda' or 'cuda:N'.")


def amp_dtype(
    device: torch.device, *, enabled: bool = True, bf16_supported: bool | None = None
) -> torch.dtype | None:
    """bf16 autocast on CUDA GPUs that support it (Ampere+); None = full float32.

    bf16 keeps float32's exponent range, so unlike fp16 it needs no loss scaler. CPU autocast
    is off: on most CPUs it is slower than float32.
    """
    if not enabled or device.type != "cuda":
        return None
    supported = torch.cuda.is_bf16_supported() if bf16_supported is None else bf16_supported
    return torch.bfloat16 if supported else None


def autocast_factory(
    device: torch.device, dtype: torch.dtype | None
) -> Callable[[], AbstractContextManager[object]]:
    """A zero-argument context factory: autocast to `dtype`, or a no-op when None."""
    if dtype is None:
        return nullcontext
    return lambda: torch.autocast(device_type=device.type, dtype=dtype)


def wants_channels_last(model: nn.Module, device: torch.device, *, enabled: bool = True) -> bool:
    """NHWC pays off for convolutions on CUDA tensor cores; it is legal (just not faster) on CPU."""
    has_conv = any(isinstance(m, nn.Conv2d) for m in model.modules())
    return enabled and has_conv and device.type == "cuda"


def should_pin(device: torch.device) -> bool:
    """Page-locked host memory only helps (and only makes sense) when copying to a GPU."""
    return device.type == "cuda"


def keep_on_device(nbytes: int, device: torch.device) -> bool:
    """Hold the whole uint8 dataset on the GPU when it is small enough."""
    return device.type == "cuda" and nbytes <= GPU_RESIDENT_BYTES


def configure_backends(device: torch.device) -> None:
    """Process-wide speed switches for a training process (jobs, CLI, benchmarks) on CUDA:
    cuDNN autotuning (fixed input shapes) and TF32 for any float32 matmul left outside autocast."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.set_float32_matmul_precision("high")
