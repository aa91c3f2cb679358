"""Parallel segment encoding (media/segments.py): intra-only outputs encoded by several encoders
on runs of frames are the file one encoder writes — one stream, the same packets, the same
times, the same audio — and a run stopped half-way keeps every frame written, in order."""

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from u2video.media.writers import VideoSink
from u2video.presets import load_preset

from .test_video_matte import make_clip

W, H = 128, 96


def moving_frames(count: int, grey: bool, seed: int = 3) -> list[np.ndarray]:
    """A textured disc moving over noise: frames that differ, so a frame out of place shows."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:H, 0:W]
    frames = []
    for i in range(count):
        disc = np.hypot(xx - 10 - 4 * i, yy - 48) < 20
        rgb = (rng.random((H, W, 3)) * 80).astype(np.uint8)
        rgb[disc] = (200, 120 + i, 40)
        alpha = np.where(disc, 255, (xx * 2) % 256).astype(np.uint8)
        frames.append(alpha if grey else np.dstack([rgb, alpha]))
    return frames


def encode(out: Path, preset: str, frames: list[np.ndarray], encoders: int, source: Path | None = None,
           finish: bool = True) -> VideoSink:
    fmt = load_preset(preset).format
    sink = VideoSink(out, fmt, W, H, Fraction(25), Fraction(1, 25), source=source, encoders=encoders)
    for i, pixels in enumerate(frames):
        sink.write(pixels, i)
    if finish:
        sink.finish()
    return sink


def packets(path: Path, kind: str = "video") -> list[tuple[bytes, Fraction]]:
    with av.open(str(path)) as container:
        stream = getattr(container.streams, kind)[0]
        return [(bytes(p), p.pts * p.time_base) for p in container.demux(stream) if p.size]


def pixels(path: Path) -> list[np.ndarray]:
    """Every decoded frame's planes, as they are (ProRes decodes to 12-bit planes numpy can't take)."""
    with av.open(str(path)) as container:
        return [np.concatenate([np.frombuffer(p, np.uint8) for p in f.planes]) for f in container.decode(video=0)]


@pytest.mark.parametrize("preset", ["prores4444", "matte"])  # ProRes 4444 .mov, FFV1 grey matte .mkv
def test_segment_encoders_write_the_file_one_encoder_writes(preset, tmp_path):
    frames = moving_frames(27, grey=preset == "matte")  # runs of 4 (ProRes) or 12 (FFV1), the last one short
    single = tmp_path / f"single{load_preset(preset).format.extension}"
    several = tmp_path / f"several{load_preset(preset).format.extension}"
    encode(single, preset, frames, encoders=1)
    sink = encode(several, preset, frames, encoders=3)
    assert "on 3 encoder threads" in sink.describe()
    with av.open(str(several)) as container:
        assert len(container.streams) == 1 and container.streams.video[0].codec_context.name in ("prores", "ffv1")
    got, want = packets(several), packets(single)
    assert [t for _, t in got] == [Fraction(i, 25) for i in range(27)]
    assert got == want  # packet for packet, bytes and times
    decoded = pixels(several)
    assert len(decoded) == 27 and all(np.array_equal(a, b) for a, b in zip(decoded, pixels(single)))
    if preset == "matte":  # lossless: the frames themselves
        with av.open(str(several)) as container:
            assert all(np.array_equal(f.to_ndarray(), want) for f, want in zip(container.decode(video=0), frames))


def test_segment_encoders_keep_the_audio(tmp_path):
    clip = make_clip(tmp_path / "tone.mp4", frames=30, audio=True)
    with av.open(str(clip)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    rgba = [np.dstack([f[:H, :W], np.full((H, W), 255, np.uint8)]) for f in frames]
    encode(tmp_path / "single.mov", "prores4444", rgba, encoders=1, source=clip)
    encode(tmp_path / "several.mov", "prores4444", rgba, encoders=4, source=clip)
    assert packets(tmp_path / "several.mov") == packets(tmp_path / "single.mov")
    audio = packets(tmp_path / "several.mov", "audio")
    assert audio and audio == packets(tmp_path / "single.mov", "audio")
    assert audio == packets(clip, "audio")  # AAC copied as it was


def test_a_stopped_segment_encode_keeps_every_frame_written_in_order(tmp_path):
    """Stopped after 10 frames (2 whole runs of 4 and a part of one, some still encoding): the
    partial file holds all 10, in order, as one encoder would have written them."""
    frames = moving_frames(10, grey=False)
    encode(tmp_path / "single.mov", "prores4444", frames, encoders=1)
    sink = encode(tmp_path / "out.mov", "prores4444", frames, encoders=3, finish=False)
    kept = sink.salvage()
    assert kept == tmp_path / "out.partial.mov"
    assert packets(kept) == packets(tmp_path / "single.mov")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_png_frames_written_on_several_threads_are_those_of_one(tmp_path):
    from u2video.media.writers import PngSequenceSink

    frames = moving_frames(11, grey=False)
    for encoders in (1, 3):
        sink = PngSequenceSink(tmp_path / f"seq{encoders}", encoders=encoders)
        for i, pixels in enumerate(frames):
            sink.write(pixels, i)
        assert sink.finish() == tmp_path / f"seq{encoders}" and sink.frames == 11
    one, several = sorted((tmp_path / "seq1").iterdir()), sorted((tmp_path / "seq3").iterdir())
    assert [p.name for p in several] == [f"{i:05d}.png" for i in range(11)] == [p.name for p in one]
    assert [p.read_bytes() for p in several] == [p.read_bytes() for p in one]
    assert np.array_equal(cv2.cvtColor(cv2.imread(str(several[7]), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGRA2RGBA),
                          frames[7])


def test_png_frames_after_one_that_failed_are_not_kept(tmp_path):
    """Frame 5 can't be written (a folder took its name): frames 0-4 are kept, and none of those
    the other threads wrote after it, so the sequence has no gap."""
    from u2video.errors import MediaError
    from u2video.media.writers import PngSequenceSink

    folder = tmp_path / "seq"
    (folder / "00005.png").mkdir(parents=True)
    sink = PngSequenceSink(folder, encoders=3)
    with pytest.raises(MediaError, match="00005.png"):
        for i, pixels in enumerate(moving_frames(12, grey=False)):
            sink.write(pixels, i)
        sink.finish()
    assert sink.salvage() == folder and sink.frames == 5
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) == \
        [f"{i:05d}.png" for i in range(6)]  # 00005.png is the folder
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]


# --- colour conversion on the device (CUDA by default; the same tensor code runs here) ----------

def swscale_planes(rgba: np.ndarray) -> np.ndarray:
    """What PyAV/swscale makes of an RGBA frame for ProRes 4444: [4,H,W] uint16."""
    frame = av.VideoFrame.from_ndarray(rgba, format="rgba").reformat(format="yuva444p10le")
    h, w = rgba.shape[:2]
    return np.stack([np.frombuffer(p, np.uint16).reshape(h, -1)[:, :w] for p in frame.planes])


def test_rgba_to_yuva444p10_is_swscales_conversion():
    import torch

    from u2video.compose import rgba_to_yuva444p10

    rng = np.random.default_rng(8)
    rgba = rng.integers(0, 256, (2, 64, 80, 4), dtype=np.uint8)
    rgba[0, :4, :64, 3] = np.arange(256).reshape(4, 64)  # every alpha value somewhere
    rgba[1, 0, :6, :3] = [[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255], [128, 128, 128]]
    got = rgba_to_yuva444p10(torch.from_numpy(rgba)).numpy()
    assert got.shape == (2, 4, 64, 80) and got.dtype == np.int16
    for b in range(2):
        want = swscale_planes(rgba[b]).astype(int)
        assert np.abs(got[b, :3] - want[:3]).max() <= 1  # colour: within one 10-bit step
        assert np.array_equal(got[b, 3], want[3])  # alpha: exactly
    assert list(got[1, :3, 0, 0]) == [64, 512, 512] and list(got[1, :3, 0, 1]) == [940, 512, 512]


def run_clip(clip: Path, out: Path, planar: bool | None) -> None:
    from u2video.alpha import MatteStage
    from u2video.compose import to_rgba
    from u2video.config import DeviceConfig, DeviceKind, MatteConfig, ModelConfig, Normalization
    from u2video.media.source import VideoSource
    from u2video.pipeline import run_video
    from u2video.progress import SilentReporter
    from u2video.segmenter import Segmenter

    segmenter = Segmenter.from_config(ModelConfig("u2netp", 64, Normalization.FIXED), DeviceConfig(DeviceKind.CPU))
    with VideoSource(clip) as video:
        info = video.info
        sink = VideoSink(out, load_preset("prores4444").format, info.width, info.height, info.rate, info.time_base)
        run_video(video, segmenter, MatteStage(MatteConfig(0, False)), to_rgba, sink, 2, SilentReporter(), planar)


def planes_of(path: Path) -> tuple[list[np.ndarray], list[Fraction]]:
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
    return ([np.stack([np.frombuffer(p, np.uint16).reshape(f.height, -1)[:, :f.width] for p in f.planes])
             for f in frames], [f.pts * f.time_base for f in frames])


def test_frames_converted_on_the_device_make_the_same_prores_file(u2netp_store, tmp_path):
    """The loop with the colour conversion on the device (forced here; CUDA's default) writes
    the frames a CPU-converted run writes: same count and times, alpha identical, colour within
    a few 10-bit steps (the conversions differ by at most one step before encoding)."""
    clip = make_clip(tmp_path / "clip.mp4", frames=7, size=(96, 128))
    run_clip(clip, tmp_path / "host.mov", planar=False)
    run_clip(clip, tmp_path / "device.mov", planar=True)
    run_clip(clip, tmp_path / "default.mov", planar=None)
    host, host_times = planes_of(tmp_path / "host.mov")
    device, device_times = planes_of(tmp_path / "device.mov")
    assert len(device) == 7 and device_times == host_times
    shift = 2 if device[0].max() > 1023 else 0  # the decoder may widen to 12 bits
    for a, b in zip(device, host):
        assert np.array_equal(a[3], b[3])
        colour = np.abs(a[:3].astype(int) - b[:3]) >> shift
        assert colour.max() <= 6 and colour.mean() < 0.2, (colour.max(), colour.mean())
    assert packets(tmp_path / "device.mov") != packets(tmp_path / "host.mov")  # converted apart
    assert packets(tmp_path / "default.mov") == packets(tmp_path / "host.mov")  # the CPU converts on the host
