"""The subject-crop pass: where the subject is small in the frame, the network looks again at a box
around it, and what it sees there replaces its first look inside the box.

U²-Netp sees a frame squeezed to its input size (320²): a person a third of a 1280×720 frame's
height is ~90 of its pixels tall, too few for arms, hair or even for telling them from the
furniture. So, frame by frame (U-Net's overlap-tile idea applied to one region):

1. ``subject_boxes``: the parts of the first prediction above 0.5 (specks dropped), each grown by a
   margin; parts whose boxes overlap become one box (at most ``max_boxes``, else one around all).
2. ``BoxTracker``: a box stays where it is while what it must hold stays inside it and fills
   enough of it, so a still subject's crop does not move by a pixel (a network is not shift
   invariant: a crop that jitters makes the matte flicker); it moves at once when the subject
   leaves it.
3. ``Segmenter.predict_boxes`` runs the network on each box (the frame's edge pixels repeated
   where a box reaches past it), and ``merge`` puts the boxes' predictions together into a
   prediction of the whole frame on a finer grid (``grid_size``: the frame's shape, twice the
   network's size on its long side), fading in over each box's outer tenth, with background
   outside the boxes: what the first look took for subject away from the subject's boxes (a
   table, a lamp) is dropped, as the parts it kept are the subject's.

Files run both passes per frame (``SubjectCrop.__call__``). Where the boxes would cover more than
``max_area`` of the frame, the subject is large enough already and the frame's one look is kept
as it is (``--crop auto``). Live use runs one pass per frame (``SubjectCrop.live``, with
``LIVE_CROP``): the box comes from the previous frame's matte, and the whole frame is looked at
again where there is no box and every ``refresh`` frames, so a subject that walks in is found.

The matte step takes the merged prediction [B,1,gh,gw] as it takes the network's [B,1,S,S].
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .filters import resize
from .segmenter import Segmenter

Box = tuple[float, float, float, float]  # x0, y0, x1, y1: pixel edges in the frame (may reach past it)


@dataclass(frozen=True)
class CropParams:
    max_area: float = 0.5  # no crop where the boxes together cover more of the frame than this
    threshold: float = 0.5  # what counts as subject in the first prediction
    min_part: float = 0.05  # parts smaller than this share of the largest are specks, not subjects
    margin: float = 0.15  # a part's box grows by this share of its size on every side...
    min_side: float = 0.5  # ...to at least this multiple of the network's input size (pixels)...
    aspect: float = 4 / 3  # ...and to at most this ratio of its sides (the network saw photos)
    slack: float = 0.1  # a box that is set grows by this share more, so a small move stays inside
    keep: float = 0.6  # a box stays while what it must hold fills at least this share of it
    max_boxes: int = 3  # more parts than this: one box around them all
    feather: float = 0.1  # the crop's weight rises from 0 to 1 over this share of the box from its edges
    grid: float = 2.0  # the merged prediction's long side, in multiples of the network's input size
    refresh: int = 30  # live: the whole frame is looked at again every this many frames


# Live use crops wherever a subject is found, with tighter margins: at the live input sizes (128²,
# 192²) any crop gains the network pixels, and a box that the subject outgrows is set again from
# the next frame (README, "Small subjects")
LIVE_CROP = CropParams(max_area=float("inf"), margin=0.08, slack=0.05)


def grid_size(height: int, width: int, input_size: int, params: CropParams = CropParams()) -> tuple[int, int]:
    """The merged prediction's (h, w): the frame's shape, ``grid`` times the network's input size
    on its long side, never larger than the frame."""
    scale = min(1.0, params.grid * input_size / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def _area(box: Box) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def _overlap(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _union(a: Box, b: Box) -> Box:
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


def _contains(outer: Box, inner: Box) -> bool:
    return outer[0] <= inner[0] and outer[1] <= inner[1] and outer[2] >= inner[2] and outer[3] >= inner[3]


def _grow(box: Box, share: float, min_side: float, aspect: float) -> Box:
    """``box`` grown by ``share`` of its size on every side, then to ``min_side`` and to a ratio
    of its sides of at most ``aspect``, around the same centre."""
    w, h = box[2] - box[0], box[3] - box[1]
    w, h = max(w * (1 + 2 * share), min_side), max(h * (1 + 2 * share), min_side)
    w, h = max(w, h / aspect), max(h, w / aspect)
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2


def _on_frame(box: Box, height: int, width: int) -> Box:
    return max(0.0, box[0]), max(0.0, box[1]), min(float(width), box[2]), min(float(height), box[3])


def subject_boxes(pred: np.ndarray, height: int, width: int, input_size: int,
                  params: CropParams = CropParams()) -> list[Box]:
    """Boxes around the subject(s) of a prediction of the whole frame: pred [h,w] f32 0..1 (any
    size: it covers the frame, squeezed or not) -> boxes in the frame's pixels, with their
    margins, at most ``max_boxes``; [] where nothing is above ``threshold``."""
    mask = (pred >= params.threshold).astype(np.uint8)
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count <= 1:
        return []
    parts = stats[1:]  # x, y, w, h, area (in the prediction's pixels)
    parts = parts[parts[:, 4] >= params.min_part * parts[:, 4].max()]
    sx, sy = width / pred.shape[1], height / pred.shape[0]
    side = params.min_side * input_size
    boxes = [_grow((float(x * sx), float(y * sy), float((x + w) * sx), float((y + h) * sy)), params.margin, side,
                   params.aspect) for x, y, w, h, _ in parts.tolist()]
    merged = True
    while merged and len(boxes) > 1:  # overlapping boxes become one
        merged = False
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                if _overlap(boxes[i], boxes[j]):
                    boxes[i] = _union(boxes[i], boxes.pop(j))
                    merged = True
                    break
            if merged:
                break
    if len(boxes) > params.max_boxes:
        whole = boxes[0]
        for box in boxes[1:]:
            whole = _union(whole, box)
        boxes = [whole]
    return sorted(boxes)


class BoxTracker:
    """The boxes of successive frames, steadied: ``update`` takes the boxes a frame needs (from
    ``subject_boxes``) and returns the boxes to crop. A box is kept as long as a box needed lies
    inside it and fills at least ``keep`` of its area; a needed box that no kept box holds so is
    set afresh (grown by ``slack``), and kept boxes that hold none are dropped: a part that comes
    and goes (a lamp the network sees in some frames) does not move the others."""

    def __init__(self, params: CropParams = CropParams()):
        self.params = params
        self.boxes: list[Box] = []

    def update(self, needed: list[Box]) -> list[Box]:
        boxes: list[Box] = []
        for new in needed:
            holds = [old for old in self.boxes if old not in boxes and _contains(old, new)
                     and _area(new) >= self.params.keep * _area(old)]
            boxes.append(holds[0] if holds else self._set(new))
        self.boxes = sorted(boxes)
        return self.boxes

    def _set(self, box: Box) -> Box:
        return _grow(box, self.params.slack, 0.0, float("inf"))


def covered(boxes: list[Box], height: int, width: int) -> float:
    """The share of the frame the boxes cover (counted on the frame; overlaps counted twice)."""
    return sum(_area(_on_frame(box, height, width)) for box in boxes) / (height * width)


def merge(crops: torch.Tensor, boxes: list[list[Box]], height: int, width: int, grid: tuple[int, int],
          feather: float) -> torch.Tensor:
    """Each frame's crop predictions put together into a prediction of the whole frame on
    ``grid`` (h, w), background (0) outside the boxes.

    crops: [N,1,S,S] f32 0..1, one per box, in the order of ``boxes`` (one list of boxes in frame
    pixels per frame, B in all); height, width: the frame's. Inside a box the crop's prediction
    fades in over the box's outer ``feather`` share (not where the box reaches past the frame's
    edge); where boxes overlap the larger value counts. Returns [B,1,gh,gw] f32 0..1 on the
    crops' device (zeros for a frame without boxes).
    """
    device = crops.device
    out = torch.zeros(len(boxes), 1, *grid, device=device)
    # the grid's pixel centres in frame pixels
    ys = (torch.arange(grid[0], device=device, dtype=torch.float32) + 0.5) * (height / grid[0])
    xs = (torch.arange(grid[1], device=device, dtype=torch.float32) + 0.5) * (width / grid[1])
    k = 0
    for b, frame_boxes in enumerate(boxes):
        for box in frame_boxes:
            u = (xs - box[0]) / (box[2] - box[0])  # 0..1 across the box
            v = (ys - box[1]) / (box[3] - box[1])
            sample = torch.stack(torch.broadcast_tensors(2 * u[None, :] - 1, 2 * v[:, None] - 1), dim=-1)
            placed = F.grid_sample(crops[k:k + 1].float(), sample[None], mode="bilinear", padding_mode="border",
                                   align_corners=False)  # [1,1,gh,gw]
            weight = _ramp(v, feather, box[1] <= 0, box[3] >= height)[:, None] * \
                _ramp(u, feather, box[0] <= 0, box[2] >= width)[None, :]
            torch.maximum(out[b:b + 1], placed.mul_(weight), out=out[b:b + 1])
            k += 1
    return out.clamp_(0.0, 1.0)


def _ramp(t: torch.Tensor, feather: float, open_low: bool, open_high: bool) -> torch.Tensor:
    """Weight along one axis of a box: t 0..1 inside it, rising over ``feather`` from each end
    (an end past the frame's edge is open: no ramp there), 0 outside."""
    inside = ((t >= 0) & (t <= 1)).float()
    if feather <= 0:
        return inside
    low = torch.ones_like(t) if open_low else (t / feather).clamp(0, 1)
    high = torch.ones_like(t) if open_high else ((1 - t) / feather).clamp(0, 1)
    return inside * torch.minimum(low, high)


class SubjectCrop:
    """The crop pass over one video's frames, in order (it keeps their boxes from frame to frame):
    network predictions in, predictions of the whole frame on ``grid`` out, for the matte step.
    ``boxes`` holds the boxes each frame of the last call was cropped to."""

    def __init__(self, segmenter: Segmenter, height: int, width: int, params: CropParams = CropParams()):
        self.segmenter = segmenter
        self.height, self.width = height, width
        self.params = params
        self.grid = grid_size(height, width, segmenter.input_size, params)
        self.tracker = BoxTracker(params)
        self.boxes: list[list[Box]] = []
        self._count = 0  # live frames seen

    def __call__(self, frames: torch.Tensor, first: torch.Tensor) -> torch.Tensor:
        """Files: frames [B,H,W,3] uint8 and the network's look at each whole frame, first [B,1,S,S]
        f32 (both on the segmenter's device) -> [B,1,gh,gw] f32 0..1: inside the subject's boxes
        what the network saw there, background outside them; the first look, resized, for
        frames where the subject is large (or absent). ``first`` itself where no frame of the
        batch was cropped."""
        self.boxes = [self._track(pred) for pred in first[:, 0].float().cpu().numpy()]
        return self._merge(frames, first, self.boxes)

    def live(self, frames: torch.Tensor) -> torch.Tensor:
        """Live, one pass a frame: frames [1,H,W,3] uint8 -> [1,1,gh,gw] f32 0..1 ([1,1,S,S]
        where nothing was cropped). The network
        looks at the boxes found in the previous frame's prediction; at the whole frame (and then
        at the boxes it finds there) where there are none, and every ``refresh`` frames."""
        boxes = list(self.tracker.boxes)
        if boxes and self._count % self.params.refresh:
            merged = self._look_at(frames, [boxes])
            self._track(merged[0, 0].cpu().numpy())  # the next frame's boxes
            self.boxes = [boxes]
        else:
            first = self.segmenter.predict_lowres(frames)
            self.boxes = [self._track(first[0, 0].float().cpu().numpy())]
            merged = self._merge(frames, first, self.boxes)
        self._count += 1
        return merged

    def _track(self, pred: np.ndarray) -> list[Box]:
        """The boxes to crop for a frame whose prediction of the whole frame is ``pred`` [h,w]."""
        needed = subject_boxes(pred, self.height, self.width, self.segmenter.input_size, self.params)
        if covered(needed, self.height, self.width) > self.params.max_area:
            needed = []  # the subject is large enough in the frame: one look is enough
        return list(self.tracker.update(needed))

    def _merge(self, frames: torch.Tensor, first: torch.Tensor, boxes: list[list[Box]]) -> torch.Tensor:
        if not any(boxes):  # no crop: the first look as it is (the matte step takes either size)
            return first
        out = resize(first.float(), self.grid)
        cropped = self._look_at(frames, boxes)
        for b, frame_boxes in enumerate(boxes):
            if frame_boxes:
                out[b] = cropped[b]
        return out

    def _look_at(self, frames: torch.Tensor, boxes: list[list[Box]]) -> torch.Tensor:
        """The network on every box of each frame (``boxes``: one list per frame of ``frames``
        [B,H,W,3]), merged: [B,1,gh,gw], background outside the boxes."""
        index = torch.tensor([b for b, frame_boxes in enumerate(boxes) for _ in frame_boxes], device=frames.device)
        # in calls of the frame loop's batch, so the network sees no new input shape
        crops = self.segmenter.predict_boxes(frames[index], _tensor([box for fb in boxes for box in fb]), len(frames))
        return merge(crops, boxes, self.height, self.width, self.grid, self.params.feather)


def _tensor(boxes: list[Box]) -> torch.Tensor:
    return torch.tensor([[float(v) for v in box] for box in boxes], dtype=torch.float32)
