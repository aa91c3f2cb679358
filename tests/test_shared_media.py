"""The video outputs on the real clips in ../shared/media (Intel IoT devkit sample videos,
CC BY 4.0): webcam-style H.264 in .mkv (full-range yuvj420p, the first starting at 33 ms) and
an .mp4. Skipped where ../shared is absent; CI has it."""

from pathlib import Path

import av
import numpy as np
import pytest

from .conftest import SHARED, md5, missing_shared
from .test_cli_images import run
from .test_video_matte import FAST
from .test_video_matte import decoded, model_alpha, seconds

MEDIA = SHARED / "media"
WEBCAM = ["book.mkv", "help.mkv", "please.mkv", "walk.mkv"]


@pytest.fixture
def media() -> Path:
    if not all((MEDIA / name).is_file() for name in WEBCAM):
        missing_shared("needs the clips in ../shared/media")
    return MEDIA


@pytest.mark.parametrize("name", WEBCAM[1:])  # book.mkv, the longest, is left to benchmarks
def test_prores_4444_on_real_clips(name, u2netp_store, media, tmp_path):
    clip = media / name
    before = md5(clip)
    out = tmp_path / "out.mov"
    result = run("matte", clip, "-o", out, *FAST)
    assert result.exit_code == 0, result.output
    with av.open(str(out)) as container:
        ctx = container.streams.video[0].codec_context
        assert (ctx.name, ctx.profile, ctx.width, ctx.height) == ("prores", "4444", 640, 480)
    ours, source = decoded(out), decoded(clip)
    assert len(ours) == len(source) > 50
    assert seconds(ours) == seconds(source)  # so the duration is the input's too
    alpha = np.stack([f.to_ndarray(format="rgba")[..., 3] for f in ours])
    assert np.abs(alpha.astype(int) - model_alpha(clip)).max() <= 2
    assert md5(clip) == before


def test_webm_alpha_on_a_real_clip(u2netp_store, media, tmp_path):
    clip = media / "help.mkv"
    out = tmp_path / "out.webm"
    assert run("matte", clip, "-o", out, *FAST).exit_code == 0
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "vp9" and stream.metadata.get("alpha_mode") == "1"
    ours = decoded(out, "libvpx-vp9")
    assert ours[0].format.name == "yuva420p" and len(ours) == len(decoded(clip))
    alpha = np.stack([f.to_ndarray(format="rgba")[..., 3] for f in ours])
    assert np.abs(alpha.astype(int) - model_alpha(clip)).mean() < 3


def test_replace_on_the_mp4_clip_trimmed(u2netp_store, tmp_path):
    clip = MEDIA / "one-by-one-person-detection.mp4"
    if not clip.is_file():
        missing_shared("needs ../shared/media/one-by-one-person-detection.mp4")
    out = tmp_path / "out.mp4"
    assert run("replace", clip, "-o", out, "-b", "blur", "--start", "20", "--end", "23", *FAST).exit_code == 0
    frames = decoded(out)
    assert len(frames) == 30 and (frames[0].width, frames[0].height) == (768, 432)  # 10 fps
