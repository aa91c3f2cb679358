"""`u2video matte`: the subject with alpha."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..config import DeviceConfig, DeviceKind, OutputConfig, ModelConfig, Normalization, Precision
from ..terminal import TerminalReporter
from .options import DeviceOpt, Fp16Opt, InputSizeOpt, ModelOpt, NormalizationOpt, OverwriteOpt


def matte(
    inputs: Annotated[list[Path], typer.Argument(
        help="A video, or images (JPEG, PNG, WebP, BMP, TIFF) and/or folders of images.", show_default=False)],
    output: Annotated[Path, typer.Option(
        "--output", "-o", help="Video: .mov (ProRes 4444), .webm (VP9 alpha), or a folder/%05d.png for PNGs; "
        "with --matte-only .mkv (FFV1) or .mov. Images: a .png/.webp for one input, else a folder.",
        show_default=False)],
    mask_only: Annotated[bool, typer.Option(
        "--mask-only", "--matte-only", help="Write the grey mask/matte instead of the RGBA cut-out.")] = False,
    model: ModelOpt = "u2netp",
    device: DeviceOpt = DeviceKind.AUTO,
    fp16: Fp16Opt = False,
    input_size: InputSizeOpt = 320,
    normalize: NormalizationOpt = Normalization.AUTO,
    overwrite: OverwriteOpt = False,
) -> None:
    """Cut the subject out: video or images with alpha, or the grey matte.

    Examples: u2video matte clip.mp4 -o clip.mov; u2video matte photo.jpg -o photo.png
    """
    from ..api import matte as run_matte  # torch loads here, not for --help

    run_matte(
        inputs, output,
        model=ModelConfig(model, input_size, normalize),
        device=DeviceConfig(device, Precision.FP16 if fp16 else Precision.FP32),
        options=OutputConfig(mask_only=mask_only, overwrite=overwrite),
        reporter=TerminalReporter(),
    )
