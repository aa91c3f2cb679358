"""`u2video matte`: the subject with alpha."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..config import DeviceConfig, DeviceKind, ImageOutputConfig, ModelConfig, Normalization, Precision
from ..terminal import TerminalReporter
from .options import DeviceOpt, Fp16Opt, InputSizeOpt, ModelOpt, NormalizationOpt, OverwriteOpt


def matte(
    inputs: Annotated[list[Path], typer.Argument(
        help="Images (JPEG, PNG, WebP, BMP, TIFF) and/or folders of images.", show_default=False)],
    output: Annotated[Path, typer.Option(
        "--output", "-o", help="Output image (.png/.webp) for one input; else a folder, one <name>.png per input.",
        show_default=False)],
    mask_only: Annotated[bool, typer.Option("--mask-only", help="Write the grey mask instead of the RGBA cut-out.")] = False,
    model: ModelOpt = "u2netp",
    device: DeviceOpt = DeviceKind.AUTO,
    fp16: Fp16Opt = False,
    input_size: InputSizeOpt = 320,
    normalize: NormalizationOpt = Normalization.REFERENCE,
    overwrite: OverwriteOpt = False,
) -> None:
    """Cut the subject out: RGBA images, or grey masks with --mask-only.

    Example: u2video matte photo.jpg -o photo.png
    """
    from ..api import matte as run_matte  # torch loads here, not for --help

    run_matte(
        inputs, output,
        model=ModelConfig(model, input_size, normalize),
        device=DeviceConfig(device, Precision.FP16 if fp16 else Precision.FP32),
        options=ImageOutputConfig(mask_only=mask_only, overwrite=overwrite),
        reporter=TerminalReporter(),
    )
