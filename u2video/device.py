"""Device choice: the one place that asks PyTorch which devices exist."""

from __future__ import annotations

import torch

from .config import DeviceKind, Precision
from .errors import DeviceError


def pick_device(kind: DeviceKind) -> torch.device:
    """AUTO -> CUDA if PyTorch sees a GPU, else CPU. CUDA without a GPU raises DeviceError."""
    has_cuda = torch.cuda.is_available()
    if kind is DeviceKind.CUDA and not has_cuda:
        raise DeviceError("--device cuda was asked for but PyTorch sees no CUDA GPU: install a CUDA "
                          "build of PyTorch (pytorch.org/get-started) or use --device cpu")
    if kind is DeviceKind.CPU or not has_cuda:
        return torch.device("cpu")
    return torch.device("cuda")


def pick_dtype(precision: Precision) -> torch.dtype:
    return torch.float16 if precision is Precision.FP16 else torch.float32
