"""The Python API: what each CLI command calls, with the same options.

    import u2video
    u2video.matte("clip.mp4", "clip.mov")              # ProRes 4444 with alpha
    u2video.matte(["photo.jpg"], "photo.png")
    u2video.matte(["photos/"], "cutouts/", options=u2video.OutputConfig(mask_only=True))
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from .compose import to_matte, to_rgba
from .config import DeviceConfig, OutputConfig, ModelConfig
from .errors import ConfigError, MediaError
from .media.files import check_output, ensure_writable_dir
from .media.codecs import alpha_format, is_png_sequence
from .media.images import ALPHA_SUFFIXES, IMAGE_SUFFIXES, is_image, read_image, write_image
from .media.source import VideoSource, is_video
from .media.writers import PngSequenceSink, VideoSink
from .pipeline import run_video
from .progress import Reporter, SilentReporter
from .segmenter import Segmenter


@dataclass(frozen=True)
class ImageJob:
    source: Path
    target: Path


def plan_images(inputs: Sequence[str | os.PathLike], output: str | os.PathLike,
                options: OutputConfig) -> list[ImageJob]:
    """Expand folders, pair each input image with its output path, and check everything that
    can be checked before the model loads (inputs exist, outputs are allowed and writable)."""
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
        jobs = [ImageJob(src, output / f"{src.stem}.png") for src in sources]
        names = [job.target.name for job in jobs]
        twins = sorted({n for n in names if names.count(n) > 1})
        if twins:
            raise ConfigError(f"several inputs would write {twins[0]}: process those folders separately")

    allowed = IMAGE_SUFFIXES if options.mask_only else ALPHA_SUFFIXES
    for job in jobs:
        if job.target.suffix.lower() not in allowed:
            what = "a mask" if options.mask_only else "transparency (use .png or .webp, or --mask-only)"
            raise ConfigError(f"{job.target.name}: {job.target.suffix or 'no extension'} cannot hold {what}")
        check_output(job.target, sources, options.overwrite)
    for folder in {job.target.parent for job in jobs}:
        ensure_writable_dir(folder)
    return jobs


def matte_image(segmenter: Segmenter, job: ImageJob, options: OutputConfig) -> None:
    """One image: decode -> alpha at full resolution -> RGBA (or grey mask) -> atomic write."""
    rgb = read_image(job.source)  # [H,W,3] uint8
    frames = torch.from_numpy(rgb)[None]  # [1,H,W,3]
    alpha = segmenter(frames)  # [1,1,H,W] f32 0..1
    pixels = (to_matte if options.mask_only else to_rgba)(frames, alpha)[0]
    write_image(job.target, pixels.cpu().numpy())


def matte_video(source: str | os.PathLike, output: str | os.PathLike, *, model: ModelConfig = ModelConfig(),
                device: DeviceConfig = DeviceConfig(), options: OutputConfig = OutputConfig(),
                reporter: Reporter | None = None) -> Path:
    """Cut the subject out of a video: RGBA video (.mov ProRes 4444, .webm VP9+alpha), an RGBA
    PNG sequence (a folder or a ``%05d.png`` pattern), or with ``mask_only`` the grey matte
    (.mkv FFV1 lossless, .mov ProRes). Every frame keeps its timestamp. Returns the output path."""
    reporter = reporter or SilentReporter()
    source, output = Path(source), Path(output)
    if is_png_sequence(output):
        folder = output.parent if "%" in output.name else output
        if folder.is_dir() and any(folder.iterdir()) and not options.overwrite:
            raise ConfigError(f"{folder} is not empty: pass --overwrite to write into it, or choose an empty folder")
        ensure_writable_dir(folder)
        make_sink = lambda info: PngSequenceSink(output)  # noqa: E731
    else:
        fmt = alpha_format(output, options.mask_only)  # fails for e.g. alpha in .mp4, before decoding
        check_output(output, [source], options.overwrite)
        ensure_writable_dir(output.parent)
        make_sink = lambda info: VideoSink(output, fmt, info.width, info.height, info.rate, info.time_base)  # noqa: E731

    with VideoSource(source) as video:
        segmenter = Segmenter.from_config(model.resolved(video=True), device, reporter)
        reporter.info(segmenter.describe())
        sink = make_sink(video.info)
        render = to_matte if options.mask_only else to_rgba
        stats = run_video(video, segmenter, render, sink, device.batch, reporter)
    if stats.lost:
        reporter.warn(f"{stats.lost} damaged packet(s) in {source.name} could not be decoded; "
                      f"{stats.frames} frames were written")
    return output


def matte(inputs: Sequence[str | os.PathLike] | str | os.PathLike, output: str | os.PathLike, *,
          model: ModelConfig = ModelConfig(), device: DeviceConfig = DeviceConfig(),
          options: OutputConfig = OutputConfig(), reporter: Reporter | None = None) -> list[Path]:
    """Cut the subject out of a video (see ``matte_video``) or of images; returns the paths written.

    Images: ``inputs`` are image files and/or folders of images; ``output`` is a file for one
    image, else a folder (created if needed) that receives ``<name>.png`` per input. The model
    loads once. With several images, one that can't be read is reported through
    ``reporter.warn`` and the rest are still written; a MediaError at the end says how many failed.
    """
    reporter = reporter or SilentReporter()
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    if len(inputs) == 1 and is_video(Path(inputs[0])):
        return [matte_video(inputs[0], output, model=model, device=device, options=options, reporter=reporter)]
    jobs = plan_images(inputs, output, options)
    segmenter = Segmenter.from_config(model.resolved(video=False), device, reporter)
    reporter.info(segmenter.describe())

    written: list[Path] = []
    failed = 0
    bar = reporter.bar("matte", len(jobs), "img") if len(jobs) > 1 else None
    try:
        for job in jobs:
            try:
                matte_image(segmenter, job, options)
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
