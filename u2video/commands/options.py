"""Flags shared by several commands, declared once, and how they combine with a preset.

Flags that a preset can set default to None ("not given"), so that defaults < preset < flags.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..config import ClusterConfig, Crop, DeviceConfig, DeviceKind, MatteConfig, ModelConfig, Normalization, OutputConfig, Precision, Runtime
from ..errors import ConfigError
from ..presets import Preset, format_by_extension, load_preset

ModelOpt = Annotated[Optional[str], typer.Option(
    "--model", "-m", help="Model name from `u2video models` (u2netp, u2net, u2net_human_seg, silueta, or a tuned "
    "model in the store) or a path to a .onnx/.pth file (e.g. from `u2video tune`).  [default: u2netp]",
    show_default=False)]
DeviceOpt = Annotated[Optional[DeviceKind], typer.Option(
    "--device", help="Where the network runs.  [default: auto]", show_default=False)]
PrecisionOpt = Annotated[Optional[Precision], typer.Option(
    "--precision", show_default=False,
    help="The network's number format: auto is fp16 on CUDA and fp32 on the CPU; int8 (CPU, OpenVINO) runs "
    "the network `u2video models quantize` made.  [default: auto]")]
Fp16Opt = Annotated[Optional[bool], typer.Option(
    "--fp16/--fp32", help="Same as --precision fp16 / --precision fp32.", show_default=False)]
RuntimeOpt = Annotated[Optional[Runtime], typer.Option(
    "--runtime", show_default=False,
    help="What runs the network: auto is OpenVINO on the CPU (onnxruntime where OpenVINO is not installed "
    "or can't compile the network) and PyTorch on CUDA.  [default: auto]")]
InputSizeOpt = Annotated[Optional[int], typer.Option(
    "--input-size", min=32, max=2048, show_default=False,
    help="Square size the network sees (multiple of 32; trained at 320).  [default: 320]")]
BatchOpt = Annotated[Optional[int], typer.Option(
    "--batch", min=1, max=256, show_default=False, help="Frames per network call.  [default: 1 on the CPU; on CUDA the fastest that fits "
    "half the free memory, probed at the start]")]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Replace outputs that already exist.")]
StrictOpt = Annotated[bool, typer.Option(
    "--strict", help="Exit with an error (3) when the input turns out damaged or truncated and frames are "
    "missing from the output (by default a warning says how many and where).")]
NormalizationOpt = Annotated[Optional[Normalization], typer.Option(
    "--normalize", show_default=False,
    help="reference: the authors' per-image max and min-max (reproduces their masks); "
    "fixed: /255 and the raw sigmoid, a constant gain; auto: reference for images, fixed for video.  [default: auto]")]
PresetOpt = Annotated[Optional[str], typer.Option(
    "--preset", "-p", help="A preset name from `u2video presets`, or a path to a .toml file; flags override it.",
    show_default=False)]
StartOpt = Annotated[Optional[float], typer.Option(
    "--start", min=0, help="Video: start at this many seconds into the input.", show_default=False)]
EndOpt = Annotated[Optional[float], typer.Option(
    "--end", min=0, help="Video: stop at this many seconds into the input.", show_default=False)]
CrfOpt = Annotated[Optional[int], typer.Option(
    "--crf", min=0, max=63, show_default=False,
    help="Video quality for H.264/H.265 (0-51) and VP9 (0-63): lower is better and larger.")]
MaxHeightOpt = Annotated[Optional[int], typer.Option(
    "--max-height", min=16, show_default=False, help="Video: scale down to at most this many lines.")]


SmoothOpt = Annotated[Optional[int], typer.Option(
    "--smooth", min=0, max=15, show_default=False,
    help="Video: temporal smoothing over this many frames each side, then a hold that keeps still areas "
    "steady (0: off, per-frame mattes): steadier where nothing moves, no lag where something does.  [default: 6]")]
RefineOpt = Annotated[Optional[bool], typer.Option(
    "--refine/--no-refine", show_default=False,
    help="Video: edges guided by the full-resolution frame (--no-refine: plain bilinear upsampling of the "
    "network's prediction).  [default: refine]")]
CropOpt = Annotated[Optional[Crop], typer.Option(
    "--crop", show_default=False,
    help="Video: where the subject is small in the frame, the network looks again at a box around it "
    "(auto), or only at the whole frame (off).  [default: auto]")]

FormatOpt = Annotated[Optional[str], typer.Option(
    "--format", metavar="EXT", show_default=False,
    help="The output format by extension (mov, webm, mkv, mp4, png for PNG folders): for several videos or a "
    "folder, each written to OUTDIR/<name>.<ext>.  [default: mov for matte, mkv with --matte-only, mp4 for replace]")]
RayOpt = Annotated[bool, typer.Option(
    "--ray", help="Run on Ray: each video, and each segment of a long one, is a task; without --ray-address "
    "a local Ray is started on every core (pip install 'u2video\\[ray]').")]
RayAddressOpt = Annotated[Optional[str], typer.Option(
    "--ray-address", metavar="ADDRESS", show_default=False,
    help="With --ray: the cluster to join (auto: the one `ray start` runs here; ray://HEAD:10001). Inputs and "
    "outputs must be on storage every worker reads and writes.")]
SegmentSecondsOpt = Annotated[Optional[float], typer.Option(
    "--segment-seconds", min=1, show_default=False,
    help="With --ray: a video longer than this is split into segments of this many seconds.  [default: 60]")]


def cluster_config(ray: bool, address: str | None, segment_seconds: float | None) -> ClusterConfig | None:
    """--ray and its options -> a ClusterConfig (None: this process)."""
    if not ray:
        if address is not None or segment_seconds is not None:
            raise ConfigError(f"{'--ray-address' if address is not None else '--segment-seconds'} is for runs on Ray: "
                              "add --ray")
        return None
    return ClusterConfig(address=address, **({} if segment_seconds is None else {"segment_seconds": segment_seconds}))


def frame_numbers(text: str | None) -> tuple[int, ...] | None:
    """"0,40,80" -> (0, 40, 80); ConfigError for anything else."""
    if text is None:
        return None
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ConfigError(f"--frames {text!r} is not a list of frame numbers: give e.g. --frames 0,40,80") from None


def configs(command: str, preset_name: str | None, *, model: str | None, input_size: int | None,
            normalize: Normalization | None, device: DeviceKind | None, precision: Precision | None,
            fp16: bool | None, batch: int | None, runtime: Runtime | None, smooth: int | None,
            refine: bool | None, crop: Crop | None = None, **output_flags: object) -> tuple[Preset, ModelConfig, DeviceConfig, OutputConfig, MatteConfig]:
    """Defaults < preset < flags, for every config a command needs."""
    preset = load_preset(preset_name)
    preset.check_command(command)
    if fp16 is not None:  # the older spelling
        said = Precision.FP16 if fp16 else Precision.FP32
        if precision not in (None, said):
            raise ConfigError(f"--{said.value} and --precision {precision.value} disagree: give one of them")
        precision = said
    extension = output_flags.pop("format", None)
    output = preset.output_config(**output_flags)
    if extension is not None:
        output = replace(output, format=format_by_extension(command, output.mask_only, str(extension)))
    return (preset,
            preset.model_config(name=model, input_size=input_size, normalization=normalize),
            preset.device_config(kind=device, precision=precision, batch=batch, runtime=runtime),
            output,
            preset.matte_config(smooth=smooth, refine=refine, crop=crop))
