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

from .conftest import md5, missing_shared
from .test_api import load_samples_module
from .test_cli_images import FAST as IMAGE_FAST
from .test_cli_images import run

# These tests check what the pipeline and the encoders do with the network's matte, so they
# compare against the plain per-frame matte (smoothing and refinement have tests of their own).
FAST = [*IMAGE_FAST, "--smooth", "0", "--no-refine", "--crop", "off"]

N_FRAMES = 12


def make_clip(path: Path, frames: int = N_FRAMES, size=(120, 160), rate: int = 25, **kw) -> Path:
    """A rolling-ball H.264 clip (with a tone when audio=True), made by the project's sample script."""
    return load_samples_module().write_clip(path, frames, size, rate, audio=kw.pop("audio", False), **kw)


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


def audio_seconds(path: Path) -> tuple[str, float]:
    """The first audio stream's codec and duration (first packet to end of last), from its packets."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        packets = [p for p in container.demux(stream) if p.size]
        end = packets[-1].pts + packets[-1].duration
        return stream.codec_context.name, float((end - packets[0].pts) * stream.time_base)


def model_alpha(clip: Path, input_size: int = 64) -> np.ndarray:
    """The model's matte of every frame of ``clip``, computed directly: [N,H,W] uint8."""
    from .conftest import weights_dir

    seg = Segmenter.from_config(ModelConfig(str(weights_dir() / "u2netp.onnx"), input_size, Normalization.FIXED),
                                DeviceConfig(DeviceKind.CPU))
    frames = torch.from_numpy(np.stack([f.to_ndarray(format="rgb24") for f in decoded(clip)]))
    return (seg(frames)[:, 0] * 255).round().byte().numpy()


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """12 frames at 25 fps with a stereo AAC tone muxed in."""
    return make_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", audio=True)


@pytest.fixture(scope="module")
def expected_alpha(clip) -> np.ndarray:
    from .conftest import weights_dir

    if weights_dir() is None:
        missing_shared("needs rembg's u2netp.onnx in $U2NET_HOME or ../shared/models")
    return model_alpha(clip)


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
    codec, duration = audio_seconds(out)
    assert codec == "aac" and abs(duration - audio_seconds(clip)[1]) < 0.001  # remuxed as it was
    assert abs(duration - N_FRAMES / 25) < 1 / 25


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
    assert seconds(frames) == seconds(decoded(clip))
    codec, duration = audio_seconds(out)
    assert codec == "opus" and abs(duration - N_FRAMES / 25) < 1 / 25  # AAC can't go in WebM: transcoded


def test_batches_give_the_same_matte(u2netp_store, clip, expected_alpha, tmp_path):
    out = tmp_path / "batched.mkv"
    assert run("matte", clip, "-o", out, "--matte-only", "--batch", "5", *FAST).exit_code == 0  # 5+5+2 frames
    grey = np.stack([f.to_ndarray() for f in decoded(out)])
    assert grey.shape[0] == N_FRAMES and np.abs(grey.astype(int) - expected_alpha).max() <= 1


def test_png_sequence_and_grey_matte(u2netp_store, clip, expected_alpha, tmp_path):
    assert run("matte", clip, "-o", tmp_path / "seq", *FAST).exit_code == 0
    with av.open(str(tmp_path / "seq" / "audio.wav")) as wav:  # the audio, beside the frames
        assert wav.streams.audio[0].codec_context.name == "pcm_s16le"
        assert abs(wav.duration / av.time_base - N_FRAMES / 25) < 1 / 25
    pngs = sorted((tmp_path / "seq").glob("*.png"))
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


def test_overwriting_a_png_sequence_leaves_no_stale_frames(u2netp_store, clip, tmp_path):
    frames = tmp_path / "frames"
    assert run("matte", clip, "-o", frames / "f_%03d.png", *FAST).exit_code == 0
    assert len(list(frames.glob("f_*.png"))) == N_FRAMES and (frames / "audio.wav").exists()
    (frames / "notes.txt").write_text("the user's own file")
    silent = make_clip(tmp_path / "silent.mp4", frames=4)
    assert run("matte", silent, "-o", frames / "f_%03d.png", *FAST).exit_code == 2  # not empty
    assert run("matte", silent, "-o", frames / "f_%03d.png", "--overwrite", *FAST).exit_code == 0
    assert sorted(p.name for p in frames.iterdir()) == ["f_000.png", "f_001.png", "f_002.png", "f_003.png", "notes.txt"]


def test_rotated_clip_comes_out_upright_with_no_rotation_tag(u2netp_store, tmp_path):
    clip = make_clip(tmp_path / "phone.mp4", frames=4, rotation=90)  # stored 160x120, shown 120x160
    out = tmp_path / "phone.mov"
    result = run("matte", clip, "-o", out, *FAST)
    assert result.exit_code == 0, result.output
    assert "turned 90° upright" in result.stderr
    frames = decoded(out)
    assert (frames[0].width, frames[0].height) == (120, 160)
    assert all(f.rotation == 0 for f in frames)  # no display matrix left to turn it again
    source = [np.rot90(f.to_ndarray(format="rgb24")) for f in decoded(clip)]  # turned by hand
    assert frames[0].to_ndarray(format="rgb24").shape == source[0].shape
    for ours, expected in zip(frames, source):
        assert np.abs(ours.to_ndarray(format="rgb24").astype(int) - expected).mean() < 3


def test_variable_frame_rate_and_start_offset_are_kept(u2netp_store, tmp_path):
    times = [2.0, 2.04, 2.08, 2.2, 2.24, 2.5, 2.52, 2.9]  # starts at 2 s, irregular gaps
    clip = make_clip(tmp_path / "vfr.mp4", timestamps=times)
    for out in (tmp_path / "vfr.mov", tmp_path / "vfr.webm"):
        assert run("matte", clip, "-o", out, *FAST).exit_code == 0
        got = [float(t) for t in seconds(decoded(out, "libvpx-vp9" if out.suffix == ".webm" else None))]
        assert got == pytest.approx(times, abs=1e-6)


def test_odd_size_and_10_bit_input(u2netp_store, tmp_path):
    odd = make_clip(tmp_path / "odd.mp4", frames=3, size=(121, 161), pix_fmt="yuv444p")
    assert run("matte", odd, "-o", tmp_path / "odd.webm", *FAST).exit_code == 0  # VP9 takes odd sizes
    frames = decoded(tmp_path / "odd.webm", "libvpx-vp9")
    assert (frames[0].width, frames[0].height, len(frames)) == (161, 121, 3)

    deep = make_clip(tmp_path / "deep.mp4", frames=3, pix_fmt="yuv420p10le")
    assert decoded(deep)[0].format.name == "yuv420p10le"
    out = tmp_path / "deep.mov"
    assert run("matte", deep, "-o", out, *FAST).exit_code == 0
    alpha = np.stack([f.to_ndarray(format="rgba")[..., 3] for f in decoded(out)])
    assert alpha.shape == (3, 120, 160)
    assert np.abs(alpha.astype(int) - model_alpha(deep)).max() <= 2


def test_start_and_end_trim_video_and_audio(u2netp_store, tmp_path):
    clip = make_clip(tmp_path / "long.mp4", frames=25, audio=True)  # 1 s
    out = tmp_path / "trim.mov"
    assert run("matte", clip, "-o", out, "--start", "0.4", "--end", "0.8", *FAST).exit_code == 0
    frames = decoded(out)
    assert len(frames) == 10 and float(seconds(frames)[0]) == 0.0  # frames 10..19, shifted to 0
    source = decoded(clip)
    rgb = frames[0].to_ndarray(format="rgb24").astype(int)
    assert np.abs(rgb - source[10].to_ndarray(format="rgb24")).mean() < np.abs(rgb - source[9].to_ndarray(format="rgb24")).mean()
    _, duration = audio_seconds(out)
    assert abs(duration - 0.4) < 1 / 25


def corrupt_middle(source: Path, target: Path) -> Path:
    data = bytearray(source.read_bytes())
    at = len(data) * 4 // 10
    data[at:at + 3000] = np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8).tobytes()
    target.write_bytes(bytes(data))
    return target


def truncated(source: Path, target: Path, keep: float = 0.6) -> Path:
    data = source.read_bytes()
    target.write_bytes(data[:int(len(data) * keep)])
    return target


def test_damaged_inputs_give_every_decodable_frame_and_say_how_many_were_lost(u2netp_store, tmp_path):
    clip = make_clip(tmp_path / "long.mp4", frames=60, audio=True)
    # mid-stream damage: decoding goes on past it
    out = tmp_path / "a.mp4"
    result = run("replace", corrupt_middle(clip, tmp_path / "bad.mp4"), "-o", out, "-b", "red", *FAST)
    assert result.exit_code == 0, result.output
    written = len(decoded(out))
    assert 0 < written < 60
    assert f"{60 - written} of 60 frames are missing or could not be decoded" in result.stderr
    # cut short, index at the front (faststart): what is there is processed
    fast = tmp_path / "fast.mp4"
    assert run("replace", clip, "-o", fast, "-b", "red", *FAST).exit_code == 0  # our .mp4s are faststart
    result = run("replace", truncated(fast, tmp_path / "cut.mp4"), "-o", tmp_path / "b.mp4", "-b", "red", *FAST)
    assert result.exit_code == 0, result.output
    written = len(decoded(tmp_path / "b.mp4"))
    assert 0 < written < 60 and f"{60 - written} of 60 frames are missing or could not be decoded" in result.stderr


def unwritable(tmp_path: Path) -> Path:
    return Path("/proc/u2video-test/out.mov")  # root can't create folders in /proc (tests run as root)


@pytest.mark.parametrize("case", ["alpha in mp4", "audio only", "text named mp4", "empty file", "output is input",
                                  "truncated mp4", "unwritable folder", "unknown preset", "preset for replace"])
def test_bad_video_input(case, u2netp_store, clip, tmp_path):
    source = {"audio only": lambda: audio_only(tmp_path / "tone.m4a"),
              "text named mp4": lambda: (tmp_path / "x.mp4").write_text("hello") and tmp_path / "x.mp4",
              "empty file": lambda: (tmp_path / "e.mp4").write_bytes(b"") or tmp_path / "e.mp4",
              "truncated mp4": lambda: truncated(clip, tmp_path / "t.mp4"),  # index at the end: unreadable
              }.get(case, lambda: clip)()
    out = {"alpha in mp4": tmp_path / "out.mp4", "output is input": source,
           "unwritable folder": unwritable(tmp_path)}.get(case, tmp_path / "out.mov")
    extra = {"unknown preset": ["--preset", "nope"], "preset for replace": ["--preset", "greenscreen"]}.get(case, [])
    before = md5(source)
    result = run("matte", source, "-o", out, "--overwrite", *extra, *FAST)
    assert result.exit_code in (2, 3), result.output
    errors = [l for l in result.stderr.splitlines() if l.startswith("u2video: error:")]
    assert len(errors) == 1 and "Traceback" not in result.output
    assert md5(source) == before
    assert not list(tmp_path.glob("out*")) and not list(tmp_path.glob(".*part*"))


def test_ctrl_c_leaves_a_playable_partial_file(u2netp_store, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    clip = make_clip(tmp_path / "long.mp4", frames=40, audio=True)
    out = tmp_path / "out.mov"
    # full-size network input: ~0.3 s a frame on 2 cores, so the run is still going when interrupted
    proc = subprocess.Popen([sys.executable, "-m", "u2video", "matte", str(clip), "-o", str(out), "--device", "cpu"],
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(p.stat().st_size > 20_000 for p in tmp_path.glob(".out.*part*")):
        time.sleep(0.1)  # until a few frames are in the temporary file
    proc.send_signal(signal.SIGINT)
    stderr = proc.communicate(timeout=60)[1]
    assert proc.returncode == 130, stderr
    partial = tmp_path / "out.partial.mov"
    assert f"kept, finalised and playable, in {partial}" in stderr
    assert not out.exists() and not list(tmp_path.glob(".*part*"))
    frames = decoded(partial)
    assert 0 < len(frames) < 40 and frames[0].format.name.startswith("yuva444p")
    assert seconds(frames) == seconds(decoded(clip))[:len(frames)]
    _, duration = audio_seconds(partial)
    assert 0 < duration < 40 / 25


class FailingSink:
    """A sink whose disk 'fills up' after two frames."""

    written = None  # never finished
    planar_format = None

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
    from u2video.config import MatteConfig
    from u2video.errors import MediaError
    from u2video.alpha import MatteStage
    from u2video.media.source import VideoSource
    from u2video.pipeline import run_video
    from u2video.progress import SilentReporter

    clip = make_clip(tmp_path / "long.mp4", frames=40)
    seg = Segmenter.from_config(ModelConfig("u2netp", 64, Normalization.FIXED), DeviceConfig(DeviceKind.CPU))
    sink, outcome = FailingSink(), {}

    def work():
        with VideoSource(clip) as video:
            try:
                run_video(video, seg, MatteStage(MatteConfig(0, False)), to_rgba, sink, 1, SilentReporter())
            except MediaError as e:
                outcome["error"] = str(e)

    runner = threading.Thread(target=work, daemon=True)
    runner.start()
    runner.join(timeout=120)
    assert not runner.is_alive(), "run_video hung after the encoder failed"
    assert outcome.get("error") == "disk full"
    assert sink.salvaged and not sink.finished and sink.frames == 2


def test_prores_quantiser_from_the_preset_takes_effect_and_alpha_stays_lossless(tmp_path):
    """The ProRes presets' qscale is a fixed quantiser (prores_ks ignores it as an option): a
    coarser one makes a smaller file, and the alpha plane decodes bit-exact either way."""
    from dataclasses import replace
    from fractions import Fraction

    from u2video.media.writers import VideoSink
    from u2video.presets import load_preset

    fmt = load_preset("prores4444").format
    rng = np.random.default_rng(4)
    yy, xx = np.mgrid[0:96, 0:128]
    alpha = (np.clip(1.5 - np.hypot((xx - 64) / 32, (yy - 48) / 24), 0, 1) * 255).astype(np.uint8)
    rgba = [np.dstack([(rng.random((96, 128, 3)) * 255).astype(np.uint8), alpha]) for _ in range(3)]
    sizes = {}
    for q in ("2", "24"):
        out = tmp_path / f"q{q}.mov"
        sink = VideoSink(out, replace(fmt, codec_options={**fmt.codec_options, "qscale": q}), 128, 96,
                         Fraction(25), Fraction(1, 25))
        for i, pixels in enumerate(rgba):
            sink.write(pixels, i)
        sink.finish()
        sizes[q] = out.stat().st_size
        want = av.VideoFrame.from_ndarray(rgba[0], format="rgba").reformat(format="yuva444p10le")
        with av.open(str(out)) as container:
            got = next(container.decode(video=0))
        plane = lambda f: np.frombuffer(f.planes[3], np.uint16).reshape(96, -1)[:, :128]  # noqa: E731
        shift = {"yuva444p10le": 0, "yuva444p12le": 2}[got.format.name]  # the decoder may widen it
        assert np.array_equal(plane(got) >> shift, plane(want))
    assert sizes["24"] < 0.8 * sizes["2"], sizes  # ignored, both were the same size


@pytest.mark.parametrize("encoders", [1, 3])
def test_prores_written_with_frame_threads_holds_the_packets_of_a_one_thread_encode(encoders, tmp_path):
    """ProRes is encoded on frame threads (each frame apart; one encoder) or by segment encoders
    (several): the file's packets, in order with their times, are those of a one-thread encode of
    the same frames."""
    from fractions import Fraction

    from u2video.media.writers import VideoSink
    from u2video.presets import load_preset

    fmt = load_preset("prores4444").format
    rng = np.random.default_rng(6)
    rgba = [(rng.random((96, 128, 4)) * 255).astype(np.uint8) for _ in range(9)]
    out = tmp_path / "threads.mov"
    sink = VideoSink(out, fmt, 128, 96, Fraction(25), Fraction(1, 25), encoders=encoders)
    for i, pixels in enumerate(rgba):
        sink.write(pixels, i)
    sink.finish()
    encoder = av.CodecContext.create("prores_ks", "w")
    encoder.width, encoder.height, encoder.pix_fmt, encoder.time_base = 128, 96, fmt.pix_fmt, Fraction(1, 25)
    encoder.options = {k: v for k, v in fmt.codec_options.items() if k != "qscale"}
    encoder.qscale, encoder.global_quality = True, int(fmt.codec_options["qscale"])
    encoder.thread_type, encoder.thread_count = "SLICE", 1
    want = []
    for i, pixels in enumerate(rgba):
        frame = av.VideoFrame.from_ndarray(pixels, format="rgba")
        frame.pts = i
        want += [bytes(p) for p in encoder.encode(frame)]
    want += [bytes(p) for p in encoder.encode(None)]
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        got = [(bytes(p), p.pts * p.time_base) for p in container.demux(stream) if p.size]
    assert [data for data, _ in got] == want
    assert [t for _, t in got] == [Fraction(i, 25) for i in range(9)]
