"""Every way a run can end leaves a playable file or nothing, and no loss goes unreported:
signals (SIGTERM, SIGHUP, SIGKILL), outputs that appear while a run writes, damaged and
truncated inputs, inputs judged by content, and one-line errors for every mistake."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest

from u2video.errors import OutputTaken
from u2video.media.audio_scan import damaged_audio_streams
from u2video.media.demo import write_clip
from u2video.media.files import TEMP_NAME, check_published
from u2video.media.images import write_image

from .conftest import md5, synthetic_scene, write_rgb
from .test_cli_images import FAST as IMAGE_FAST
from .test_cli_images import run
from .test_video_matte import FAST, decoded, make_clip, seconds

SLOW = ["--device", "cpu"]  # the full 320² network input: ~0.3 s a frame on 2 cores, so a run can be stopped mid-way


def u2video(*args, **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "u2video", *map(str, args)], stderr=subprocess.PIPE,
                            text=True, **popen)


def hidden(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob(".*") if TEMP_NAME.match(p.name))


def wait_for(condition, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the run did not get that far"
        time.sleep(0.05)


def grown(folder: Path, size: int):
    """Until a temporary file in ``folder`` holds ``size`` bytes: frames are in it."""
    return lambda: any(p.stat().st_size > size for p in hidden(folder) if p.exists())


def plays(path: Path, codec: str | None = None) -> list[av.VideoFrame]:
    """Every frame of ``path``, decoded strictly (a decoding error fails the test)."""
    return decoded(path, codec)


@contextlib.contextmanager
def ffmpeg_errors() -> Iterator[list[str]]:
    """The error messages FFmpeg logs meanwhile (decoders conceal most damage and only log it).
    Logging is switched off again at the end, as PyAV leaves it: on, it can deadlock threaded
    decoders."""
    errors: list[str] = []
    av.logging.set_level(av.logging.ERROR)
    av.logging.set_skip_repeated(False)  # the same error from two packets is two errors
    try:
        with av.logging.Capture(local=False) as logs:
            yield errors
    finally:
        av.logging.set_level(None)
        av.logging.set_skip_repeated(True)
    errors += [message for level, _, message in logs if level <= av.logging.ERROR]


@pytest.fixture(scope="module")
def clip40(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clip") / "clip40.mp4", frames=40, audio=True)


# --- signals ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["SIGTERM", "SIGHUP"])
def test_sigterm_and_sighup_stop_like_ctrl_c(name, u2netp_store, tmp_path, clip40):
    """A `timeout`, a service stop or a closed terminal: the frames written so far are kept,
    finalised and playable, the message says where, and the exit code is 128 + the signal."""
    out = tmp_path / "out.mov"
    proc = u2video("matte", clip40, "-o", out, *SLOW)
    wait_for(grown(tmp_path, 20_000))
    proc.send_signal(getattr(signal, name))
    stderr = proc.communicate(timeout=60)[1]
    assert proc.returncode == 128 + getattr(signal, name), stderr
    partial = tmp_path / "out.partial.mov"
    assert f"kept, finalised and playable, in {partial}" in stderr and f"stopped by {name}" in stderr
    assert "Traceback" not in stderr and not out.exists() and not hidden(tmp_path)
    frames = plays(partial)
    assert 0 < len(frames) < 40
    assert seconds(frames) == seconds(decoded(clip40))[:len(frames)]


# Low-delay encoder settings, so frames reach the file within a second of the start: what is
# tested is the container layer, which is the same as with the default settings.
QUICK_X264 = """command = "replace"
[format]
extension = ".mp4"
container = "mp4"
codec = "libx264"
pix_fmt = "yuv420p"
[format.codec_options]
x264-params = "rc-lookahead=0:sync-lookahead=0"
[format.container_options]
movflags = "+faststart"
"""
QUICK_VP9 = """command = "matte"
[format]
extension = ".webm"
container = "webm"
codec = "libvpx-vp9"
pix_fmt = "yuva420p"
[format.codec_options]
lag-in-frames = "0"
deadline = "realtime"
cpu-used = "8"
"""


@pytest.mark.parametrize("kind", ["mov", "webm", "mp4", "png"])
def test_sigkill_leaves_a_file_that_plays_and_the_next_run_finishes_it(kind, u2netp_store, tmp_path, clip40):
    """Killed at a random moment (SIGKILL: nothing runs after it), the temporary file plays up to
    its last frame, and the next run writing into the folder turns it into a partial output."""
    folder = tmp_path / "out"
    folder.mkdir()
    preset = tmp_path / "quick.toml"
    preset.write_text(QUICK_X264 if kind == "mp4" else QUICK_VP9)
    command, target, extra = {
        "mov": ("matte", folder / "out.mov", []),
        "webm": ("matte", folder / "out.webm", ["--preset", preset]),
        "mp4": ("replace", folder / "out.mp4", ["-b", "red", "--preset", preset]),
        "png": ("matte", folder / "frames", []),
    }[kind]
    proc = u2video(command, clip40, "-o", target, *extra, *SLOW)
    if kind == "png":
        wait_for(lambda: len(list((folder / "frames").glob("*.png"))) >= 3 if (folder / "frames").is_dir() else False)
    else:  # a few frames in (ProRes frames are ~15 KB here, H.264 and VP9 ones ~0.5 KB)
        wait_for(grown(folder, 30_000 if kind == "mov" else 4_000))
    time.sleep(np.random.default_rng().uniform(0, 1.5))  # somewhere in the middle of a frame
    proc.kill()
    proc.communicate(timeout=30)
    source = seconds(decoded(clip40))

    if kind == "png":
        # a kill during a frame's write leaves its hidden temporary file: not a frame (the next
        # run removes it, checked below)
        pngs = sorted(p for p in (folder / "frames").glob("*.png") if not p.name.startswith("."))
        assert [p.name for p in pngs] == [f"{i:05d}.png" for i in range(len(pngs))]  # every frame whole
        for png in pngs:
            assert plays(png)[0].width == 160
    else:
        left = [p for p in hidden(folder) if p.suffix == target.suffix]
        assert len(left) == 1
        frames = plays(left[0], "libvpx-vp9" if kind == "webm" else None)
        assert 0 < len(frames) < 40
        # B-frames are stored ahead of the frames shown before them: the last one may stand after a gap
        assert set(seconds(frames)) <= set(source) and seconds(frames)[:-1] == source[:len(frames) - 1]

    # the next run into that folder (for the PNGs: the same command again, which needs --overwrite)
    again = folder / ("frames" if kind == "png" else "other.mov")
    after = u2video("matte", make_clip(tmp_path / "small.mp4", 6), "-o", again, *FAST)
    stderr = after.communicate(timeout=120)[1]
    assert after.returncode == (2 if kind == "png" else 0), stderr
    assert not hidden(folder), "the leftover was neither finished nor removed"
    if kind == "png":
        assert f"{folder / 'frames'} holds the frames of an interrupted run" in stderr and "is not empty" in stderr
        return
    partial = folder / f"out.partial{target.suffix}"
    assert f"an interrupted run left {target.name} unfinished" in stderr and str(partial) in stderr
    frames = plays(partial, "libvpx-vp9" if kind == "webm" else None)
    assert 0 < len(frames) < 40 and seconds(frames) == source[:len(frames)]
    if kind == "webm":
        assert frames[0].format.name == "yuva420p"  # the alpha survives the copy
    if kind == "mov":
        with av.open(str(partial)) as container:
            assert container.streams.video[0].codec_context.codec_tag == "ap4h"  # still ProRes 4444


def test_a_full_disk_leaves_a_playable_partial_file_or_nothing(u2netp_store, tmp_path, clip40):
    """The disk fills up part-way (here: a file-size limit, which fails writes as a full disk
    does, EFBIG instead of ENOSPC): one error line, and what is left plays."""
    import resource

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (120_000, 120_000))

    proc = u2video("matte", clip40, "-o", tmp_path / "out.mov", *FAST, preexec_fn=small_files)
    stderr = proc.communicate(timeout=120)[1]
    assert proc.returncode == 3, stderr
    errors = [l for l in stderr.splitlines() if l.startswith("u2video: error:")]
    assert len(errors) == 1 and "check free space" in errors[0] and "Traceback" not in stderr
    left = [p for p in tmp_path.iterdir() if p.name != "clip40.mp4"]
    assert not hidden(tmp_path) and [p.name for p in left] in ([], ["out.partial.mov"]), left
    if left:
        frames = plays(left[0])
        assert 0 < len(frames) < 40 and seconds(frames) == seconds(decoded(clip40))[:len(frames)]
        assert f"kept, finalised and playable, in {left[0]}" in stderr


# --- no silent replacement ---------------------------------------------------------------

def test_an_output_that_appears_mid_run_is_never_replaced(u2netp_store, tmp_path):
    """Another program creates the target while the run writes: it is kept as it is, this run's
    output goes beside it, and the run ends with an error that says so."""
    from u2video.api import process_video
    from u2video.compose import to_rgba
    from u2video.config import DeviceConfig, DeviceKind, MatteConfig, ModelConfig, OutputConfig
    from u2video.progress import SilentReporter

    clip = make_clip(tmp_path / "clip.mp4", 8)
    out = tmp_path / "out.mov"

    def render_and_meddle(frames, alpha):
        if not out.exists():
            out.write_bytes(b"another program's file")
        return to_rgba(frames, alpha)

    with pytest.raises(OutputTaken, match="appeared while this run was writing it") as caught:
        process_video(clip, out, "matte", render_and_meddle, model=ModelConfig(input_size=64),
                      device=DeviceConfig(DeviceKind.CPU), options=OutputConfig(), matte_config=MatteConfig(smooth=0),
                      reporter=SilentReporter())
    assert out.read_bytes() == b"another program's file"
    assert caught.value.kept == tmp_path / "out.u2video-1.mov"
    assert len(plays(caught.value.kept)) == 8 and not hidden(tmp_path)


def test_an_image_output_that_appears_is_not_replaced(tmp_path):
    target = tmp_path / "cut.png"
    target.write_bytes(b"precious")
    written = write_image(target, synthetic_scene(), overwrite=False)
    assert written == tmp_path / "cut.u2video-1.png" and target.read_bytes() == b"precious"
    with pytest.raises(OutputTaken, match="cut.u2video-1.png"):
        check_published(target, written)
    assert write_image(target, synthetic_scene(), overwrite=True) == target and target.read_bytes() != b"precious"
    assert not hidden(tmp_path)


@pytest.mark.parametrize("overwrite", [False, True])
def test_two_runs_writing_one_path(overwrite, u2netp_store, tmp_path):
    clip = make_clip(tmp_path / "clip.mp4", 16)
    out = tmp_path / "out.mov"
    extra = ["--overwrite"] if overwrite else []
    procs = [u2video("matte", clip, "-o", out, *FAST, *extra) for _ in range(2)]
    results = [(p.communicate(timeout=120)[1], p.returncode)[::-1] for p in procs]
    codes = sorted(code for code, _ in results)
    if overwrite:  # the last to finish wins; each says what it wrote
        assert codes == [0, 0] and all(f"wrote {out} (16 frames)" in err for _, err in results)
        assert not (tmp_path / "out.u2video-1.mov").exists()
    else:  # nothing is replaced: the second to finish keeps its output beside the first
        assert codes == [0, 3], results
        loser = next(err for code, err in results if code == 3)
        assert "appeared while this run was writing it" in loser and "out.u2video-1.mov" in loser
        assert len(plays(tmp_path / "out.u2video-1.mov")) == 16
    assert len(plays(out)) == 16 and not hidden(tmp_path)


# --- loss accounting ---------------------------------------------------------------------

def mkv_clip(path: Path, frames: int = 30) -> Path:
    """A 30-frame H.264 .mkv with noise in every frame, so its bytes spread evenly over time."""
    rng = np.random.default_rng(1)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        stream.options = {"g": "5", "bf": "0"}  # a keyframe every 5 frames: decoding recovers after damage
        for i in range(frames):
            rgb = np.clip(synthetic_scene(120, 160, seed=i).astype(int) + rng.integers(-20, 20, (120, 160, 3)), 0, 255)
            frame = av.VideoFrame.from_ndarray(rgb.astype(np.uint8), format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def damaged(source: Path, target: Path, how: str) -> Path:
    data = bytearray(source.read_bytes())
    if how == "cut at 50%":
        data = data[:len(data) // 2]
    elif how == "cut at 95%":
        data = data[:len(data) * 95 // 100]
    else:  # garbage over 4% of the file, in the middle
        at, n = len(data) // 2, len(data) // 25
        data[at:at + n] = np.random.default_rng(0).integers(0, 256, n, dtype=np.uint8).tobytes()
    target.write_bytes(bytes(data))
    return target


@pytest.mark.parametrize("how", ["cut at 50%", "cut at 95%", "garbage in the middle"])
def test_frames_lost_from_a_damaged_mkv_are_counted_and_located(how, u2netp_store, tmp_path):
    bad = damaged(mkv_clip(tmp_path / "clip.mkv"), tmp_path / "bad.mkv", how)
    before = md5(bad)
    out = tmp_path / "out.mov"
    result = run("matte", bad, "-o", out, *FAST)
    assert result.exit_code == 0, result.output
    written = len(plays(out))
    assert 0 < written < 30
    warning = next(l for l in result.stderr.splitlines() if l.startswith("u2video: warning: bad.mkv is damaged"))
    assert f"{30 - written} of 30 frames are missing or could not be decoded (" in warning, warning
    assert f"{written} frames written" in warning and "--strict" in warning
    strict = run("matte", bad, "-o", tmp_path / "strict.mov", "--strict", *FAST)
    assert strict.exit_code == 3 and "u2video: error: bad.mkv is damaged" in strict.stderr
    assert len(plays(tmp_path / "strict.mov")) == written  # the output is still there, complete
    assert md5(bad) == before


def test_a_damaged_file_played_as_a_camera_is_reported(u2netp_store, tmp_path):
    bad = damaged(mkv_clip(tmp_path / "clip.mkv"), tmp_path / "bad.mkv", "cut at 50%")
    result = run("webcam", "--source", bad, "--no-virtual", "--record", tmp_path / "rec.mp4", "--input-size", "64",
                 "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "bad.mkv is damaged" in result.stderr and "of 30 frames are missing" in result.stderr


def test_an_intact_mkv_and_a_trimmed_one_report_no_loss(u2netp_store, tmp_path):
    clip = mkv_clip(tmp_path / "clip.mkv")
    for extra in ([], ["--start", "0.2", "--end", "0.8"]):
        result = run("matte", clip, "-o", tmp_path / f"out{len(extra)}.mov", *extra, *FAST)
        assert result.exit_code == 0 and "warning" not in result.stderr, result.stderr


# --- inputs judged by their content ------------------------------------------------------

def remuxed(source: Path, target: Path, kinds: tuple[str, ...], format: str | None = None) -> Path:
    with av.open(str(source)) as inp, av.open(str(target), "w", format=format) as out:
        streams = [s for s in inp.streams if s.type in kinds]
        copies = {s.index: out.add_stream_from_template(s) for s in streams}
        for packet in inp.demux(streams):
            if packet.size:
                packet.stream = copies[packet.stream.index]
                out.mux(packet)
    return target


def test_videos_are_found_by_content_not_by_name(u2netp_store, tmp_path):
    clip = make_clip(tmp_path / "clip.mp4", 6, audio=True)
    for source in (remuxed(clip, tmp_path / "phone.3gp", ("video",), "3gp"), tmp_path / "noname"):
        if not source.exists():
            source.write_bytes(clip.read_bytes())
        result = run("matte", source, "-o", tmp_path / f"{source.name}.mov", *FAST)
        assert result.exit_code == 0, result.output
        assert len(plays(tmp_path / f"{source.name}.mov")) == 6


def test_an_image_without_extension_is_an_image(u2netp_store, tmp_path):
    photo = write_rgb(tmp_path / "photo.png", synthetic_scene())
    bare = tmp_path / "photo"
    bare.write_bytes(photo.read_bytes())
    result = run("matte", bare, "-o", tmp_path / "cut.png", *IMAGE_FAST)
    assert result.exit_code == 0, result.output
    assert av.open(str(tmp_path / "cut.png")).streams.video[0].codec_context.pix_fmt == "rgba"


@pytest.mark.parametrize("case", ["m4a", "wav", "subtitles", "dev-zero", "folder-less text"])
def test_what_is_not_a_video_is_named(case, u2netp_store, tmp_path):
    clip = make_clip(tmp_path / "clip.mp4", 6, audio=True)
    source, expected = {
        "m4a": (lambda: remuxed(clip, tmp_path / "song.m4a", ("audio",)), "holds no video (audio only: 1 AAC stream)"),
        "wav": (lambda: _wav(clip, tmp_path / "voice.wav"), "holds no video (audio only: 1 PCM_S16LE stream)"),
        "subtitles": (lambda: _subtitles(tmp_path / "subs.mkv"), "holds no video (subtitles only: 1 SRT stream)"),
        "dev-zero": (lambda: Path("/dev/zero"), "is not a regular file"),
        "folder-less text": (lambda: (tmp_path / "notes").write_text("hello") and tmp_path / "notes",
                             "is not a video or image that FFmpeg can read"),
    }[case]
    result = run("matte", source(), "-o", tmp_path / "out.mov", *FAST)
    assert result.exit_code == 3, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("u2video: error:") and expected in lines[0], result.stderr
    assert not (tmp_path / "out.mov").exists() and not hidden(tmp_path)


def _wav(clip: Path, target: Path) -> Path:
    with av.open(str(clip)) as inp, av.open(str(target), "w") as out:
        stream = out.add_stream("pcm_s16le", rate=44100)
        stream.layout = "stereo"
        for frame in inp.decode(audio=0):
            frame.pts = None
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return target


def _subtitles(target: Path) -> Path:
    srt = target.with_suffix(".srt")
    srt.write_text("1\n00:00:00,000 --> 00:00:01,000\nhello\n\n")
    return remuxed(srt, target, ("subtitle",))


# --- webcam: stopped at any moment ---------------------------------------------------------

class InterruptAt:
    """A trace function that sends this process SIGINT, as Ctrl-C would, when the code that
    opens, writes and closes files and devices (u2video's api, live, pipeline and media modules)
    reaches its ``n``-th line, counted in this thread (None: never, just count)."""

    FILES = tuple(str(Path(__file__).resolve().parents[1] / "u2video" / name)
                  for name in ("api.py", "live.py", "pipeline.py", "media"))

    def __init__(self, n: int | None = None, watch: str | None = None):
        self.n, self.count, self.watch, self.watched = n, 0, watch, []
        self.where = ""  # file:line where it raised

    def __call__(self, frame, event, arg):
        if event == "call":
            if not frame.f_code.co_filename.startswith(self.FILES):
                return None
            if frame.f_code.co_qualname == self.watch:
                self.watched.append(self.count)
        elif event == "line":
            self.count += 1
            if self.count == self.n:
                self.where = f"{Path(frame.f_code.co_filename).name}:{frame.f_lineno}"
                signal.raise_signal(signal.SIGINT)  # Python raises KeyboardInterrupt at its next chance
        return self

    def run(self, work):
        # Ctrl-C's KeyboardInterrupt, also where this process was started with SIGINT ignored (a
        # background job of a non-interactive shell), which Python then leaves ignored
        previous = signal.signal(signal.SIGINT, signal.default_int_handler)
        sys.settrace(self)
        try:
            work()
        finally:
            sys.settrace(None)
            signal.signal(signal.SIGINT, previous)


def test_webcam_interrupted_at_any_moment_leaves_the_recording_or_nothing(u2netp_store, tmp_path):
    """Ctrl-C at each of the 80 lines from where the recording's sink is made, and at 25 moments
    spread over the rest of a short session: each time, either nothing is left, or (once a
    frame was recorded) the finished, playable recording."""
    import u2video as api
    from u2video.config import DeviceConfig, DeviceKind, ModelConfig

    clip = write_clip(tmp_path / "clip.mp4", 20, (72, 96), 25, audio=False)
    model, device = ModelConfig("u2netp", 64), DeviceConfig(DeviceKind.CPU)

    def session(folder: Path):
        return lambda: api.webcam(str(clip), virtual=False, record=folder / "rec.mp4", duration=0.2, model=model,
                                  device=device)

    (tmp_path / "warm").mkdir()
    session(tmp_path / "warm")()  # loads and converts the network once; later runs are quick
    counter = InterruptAt(watch="VideoSink.__init__")
    (tmp_path / "count").mkdir()
    counter.run(session(tmp_path / "count"))
    set_up = range(counter.watched[0], counter.watched[0] + 80)  # the recording's sink, and what follows it
    moments = sorted(set(set_up) | set(np.linspace(1, counter.count, 25).astype(int)))
    outcomes = set()
    for n in moments:
        folder = tmp_path / f"at{n}"
        folder.mkdir()
        interrupt = InterruptAt(n)
        try:
            interrupt.run(session(folder))
            outcomes.add("finished")
        except KeyboardInterrupt:
            outcomes.add("interrupted")
        left = sorted(folder.iterdir())
        assert left in ([], [folder / "rec.mp4"]), f"interrupted at {interrupt.where}: {left}"
        if left:
            assert len(plays(left[0])) > 0
    assert outcomes == {"finished", "interrupted"}  # the moments covered both


def test_webcam_sigterm_finishes_the_recording(u2netp_store, tmp_path):
    clip = write_clip(tmp_path / "clip.mp4", 300, (72, 96), 30, audio=False)
    out = tmp_path / "live.mp4"
    proc = u2video("webcam", "--source", clip, "--no-virtual", "--record", out, "--input-size", "64", "--device", "cpu")
    wait_for(grown(tmp_path, 3_000))
    proc.send_signal(signal.SIGTERM)
    stderr = proc.communicate(timeout=30)[1]
    assert proc.returncode == 0, stderr
    assert f"wrote {out}" in stderr and len(plays(out)) > 0 and not hidden(tmp_path)


# --- one-line errors for every mistake -------------------------------------------------------

@pytest.mark.parametrize("flags", [["--batch", "0"], ["--smooth", "-1"], ["--crf", "99"], ["--start", "nan"],
                                   ["--input-size", "5000"], ["--bogus"]])
def test_flag_mistakes_are_one_line_errors(flags, tmp_path):
    command = "replace" if "--crf" in flags else "matte"
    proc = subprocess.run([sys.executable, "-m", "u2video", command, tmp_path / "in.mp4", "-o", tmp_path / "out.mov",
                           *flags], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("u2video: error:") and flags[0] in lines[0], proc.stderr


def test_models_listing_fails_on_a_damaged_file(tmp_path, monkeypatch):
    monkeypatch.setenv("U2NET_HOME", str(tmp_path))
    (tmp_path / "u2netp.onnx").write_bytes(b"\0" * 100)
    listing = run("models")
    assert listing.exit_code == 4 and "BAD CHECKSUM" in listing.stdout
    assert "u2video: error: u2netp" in listing.stderr


def test_offline_damaged_model_says_what_can_be_done_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("U2NET_HOME", str(tmp_path))  # U2VIDEO_OFFLINE=1 comes from conftest
    (tmp_path / "u2netp.onnx").write_bytes(b"\0" * 100)
    photo = write_rgb(tmp_path / "photo.png", synthetic_scene())
    result = run("matte", photo, "-o", tmp_path / "cut.png", *IMAGE_FAST)
    assert result.exit_code == 4
    assert "models pull" not in result.stderr and "place u2netp.onnx (md5" in result.stderr


def test_a_new_output_folder_is_announced(u2netp_store, tmp_path):
    photo = write_rgb(tmp_path / "photo.png", synthetic_scene())
    result = run("matte", photo, "-o", tmp_path / "new" / "deeper" / "cut.png", *IMAGE_FAST)
    assert result.exit_code == 0, result.output
    assert f"created the folder {tmp_path / 'new' / 'deeper'}" in result.stderr


# --- the finished files keep the usual layout ---------------------------------------------

def top_level_boxes(path: Path) -> list[str]:
    data, boxes, at = path.read_bytes(), [], 0
    while at + 8 <= len(data):
        size, kind = int.from_bytes(data[at:at + 4], "big"), data[at + 4:at + 8].decode("latin-1")
        if size == 1:
            size = int.from_bytes(data[at + 8:at + 16], "big")
        boxes.append(kind)
        if size < 8:
            break
        at += size
    return boxes


def test_finished_mov_and_mp4_are_not_fragmented(u2netp_store, tmp_path):
    """Written as fragments (so a killed run leaves a playable file), published in the layout
    editors expect: one moov, no moof; the .mp4's index at the front (faststart)."""
    clip = make_clip(tmp_path / "clip.mp4", 12, audio=True)
    assert run("matte", clip, "-o", tmp_path / "a.mov", *FAST).exit_code == 0
    assert run("replace", clip, "-o", tmp_path / "b.mp4", "-b", "red", *FAST).exit_code == 0
    mov, mp4 = top_level_boxes(tmp_path / "a.mov"), top_level_boxes(tmp_path / "b.mp4")
    assert "moof" not in mov and mov.count("moov") == 1 and "mdat" in mov
    assert "moof" not in mp4 and mp4.index("moov") < mp4.index("mdat")


@pytest.mark.parametrize("suffix", [".mov", ".webm"])
def test_a_file_cut_at_any_byte_is_trimmed_to_whole_fragments(suffix, tmp_path):
    """What a full disk or a kill leaves mid-write, cut back in place (no room needed) to the
    last whole fragment or cluster: it then decodes without a single FFmpeg error."""
    from u2video.media.remux import trim_to_whole
    from u2video.media.writers import writing_options
    from u2video.presets import load_preset

    fmt = load_preset("prores4444" if suffix == ".mov" else "webm-alpha").format
    whole = tmp_path / f"whole{suffix}"
    with av.open(str(whole), "w", format=fmt.container, options=writing_options(fmt)) as out:
        stream = out.add_stream(fmt.codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = 96, 64, fmt.pix_fmt
        stream.options = dict(fmt.codec_options)
        for i in range(30):
            rgba = np.dstack([synthetic_scene(64, 96, seed=i), np.full((64, 96), 200, np.uint8)])
            frame = av.VideoFrame.from_ndarray(rgba, format="rgba")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    data = whole.read_bytes()
    for at in np.random.default_rng(5).integers(len(data) * 3 // 5, len(data), 6):  # past the first fragments
        cut = tmp_path / f"cut{at}{suffix}"
        cut.write_bytes(data[:at])
        assert trim_to_whole(cut)
        with ffmpeg_errors() as errors:
            frames = plays(cut, "libvpx-vp9" if suffix == ".webm" else None)
        assert 0 < len(frames) < 30 and [round(f.time * 25) for f in frames] == list(range(len(frames)))
        assert not errors, (at, errors)
        kept = cut.read_bytes()
        changed = [i for i, (a, b) in enumerate(zip(kept, data)) if a != b]
        assert len(kept) < at and len(changed) <= 8 and all(i < 64 for i in changed), changed
        # only cut, and in Matroska the Segment's stated size made to fit (the frames untouched)


def test_damaged_audio_is_left_out_and_said(u2netp_store, tmp_path):
    """Audio packets that don't decode are not copied as they are (a player would stumble on
    them): they are left out, the warning says how much and where, the rest of the audio plays."""
    clip = write_clip(tmp_path / "clip.mkv", 30, (120, 160), 25, audio=True)
    data = bytearray(clip.read_bytes())
    with av.open(str(clip)) as container:
        audio = [(p.pos, p.size) for p in container.demux(audio=0) if p.size]
    for pos, size in audio[10:20:3]:  # damage 4 packets well inside the audio
        for k in range(4, min(size, 40)):
            data[pos + k] ^= 0x5A
    bad = tmp_path / "bad.mkv"
    bad.write_bytes(bytes(data))
    out = tmp_path / "out.mp4"
    result = run("replace", bad, "-o", out, "-b", "red", *FAST)
    assert result.exit_code == 0, result.output
    assert "bad.mkv's audio is damaged:" in result.stderr and "left out, between" in result.stderr
    # and FFmpeg's logging is off again: left on, a codec thread that logs while its threaded
    # decoder is freed waits for the GIL forever
    assert av.logging.get_level() is None
    with ffmpeg_errors() as errors, av.open(str(out)) as container:
        samples = sum(f.samples for p in container.demux(audio=0) for f in p.decode())
    assert not errors, errors
    with av.open(str(clip)) as container:
        whole = sum(f.samples for f in container.decode(audio=0))
    assert 0.7 * whole < samples < whole  # a few packets short
    assert len(plays(out)) == 30
    assert "audio aac re-encoded (the input's is damaged)" in result.stderr


def test_audio_damage_that_only_logs_is_re_encoded_not_copied(u2netp_store, tmp_path):
    """Some damage decodes to good audio and raises nothing, even from a decoder told to raise
    every error it can ("explode"): FFmpeg's AAC decoder only logs it. Copied, the packet would
    carry that error into the output, where a player logs it again: the stream is re-encoded
    instead, nothing is left out, and the output decodes without an error. An undamaged stream
    is still copied."""
    clip = write_clip(tmp_path / "clip.mkv", 30, (120, 160), 25, audio=True)
    data = bytearray(clip.read_bytes())
    with av.open(str(clip)) as container:
        stream = container.streams.audio[0]
        audio = [(p.pos, bytes(p)) for p in container.demux(stream) if p.size]
        found = _log_only_damage(stream, [payload for _, payload in audio[10:20]])
        index, tb = stream.index, stream.time_base
    with av.open(str(clip)) as container:
        starts = [float(p.pts * tb) for p in container.demux(audio=0) if p.size]
    assert found, "no one-bit damage of these packets is only logged: the test needs another way in"
    k, at, bit = found
    pos, payload = audio[10 + k]
    at += data.index(payload, pos)  # a packet's pos is its block's, a few header bytes before
    data[at] ^= bit
    bad = tmp_path / "bad.mkv"
    bad.write_bytes(bytes(data))
    with ffmpeg_errors() as errors, av.open(str(bad)) as container:
        whole = sum(f.samples for p in container.demux(audio=0) for f in p.decode())  # raises nothing
    assert errors  # logged, not raised: the damage this test is about

    good = run("replace", clip, "-o", tmp_path / "good.mp4", "-b", "red", *FAST)
    assert good.exit_code == 0 and "audio aac copied" in good.stderr, good.output
    out = tmp_path / "out.mp4"
    result = run("replace", bad, "-o", out, "-b", "red", *FAST)
    assert result.exit_code == 0, result.output
    assert "audio aac re-encoded (the input's is damaged)" in result.stderr
    with ffmpeg_errors() as errors, av.open(str(out)) as container:
        samples = sum(f.samples for p in container.demux(audio=0) for f in p.decode())
    assert not errors, errors
    assert abs(samples - whole) <= 2048  # all of it (the encoder's priming and padding aside)
    # the scan looks only at the part of the clip a trimmed run takes
    t = starts[10 + k]
    assert damaged_audio_streams(bad, [index]) == {index}
    assert damaged_audio_streams(bad, [index], start=starts[10 + k + 2]) == set()
    assert damaged_audio_streams(bad, [index], end=t) == set()
    assert damaged_audio_streams(bad, [index], start=t - 0.01, end=t + 0.01) == {index}
    # a scan that can't tell says damaged: a re-encode, never a bad copy
    assert damaged_audio_streams(tmp_path / "gone.mkv", [index]) == {index}


def _log_only_damage(stream, packets: list[bytes]) -> tuple[int, int, int] | None:
    """(packet, byte, bit mask) of the first one-bit change that a strict decoder of ``stream``
    decodes without raising while logging an error."""
    from u2video.media.audio_scan import checker

    for k, payload in enumerate(packets):
        for at in range(len(payload)):
            for bit in (1, 2, 4, 8, 16, 32, 64, 128):
                damaged = bytearray(payload)
                damaged[at] ^= bit
                with ffmpeg_errors() as errors:
                    try:
                        checker(stream).decode(av.Packet(bytes(damaged)))
                    except av.FFmpegError:
                        continue
                if errors:
                    return k, at, bit
    return None
