"""`u2video matte`: the subject with alpha."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..terminal import TerminalReporter
from .options import (BatchOpt, DeviceOpt, RuntimeOpt, EndOpt, Fp16Opt, PrecisionOpt, InputSizeOpt, ModelOpt, NormalizationOpt,
                      OverwriteOpt, StrictOpt, FormatOpt, RayOpt, RayAddressOpt, SegmentSecondsOpt, cluster_config, PresetOpt, RefineOpt, CropOpt, SmoothOpt, StartOpt, configs, frame_numbers)


def matte(
    inputs: Annotated[list[Path], typer.Argument(
        help="Videos, images (JPEG, PNG, WebP, BMP, TIFF), and/or folders of them.", show_default=False)],
    output: Annotated[Path, typer.Option(
        "--output", "-o", help="Video: .mov (ProRes 4444), .webm (VP9 alpha), or a folder/%05d.png for PNGs; "
        "with --matte-only .mkv (FFV1) or .mov. Images: a .png/.webp for one input. Several inputs or a folder: a folder OUTDIR/, "
        "each written to OUTDIR/<name>.<ext> (finished ones skipped on a rerun).",
        show_default=False)],
    mask_only: Annotated[Optional[bool], typer.Option(
        "--mask-only", "--matte-only", help="Write the grey mask/matte instead of the RGBA cut-out.",
        show_default=False)] = None,
    frames: Annotated[Optional[str], typer.Option(
        "--frames", metavar="N,N,...", help="Video to a folder: only these frames (0-based), each PNG named by its "
        "frame number (00040.png): masks to correct for `u2video tune`.", show_default=False)] = None,
    every: Annotated[Optional[int], typer.Option(
        "--every", min=1, help="Video to a folder: every Nth frame (0, N, 2N...), named by frame number.",
        show_default=False)] = None,
    picture: Annotated[bool, typer.Option(
        "--picture", help="Video to a folder: the frames themselves, no matte (the pictures to correct masks on).")] = False,
    preset: PresetOpt = None,
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
    """Cut the subject out: video or images with alpha, or the grey matte. Audio is kept.

    Examples: u2video matte clip.mp4 -o clip.mov; u2video matte clip.mp4 -o clip.webm;
    u2video matte photo.jpg -o photo.png; u2video matte clip.mp4 -o matte.mkv --matte-only;
    u2video matte clip.mp4 -o masks/ --matte-only --frames 0,40,80 (and -o frames/ --picture: the frames);
    u2video matte clips/ -o out/ (every video in clips/ to out/<name>.mov; add --ray to run on Ray)
    """
    from ..api import matte as run_matte  # torch loads here, not for --help

    _, model_cfg, device_cfg, output_cfg, matte_cfg = configs(
        "matte", preset, model=model, input_size=input_size, normalize=normalize, device=device, precision=precision, fp16=fp16,
        batch=batch, runtime=runtime, smooth=smooth, refine=refine, crop=crop, mask_only=mask_only, overwrite=overwrite or None, strict=strict or None, start=start, end=end, format=output_format,
        frames=frame_numbers(frames), every=every, picture=picture or None)
    run_matte(inputs, output, model=model_cfg, device=device_cfg, options=output_cfg, matte_config=matte_cfg,
              reporter=TerminalReporter(),
                cluster=cluster_config(ray, ray_address, segment_seconds))
