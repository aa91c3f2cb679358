"""Flags shared by several commands, declared once."""

from __future__ import annotations

from typing import Annotated

import typer

from ..config import DeviceKind, Normalization

ModelOpt = Annotated[str, typer.Option(
    "--model", "-m", help="Model name from `u2video models` (u2netp, u2net, u2net_human_seg, silueta) "
    "or a path to a .onnx/.pth file.")]
DeviceOpt = Annotated[DeviceKind, typer.Option("--device", help="Where the network runs.")]
Fp16Opt = Annotated[bool, typer.Option("--fp16/--fp32", help="Half precision for the network (CUDA).")]
InputSizeOpt = Annotated[int, typer.Option(
    "--input-size", min=32, max=2048, help="Square size the network sees (multiple of 32; trained at 320).")]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Replace outputs that already exist.")]
NormalizationOpt = Annotated[Normalization, typer.Option(
    "--normalize", help="reference: the authors' per-image max and min-max (reproduces their masks); "
    "fixed: /255 and the raw sigmoid, a constant gain; auto: reference for images, fixed for video.")]
