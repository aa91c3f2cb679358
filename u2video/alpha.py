"""From the network's low-resolution predictions to a steady, sharp, full-resolution alpha matte.

Three pure steps, on whatever device the tensors are on (nothing here asks where):

1. ``smooth``: each frame's prediction is averaged with those of the frames around it (in files,
   frames on both sides, so nothing lags; live, past frames only). A neighbour counts, pixel by
   pixel, only where the image did not change between it and the frame being finished, and only
   where its prediction does not disagree strongly with that frame's own: where the subject
   moved, the frame's own prediction is taken as it is. A scene cut ends the window.
2. ``refine``: the smoothed prediction is upsampled to the frame guided by the full-resolution
   image (a colour fast guided filter, He & Sun 2015), within the band where the prediction is
   uncertain, so edges follow the image's contours instead of a blurred 320-pixel grid.
3. ``hold``: frame by frame at full resolution, a pixel whose (blurred) image did not change
   keeps almost all of its previous finished matte, unless the new matte differs a lot there. It
   steadies what the window and refinement leave: the refined edge follows sensor noise.

The window lives in a ``MatteWindow`` and the hold's state in a ``HoldState``, both owned by the
frame loop's ``MatteStage``; the functions themselves keep nothing. ``benchmarks/quality.py``
measures each step and chose the constants below (README, "Steadier mattes").
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .config import MatteConfig
from .filters import area, box_mean, resize, separable

GUIDE_SIZE = 320  # the long side of the small grey image that measures change between frames
# exp(-x) of a larger x is below 1e-26, nothing beside a weight of 1; capping x keeps exp out of
# subnormal results, which made it 6x slower on the CPU
_EXPONENT_CAP = 60.0


@dataclass(frozen=True)
class SmoothParams:
    radius: int = 6  # frames each side of the centre (0: off)
    # image change (0..1, small blurred grey) at which a neighbour's weight falls to 1/e
    tolerance: float = 0.03
    # difference between a neighbour's prediction and the centre's at which its weight falls to
    # 1/e: a subject that arrives where the image barely changed (similar colours) is not
    # averaged away, it shows up in its first frame
    disagreement: float = 0.3
    cut: float = 0.15  # mean image change (0..1) between neighbours that counts as a scene cut


@dataclass(frozen=True)
class HoldParams:
    keep: float = 0.995  # a still pixel keeps up to this share of its previous finished matte...
    tolerance: float = 0.015  # ...falling to 1/e of it where its blurred image changed this much (0..1)...
    disagreement: float = 0.5  # ...or where the new matte differs from the previous one by this much
    sigma: float = 2.0  # blur (pixels at full resolution) before comparing images
    cut: float = 0.15  # mean image change (0..1) from the previous frame that starts afresh


@dataclass(frozen=True)
class RefineParams:
    fit_scale: float = 0.75  # the filter is fitted at this multiple of the network's input size
    radius: int = 3  # box radius at the fitting size
    eps: float = 1e-4  # regularisation: lower follows weaker image edges
    # how much of the refined matte is used: min(1, band·p·(1-p)) of the prediction p (dilated by
    # a pixel), i.e. all of it where 0.15 < p < 0.85, none where the prediction is sure (0 or 1)
    band: float = 8.0


@dataclass(frozen=True)
class HoldState:
    """What ``hold`` carries from one finished frame to the next."""

    alpha: torch.Tensor  # [1,1,H,W] the previous finished matte
    guide: torch.Tensor  # [1,1,H,W] its ``still_guide``


def _grey(frames: torch.Tensor) -> torch.Tensor:
    """[B,3,H,W] RGB -> [B,1,H,W] luma (BT.601 weights), in one new plane."""
    return (frames[:, 0:1] * 0.299).add_(frames[:, 1:2], alpha=0.587).add_(frames[:, 2:3], alpha=0.114)


def _max3(x: torch.Tensor) -> torch.Tensor:
    """3x3 maximum of [B,C,H,W], edges replicated (shifted maxima: cheaper than max_pool2d on CPU)."""
    padded = F.pad(x, (1, 1, 1, 1), mode="replicate")
    rows = torch.maximum(torch.maximum(padded[..., :-2], padded[..., 1:-1]), padded[..., 2:])
    return torch.maximum(torch.maximum(rows[..., :-2, :], rows[..., 1:-1, :]), rows[..., 2:, :])


def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of [B,C,H,W] (kernel out to 3 sigma), edges replicated."""
    radius = max(1, math.ceil(3 * sigma))
    taps = [math.exp(-0.5 * (i / sigma) ** 2) for i in range(-radius, radius + 1)]
    return separable(x, [t / sum(taps) for t in taps])


def to_float(frames: torch.Tensor, device: torch.device) -> torch.Tensor:
    """frames [B,H,W,3] uint8 (host) -> [B,3,H,W] f32 0..1 on ``device``."""
    return frames.to(device, non_blocking=True).permute(0, 3, 1, 2).float().div_(255)


def small_guide(frames: torch.Tensor) -> torch.Tensor:
    """frames [B,3,H,W] f32 0..1 -> grey [B,1,h,w] with the long side GUIDE_SIZE (never larger than
    the frame), lightly blurred so that sensor noise does not count as change."""
    height, width = frames.shape[-2:]
    scale = min(1.0, GUIDE_SIZE / max(height, width))
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    # shrunk, then grey: the same as the other way round (both are linear), on fewer pixels
    return separable(_grey(area(frames, size)), [1 / 3] * 3)


def still_guide(frames: torch.Tensor, params: HoldParams = HoldParams()) -> torch.Tensor:
    """frames [B,3,H,W] f32 0..1 -> blurred grey [B,1,H,W] at full resolution, what ``hold`` compares."""
    return _gaussian_blur(_grey(frames), params.sigma)


def pair_weights(preds: torch.Tensor, guides: torch.Tensor, pred: torch.Tensor, guide: torch.Tensor,
                 params: SmoothParams) -> torch.Tensor:
    """How much each of T frames counts towards another's smoothed prediction, pixel by pixel,
    before scene cuts: preds [T,1,S,S] and guides [T,1,h,w] against one frame's pred [1,1,S,S]
    and guide [1,1,h,w] -> [T,1,S,S] in 0..1. Symmetric: frame a's weight for b is b's for a."""
    change = separable((guides - guide).abs_(), [1 / 3] * 3)  # [T,1,h,w]
    exponent = resize(change.div_(params.tolerance).square_(), preds.shape[-2:])  # [T,1,S,S]
    exponent.add_((preds - pred).div_(params.disagreement).square_())
    return exponent.clamp_(max=_EXPONENT_CAP).neg_().exp_()


def calm_steps(guides: torch.Tensor, params: SmoothParams) -> torch.Tensor:
    """guides [T,1,h,w] in order -> [T-1], 1 where the step from each frame to the next is no
    scene cut, else 0 (a tensor, so that the host never waits for the device here)."""
    return ((guides[1:] - guides[:-1]).abs().mean(dim=(1, 2, 3)) < params.cut).float()


def smooth(preds: torch.Tensor, guides: torch.Tensor, centre: int, params: SmoothParams,
           weights: torch.Tensor | None = None, calm: torch.Tensor | None = None) -> torch.Tensor:
    """Temporal smoothing of one frame.

    preds: [T,1,S,S] f32 0..1, the network's predictions for a window of T frames in order;
    guides: [T,1,h,w] from ``small_guide``; centre: the index of the frame to finish. ``weights``
    ([T,1,S,S], ``pair_weights`` against the centre; the centre's own is ignored) and ``calm``
    ([T-1], ``calm_steps``) may be passed in when the caller kept them from earlier frames.
    Returns [1,1,S,S] f32 0..1.
    """
    if params.radius == 0 or preds.shape[0] == 1:
        return preds[centre:centre + 1]
    if weights is None:
        weights = pair_weights(preds, guides, preds[centre:centre + 1], guides[centre:centre + 1], params)
    calm = calm_steps(guides, params) if calm is None else calm
    return _window_mean(list(preds.split(1)), list(weights.split(1)), calm, centre)


def _window_mean(preds: list[torch.Tensor], weights: list[torch.Tensor], calm: torch.Tensor,
                 centre: int) -> torch.Tensor:
    """sum(w·p) / sum(w) over a window's T predictions [1,1,S,S] with their ``pair_weights``
    [1,1,S,S] against the centre (whose own weight is 1), where frames beyond a scene cut
    (``calm`` [T-1]) weigh 0. Accumulated frame by frame in place: [T,1,S,S] temporaries cost
    more in fresh memory than in arithmetic."""
    # a cut between two neighbours ends the window on that side (frames across it don't count)
    calm = calm.to(preds[centre].dtype)
    before = calm[:centre].flip(0).cumprod(0).flip(0)  # frame i < centre: no cut from i to centre
    after = calm[centre:].cumprod(0)  # frame i > centre: no cut from centre to i
    in_window = torch.cat((before, calm.new_ones(1), after))  # [T]
    total, norm = preds[centre].clone(), torch.ones_like(preds[centre])
    for i, (pred, weight) in enumerate(zip(preds, weights)):
        if i != centre:
            weight = weight * in_window[i]
            total.addcmul_(weight, pred)
            norm.add_(weight)
    return total.div_(norm)


def hold(alpha: torch.Tensor, guide: torch.Tensor, state: HoldState | None,
         params: HoldParams = HoldParams()) -> tuple[torch.Tensor, HoldState]:
    """Motion-adaptive recursive smoothing at full resolution, one finished frame at a time, in order.

    alpha [1,1,H,W] f32 0..1 (refined or upsampled), guide [1,1,H,W] from ``still_guide``; returns
    the held alpha and the state for the next frame. Where the image did not change since the
    previous frame, the previous matte is kept almost entirely, so still areas stop flickering;
    where the image changed, or the new matte disagrees strongly, the new matte is taken, so a
    moving subject is followed at once. A scene cut, or a new frame size, starts afresh.

    Only consecutive frames are compared, so a change slower than ``tolerance`` per frame (a slow
    fade) is held back, and where the network revises its matte by a little (under
    ``disagreement``) while the image stays still, the old value fades out slowly: that is the
    price of steadiness, measured in the README ("Steadier mattes").
    """
    if state is None or params.keep == 0 or state.alpha.shape != alpha.shape:
        return alpha, HoldState(alpha, guide)
    # full-resolution planes: computed in place, as few new ones as the arithmetic allows
    change = (guide - state.guide).abs_()
    cut = change.mean() < params.cut  # a scene cut keeps nothing (a tensor: no wait for the device)
    step = state.alpha - alpha
    exponent = change.div_(params.tolerance).square_()
    exponent.add_(torch.div(step, params.disagreement).square_())
    keep = exponent.clamp_(max=_EXPONENT_CAP).neg_().exp_().mul_(params.keep).mul_(cut)
    held = step.mul_(keep).add_(alpha)  # alpha + keep * (previous - alpha)
    return held, HoldState(held, guide)


def _colour_guided_filter(pred: torch.Tensor, guide: torch.Tensor, radius: int, eps: float
                          ) -> tuple[torch.Tensor, torch.Tensor]:
    """Coefficients of the guided filter with a colour guide, at the guide's size.

    pred [B,1,h,w], guide I [B,3,h,w] -> (a [B,3,h,w], b [B,1,h,w]) such that a·I + b follows pred
    and the edges of I. The 3x3 covariance (symmetric) is inverted in closed form: adjugate over
    determinant.
    """
    r, g, bl = guide[:, 0:1], guide[:, 1:2], guide[:, 2:3]
    means = box_mean(torch.cat((guide, pred, guide * pred, r * r, r * g, r * bl, g * g, g * bl, bl * bl), dim=1), radius)
    mean_i, mean_p = means[:, 0:3], means[:, 3:4]
    cov_ip = means[:, 4:7] - mean_i * mean_p  # [B,3,h,w]
    mr, mg, mb = mean_i[:, 0:1], mean_i[:, 1:2], mean_i[:, 2:3]
    rr = means[:, 7:8] - mr * mr + eps
    rg = means[:, 8:9] - mr * mg
    rb = means[:, 9:10] - mr * mb
    gg = means[:, 10:11] - mg * mg + eps
    gb = means[:, 11:12] - mg * mb
    bb = means[:, 12:13] - mb * mb + eps
    adj_rr, adj_rg, adj_rb = gg * bb - gb * gb, gb * rb - rg * bb, rg * gb - gg * rb
    adj_gg, adj_gb, adj_bb = rr * bb - rb * rb, rb * rg - rr * gb, rr * gg - rg * rg
    # the matrix is a covariance plus eps on its diagonal, so det >= eps**3 but for rounding
    det = (rr * adj_rr + rg * adj_rg + rb * adj_rb).clamp_min(eps ** 3)
    cr, cg, cb = cov_ip[:, 0:1], cov_ip[:, 1:2], cov_ip[:, 2:3]
    a = torch.cat((adj_rr * cr + adj_rg * cg + adj_rb * cb,
                   adj_rg * cr + adj_gg * cg + adj_gb * cb,
                   adj_rb * cr + adj_gb * cg + adj_bb * cb), dim=1) / det
    return a, mean_p - (a * mean_i).sum(1, keepdim=True)


def refine(pred: torch.Tensor, frames: torch.Tensor, params: RefineParams = RefineParams()) -> torch.Tensor:
    """Guided upsampling of the prediction to the frames' resolution.

    pred: [B,1,S,S] f32 0..1; frames: [B,3,H,W] f32 0..1 (the guide). The filter is fitted at a
    size whose long side is ``fit_scale`` times the network's (about where the prediction still
    holds information), its coefficients are upsampled and applied to the full-resolution frame.
    Away from the prediction's uncertain band the plain upsampled prediction is kept, so textures
    inside the subject or the background cannot leak into the matte. Returns alpha [B,1,H,W] f32
    0..1 (float32 throughout: the closed-form inverse needs it).
    """
    height, width = frames.shape[-2:]
    scale = min(1.0, params.fit_scale * max(pred.shape[-2:]) / max(height, width))
    low = (max(1, round(height * scale)), max(1, round(width * scale)))
    a, b = _colour_guided_filter(resize(pred, low), area(frames, low),
                                 params.radius, params.eps)
    coefficients = resize(box_mean(torch.cat((a, b), dim=1), params.radius), (height, width))  # [B,4,H,W]
    refined = coefficients[:, 3:].clone()  # a·I + b, channel by channel in place
    for c in range(3):
        refined.addcmul_(coefficients[:, c:c + 1], frames[:, c:c + 1])
    # a light blur, so sensor noise in the frame does not become matte noise (the same as blurring
    # the frame, as the coefficients vary slowly, at a third of the cost)
    refined = separable(refined, [0.25, 0.5, 0.25]).clamp_(0.0, 1.0)
    band = _max3(params.band * pred * (1 - pred)).clamp_(0.0, 1.0)
    band = resize(band, (height, width))
    plain = resize(pred, (height, width))
    return plain.lerp_(refined, band)


def upsample(pred: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Plain bilinear upsampling, the per-frame baseline: [B,1,S,S] -> [B,1,H,W]."""
    return resize(pred, (height, width)).clamp_(0, 1)


class MatteWindow:
    """The sliding window of frames that ``smooth`` needs, kept by the frame loop.

    ``push`` one frame's (item, prediction [1,1,h,w], guide [1,1,h',w'] from ``small_guide``); it
    returns (item, smoothed prediction at the size of the latest pushed) for each frame whose
    window is complete, in order. ``flush`` returns the rest at the end. Frames must keep one
    size; the predictions may change theirs (the crop pass's grid, or the network's S×S). With
    ``lookahead`` False (live use) a frame is finished at once from past frames only.
    """

    def __init__(self, params: SmoothParams, lookahead: bool = True):
        self.params = params
        self.ahead = params.radius if lookahead else 0
        self._items: deque = deque()
        self._preds: deque = deque()
        self._guides: deque = deque()
        self._numbers: deque[int] = deque()  # each frame's number, counted from the first
        self._calm: deque[torch.Tensor] = deque()  # calm_steps from each frame to the next
        # pair_weights of two frames, by their numbers (lower first): each pair meets twice,
        # once as either frame's window is finished, and is computed once
        self._pairs: dict[tuple[int, int], torch.Tensor] = {}
        self._count = 0
        self._next = 0  # index (within the deques) of the next frame to finish

    def push(self, item: object, pred: torch.Tensor, guide: torch.Tensor) -> list[tuple[object, torch.Tensor]]:
        if self._preds and self._preds[-1].shape != pred.shape:
            # the crop pass went from the whole frame's prediction to its finer grid or back: the
            # predictions kept follow (their pair weights are made again at the new size)
            self._preds = deque(resize(p, pred.shape[-2:]) for p in self._preds)
            self._pairs.clear()
        if self._guides:
            self._calm.append(calm_steps(torch.cat((self._guides[-1], guide)), self.params))
        self._items.append(item)
        self._preds.append(pred)
        self._guides.append(guide)
        self._numbers.append(self._count)
        self._count += 1
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
        preds = list(self._preds)
        if self.params.radius == 0 or len(preds) == 1:
            alpha = preds[centre]
        else:
            alpha = _window_mean(preds, self._weights(centre), torch.cat(list(self._calm)), centre)
        out = (self._items[centre], alpha)
        self._next += 1
        while self._next > self.params.radius:  # drop what no later window reaches
            self._items.popleft()
            self._preds.popleft()
            self._guides.popleft()
            gone = self._numbers.popleft()
            if self._calm:
                self._calm.popleft()
            for pair in [p for p in self._pairs if gone in p]:
                del self._pairs[pair]
            self._next -= 1
        return out

    def _weights(self, centre: int) -> list[torch.Tensor]:
        """pair_weights [1,1,S,S] of every frame in the window against the centre (the centre's
        own: ones, unused), computing (all at once) only the pairs not met before."""
        mine = self._numbers[centre]
        pairs = [(min(n, mine), max(n, mine)) for n in self._numbers]
        missing = [i for i, pair in enumerate(pairs) if i != centre and pair not in self._pairs]
        if missing:
            preds = torch.cat([self._preds[i] for i in missing])
            guides = torch.cat([self._guides[i] for i in missing])
            fresh = pair_weights(preds, guides, self._preds[centre], self._guides[centre], self.params)
            for k, i in enumerate(missing):
                self._pairs[pairs[i]] = fresh[k:k + 1]
        ones = torch.ones_like(self._preds[centre])
        return [ones if i == centre else self._pairs[pair] for i, pair in enumerate(pairs)]


class MatteStage:
    """The frame loop's matte step: predictions in, finished full-resolution alpha out, in order.

    ``push(frames, preds, keys)`` takes a batch ([B,H,W,3] uint8 frames, on the device or the host, their
    predictions [B,1,S,S] on the device, one key per frame, e.g. its pts) and returns the frames
    whose window is complete: (frames [K,H,W,3] uint8, alpha [K,1,H,W] f32 0..1 on the device,
    keys). With smoothing on and look-ahead, a frame comes out ``smooth`` frames later;
    ``flush()`` returns the rest at the end.
    """

    def __init__(self, config: MatteConfig, lookahead: bool = True):
        self.config = config
        self.window = MatteWindow(SmoothParams(radius=config.smooth), lookahead)
        self.hold_params = HoldParams()
        self._held: HoldState | None = None
        self._batch = 1  # the most frames pushed at once: the most finished at once, also by flush

    def push(self, frames: torch.Tensor, preds: torch.Tensor, keys: list) -> tuple[torch.Tensor, torch.Tensor, list]:
        self._batch = max(self._batch, frames.shape[0])
        preds = preds.float()  # the guided filter's closed-form inverse needs float32
        if self.config.smooth == 0:  # no window: the frames are finished as they come
            return self._finish([((frames[i], keys[i]), preds[i:i + 1]) for i in range(frames.shape[0])])
        image = to_float(frames, preds.device)
        guides = small_guide(image)
        done = []
        for i in range(frames.shape[0]):
            done += self.window.push((frames[i], keys[i]), preds[i:i + 1], guides[i:i + 1])
        # without look-ahead (live) the frames finished are the ones just pushed: their float
        # image is reused instead of converted again
        return self._finish(done, image if self.window.ahead == 0 else None)

    def flush(self) -> tuple[torch.Tensor, torch.Tensor, list]:
        return self._finish(self.window.flush())

    def _finish(self, done: list, image: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, list]:
        """Refine and hold the frames of ``done`` ((frame, key), prediction); ``image``: their
        frames as ``to_float`` gives them, where the caller has it."""
        if not done:
            return torch.empty(0), torch.empty(0), []
        if len(done) > self._batch:  # flush's last window: a batch at a time, as the others were
            # (all at once, the refinement's full-resolution planes of 6 frames lifted a 640x480
            # run's peak memory by ~50 MiB at its very end)
            parts = [self._finish(done[i:i + self._batch]) for i in range(0, len(done), self._batch)]
            return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts]), sum((p[2] for p in parts), [])
        frames = torch.stack([item[0] for item, _ in done])  # [K,H,W,3] uint8 host
        preds = torch.cat([pred for _, pred in done])  # [K,1,S,S]
        height, width = frames.shape[1:3]
        if image is None and (self.config.refine or self.config.smooth):
            image = to_float(frames, preds.device)
        alpha = refine(preds, image) if self.config.refine else upsample(preds, height, width)
        if self.config.smooth:
            guides = still_guide(image, self.hold_params)
            held = []
            for i in range(alpha.shape[0]):
                one, self._held = hold(alpha[i:i + 1], guides[i:i + 1], self._held, self.hold_params)
                held.append(one)
            alpha = torch.cat(held)
        return frames, alpha, [item[1] for item, _ in done]
