"""Every audio stream is kept, in order and as long as the video, in every mode: cut-out,
matte-only, replace, PNG sequence (WAVs beside the frames) and an interrupted run's partial file.
The input has two streams told apart by their tone (440 Hz stereo, then 660 Hz mono)."""

from pathlib import Path

import av
import numpy as np
import pytest

import u2video
from u2video.config import Crop, DeviceConfig, DeviceKind, MatteConfig, ModelConfig, OutputConfig
from u2video.progress import SilentReporter

from .test_video_matte import make_clip

TONES = (440, 660)  # Hz of the input's first and second audio streams
FRAMES, RATE = 12, 25
FAST = dict(model=ModelConfig(input_size=64), device=DeviceConfig(DeviceKind.CPU),
            matte_config=MatteConfig(smooth=0, refine=False, crop=Crop.OFF))


def two_track_clip(path: Path, frames: int = FRAMES) -> Path:
    """The demo's rolling-ball H.264 video with two AAC streams of its length: 440 Hz stereo, 660 Hz mono."""
    video_only = make_clip(path.with_name("video-only.mp4"), frames=frames, rate=RATE)
    with av.open(str(video_only)) as source, av.open(str(path), "w") as out:
        video = out.add_stream_from_template(source.streams.video[0])
        tracks = []
        for layout in ("stereo", "mono"):
            track = out.add_stream("aac", rate=48000)
            track.layout = layout
            tracks.append(track)
        for packet in source.demux(source.streams.video[0]):
            if packet.dts is not None:
                packet.stream = video
                out.mux(packet)
        n = round(frames / RATE * 48000)
        for track, hz in zip(tracks, TONES):
            channels = 2 if track.layout.name == "stereo" else 1
            wave = (0.3 * np.sin(2 * np.pi * hz * np.arange(n) / 48000)).astype(np.float32)
            for k in range(0, n, 1024):
                chunk = np.repeat(wave[None, k:k + 1024], channels, axis=0)
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="fltp", layout=track.layout.name)
                frame.sample_rate, frame.pts = 48000, k
                out.mux(track.encode(frame))
            out.mux(track.encode(None))
    return path


def video_seconds(path: Path) -> float:
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
    return float((frames[-1].pts - frames[0].pts) * frames[0].time_base) + 1 / RATE


def first_channel(frame: av.AudioFrame) -> np.ndarray:
    data, channels = frame.to_ndarray(), len(frame.layout.channels)
    return data[0] if frame.format.is_planar else data.reshape(-1, channels)[:, 0]  # packed: interleaved


def tracks(path: Path) -> list[tuple[int, float]]:
    """Each audio stream of ``path`` in order: (its dominant frequency in Hz, its decoded seconds)."""
    found = []
    with av.open(str(path)) as container:
        for index in range(len(container.streams.audio)):
            container.seek(0)
            stream = container.streams.audio[index]
            samples = np.concatenate([first_channel(f) for f in container.decode(stream)])
            rate = stream.codec_context.sample_rate
            spectrum = np.abs(np.fft.rfft(samples))
            found.append((round(float(np.argmax(spectrum)) * rate / len(samples)), len(samples) / rate))
    return found


def assert_both_tracks(path: Path, seconds: float) -> None:
    found = tracks(path)
    assert [hz for hz, _ in found] == pytest.approx(TONES, abs=5), found
    for _, length in found:  # AAC's priming samples and padding are under 0.1 s
        assert abs(length - seconds) < 0.1, (found, seconds)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return two_track_clip(tmp_path_factory.mktemp("audio") / "two-tracks.mp4")


def test_the_input_has_two_tracks_as_long_as_its_video(clip):
    assert_both_tracks(clip, FRAMES / RATE)


@pytest.mark.parametrize("command, name, options", [
    ("matte", "cut.mov", OutputConfig()),
    ("matte", "matte.mkv", OutputConfig(mask_only=True)),
    ("matte", "matte.mov", OutputConfig(mask_only=True)),
    ("replace", "new.mp4", OutputConfig()),
    ("matte", "cut.webm", OutputConfig()),
])
def test_every_audio_stream_is_kept_in_order_and_as_long_as_the_video(command, name, options, clip, tmp_path,
                                                                      u2netp_store):
    out = tmp_path / name
    if command == "matte":
        u2video.matte(clip, out, options=options, **FAST)
    else:
        u2video.replace(clip, out, "red", options=options, **FAST)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # renamed into place, nothing left beside it
    assert video_seconds(out) == pytest.approx(FRAMES / RATE)
    assert_both_tracks(out, FRAMES / RATE)


def test_a_png_sequence_gets_a_wav_per_audio_stream(clip, tmp_path, u2netp_store):
    out = tmp_path / "frames"
    u2video.matte(clip, out, **FAST)
    assert sorted(p.name for p in out.iterdir()) == [f"{i:05d}.png" for i in range(FRAMES)] + ["audio-2.wav", "audio.wav"]
    for wav, hz in ((out / "audio.wav", TONES[0]), (out / "audio-2.wav", TONES[1])):
        [(found, length)] = tracks(wav)
        assert abs(found - hz) <= 5 and abs(length - FRAMES / RATE) < 0.1


class StopAfter(SilentReporter):
    """Ctrl-C (KeyboardInterrupt) once ``frames`` frames have been counted on the progress bar:
    an interruption at a known point, not at a moment a timer picks."""

    def __init__(self, frames: int):
        super().__init__()
        self.frames, self.counted = frames, 0

    def bar(self, desc, total, unit):
        reporter = self

        class Bar:
            def update(self, n=1):
                reporter.counted += n
                if reporter.counted >= reporter.frames:
                    raise KeyboardInterrupt

            def set_postfix_str(self, s=""): pass

            def close(self): pass
        return Bar()


@pytest.mark.parametrize("name", ["out.mov", "out.mp4"])
def test_a_partial_output_keeps_each_audio_stream_only_as_far_as_its_video(name, tmp_path, u2netp_store):
    clip = two_track_clip(tmp_path / "long.mp4", frames=50)
    out = tmp_path / name
    with pytest.raises(KeyboardInterrupt):
        if name.endswith(".mov"):
            u2video.matte(clip, out, reporter=StopAfter(10), **FAST)
        else:
            u2video.replace(clip, out, "red", reporter=StopAfter(10), **FAST)
    partial = out.with_name(f"out.partial{out.suffix}")
    assert not out.exists() and partial.is_file()
    seconds = video_seconds(partial)
    assert 0 < seconds < 50 / RATE - 0.5  # the run stopped well before the end
    assert_both_tracks(partial, seconds)
