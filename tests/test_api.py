"""The Python API end to end on the project's own demo image, with the real u2netp weights."""

import importlib.util
from pathlib import Path

import numpy as np

import u2video
from u2video.progress import SilentReporter

from .conftest import REPO, read_rgba, write_rgb


def load_samples_module():
    spec = importlib.util.spec_from_file_location("make_samples", REPO / "samples" / "make_samples.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_demo_still_is_cut_out(u2netp_store, tmp_path):
    still = load_samples_module().render_still()
    src = write_rgb(tmp_path / "still.png", still)
    reporter = SilentReporter()
    written = u2video.matte(src, tmp_path / "cut.png", device=u2video.DeviceConfig(u2video.DeviceKind.CPU),
                            reporter=reporter)
    assert written == [tmp_path / "cut.png"]
    alpha = read_rgba(written[0])[..., 3].astype(np.float32) / 255
    h, w = alpha.shape
    yy, xx = np.mgrid[0:h, 0:w]
    dist = np.sqrt((xx - w * 0.45) ** 2 + (yy - h * 0.52) ** 2)
    r = h * 0.22
    assert alpha[dist < r * 0.9].mean() > 0.95  # the ball
    assert alpha[dist > r * 1.3].mean() < 0.05  # wall, table, shadow and box
    assert reporter.warnings == []


def test_api_accepts_a_list_and_a_folder_output(u2netp_store, tmp_path):
    sources = [write_rgb(tmp_path / f"s{i}.png", load_samples_module().render_still(96, 128, seed=i)) for i in range(2)]
    written = u2video.matte(sources, tmp_path / "masks", model=u2video.ModelConfig(input_size=64),
                            options=u2video.OutputConfig(mask_only=True))
    assert [p.name for p in written] == ["s0.png", "s1.png"]
    assert all(Path(p).parent == tmp_path / "masks" for p in written)
