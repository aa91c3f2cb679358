"""The defaults the README promises, through the command line: smoothing (6 frames each side for
files, 3 live), refinement and the crop pass, per command; and the pixels of the default video
matte, which every other pipeline test turns off for speed (--smooth 0 --no-refine)."""

from pathlib import Path

import av
import numpy as np
from typer.testing import CliRunner

import u2video.api
from u2video.cli import app
from u2video.config import Crop, MatteConfig

from .test_cli_images import FAST
from .test_video_matte import make_clip


def matte_config_of(monkeypatch, function: str, *args: str) -> MatteConfig:
    """The MatteConfig the command line hands to ``u2video.api.<function>`` for ``args``."""
    seen = {}

    def record(*_, matte_config, **__):
        seen["matte_config"] = matte_config

    monkeypatch.setattr(u2video.api, function, record)
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return seen["matte_config"]


def test_each_command_smooths_refines_and_crops_by_default(monkeypatch, tmp_path, u2netp_store):
    clip = make_clip(tmp_path / "clip.mp4")
    files = MatteConfig(smooth=6, refine=True, crop=Crop.AUTO)  # README: "--smooth N ... (default 6)"
    assert matte_config_of(monkeypatch, "matte", "matte", str(clip), "-o", str(tmp_path / "a.mov")) == files
    assert matte_config_of(monkeypatch, "replace", "replace", str(clip), "-o", str(tmp_path / "b.mp4"),
                           "-b", "red") == files
    live = matte_config_of(monkeypatch, "webcam", "webcam", "--source", str(clip), "--no-virtual")
    assert live == MatteConfig(smooth=3, refine=True, crop=Crop.OFF)  # README, "Live": smoothing 3 + refine
    # and a flag still wins over each default
    assert matte_config_of(monkeypatch, "matte", "matte", str(clip), "-o", str(tmp_path / "a.mov"), "--smooth", "2",
                           "--no-refine", "--crop", "off") == MatteConfig(smooth=2, refine=False, crop=Crop.OFF)


def mattes(path: Path) -> np.ndarray:
    """[N,H,W] uint8: the grey matte of every frame of a --matte-only .mkv."""
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="gray") for f in container.decode(video=0)])


def test_the_default_video_matte_is_smoothed_and_refined(tmp_path, u2netp_store):
    clip = make_clip(tmp_path / "clip.mp4", frames=16)

    def matte(name: str, *flags: str) -> np.ndarray:
        out = tmp_path / name
        result = CliRunner().invoke(app, ["matte", str(clip), "-o", str(out), "--matte-only", *FAST, *flags])
        assert result.exit_code == 0, result.output
        return mattes(out)

    default = matte("default.mkv")
    assert default.shape == (16, 120, 160)
    assert np.array_equal(default, matte("spelled-out.mkv", "--smooth", "6", "--refine", "--crop", "auto"))
    unsmoothed, unrefined = matte("unsmoothed.mkv", "--smooth", "0"), matte("unrefined.mkv", "--no-refine")
    # each default changes the pixels (by more than rounding) where the ball rolls
    assert np.abs(default.astype(int) - unsmoothed).max() > 8
    assert np.abs(default.astype(int) - unrefined).max() > 8
