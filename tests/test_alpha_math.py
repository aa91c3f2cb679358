"""The matte step's arithmetic (u2video/alpha.py) on tiny tensors, against independent plain
numpy versions of what the docstrings promise: the weighted window mean, the hold, the colour
guided filter, upsampling, and the order and timing of frames out of MatteWindow and MatteStage.
Fast (no model), so that mutation testing can run them for every mutant."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from u2video import alpha as A
from u2video.alpha import (HoldParams, HoldState, MatteStage, MatteWindow, RefineParams, SmoothParams,
                           calm_steps, hold, pair_weights, refine, small_guide, smooth, still_guide,
                           to_float, upsample)
from u2video.config import MatteConfig

CAP = 60.0  # the documented cap on the weights' exponent ("exp(-x) of a larger x is below 1e-26")


# ---------------------------------------------------------------- independent references (float64)

def f32(a) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


def np_(x: torch.Tensor) -> np.ndarray:
    return x.detach().double().numpy()


def ref_grey(rgb: np.ndarray) -> np.ndarray:
    """[3,H,W] -> [H,W], BT.601 luma."""
    return 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]


def ref_separable(x: np.ndarray, taps) -> np.ndarray:
    """2-D plane filtered with the 1-D kernel along both axes, edges replicated."""
    r, (h, w) = len(taps) // 2, x.shape
    p = np.pad(x, r, mode="edge")
    rows = sum(taps[k] * p[:, k:k + w] for k in range(len(taps)))
    return sum(taps[k] * rows[k:k + h, :] for k in range(len(taps)))


def ref_box_mean(x: np.ndarray, r: int) -> np.ndarray:
    h, w = x.shape
    out = np.empty_like(x, dtype=np.float64)
    for i in range(h):
        for j in range(w):
            out[i, j] = x[max(0, i - r):i + r + 1, max(0, j - r):j + r + 1].mean()
    return out


def ref_max3(x: np.ndarray) -> np.ndarray:
    h, w = x.shape
    p = np.pad(x, 1, mode="edge")
    return np.max([p[i:i + h, j:j + w] for i in range(3) for j in range(3)], axis=0)


def gauss_taps(sigma: float) -> list:
    radius = math.ceil(3 * sigma)  # out to 3 sigma
    taps = [math.exp(-0.5 * (i / sigma) ** 2) for i in range(-radius, radius + 1)]
    return [t / sum(taps) for t in taps]


def bilinear(x: np.ndarray, size) -> np.ndarray:
    """What filters.resize claims to be: PyTorch's bilinear, align_corners=False."""
    return F.interpolate(torch.from_numpy(np.asarray(x, np.float64))[None, None], size=tuple(size),
                         mode="bilinear", align_corners=False)[0, 0].numpy()


def area_shrink(x: np.ndarray, size) -> np.ndarray:
    """[C,H,W] averaged down to size (PyTorch's mode="area", as filters.area claims)."""
    return F.interpolate(torch.from_numpy(np.asarray(x, np.float64))[None], size=tuple(size), mode="area")[0].numpy()


def ref_pair_weight(pred, guide, pred_c, guide_c, p: SmoothParams) -> np.ndarray:
    change = ref_separable(np.abs(guide - guide_c), [1 / 3] * 3)
    exponent = bilinear((change / p.tolerance) ** 2, pred.shape) + ((pred - pred_c) / p.disagreement) ** 2
    return np.exp(-np.minimum(exponent, CAP))


def ref_smooth(preds: list, guides: list, c: int, p: SmoothParams) -> np.ndarray:
    """(p_c + sum w_i p_i) / (1 + sum w_i) over the neighbours not beyond a scene cut."""
    if p.radius == 0 or len(preds) == 1:
        return preds[c]
    calm = [np.abs(guides[k + 1] - guides[k]).mean() < p.cut for k in range(len(guides) - 1)]
    num, den = preds[c].astype(np.float64).copy(), np.ones_like(preds[c], dtype=np.float64)
    for i in range(len(preds)):
        lo, hi = min(i, c), max(i, c)
        if i != c and all(calm[lo:hi]):
            w = ref_pair_weight(preds[i], guides[i], preds[c], guides[c], p)
            num += w * preds[i]
            den += w
    return num / den


def ref_hold(alpha, guide, prev_alpha, prev_guide, p: HoldParams) -> np.ndarray:
    if prev_alpha is None or p.keep == 0 or prev_alpha.shape != alpha.shape:
        return alpha
    change = np.abs(guide - prev_guide)
    if not change.mean() < p.cut:
        return alpha
    exponent = (change / p.tolerance) ** 2 + ((prev_alpha - alpha) / p.disagreement) ** 2
    keep = p.keep * np.exp(-np.minimum(exponent, CAP))
    return (1 - keep) * alpha + keep * prev_alpha


def ref_guided_coefficients(pred: np.ndarray, image: np.ndarray, r: int, eps: float):
    """He's colour guided filter: per pixel a = (Sigma + eps I)^-1 cov(I, p), b = mean p - a . mean I."""
    _, h, w = image.shape
    mean_i = np.stack([ref_box_mean(image[c], r) for c in range(3)])
    mean_p = ref_box_mean(pred, r)
    cov = np.stack([ref_box_mean(image[c] * pred, r) - mean_i[c] * mean_p for c in range(3)])
    sigma = np.empty((h, w, 3, 3))
    for i in range(3):
        for j in range(3):
            sigma[..., i, j] = ref_box_mean(image[i] * image[j], r) - mean_i[i] * mean_i[j] + eps * (i == j)
    a = np.linalg.solve(sigma, cov.transpose(1, 2, 0)[..., None])[..., 0].transpose(2, 0, 1)
    return a, mean_p - (a * mean_i).sum(0)


def ref_refine(pred: np.ndarray, frame: np.ndarray, p: RefineParams, clamp: bool = True) -> np.ndarray:
    """pred [S1,S2], frame [3,H,W] -> [H,W]: the filter fitted where the long side is fit_scale x the
    prediction's (never above the frame's), its smoothed coefficients applied at full size, lightly
    blurred, used within the band min(1, band·p·(1-p)) dilated by a pixel."""
    _, h, w = frame.shape
    scale = min(1.0, p.fit_scale * max(pred.shape) / max(h, w))
    low = (max(1, round(h * scale)), max(1, round(w * scale)))
    a, b = ref_guided_coefficients(bilinear(pred, low), area_shrink(frame, low), p.radius, p.eps)
    a = np.stack([bilinear(ref_box_mean(a[c], p.radius), (h, w)) for c in range(3)])
    b = bilinear(ref_box_mean(b, p.radius), (h, w))
    refined = ref_separable((a * frame).sum(0) + b, [0.25, 0.5, 0.25])
    refined = np.clip(refined, 0, 1) if clamp else refined
    band = bilinear(np.clip(ref_max3(p.band * pred * (1 - pred)), 0, 1), (h, w))
    plain = bilinear(pred, (h, w))
    return plain + band * (refined - plain)


def noisy_frames(n: int, h: int = 16, w: int = 16, seed: int = 0, amplitude: float = 3) -> torch.Tensor:
    """[n,h,w,3] uint8: a fixed textured picture plus a little noise per frame."""
    gen = np.random.default_rng(seed)
    base = gen.uniform(60, 190, size=(h, w, 3))
    frames = base + gen.uniform(-amplitude, amplitude, size=(n, h, w, 3))
    return torch.from_numpy(np.round(frames).astype(np.uint8))


def frame_image(frames: torch.Tensor) -> np.ndarray:
    """[n,h,w,3] uint8 -> [n,3,h,w] float64 0..1."""
    return frames.numpy().astype(np.float64).transpose(0, 3, 1, 2) / 255


# ---------------------------------------------------------------- grey, blurs, guides

def test_to_float_makes_channels_first_floats_from_0_to_1():
    frames = torch.tensor([[[[0, 51, 255], [255, 102, 1]]]], dtype=torch.uint8)  # [1,1,2,3]
    out = to_float(frames, torch.device("cpu"))
    assert out.shape == (1, 3, 1, 2) and out.dtype == torch.float32
    assert torch.allclose(out[0, :, 0, 0], torch.tensor([0.0, 0.2, 1.0]))
    assert torch.allclose(out[0, :, 0, 1], torch.tensor([1.0, 0.4, 1 / 255]))
    assert to_float(frames, torch.device("meta")).device.type == "meta"  # on the device asked for


def test_small_guide_of_a_small_frame_is_its_grey_lightly_blurred_at_full_size():
    gen = np.random.default_rng(1)
    image = gen.uniform(0, 1, size=(2, 3, 7, 9))
    out = small_guide(f32(image))
    assert out.shape == (2, 1, 7, 9) and out.dtype == torch.float32
    for b in range(2):
        want = ref_separable(ref_grey(image[b]), [1 / 3] * 3)
        assert np.allclose(np_(out[b, 0]), want, atol=1e-6)


def test_small_guide_shrinks_the_long_side_to_320_by_averaging():
    gen = np.random.default_rng(2)
    image = gen.uniform(0, 1, size=(1, 3, 8, 640))
    out = small_guide(f32(image))
    assert out.shape == (1, 1, 4, 320)
    want = ref_separable(ref_grey(area_shrink(image[0], (4, 320))), [1 / 3] * 3)
    assert np.allclose(np_(out[0, 0]), want, atol=1e-6)
    # a side that would round to nothing keeps one pixel
    assert small_guide(torch.rand(1, 3, 1, 1000)).shape == (1, 1, 1, 320)
    assert small_guide(torch.rand(1, 3, 2, 1000)).shape == (1, 1, 1, 320)
    assert small_guide(torch.rand(1, 3, 700, 3)).shape == (1, 1, 320, 1)


def test_still_guide_is_the_grey_blurred_out_to_three_sigma():
    image = np.zeros((1, 3, 21, 21))
    image[0, :, 10, 10] = 1.0  # a white dot: the blur's kernel, whole, around it
    out = np_(still_guide(f32(image), HoldParams(sigma=2.0))[0, 0])
    taps = np.array(gauss_taps(2.0))  # 13 taps, radius 6
    want = np.zeros((21, 21))
    want[4:17, 4:17] = np.outer(taps, taps)
    assert np.allclose(out, want, atol=1e-7)
    assert out[10, 3] == 0 and out[10, 4] > 1e-4  # nothing beyond 3 sigma
    assert out.sum() == pytest.approx(1.0, abs=1e-5)


def test_still_guide_follows_sigma_and_replicates_the_edges():
    gen = np.random.default_rng(3)
    image = gen.uniform(0, 1, size=(2, 3, 9, 11))
    for sigma in (0.3, 1.0, 1.5):
        out = still_guide(f32(image), HoldParams(sigma=sigma))
        assert out.shape == (2, 1, 9, 11)
        for b in range(2):
            want = ref_separable(ref_grey(image[b]), gauss_taps(sigma))
            assert np.allclose(np_(out[b, 0]), want, atol=1e-6), sigma


def test_grey_weights_the_channels_as_bt601():
    frame = torch.tensor([0.2, 0.6, 1.0]).view(1, 3, 1, 1)
    assert A._grey(frame).item() == pytest.approx(0.299 * 0.2 + 0.587 * 0.6 + 0.114 * 1.0, abs=1e-7)
    assert A._grey(frame).shape == (1, 1, 1, 1)


def test_max3_is_the_maximum_over_each_pixels_3x3_neighbourhood():
    gen = np.random.default_rng(4)
    x = gen.uniform(-1, 0, size=(2, 2, 5, 7))  # negative: zero padding would show at the edges
    out = A._max3(f32(x))
    assert out.shape == x.shape
    for b in range(2):
        for c in range(2):
            assert np.allclose(np_(out[b, c]), ref_max3(x[b, c]), atol=0)


# ---------------------------------------------------------------- pair weights, cuts, smooth

def test_pair_weights_fall_with_image_change_and_with_disagreement():
    gen = np.random.default_rng(5)
    params = SmoothParams(tolerance=0.05, disagreement=0.3)
    guides = 0.5 + gen.uniform(-0.04, 0.04, size=(4, 1, 6, 6))
    preds = gen.uniform(0.2, 0.8, size=(4, 1, 6, 6))
    guide_c, pred_c = guides[1:2], preds[1:2]
    out = pair_weights(f32(preds), f32(guides), f32(pred_c), f32(guide_c), params)
    assert out.shape == (4, 1, 6, 6) and out.dtype == torch.float32
    for t in range(4):
        want = ref_pair_weight(preds[t, 0], guides[t, 0], pred_c[0, 0], guide_c[0, 0], params)
        assert np.allclose(np_(out[t, 0]), want, atol=1e-5, rtol=1e-4), t
    assert (out[1] == 1).all()  # a frame against itself counts fully
    assert 0.01 < out[[0, 2, 3]].min() and out[[0, 2, 3]].max() < 0.999  # the test is not trivial


def test_pair_weights_are_one_over_e_at_the_tolerance_and_at_the_disagreement():
    params = SmoothParams(tolerance=0.1, disagreement=0.4)
    flat = torch.full((1, 1, 5, 5), 0.5)
    changed = flat + 0.1  # a uniform change of exactly the tolerance
    assert torch.allclose(pair_weights(flat, changed, flat, flat, params), torch.full_like(flat, math.exp(-1)), atol=1e-5)
    assert torch.allclose(pair_weights(flat + 0.4, flat, flat, flat, params), torch.full_like(flat, math.exp(-1)), atol=1e-5)
    both = pair_weights(flat - 0.4, changed, flat, flat, params)  # the exponents add
    assert torch.allclose(both, torch.full_like(flat, math.exp(-2)), atol=1e-5)


def test_pair_weights_measure_change_on_the_guide_and_resize_it_to_the_prediction():
    gen = np.random.default_rng(6)
    params = SmoothParams(tolerance=0.05, disagreement=0.3)
    guides = 0.5 + gen.uniform(-0.05, 0.05, size=(2, 1, 10, 12))
    preds = gen.uniform(0.3, 0.7, size=(2, 1, 5, 4))
    out = pair_weights(f32(preds), f32(guides), f32(preds[:1]), f32(guides[:1]), params)
    assert out.shape == (2, 1, 5, 4)
    want = ref_pair_weight(preds[1, 0], guides[1, 0], preds[0, 0], guides[0, 0], params)
    assert np.allclose(np_(out[1, 0]), want, atol=1e-5, rtol=1e-4)


def test_pair_weights_of_extreme_change_stay_small_but_never_zero():
    params = SmoothParams()
    zero, one = torch.zeros(1, 1, 4, 4), torch.ones(1, 1, 4, 4)
    out = pair_weights(one, one, zero, zero, params)
    assert (out > 0).all() and (out < 1e-26).all()
    assert torch.allclose(out, torch.full_like(out, math.exp(-CAP)), rtol=1e-4, atol=0)


def test_calm_steps_compares_the_mean_change_of_consecutive_frames_with_the_cut():
    guides = torch.zeros(5, 1, 2, 2)
    guides[1] = 0.25  # mean change 0.25: exactly the cut, which counts as a cut
    guides[2] = 0.25  # no change
    guides[3] = 0.25
    guides[3, 0, 0, 0] = 0.75  # mean change 0.125: calm
    guides[4] = guides[3] + 0.5  # mean change 0.5: a cut
    out = calm_steps(guides, SmoothParams(cut=0.25))
    assert out.dtype == torch.float32 and out.shape == (4,)
    assert out.tolist() == [0.0, 1.0, 1.0, 0.0]
    assert calm_steps(guides, SmoothParams(cut=0.6)).tolist() == [1.0, 1.0, 1.0, 1.0]


def test_smooth_is_the_weighted_mean_of_the_window_with_the_centre_counting_fully():
    gen = np.random.default_rng(7)
    params = SmoothParams(radius=3, tolerance=0.05, disagreement=0.3)
    preds = gen.uniform(0.2, 0.8, size=(7, 1, 6, 6))
    guides = 0.5 + gen.uniform(-0.03, 0.03, size=(7, 1, 6, 6))
    for centre in (0, 2, 3, 6):
        out = smooth(f32(preds), f32(guides), centre, params)
        assert out.shape == (1, 1, 6, 6) and out.dtype == torch.float32
        want = ref_smooth(list(preds[:, 0]), list(guides[:, 0]), centre, params)
        assert np.allclose(np_(out[0, 0]), want, atol=1e-5), centre
        assert (out - f32(preds[centre])).abs().max() > 0.01  # the neighbours were at work


def test_smooth_stops_at_scene_cuts_on_either_side():
    gen = np.random.default_rng(8)
    params = SmoothParams(radius=4, tolerance=0.05, disagreement=0.5, cut=0.15)
    preds = gen.uniform(0.3, 0.7, size=(9, 1, 4, 4))
    guides = np.full((9, 1, 4, 4), 0.2) + gen.uniform(-0.02, 0.02, size=(9, 1, 4, 4))
    guides[2:] += 0.5  # a cut between frames 1 and 2
    guides[7:] -= 0.4  # and another between 6 and 7
    for centre in range(9):
        out = smooth(f32(preds), f32(guides), centre, params)
        want = ref_smooth(list(preds[:, 0]), list(guides[:, 0]), centre, params)
        assert np.allclose(np_(out[0, 0]), want, atol=1e-5), centre
    # frames 0,1 alone on their side: the others do not count at all
    alone = smooth(f32(preds[:2]), f32(guides[:2]), 1, params)
    assert torch.allclose(smooth(f32(preds), f32(guides), 1, params), alone, atol=1e-6)
    middle = smooth(f32(preds[2:7]), f32(guides[2:7]), 2, params)
    assert torch.allclose(smooth(f32(preds), f32(guides), 4, params), middle, atol=1e-6)


def test_smooth_takes_the_centre_as_it_is_when_off_or_alone():
    preds = torch.rand(5, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    guides = torch.full((5, 1, 4, 4), 0.5)
    assert torch.equal(smooth(preds, guides, 2, SmoothParams(radius=0)), preds[2:3])
    assert torch.equal(smooth(preds[3:4], guides[3:4], 0, SmoothParams(radius=3)), preds[3:4])
    assert not torch.allclose(smooth(preds, guides, 2, SmoothParams(radius=2, disagreement=10.0)), preds[2:3])


def test_smooth_uses_the_weights_and_calm_steps_it_is_given():
    preds = torch.tensor([0.0, 0.5, 1.0]).view(3, 1, 1, 1).expand(3, 1, 2, 2).contiguous()
    guides = torch.zeros(3, 1, 2, 2)
    weights = torch.tensor([1.0, 123.0, 0.5]).view(3, 1, 1, 1).expand(3, 1, 2, 2).contiguous()
    params = SmoothParams(radius=1)
    calm = torch.ones(2)
    # (0.5·1 + 1·0 + 0.5·1) / (1 + 1 + 0.5): the centre's own weight is 1, whatever is passed
    out = smooth(preds, guides, 1, params, weights=weights, calm=calm)
    assert torch.allclose(out, torch.full((1, 1, 2, 2), 1.0 / 2.5))
    out = smooth(preds, guides, 1, params, weights=weights, calm=torch.tensor([0.0, 1.0]))  # frame 0 cut off
    assert torch.allclose(out, torch.full((1, 1, 2, 2), 1.0 / 1.5))
    out = smooth(preds, guides, 1, params, weights=weights, calm=torch.tensor([1.0, 0.0]))  # frame 2 cut off
    assert torch.allclose(out, torch.full((1, 1, 2, 2), 0.5 / 2.0))


def test_window_mean_drops_every_frame_beyond_a_cut_however_far():
    preds = [torch.full((1, 1, 1, 1), float(v)) for v in (1, 2, 4, 8, 16, 32, 64)]
    weights = [torch.ones(1, 1, 1, 1)] * 7
    # cuts between frames 1|2 and 4|5: frame 3's window is frames 2..4
    calm = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0, 1.0])
    assert A._window_mean(preds, weights, calm, 3).item() == pytest.approx((4 + 8 + 16) / 3)
    assert A._window_mean(preds, weights, calm, 0).item() == pytest.approx((1 + 2) / 2)
    assert A._window_mean(preds, weights, calm, 6).item() == pytest.approx((32 + 64) / 2)
    assert A._window_mean(preds, weights, torch.ones(6), 5).item() == pytest.approx(127 / 7)


# ---------------------------------------------------------------- hold

def test_hold_starts_from_the_new_matte_without_a_previous_one():
    alpha, guide = torch.rand(1, 1, 4, 4), torch.rand(1, 1, 4, 4)
    held, state = hold(alpha, guide, None)
    assert torch.equal(held, alpha) and torch.equal(state.alpha, alpha) and torch.equal(state.guide, guide)


def test_hold_keeps_most_of_the_previous_matte_where_nothing_changed():
    gen = np.random.default_rng(9)
    params = HoldParams(keep=0.9, tolerance=0.02, disagreement=0.5, cut=0.15)
    prev_alpha, alpha = gen.uniform(0, 1, size=(2, 1, 1, 6, 6))
    prev_guide = gen.uniform(0.3, 0.7, size=(1, 1, 6, 6))
    guide = prev_guide + gen.uniform(-0.03, 0.03, size=(1, 1, 6, 6))
    held, state = hold(f32(alpha), f32(guide), HoldState(f32(prev_alpha), f32(prev_guide)), params)
    want = ref_hold(alpha, guide, prev_alpha, prev_guide, params)
    assert held.shape == (1, 1, 6, 6) and held.dtype == torch.float32
    assert np.allclose(np_(held), want, atol=1e-5)
    assert torch.equal(state.alpha, held) and torch.allclose(state.guide, f32(guide))
    share = (want - alpha) / (prev_alpha - alpha)  # how much of the previous was kept: 0..0.9, varied
    assert share.max() > 0.5 and share.min() < 0.2


def test_hold_keeps_exactly_keep_where_image_and_matte_are_unchanged_and_one_over_e_at_tolerance():
    params = HoldParams(keep=0.8, tolerance=0.1, disagreement=0.5, cut=0.5)
    prev = HoldState(torch.full((1, 1, 3, 3), 0.5), torch.full((1, 1, 3, 3), 0.2))
    held, _ = hold(torch.full((1, 1, 3, 3), 0.5), prev.guide.clone(), prev, params)
    assert torch.allclose(held, torch.full_like(held, 0.5))
    # matte moves 0.5 -> 0.51: keeps 0.8 of the old value (the exponent is tiny)
    held, _ = hold(torch.full((1, 1, 3, 3), 0.51), prev.guide.clone(), prev, params)
    assert held.mean().item() == pytest.approx(0.51 - 0.8 * 0.01 * math.exp(-(0.01 / 0.5) ** 2), abs=1e-6)
    # the image changed by the tolerance: keeps 0.8/e
    held, _ = hold(torch.full((1, 1, 3, 3), 0.4), prev.guide + 0.1, prev, params)
    assert held.mean().item() == pytest.approx(0.4 + 0.1 * 0.8 * math.exp(-1 - (0.1 / 0.5) ** 2), abs=1e-5)


def test_hold_lets_a_strong_disagreement_through():
    params = HoldParams(keep=0.99, tolerance=0.1, disagreement=0.2, cut=0.5)
    prev = HoldState(torch.zeros(1, 1, 2, 2), torch.full((1, 1, 2, 2), 0.5))
    held, _ = hold(torch.ones(1, 1, 2, 2), prev.guide.clone(), prev, params)
    assert torch.allclose(held, torch.full_like(held, 1 - 0.99 * math.exp(-25)), atol=1e-7)
    held, _ = hold(torch.full((1, 1, 2, 2), 0.2), prev.guide.clone(), prev, params)
    assert torch.allclose(held, torch.full_like(held, 0.2 * (1 - 0.99 / math.e)), atol=1e-6)


def test_hold_of_extreme_change_keeps_a_tiny_nonzero_share():
    params = HoldParams(keep=1.0, tolerance=0.001, disagreement=0.001, cut=2.0)
    prev = HoldState(torch.ones(1, 1, 2, 2), torch.zeros(1, 1, 2, 2))
    held, _ = hold(torch.zeros(1, 1, 2, 2), torch.ones(1, 1, 2, 2), prev, params)
    assert torch.allclose(held, torch.full_like(held, math.exp(-CAP)), rtol=1e-4, atol=0)


def test_hold_starts_afresh_at_a_cut_a_new_size_or_with_keep_zero():
    prev = HoldState(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2))
    alpha = torch.full((1, 1, 2, 2), 0.1)
    loose = dict(tolerance=100.0, disagreement=100.0)  # so that only the cut decides
    # mean change exactly the cut: a cut
    held, state = hold(alpha, torch.full((1, 1, 2, 2), 0.25), prev, HoldParams(cut=0.25, **loose))
    assert torch.equal(held, alpha) and torch.equal(state.alpha, alpha)
    held, _ = hold(alpha, torch.full((1, 1, 2, 2), 0.25), prev, HoldParams(keep=0.5, cut=0.2501, **loose))
    assert torch.allclose(held, torch.full_like(held, 0.05), atol=1e-6)
    # a new frame size
    big = torch.full((1, 1, 3, 3), 0.1)
    held, state = hold(big, torch.zeros(1, 1, 3, 3), prev, HoldParams(**loose))
    assert torch.equal(held, big) and state.alpha.shape == (1, 1, 3, 3)
    # keep 0: nothing held, keep 1: all of it (where nothing changed)
    held, _ = hold(alpha, torch.zeros(1, 1, 2, 2), prev, HoldParams(keep=0.0, **loose))
    assert torch.equal(held, alpha)
    held, _ = hold(alpha, torch.zeros(1, 1, 2, 2), prev, HoldParams(keep=1.0, **loose))
    assert torch.allclose(held, torch.zeros_like(held), atol=1e-6)


def test_hold_carries_the_held_matte_and_its_guide_to_the_next_frame():
    params = HoldParams(keep=0.5, tolerance=100.0, disagreement=100.0, cut=0.5)
    guide = torch.full((1, 1, 2, 2), 0.3)
    state = None
    out = []
    for value in (1.0, 0.0, 0.0):
        held, state = hold(torch.full((1, 1, 2, 2), value), guide.clone(), state, params)
        out.append(held.mean().item())
    assert out == pytest.approx([1.0, 0.5, 0.25], abs=1e-4)  # each keeps half of the last *held* one
    assert torch.equal(state.guide, guide)


# ---------------------------------------------------------------- refinement and upsampling

def test_colour_guided_filter_coefficients_match_the_per_pixel_solution():
    gen = np.random.default_rng(10)
    image = gen.uniform(0, 1, size=(3, 9, 8))
    pred = np.clip(0.6 * image[0] - 0.3 * image[2] + 0.2 + gen.uniform(-0.1, 0.1, size=(9, 8)), 0, 1)
    for r, eps in ((1, 1e-3), (2, 1e-4)):
        a, b = A._colour_guided_filter(f32(pred[None, None]), f32(image[None]), r, eps)
        want_a, want_b = ref_guided_coefficients(pred, image, r, eps)
        assert a.shape == (1, 3, 9, 8) and b.shape == (1, 1, 9, 8)
        assert np.allclose(np_(a[0]), want_a, atol=2e-3, rtol=1e-3), (r, eps)
        assert np.allclose(np_(b[0, 0]), want_b, atol=1e-3), (r, eps)


def test_colour_guided_filter_of_low_contrast_texture():
    """Small variances (det of the covariance near eps³): the closed form still gives the solution."""
    gen = np.random.default_rng(11)
    image = 0.5 + gen.uniform(-0.05, 0.05, size=(3, 7, 7))
    pred = gen.uniform(0, 1, size=(7, 7))
    a, b = A._colour_guided_filter(f32(pred[None, None]), f32(image[None]), 1, 1e-4)
    want_a, want_b = ref_guided_coefficients(pred, image, 1, 1e-4)
    assert np.allclose(np_(a[0]), want_a, rtol=1e-2, atol=0.05)
    assert np.allclose(np_(b[0, 0]), want_b, atol=0.03)
    assert np.abs(want_a).max() > 1  # the coefficients are large: a clamp on det would show


def test_colour_guided_filter_recovers_a_linear_function_of_the_guide():
    gen = np.random.default_rng(12)
    image = gen.uniform(0, 1, size=(3, 8, 8))
    pred = 0.5 * image[0] - 0.25 * image[1] + 0.125 * image[2] + 0.3
    a, b = A._colour_guided_filter(f32(pred[None, None]), f32(image[None]), 2, 1e-6)
    assert torch.allclose(a[0], torch.tensor([0.5, -0.25, 0.125]).view(3, 1, 1).expand(3, 8, 8), atol=2e-3)
    assert torch.allclose(b, torch.full_like(b, 0.3), atol=2e-3)


@pytest.mark.parametrize("pred_size, frame_size, params", [
    ((8, 8), (24, 32), RefineParams()),
    ((8, 6), (20, 14), RefineParams(fit_scale=1.0, radius=1, eps=1e-3, band=4.0)),
    ((16, 16), (10, 10), RefineParams(radius=2)),  # the fit is never larger than the frame
    ((8, 8), (2, 700), RefineParams(radius=1, eps=1e-2)),  # a fitting side that would round to nothing
    ((8, 8), (700, 2), RefineParams(radius=1, eps=1e-2)),
])
def test_refine_is_the_guided_filter_fitted_small_applied_at_full_size(pred_size, frame_size, params):
    gen = np.random.default_rng(13)
    pred = np.clip(gen.uniform(-0.3, 1.3, size=pred_size), 0, 1)  # sure 0s and 1s, and unsure pixels
    frame = gen.uniform(0, 1, size=(3, *frame_size))
    out = refine(f32(pred[None, None]), f32(frame[None]), params)
    assert out.shape == (1, 1, *frame_size) and out.dtype == torch.float32
    assert out.min() >= 0 and out.max() <= 1
    want = ref_refine(pred, frame, params)
    assert np.allclose(np_(out[0, 0]), want, atol=2e-4), np.abs(np_(out[0, 0]) - want).max()
    plain = bilinear(pred, frame_size)
    assert np.abs(want - plain).max() > 0.05  # the refinement was at work


def test_refine_clamps_the_refined_matte_to_0_1():
    """Random texture: the fitted a·I+b overshoots 0..1 within the band, the matte does not."""
    gen = np.random.default_rng(4)
    pred = np.clip(gen.uniform(-0.3, 1.3, size=(8, 8)), 0, 1)
    frame = gen.uniform(0, 1, size=(3, 24, 32))
    out = refine(f32(pred[None, None]), f32(frame[None]))
    assert out.min() >= 0 and out.max() <= 1
    assert np.allclose(np_(out[0, 0]), ref_refine(pred, frame, RefineParams()), atol=2e-4)
    unclamped = ref_refine(pred, frame, RefineParams(), clamp=False)
    assert unclamped.min() < -0.05 and unclamped.max() > 1.05  # clamping was needed


def test_refine_keeps_the_plain_upsampling_where_the_prediction_is_sure():
    gen = np.random.default_rng(14)
    frame = torch.from_numpy(gen.uniform(0, 1, size=(1, 3, 16, 16)).astype(np.float32))
    pred = torch.zeros(1, 1, 8, 8)
    pred[..., 4:] = 1.0
    out = refine(pred, frame)
    assert torch.equal(out, F.interpolate(pred, size=(16, 16), mode="bilinear", align_corners=False))


def test_upsample_is_bilinear_with_pixel_centres_aligned_and_clamped():
    gen = np.random.default_rng(15)
    pred = gen.uniform(-0.2, 1.2, size=(2, 1, 5, 4))  # a little out of range, as rounding can leave it
    out = upsample(f32(pred), 11, 9)
    assert out.shape == (2, 1, 11, 9) and out.dtype == torch.float32
    for b in range(2):
        assert np.allclose(np_(out[b, 0]), np.clip(bilinear(pred[b, 0], (11, 9)), 0, 1), atol=1e-6)
    assert out.min() == 0 and out.max() == 1


# ---------------------------------------------------------------- MatteWindow

def window_data(n: int, seed: int, size=(6, 6), cut_at: int | None = None):
    gen = np.random.default_rng(seed)
    preds = gen.uniform(0.2, 0.8, size=(n, 1, *size))
    guides = 0.4 + gen.uniform(-0.03, 0.03, size=(n, 1, *size))
    if cut_at is not None:
        guides[cut_at:] += 0.4
    return preds, guides


def run_window(window: MatteWindow, preds: np.ndarray, guides: np.ndarray):
    """Push every frame; returns [(pushed frame, items out)] and what flush gives."""
    pushes = [(t, window.push(t, f32(preds[t:t + 1]), f32(guides[t:t + 1]))) for t in range(len(preds))]
    return pushes, window.flush()


@pytest.mark.parametrize("lookahead", [True, False])
def test_matte_window_finishes_each_frame_from_its_window_in_order(lookahead):
    params = SmoothParams(radius=2, tolerance=0.05, disagreement=0.3)
    preds, guides = window_data(8, seed=16, cut_at=5)
    pushes, flushed = run_window(MatteWindow(params, lookahead), preds, guides)
    ahead = 2 if lookahead else 0
    for t, done in pushes:  # frame t - ahead comes out as frame t is pushed
        assert [item for item, _ in done] == ([t - ahead] if t >= ahead else []), t
    assert [item for item, _ in flushed] == list(range(8 - ahead, 8))
    for t, alpha in [d for _, done in pushes for d in done] + flushed:
        lo, hi = max(0, t - 2), min(8, t + ahead + 1)
        want = ref_smooth(list(preds[lo:hi, 0]), list(guides[lo:hi, 0]), t - lo, params)
        assert alpha.shape == (1, 1, 6, 6)
        assert np.allclose(np_(alpha[0, 0]), want, atol=1e-5), t
        assert np.abs(want - preds[t, 0]).max() > 0.01 or t in (0, 5) and not lookahead  # not trivial


def test_matte_window_with_radius_zero_gives_each_prediction_at_once():
    preds, guides = window_data(3, seed=17)
    pushes, flushed = run_window(MatteWindow(SmoothParams(radius=0)), preds, guides)
    for t, done in pushes:
        assert len(done) == 1 and done[0][0] == t and torch.equal(done[0][1], f32(preds[t:t + 1]))
    assert flushed == []


def test_matte_window_of_one_frame_flushes_it_as_it_is():
    preds, guides = window_data(1, seed=18)
    pushes, flushed = run_window(MatteWindow(SmoothParams(radius=3)), preds, guides)
    assert pushes == [(0, [])] and len(flushed) == 1
    assert flushed[0][0] == 0 and torch.equal(flushed[0][1], f32(preds[0:1]))


def test_matte_window_computes_each_pair_once(monkeypatch):
    computed = []

    def counting(preds, guides, pred, guide, params):
        computed.append(preds.shape[0])
        return pair_weights(preds, guides, pred, guide, params)

    monkeypatch.setattr(A, "pair_weights", counting)
    preds, guides = window_data(9, seed=19)
    window = MatteWindow(SmoothParams(radius=2, tolerance=0.05))
    run_window(window, preds, guides)
    assert sum(computed) == 8 + 7  # the pairs one and two frames apart
    assert len(window._pairs) <= 2 * 2 + 1


def test_matte_window_resizes_the_kept_predictions_to_a_new_size():
    params = SmoothParams(radius=2, tolerance=0.05, disagreement=0.3)
    small, guides = window_data(5, seed=20, size=(4, 4))
    big, _ = window_data(5, seed=21, size=(8, 8))
    window = MatteWindow(params)
    out = []
    for t in range(3):
        out += window.push(t, f32(small[t:t + 1]), f32(guides[t:t + 1]))
    assert [item for item, _ in out] == [0] and out[0][1].shape == (1, 1, 4, 4)
    for t in range(3, 5):  # from frame 3 on, predictions are 8x8
        out += window.push(t, f32(big[t:t + 1]), f32(guides[t:t + 1]))
    out += window.flush()
    assert [item for item, _ in out] == [0, 1, 2, 3, 4]
    assert np.allclose(np_(out[0][1][0, 0]), ref_smooth(list(small[0:3, 0]), list(guides[0:3, 0]), 0, params), atol=1e-5)
    # the frames kept (0..2) follow at 8x8, bilinear
    preds = [bilinear(small[t, 0], (8, 8)) for t in range(3)] + [big[3, 0], big[4, 0]]
    for t, alpha in out[1:]:
        lo, hi = max(0, t - 2), min(5, t + 3)
        assert alpha.shape == (1, 1, 8, 8)
        want = ref_smooth(preds[lo:hi], list(guides[lo:hi, 0]), t - lo, params)
        assert np.allclose(np_(alpha[0, 0]), want, atol=1e-5), t


# ---------------------------------------------------------------- MatteStage

def ref_stage(frames: torch.Tensor, preds: np.ndarray, smooth_radius: int, lookahead: bool = True) -> np.ndarray:
    """frames [T,h,w,3] uint8, preds [T,1,S,S] -> alpha [T,h,w]: smoothed, upsampled, held."""
    image = frame_image(frames)
    count, (h, w) = len(preds), frames.shape[1:3]
    small = [ref_separable(ref_grey(image[t]), [1 / 3] * 3) for t in range(count)]
    params = SmoothParams(radius=smooth_radius)
    ahead = smooth_radius if lookahead else 0
    out, prev, prev_guide = [], None, None
    for t in range(count):
        lo, hi = max(0, t - smooth_radius), min(count, t + ahead + 1)
        smoothed = ref_smooth(list(preds[lo:hi, 0]), small[lo:hi], t - lo, params)
        alpha = np.clip(bilinear(smoothed, (h, w)), 0, 1)
        if smooth_radius:
            guide = ref_separable(ref_grey(image[t]), gauss_taps(HoldParams().sigma))
            alpha = ref_hold(alpha, guide, prev, prev_guide, HoldParams())
            prev, prev_guide = alpha, guide
        out.append(alpha)
    return np.stack(out)


def stage_data(n: int, seed: int):
    frames = noisy_frames(n, seed=seed)
    gen = np.random.default_rng(seed + 100)
    preds = np.clip(0.5 + gen.uniform(-0.15, 0.15, size=(1, 1, 8, 8)) + gen.uniform(-0.05, 0.05, size=(n, 1, 8, 8)), 0, 1)
    return frames, preds


def run_matte_stage(stage: MatteStage, frames: torch.Tensor, preds: np.ndarray, batch: int):
    """Push in batches: returns the keys out of each push, then flush's, and all (frames, alpha, keys)."""
    outs = []
    for start in range(0, len(frames), batch):
        stop = min(start + batch, len(frames))
        outs.append(stage.push(frames[start:stop], f32(preds[start:stop]), list(range(start, stop))))
    outs.append(stage.flush())
    keys = [k for _, _, ks in outs for k in ks]
    got_frames = torch.cat([f for f, _, ks in outs if ks])
    alpha = torch.cat([a for _, a, ks in outs if ks])
    return [ks for _, _, ks in outs], got_frames, alpha, keys


@pytest.mark.parametrize("lookahead, batch", [(True, 2), (False, 3), (True, 1)])
def test_matte_stage_smooths_upsamples_and_holds_in_order(lookahead, batch):
    frames, preds = stage_data(7, seed=22)
    stage = MatteStage(MatteConfig(smooth=2, refine=False), lookahead)
    per_push, got_frames, alpha, keys = run_matte_stage(stage, frames, preds, batch)
    assert keys == list(range(7))
    assert torch.equal(got_frames, frames)
    assert alpha.shape == (7, 1, 16, 16) and alpha.dtype == torch.float32
    want = ref_stage(frames, preds, 2, lookahead)
    assert np.allclose(np_(alpha[:, 0]), want, atol=1e-4), np.abs(np_(alpha[:, 0]) - want).max()
    if lookahead:  # a frame comes out once the two after it are in
        pushed = [min(7, b + batch) for b in range(0, 7, batch)]
        assert [len(ks) for ks in per_push[:-1]] == [max(0, p - 2) - max(0, q - 2) for q, p in zip([0] + pushed, pushed)]
        assert per_push[-1] == [5, 6]
    else:  # live: each frame at once, flush has nothing left
        assert [len(ks) for ks in per_push] == [min(7, b + batch) - b for b in range(0, 7, batch)] + [0]


def test_matte_stage_without_smoothing_finishes_frames_as_they_come_without_the_hold():
    frames, preds = stage_data(3, seed=23)
    stage = MatteStage(MatteConfig(smooth=0, refine=False))
    per_push, got_frames, alpha, keys = run_matte_stage(stage, frames, preds, 2)
    assert per_push == [[0, 1], [2], []] and torch.equal(got_frames, frames)
    want = np.stack([np.clip(bilinear(preds[t, 0], (16, 16)), 0, 1) for t in range(3)])
    assert np.allclose(np_(alpha[:, 0]), want, atol=1e-6)


def test_matte_stage_refines_with_the_frames_when_asked():
    frames, preds = stage_data(2, seed=24)
    preds[:, :, :, :3] = 0.0  # sure and unsure pixels
    image = frame_image(frames)
    for smooth_radius in (0, 1):
        stage = MatteStage(MatteConfig(smooth=smooth_radius, refine=True))
        _, _, alpha, keys = run_matte_stage(stage, frames, preds, 2)
        assert keys == [0, 1]
        if smooth_radius == 0:
            for t in range(2):
                want = ref_refine(preds[t, 0], image[t], RefineParams())
                assert np.allclose(np_(alpha[t, 0]), want, atol=2e-4)
        else:  # refined after smoothing, then held
            first = ref_refine(ref_smooth(list(preds[:, 0]), [ref_separable(ref_grey(i), [1 / 3] * 3) for i in image],
                                          0, SmoothParams(radius=1)), image[0], RefineParams())
            assert np.allclose(np_(alpha[0, 0]), first, atol=2e-4)


def test_matte_stage_returns_nothing_until_a_window_is_complete():
    frames, preds = stage_data(1, seed=25)
    stage = MatteStage(MatteConfig(smooth=3, refine=False))
    got_frames, alpha, keys = stage.push(frames, f32(preds), ["a"])
    assert keys == [] and got_frames.numel() == 0 and alpha.numel() == 0
    got_frames, alpha, keys = stage.flush()
    assert keys == ["a"] and alpha.shape == (1, 1, 16, 16) and torch.equal(got_frames, frames)
    got_frames, alpha, keys = stage.flush()
    assert keys == [] and alpha.numel() == 0


def upsample_batch_sizes(monkeypatch) -> list[int]:
    """The batch size of each ``upsample`` call the stage makes from now on (filled as it runs)."""
    sizes: list[int] = []

    def recording(pred, height, width):
        sizes.append(pred.shape[0])
        return upsample(pred, height, width)

    monkeypatch.setattr(A, "upsample", recording)
    return sizes


def test_matte_stage_flushes_a_batch_at_a_time(monkeypatch):
    sizes = upsample_batch_sizes(monkeypatch)
    frames, preds = stage_data(7, seed=26)
    stage = MatteStage(MatteConfig(smooth=3, refine=False))
    _, _, alpha, keys = run_matte_stage(stage, frames, preds, 2)
    assert keys == list(range(7))
    assert sizes == [1, 2, 1, 2, 1]  # pushes finish 0, 1-2, 3; flush's 4-6 come two at a time
    assert np.allclose(np_(alpha[:, 0]), ref_stage(frames, preds, 3), atol=1e-4)


def test_matte_stage_takes_half_precision_predictions():
    frames, preds = stage_data(2, seed=27)
    stage = MatteStage(MatteConfig(smooth=0, refine=False))
    _, alpha, _ = stage.push(frames, f32(preds).half(), [0, 1])
    assert alpha.dtype == torch.float32
    want = np.stack([np.clip(bilinear(np_(f32(preds[t, 0]).half()), (16, 16)), 0, 1) for t in range(2)])
    assert np.allclose(np_(alpha[:, 0]), want, atol=1e-6)


def test_matte_stage_flushes_one_at_a_time_after_single_frame_pushes(monkeypatch):
    sizes = upsample_batch_sizes(monkeypatch)
    frames, preds = stage_data(4, seed=28)
    _, _, _, keys = run_matte_stage(MatteStage(MatteConfig(smooth=2, refine=False)), frames, preds, 1)
    assert keys == [0, 1, 2, 3] and sizes == [1, 1, 1, 1]


def test_live_matte_stage_converts_each_frame_to_float_once(monkeypatch):
    calls = []

    def counting(frames, device):
        calls.append(frames.shape[0])
        return to_float(frames, device)

    monkeypatch.setattr(A, "to_float", counting)
    frames, preds = stage_data(5, seed=29)
    for refine_on in (False, True):
        calls.clear()
        stage = MatteStage(MatteConfig(smooth=2, refine=refine_on), lookahead=False)
        _, _, alpha, keys = run_matte_stage(stage, frames, preds, 2)
        assert keys == [0, 1, 2, 3, 4] and calls == [2, 2, 1]  # the image made for the window is reused
    assert alpha.shape == (5, 1, 16, 16)


def test_matte_stage_holds_with_its_hold_params():
    frames, preds = stage_data(4, seed=30)
    params = HoldParams(keep=0.6, tolerance=0.05, disagreement=0.2, sigma=1.0)
    stage = MatteStage(MatteConfig(smooth=1, refine=False))
    stage.hold_params = params
    _, _, alpha, _ = run_matte_stage(stage, frames, preds, 2)
    image = frame_image(frames)
    small = [ref_separable(ref_grey(i), [1 / 3] * 3) for i in image]
    prev = prev_guide = None
    for t in range(4):
        lo, hi = max(0, t - 1), min(4, t + 2)
        smoothed = ref_smooth(list(preds[lo:hi, 0]), small[lo:hi], t - lo, SmoothParams(radius=1))
        guide = ref_separable(ref_grey(image[t]), gauss_taps(1.0))
        prev = ref_hold(np.clip(bilinear(smoothed, (16, 16)), 0, 1), guide, prev, prev_guide, params)
        prev_guide = guide
        assert np.allclose(np_(alpha[t, 0]), prev, atol=1e-4), t
