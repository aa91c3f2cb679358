"""`u2video replace`: the subject on a new background."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import ConfigError
from ..terminal import TerminalReporter
from .options import (BatchOpt, CrfOpt, DeviceOpt, RuntimeOpt, EndOpt, Fp16Opt, PrecisionOpt, InputSizeOpt, MaxHeightOpt, ModelOpt,
                      NormalizationOpt, OverwriteOpt, StrictOpt, FormatOpt, RayOpt, RayAddressOpt, SegmentSecondsOpt, cluster_config, PresetOpt, RefineOpt, CropOpt, SmoothOpt, StartOpt, configs)


def replace(
    inputs: Annotated[list[Path], typer.Argument(
        help="Videos, images (JPEG, PNG, WebP, BMP, TIFF), and/or folders of them.", show_default=False)],
    output: Annotated[Path, typer.Option(
        "--output", "-o", help="Video: .mp4 (H.264), .mov (ProRes 422 HQ), .mkv, .webm, or a folder for PNGs "
        "(H.265 and others by --preset). Images: a file for one input. Several inputs or a folder: a folder OUTDIR/, each written to "
        "OUTDIR/<name>.<ext> (finished ones skipped on a rerun).", show_default=False)],
    background: Annotated[Optional[str], typer.Option(
        "--background", "-b", show_default=False,
        help="A colour (name or #RRGGBB), an image (scaled to cover), a video (scaled, looped or cut), "
        "or blur[:STRENGTH] of the frame itself (sigma at 1080 lines, default 20). Required unless the preset "
        "sets one.")] = None,
    preset: PresetOpt = None,
    crf: CrfOpt = None,
    max_height: MaxHeightOpt = None,
    model: ModelOpt = None,
    device: DeviceOpt = None,
    precision: PrecisionOpt = None,
    fp16: Fp16Opt = None,
    batch: BatchOpt = None,
    runtime: RuntimeOpt = None,
    smooth: SmoothOpt = None,
    refine: RefineOpt = None,
    crop: CropOpt = None,
    input_size: InputSizeOpt = None,
    normalize: NormalizationOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    overwrite: OverwriteOpt = False,
    strict: StrictOpt = False,
    output_format: FormatOpt = None,
    ray: RayOpt = False,
    ray_address: RayAddressOpt = None,
    segment_seconds: SegmentSecondsOpt = None,
) -> None:
    """Put the subject on a new background: colour, image, video or blur. Audio is kept.

    Examples: u2video replace clip.mp4 -o out.mp4 -b beach.jpg; u2video replace clip.mp4 -o out.mp4 -b blur:30;
    u2video replace clip.mp4 -o key.mp4 --preset greenscreen; u2video replace photo.jpg -b "#203040" -o out.jpg;
    u2video replace clips/ -o out/ -b white (every video in clips/ to out/<name>.mp4; add --ray to run on Ray)
    """
    from ..api import replace as run_replace  # torch loads here, not for --help

    chosen, model_cfg, device_cfg, output_cfg, matte_cfg = configs(
        "replace", preset, model=model, input_size=input_size, normalize=normalize, device=device, precision=precision, fp16=fp16,
        batch=batch, runtime=runtime, smooth=smooth, refine=refine, crop=crop, overwrite=overwrite or None, strict=strict or None, start=start, end=end, format=output_format, crf=crf, max_height=max_height)
    background = background or chosen.background
    if background is None:
        raise ConfigError("replace needs --background: a colour (e.g. white, #00b140), an image or video file, "
                          "or blur")
    run_replace(inputs, output, background, model=model_cfg, device=device_cfg, options=output_cfg,
                matte_config=matte_cfg, reporter=TerminalReporter(),
                cluster=cluster_config(ray, ray_address, segment_seconds))
