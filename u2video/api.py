"""The Python API: what each CLI command calls, with the same options.

    import u2video
    u2video.matte(["photo.jpg"], "photo.png")
    u2video.matte(["photos/"], "cutouts/", options=u2video.ImageOutputConfig(mask_only=True))
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from .compose import alpha_to_uint8, to_rgba
from .config import DeviceConfig, ImageOutputConfig, ModelConfig
from .errors import ConfigError, MediaError
from .media.files import check_output, ensure_writable_dir
from .media.images import ALPHA_SUFFIXES, IMAGE_SUFFIXES, is_image, read_image, write_image
from .progress import Reporter, SilentReporter
from .segmenter import Segmenter


@dataclass(frozen=True)
class ImageJob:
    source: Path
    target: Path


def plan_images(inputs: Sequence[str | os.PathLike], output: str | os.PathLike,
                options: ImageOutputConfig) -> list[ImageJob]:
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


def matte_image(segmenter: Segmenter, job: ImageJob, options: ImageOutputConfig) -> None:
    """One image: decode -> alpha at full resolution -> RGBA (or grey mask) -> atomic write."""
    rgb = read_image(job.source)  # [H,W,3] uint8
    frames = torch.from_numpy(rgb)[None]  # [1,H,W,3]
    alpha = segmenter(frames)  # [1,1,H,W] f32 0..1
    pixels = alpha_to_uint8(alpha)[0, 0] if options.mask_only else to_rgba(frames, alpha)[0]
    write_image(job.target, pixels.cpu().numpy())


def matte(inputs: Sequence[str | os.PathLike] | str | os.PathLike, output: str | os.PathLike, *,
          model: ModelConfig = ModelConfig(), device: DeviceConfig = DeviceConfig(),
          options: ImageOutputConfig = ImageOutputConfig(), reporter: Reporter | None = None) -> list[Path]:
    """Cut the subject out of images: writes RGBA images (or grey masks) and returns their paths.

    ``inputs``: image files and/or folders of images. ``output``: a file for one image, else a
    folder (created if needed) that receives ``<name>.png`` per input. The model loads once.
    With several images, one that can't be read is reported through ``reporter.warn`` and the
    rest are still written; a MediaError at the end says how many failed.
    """
    reporter = reporter or SilentReporter()
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    jobs = plan_images(inputs, output, options)
    segmenter = Segmenter.from_config(model, device, reporter)
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
