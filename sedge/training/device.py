"""Where tensors live: ``--device auto|cpu|cuda[:N]`` for every command that trains or evaluates.

``auto`` takes the first CUDA device when PyTorch sees one, else the CPU (where the fused C++ layer
kernel of :mod:`sedge.models.kernel` runs). Asking for CUDA on a machine without it is an error, never a
silent fall-back to the CPU. Data stay on the CPU; each batch is moved to the device once per step.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

DEVICE_HELP = ("where to train/evaluate: auto (CUDA when available, else CPU), cpu, or cuda[:N] "
               "(an error when CUDA is not available)")


class DeviceError(ValueError):
    """A requested device that this machine does not have."""


def resolve_device(spec: "str | torch.device | None" = "auto") -> "torch.device":
    """The torch.device for ``spec`` ('auto', 'cpu', 'cuda', 'cuda:N' or a torch.device)."""
    import torch
    if isinstance(spec, torch.device):
        spec = str(spec)
    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(spec)
    except RuntimeError:
        raise DeviceError(f"--device {spec!r}: expected auto, cpu or cuda[:N]") from None
    if dev.type == "cpu":
        return dev
    if dev.type != "cuda":
        raise DeviceError(f"--device {spec!r}: expected auto, cpu or cuda[:N]")
    if not torch.cuda.is_available():
        raise DeviceError(f"--device {spec}: CUDA is not available on this machine (torch.cuda.is_available() is "
                          "False); use --device cpu or --device auto")
    if dev.index is not None and dev.index >= torch.cuda.device_count():
        raise DeviceError(f"--device {spec}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return dev


def model_device(model: "torch.nn.Module") -> "torch.device":
    """The device of a model's parameters (the CPU for a model without any)."""
    import torch
    p = next(iter(model.parameters()), None)
    return p.device if p is not None else torch.device("cpu")
