"""Compositing (compose.py) and the backgrounds behind the subject (backgrounds.py).

Expected values are computed by hand or with an independent numpy reference, never with the code under test.
"""

from __future__ import annotations

import math
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch

from u2video.backgrounds import (BlurBackground, ColorBackground, ImageBackground, VideoBackground,
                                 _gaussian, _to_device, cover, parse_background, parse_color)
from u2video.compose import Compositor, alpha_to_uint8, over, rgba_to_yuva444p10, to_matte, to_rgba
from u2video.errors import ConfigError, MediaError

# --- references, written out independently of the library ---------------------------------


def ref_gaussian_1d(row: np.ndarray, sigma: float) -> np.ndarray:
    """Normalised Gaussian (radius ceil(3 sigma)) along a 1-D signal, mirrored borders without
    repeating the edge; where the signal is shorter than the kernel, the kernel is cut to
    offsets within len-1 and renormalised."""
    radius = max(1, math.ceil(3 * sigma))
    reach = min(radius, len(row) - 1)
    offsets = np.arange(-reach, reach + 1)
    w = np.exp(-0.5 * (offsets / sigma) ** 2)
    w /= w.sum()
    padded = np.pad(row.astype(np.float64), reach, mode="reflect") if reach else row.astype(np.float64)
    return np.array([np.dot(w, padded[i:i + 2 * reach + 1]) for i in range(len(row))])


def ref_bilinear_up_1d(row: np.ndarray, n: int) -> np.ndarray:
    """Linear resize of a 1-D signal to n samples, pixel centres aligned, ends held."""
    src = (np.arange(n) + 0.5) * len(row) / n - 0.5
    src = np.clip(src, 0, len(row) - 1)
    lo = np.floor(src).astype(int)
    hi = np.minimum(lo + 1, len(row) - 1)
    f = src - lo
    return row[lo] * (1 - f) + row[hi] * f


def frames_varying_along_x(profile: np.ndarray, height: int) -> torch.Tensor:
    """[1,3,H,W] f32 whose every row and channel is ``profile`` (so each filter acts in 1-D)."""
    row = torch.tensor(profile, dtype=torch.float32)
    return row.view(1, 1, 1, -1).expand(1, 3, height, -1).contiguous()


def write_video(path: Path, colours: list[tuple[int, int, int]], size: int = 16) -> Path:
    """One solid-colour frame per entry, lossless-ish (FFV1, 4:4:4)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=10)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv444p"
        for rgb in colours:
            frame = av.VideoFrame.from_ndarray(np.full((size, size, 3), rgb, np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def write_image(path: Path, rgb: np.ndarray) -> Path:
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


# --- compose.py -------------------------------------------------------------------------------


def test_alpha_to_uint8_scales_and_rounds():
    a = torch.tensor([0.0, 0.5, 1.0, 0.002, 0.998, 0.1])
    # 127.5 rounds half to even; 0.51 -> 1; 254.49 -> 254; 25.5 -> 26 (half to even)
    assert alpha_to_uint8(a).tolist() == [0, 128, 255, 1, 254, 26]
    assert alpha_to_uint8(a).dtype == torch.uint8


def test_to_rgba_appends_straight_alpha_as_fourth_channel():
    frames = torch.tensor([[[[10, 20, 30], [40, 50, 60], [70, 80, 90]],
                            [[1, 2, 3], [4, 5, 6], [7, 8, 9]]]], dtype=torch.uint8)  # [1,2,3,3]
    alpha = torch.tensor([[[[0.0, 0.5, 1.0], [0.2, 0.4, 0.6]]]])  # [1,1,2,3]
    out = to_rgba(frames, alpha)
    assert out.shape == (1, 2, 3, 4) and out.dtype == torch.uint8
    assert out[0, :, :, 3].tolist() == [[0, 128, 255], [51, 102, 153]]
    assert out[0, :, :, :3].tolist() == frames[0].tolist()  # colour not premultiplied


def test_to_matte_is_the_alpha_as_grey_pixels():
    alpha = torch.tensor([[[[0.0, 0.25, 1.0], [0.6, 0.8, 0.1]]], [[[1.0, 1.0, 0.0], [0.0, 0.5, 0.3]]]])
    out = to_matte(torch.zeros(2, 2, 3, 3, dtype=torch.uint8), alpha)
    assert out.shape == (2, 2, 3) and out.dtype == torch.uint8
    assert out.tolist() == [[[0, 64, 255], [153, 204, 26]], [[255, 255, 0], [0, 128, 76]]]


def test_over_blends_bg_plus_alpha_times_fg_minus_bg():
    fg = torch.tensor([[[[200.0, 10.0, 0.0]], [[100.0, 255.0, 40.0]], [[0.0, 30.0, 90.0]]]])  # [1,3,1,3]
    bg = torch.tensor([[[[100.0, 50.0, 255.0]], [[0.0, 5.0, 40.0]], [[60.0, 30.0, 10.0]]]])
    a = torch.tensor([[[[0.25, 1.0, 0.1]]]])
    out = over(fg, a, bg)
    assert out.shape == (1, 1, 3, 3) and out.dtype == torch.uint8
    # pixel 0: a=.25 -> 125, 25, 45; pixel 1: a=1 -> fg; pixel 2: a=.1 -> 229.5->230 (half even), 40, 18
    assert out[0, 0].tolist() == [[125, 25, 45], [10, 255, 30], [230, 40, 18]]


def test_over_saturates_out_of_range_values_instead_of_wrapping():
    fg = torch.tensor([300.0, -20.0, 0.0]).view(1, 3, 1, 1)
    bg = torch.zeros(1, 3, 1, 1)
    assert over(fg, torch.ones(1, 1, 1, 1), bg)[0, 0, 0].tolist() == [255, 0, 0]


def test_over_broadcasts_a_single_background():
    fg = torch.full((2, 3, 1, 2), 200.0)
    bg = torch.tensor([0.0, 100.0, 40.0]).view(1, 3, 1, 1)
    a = torch.tensor([0.0, 0.5, 1.0, 0.75]).view(2, 1, 1, 2)
    out = over(fg, a, bg)
    assert out.tolist() == [[[[0, 100, 40], [100, 150, 120]]], [[[200, 200, 200], [150, 175, 160]]]]


def test_compositor_puts_the_subject_over_a_colour():
    frames = torch.tensor([[[[200, 100, 0], [10, 20, 30]]]], dtype=torch.uint8)  # [1,1,2,3]
    alpha = torch.tensor([[[[1.0, 0.5]]]])
    out = Compositor(ColorBackground((0, 40, 250), "x"))(frames, alpha)
    # pixel 0 keeps the subject; pixel 1 is halfway: (5, 30, 140)
    assert out.tolist() == [[[[200, 100, 0], [5, 30, 140]]]]


# a device without storage: checks where a result is made, without a GPU (only for code that does no
# arithmetic: the first arithmetic on "meta" costs seconds of imports)
META = torch.device("meta")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a second device (CUDA)")
def test_results_are_made_on_the_alphas_device():
    cuda = torch.device("cuda")
    frames = torch.tensor([[[[10, 20, 30], [40, 50, 60]]]], dtype=torch.uint8)  # on the host
    alpha = torch.tensor([[[[1.0, 0.0]]]], device=cuda)
    rgba = to_rgba(frames, alpha)
    assert rgba.device.type == "cuda" and rgba.cpu().tolist() == [[[[10, 20, 30, 255], [40, 50, 60, 0]]]]
    out = Compositor(ColorBackground((1, 2, 3), "x"))(frames, alpha)
    assert out.device.type == "cuda" and out.cpu().tolist() == [[[[10, 20, 30], [1, 2, 3]]]]
    yuva = rgba_to_yuva444p10(torch.tensor([[[[255, 255, 255, 255]]]], dtype=torch.uint8, device=cuda))
    assert yuva.device.type == "cuda" and yuva.flatten().tolist() == [940, 512, 512, 1023]


def test_compositor_gives_the_background_the_alpha():
    frames = torch.zeros(1, 54, 64, 3, dtype=torch.uint8)
    frames[..., 2] = 200  # blue background
    frames[:, 20:24, 25:29] = torch.tensor([255, 255, 0], dtype=torch.uint8)  # yellow subject
    alpha = torch.zeros(1, 1, 54, 64)
    alpha[..., 20:24, 25:29] = 1.0
    out = Compositor(BlurBackground(40))(frames, alpha)
    assert out[0, 22, 26].tolist() == [255, 255, 0]  # the subject
    assert out[0, 22, 24].tolist() == [0, 0, 200] and out[0, 30, 30].tolist() == [0, 0, 200]  # no halo


def ref_yuva(r: int, g: int, b: int, a: int) -> tuple[int, int, int, int]:
    """BT.601 limited range at 10 bits; alpha 8 -> 10 bits by bit replication."""
    y = 64 + 876 / 255 * (0.299 * r + 0.587 * g + 0.114 * b)
    cb = 512 + 896 / 255 * (-0.168736 * r - 0.331264 * g + 0.5 * b)
    cr = 512 + 896 / 255 * (0.5 * r - 0.418688 * g - 0.081312 * b)
    return round(y), round(cb), round(cr), min(1023, a * 4 + (a + 32) // 64)


def test_rgba_to_yuva444p10_anchors():
    rgba = torch.tensor([[[[0, 0, 0, 0], [255, 255, 255, 255]]]], dtype=torch.uint8)
    out = rgba_to_yuva444p10(rgba)
    assert out.dtype == torch.int16 and out.shape == (1, 4, 1, 2)
    assert out[0, :, 0, 0].tolist() == [64, 512, 512, 0]  # black, transparent
    assert out[0, :, 0, 1].tolist() == [940, 512, 512, 1023]  # white, opaque


def test_rgba_to_yuva444p10_follows_bt601_limited_range():
    colours = [(255, 0, 0, 128), (0, 255, 0, 31), (0, 0, 255, 32), (17, 99, 201, 95), (250, 128, 3, 223),
               (60, 200, 120, 224), (128, 128, 128, 159), (3, 7, 250, 64)]
    rgba = torch.tensor([colours], dtype=torch.uint8).view(1, 2, 4, 4)
    out = rgba_to_yuva444p10(rgba)
    got = out.permute(0, 2, 3, 1).reshape(-1, 4).tolist()
    assert got == [list(ref_yuva(*c)) for c in colours]


def test_rgba_to_yuva444p10_alpha_replicates_the_top_bits_for_every_level():
    a = torch.arange(256, dtype=torch.uint8)
    rgba = torch.zeros(1, 1, 256, 4, dtype=torch.uint8)
    rgba[0, 0, :, 3] = a
    got = rgba_to_yuva444p10(rgba)[0, 3, 0].tolist()
    assert got == [min(1023, v * 4 + (v + 32) // 64) for v in range(256)]
    assert got[31] == 124 and got[32] == 129 and got[255] == 1023


# --- backgrounds.py: cover and _to_device ---------------------------------------------------------


def test_cover_crops_the_centre_of_a_wider_image():
    rgb = np.arange(2 * 4 * 3, dtype=np.uint8).reshape(2, 4, 3)  # h=2, w=4
    out = cover(rgb, 2, 2)  # scale 1: no resize, columns 1..2 kept
    assert out.shape == (2, 2, 3)
    assert out.tolist() == rgb[:, 1:3].tolist()


def test_cover_crops_the_centre_of_a_taller_image():
    rgb = np.arange(6 * 2 * 3, dtype=np.uint8).reshape(6, 2, 3)  # h=6, w=2
    out = cover(rgb, 2, 2)  # rows 2..3 kept
    assert out.tolist() == rgb[2:4].tolist()


def test_cover_shrinks_by_averaging_areas():
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (6, 12, 3)).astype(np.uint8)  # shrink by 3 to 4x2, keep the middle 2 columns
    out = cover(rgb, 2, 2)
    means = rgb.astype(float).reshape(2, 3, 4, 3, 3).mean(axis=(1, 3))  # [2 rows, 4 cols, 3]
    assert out.shape == (2, 2, 3)
    assert np.abs(out.astype(float) - means[:, 1:3]).max() <= 0.5 + 1e-9


def test_cover_enlarges_and_keeps_the_sides_in_place():
    rgb = np.zeros((1, 2, 3), np.uint8)
    rgb[0, 0] = (255, 0, 0)
    rgb[0, 1] = (0, 0, 255)
    out = cover(rgb, 4, 4)  # scale 4: 8x4 resized, the middle 4 columns kept
    assert out.shape == (4, 4, 3)
    # linear at scale 4, centres aligned: source x = (dst + .5)/4 - .5 for dst 2..5 -> .125 .375 .625 .875
    red = [round(255 * (1 - f)) for f in (0.125, 0.375, 0.625, 0.875)]
    assert np.abs(out[:, :, 0].astype(int) - np.array(red)[None]).max() <= 1
    assert np.abs(out[:, :, 2].astype(int) - (255 - np.array(red))[None]).max() <= 1


def test_cover_enlarges_by_less_than_two_linearly():
    profile = np.array([217, 30, 160, 69], np.uint8)
    rgb = np.repeat(np.repeat(profile[None, :, None], 4, 0), 3, 2)  # 4x4, varying along x
    out = cover(rgb, 5, 5)  # scale 1.25
    expected = ref_bilinear_up_1d(profile.astype(float), 5)
    assert out.shape == (5, 5, 3)
    assert np.abs(out[2, :, 1].astype(float) - expected).max() <= 1


def test_to_device_makes_batched_float_planes():
    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    t = _to_device(rgb, torch.device("cpu"))
    assert t.shape == (1, 3, 2, 3) and t.dtype == torch.float32
    assert t[0, 1].tolist() == [[1.0, 4.0, 7.0], [10.0, 13.0, 16.0]]
    batch = _to_device(np.stack([rgb, rgb[::-1, ::-1]]), torch.device("cpu"))
    assert batch.shape == (2, 3, 2, 3)
    assert batch[1, 0].tolist() == [[15.0, 12.0, 9.0], [6.0, 3.0, 0.0]]
    assert _to_device(rgb, META).device == META and _to_device(rgb, META).shape == (1, 3, 2, 3)


# --- colour, image and video backgrounds -------------------------------------------------


def test_color_background_is_one_broadcastable_pixel():
    bg = ColorBackground((255, 128, 0), "orange")
    out = bg(torch.zeros(2, 3, 4, 5), torch.zeros(2, 1, 4, 5))
    assert out.shape == (1, 3, 1, 1) and out.dtype == torch.float32
    assert out.flatten().tolist() == [255.0, 128.0, 0.0]
    assert bg.description == "colour orange (255, 128, 0)"


def test_image_background_is_fitted_to_the_frame_size_once(tmp_path):
    rgb = np.zeros((2, 4, 3), np.uint8)
    rgb[:, :, 0] = [[10, 20, 30, 40], [50, 60, 70, 80]]
    rgb[:, :, 1] = 7
    bg = ImageBackground(write_image(tmp_path / "bg.png", rgb))
    assert bg.description == "image bg.png"
    frames = torch.zeros(1, 3, 2, 2)
    out = bg(frames, torch.zeros(1, 1, 2, 2))
    assert out.shape == (1, 3, 2, 2)
    assert out[0, 0].tolist() == [[20.0, 30.0], [60.0, 70.0]] and out[0, 1].tolist() == [[7.0, 7.0], [7.0, 7.0]]
    assert bg(frames, None) is out  # reused for the same size
    other = bg(torch.zeros(1, 3, 2, 4), None)
    assert other.shape == (1, 3, 2, 4) and other[0, 0].tolist() == [[10, 20, 30, 40], [50, 60, 70, 80]]


def test_backgrounds_are_made_on_the_frames_device(tmp_path):
    frames = torch.zeros(1, 3, 2, 2, device=META)
    assert ColorBackground((1, 2, 3), "x")(frames, None).device == META
    image = ImageBackground(write_image(tmp_path / "bg.png", np.zeros((2, 2, 3), np.uint8)))
    assert image(torch.zeros(1, 3, 2, 2), None).device.type == "cpu"
    assert image(frames, None).device == META  # fitted again for the new device
    video = VideoBackground(write_video(tmp_path / "bg.mkv", [(10, 20, 30)]))
    try:
        assert video(frames, None).device == META
    finally:
        video.close()


def test_image_background_missing_file_is_a_media_error(tmp_path):
    with pytest.raises(MediaError, match="does not exist"):
        ImageBackground(tmp_path / "none.png")


def test_video_background_loops_a_shorter_video(tmp_path):
    colours = [(250, 0, 0), (0, 250, 0), (0, 0, 250)]
    bg = VideoBackground(write_video(tmp_path / "bg.mkv", colours))
    assert bg.description == "video bg.mkv"
    try:
        got = []
        for batch in (2, 2, 3):
            out = bg(torch.zeros(batch, 3, 8, 4), None)
            assert out.shape == (batch, 3, 8, 4) and out.dtype == torch.float32
            got += [out[i, :, 3, 2].tolist() for i in range(batch)]
    finally:
        bg.close()
    expected = [colours[i % 3] for i in range(7)]
    assert np.abs(np.array(got) - np.array(expected)).max() <= 3


# --- blur -------------------------------------------------------------------------------------


def test_blur_strength_must_be_in_range():
    for bad in (0, -1, 200.5):
        with pytest.raises(ConfigError, match="out of range: give more than 0 and up to 200, e.g. blur:20"):
            BlurBackground(bad)
    assert BlurBackground(200).description == "blur:200"
    assert BlurBackground(0.5).description == "blur:0.5"
    assert BlurBackground().strength == 20.0


def test_blur_keeps_a_uniform_frame_uniform():
    frames = torch.full((1, 3, 40, 60), 0.0)
    frames[:, 0], frames[:, 1], frames[:, 2] = 90.0, 160.0, 33.0
    alpha = torch.zeros(1, 1, 40, 60)
    alpha[..., 10:20, 20:30] = 0.7
    out = BlurBackground(40)(frames, alpha)
    assert out.shape == (1, 3, 40, 60)
    assert torch.allclose(out[0, :, 0, 0], torch.tensor([90.0, 160.0, 33.0]), atol=1e-3)
    assert (out - frames).abs().max() <= 1e-3


def test_blur_leaves_the_subject_colour_out_of_the_background():
    frames = torch.zeros(1, 3, 54, 64)
    frames[:, 2] = 200.0  # blue background
    frames[..., 20:24, 25:29] = torch.tensor([255.0, 255.0, 0.0]).view(1, 3, 1, 1)  # yellow subject
    alpha = torch.zeros(1, 1, 54, 64)
    alpha[..., 20:24, 25:29] = 1.0
    out = BlurBackground(40)(frames, alpha)
    expected = torch.tensor([0.0, 0.0, 200.0]).view(1, 3, 1, 1)
    assert (out - expected).abs().max() <= 1e-2  # no yellow halo, not even under the subject


def test_blur_is_a_gaussian_of_sigma_strength_at_1080_lines():
    # 54 lines at strength 20: sigma 1 pixel, no reduction
    profile = np.array([0, 0, 0, 255, 255, 0, 0, 100, 100, 100, 30, 0, 0, 0, 250, 250, 250, 250, 0, 0], float)
    frames = frames_varying_along_x(profile, 54)
    out = BlurBackground(20)(frames, torch.zeros(1, 1, 54, 20))
    expected = ref_gaussian_1d(profile, 1.0)
    assert np.abs(out[0, :, 27].numpy() - expected[None]).max() <= 2e-3
    assert np.abs(out[0, 1, 0].numpy() - expected).max() <= 2e-3


def ref_reduced_blur(profile: np.ndarray, alpha_row: np.ndarray) -> np.ndarray:
    """Blur at half size with sigma 2 (strength 20 at 216 lines: sigma 4), background pixels
    weighted by 1 - alpha, then enlarged; where the subject covers all, the plain blur."""
    half = lambda v: v.reshape(-1, 2).mean(axis=1)  # noqa: E731
    keep = 1 - alpha_row
    num, den = ref_gaussian_1d(half(profile * keep), 2.0), ref_gaussian_1d(half(keep), 2.0)
    plain = ref_gaussian_1d(half(profile), 2.0)
    small = np.where(den > 0.05, num / np.maximum(den, 1e-3), plain)
    return ref_bilinear_up_1d(small, len(profile))


@pytest.mark.parametrize("covered", ["none", "some", "all"])
def test_blur_at_reduced_size_for_wide_sigmas(covered):
    rng = np.random.default_rng(3)
    profile = rng.uniform(0, 255, 32)
    alpha_row = {"none": np.zeros(32), "all": np.ones(32),
                 "some": np.where(np.arange(32) % 5 == 0, 0.8, 0.0)}[covered]
    frames = frames_varying_along_x(profile, 216)
    alpha = frames_varying_along_x(alpha_row, 216)[:, :1]
    out = BlurBackground(20)(frames, alpha)
    assert out.shape == (1, 3, 216, 32)
    assert np.abs(out[0, :, 100].numpy() - ref_reduced_blur(profile, alpha_row)[None]).max() <= 2e-3


def test_blur_where_the_subject_covers_everything_falls_back_to_the_plain_blur():
    profile = np.array([0, 0, 200, 200, 0, 0, 0, 90, 90, 250, 250, 250, 250, 0, 10, 20], float)
    frames = frames_varying_along_x(profile, 54)
    out = BlurBackground(20)(frames, torch.ones(1, 1, 54, 16))
    assert np.abs(out[0, 2, 5].numpy() - ref_gaussian_1d(profile, 1.0)).max() <= 2e-3


def test_blur_weights_partly_transparent_pixels_by_what_shows_of_the_background():
    # one row, sigma 1: the result at each pixel is sum(w*(1-a)*f) / sum(w*(1-a))
    profile = np.array([0, 0, 100, 100, 0, 0, 0, 0, 200, 0, 0, 50, 0, 0, 0, 0], float)
    alpha_row = np.array([0, 0, 0.5, 0.5, 0, 0, 0, 0.25, 0, 0, 0, 0.9, 0.9, 0, 0, 0])
    frames = frames_varying_along_x(profile, 54)
    alpha = frames_varying_along_x(alpha_row, 54)[:, :1]
    out = BlurBackground(20)(frames, alpha)
    keep = 1 - alpha_row
    expected = ref_gaussian_1d(profile * keep, 1.0) / ref_gaussian_1d(keep, 1.0)
    assert np.abs(out[0, 0, 30].numpy() - expected).max() <= 2e-3


@pytest.mark.parametrize("sigma, width", [(0.5, 9), (2.0, 20), (1.0, 3), (2.0, 5), (1.0, 4)])
def test_gaussian_matches_a_reference_including_images_narrower_than_the_kernel(sigma, width):
    rng = np.random.default_rng(width)
    profile = rng.uniform(0, 255, width)
    x = frames_varying_along_x(profile, 30)
    out = _gaussian(x, sigma)
    assert out.shape == x.shape
    assert np.abs(out[0, :, 11].numpy() - ref_gaussian_1d(profile, sigma)[None]).max() <= 2e-3


def test_gaussian_along_columns_with_a_short_image():
    rng = np.random.default_rng(7)
    column = rng.uniform(0, 255, 4)
    x = torch.tensor(column, dtype=torch.float32).view(1, 1, 4, 1).expand(1, 2, 4, 3).contiguous()
    out = _gaussian(x, 2.0)  # radius 6 > 4 lines: cut kernel along columns, 3 wide along rows
    assert np.abs(out[0, 1, :, 0].numpy() - ref_gaussian_1d(column, 2.0)).max() <= 2e-3


def test_gaussian_of_a_short_wide_image_cuts_the_kernel_along_columns():
    rng = np.random.default_rng(8)
    column = rng.uniform(0, 255, 4)
    x = torch.tensor(column, dtype=torch.float32).view(1, 1, 4, 1).expand(1, 1, 4, 20).contiguous()
    out = _gaussian(x, 2.0)  # radius 6: over the 4 lines, under the 20 columns
    assert np.abs(out[0, 0, :, 9].numpy() - ref_gaussian_1d(column, 2.0)).max() <= 2e-3


def test_gaussian_of_double_precision_planes():
    profile = np.array([0.0, 255.0, 0.0, 30.0, 90.0])
    x = torch.tensor(profile, dtype=torch.float64).view(1, 1, 1, 5).expand(1, 2, 3, 5).contiguous()
    out = _gaussian(x, 2.0)
    assert out.dtype == torch.float64
    assert np.abs(out[0, 1, 1].numpy() - ref_gaussian_1d(profile, 2.0)).max() <= 1e-6


def test_gaussian_of_a_single_line_only_blurs_along_it():
    profile = np.array([0.0, 255.0, 0.0, 30.0, 90.0])
    x = torch.tensor(profile, dtype=torch.float32).view(1, 1, 1, 5)
    out = _gaussian(x, 1.0)
    assert out.shape == (1, 1, 1, 5)
    assert np.abs(out[0, 0, 0].numpy() - ref_gaussian_1d(profile, 1.0)).max() <= 2e-3


def test_gaussian_of_sigma_zero_leaves_the_image_unchanged():
    x = torch.tensor([[0.0, 255.0, 0.0, 10.0, 20.0, 0.0]]).view(1, 1, 1, 6).expand(1, 1, 6, 6).contiguous()
    assert (_gaussian(x, 0.0) - x).abs().max() <= 1e-4


# --- parsing -----------------------------------------------------------------------------------


@pytest.mark.parametrize("text, rgb", [("red", (255, 0, 0)), ("white", (255, 255, 255)),
                                       ("#102030", (16, 32, 48)), ("0x102030", (16, 32, 48)),
                                       ("LimeGreen", (50, 205, 50)), ("#ABCDEF", (171, 205, 239))])
def test_parse_color_reads_names_and_hex(text, rgb):
    assert parse_color(text) == rgb


@pytest.mark.parametrize("junk", ["notacolour", "", "#12", "red:s=4x4", "red@0.5", "#", "0x", "re d", "blue\n"])
def test_parse_color_rejects_what_is_not_a_colour(junk):
    assert parse_color(junk) is None


def test_parse_background_blur():
    bg = parse_background("blur")
    assert isinstance(bg, BlurBackground) and bg.strength == 20.0
    bg = parse_background("  blur:15 ")
    assert isinstance(bg, BlurBackground) and bg.strength == 15.0 and bg.description == "blur:15"


def test_parse_background_blur_errors():
    with pytest.raises(ConfigError, match=r"'blur:x': blur strength must be a number, e.g. blur:20"):
        parse_background("blur:x")
    with pytest.raises(ConfigError, match="out of range"):
        parse_background("blur:0")
    with pytest.raises(ConfigError, match="not a colour"):
        parse_background("blurry")


def test_parse_background_colour():
    bg = parse_background(" #ff8000 ")
    assert isinstance(bg, ColorBackground) and bg.rgb == (255, 128, 0)
    assert bg.description == "colour #ff8000 (255, 128, 0)"


def test_parse_background_image_file(tmp_path):
    path = write_image(tmp_path / "sky.png", np.full((3, 5, 3), (10, 120, 230), np.uint8))
    bg = parse_background(str(path))
    assert isinstance(bg, ImageBackground) and bg.rgb.shape == (3, 5, 3)
    assert bg.rgb[1, 1].tolist() == [10, 120, 230]


def test_parse_background_image_file_named_like_a_colour(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_image(tmp_path / "red.png", np.full((2, 2, 3), (0, 0, 255), np.uint8)).rename(tmp_path / "red")
    assert isinstance(parse_background("red"), ImageBackground)  # an existing file wins


def test_parse_background_video_file(tmp_path):
    bg = parse_background(str(write_video(tmp_path / "clip.mkv", [(0, 250, 0), (250, 0, 0)])))
    try:
        assert isinstance(bg, VideoBackground)
        assert np.abs(bg(torch.zeros(1, 3, 4, 4), None)[0, :, 0, 0].numpy() - [0, 250, 0]).max() <= 3
    finally:
        bg.close()


def test_parse_background_unreadable_file_is_a_media_error(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(MediaError, match=r"^background .*empty\.mp4 is empty"):
        parse_background(str(empty))


def test_parse_background_missing_path_vs_unknown_word(tmp_path):
    with pytest.raises(MediaError, match=r"background .*missing\.png does not exist: check the path"):
        parse_background(str(tmp_path / "missing.png"))
    with pytest.raises(MediaError, match="does not exist: check the path"):
        parse_background("no/such/folder")
    with pytest.raises(MediaError, match="does not exist"):
        parse_background("sky.jpg")
    with pytest.raises(ConfigError) as err:
        parse_background("skyy")
    assert not isinstance(err.value, MediaError)
    assert str(err.value) == ("background 'skyy' is not a colour (name or #RRGGBB), an image or video file, "
                              "or blur[:strength]")
