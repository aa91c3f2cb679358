"""A batch on Ray: every video, and every segment of a long one, is a task run by a worker actor
that loaded the network once.

- **Workers** (``ClipWorker``): one actor per GPU, or per ``WORKER_CPUS`` cores on the CPU. A
  short video is one task that writes its output whole, as ``u2video matte/replace`` does in
  one process (audio, partial file on failure). A worker that dies is restarted and its task
  tried again (Ray's ``max_restarts``/``max_task_retries``).
- **Segments**: a video longer than ``--segment-seconds`` is cut at frame boundaries (by pts).
  Each segment task reads from ``ClusterConfig.warm_up_frames`` before its first frame (the
  smoothing window and the hold's state, see below) to the smoothing window's frames after its last, and
  writes only its own frames, without audio, into a hidden folder beside the output. The driver
  joins them in order into the output, whose audio it muxes once: packets copied as they are
  for intra-only formats (ProRes, FFV1: every frame is a keyframe, so segments join anywhere);
  for the others (H.264, VP9, PNG) the segments are FFV1 (lossless) and the driver encodes
  their frames in order with one encoder, so the file has one GOP structure and rate control,
  as a single pass writes it (see README, "Many files and clusters", for why not per-segment
  H.264 joined at keyframes).
- **Why a warm-up, not only the window**: the temporal window is ``--smooth`` frames each side,
  but the hold (``alpha.hold``) and the crop pass's box (``crop.BoxTracker``) carry state from
  every earlier frame. The hold's fades (measured: below 1/255 after ~110 frames on real
  footage); a box that the crop pass keeps across a segment's start does not, so with the crop
  pass on, a segment can differ from the single pass where that happens (README, "Many files
  and clusters").
- **Storage**: workers read the inputs and write the outputs themselves: both must be on storage
  every node sees (a shared file system); on one machine that is the local disk.

Ray is imported only here, and only when a batch runs on it.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import av
import numpy as np

from .batch import BatchSummary, VideoJob, fail, finished, to_do
from .config import ClusterConfig, Crop, DeviceConfig, DeviceKind, MatteConfig, ModelConfig, OutputConfig, VideoFormat
from .errors import ConfigError, MediaError, U2VideoError
from .interrupts import uninterrupted
from .media.files import TEMP_NAME, is_abandoned
from .media.leftovers import recover_leftovers
from .media.probe import MediaKind, probe
from .media.segments import INTRA_ONLY
from .media.source import VideoSource
from .media.writers import PngSequenceSink, Sink, VideoSink
from .progress import Reporter

WORKER_CPUS = 2  # cores per CPU worker: the network's threads, the decoder and the encoder
_POLL = 0.25  # seconds between looks at the tasks and the progress


@dataclass(frozen=True)
class Segment:
    """Frames ``lo <= pts < hi`` (the stream's own pts; hi None: to the end) of a video, read from
    ``read_from`` to ``read_to`` seconds, into ``part``."""

    index: int
    lo: int
    hi: int | None
    read_from: float | None
    read_to: float | None
    part: Path


@dataclass(frozen=True)
class Task:
    job: VideoJob
    segment: Segment | None = None  # None: the whole video, written to job.target
    overwrite: bool = False  # the whole video may replace what is at job.target (our own dead PNG folder)

    @property
    def key(self) -> str:
        return f"{self.job.source}#{self.segment.index if self.segment else 'all'}"


@dataclass
class TaskResult:
    key: str
    frames: int = 0
    pts: list[int] = field(default_factory=list)  # a segment's frames' pts, in order
    warnings: list[str] = field(default_factory=list)
    error: str | None = None  # a MediaError's message: the video failed (not retried)


def _part_format(target: VideoFormat, command: str, mask_only: bool) -> tuple[VideoFormat, bool]:
    """(format of the segment files, whether their packets are joined as they are)."""
    if target.codec in INTRA_ONLY and not target.sequence:
        return target, True
    pix_fmt = "gray" if mask_only and command == "matte" else ("bgra" if command == "matte" else "bgr0")
    return VideoFormat(".mkv", "matroska", "ffv1", pix_fmt, audio_codec="copy"), False


def _layout(command: str, mask_only: bool) -> str:
    """What the frames are when decoded from a lossless segment (as the render made them)."""
    return "gray" if mask_only and command == "matte" else ("rgba" if command == "matte" else "rgb24")


class _RangeSink:
    """A sink that passes on only the frames with stream pts in [lo, hi) (a segment's own; the
    warm-up and look-ahead frames are dropped) and notes their pts."""

    def __init__(self, inner: VideoSink, lo: int, hi: int | None, shift: int):
        self.inner, self._lo, self._hi, self._shift = inner, lo, hi, shift
        self.pts: list[int] = []
        self.planar_format = inner.planar_format
        self.audio_lost: list = []

    @property
    def frames(self) -> int:
        return self.inner.frames

    @property
    def written(self) -> Path | None:
        return self.inner.written

    def write(self, pixels: np.ndarray, pts: int | None) -> None:
        own = (pts or 0) + self._shift
        if own >= self._lo and (self._hi is None or own < self._hi):
            self.inner.write(pixels, own)
            self.pts.append(own)

    def finish(self) -> Path:
        return self.inner.finish()

    def salvage(self) -> Path | None:
        self.inner.salvage()  # in the segments folder, which the driver removes
        return None

    def describe(self) -> str:
        return self.inner.describe()


class _ProgressBar:
    """A worker's frames bar: sends its count to the driver's progress actor every half second.
    ``counted``: where the count comes from instead (a segment's own frames, not its warm-up)."""

    def __init__(self, progress, key: str, counted=None):
        self._progress, self._key, self._count, self._sent = progress, key, 0, 0.0
        self._counted = counted

    def update(self, n: int = 1) -> None:
        self._count = self._counted() if self._counted else self._count + n
        if time.monotonic() - self._sent > 0.5:
            self._send()

    def set_postfix_str(self, s: str = "") -> None:
        pass

    def close(self) -> None:
        self._count = self._counted() if self._counted else self._count
        self._send()

    def _send(self) -> None:
        self._progress.set.remote(self._key, self._count)
        self._sent = time.monotonic()


class _TaskReporter:
    """A worker's reporter: warnings kept for the driver to print, progress sent to it."""

    def __init__(self, progress, key: str, name: str):
        self.warnings: list[str] = []
        self._progress, self._key, self._name = progress, key, name
        self.counted = None  # see _ProgressBar

    def info(self, message: str) -> None:
        pass

    def warn(self, message: str) -> None:
        self.warnings.append(f"{self._name}: {message}")

    def bar(self, desc: str, total: int | None, unit: str) -> _ProgressBar:
        return _ProgressBar(self._progress, self._key, self.counted)


class ClipWorker:
    """Loads the network once; runs whole videos and segments (a Ray actor: see ``run_on_ray``)."""

    def __init__(self, command: str, background: str | None, model: ModelConfig, device: DeviceConfig,
                 matte_config: MatteConfig, options: OutputConfig):
        from .api import load_video_segmenter
        from .progress import SilentReporter

        self.command, self.background, self.options = command, background, options
        self.model, self.device, self.matte_config = model, device, matte_config
        self.segmenter = load_video_segmenter(model, device, SilentReporter())

    def pid(self) -> int:
        return os.getpid()

    def run(self, task: Task, progress) -> TaskResult:
        from .api import clip_render, video_run

        reporter = _TaskReporter(progress, task.key, task.job.source.name)
        result = TaskResult(task.key, warnings=reporter.warnings)
        try:
            with clip_render(self.background, self.options.mask_only) as render:
                if task.segment is None:
                    options = replace(self.options, overwrite=task.overwrite)
                    done = video_run(task.job.source, task.job.target, self.command, render, model=self.model,
                                     device=self.device, options=options, matte_config=self.matte_config,
                                     reporter=reporter, segmenter=self.segmenter)
                    result.frames = done.frames
                else:
                    result.pts = self._segment(task, render, reporter)
                    result.frames = len(result.pts)
        except U2VideoError as e:
            result.error = str(e)
        return result

    def _segment(self, task: Task, render, reporter: _TaskReporter) -> list[int]:
        from .alpha import MatteStage
        from .config import Crop
        from .crop import SubjectCrop
        from .pipeline import run_video

        segment = task.segment
        fmt, intra = _part_format(task.job.fmt, self.command, self.options.mask_only)
        with VideoSource(task.job.source, segment.read_from, segment.read_to) as video:
            info = video.info
            inner = VideoSink(segment.part, fmt, info.width, info.height, info.rate, info.time_base,
                              max_height=self.options.max_height if intra else None, overwrite=True)
            sink = _RangeSink(inner, segment.lo, segment.hi, video.pts_shift)
            reporter.counted = lambda: len(sink.pts)
            batch = self.device.batch or self.segmenter.pick_batch(info.width, info.height).batch
            crop = SubjectCrop(self.segmenter, info.height, info.width) if self.matte_config.crop is Crop.AUTO else None
            run_video(video, self.segmenter, MatteStage(self.matte_config), render, sink, batch, reporter, crop=crop)
        return sink.pts


class _Progress:
    """The driver's view of every task's frames (a Ray actor): a retried task starts again from 0."""

    def __init__(self) -> None:
        self.done: dict[str, int] = {}

    def set(self, key: str, frames: int) -> None:
        self.done[key] = frames

    def total(self) -> int:
        return sum(self.done.values())


class _Join:
    """A segmented video's output, written by the driver: segments appended in order as they
    arrive, the audio muxed alongside; a stop keeps what was joined as a partial output."""

    def __init__(self, job: VideoJob, command: str, options: OutputConfig, video: VideoSource, count: int):
        fmt = job.fmt
        self.job, self.command, self.options = job, command, options
        self.part_format, self.intra = _part_format(fmt, command, options.mask_only)
        self.folder = job.target.parent / f".{job.target.name}.u2video-segments"
        shutil.rmtree(self.folder, ignore_errors=True)  # what a run that died left
        self.folder.mkdir()
        self.fmt, self.info = fmt, video.info
        self._sink: Sink | None = None  # opened with the first segment: many long videos, few open encoders
        self.time_base = video.info.time_base
        self.count = count
        self.results: dict[int, TaskResult] = {}
        self.next = 0
        self.started = time.monotonic()

    @property
    def sink(self) -> Sink:
        if self._sink is None:
            info, fmt, options, job = self.info, self.fmt, self.options, self.job
            if fmt.sequence:
                self._sink = PngSequenceSink(job.target, job.source, fmt, max_height=options.max_height, overwrite=True)
            else:
                self._sink = VideoSink(job.target, fmt, info.width, info.height, info.rate, info.time_base, job.source,
                                       max_height=options.max_height, overwrite=options.overwrite, encoders=1)
        return self._sink

    @property
    def frames(self) -> int:
        return self._sink.frames if self._sink is not None else 0

    @property
    def written(self) -> bool:
        """The output is finished and published."""
        return self._sink is not None and self._sink.written is not None

    def part(self, index: int) -> Path:
        return self.folder / f"{index:05d}{self.part_format.extension}"

    def add(self, index: int, result: TaskResult) -> bool:
        """Keep a segment's result and append every segment now in order; True once all are in."""
        self.results[index] = result
        while self.next in self.results:
            self._append(self.next)
            self.next += 1
        return self.next == self.count

    def _append(self, index: int) -> None:
        pts = self.results[index].pts
        path = self.part(index)
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            if self.intra:  # the packets as they are, with the pts they had in the video
                packets = (p for p in container.demux(stream) if p.size)
                for packet, own in zip(packets, pts, strict=True):
                    packet.pts = packet.dts = own
                    packet.time_base = self.time_base
                    self.sink.write_packet(packet)
            else:  # lossless frames, encoded here in order
                layout = _layout(self.command, self.options.mask_only)
                for frame, own in zip(container.decode(stream), pts, strict=True):
                    self.sink.write(frame.to_ndarray(format=layout), own)
        path.unlink()

    def finish(self) -> Path:
        written = self.sink.finish()
        shutil.rmtree(self.folder, ignore_errors=True)
        return written

    def stop(self) -> Path | None:
        """After a failure or Ctrl-C: the joined part kept as a partial output (returned) or nothing."""
        with uninterrupted():
            kept = self._sink.salvage() if self._sink is not None else None
            shutil.rmtree(self.folder, ignore_errors=True)
            return kept


def plan_tasks(job: VideoJob, video: VideoSource, join: _Join | None, config: ClusterConfig,
               matte_config: MatteConfig, overwrite: bool) -> list[Task]:
    """The segments of ``video`` (opened at its start) for ``join``'s parts, or one whole task."""
    if join is None:
        return [Task(job, overwrite=overwrite or job.sequence)]
    info = video.info
    first = video.first_pts
    step = round(config.segment_seconds / info.time_base)
    ahead = (matte_config.smooth + 2) / info.rate  # the look-ahead window of the last frame, and one more
    tasks = []
    for k in range(join.count):
        lo = first + k * step
        hi = first + (k + 1) * step if k + 1 < join.count else None
        warm_up = max(config.warm_up_frames, matte_config.smooth + 1) / info.rate
        read_from = None if k == 0 else float(lo * info.time_base - warm_up)
        read_to = None if hi is None else float(hi * info.time_base + ahead)
        tasks.append(Task(job, Segment(k, lo, hi, max(0.0, read_from) if read_from is not None else None,
                                       read_to, join.part(k))))
    return tasks


def segment_count(video: VideoSource, config: ClusterConfig, options: OutputConfig, background: str | None) -> int:
    """How many segments a video is cut into (1: it runs as one task)."""
    info = video.info
    seconds = info.frames / info.rate if info.frames else 0.0
    if options.start is not None or options.end is not None or _video_background(background):
        return 1
    return max(1, math.ceil(seconds / config.segment_seconds - 0.25))  # no segment of a few frames at the end


def _video_background(background: str | None) -> bool:
    """A video backdrop is read from its first frame on: a segment can't start it half-way."""
    if background is None:
        return False
    path = Path(background)
    return path.is_file() and probe(path) is MediaKind.VIDEO  # judged as parse_background judges it


def _resources(device: DeviceConfig, cluster: dict) -> tuple[dict, int]:
    """(actor resources, how many actors) from the device choice and what the cluster has."""
    gpus = int(cluster.get("GPU", 0))
    cpus = int(cluster.get("CPU", 1))
    if device.kind is DeviceKind.CUDA and not gpus:
        raise ConfigError("--device cuda: the Ray cluster has no GPU: drop --device, or add GPU nodes")
    if gpus and device.kind is not DeviceKind.CPU:
        return {"num_gpus": 1, "num_cpus": min(WORKER_CPUS, max(1, cpus // gpus))}, gpus
    per = min(WORKER_CPUS, cpus)
    return {"num_cpus": per}, max(1, cpus // per)


def run_on_ray(jobs: list[VideoJob], command: str, background: str | None, model: ModelConfig,
               device: DeviceConfig, options: OutputConfig, matte_config: MatteConfig, config: ClusterConfig,
               reporter: Reporter, summary: BatchSummary) -> BatchSummary:
    """Run ``jobs`` on Ray (the one ``ray.init`` made, else ``config.address``, else a new local
    one), as ``batch.run_batch`` runs them in this process: same outputs, skips and failures."""
    try:
        import ray
    except ImportError:
        raise ConfigError("--ray needs Ray: pip install 'u2video[ray]' (on every node of the cluster)") from None
    started_here = not ray.is_initialized()
    if started_here:
        try:
            reporter.info(f"joining the Ray cluster at {config.address}" if config.address else "starting a local Ray")
            ray.init(address=config.address, log_to_driver=False, include_dashboard=False,
                     logging_level=logging.ERROR)  # its start-up lines are not ours to print
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise ConfigError(f"could not reach the Ray cluster at {config.address} ({e}): start it with "
                              "`ray start --head`, or drop --ray-address for a local Ray") from None
    began = time.monotonic()
    try:
        _run(ray, jobs, command, background, model, device, options, matte_config, config, reporter, summary)
    finally:
        summary.seconds += time.monotonic() - began
        if started_here:
            ray.shutdown()
    return summary


def _run(ray, jobs, command, background, model, device, options, matte_config, config, reporter, summary) -> None:
    resources, count = _resources(device, ray.cluster_resources())
    pending: list[Task] = []
    joins: dict[Path, _Join] = {}
    whole_started: dict[str, float] = {}
    total_frames = 0
    for job in jobs:
        if not to_do(job, options.overwrite, summary, reporter):
            continue
        try:
            with VideoSource(job.source) as video:
                n = segment_count(video, config, options, background)
                join = _Join(job, command, options, video, n) if n > 1 else None
                if join is not None:
                    joins[job.source] = join
                pending += plan_tasks(job, video, join, config, matte_config, options.overwrite)
                total_frames += video.info.frames
        except MediaError as e:
            fail(job, str(e), summary, reporter)
    if not pending:
        return
    if joins and matte_config.crop is Crop.AUTO:
        reporter.warn(f"{len(joins)} video{'s' if len(joins) > 1 else ''} cut into segments with the crop pass on: "
                      "where a box is kept across a cut, the matte there can differ from a single pass "
                      "(README, 'Many files and clusters'); --crop off, or a longer --segment-seconds, avoids it")
    workers_used = min(count, len(pending))
    each = " and ".join(f"{v} {k[4:-1].upper()}{'s' if v != 1 else ''}" for k, v in resources.items())
    reporter.info(f"{_count(len(pending), 'task')} ({_count(len(jobs), 'video')}) on Ray: "
                  f"{_count(workers_used, 'worker')} with {each} each")
    worker_class = ray.remote(max_restarts=config.retries, max_task_retries=config.retries, **resources)(ClipWorker)
    progress = ray.remote(num_cpus=0)(_Progress).remote()
    workers = [worker_class.remote(command, background, model, device, matte_config, options)
               for _ in range(workers_used)]
    idle = list(workers)
    running: dict = {}  # ObjectRef -> (worker, task)
    bar = reporter.bar("frames", total_frames or None, "frame")
    shown = 0
    failed_jobs: set[Path] = set()
    try:
        while pending or running:
            while idle and pending:
                task = pending.pop(0)
                if task.job.source in failed_jobs:
                    continue
                worker = idle.pop()
                whole_started.setdefault(str(task.job.source), time.monotonic())
                running[worker.run.remote(task, progress)] = (worker, task)
            ready, _ = ray.wait(list(running), num_returns=1, timeout=_POLL)
            for ref in ready:
                worker, task = running.pop(ref)
                idle.append(worker)
                try:
                    result: TaskResult = ray.get(ref)
                except ray.exceptions.RayTaskError as e:  # our code raised on the worker: not a file's fault
                    raise RuntimeError(f"a Ray task failed on {task.job.source.name}: {e}") from None
                except ray.exceptions.RayError as e:  # the worker died more often than it may be retried
                    result = TaskResult(task.key, error=f"its worker died {config.retries + 1} times "
                                                        f"({type(e).__name__}): see the Ray logs")
                _settle(task, result, joins, failed_jobs, whole_started, summary, reporter)
            now = ray.get(progress.total.remote())
            if now > shown:
                bar.update(now - shown)
                shown = now
    except BaseException:
        bar.close()
        _stop(ray, workers, jobs, joins, reporter)
        raise
    bar.close()


def _count(n: int, thing: str) -> str:
    return f"{n} {thing}{'s' if n != 1 else ''}"


def _settle(task: Task, result: TaskResult, joins: dict, failed_jobs: set, started: dict,
            summary: BatchSummary, reporter: Reporter) -> None:
    """A finished task: its warnings said; its video done, joined further, or failed."""
    job = task.job
    for warning in result.warnings:
        reporter.warn(warning)
    if job.source in failed_jobs:
        return
    join = joins.get(job.source)
    try:
        if result.error is not None:
            raise MediaError(result.error)
        if join is None:
            finished(job, result.frames, time.monotonic() - started[str(job.source)], summary, reporter)
        elif join.add(task.segment.index, result):
            join.finish()
            finished(job, join.frames, time.monotonic() - started[str(job.source)], summary, reporter)
    except (MediaError, ValueError, av.FFmpegError) as e:  # ValueError: a part's frames not as the task said
        failed_jobs.add(job.source)
        if join is not None:
            join.stop()
        fail(job, str(e), summary, reporter)


def _stop(ray, workers: list, jobs: list[VideoJob], joins: dict[Path, _Join], reporter: Reporter) -> None:
    """Ctrl-C or a failure on the driver: the workers stopped, and every output kept as far as it
    got, finalised and playable, as ``<name>.partial<ext>`` (as one process keeps its own)."""
    with uninterrupted():
        for worker in workers:
            try:
                ray.kill(worker, no_restart=True)
            except Exception:  # Ray itself is gone (a Ctrl-C in a terminal reaches its processes too)
                pass
        for join in joins.values():
            if not join.written:
                kept = join.stop()
                if kept is not None:
                    reporter.warn(f"stopped: the first {join.frames} frames of {join.job.source.name} were kept, "
                                  f"finalised and playable, in {kept}")
        # the killed workers' outputs: finished here once their locks are gone
        folders = sorted({job.target.parent for job in jobs})
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_held_by_someone(folder) for folder in folders):
            time.sleep(0.2)
        for folder in folders:
            recover_leftovers(folder, reporter)


def _held_by_someone(folder: Path) -> bool:
    try:
        return any(TEMP_NAME.match(p.name) and not is_abandoned(p) for p in folder.iterdir())
    except OSError:
        return False
