"""The Python API: what each CLI command calls, with the same options.

    import u2video
    u2video.matte("clip.mp4", "clip.mov")              # ProRes 4444 with alpha
    u2video.matte(["photo.jpg"], "photo.png")
    u2video.matte(["photos/"], "cutouts/", options=u2video.OutputConfig(mask_only=True))
    u2video.replace("clip.mp4", "beach.mp4", background="beach.jpg")
    u2video.replace("clip.mp4", "small.mp4", "blur", options=u2video.load_preset("web-small").output_config())
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from .backgrounds import parse_background
from .batch import BatchFailed, BatchSummary, VideoJob, expand_inputs, plan_videos, run_batch
from .compose import Compositor, to_matte, to_rgba
from .config import ClusterConfig, Crop, DeviceConfig, MatteConfig, ModelConfig, OutputConfig, Precision, Runtime
from .errors import ConfigError, FramesLost, MediaError, ModelError
from .interrupts import uninterrupted
from .media.audio import describe_audio_loss
from .media.files import check_output, check_published, ensure_writable_dir
from .media.images import ALPHA_SUFFIXES, IMAGE_SUFFIXES, is_image, read_image, write_image
from .media.leftovers import recover_leftovers
from .media.probe import MediaKind, probe
from .media.source import DecodedFrame, FrameLoss, VideoSource
from .media.writers import PngSequenceSink, Sink, VideoSink
from .alpha import MatteStage
from .crop import LIVE_CROP, SubjectCrop
from .pipeline import Render, run_video
from .presets import sequence_target, video_format
from .progress import Reporter, SilentReporter
from .segmenter import Segmenter

if TYPE_CHECKING:
    from .live import LiveStats


@dataclass(frozen=True)
class ImageJob:
    source: Path
    target: Path


def plan_images(inputs: Sequence[str | os.PathLike], output: str | os.PathLike,
                options: OutputConfig, composite: bool = False, reporter: Reporter | None = None) -> list[ImageJob]:
    """Expand folders, pair each input image with its output path, and check everything that
    can be checked before the model loads (inputs are images, outputs are allowed and writable).
    ``composite``: outputs are opaque composites (any image format; folders keep the input's).
    Files are judged by their content; folders contribute their files with image extensions."""
    if not inputs:
        raise ConfigError("no input given: name one or more images or folders")
    sources: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            found = sorted(p for p in item.iterdir() if p.is_file() and is_image(p))
            if not found:
                raise MediaError(f"folder {item} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
            sources += found
        elif probe(item) is MediaKind.VIDEO:
            raise ConfigError(f"{item} is a video: give one video at a time, not mixed with other inputs")
        else:
            sources.append(item)

    output = Path(output)
    single_file = len(sources) == 1 and not Path(inputs[0]).is_dir() and output.suffix and not output.is_dir()
    if single_file:
        jobs = [ImageJob(sources[0], output)]
    else:
        if output.suffix and not output.is_dir():
            raise ConfigError(f"{len(sources)} images need an output folder, not the file {output}")
        jobs = [ImageJob(src, output / (src.name if composite else f"{src.stem}.png")) for src in sources]
        names = [job.target.name for job in jobs]
        twins = sorted({n for n in names if names.count(n) > 1})
        if twins:
            raise ConfigError(f"several inputs would write {twins[0]}: process those folders separately")

    allowed = IMAGE_SUFFIXES if options.mask_only or composite else ALPHA_SUFFIXES
    for job in jobs:
        if job.target.suffix.lower() not in allowed:
            what = ("an image" if composite else "a mask" if options.mask_only
                    else "transparency (use .png or .webp, or --mask-only)")
            raise ConfigError(f"{job.target.name}: {job.target.suffix or 'no extension'} cannot hold {what}")
        check_output(job.target, sources, options.overwrite)
    for folder in sorted({job.target.parent for job in jobs}):
        prepare_output_folder(folder, reporter or SilentReporter())
    return jobs


def prepare_output_folder(folder: Path, reporter: Reporter) -> None:
    """Create ``folder`` if needed (and say so), prove it writable, and finish or remove what
    runs that died there left behind (see ``media/leftovers.py``)."""
    if ensure_writable_dir(folder):
        reporter.info(f"created the folder {folder}")
    recover_leftovers(folder, reporter)


def _one_image(segmenter: Segmenter, job: ImageJob, render: Render, overwrite: bool) -> None:
    rgb = read_image(job.source)  # [H,W,3] uint8
    frames = torch.from_numpy(rgb)[None]  # [1,H,W,3]
    alpha = segmenter(frames)  # [1,1,H,W] f32 0..1
    check_published(job.target, write_image(job.target, render(frames, alpha)[0].cpu().numpy(), overwrite))


def _is_one_video(inputs: list) -> bool:
    """Whether ``inputs`` is a single video file, judged by its content (MediaError if it is
    neither a video nor an image, saying what it holds)."""
    return len(inputs) == 1 and not Path(inputs[0]).is_dir() and probe(Path(inputs[0])) is MediaKind.VIDEO


def report_loss(loss: FrameLoss, name: str, written: int, strict: bool, reporter: Reporter,
                audio_lost: list[tuple[float, float]] = ()) -> None:
    """Warn about frames (and audio) the source lost to damage; with ``strict`` that is an error
    (FramesLost, exit 3)."""
    messages = ([loss.describe(name, written)] if loss else []) + (
        [describe_audio_loss(name, list(audio_lost))] if audio_lost else [])
    if strict and messages:
        raise FramesLost(f"{'; '.join(messages)} (--strict)")
    for message in messages:
        reporter.warn(f"{message} (--strict makes this an error)")


def process_video(source: str | os.PathLike, output: str | os.PathLike, command: str, render: Render, *,
                  model: ModelConfig, device: DeviceConfig, options: OutputConfig, matte_config: MatteConfig,
                  reporter: Reporter, note: str = "", segmenter: Segmenter | None = None) -> Path:
    """``video_run`` for callers that need only where the output went."""
    return video_run(source, output, command, render, model=model, device=device, options=options,
                     matte_config=matte_config, reporter=reporter, note=note, segmenter=segmenter).path


@dataclass(frozen=True)
class VideoDone:
    path: Path  # where the output went
    frames: int  # frames written


def video_run(source: str | os.PathLike, output: str | os.PathLike, command: str, render: Render, *,
              model: ModelConfig, device: DeviceConfig, options: OutputConfig, matte_config: MatteConfig,
              reporter: Reporter, note: str = "", segmenter: Segmenter | None = None) -> VideoDone:
    """The video path shared by ``matte`` and ``replace``: every check that can fail runs before
    the first frame is processed, then ``pipeline.run_video`` does the work. ``note`` is added to
    the line that says what is written; ``segmenter``: a network loaded already (batches load it
    once), else it is loaded from ``model`` and ``device``."""
    source, output = Path(source), Path(output)
    fmt = video_format(output, command, options.mask_only, options.format, options.crf)
    if (options.selecting or options.picture) and not fmt.sequence:
        raise ConfigError(f"--frames, --every and --picture write PNGs named by frame number: give a folder for -o, "
                          f"not {output.name}")
    if fmt.sequence:
        folder, _ = sequence_target(output)
        prepare_output_folder(folder, reporter)
        if any(folder.iterdir()) and not options.overwrite:
            raise ConfigError(f"{folder} is not empty: pass --overwrite to write into it, or choose an empty folder")
    else:
        check_output(output, [source], options.overwrite)
        prepare_output_folder(output.parent, reporter)

    with VideoSource(source, options.start, options.end) as video:
        info = video.info
        # the sink first: an encoder or container that can't work fails before the model loads
        if fmt.sequence:
            sink: Sink = PngSequenceSink(output, source, fmt, options.start, options.end, options.max_height,
                                         options.overwrite, select=options.selects if options.selecting else None)
        else:
            sink = VideoSink(output, fmt, info.width, info.height, info.rate, info.time_base,
                             source, options.start, options.end, options.max_height, options.overwrite)
        # --frames: the clip is read up to the last chosen frame (and, for mattes, its smoothing window)
        needed = max(options.frames) + 1 + (0 if options.picture else matte_config.smooth) if options.frames else 0
        frames = _FirstFrames(video, needed) if needed else video
        if options.picture:  # the frames themselves: no network
            return VideoDone(_write_pictures(frames, sink, options, reporter), sink.frames)
        try:
            if segmenter is None:
                segmenter = load_video_segmenter(model, device, reporter)
            turned = f", turned {info.rotation}° upright" if info.rotation else ""
            reporter.info(f"writing {sink.describe()}{turned}{note and ', ' + note}")
            batch = device.batch or _probed_batch(segmenter, info.width, info.height, reporter)
            crop = SubjectCrop(segmenter, info.height, info.width) if matte_config.crop is Crop.AUTO else None
            stats = run_video(frames, segmenter, MatteStage(matte_config), render, sink, batch, reporter, crop=crop)
        except BaseException:
            sink.salvage()  # stopped before the loop: removes the empty file (run_video settles it otherwise)
            raise
    if not fmt.sequence:
        check_published(output, stats.written)
    reporter.info(f"wrote {stats.written} ({sink.frames if options.selecting else stats.frames} frames)")
    _say_frames_past_end(options, stats.frames, reporter)
    report_loss(stats.loss, source.name, stats.frames, options.strict, reporter, sink.audio_lost)
    return VideoDone(stats.written, sink.frames if options.selecting else stats.frames)


def load_video_segmenter(model: ModelConfig, device: DeviceConfig, reporter: Reporter) -> Segmenter:
    """The network as the video path runs it, and a line saying which it is."""
    segmenter = Segmenter.from_config(model.resolved(video=True), device, reporter)
    reporter.info(segmenter.describe())
    return segmenter


class _FirstFrames:
    """A VideoSource's first ``count`` frames, as the frame loop reads a source (``info``,
    ``frames()``, ``loss``): what came after them is not decoded, so nothing is counted lost."""

    def __init__(self, video: VideoSource, count: int):
        self._video, self._count = video, count
        self.info = dataclasses.replace(video.info, frames=min(video.info.frames or count, count))
        self.loss = FrameLoss()

    def frames(self) -> Iterator[DecodedFrame]:
        for index, frame in enumerate(self._video.frames()):
            yield frame
            if index + 1 >= self._count:
                return
        self.loss = self._video.loss  # the clip ended first: what it lost counts


def _write_pictures(video: VideoSource | _FirstFrames, sink: Sink, options: OutputConfig, reporter: Reporter) -> Path:
    """Every frame of ``video`` the sink picks, as it is (the pictures masks are corrected on)."""
    reporter.info(f"writing {sink.describe()}")
    bar = reporter.bar("frames", video.info.frames or None, "frame")
    count = 0
    try:
        for frame in video.frames():
            sink.write(frame.rgb, frame.pts)
            count += 1
            bar.update(1)
        written = sink.finish()
    except BaseException:
        bar.close()
        kept = sink.salvage()
        reporter.warn(f"stopped: {sink.frames} frames were kept in {kept}" if kept else "stopped: nothing was kept")
        raise
    bar.close()
    reporter.info(f"wrote {sink.frames} frames into {written}")
    _say_frames_past_end(options, count, reporter)
    return written


def _say_frames_past_end(options: OutputConfig, count: int, reporter: Reporter) -> None:
    past = [f for f in options.frames or () if f >= count]
    if past:
        reporter.warn(f"frame{'s' if len(past) > 1 else ''} {', '.join(map(str, past))} of --frames "
                      f"{'are' if len(past) > 1 else 'is'} past the clip's end ({count} frames, 0-{count - 1}): not written")


def _probed_batch(segmenter: Segmenter, width: int, height: int, reporter: Reporter) -> int:
    choice = segmenter.pick_batch(width, height)
    if choice.fps:  # probed (CUDA); the CPU's 1 needs no line
        reporter.info(choice.describe())
    return choice.batch


def matte_video(source: str | os.PathLike, output: str | os.PathLike, *, model: ModelConfig = ModelConfig(),
                device: DeviceConfig = DeviceConfig(), options: OutputConfig = OutputConfig(),
                matte_config: MatteConfig = MatteConfig(), reporter: Reporter | None = None) -> Path:
    """Cut the subject out of a video: RGBA video (.mov ProRes 4444, .webm VP9+alpha), an RGBA
    PNG sequence (a folder or a ``%05d.png`` pattern), or with ``mask_only`` the grey matte
    (.mkv FFV1 lossless, .mov ProRes). ``options.format`` (e.g. a preset's) overrides the
    choice by extension. Every frame keeps its timestamp; audio streams are carried. Returns
    the output path."""
    render = to_matte if options.mask_only else to_rgba
    return process_video(source, output, "matte", render, model=model, device=device, options=options,
                         matte_config=matte_config, reporter=reporter or SilentReporter())


def matte(inputs: Sequence[str | os.PathLike] | str | os.PathLike, output: str | os.PathLike, *,
          model: ModelConfig = ModelConfig(), device: DeviceConfig = DeviceConfig(),
          options: OutputConfig = OutputConfig(), matte_config: MatteConfig = MatteConfig(),
          reporter: Reporter | None = None, cluster: ClusterConfig | None = None) -> list[Path]:
    """Cut the subject out of a video (see ``matte_video``) or of images; returns the paths written.

    Videos (several, or folders of them, with images too): ``output`` is a folder that receives
    ``<name>.<ext>`` per input (``batch.py``: the format's extension; finished outputs skipped,
    a file that fails reported and skipped, BatchFailed at the end if any did). ``cluster``: run
    them on Ray (``cluster.py``), a single video too.

    Images: ``inputs`` are image files and/or folders of images; ``output`` is a file for one
    image, else a folder (created if needed) that receives ``<name>.png`` per input. The model
    loads once. With several images, one that can't be read is reported through
    ``reporter.warn`` and the rest are still written; a MediaError at the end says how many failed.
    """
    reporter = reporter or SilentReporter()
    inputs = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    if _is_one_video(inputs) and cluster is None:
        return [matte_video(inputs[0], output, model=model, device=device, options=options,
                            matte_config=matte_config, reporter=reporter)]
    render = to_matte if options.mask_only else to_rgba
    videos, images = expand_inputs(inputs)
    if videos:
        return _many("matte", videos, images, Path(output), render, None, model, device, options, matte_config,
                     reporter, cluster)
    if options.selecting or options.picture:
        raise ConfigError("--frames, --every and --picture pick frames of a video: give one video file")
    jobs = plan_images(inputs, output, options, reporter=reporter)
    return _process_images(jobs, render, model, device, options, reporter)


def replace(inputs: Sequence[str | os.PathLike] | str | os.PathLike, output: str | os.PathLike,
            background: str, *, model: ModelConfig = ModelConfig(),
            device: DeviceConfig = DeviceConfig(), options: OutputConfig = OutputConfig(),
            matte_config: MatteConfig = MatteConfig(), reporter: Reporter | None = None,
            cluster: ClusterConfig | None = None) -> list[Path]:
    """Put the subject of a video or of images onto a new background; returns the paths written.

    ``background``: a colour (name like ``skyblue`` or ``#00b140``), an image file (scaled to
    cover the frame), a video file (scaled to cover, looped or cut to the clip's length), or
    ``blur``/``blur:STRENGTH`` (the frame itself blurred; strength is the sigma at 1080 lines).
    Video goes to H.264 .mp4 by default (.mov ProRes 422 HQ, .mkv, .webm, a folder for PNGs, or
    ``options.format``), with the input's audio. Images: as for ``matte``, in any image format.
    Several videos, folders of them, and ``cluster``: as for ``matte``.
    """
    reporter = reporter or SilentReporter()
    inputs = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    video = _is_one_video(inputs) and cluster is None
    videos, images = ([], []) if video else expand_inputs(inputs)
    options = dataclasses.replace(options, mask_only=False)  # never a matte
    jobs = [] if video or videos else plan_images(inputs, output, options, composite=True, reporter=reporter)
    backdrop = parse_background(background)
    note = f"background {backdrop.description}"
    try:
        compositor = Compositor(backdrop)
        if videos:
            return _many("replace", videos, images, Path(output), compositor, background, model, device, options,
                         matte_config, reporter, cluster, note)
        if video:
            return [process_video(inputs[0], output, "replace", compositor, model=model, device=device,
                                  options=options, matte_config=matte_config,
                                  reporter=reporter, note=note)]
        return _process_images(jobs, compositor, model, device, options, reporter, note)
    finally:
        backdrop.close()


def _many(command: str, videos: list[Path], images: list[Path], output: Path, render: Render, background: str | None,
          model: ModelConfig, device: DeviceConfig, options: OutputConfig, matte_config: MatteConfig,
          reporter: Reporter, cluster: ClusterConfig | None, note: str = "") -> list[Path]:
    """A batch (``batch.py``): the videos each to ``output/<name><ext>``, in this process or on Ray,
    then the images; finished outputs skipped. Returns the outputs written; BatchFailed if any
    input failed."""
    jobs = plan_videos(videos, output, command, options)
    one_file = jobs[0].target == output  # one video to a file (on Ray: a long clip cut into segments)
    if one_file and images:
        raise ConfigError(f"images and videos together need an output folder, not the file {output}: e.g. -o out/")
    prepare_output_folder(output.parent if one_file else output, reporter)
    summary = BatchSummary()
    if note:
        reporter.info(note)
    try:
        if cluster is not None:
            from .cluster import run_on_ray  # Ray is imported only here

            run_on_ray(jobs, command, background, model, device, options, matte_config, cluster, reporter, summary)
        else:
            segmenter: Segmenter | None = None

            def one(job: VideoJob, file_reporter: Reporter, overwrite: bool) -> int:
                nonlocal segmenter
                if segmenter is None:  # loaded once, and only if some file needs it
                    segmenter = load_video_segmenter(model, device, reporter)
                with clip_render(background, options.mask_only) as clip:
                    done = video_run(job.source, job.target, command, clip, model=model, device=device,
                                     options=dataclasses.replace(options, overwrite=overwrite),
                                     matte_config=matte_config, reporter=file_reporter, segmenter=segmenter)
                return done.frames

            if not one_file:
                reporter.info(f"{len(jobs)} videos -> {output}/")
            run_batch(jobs, one, reporter, options.overwrite, summary)
        if images:
            _batch_images(images, output, command, render, model, device, options, reporter, summary)
    finally:
        if summary.total:
            reporter.info(summary.line())
    if summary.failed:
        raise BatchFailed(summary)
    return summary.done


@contextlib.contextmanager
def clip_render(background: str | None, mask_only: bool) -> Iterator[Render]:
    """The render for one clip of a batch: onto ``background``, parsed anew for each clip (a video
    backdrop starts from its first frame), else the cut-out or, with ``mask_only``, the matte."""
    if background is None:
        yield to_matte if mask_only else to_rgba
        return
    backdrop = parse_background(background)
    try:
        yield Compositor(backdrop)
    finally:
        backdrop.close()


def _batch_images(images: list[Path], output: Path, command: str, render: Render, model: ModelConfig,
                  device: DeviceConfig, options: OutputConfig, reporter: Reporter, summary: BatchSummary) -> None:
    """The images of a batch: those whose output is there already are skipped, as videos are."""
    composite = command == "replace"
    todo = []
    for image in images:
        target = output / (image.name if composite else f"{image.stem}.png")
        if target.exists() and not options.overwrite:
            summary.skipped.append(target)
        else:
            todo.append(image)
    if todo:
        jobs = plan_images(todo, output, options, composite=composite, reporter=reporter)
        failed: list[tuple[Path, str]] = []
        summary.done += _process_images(jobs, render, model, device, options, reporter, failures=failed)
        summary.failed += failed


def _process_images(jobs: list[ImageJob], render: Render, model: ModelConfig, device: DeviceConfig,
                    options: OutputConfig, reporter: Reporter, note: str = "",
                    failures: list[tuple[Path, str]] | None = None) -> list[Path]:
    """Each image through the network; one that fails is reported and the rest go on. ``failures``:
    where (image, why) go instead of the MediaError at the end."""
    segmenter = Segmenter.from_config(model.resolved(video=False), device, reporter, workers=1)  # one at a time
    reporter.info(segmenter.describe())
    if note:
        reporter.info(note)
    written: list[Path] = []
    failed = 0
    bar = reporter.bar("images", len(jobs), "img") if len(jobs) > 1 else None
    try:
        for job in jobs:
            try:
                _one_image(segmenter, job, render, options.overwrite)
                written.append(job.target)
            except MediaError as e:
                if len(jobs) == 1 and failures is None:
                    raise
                failed += 1
                reporter.warn(f"skipped {job.source.name}: {e}")
                if failures is not None:
                    failures.append((job.source, str(e)))
            if bar:
                bar.update(1)
    finally:
        if bar:
            bar.close()
    if failed and failures is None:
        raise MediaError(f"{failed} of {len(jobs)} images could not be processed (see above); "
                         f"the other {len(written)} were written")
    if len(jobs) == 1 and written:
        reporter.info(f"wrote {written[0]}")
    return written


LIVE_CPU_INPUT_SIZE = 128  # the network's size for live use on the CPU (README, "Live")
LIVE_CPU_INT8_INPUT_SIZE = 192  # the same with --precision int8: 16 frames/s at 640x480 here (README, "INT8")
# past-only smoothing over 3 frames (README, "Live"); no crop pass: it halves the matte's distance from
# 320² mattes but costs a third of the frames/s on a 2-core CPU (README, "Small subjects")
LIVE_MATTE = MatteConfig(smooth=3, refine=True, crop=Crop.OFF)


def live_device(model: ModelConfig, device: DeviceConfig) -> DeviceConfig:
    """``device`` with the precision live use gets by default: on the CPU, INT8 where the store
    holds ``model``'s INT8 network (``u2video models quantize`` made it), because live use needs
    the speed (README, "Live"); otherwise, or with a precision or runtime given, as it is."""
    from .device import installed, pick_device
    from .model.quantize import load_int8

    if (device.precision is not Precision.AUTO or device.runtime not in (Runtime.AUTO, Runtime.OPENVINO)
            or pick_device(device.kind).type != "cpu" or not installed(Runtime.OPENVINO)):
        return device
    try:
        load_int8(model.name)
    except ModelError:  # none made (or not a store model): fp32
        return device
    return dataclasses.replace(device, precision=Precision.INT8)


def live_model(model: ModelConfig, device: DeviceConfig) -> ModelConfig:
    """``model`` at the input size live use gets by default: the trained 320 on CUDA, a smaller
    one on the CPU, where 320 runs at ~3 frames/s on 2 cores (INT8: ~7)."""
    from .device import pick_device

    if pick_device(device.kind).type != "cpu":
        return dataclasses.replace(model, input_size=320)
    int8 = device.precision is Precision.INT8
    return dataclasses.replace(model, input_size=LIVE_CPU_INT8_INPUT_SIZE if int8 else LIVE_CPU_INPUT_SIZE)


def webcam(source: str | None = None, *, background: str | None = None, keep_alpha: bool = False,
           virtual: bool = True, virtual_device: str | None = None, preview: bool = False,
           record: str | os.PathLike | None = None, duration: float | None = None,
           model: ModelConfig | None = None, device: DeviceConfig = DeviceConfig(),
           matte_config: MatteConfig = LIVE_MATTE, options: OutputConfig = OutputConfig(),
           stats_json: str | os.PathLike | None = None, reporter: Reporter | None = None) -> LiveStats:
    """Remove or replace the background of a live source and send it on, until the source
    ends, ``duration`` seconds pass, or Ctrl-C (or q in the preview); returns the stats.

    ``source``: a camera index or device (the default camera when None), or a video file or
    stream URL, played at its real rate. ``background`` as for ``replace`` (default blur), or
    ``keep_alpha`` to send RGBA. Outputs: the virtual camera (``virtual``, through pyvirtualcam),
    a ``preview`` window, and/or a ``record`` file written like ``replace`` (or ``matte`` with
    ``keep_alpha``) writes, in the format ``options`` give. Smoothing uses past frames only.
    ``model`` None: u2netp at ``live_model``'s size for the device; on the CPU with precision
    AUTO, the store's INT8 network where there is one (``live_device``). A file source that turns
    out damaged is reported as ``replace`` reports it (FramesLost with ``options.strict``).
    """
    from .live import LiveStats, Preview, Recording, run_live
    from .media.live import LiveSource
    from .media.virtualcam import VirtualCamera

    reporter = reporter or SilentReporter()
    device = live_device(model or ModelConfig(), device)
    model = model or live_model(ModelConfig(), device)
    if not (virtual or preview or record):
        raise ConfigError("nothing to send the frames to: drop --no-virtual, or add --record OUT and/or --preview")
    if keep_alpha and background is not None:
        raise ConfigError("--keep-alpha sends the cut-out with alpha: drop --background, or drop --keep-alpha")
    if duration is not None and duration <= 0:
        raise ConfigError(f"--duration {duration} must be positive: give seconds, e.g. 20")
    fmt = None
    if record is not None:
        record = Path(record)
        fmt = video_format(record, "matte" if keep_alpha else "replace", False, options.format, options.crf)
        if fmt.sequence:
            raise ConfigError("--record writes a video file: give e.g. out.mp4, or out.mov with --keep-alpha")
        check_output(record, [], options.overwrite)
        prepare_output_folder(record.parent, reporter)
    backdrop = None if keep_alpha else parse_background(background or "blur")
    live: LiveSource | None = None
    sink: VideoSink | None = None
    recording: Recording | None = None
    outputs: list = []
    stats = LiveStats()
    completed = False
    try:
        try:
            live = LiveSource(source)
            reporter.info(f"reading {live.description}: {live.width}x{live.height} at {live.fps:.3g} fps")
            if record is not None:
                sink = VideoSink(record, fmt, live.width, live.height, Fraction(live.fps).limit_denominator(1001),
                                 Recording.TIME_BASE, max_height=options.max_height, overwrite=options.overwrite)
                recording = Recording(sink, reporter)
                outputs.append(recording)
                reporter.info(f"recording {sink.describe()}")
            if virtual:
                outputs.append(VirtualCamera(live.width, live.height, live.fps, alpha=keep_alpha, device=virtual_device))
                reporter.info(f"sending to {outputs[-1].description}")
            if preview:
                outputs.append(Preview(stats))
            segmenter = Segmenter.from_config(model.resolved(video=True), device, reporter, workers=1)  # latency first
            reporter.info(segmenter.describe())
            if backdrop is not None:
                reporter.info(f"background {backdrop.description}")
            stage = MatteStage(matte_config, lookahead=False)
            render: Render = Compositor(backdrop) if backdrop is not None else to_rgba
            crop = SubjectCrop(segmenter, live.height, live.width, LIVE_CROP) if matte_config.crop is Crop.AUTO else None
            run_live(live, segmenter, stage, render, outputs, reporter, duration, stats, crop)
            completed = True
        except KeyboardInterrupt:
            if not stats.processed:
                raise  # before the first frame: nothing to keep, nothing is left
            completed = True  # after it, Ctrl-C is how a session ends, wherever it lands
    finally:
        # however the session ended, start-up included: each output closed once (run_live closes
        # them when it gets that far), the recording finished, kept as a partial file or removed
        with uninterrupted():
            for output in outputs:
                output.close(completed)
            if sink is not None:
                sink.salvage()  # made but not handed to its Recording yet; settled otherwise
            if live is not None:
                live.close()
            if backdrop is not None:
                backdrop.close()
    reporter.info(stats.line())
    if stats_json is not None:
        stats.write_json(Path(stats_json))
    if recording is not None and recording.written is not None:
        check_published(record, recording.written)
        reporter.info(f"wrote {recording.written} ({recording.sink.frames} frames)")
    if live.loss is not None:
        report_loss(live.loss, live.description, stats.processed, options.strict, reporter)
    return stats
