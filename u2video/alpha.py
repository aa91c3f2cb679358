"""From the network's low-resolution prediction to a steady, full-resolution alpha matte.

Two pure steps, both on whatever device the tensors are on:

- ``smooth`` then ``hold``: temporal smoothing over a window of frames around the one being
  finished, then a recursive pass that lets still areas settle over many frames. Each
  neighbour's prediction is weighted, per pixel, by how little the (blurred, small) image changed
  between it and the centre frame: where nothing moved the matte is averaged over the window
  and holds steady; where something moved only the centre frame's own prediction counts, so the
  matte follows at once. With frames on both sides (files) this adds no lag; live use passes past
  frames only. A scene cut stops the window at the cut.
- ``refine``: upsampling guided by the full-resolution frame (a fast guided filter, He & Sun
  2015), so edges follow the image's contours instead of a blurred 320-pixel grid.

The window and the hold state live in a ``MatteWindow`` that the frame loop owns; the functions
themselves keep nothing.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .config import MatteConfig

GUIDE_SIZE = 160  # the long side of the small grey image used to measure change between frames


@dataclass(frozen=True)
class SmoothParams:
    radius: int = 6  # frames each side of the centre (0: off)
    # image change (0..1) at which a neighbour's weight falls to 1/e; tuned with
    # benchmarks/quality.py (0.03 with a 64-pixel guide smeared moving edges: MAD 10% worse on bike)
    tolerance: float = 0.015
    cut: float = 0.15  # mean image change (0..1) between neighbours that counts as a scene cut
    # then, frame by frame, a still pixel keeps up to this share of the previous finished matte
    # (0: none), falling to 1/e of it at an image change of hold_tolerance
    hold: float = 0.9
    hold_tolerance: float = 0.008


@dataclass(frozen=True)
class HoldState:
    """What ``hold`` carries from one finished frame to the next."""

    alpha: torch.Tensor  # [1,1,S,S] the previous finished prediction
    guide: torch.Tensor  # [1,1,h,w] its small_guide


def _grey(frames: torch.Tensor) -> torch.Tensor:
    """[B,3,H,W] RGB -> [B,1,H,W] luma (BT.601 weights)."""
    return 0.299 * frames[:, 0:1] + 0.587 * frames[:, 1:2] + 0.114 * frames[:, 2:3]


def small_guide(frames: torch.Tensor) -> torch.Tensor:
    """frames [B,3,H,W] f32 0..1 -> grey [B,1,h,w] with the long side GUIDE_SIZE, lightly blurred
    (so sensor noise and compression flicker do not count as motion)."""
    grey = _grey(frames)
    height, width = frames.shape[-2:]
    scale = min(1.0, GUIDE_SIZE / max(height, width))
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    small = F.interpolate(grey, size=size, mode="area")
    return F.avg_pool2d(small, 3, stride=1, padding=1, count_include_pad=False)


def smooth(preds: torch.Tensor, guides: torch.Tensor, centre: int, params: SmoothParams) -> torch.Tensor:
    """Temporal smoothing of one frame.

    preds: [T,1,S,S] f32 0..1, the network's predictions for a window of T frames in order;
    guides: [T,1,h,w] from ``small_guide``; centre: the index of the frame to finish.
    Returns [1,1,S,S] f32 0..1.
    """
    if params.radius == 0 or preds.shape[0] == 1:
        return preds[centre:centre + 1]
    change = (guides - guides[centre:centre + 1]).abs()  # [T,1,h,w]
    change = F.max_pool2d(change, 3, stride=1, padding=1)  # a moving edge also stops its neighbours
    # a cut between two neighbours ends the window on that side (frames across it don't count)
    steps = (guides[1:] - guides[:-1]).abs().mean(dim=(1, 2, 3))  # [T-1]
    usable = torch.ones(preds.shape[0], dtype=torch.bool, device=preds.device)
    for i in range(centre - 1, -1, -1):
        usable[i] = usable[i + 1] and bool(steps[i] < params.cut)
    for i in range(centre + 1, preds.shape[0]):
        usable[i] = usable[i - 1] and bool(steps[i - 1] < params.cut)
    weight = torch.exp(-(change / params.tolerance) ** 2) * usable.view(-1, 1, 1, 1)  # [T,1,h,w]
    weight = F.interpolate(weight, size=preds.shape[-2:], mode="bilinear", align_corners=False)
    weight[centre] = 1.0
    return (weight * preds).sum(0, keepdim=True) / weight.sum(0, keepdim=True)


def hold(alpha: torch.Tensor, guide: torch.Tensor, state: HoldState | None,
         params: SmoothParams) -> tuple[torch.Tensor, HoldState]:
    """Motion-adaptive recursive smoothing, one finished frame at a time, in order.

    alpha [1,1,S,S] (from ``smooth``), guide [1,1,h,w]; returns the held alpha and the state
    for the next frame. Where the image did not change since the previous frame, part of that
    frame's matte is kept, so still areas settle over many frames; where it changed, the new
    matte is taken as it is, so there is no lag. A scene cut starts afresh.
    """
    if state is None or params.hold == 0 or params.radius == 0:
        return alpha, HoldState(alpha, guide)
    change = F.max_pool2d((guide - state.guide).abs(), 3, stride=1, padding=1)
    if bool(change.mean() >= params.cut):
        return alpha, HoldState(alpha, guide)
    keep = params.hold * torch.exp(-(change / params.hold_tolerance) ** 2)
    keep = F.interpolate(keep, size=alpha.shape[-2:], mode="bilinear", align_corners=False)
    held = keep * state.alpha + (1 - keep) * alpha
    return held, HoldState(held, guide)


def _box(x: torch.Tensor, radius: int) -> torch.Tensor:
    return F.avg_pool2d(x, 2 * radius + 1, stride=1, padding=radius, count_include_pad=False)


def refine(pred: torch.Tensor, frames: torch.Tensor, radius: int = 2, eps: float = 1e-3) -> torch.Tensor:
    """Fast guided upsampling of the prediction to the frames' resolution.

    pred: [B,1,S,S] f32 0..1; frames: [B,3,H,W] f32 0..1 (the guide). The filter is fitted at a
    reduced size whose long side is twice the network's, then its coefficients are upsampled and
    applied to the full-resolution grey image. Returns alpha [B,1,H,W] f32 0..1.
    """
    height, width = frames.shape[-2:]
    grey = _grey(frames)
    scale = min(1.0, 2 * pred.shape[-1] / max(height, width))
    low = (max(1, round(height * scale)), max(1, round(width * scale)))
    guide = F.interpolate(grey, size=low, mode="area")
    p = F.interpolate(pred, size=low, mode="bilinear", align_corners=False)
    mean_i, mean_p = _box(guide, radius), _box(p, radius)
    cov = _box(guide * p, radius) - mean_i * mean_p
    var = _box(guide * guide, radius) - mean_i * mean_i
    a = cov / (var + eps)
    b = mean_p - a * mean_i
    a = F.interpolate(_box(a, radius), size=(height, width), mode="bilinear", align_corners=False)
    b = F.interpolate(_box(b, radius), size=(height, width), mode="bilinear", align_corners=False)
    return (a * grey + b).clamp_(0.0, 1.0)


def upsample(pred: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Plain bilinear upsampling, the per-frame baseline: [B,1,S,S] -> [B,1,H,W]."""
    return F.interpolate(pred, size=(height, width), mode="bilinear", align_corners=False, antialias=True).clamp_(0, 1)


class MatteWindow:
    """The sliding window of frames that ``smooth`` needs, kept by the frame loop.

    ``push`` one frame's (item, prediction, guide); it returns the items whose window is complete,
    each with its smoothed prediction [1,1,S,S] (``smooth``, then ``hold``, whose state it
    keeps). ``flush`` returns the rest at the end. With ``lookahead`` False (live use) a frame
    is finished at once from past frames only.
    """

    def __init__(self, params: SmoothParams, lookahead: bool = True):
        self.params = params
        self.ahead = params.radius if lookahead else 0
        self._items: deque = deque()
        self._preds: deque = deque()
        self._guides: deque = deque()
        self._next = 0  # index (within the deques) of the next frame to finish
        self._held: HoldState | None = None

    def push(self, item: object, pred: torch.Tensor, guide: torch.Tensor) -> list[tuple[object, torch.Tensor]]:
        self._items.append(item)
        self._preds.append(pred)
        self._guides.append(guide)
        done = []
        while self._next + self.ahead < len(self._items):
            done.append(self._finish())
        return done

    def flush(self) -> list[tuple[object, torch.Tensor]]:
        done = []
        while self._next < len(self._items):
            done.append(self._finish())
        return done

    def _finish(self) -> tuple[object, torch.Tensor]:
        centre = self._next
        preds, guides = torch.cat(list(self._preds)), torch.cat(list(self._guides))
        alpha, self._held = hold(smooth(preds, guides, centre, self.params), guides[centre:centre + 1],
                                 self._held, self.params)
        out = (self._items[centre], alpha)
        self._next += 1
        while self._next > self.params.radius:  # drop what no later window reaches
            self._items.popleft()
            self._preds.popleft()
            self._guides.popleft()
            self._next -= 1
        return out


class MatteStage:
    """The frame loop's matte step: predictions in, finished full-resolution alpha out, in order.

    ``push(frames, preds, keys)`` takes a batch ([B,H,W,3] uint8 frames on the host, their
    predictions [B,1,S,S] on the device, one key per frame, e.g. its pts) and returns the frames
    whose window is complete: (frames [K,H,W,3] uint8, alpha [K,1,H,W] f32 0..1 on the device,
    keys). With smoothing on and look-ahead, a frame comes out ``smooth`` frames later;
    ``flush()`` returns the rest at the end.
    """

    def __init__(self, config: MatteConfig, lookahead: bool = True):
        self.config = config
        self.window = MatteWindow(SmoothParams(radius=config.smooth), lookahead)

    def push(self, frames: torch.Tensor, preds: torch.Tensor, keys: list) -> tuple[torch.Tensor, torch.Tensor, list]:
        if self.config.smooth == 0:  # no window: the frames are finished as they come
            return self._finish([((frames[i], keys[i]), preds[i:i + 1]) for i in range(frames.shape[0])])
        device_frames = frames.to(preds.device).permute(0, 3, 1, 2).float().div_(255)  # [B,3,H,W]
        guides = small_guide(device_frames)
        done = []
        for i in range(frames.shape[0]):
            done += self.window.push((frames[i], keys[i]), preds[i:i + 1], guides[i:i + 1])
        return self._finish(done)

    def flush(self) -> tuple[torch.Tensor, torch.Tensor, list]:
        return self._finish(self.window.flush())

    def _finish(self, done: list) -> tuple[torch.Tensor, torch.Tensor, list]:
        if not done:
            return torch.empty(0), torch.empty(0), []
        frames = torch.stack([item[0] for item, _ in done])  # [K,H,W,3] uint8 host
        preds = torch.cat([pred for _, pred in done])  # [K,1,S,S]
        height, width = frames.shape[1:3]
        if self.config.refine:
            guide = frames.to(preds.device).permute(0, 3, 1, 2).float().div_(255)
            alpha = refine(preds, guide)
        else:
            alpha = upsample(preds, height, width)
        return frames, alpha, [item[1] for item, _ in done]
