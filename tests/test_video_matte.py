"""`u2video matte` on video: ProRes 4444 / VP9-alpha / PNG sequence / grey matte, on clips the
tests generate with PyAV, reopened and checked frame by frame."""

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch

from u2video.config import DeviceConfig, DeviceKind, ModelConfig, Normalization
from u2video.segmenter import Segmenter

from .conftest import md5
from .test_api import load_samples_module
from .test_cli_images import FAST, run

N_FRAMES = 12


def make_clip(path: Path, frames: int = N_FRAMES, size=(120, 160), rate: int = 25) -> Path:
    """A moving-ball H.264 clip made from the project's demo still."""
    still = load_samples_module().render_still(*size)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = size[1], size[0], "yuv420p"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.roll(still, 3 * i, axis=1), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def decoded(path: Path, codec: str | None = None) -> list[av.VideoFrame]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        if codec is None:
            return list(container.decode(stream))
        decoder = av.CodecContext.create(codec, "r")  # FFmpeg's own vp9 decoder drops alpha
        frames = [f for p in container.demux(stream) if p.size for f in decoder.decode(p)]
        return frames


def seconds(frames: list[av.VideoFrame]) -> list[Fraction]:
    return [f.pts * f.time_base for f in frames]


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clip") / "clip.mp4")


@pytest.fixture(scope="module")
def expected_alpha(clip) -> np.ndarray:
    """The model's matte of every source frame, computed directly: [N,H,W] uint8."""
    from .conftest import weights_dir

    if weights_dir() is None:
        pytest.skip("needs rembg's u2netp.onnx in $U2NET_HOME or ../shared/models")
    seg = Segmenter.from_config(ModelConfig(str(weights_dir() / "u2netp.onnx"), 64, Normalization.FIXED),
                                DeviceConfig(DeviceKind.CPU))
    frames = torch.from_numpy(np.stack([f.to_ndarray(format="rgb24") for f in decoded(clip)]))
    return (seg(frames)[:, 0] * 255).round().byte().numpy()


def test_prores_4444_with_alpha(u2netp_store, clip, expected_alpha, tmp_path):
    out = tmp_path / "out.mov"
    result = run("matte", clip, "-o", out, *FAST)
    assert result.exit_code == 0, result.output
    with av.open(str(out)) as container:
        ctx = container.streams.video[0].codec_context
        assert (ctx.name, ctx.profile) == ("prores", "4444")
        assert ctx.pix_fmt.startswith("yuva444p")  # FFmpeg's decoder reports 4444 as 12-bit
    frames, source = decoded(out), decoded(clip)
    assert len(frames) == len(source) == N_FRAMES
    assert seconds(frames) == seconds(source)
    alpha = np.stack([f.to_ndarray(format="rgba")[..., 3] for f in frames])
    assert np.abs(alpha.astype(int) - expected_alpha).max() <= 2  # 10-bit alpha, rounding only
    assert alpha.max() - alpha.min() > 100  # a subject and a background, not a flat matte


def test_webm_vp9_alpha(u2netp_store, clip, expected_alpha, tmp_path):
    out = tmp_path / "out.webm"
    assert run("matte", clip, "-o", out, *FAST).exit_code == 0
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "vp9" and stream.metadata.get("alpha_mode") == "1"
    frames = decoded(out, codec="libvpx-vp9")
    assert len(frames) == N_FRAMES and frames[0].format.name == "yuva420p"
    alpha = np.stack([f.to_ndarray(format="rgba")[..., 3] for f in frames])
    assert np.abs(alpha.astype(int) - expected_alpha).mean() < 3  # lossy, but the same matte


def test_png_sequence_and_grey_matte(u2netp_store, clip, expected_alpha, tmp_path):
    assert run("matte", clip, "-o", tmp_path / "seq", *FAST).exit_code == 0
    pngs = sorted((tmp_path / "seq").iterdir())
    assert [p.name for p in pngs[:2]] == ["00000.png", "00001.png"] and len(pngs) == N_FRAMES
    alpha = np.stack([cv2.imread(str(p), cv2.IMREAD_UNCHANGED)[..., 3] for p in pngs])
    assert np.abs(alpha.astype(int) - expected_alpha).max() <= 1

    assert run("matte", clip, "-o", tmp_path / "matte.mkv", "--matte-only", *FAST).exit_code == 0
    frames = decoded(tmp_path / "matte.mkv")
    assert frames[0].format.name == "gray" and len(frames) == N_FRAMES
    grey = np.stack([f.to_ndarray() for f in frames])
    assert np.abs(grey.astype(int) - alpha).max() <= 1  # lossless FFV1


def audio_only(path: Path) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=48000)
        for i in range(20):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 48000, i * 1024
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


@pytest.mark.parametrize("case", ["alpha in mp4", "audio only", "text named mp4", "empty file", "output is input"])
def test_bad_video_input(case, u2netp_store, clip, tmp_path):
    source = {"audio only": lambda: audio_only(tmp_path / "tone.m4a"),
              "text named mp4": lambda: (tmp_path / "x.mp4").write_text("hello") and tmp_path / "x.mp4",
              "empty file": lambda: (tmp_path / "e.mp4").write_bytes(b"") or tmp_path / "e.mp4"}.get(case, lambda: clip)()
    out = {"alpha in mp4": tmp_path / "out.mp4", "output is input": source}.get(case, tmp_path / "out.mov")
    before = md5(source)
    result = run("matte", source, "-o", out, "--overwrite", *FAST)
    assert result.exit_code in (2, 3), result.output
    errors = [l for l in result.stderr.splitlines() if l.startswith("u2video: error:")]
    assert len(errors) == 1 and "Traceback" not in result.output
    assert md5(source) == before
    assert not list(tmp_path.glob("out*")) and not list(tmp_path.glob(".*part*"))


class FailingSink:
    """A sink whose disk 'fills up' after two frames."""

    def __init__(self):
        self.frames, self.salvaged, self.finished = 0, False, False

    def write(self, pixels, pts):
        if self.frames == 2:
            import time
            time.sleep(0.5)  # let the network fill the queue to the encoder first
            from u2video.errors import MediaError
            raise MediaError("disk full")
        self.frames += 1

    def finish(self):
        self.finished = True

    def salvage(self):
        self.salvaged = True
        return None


def test_an_encoder_failure_stops_the_run_instead_of_hanging(u2netp_store, tmp_path):
    import threading

    from u2video.compose import to_rgba
    from u2video.errors import MediaError
    from u2video.media.source import VideoSource
    from u2video.pipeline import run_video
    from u2video.progress import SilentReporter

    clip = make_clip(tmp_path / "long.mp4", frames=40)
    seg = Segmenter.from_config(ModelConfig("u2netp", 64, Normalization.FIXED), DeviceConfig(DeviceKind.CPU))
    sink, outcome = FailingSink(), {}

    def work():
        with VideoSource(clip) as video:
            try:
                run_video(video, seg, to_rgba, sink, 1, SilentReporter())
            except MediaError as e:
                outcome["error"] = str(e)

    runner = threading.Thread(target=work, daemon=True)
    runner.start()
    runner.join(timeout=120)
    assert not runner.is_alive(), "run_video hung after the encoder failed"
    assert outcome.get("error") == "disk full"
    assert sink.salvaged and not sink.finished and sink.frames == 2
