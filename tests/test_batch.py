"""Lists and folders of videos in one process (``batch.py``): OUTDIR/<name>.<ext> per input, the
same frames as one file at a time, a damaged clip failing alone, and reruns that skip what is
finished and redo what was interrupted."""

from __future__ import annotations

import shutil
from pathlib import Path

import av
import numpy as np
import pytest

import u2video
from u2video.batch import BatchFailed
from u2video.config import DeviceConfig, DeviceKind, MatteConfig, ModelConfig, OutputConfig
from u2video.progress import SilentReporter

from .test_cli_images import run
from .test_video_matte import FAST, decoded, make_clip, seconds

MODEL = ModelConfig(input_size=64)
DEVICE = DeviceConfig(DeviceKind.CPU)
PLAIN = MatteConfig(smooth=0, refine=False)


class Lines(SilentReporter):
    """Keeps the info lines too."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def info(self, message: str) -> None:
        self.lines.append(message)


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    """A folder of three short clips (one with audio) and a damaged one."""
    folder = tmp_path_factory.mktemp("clips")
    for name, frames in (("a", 8), ("b", 10), ("c", 12)):
        make_clip(folder / f"{name}.mp4", frames, audio=name == "b")
    (folder / "broken.mp4").write_bytes((folder / "a.mp4").read_bytes()[:2000])
    (folder / "notes.txt").write_text("not a video: left out of the batch")
    return folder


def alpha_of(path: Path) -> np.ndarray:
    return np.stack([f.to_ndarray(format="rgba")[..., 3] for f in decoded(path)])


def test_a_folder_gives_each_video_its_own_output_and_a_damaged_one_fails_alone(u2netp_store, clips, tmp_path):
    out = tmp_path / "out"
    result = run("matte", clips, "-o", out, *FAST, "--smooth", "0", "--no-refine")
    assert result.exit_code == 3, result.output
    assert sorted(p.name for p in out.iterdir()) == ["a.mov", "b.mov", "c.mov"]
    assert "failed broken.mp4" in result.stderr and "3 done, 0 skipped (finished before), 1 failed; 30 frames" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("u2video: error: 1 of 4 inputs failed")
    for name in "abc":
        single = tmp_path / f"{name}.mov"
        assert run("matte", clips / f"{name}.mp4", "-o", single, *FAST, "--smooth", "0", "--no-refine").exit_code == 0
        got, expected = decoded(out / f"{name}.mov"), decoded(single)
        assert len(got) == len(decoded(clips / f"{name}.mp4")) and seconds(got) == seconds(expected)
        assert np.array_equal(alpha_of(out / f"{name}.mov"), alpha_of(single))
    with av.open(str(out / "b.mov")) as container:
        assert len(container.streams.audio) == 1  # the clip's audio came along


def test_a_rerun_skips_finished_outputs_and_redoes_an_interrupted_one(u2netp_store, clips, tmp_path):
    out = tmp_path / "out"
    inputs = [clips / "a.mp4", clips / "b.mp4", clips / "c.mp4"]
    options = OutputConfig(mask_only=True)
    first = u2video.matte(inputs, out, model=MODEL, device=DEVICE, options=options, matte_config=PLAIN)
    assert [p.name for p in first] == ["a.mkv", "b.mkv", "c.mkv"]
    # b's run "was interrupted": its output gone, its partial file left beside it
    (out / "b.mkv").rename(out / "b.partial.mkv")
    kept = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    reporter = Lines()
    again = u2video.matte(inputs, out, model=MODEL, device=DEVICE, options=options, matte_config=PLAIN, reporter=reporter)
    assert [p.name for p in again] == ["b.mkv"]
    assert sorted(p.name for p in out.iterdir()) == ["a.mkv", "b.mkv", "c.mkv"]  # the partial file is gone
    assert {n: out.joinpath(n).stat().st_mtime_ns for n in ("a.mkv", "c.mkv")} == {n: kept[n] for n in ("a.mkv", "c.mkv")}
    assert any(line.startswith("skipped a.mp4") for line in reporter.lines)
    assert any("removed b.partial.mkv" in line for line in reporter.lines)
    assert "1 done, 2 skipped (finished before), 0 failed; 10 frames" in reporter.lines[-1]
    assert len(decoded(out / "b.mkv")) == 10
    # --overwrite does them all again
    assert len(u2video.matte(inputs, out, model=MODEL, device=DEVICE, matte_config=PLAIN,
                             options=OutputConfig(mask_only=True, overwrite=True))) == 3


def test_an_output_that_does_not_play_is_not_replaced(u2netp_store, clips, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.mov").write_bytes(b"someone else's file")
    with pytest.raises(BatchFailed) as caught:
        u2video.matte([clips / "a.mp4", clips / "c.mp4"], out, model=MODEL, device=DEVICE, matte_config=PLAIN)
    assert caught.value.summary.failed[0][0].name == "a.mp4" and "does not play" in caught.value.summary.failed[0][1]
    assert (out / "a.mov").read_bytes() == b"someone else's file" and (out / "c.mov").is_file()


def test_format_picks_the_extension_and_names_must_not_collide(u2netp_store, clips, tmp_path):
    result = run("replace", clips / "a.mp4", clips / "c.mp4", "-o", tmp_path / "out", "-b", "white", "--format", "webm",
                 *FAST, "--smooth", "0")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.webm", "c.webm"]
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(clips / "a.mp4", other / "a.mp4")
    result = run("matte", clips / "a.mp4", other, "-o", tmp_path / "twice")
    assert result.exit_code == 2 and "several inputs would write" in result.stderr
    result = run("matte", clips / "a.mp4", clips / "c.mp4", "-o", tmp_path / "x.mov")
    assert result.exit_code == 2 and "need an output folder" in result.stderr
    result = run("matte", clips / "a.mp4", clips / "c.mp4", "-o", tmp_path / "y", "--format", "mp4")
    assert result.exit_code == 2 and "--format mp4" in result.stderr


def test_a_png_folder_left_by_a_run_that_died_is_done_again(u2netp_store, clips, tmp_path):
    out = tmp_path / "out"
    options = OutputConfig(format=u2video.load_preset("png-seq").format)
    u2video.matte([clips / "a.mp4", clips / "c.mp4"], out, model=MODEL, device=DEVICE, options=options, matte_config=PLAIN)
    assert len(list((out / "a").glob("*.png"))) == 8 and len(list((out / "c").glob("*.png"))) == 12
    # a's run "died": frames 5.. missing and its marker left (a locked marker of a live run is not)
    for png in sorted((out / "a").glob("*.png"))[5:]:
        png.unlink()
    (out / "a" / ".sequence.u2video-0badc0de.run").write_text("a run that died")
    again = u2video.matte([clips / "a.mp4", clips / "c.mp4"], out, model=MODEL, device=DEVICE, options=options,
                          matte_config=PLAIN)
    assert again == [out / "a"]
    assert sorted(p.name for p in (out / "a").iterdir()) == [f"{i:05d}.png" for i in range(8)]
