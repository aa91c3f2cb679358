"""Temporal smoothing and guided refinement (u2video/alpha.py) on synthetic predictions and
frames, and the default pipeline with both on."""

import numpy as np
import torch

from u2video.alpha import MatteStage, MatteWindow, SmoothParams, refine, small_guide, upsample
from u2video.config import MatteConfig

S = 32  # prediction size in these tests


def run_window(preds: torch.Tensor, guides: torch.Tensor, params: SmoothParams, lookahead: bool = True) -> torch.Tensor:
    """Push every frame through a MatteWindow: [T,1,S,S] preds -> [T,1,S,S] smoothed, in order."""
    window = MatteWindow(params, lookahead)
    out = []
    for t in range(preds.shape[0]):
        out += window.push(t, preds[t:t + 1], guides[t:t + 1])
    out += window.flush()
    assert [key for key, _ in out] == list(range(preds.shape[0]))  # every frame, in order
    return torch.cat([alpha for _, alpha in out])


def scene(frames: int, moved_at: int | None = None, cut_at: int | None = None) -> torch.Tensor:
    """Guides [T,1,16,16]: a static grey scene; a bright square that jumps at ``moved_at``; a
    different scene from ``cut_at`` on."""
    g = torch.full((frames, 1, 16, 16), 0.4)
    g[:, :, 4:8, 2:6] = 0.9
    if moved_at is not None:
        g[moved_at:, :, 4:8, 2:6] = 0.4
        g[moved_at:, :, 4:8, 10:14] = 0.9
    if cut_at is not None:
        g[cut_at:] = 0.1 + 0.05 * torch.rand(frames - cut_at, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    return g


def test_static_scene_gives_a_steady_matte_and_flicker_without_smoothing():
    gen = torch.Generator().manual_seed(0)
    base = torch.zeros(1, 1, S, S)
    base[..., 8:16, 4:12] = 1.0
    preds = (base + 0.1 * torch.randn(20, 1, S, S, generator=gen)).clamp(0, 1)  # the network flickers
    guides = scene(20)
    flicker = lambda a: (a[1:] - a[:-1]).abs().mean().item()  # noqa: E731
    off = run_window(preds, guides, SmoothParams(radius=0))
    on = run_window(preds, guides, SmoothParams(radius=3))
    assert torch.equal(off, preds)
    assert flicker(on) < 0.4 * flicker(off)
    assert (on.mean(0) - base[0]).abs().mean() < (preds.mean(0) - base[0]).abs().mean() + 0.01  # no bias


def test_a_subject_that_jumps_is_followed_at_once():
    preds = torch.zeros(12, 1, S, S)
    preds[:6, :, 8:16, 4:12] = 1.0  # the subject on the left...
    preds[6:, :, 8:16, 20:28] = 1.0  # ...jumps right at frame 6
    guides = scene(12, moved_at=6)
    out = run_window(preds, guides, SmoothParams(radius=3))
    assert (out[6, :, 8:16, 20:28] > 0.95).all()  # there at once on the frame it arrives
    assert (out[6, :, 8:16, 4:12] < 0.05).all()  # and gone from where it was
    assert (out[5, :, 8:16, 20:28] < 0.05).all()  # no ghost before it arrives (look-ahead)
    live = run_window(preds, guides, SmoothParams(radius=3), lookahead=False)
    assert (live[6, :, 8:16, 20:28] > 0.95).all()


def test_a_hard_cut_starts_afresh():
    gen = torch.Generator().manual_seed(2)
    preds = torch.rand(12, 1, S, S, generator=gen)
    guides = scene(12, cut_at=6)
    out = run_window(preds, guides, SmoothParams(radius=3))
    after_cut_alone = run_window(preds[6:], guides[6:], SmoothParams(radius=3))
    before_cut_alone = run_window(preds[:6], guides[:6], SmoothParams(radius=3))
    assert torch.allclose(out[6:], after_cut_alone, atol=1e-6)
    assert torch.allclose(out[:6], before_cut_alone, atol=1e-6)


def test_refinement_puts_the_edge_where_the_image_has_it():
    import torch.nn.functional as F

    frame = torch.zeros(1, 3, 256, 256)
    frame[..., :, 101:] = 1.0  # a sharp vertical edge in the image
    truth = (torch.arange(256) >= 101).float()
    pred = F.interpolate(frame[:, :1], size=(S, S), mode="area")  # what a low-resolution network sees
    plain, guided = upsample(pred, 256, 256)[0, 0, 128], refine(pred, frame)[0, 0, 128]
    gradient_error = lambda a: ((a[1:] - a[:-1]).abs() - (truth[1:] - truth[:-1]).abs()).abs().sum()  # noqa: E731
    assert gradient_error(guided) < 0.5 * gradient_error(plain)  # a step, not an 8-pixel ramp
    assert (guided - truth).abs().mean() < (plain - truth).abs().mean()
    assert guided[100] < 0.2 and guided[101] > 0.8


def test_a_video_with_smoothing_and_refinement_keeps_every_frame(u2netp_store, tmp_path):
    from .test_cli_images import FAST, run
    from .test_video_matte import decoded, make_clip, seconds

    clip = make_clip(tmp_path / "clip.mp4", frames=9)
    out = tmp_path / "out.mov"
    result = run("matte", clip, "-o", out, "--smooth", "3", "--refine", "--batch", "2", *FAST)
    assert result.exit_code == 0, result.output
    frames = decoded(out)
    assert len(frames) == 9 and seconds(frames) == seconds(decoded(clip))


def test_matte_stage_keeps_every_frame_in_order():
    frames = torch.randint(0, 255, (7, 48, 64, 3), dtype=torch.uint8)
    preds = torch.rand(7, 1, S, S)
    stage = MatteStage(MatteConfig(smooth=3, refine=True))
    got, alphas = [], []
    for start in range(0, 7, 2):  # batches of 2: 2+2+2+1
        f, a, keys = stage.push(frames[start:start + 2], preds[start:start + 2], list(range(start, min(start + 2, 7))))
        got += keys
        alphas += list(a)
    f, a, keys = stage.flush()
    got += keys
    alphas += list(a)
    assert got == list(range(7)) and all(a.shape == (1, 48, 64) for a in alphas)
    assert small_guide(frames.permute(0, 3, 1, 2).float() / 255).shape == (7, 1, 48, 64)
