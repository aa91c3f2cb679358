"""Many inputs in one run: lists and folders of videos (and images), each to ``OUTDIR/<name>.<ext>``.

The model loads once. Each file is processed as ``u2video matte/replace`` processes one file, in
turn; a file that fails is reported and skipped, and the others go on. Running the same command
again resumes: an output that is there complete is skipped (``--overwrite`` redoes it), and a
file whose run was interrupted (its output kept as ``<name>.partial<ext>``, or a PNG folder
whose run died) is done again, the partial file removed once the whole one is written.
``cluster.py`` runs the same jobs on Ray.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .config import OutputConfig, VideoFormat
from .errors import ConfigError, MediaError, U2VideoError
from .media.files import partial_names
from .media.images import IMAGE_SUFFIXES
from .media.probe import MediaKind, probe
from .media.remux import plays
from .media.writers import is_sequence_marker
from .presets import DEFAULT_PRESETS, load_preset
from .progress import Bar, Reporter

# a folder contributes the files with these extensions (files named on the command line are
# judged by their content instead)
VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".mpg", ".mpeg", ".ts", ".mts",
                            ".m2ts", ".mxf", ".wmv", ".flv", ".3gp", ".ogv", ".y4m"})


class BatchFailed(MediaError):
    """Some inputs of a batch failed (each was reported); the others were written. Exit code 3."""

    def __init__(self, summary: "BatchSummary"):
        super().__init__(f"{len(summary.failed)} of {summary.total} inputs failed (see above): fix or remove them "
                         "and run the same command again; finished outputs are skipped")
        self.summary = summary


@dataclass(frozen=True)
class VideoJob:
    source: Path
    target: Path  # a file, or the folder of a PNG sequence
    fmt: VideoFormat  # what is written there

    @property
    def sequence(self) -> bool:
        """The target is a PNG sequence folder."""
        return self.fmt.sequence


@dataclass
class BatchSummary:
    done: list[Path] = field(default_factory=list)  # outputs written
    skipped: list[Path] = field(default_factory=list)  # outputs that were there complete
    failed: list[tuple[Path, str]] = field(default_factory=list)  # (input, why)
    frames: int = 0  # frames written
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return len(self.done) + len(self.skipped) + len(self.failed)

    def line(self) -> str:
        rate = f" ({self.frames / self.seconds:.1f} frames/s)" if self.seconds > 0 and self.frames else ""
        return (f"{len(self.done)} done, {len(self.skipped)} skipped (finished before), {len(self.failed)} failed; "
                f"{self.frames} frames in {self.seconds:.1f} s{rate}")


def expand_inputs(inputs: Sequence[str | os.PathLike]) -> tuple[list[Path], list[Path]]:
    """(videos, images) named by ``inputs``: files (judged by their extension, or by their
    content where the extension says nothing) and folders (their files with video or image
    extensions, in name order). ConfigError for a folder that holds neither."""
    videos: list[Path] = []
    images: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            files = sorted(p for p in item.iterdir() if p.is_file() and not p.name.startswith("."))
            found_videos = [p for p in files if p.suffix.lower() in VIDEO_SUFFIXES]
            found_images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
            if not found_videos and not found_images:
                raise ConfigError(f"folder {item} holds no videos or images: check the path")
            videos += found_videos
            images += found_images
        elif item.suffix.lower() in VIDEO_SUFFIXES and item.is_file():
            videos.append(item)
        elif item.suffix.lower() in IMAGE_SUFFIXES and item.is_file():
            images.append(item)
        else:
            (videos if probe(item) is MediaKind.VIDEO else images).append(item)
    return videos, images


def batch_format(command: str, options: OutputConfig) -> VideoFormat:
    """The format every output of a batch gets: the preset's (or ``--format``'s), else the
    command's default (matte: ProRes 4444 .mov, with --matte-only FFV1 .mkv; replace: H.264 .mp4)."""
    if options.format is not None:
        return options.format
    mask_only = options.mask_only and command == "matte"
    default = {("matte", False): ".mov", ("matte", True): ".mkv", ("replace", False): ".mp4"}[(command, mask_only)]
    fmt = load_preset(DEFAULT_PRESETS[(command, mask_only)][default]).format
    assert fmt is not None
    return fmt


def plan_videos(videos: list[Path], output: Path, command: str, options: OutputConfig) -> list[VideoJob]:
    """Each video's output ``OUTDIR/<name><ext>`` (a folder ``OUTDIR/<name>/`` for PNG sequences),
    checked before any work: the output is a folder, no two inputs share a name. One video may
    go to a file (on Ray: a long clip cut into segments), its format by its extension."""
    from .presets import video_format

    if options.selecting or options.picture:
        raise ConfigError("--frames, --every and --picture pick frames of one video: give one video file")
    if output.suffix and not output.is_dir():
        if len(videos) > 1:
            raise ConfigError(f"{len(videos)} videos need an output folder, not the file {output}: e.g. -o out/")
        fmt = video_format(output, command, options.mask_only, options.format, options.crf)
        return [VideoJob(videos[0], output, fmt)]
    base = batch_format(command, options)
    fmt = video_format(output / ("x" + base.extension), command, options.mask_only, base, options.crf)  # with --crf
    jobs = [VideoJob(src, output / (src.stem if fmt.sequence else src.stem + fmt.extension), fmt) for src in videos]
    names = [job.target.name for job in jobs]
    twins = sorted({n for n in names if names.count(n) > 1})
    if twins:
        raise ConfigError(f"several inputs would write {output / twins[0]}: rename one, or run those folders separately")
    return jobs


def state_of(job: VideoJob) -> str:
    """"finished": the output is there complete; "todo": it is not there, or only an interrupted
    run's part of it is (redone); "broken": a file is there under the output's name that does
    not play (not ours to replace without --overwrite)."""
    if job.sequence:
        if not job.target.is_dir():
            return "todo"
        entries = list(job.target.iterdir())
        died = any(is_sequence_marker(p) for p in entries)  # a run was writing it and did not finish
        return "todo" if died or not any(p.suffix == ".png" for p in entries) else "finished"
    if not job.target.exists():
        return "todo"
    return "finished" if job.target.is_file() and plays(job.target) else "broken"


def to_do(job: VideoJob, overwrite: bool, summary: BatchSummary, reporter: Reporter) -> bool:
    """Whether ``job`` needs doing; if not, it is counted (skipped, or failed) and reported."""
    state = "todo" if overwrite else state_of(job)
    if state == "finished":
        summary.skipped.append(job.target)
        reporter.info(f"skipped {job.source.name}: {job.target} is there already (--overwrite redoes it)")
    elif state == "broken":
        fail(job, f"{job.target} is there but does not play: remove it, or pass --overwrite", summary, reporter)
    return state == "todo"


def fail(job: VideoJob, why: str, summary: BatchSummary, reporter: Reporter) -> None:
    summary.failed.append((job.source, why))
    reporter.warn(f"failed {job.source.name}: {why}")


def finished(job: VideoJob, frames: int, seconds: float, summary: BatchSummary, reporter: Reporter) -> None:
    summary.done.append(job.target)
    summary.frames += frames
    reporter.info(f"done {job.source.name} -> {job.target} ({frames} frames, {seconds:.1f} s)")
    if not job.sequence:
        drop_partials(job.target, reporter)


def drop_partials(target: Path, reporter: Reporter) -> None:
    """Remove what interrupted runs kept of ``target`` (``clip.partial.mov``, ``clip.partial-2.mov``...)
    once the whole output is written."""
    for partial in partial_names(target):
        if not partial.exists():
            return
        partial.unlink()
        reporter.info(f"removed {partial.name}: the interrupted run's part, now done whole")


class FileReporter:
    """A batch's reporter for one file: the per-file chatter (model, format) is left out, warnings
    are prefixed with the file's name, and the frames bar is named after it."""

    def __init__(self, reporter: Reporter, name: str):
        self._reporter, self._name = reporter, name

    def info(self, message: str) -> None:
        pass

    def warn(self, message: str) -> None:
        self._reporter.warn(f"{self._name}: {message}")

    def bar(self, desc: str, total: int | None, unit: str) -> Bar:
        return self._reporter.bar(self._name, total, unit)


def run_batch(jobs: list[VideoJob], run_one: Callable[[VideoJob, Reporter, bool], int],
              reporter: Reporter, overwrite: bool, summary: BatchSummary | None = None) -> BatchSummary:
    """Each job in turn, in this process: ``run_one(job, reporter, overwrite)`` writes its output and
    returns the frames written. Finished outputs are skipped unless ``overwrite``; a job that
    raises a U2VideoError is reported and the rest go on (an error that concerns every file,
    like a missing model, stops the batch). Ctrl-C stops it after the running file kept its part."""
    summary = summary or BatchSummary()
    started = time.monotonic()
    try:
        for job in jobs:
            if not to_do(job, overwrite, summary, reporter):
                continue
            began = time.monotonic()
            try:
                # our own interrupted PNG folder is written over; nothing else is
                frames = run_one(job, FileReporter(reporter, job.source.name), overwrite or job.sequence)
            except U2VideoError as e:
                if not isinstance(e, MediaError):  # a model, device or option problem: every file has it
                    raise
                fail(job, str(e), summary, reporter)
                continue
            finished(job, frames, time.monotonic() - began, summary, reporter)
    finally:
        summary.seconds += time.monotonic() - started
    return summary
