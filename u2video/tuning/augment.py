"""Augmentation for ``tune``: a few masked frames made into many training samples.

As in U-Net (Ronneberger et al. 2015), which learned from ~30 images: every sample is the frame
and its mask warped by the same random geometry (zoom, rotation, shift, flip, and a smooth
elastic displacement field: random vectors on a coarse grid, interpolated bicubically), through
one sampling grid, so the two stay aligned to the pixel; then the image alone gets grey-value
changes (brightness, contrast, saturation, hue), blur and noise. Optionally a masked frame's
subject is pasted onto another masked frame, and both subjects are labelled.

The warp also squeezes the frame to the network's square input, as the Segmenter does, so
unaugmented samples (``augment(..., AugmentParams.none())``) are exactly the network's input.
Random numbers come from a CPU ``torch.Generator``: the same seed gives the same samples on any
device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentParams:
    zoom: float = 0.2  # scale drawn log-uniformly from 1/(1+zoom) to 1+zoom
    rotate: float = 15.0  # degrees, either way
    shift: float = 0.1  # share of the frame, either way, on each axis
    flip: float = 0.5  # probability of a left-right flip
    elastic: float = 0.03  # displacement at each grid point (s.d., share of the frame)
    elastic_grid: int = 3  # control points on each side of the displacement grid (U-Net: 3x3)
    brightness: float = 0.2  # gain drawn from 1 ± this
    contrast: float = 0.2  # around the mean grey, 1 ± this
    saturation: float = 0.2  # 1 ± this
    hue: float = 0.04  # turns about the grey axis, either way
    blur: float = 0.3  # probability of a Gaussian blur...
    blur_sigma: float = 1.5  # ...of up to this sigma (pixels at the input size)
    noise: float = 0.3  # probability of Gaussian noise...
    noise_sigma: float = 0.03  # ...of up to this s.d.
    paste: float = 0.0  # probability of pasting another sample's subject onto a sample

    @staticmethod
    def none() -> "AugmentParams":
        """No change: samples are the frames squeezed to the input size (validation)."""
        return AugmentParams(zoom=0, rotate=0, shift=0, flip=0, elastic=0, brightness=0, contrast=0,
                             saturation=0, hue=0, blur=0, noise=0, paste=0)


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=generator) * (high - low) + low


def sampling_grid(n: int, height: int, width: int, size: int, params: AugmentParams,
                  generator: torch.Generator) -> torch.Tensor:
    """Where each of n samples' [size,size] pixels is read in its frame [height,width]:
    [n,size,size,2] in the frame's normalised coordinates (-1..1 across its pixel edges, as
    ``F.grid_sample`` takes them, ``align_corners=False``). On the CPU."""
    zoom = torch.exp(_uniform(n, -math.log1p(params.zoom), math.log1p(params.zoom), generator))
    angle = _uniform(n, -params.rotate, params.rotate, generator) * (math.pi / 180)
    shift = _uniform(2 * n, -params.shift, params.shift, generator).view(n, 2) * 2  # 2 = the frame
    flip = torch.where(torch.rand(n, generator=generator) < params.flip, -1.0, 1.0)
    # rotation and zoom in pixel units (a rotation in normalised units would shear a wide frame)
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    aspect = height / width
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1] = cos * flip, -sin * aspect
    theta[:, 1, 0], theta[:, 1, 1] = sin * flip / aspect, cos
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta, [n, 1, size, size], align_corners=False)
    if params.elastic > 0:
        g = params.elastic_grid
        vectors = torch.randn(n, 2, g, g, generator=generator) * (2 * params.elastic)
        field = F.interpolate(vectors, size=(size, size), mode="bicubic", align_corners=True)
        grid = grid + field.permute(0, 2, 3, 1)
    return grid


def _hue_matrices(turns: torch.Tensor) -> torch.Tensor:
    """[n] turns -> [n,3,3] rotations of RGB about the grey axis (Rodrigues' formula)."""
    angle = turns * 2 * math.pi
    axis = torch.full((3,), 1 / math.sqrt(3))
    cross = torch.tensor([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    outer = torch.outer(axis, axis)
    cos, sin = torch.cos(angle)[:, None, None], torch.sin(angle)[:, None, None]
    return cos * torch.eye(3) + sin * cross + (1 - cos) * outer


def _gaussian(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """One image [1,C,S,S] blurred by a Gaussian of ``sigma`` pixels, edges reflected."""
    radius = max(1, math.ceil(3 * sigma))
    taps = torch.exp(-0.5 * (torch.arange(-radius, radius + 1, dtype=torch.float32) / sigma) ** 2)
    taps = (taps / taps.sum()).to(x.device)
    c = x.shape[1]
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="reflect"), taps.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(F.pad(x, (0, 0, radius, radius), mode="reflect"), taps.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def augment(frames: torch.Tensor, masks: torch.Tensor, size: int, generator: torch.Generator,
            params: AugmentParams = AugmentParams()) -> tuple[torch.Tensor, torch.Tensor]:
    """frames [N,3,H,W] f32 RGB 0..1 and their masks [N,1,H,W] f32 0..1 (on any device) ->
    augmented samples [N,3,size,size] f32 0..1 and masks [N,1,size,size] f32 0..1 there."""
    n, _, height, width = frames.shape
    device = frames.device
    grid = sampling_grid(n, height, width, size, params, generator).to(device)
    # one grid for both: the mask follows the image exactly; mirrored where the warp reads past the frame
    x = F.grid_sample(frames, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    y = F.grid_sample(masks, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    if params.paste > 0 and n > 1:
        pasted = torch.rand(n, generator=generator) < params.paste
        donor = (torch.arange(n) + torch.randint(1, n, (n,), generator=generator)) % n  # another sample
        for i in torch.nonzero(pasted).flatten().tolist():
            j = int(donor[i])
            alpha = y[j:j + 1]
            x[i:i + 1] = alpha * x[j:j + 1] + (1 - alpha) * x[i:i + 1]
            y[i:i + 1] = alpha + (1 - alpha) * y[i:i + 1]
    # grey values: gain, contrast about the mean grey, saturation about each pixel's grey, hue
    gain = _uniform(n, 1 - params.brightness, 1 + params.brightness, generator).view(n, 1, 1, 1).to(device)
    contrast = _uniform(n, 1 - params.contrast, 1 + params.contrast, generator).view(n, 1, 1, 1).to(device)
    saturation = _uniform(n, 1 - params.saturation, 1 + params.saturation, generator).view(n, 1, 1, 1).to(device)
    hue = _hue_matrices(_uniform(n, -params.hue, params.hue, generator)).to(device)
    if params.brightness or params.contrast or params.saturation or params.hue:  # else exactly as warped
        x = torch.einsum("nij,njhw->nihw", hue, x) * gain
        grey = x.mean(dim=1, keepdim=True)
        x = grey + (x - grey) * saturation
        mean = grey.mean(dim=(2, 3), keepdim=True)
        x = (x - mean) * contrast + mean
    blurred = torch.rand(n, generator=generator) < params.blur
    sigmas = _uniform(n, 0.3, max(0.3, params.blur_sigma), generator)
    noisy = torch.rand(n, generator=generator) < params.noise
    noise = _uniform(n, 0.0, params.noise_sigma, generator)
    for i in range(n):
        if blurred[i]:
            x[i:i + 1] = _gaussian(x[i:i + 1], float(sigmas[i]))
        if noisy[i]:
            x[i:i + 1] += torch.randn(1, 3, size, size, generator=generator).to(device) * float(noise[i])
    return x.clamp_(0.0, 1.0), y.clamp_(0.0, 1.0)
