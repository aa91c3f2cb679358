"""Batches on Ray (``cluster.py``), on a local Ray of 2 CPUs: the same mattes as one process, a
long clip cut into segments joined into the single pass's file, reruns, a damaged clip, a
worker killed mid-task, and Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest

import u2video
from u2video.batch import BatchFailed
from u2video.config import ClusterConfig, DeviceConfig, DeviceKind, MatteConfig, ModelConfig, OutputConfig
from u2video.media.files import TEMP_NAME
from u2video.media.remux import plays

from .test_batch import Lines
from .test_video_matte import audio_seconds, decoded, make_clip, seconds

ray = pytest.importorskip("ray")

REPO = Path(__file__).resolve().parents[1]
MODEL = ModelConfig(input_size=64)
DEVICE = DeviceConfig(DeviceKind.CPU)
MATTE = MatteConfig(smooth=3)  # smoothing, hold, refinement and the crop pass all on: state across frames


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for the in-process tests (u2video uses the one that is running)."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("rayclips")
    for name, frames in (("a", 8), ("b", 10), ("c", 12)):
        make_clip(folder / f"{name}.mp4", frames, audio=name == "b")
    (folder / "broken.mp4").write_bytes((folder / "a.mp4").read_bytes()[:2000])
    return folder


def alphas(path: Path) -> np.ndarray:
    return np.stack([f.to_ndarray(format="gray") for f in decoded(path)])  # [N,H,W] of a grey matte


def test_three_clips_on_ray_match_one_process_and_a_damaged_one_fails_alone(u2netp_store, local_ray, clips, tmp_path):
    options = OutputConfig(mask_only=True)
    with pytest.raises(BatchFailed) as caught:
        u2video.matte([clips], tmp_path / "ray", model=MODEL, device=DEVICE, options=options, matte_config=MATTE,
                      cluster=ClusterConfig())
    summary = caught.value.summary
    assert [p.name for p, _ in summary.failed] == ["broken.mp4"] and summary.frames == 30
    assert sorted(p.name for p in (tmp_path / "ray").iterdir()) == ["a.mkv", "b.mkv", "c.mkv"]
    for name in "abc":
        one = u2video.matte([clips / f"{name}.mp4"], tmp_path / f"{name}.mkv", model=MODEL, device=DEVICE,
                            options=options, matte_config=MATTE)[0]
        got = tmp_path / "ray" / f"{name}.mkv"
        assert len(decoded(got)) == len(decoded(clips / f"{name}.mp4"))
        assert seconds(decoded(got)) == seconds(decoded(one))
        assert np.abs(alphas(got).astype(int) - alphas(one)).max() <= 1
    # the rerun skips all three and fails the damaged one again
    reporter = Lines()
    with pytest.raises(BatchFailed):
        u2video.matte([clips], tmp_path / "ray", model=MODEL, device=DEVICE, options=options, matte_config=MATTE,
                      cluster=ClusterConfig(), reporter=reporter)
    assert "0 done, 3 skipped (finished before), 1 failed; 0 frames" in reporter.lines[-1]


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory) -> Path:
    """7.5 s at 10 fps with audio: three segments of 2.5 s, the later two started 20 frames early
    (the default 150 would reach back to the clip's start)."""
    return make_clip(tmp_path_factory.mktemp("long") / "long.mp4", 75, rate=10, audio=True)


@pytest.mark.parametrize("extension", [".mov", ".mp4"])  # joined by packets (ProRes), by encoding (H.264)
def test_a_clip_split_into_three_segments_equals_the_single_pass(u2netp_store, local_ray, long_clip, tmp_path, extension):
    command = u2video.matte if extension == ".mov" else u2video.replace
    extra = () if extension == ".mov" else ("white",)
    single = command([long_clip], tmp_path / f"single{extension}", *extra, model=MODEL, device=DEVICE, matte_config=MATTE)[0]
    reporter = Lines()
    # one video to a file (ProRes), and a folder of one (H.264): both write ray/long.<ext>
    target = tmp_path / "ray" / f"long{extension}" if extension == ".mov" else tmp_path / "ray"
    command([long_clip], target, *extra, model=MODEL, device=DEVICE, matte_config=MATTE,
            cluster=ClusterConfig(segment_seconds=2.5, warm_up_frames=20), reporter=reporter)
    assert any(line.startswith("3 tasks (1 video)") for line in reporter.lines)
    assert any("cut into segments with the crop pass on" in w for w in reporter.warnings)  # README: it can differ
    joined = tmp_path / "ray" / f"long{extension}"
    a, b = decoded(joined), decoded(single)
    assert len(a) == len(b) == 75 and seconds(a) == seconds(b)
    layout = "rgba" if extension == ".mov" else "rgb24"
    pixels = [np.stack([f.to_ndarray(format=layout) for f in frames]).astype(int) for frames in (a, b)]
    assert np.abs(pixels[0] - pixels[1]).max() <= 1
    if extension == ".mov":
        assert pixels[0][..., 3].max() - pixels[0][..., 3].min() > 100  # a matte, not a flat frame
    assert audio_seconds(joined) == audio_seconds(single)
    assert [p.name for p in (tmp_path / "ray").iterdir()] == [f"long{extension}"]  # no segment left behind


def _parent(pid: int) -> int:
    return int((Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[1])


def _workers() -> list[int]:
    """Pids of this test's Ray's u2video workers (Ray names them ray::ClipWorker...): children of
    the raylet that ray.init started here (another Ray on the machine is not ours to kill)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cmdline").read_bytes().startswith(b"ray::ClipWorker") and \
                        _parent(_parent(int(entry.name))) == os.getpid():
                    found.append(int(entry.name))
            except (OSError, ValueError, IndexError):
                pass
    return found


def _wait_for_writing(folder: Path, timeout: float = 600) -> None:
    """Until a worker's output in ``folder`` (its hidden temporary file) holds a frame that plays:
    a count, not a time, so a busy machine only makes the wait longer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if folder.is_dir() and any(TEMP_NAME.match(p.name) and _has_a_frame(p) for p in folder.iterdir()):
            return
        time.sleep(0.05)
    raise AssertionError(f"no worker wrote a frame into {folder}")


def _has_a_frame(path: Path) -> bool:
    try:
        with av.open(str(path)) as container:
            return next(container.decode(video=0), None) is not None
    except (av.FFmpegError, OSError):
        return False


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="finds Ray's workers through /proc")
def test_a_worker_killed_mid_task_is_retried(u2netp_store, local_ray, long_clip, tmp_path):
    out = tmp_path / "out"
    reporter = Lines()
    errors: list[BaseException] = []
    thread = threading.Thread(target=_run_folder, args=(long_clip.parent, out, reporter, errors))
    thread.start()
    _wait_for_writing(out)
    killed = _workers()
    assert killed, "no Ray worker process found"
    for pid in killed:
        os.kill(pid, signal.SIGKILL)
    thread.join(timeout=300)
    assert not errors, errors
    assert len(decoded(out / "long.mkv")) == 75
    assert not set(killed) & set(_workers())  # new workers did the task again
    # the killed attempt's file was finished as a partial output by the retry, then removed once it was done
    assert any("removed long.partial.mkv" in line for line in reporter.lines), reporter.lines + reporter.warnings
    assert sorted(p.name for p in out.iterdir()) == ["long.mkv"]


def _run_folder(folder: Path, out: Path, reporter, errors: list) -> None:
    try:
        u2video.matte([folder], out, model=MODEL, device=DEVICE, matte_config=MATTE, options=OutputConfig(mask_only=True),
                      cluster=ClusterConfig(), reporter=reporter)
    except BaseException as e:
        errors.append(e)


def test_ctrl_c_keeps_partial_outputs(u2netp_store, tmp_path):
    """The CLI with --ray starts its own local Ray; SIGINT to it stops the workers and keeps what
    they wrote, finalised and playable, as <name>.partial.mov."""
    folder = tmp_path / "clips"
    folder.mkdir()
    make_clip(folder / "slow.mp4", 400, size=(240, 320), rate=25)
    out = tmp_path / "out"
    driver = subprocess.Popen([sys.executable, "-m", "u2video", "matte", str(folder), "-o", str(out), "--ray",
                               "--input-size", "64", "--device", "cpu"],
                              stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        _wait_for_writing(out)
        time.sleep(1)  # a few frames in
        driver.send_signal(signal.SIGINT)
        _, stderr = driver.communicate(timeout=120)
    finally:
        driver.kill()
    assert driver.returncode == 130, stderr
    partial = out / "slow.partial.mov"
    assert partial.is_file() and plays(partial), stderr
    frames = len(decoded(partial))
    assert 0 < frames < 400
    assert "kept, finalised and playable" in stderr and stderr.strip().splitlines()[-1] == "u2video: interrupted"
    assert not (out / "slow.mov").exists()
    with av.open(str(partial)) as container:
        assert container.streams.video[0].codec_context.name == "prores"


def test_what_is_cut_into_segments(long_clip):
    from u2video.cluster import segment_count
    from u2video.media.source import VideoSource

    config = ClusterConfig(segment_seconds=2.5)
    with VideoSource(long_clip) as video:
        assert segment_count(video, config, OutputConfig(), "white") == 3
        assert segment_count(video, config, OutputConfig(), None) == 3
        assert segment_count(video, config, OutputConfig(), str(long_clip)) == 1  # a video backdrop starts at frame 0
        assert segment_count(video, config, OutputConfig(start=1.0), None) == 1  # --start/--end: one task
        assert segment_count(video, ClusterConfig(segment_seconds=60), OutputConfig(), None) == 1
