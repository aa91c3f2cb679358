"""The matte step (u2video/alpha.py): temporal smoothing, hold and guided refinement, on synthetic
frames and predictions where the right answer is known, and the default pipeline with both on."""

import math

import pytest
import torch
import torch.nn.functional as F

from u2video.alpha import HoldParams, MatteStage, SmoothParams, refine, small_guide, smooth, upsample
from u2video.config import MatteConfig

S = 32  # prediction size in these tests
H, W = 48, 64  # frame size


def scene(frames: int, seed: int = 0) -> torch.Tensor:
    """[T,H,W,3] uint8: a textured static background, the same in every frame but for sensor noise."""
    gen = torch.Generator().manual_seed(seed)
    ys, xs = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
    background = torch.stack((60 + xs, 90 + ys, 120 + (xs + ys) % 17 * 3), dim=-1).float()
    noise = torch.randn(frames, H, W, 3, generator=gen) * 1.0
    return (background + noise).clamp(0, 255).round().to(torch.uint8)


def put_subject(frames: torch.Tensor, x0: int, start: int = 0, end: int | None = None) -> None:
    """Paint a bright 16x16 subject with its left edge at x0 into frames[start:end]."""
    frames[start:end, 16:32, x0:x0 + 16] = torch.tensor([240, 200, 40], dtype=torch.uint8)


def subject_pred(x0: int) -> torch.Tensor:
    """What a network at SxS would predict for the subject at x0: [1,1,S,S]."""
    mask = torch.zeros(1, 1, H, W)
    mask[..., 16:32, x0:x0 + 16] = 1.0
    return F.interpolate(mask, size=(S, S), mode="area")


def run_stage(frames: torch.Tensor, preds: torch.Tensor, config: MatteConfig, lookahead: bool = True,
              batch: int = 2, cut: bool = True, hold: bool = True) -> torch.Tensor:
    """frames [T,H,W,3] uint8, preds [T,1,S,S] -> alpha [T,H,W] through a MatteStage, in batches
    (``cut``/``hold`` False: scene-cut detection or the hold off, to show what they do)."""
    stage = MatteStage(config, lookahead)
    if not cut:
        stage.window.params = SmoothParams(radius=config.smooth, cut=float("inf"))
        stage.hold_params = HoldParams(cut=float("inf"))
    if not hold:
        stage.hold_params = HoldParams(keep=0.0)
    keys, alphas = [], []
    for start in range(0, frames.shape[0], batch):
        stop = min(start + batch, frames.shape[0])
        _, alpha, done = stage.push(frames[start:stop], preds[start:stop], list(range(start, stop)))
        keys += done
        alphas += list(alpha)
    _, alpha, done = stage.flush()
    keys += done
    alphas += list(alpha)
    assert keys == list(range(frames.shape[0]))  # every frame, once, in order
    return torch.stack(alphas)[:, 0]


def test_a_static_scene_gives_a_steady_matte_and_a_flickering_one_without_smoothing():
    frames = scene(30)
    put_subject(frames, 20)
    gen = torch.Generator().manual_seed(1)
    truth = subject_pred(20)
    preds = (truth + 0.08 * torch.randn(30, 1, S, S, generator=gen)).clamp(0, 1)  # the network flickers
    flicker = lambda a: (a[1:] - a[:-1]).abs().mean().item()  # noqa: E731
    off = run_stage(frames, preds, MatteConfig(smooth=0, refine=False))
    on = run_stage(frames, preds, MatteConfig(smooth=6, refine=False))
    assert flicker(off) > 0.02  # the input flickers and per-frame output passes it on
    assert flicker(on) < 0.15 * flicker(off)  # near-constant with smoothing
    assert flicker(on[10:]) < 0.1 * flicker(off[10:])  # and steadier still once the hold has settled
    window_only = run_stage(frames, preds, MatteConfig(smooth=6, refine=False), hold=False)
    assert flicker(on[10:]) < 0.5 * flicker(window_only[10:])  # the hold's share
    plain = upsample(truth, H, W)[0, 0]
    assert (on.mean(0) - plain).abs().mean() < (off.mean(0) - plain).abs().mean() + 0.005  # no bias


def test_a_subject_that_jumps_is_followed_at_once_and_leaves_no_ghost():
    frames = scene(14)
    put_subject(frames, 4, end=7)
    put_subject(frames, 40, start=7)  # jumps right at frame 7
    preds = torch.cat([subject_pred(4)] * 7 + [subject_pred(40)] * 7)
    for lookahead in (True, False):  # files (both sides) and live (past only)
        alpha = run_stage(frames, preds, MatteConfig(smooth=4, refine=False), lookahead)
        new, old = (slice(18, 30), slice(42, 54)), (slice(18, 30), slice(6, 18))
        assert (alpha[7][new] > 0.95).all(), lookahead  # there in the frame it arrives
        assert (alpha[7][old] < 0.05).all(), lookahead  # and gone at once from where it was
        assert (alpha[8:][(slice(None), *old)] < 0.02).all(), lookahead  # no ghost that fades later
        assert (alpha[6][new] < 0.05).all(), lookahead  # no echo before it arrives (look-ahead)


def test_a_moving_subject_leaves_no_trail_even_where_the_network_is_unsure():
    """Where the network is unsure (a faint 0.25 prediction), neighbours disagree only a little,
    so it is the image change that keeps the frames where the subject was out of the average."""
    frames = scene(12)
    preds = torch.zeros(12, 1, S, S)
    for t in range(12):
        put_subject(frames, 4 + 4 * t, start=t, end=t + 1)  # 4 px a frame to the right
        preds[t] = 0.25 * subject_pred(4 + 4 * t)[0]
    alpha = run_stage(frames, preds, MatteConfig(smooth=4, refine=False))
    for t in range(3, 9):
        left_behind = alpha[t, 18:30, 4 * t - 4:4 * t + 2]  # the strip it has just left
        arrived = alpha[t, 18:30, 4 * t + 12:4 * t + 18]  # the strip it has just reached
        assert left_behind.max() < 0.05 and arrived.mean() > 0.2, t


def test_a_hard_cut_starts_afresh():
    """After a cut, even the part of the picture that looks the same is not averaged or held
    across it: the frames on each side come out as if the other side did not exist."""
    gen = torch.Generator().manual_seed(2)
    frames = scene(12, seed=3)
    frames[6:, :34] //= 4  # from frame 6 on, the top 70% of the picture is another (darker) scene
    preds = torch.rand(12, 1, S, S, generator=gen)
    config = MatteConfig(smooth=3, refine=False)
    whole = run_stage(frames, preds, config)
    after, before = run_stage(frames[6:], preds[6:], config), run_stage(frames[:6], preds[:6], config)
    assert torch.allclose(whole[6:], after, atol=1e-5) and torch.allclose(whole[:6], before, atol=1e-5)
    # without the cut, the unchanged bottom rows would mix predictions from both sides of it
    uncut = run_stage(frames, preds, config, cut=False)
    assert (uncut[6:, 40:] - after[:, 40:]).abs().max() > 0.1


def test_smooth_keeps_a_lasting_change_out_of_the_average():
    """Where the image did not change but the prediction did for good, the window does not blend
    the two: neighbours that disagree strongly with the centre hardly count."""
    guides = torch.full((7, 1, 16, 16), 0.5)
    preds = torch.cat([torch.zeros(3, 1, S, S), torch.ones(4, 1, S, S)])
    alpha = smooth(preds, guides, 3, SmoothParams(radius=3))
    assert alpha.min() > 0.95
    # small disagreements are averaged (weighted towards the centre frame's own 0.45)
    flickering = torch.cat([torch.full((3, 1, S, S), 0.55), torch.full((4, 1, S, S), 0.45)])
    averaged = smooth(flickering, guides, 3, SmoothParams(radius=3))
    assert (averaged > 0.47).all() and (averaged < 0.5).all()


@pytest.mark.parametrize("subject, background", [((1.0, 0.0, 0.0), (0.0, 0.0, 0.0)),  # red on black
                                                 ((0.1, 0.2, 0.3), (0.9, 0.8, 0.6))])  # dark on light
def test_refinement_puts_the_edge_where_the_image_has_it(subject, background):
    frame = torch.tensor(background).view(1, 3, 1, 1).repeat(1, 1, 256, 256)
    frame[..., 101:] = torch.tensor(subject).view(1, 3, 1, 1)  # a sharp vertical edge
    truth = (torch.arange(256) >= 101).float()
    pred = F.interpolate(truth.view(1, 1, 1, 256).expand(1, 1, 256, 256), size=(S, S), mode="area")  # what a low-resolution network sees
    plain, guided = upsample(pred, 256, 256)[0, 0, 128], refine(pred, frame)[0, 0, 128]
    ramp = lambda a: int(((a > 0.1) & (a < 0.9)).sum())  # noqa: E731  (pixels between 10% and 90%)
    assert ramp(plain) >= 6 and ramp(guided) <= 2  # a step, not an 8-pixel ramp
    assert (guided - truth).abs().mean() < 0.5 * (plain - truth).abs().mean()
    assert guided[99] < 0.2 and guided[102] > 0.8


def test_refinement_leaves_texture_inside_the_subject_alone():
    """Away from the prediction's uncertain band, the image's texture does not leak into the matte;
    in the band, the refined matte is used."""
    gen = torch.Generator().manual_seed(5)
    frame = torch.rand(1, 3, 128, 128, generator=gen)  # strong texture everywhere
    sure = torch.zeros(1, 1, S, S)
    sure[..., 8:24, 8:24] = 1.0
    pred = F.avg_pool2d(F.pad(sure, (2, 2, 2, 2), mode="replicate"), 5, stride=1)  # soft edges, 4 px wide
    alpha, plain = refine(pred, frame)[0, 0], upsample(pred, 128, 128)[0, 0]
    assert (alpha[56:72, 56:72] == 1.0).all() and (alpha[:8, :8] == 0.0).all()  # sure: untouched
    edge = (slice(40, 88), slice(28, 36))  # across the left edge, where the prediction is unsure
    assert (alpha[edge] - plain[edge]).abs().max() > 0.2


def test_a_video_with_smoothing_and_refinement_keeps_every_frame(u2netp_store, tmp_path):
    from .test_cli_images import FAST, run
    from .test_video_matte import decoded, make_clip, seconds

    clip = make_clip(tmp_path / "clip.mp4", frames=9)
    out = tmp_path / "out.mov"
    result = run("matte", clip, "-o", out, "--smooth", "3", "--refine", "--batch", "2", *FAST)
    assert result.exit_code == 0, result.output
    frames = decoded(out)
    assert len(frames) == 9 and seconds(frames) == seconds(decoded(clip))


def test_matte_stage_keeps_every_frame_in_order_whatever_the_batch():
    """Batching does not change a single pixel: the window and the hold carry across batches."""
    frames = scene(9)
    put_subject(frames, 20)
    gen = torch.Generator().manual_seed(6)
    preds = (subject_pred(20) + 0.1 * torch.randn(9, 1, S, S, generator=gen)).clamp(0, 1)
    for config in (MatteConfig(smooth=3, refine=True), MatteConfig(smooth=0, refine=True)):
        one = run_stage(frames, preds, config, batch=1)
        three = run_stage(frames, preds, config, batch=3)
        assert one.shape == (9, H, W) and torch.allclose(one, three, atol=1e-6)
        assert torch.isfinite(one).all() and one.min() >= 0 and one.max() <= 1
    smoothed, per_frame = run_stage(frames, preds, MatteConfig(smooth=3, refine=True)), one
    assert (smoothed - per_frame).abs().max() > 0.02  # smoothing was really at work above
    assert small_guide(frames.permute(0, 3, 1, 2).float() / 255).shape == (9, 1, H, W)


def test_the_window_keeps_pair_weights_and_gives_what_smooth_computes_afresh():
    """MatteWindow computes each pair of frames' weights once (they are symmetric) and keeps the
    steps' cut tests: every finished prediction is, bit for bit, what ``smooth`` computes from the
    whole window, across a scene cut and at both ends."""
    from u2video.alpha import MatteWindow, to_float

    gen = torch.Generator().manual_seed(3)
    frames = scene(16)
    for t in range(16):
        put_subject(frames, 2 * t)
    frames[9:] = 255 - frames[9:]  # a cut between frames 8 and 9
    preds = torch.rand(16, 1, S, S, generator=gen)
    guides = small_guide(to_float(frames, torch.device("cpu")))
    params = SmoothParams(radius=3)
    window = MatteWindow(params)
    got = []
    for t in range(16):
        got += window.push(t, preds[t:t + 1], guides[t:t + 1])
    got += window.flush()
    assert [t for t, _ in got] == list(range(16))
    for t, alpha in got:
        lo, hi = max(0, t - 3), min(16, t + 4)
        assert torch.equal(alpha, smooth(preds[lo:hi], guides[lo:hi], t - lo, params)), t
    assert len(window._pairs) <= 2 * 3 + 1  # pairs no later window reaches are dropped


def test_box_mean_is_the_mean_over_the_window_clipped_at_the_borders():
    from u2video.filters import _box_mean_torch, box_mean

    x = torch.rand(2, 3, 9, 13, generator=torch.Generator().manual_seed(5), dtype=torch.float64).float()
    r = 2
    want = torch.empty_like(x)
    for i in range(9):
        for j in range(13):
            want[..., i, j] = x[..., max(0, i - r):i + r + 1, max(0, j - r):j + r + 1].mean(dim=(-2, -1))
    assert torch.allclose(box_mean(x, r), want, atol=1e-6)  # OpenCV's, on the CPU
    assert torch.allclose(_box_mean_torch(x, r), want, atol=1e-6)  # PyTorch's, as on CUDA


@pytest.mark.parametrize("shape", [(2, 13, 37, 53), (1, 3, 48, 64), (2, 4, 9, 1), (1, 1, 1, 9), (3, 1, 7, 1)])
def test_opencv_filters_on_the_cpu_give_what_the_pytorch_ones_give(shape):
    """filters.py runs OpenCV on CPU tensors and PyTorch operators elsewhere: the same results
    within float rounding, for odd sizes, one-pixel sides, inputs that are not contiguous, and
    channels-last frames (as ``to_float`` makes them: OpenCV filters their pixels whole)."""
    from u2video import filters

    gen = torch.Generator().manual_seed(7)
    x = torch.rand(shape, generator=gen)
    flipped = torch.rand(*shape[:2], shape[3], shape[2], generator=gen).transpose(2, 3)  # not contiguous
    pixels = torch.rand(shape[0], *shape[2:], shape[1], generator=gen).permute(0, 3, 1, 2)  # channels last
    gauss = [math.exp(-0.5 * (i / 2.0) ** 2) for i in range(-6, 7)]
    for data in (x, flipped, pixels):
        for r in (1, 3):
            assert torch.allclose(filters.box_mean(data, r), filters._box_mean_torch(data, r), atol=1e-5)
        for taps in ([1 / 3] * 3, [0.25, 0.5, 0.25], [t / sum(gauss) for t in gauss]):
            assert torch.allclose(filters.separable(data, taps), filters._separable_torch(data, taps), atol=1e-5)
            if len(taps) // 2 < min(data.shape[-2:]):  # PyTorch reflects only within the image
                assert torch.allclose(filters.separable(data, taps, "reflect"),
                                      filters._separable_torch(data, taps, "reflect"), atol=1e-5)
        height, width = data.shape[-2:]
        for size in ((2 * height + 1, 3 * width), (max(1, height // 3), max(1, width // 2 + 1)), (5, 7)):
            want = F.interpolate(data, size=size, mode="bilinear", align_corners=False)
            assert torch.allclose(filters.resize(data, size), want, atol=1e-5), size
        for size in ((max(1, height // 2), max(1, width // 2)), (height, width), (max(1, height * 2 // 3), width)):
            assert torch.allclose(filters.area(data, size), F.interpolate(data, size=size, mode="area"), atol=1e-6), size


def test_the_window_takes_predictions_whose_size_changes():
    """The crop pass hands over the whole frame's prediction [S,S] or a finer one of the frame's
    shape: a window that sees both keeps every frame, and a still scene's matte stays as it is
    with one size throughout."""
    frames = scene(12)
    put_subject(frames, 20)
    mask = torch.zeros(1, 1, H, W)
    mask[..., 16:32, 20:36] = 1.0
    square, fine = subject_pred(20), F.interpolate(mask, size=(24, 32), mode="area")  # [1,1,32,32], [1,1,24,32]
    sizes = [square, square, fine, fine, fine, square, fine, square, square, fine, fine, square]
    stage, out = MatteStage(MatteConfig(smooth=3)), []
    for i, pred in enumerate(sizes):
        _, alpha, keys = stage.push(frames[i:i + 1], pred, [i])
        out += list(alpha[:, 0]) if keys else []
    out += list(stage.flush()[1][:, 0])
    assert len(out) == 12
    one_size = run_stage(frames, square.expand(12, -1, -1, -1), MatteConfig(smooth=3), batch=1)
    diff = (torch.stack(out) - one_size).abs()
    assert diff.mean() < 0.01 and diff.max() < 0.25, (diff.mean(), diff.max())
