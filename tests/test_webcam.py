"""`u2video webcam` driven by a video file played at its real rate, with outputs that record
what they get: order, dropped (not queued) frames, steady latency, background pixels."""

import json
import time

import av
import numpy as np
import pytest
from typer.testing import CliRunner

import u2video
from u2video.alpha import MatteStage
from u2video.cli import app
from u2video.compose import Compositor, to_rgba
from u2video.backgrounds import parse_background
from u2video.config import DeviceConfig, DeviceKind, MatteConfig, ModelConfig, Normalization
from u2video.live import run_live
from u2video.media.demo import write_clip
from u2video.media.live import LiveSource
from u2video.media.source import VideoSource
from u2video.progress import SilentReporter
from u2video.segmenter import Segmenter

from .conftest import missing_shared, weights_dir


class Collector:
    """A live output that keeps what it is sent and takes ``delay`` seconds per frame, like a
    slow machine."""

    def __init__(self, delay: float = 0.0):
        self.delay = delay
        self.indices: list[int] = []
        self.sent: list[float] = []  # time.monotonic() of each send
        self.pixels: dict[int, np.ndarray] = {}
        self.closed: bool | None = None

    def send(self, pixels, frame):
        self.sent.append(time.monotonic())
        self.indices.append(frame.index)
        self.pixels[frame.index] = pixels.copy()
        time.sleep(self.delay)

    def close(self, complete):
        self.closed = complete


def live_run(clip, outputs, matte=MatteConfig(smooth=3), render=to_rgba, duration=None, size=64, lock_step=False):
    segmenter = Segmenter.from_config(ModelConfig("u2netp", size, Normalization.FIXED), DeviceConfig(DeviceKind.CPU),
                                      workers=1)
    source = LiveSource(str(clip), opener=LockStep if lock_step else None)
    if lock_step:
        source._reader.slot = source.slot
    return run_live(source, segmenter, MatteStage(matte, lookahead=False), render, outputs, SilentReporter(), duration)


class LockStep:
    """A file read as a camera that hands over its next frame only once the last one was taken:
    no frame is dropped however busy the machine, for tests of what is done to each frame (not
    of when)."""

    finite = True

    def __init__(self, spec):
        self._source = VideoSource(spec)
        self._frames = self._source.frames()
        info = self._source.info
        self.width, self.height, self.fps, self.description = info.width, info.height, float(info.rate), spec
        self.slot = None

    def read(self):
        deadline = time.monotonic() + 60
        while self.slot is not None and not self.slot._taken and time.monotonic() < deadline:
            time.sleep(0.002)  # taking a frame notifies no one: look again shortly
        frame = next(self._frames, None)
        return None if frame is None else frame.rgb

    def release(self):
        self._source.close()


@pytest.fixture(scope="module")
def twenty_seconds(tmp_path_factory):
    """A 20 s, 30 fps clip played in real time into an output that needs 100 ms a frame."""
    weights = weights_dir()
    if weights is None:
        missing_shared("needs rembg's u2netp.onnx in $U2NET_HOME or ../shared/models")
    clip = write_clip(tmp_path_factory.mktemp("live") / "clip.mp4", 600, (72, 96), 30, audio=False)
    collector = Collector(delay=0.1)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("U2NET_HOME", str(weights))
        started = time.monotonic()
        stats = live_run(clip, [collector])
    return stats, collector, time.monotonic() - started


# These tests run beside others on a busy machine: they assert on counts and order, and on times
# only in the direction load can't push them (a loaded machine is slower, never faster).

def test_frames_arrive_in_order_at_the_source_rate(twenty_seconds):
    stats, collector, wall = twenty_seconds
    assert wall >= 19.5  # played at its real rate, not as fast as it decodes
    assert stats.captured == 600 and stats.capture_fps < 31
    assert collector.indices == stats.indices
    assert all(b > a for a, b in zip(collector.indices, collector.indices[1:]))  # in order, none twice
    assert collector.closed is True


def test_stale_frames_are_dropped_not_queued(twenty_seconds):
    """The output needs 100 ms a frame, the source gives one every 33 ms: most are dropped, and
    every frame is either processed or dropped (the last one may be neither)."""
    stats, collector, _ = twenty_seconds
    assert 10 < stats.processed <= 210  # at most one per 100 ms
    assert 599 <= stats.processed + stats.dropped <= 600
    assert np.median(np.diff(collector.indices)) >= 2  # the newest each time, never the next in line


def test_latency_does_not_grow(twenty_seconds):
    """No backlog: a frame waits at most for the frame before it to be done, so its latency
    (capture to output) stays within about one loop iteration however long the run."""
    stats, collector, _ = twenty_seconds
    latency = np.array(stats.latencies_ms)
    loop_ms = 1000 * np.diff(collector.sent)  # one iteration: the 100 ms output plus the work
    assert np.percentile(latency[1:], 95) <= np.percentile(loop_ms, 95) + 2 * 1000 / 30
    first, last = latency[: len(latency) // 4], latency[-len(latency) // 4:]
    assert np.median(last) <= np.median(first) + np.median(loop_ms)  # a queue would add an iteration a frame


def test_newest_frame_is_taken_and_replaced_ones_are_counted():
    from u2video.media.live import LatestFrame, LiveFrame

    slot = LatestFrame()
    for i in range(3):
        slot.put(LiveFrame(np.zeros((2, 2, 3), np.uint8), i, float(i)))
    assert slot.take(timeout=0).index == 2 and slot.dropped == 2 and slot.captured == 3
    assert slot.take(timeout=0) is None  # taken once
    slot.put(LiveFrame(np.zeros((2, 2, 3), np.uint8), 3, 3.0))
    slot.close()
    assert slot.take(timeout=0).index == 3 and slot.take(timeout=0) is None


def test_background_modes_give_the_expected_pixels(tmp_path, u2netp_store):
    """Per-frame mattes (smoothing off), so the two runs' frames can be compared: the composite
    is the frame over the colour by the cut-out's alpha, pixel by pixel. The frames are handed
    over in lock step, so every one is processed in both runs whatever the machine's load."""
    clip = write_clip(tmp_path / "clip.mp4", 12, (144, 192), 5, audio=False)
    matte = MatteConfig(smooth=0, refine=False)
    cutout, composite = Collector(), Collector()
    live_run(clip, [cutout], matte, size=160, lock_step=True)
    live_run(clip, [composite], matte, render=Compositor(parse_background("#00ff00")), size=160, lock_step=True)
    both = sorted(set(cutout.pixels) & set(composite.pixels))
    assert both == list(range(12))
    for i in both:
        rgba, rgb = cutout.pixels[i].astype(float), composite.pixels[i].astype(float)
        assert rgba.shape == (144, 192, 4) and rgb.shape == (144, 192, 3)
        alpha = rgba[..., 3:] / 255
        expected = rgba[..., :3] * alpha + np.array([0, 255, 0]) * (1 - alpha)
        assert np.abs(rgb - expected).max() <= 1.5  # the alpha was rounded to 8 bits in the cut-out
        assert alpha.min() < 0.05 and alpha.max() > 0.6  # background and subject both in the picture


def test_cli_records_what_it_processed(tmp_path, u2netp_store):
    clip = write_clip(tmp_path / "clip.mp4", 30, (72, 96), 30, audio=False)
    out, stats_path = tmp_path / "live.mp4", tmp_path / "stats.json"
    result = CliRunner().invoke(app, ["webcam", "--source", str(clip), "--no-virtual", "--record", str(out),
                                      "--stats-json", str(stats_path), "--input-size", "64", "-b", "blue"])
    assert result.exit_code == 0, result.output
    stats = json.loads(stats_path.read_text())
    assert stats["captured"] == 30 and stats["processed"] >= 1  # the last frame at least (a busy machine drops more)
    assert len(stats["latencies_ms"]) == stats["processed"] and stats["latency_ms_p95"] > 0
    assert "processed" in result.stderr and "latency p50" in result.stderr
    with av.open(str(out)) as c:
        frames = list(c.decode(video=0))
        assert len(frames) == stats["processed"]
        assert [f.pts for f in frames] == sorted({f.pts for f in frames})
        assert 0.5 < float(frames[-1].time) < 1.1  # capture times: the clip lasts 1 s
    assert not list(tmp_path.glob(".*part*"))


@pytest.mark.parametrize("args, code, expected", [
    (["--no-virtual"], 2, "nothing to send the frames to"),
    (["--keep-alpha", "-b", "red", "--no-virtual", "--preview"], 2, "--keep-alpha sends the cut-out"),
    (["--source", "missing.mp4", "--no-virtual", "--preview"], 3, "missing.mp4 does not exist"),
])
def test_cli_errors_are_one_line(args, code, expected, u2netp_store):
    result = CliRunner().invoke(app, ["webcam", *args])
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("u2video: error:") and expected in lines[-1], result.stderr
    assert "Traceback" not in result.output


def test_virtual_camera_missing_says_how_to_get_one(tmp_path, u2netp_store):
    """Without pyvirtualcam (CI) or without a loaded v4l2loopback: one line saying what to do."""
    clip = write_clip(tmp_path / "clip.mp4", 5, (72, 96), 30, audio=False)
    result = CliRunner().invoke(app, ["webcam", "--source", str(clip), "--input-size", "64"])
    assert result.exit_code == 5, result.output
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("u2video: error:") and ("pip install" in last or "v4l2loopback" in last)
    assert "--no-virtual" in last


def test_a_camera_that_stops_is_opened_again(tmp_path):
    """OpenCV reads the clip as a camera that stops at its end: the source reopens it and the
    frame numbers go on past the clip's length."""
    from u2video.media.live import Camera

    clip = write_clip(tmp_path / "cam.mp4", 10, (48, 64), 30, audio=False)
    with LiveSource(str(clip), retry_seconds=3, opener=Camera) as source:
        deadline = time.monotonic() + 10
        newest = -1
        while newest < 15 and time.monotonic() < deadline:
            frame = source.slot.take(timeout=5)
            assert frame is not None and frame.index > newest
            newest = frame.index
    assert newest >= 15


def test_a_camera_that_does_not_come_back_ends_with_a_message(tmp_path):
    from u2video.errors import MediaError
    from u2video.media.live import Camera

    clip = write_clip(tmp_path / "cam.mp4", 10, (48, 64), 30, audio=False)
    with LiveSource(str(clip), retry_seconds=1, opener=Camera) as source:
        clip.unlink()  # unplugged: it can't be opened again once it stops
        started = time.monotonic()
        with pytest.raises(MediaError, match="did not come back within 1 s"):
            while source.slot.take(timeout=5) is not None:
                pass
        assert time.monotonic() - started < 4


def test_ctrl_c_ends_the_session_and_keeps_the_recording(tmp_path, u2netp_store):
    """A real SIGINT to a running `u2video webcam`: exit 0, the recording finished and playable,
    the stats written."""
    import os
    import signal
    import subprocess
    import sys

    clip = write_clip(tmp_path / "clip.mp4", 600, (72, 96), 30, audio=False)  # 20 s
    out, stats_path, log = tmp_path / "live.mp4", tmp_path / "stats.json", tmp_path / "log.txt"
    env = dict(os.environ, U2NET_HOME=str(u2netp_store))
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "u2video", "webcam", "--source", str(clip), "--no-virtual",
                                 "--record", str(out), "--stats-json", str(stats_path), "--input-size", "64"],
                                stdout=subprocess.DEVNULL, stderr=err, env=env)
        # the first status line (after 5 s) comes with a processed frame, however busy the machine
        deadline = time.monotonic() + 60
        while "processed" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0, log.read_text()
    stats = json.loads(stats_path.read_text())
    assert stats["processed"] >= 1 and stats["captured"] < 500  # stopped mid-clip
    with av.open(str(out)) as c:
        assert len(list(c.decode(video=0))) == stats["processed"]
    assert "latency p50" in log.read_text() and "Traceback" not in log.read_text()
    assert not list(tmp_path.glob(".*part*"))


class _RecordingBackend:
    """A pyvirtualcam backend (its plugin interface) that keeps what it is sent, standing in for
    v4l2loopback/OBS, which need a kernel module or an app."""

    frames: list = []
    fourcc = None
    closed = 0

    def __init__(self, *, width, height, fps, fourcc, device, **kw):
        _RecordingBackend.frames, _RecordingBackend.fourcc = [], fourcc

    def send(self, frame):
        _RecordingBackend.frames.append(frame.copy())

    def close(self):
        _RecordingBackend.closed += 1

    def device(self):
        return "test-device"

    def native_fourcc(self):
        return None


@pytest.mark.parametrize("keep_alpha", [False, True])
def test_frames_reach_the_virtual_camera(keep_alpha, tmp_path, u2netp_store):
    pyvirtualcam = pytest.importorskip("pyvirtualcam", reason="needs the webcam extra (pip install -e '.[webcam]')")
    pyvirtualcam.register_backend("u2video-test", _RecordingBackend)
    try:
        clip = write_clip(tmp_path / "clip.mp4", 10, (48, 64), 10, audio=False)
        closed = _RecordingBackend.closed
        stats = u2video.webcam(str(clip), keep_alpha=keep_alpha, virtual_device="test-device",
                               model=ModelConfig(input_size=64), device=DeviceConfig(DeviceKind.CPU))
    finally:
        pyvirtualcam.camera.BACKENDS.pop("u2video-test", None)
    frames = _RecordingBackend.frames  # pyvirtualcam hands its backends flat arrays
    channels = 4 if keep_alpha else 3
    assert len(frames) == stats.processed >= 1  # every processed frame sent (a busy machine drops more)
    assert all(f.shape == (48 * 64 * channels,) and f.dtype == np.uint8 for f in frames)
    fmt = pyvirtualcam.PixelFormat.RGBA if keep_alpha else pyvirtualcam.PixelFormat.RGB
    assert _RecordingBackend.fourcc == int.from_bytes(fmt.value.encode(), "little")  # RGB24 or RGBA as asked
    last = frames[-1].reshape(48, 64, channels)
    assert last[..., :3].std() > 5  # a picture, not a blank frame
    assert _RecordingBackend.closed == closed + 1  # released at the end


@pytest.mark.parametrize("module", ["u2video.api", "u2video.live", "u2video.backgrounds", "u2video.media.source"])
def test_opencv_loads_before_pyav(module):
    """With PyAV's libraries loaded first, OpenCV's Qt hangs when the preview opens its window."""
    import subprocess
    import sys

    code = f"import {module}, sys; m = list(sys.modules); print(m.index('cv2') < m.index('av'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "True", out.stderr


def test_preview_window_on_a_virtual_screen(tmp_path, u2netp_store):
    """Needs xvfb-run (Debian's xvfb); skipped where it is not installed."""
    import os
    import shutil
    import subprocess
    import sys

    if shutil.which("xvfb-run") is None:
        pytest.skip("needs xvfb-run for a virtual screen")
    clip = write_clip(tmp_path / "clip.mp4", 30, (72, 96), 30, audio=False)
    stats_path = tmp_path / "stats.json"
    env = dict(os.environ, U2NET_HOME=str(u2netp_store))
    env.pop("DISPLAY", None)
    out = subprocess.run(["xvfb-run", "-a", sys.executable, "-m", "u2video", "webcam", "--source", str(clip),
                          "--no-virtual", "--preview", "--input-size", "64", "--stats-json", str(stats_path)],
                         capture_output=True, text=True, timeout=90, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(stats_path.read_text())["processed"] >= 10


def test_the_network_is_ready_before_the_camera_starts(tmp_path, u2netp_store):
    """The runtime's one-off work (OpenVINO compiling for the input shape) happens before the
    source starts, not on the first frame while the camera's next frames are dropped."""
    clip = write_clip(tmp_path / "clip.mp4", 3, (72, 96), 30, audio=False)
    segmenter = Segmenter.from_config(ModelConfig("u2netp", 64, Normalization.FIXED), DeviceConfig(DeviceKind.CPU),
                                      workers=1)
    calls = []
    network = segmenter.predict_lowres
    segmenter.predict_lowres = lambda frames: calls.append("network") or network(frames)

    class WatchedSource(LiveSource):
        def __enter__(self):
            calls.append("source starts")
            return super().__enter__()

    run_live(WatchedSource(str(clip)), segmenter, MatteStage(MatteConfig(smooth=0), lookahead=False), to_rgba,
             [Collector()], SilentReporter())
    assert calls[:2] == ["network", "source starts"] and calls.count("network") >= 2
