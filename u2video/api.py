"""The Python API: what each CLI command calls, with the same options.

    import u2video
    u2video.matte("clip.mp4", "clip.mov")              # ProRes 4444 with alpha
    u2video.matte(["photo.jpg"], "photo.png")
    u2video.matte(["photos/"], "cutouts/", options=u2video.OutputConfig(mask_only=True))
    u2video.replace("clip.mp4", "beach.mp4", background="beach.jpg")
    u2video.replace("clip.mp4", "small.mp4", "blur", options=u2video.load_preset("web-small").output_config())
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from .backgrounds import parse_background
from .compose import Compositor, to_matte, to_rgba
from .config import DeviceConfig, MatteConfig, ModelConfig, OutputConfig
from .errors import ConfigError, MediaError
from .media.files import check_output, ensure_writable_dir
from .media.images import ALPHA_SUFFIXES, IMAGE_SUFFIXES, is_image, read_image, write_image
from .media.source import VideoSource, is_video
from .media.writers import PngSequenceSink, Sink, VideoSink
from .alpha import MatteStage
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
                options: OutputConfig, composite: bool = False) -> list[ImageJob]:
    """Expand folders, pair each input image with its output path, and check everything that
    can be checked before the model loads (inputs exist, outputs are allowed and writable).
    ``composite``: outputs are opaque composites (any image format; folders keep the input's)."""
    if not inputs:
        raise ConfigError("no input given: name one or more images or folders")
    sources: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            found = sorted(p for p in item.iterdir() if p.is_file() and is_image(p))
            if not found:
                raise MediaError(f"folder {item} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
            sources += found
        elif not item.exists():
            raise MediaError(f"{item} does not exist: check the path")
        elif not is_image(item):
            raise MediaError(f"{item} is not an image file ({', '.join(sorted(IMAGE_SUFFIXES))})")
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
    for folder in {job.target.parent for job in jobs}:
        ensure_writable_dir(folder)
    return jobs


def _one_image(segmenter: Segmenter, job: ImageJob, render: Render) -> None:
    rgb = read_image(job.source)  # [H,W,3] uint8
    frames = torch.from_numpy(rgb)[None]  # [1,H,W,3]
    alpha = segmenter(frames)  # [1,1,H,W] f32 0..1
    write_image(job.target, render(frames, alpha)[0].cpu().numpy())


def process_video(source: str | os.PathLike, output: str | os.PathLike, command: str, render: Render, *,
                  model: ModelConfig, device: DeviceConfig, options: OutputConfig, matte_config: MatteConfig,
                  reporter: Reporter, note: str = "") -> Path:
    """The video path shared by ``matte`` and ``replace``: every check that can fail runs before
    the first frame is processed, then ``pipeline.run_video`` does the work. ``note`` is added to
    the line that says what is written."""
    source, output = Path(source), Path(output)
    fmt = video_format(output, command, options.mask_only, options.format, options.crf)
    if fmt.sequence:
        folder, _ = sequence_target(output)
        if folder.is_dir() and any(folder.iterdir()) and not options.overwrite:
            raise ConfigError(f"{folder} is not empty: pass --overwrite to write into it, or choose an empty folder")
        ensure_writable_dir(folder)
    else:
        check_output(output, [source], options.overwrite)
        ensure_writable_dir(output.parent)

    with VideoSource(source, options.start, options.end) as video:
        info = video.info
        # the sink first: an encoder or container that can't work fails before the model loads
        if fmt.sequence:
            sink: Sink = PngSequenceSink(output, source, fmt, options.start, options.end, options.max_height)
        else:
            sink = VideoSink(output, fmt, info.width, info.height, info.rate, info.time_base,
                             source, options.start, options.end, options.max_height)
        try:
            segmenter = Segmenter.from_config(model.resolved(video=True), device, reporter)
        except BaseException:
            sink.salvage()  # nothing written yet: this removes the temporary file
            raise
        reporter.info(segmenter.describe())
        turned = f", turned {info.rotation}° upright" if info.rotation else ""
        reporter.info(f"writing {sink.describe()}{turned}{note and ', ' + note}")
        stats = run_video(video, segmenter, MatteStage(matte_config), render, sink, device.batch, reporter)
    if stats.lost or stats.damaged:
        reporter.warn(f"{source.name} is damaged: {stats.lost} frame(s) could not be decoded and were "
                      f"skipped, {stats.damaged} were decoded with errors; {stats.frames} frames were written")
    return output


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
          reporter: Reporter | None = None) -> list[Path]:
    """Cut the subject out of a video (see ``matte_video``) or of images; returns the paths written.

    Images: ``inputs`` are image files and/or folders of images; ``output`` is a file for one
    image, else a folder (created if needed) that receives ``<name>.png`` per input. The model
    loads once. With several images, one that can't be read is reported through
    ``reporter.warn`` and the rest are still written; a MediaError at the end says how many failed.
    """
    reporter = reporter or SilentReporter()
    inputs = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    if len(inputs) == 1 and is_video(Path(inputs[0])):
        return [matte_video(inputs[0], output, model=model, device=device, options=options,
                            matte_config=matte_config, reporter=reporter)]
    jobs = plan_images(inputs, output, options)
    return _process_images(jobs, to_matte if options.mask_only else to_rgba, model, device, reporter)


def replace(inputs: Sequence[str | os.PathLike] | str | os.PathLike, output: str | os.PathLike,
            background: str, *, model: ModelConfig = ModelConfig(),
            device: DeviceConfig = DeviceConfig(), options: OutputConfig = OutputConfig(),
            matte_config: MatteConfig = MatteConfig(), reporter: Reporter | None = None) -> list[Path]:
    """Put the subject of a video or of images onto a new background; returns the paths written.

    ``background``: a colour (name like ``skyblue`` or ``#00b140``), an image file (scaled to
    cover the frame), a video file (scaled to cover, looped or cut to the clip's length), or
    ``blur``/``blur:STRENGTH`` (the frame itself blurred; strength is the sigma at 1080 lines).
    Video goes to H.264 .mp4 by default (.mov ProRes 422 HQ, .mkv, .webm, a folder for PNGs, or
    ``options.format``), with the input's audio. Images: as for ``matte``, in any image format.
    """
    reporter = reporter or SilentReporter()
    inputs = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    video = len(inputs) == 1 and is_video(Path(inputs[0]))
    jobs = [] if video else plan_images(inputs, output, options, composite=True)
    backdrop = parse_background(background)
    note = f"background {backdrop.description}"
    try:
        compositor = Compositor(backdrop)
        if video:
            return [process_video(inputs[0], output, "replace", compositor, model=model, device=device,
                                  options=dataclasses.replace(options, mask_only=False),  # never a matte
                                  matte_config=matte_config,
                                  reporter=reporter, note=note)]
        return _process_images(jobs, compositor, model, device, reporter, note)
    finally:
        backdrop.close()


def _process_images(jobs: list[ImageJob], render: Render, model: ModelConfig, device: DeviceConfig,
                    reporter: Reporter, note: str = "") -> list[Path]:
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
                _one_image(segmenter, job, render)
                written.append(job.target)
            except MediaError as e:
                if len(jobs) == 1:
                    raise
                failed += 1
                reporter.warn(f"skipped {job.source.name}: {e}")
            if bar:
                bar.update(1)
    finally:
        if bar:
            bar.close()
    if failed:
        raise MediaError(f"{failed} of {len(jobs)} images could not be processed (see above); "
                         f"the other {len(written)} were written")
    return written


LIVE_CPU_INPUT_SIZE = 128  # the network's size for live use on the CPU (README, "Live")
LIVE_MATTE = MatteConfig(smooth=3, refine=True)  # past-only smoothing over 3 frames (README, "Live")


def live_model(model: ModelConfig, device: DeviceConfig) -> ModelConfig:
    """``model`` at the input size live use gets by default: the trained 320 on CUDA, a smaller
    one on the CPU, where 320 runs at ~3 frames/s on 2 cores."""
    from .device import pick_device

    on_cpu = pick_device(device.kind).type == "cpu"
    return dataclasses.replace(model, input_size=LIVE_CPU_INPUT_SIZE if on_cpu else 320)


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
    ``model`` None: u2netp at ``live_model``'s size for the device.
    """
    from .live import LiveStats, Preview, Recording, run_live
    from .media.live import LiveSource
    from .media.virtualcam import VirtualCamera

    reporter = reporter or SilentReporter()
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
        ensure_writable_dir(record.parent)
    backdrop = None if keep_alpha else parse_background(background or "blur")
    outputs: list = []
    try:
        live = LiveSource(source)
    except BaseException:
        if backdrop is not None:
            backdrop.close()
        raise
    try:
        reporter.info(f"reading {live.description}: {live.width}x{live.height} at {live.fps:.3g} fps")
        if record is not None:
            sink = VideoSink(record, fmt, live.width, live.height, Fraction(live.fps).limit_denominator(1001),
                             Recording.TIME_BASE, max_height=options.max_height)
            outputs.append(Recording(sink, reporter))
            reporter.info(f"recording {sink.describe()}")
        if virtual:
            camera = VirtualCamera(live.width, live.height, live.fps, alpha=keep_alpha, device=virtual_device)
            outputs.append(camera)
            reporter.info(f"sending to {camera.description}")
        stats = LiveStats()
        if preview:
            outputs.append(Preview(stats))
        segmenter = Segmenter.from_config(model.resolved(video=True), device, reporter, workers=1)  # latency first
        reporter.info(segmenter.describe())
        if backdrop is not None:
            reporter.info(f"background {backdrop.description}")
        stage = MatteStage(matte_config, lookahead=False)
        render: Render = Compositor(backdrop) if backdrop is not None else to_rgba
    except BaseException:
        for output in outputs:
            output.close(False)
        live.close()
        if backdrop is not None:
            backdrop.close()
        raise
    try:
        run_live(live, segmenter, stage, render, outputs, reporter, duration, stats)
    finally:
        if backdrop is not None:
            backdrop.close()
    reporter.info(stats.line())
    if stats_json is not None:
        stats.write_json(Path(stats_json))
    return stats
