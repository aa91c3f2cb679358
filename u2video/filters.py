"""Image filters on [B,C,H,W] float32 tensors: the matte step's building blocks (``alpha.py``).

On the CPU each runs as OpenCV calls on the tensor's planes, read and written in place (numpy
views of the tensor's memory): on one thread, as the frame loop runs them, 4-14x faster than
the same work in PyTorch operators (a box mean of 13 planes at 180x240: 2.2 against 8.2 ms;
a 13-tap blur at 640x480: 0.9 against 3.9). Elsewhere (CUDA) they are PyTorch operators.
Both give the same results within float rounding (``tests/test_alpha.py`` checks each pair).
With ``device.py`` and ``streams.py``, the only place that asks where a tensor is.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F


def _on_cpu(x: torch.Tensor) -> bool:
    return x.device.type == "cpu" and x.dtype == torch.float32 and x.dim() == 4 and x.numel() > 0


def _pixels_packed(x: torch.Tensor) -> bool:
    """Channels-last with 2-4 channels: each [H,W,C] image is one OpenCV image of C channels."""
    return 1 < x.shape[1] <= 4 and x.is_contiguous(memory_format=torch.channels_last)


def _cv_pairs(x: torch.Tensor, shape: tuple[int, ...]) -> tuple[torch.Tensor, list[tuple[np.ndarray, np.ndarray]]]:
    """A new tensor of ``shape`` and, as numpy views, what OpenCV reads and writes: a channels-last
    ``x`` (a frame as ``to_float`` gives it) as whole [H,W,C] images, in one call each and into a
    channels-last result; otherwise each [H,W] plane. A plane whose rows are not packed (a
    one-pixel side keeps odd strides even in a "contiguous" tensor) is copied, as OpenCV needs
    them packed."""
    if _pixels_packed(x):
        out = torch.empty(shape, memory_format=torch.channels_last)
        return out, [(np.ascontiguousarray(src.numpy()), dst.numpy())
                     for src, dst in zip(x.permute(0, 2, 3, 1), out.permute(0, 2, 3, 1))]
    out = torch.empty(shape)
    return out, [(np.ascontiguousarray(src.numpy()), dst.numpy())
                 for src, dst in zip(x.reshape(-1, *x.shape[-2:]), out.view(-1, *out.shape[-2:]))]


def box_mean(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Mean of [B,C,H,W] over a (2r+1)x(2r+1) window clipped at the borders (each output pixel
    divides by the number of its window's pixels inside the image)."""
    if not _on_cpu(x):
        return _box_mean_torch(x, radius)
    out, pairs = _cv_pairs(x, x.shape)
    window = (2 * radius + 1, 2 * radius + 1)
    # window sums with zeros outside, over the count of pixels inside: the clipped mean
    count = cv2.boxFilter(np.ones(x.shape[-2:], np.float32), -1, window, normalize=False,
                          borderType=cv2.BORDER_CONSTANT)
    for src, dst in pairs:
        cv2.boxFilter(src, -1, window, dst=dst, normalize=False, borderType=cv2.BORDER_CONSTANT)
        np.divide(dst, count if dst.ndim == 2 else count[..., None], out=dst)
    return out


def _box_mean_torch(x: torch.Tensor, radius: int) -> torch.Tensor:
    # running sums, so the cost does not grow with the radius (~3x faster than avg_pool2d)
    for dim in (3, 2):
        n = x.shape[dim]
        offset = x.mean(dim, keepdim=True)  # running sums of x - mean stay small: float32 keeps its digits
        sums = F.pad(torch.cumsum(x - offset, dim), (1, 0) if dim == 3 else (0, 0, 1, 0))  # a leading 0
        # sums[min(n, i+r+1)] - sums[max(0, i-r)] for every i, as two shifted views of the sums
        # with their ends repeated r times (gathering by index was 4x slower along rows)
        ends = F.pad(sums, (radius, radius, 0, 0) if dim == 3 else (0, 0, radius, radius), mode="replicate")
        index = torch.arange(n, device=x.device)
        hi, lo = (index + radius + 1).clamp_(max=n), (index - radius).clamp_(min=0)
        count = (hi - lo).to(x.dtype).view((1, 1, 1, n) if dim == 3 else (1, 1, n, 1))
        x = (ends.narrow(dim, 2 * radius + 1, n) - ends.narrow(dim, 0, n)) / count + offset
    return x


_BORDERS = {"replicate": cv2.BORDER_REPLICATE, "reflect": cv2.BORDER_REFLECT_101}


def separable(x: torch.Tensor, taps: list[float], border: str = "replicate") -> torch.Tensor:
    """Filter [B,C,H,W] with the same symmetric 1-D kernel (an odd number of taps) along both
    axes, edges replicated, or with ``border="reflect"`` mirrored without repeating the edge
    pixel (PyTorch's "reflect"; the kernel's radius must then be under H and W)."""
    if not _on_cpu(x):
        return _separable_torch(x, taps, border)
    out, pairs = _cv_pairs(x, x.shape)
    kernel = np.asarray(taps, np.float32)
    for src, dst in pairs:
        cv2.sepFilter2D(src, -1, kernel, kernel, dst=dst, borderType=_BORDERS[border])
    return out


def _separable_torch(x: torch.Tensor, taps: list[float], border: str = "replicate") -> torch.Tensor:
    # shifted sums accumulated in place rather than conv2d: several times faster for small kernels
    radius = len(taps) // 2
    for dim in (3, 2):
        n = x.shape[dim]
        padded = F.pad(x, (radius, radius, 0, 0) if dim == 3 else (0, 0, radius, radius), mode=border)
        x = padded.narrow(dim, radius, n) * taps[radius]
        for i in range(radius):  # the kernel is symmetric: taps i and 2r-i share a weight
            x.add_(padded.narrow(dim, i, n), alpha=taps[i]).add_(padded.narrow(dim, 2 * radius - i, n), alpha=taps[i])
    return x


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of [B,C,H,W] to ``size`` (h, w), pixel centres aligned (PyTorch's
    ``align_corners=False``), no anti-aliasing."""
    if not _on_cpu(x):
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    out, pairs = _cv_pairs(x, (*x.shape[:2], *size))
    for src, dst in pairs:
        cv2.resize(src, (size[1], size[0]), dst=dst, interpolation=cv2.INTER_LINEAR)
    return out


def area(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """[B,C,H,W] shrunk to ``size`` (h, w) by averaging, as PyTorch's ``mode="area"`` (adaptive
    average pooling). OpenCV's area resize equals it only where the sizes divide evenly: other
    sizes stay with PyTorch (their cells are weighted differently)."""
    height, width = x.shape[-2:]
    if not _on_cpu(x) or height % size[0] or width % size[1]:
        return F.interpolate(x, size=size, mode="area")
    out, pairs = _cv_pairs(x, (*x.shape[:2], *size))
    for src, dst in pairs:
        cv2.resize(src, (size[1], size[0]), dst=dst, interpolation=cv2.INTER_AREA)
    return out
