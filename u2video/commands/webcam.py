"""`u2video webcam`: a live camera with its background removed or replaced."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..config import Crop
from ..terminal import TerminalReporter
from .options import CrfOpt, DeviceOpt, Fp16Opt, PrecisionOpt, ModelOpt, OverwriteOpt, StrictOpt, RuntimeOpt, configs


def webcam(
    source: Annotated[Optional[str], typer.Option(
        "--source", "-s", show_default=False,
        help="A camera index (0) or device (/dev/video0), or a video file or stream URL played at its real rate.  "
        "[default: the default camera]")] = None,
    background: Annotated[Optional[str], typer.Option(
        "--background", "-b", show_default=False,
        help="blur[:STRENGTH], a colour (name or #RRGGBB), an image or a video, as for `replace`.  [default: blur]")] = None,
    keep_alpha: Annotated[bool, typer.Option(
        "--keep-alpha", help="Send the cut-out with alpha (RGBA) instead of a background, for sinks that take it.")] = False,
    virtual: Annotated[bool, typer.Option(
        "--virtual/--no-virtual", help="Send to a virtual camera (pyvirtualcam: v4l2loopback on Linux, OBS elsewhere).")] = True,
    virtual_device: Annotated[Optional[str], typer.Option(
        "--virtual-device", show_default=False, help="Which virtual camera, e.g. /dev/video10.  [default: the first]")] = None,
    preview: Annotated[bool, typer.Option("--preview", help="Show the output in a window (q or Esc stops).")] = False,
    record: Annotated[Optional[Path], typer.Option(
        "--record", show_default=False, help="Also write the output to this file (.mp4; .mov or .webm with --keep-alpha).")] = None,
    duration: Annotated[Optional[float], typer.Option(
        "--duration", min=0, show_default=False, help="Stop after this many seconds.  [default: until Ctrl-C or the end of a file]")] = None,
    stats_json: Annotated[Optional[Path], typer.Option(
        "--stats-json", show_default=False, help="Write the stats (fps, drops, latency per frame) to this JSON file.")] = None,
    model: ModelOpt = None,
    input_size: Annotated[Optional[int], typer.Option(
        "--input-size", min=32, max=2048, show_default=False,
        help="Square size the network sees (multiple of 32): smaller is faster and coarser.  "
        "[default: 320 on CUDA; on the CPU 192 with the INT8 network, else 128]")] = None,
    device: DeviceOpt = None,
    precision: PrecisionOpt = None,
    fp16: Fp16Opt = None,
    runtime: RuntimeOpt = None,
    smooth: Annotated[Optional[int], typer.Option(
        "--smooth", min=0, max=15, show_default=False,
        help="Smoothing over this many past frames, then the hold that keeps still areas steady (0: off).  "
        "[default: 3]")] = None,
    refine: Annotated[Optional[bool], typer.Option(
        "--refine/--no-refine", show_default=False,
        help="Edges guided by the full-resolution frame.  [default: refine]")] = None,
    crop: Annotated[Optional[Crop], typer.Option(
        "--crop", show_default=False,
        help="auto: the network looks at a box around the subject found in the previous frame (a finer "
        "matte; slower, see the README's \"Small subjects\"); off: at the whole frame.  [default: off]")] = None,
    crf: CrfOpt = None,
    overwrite: OverwriteOpt = False,
    strict: StrictOpt = False,
) -> None:
    """Remove or replace the background of a live camera and send it to a virtual camera, a
    preview window and/or a recording; prints capture and processed fps, drops and latency.
    On the CPU it runs the INT8 network where `u2video models quantize` made one (--precision fp32: not).

    Examples: u2video webcam; u2video webcam --source /dev/video2 -b beach.jpg --input-size 192;
    u2video webcam --source clip.mp4 --no-virtual --record out.mp4 --stats-json stats.json
    """
    from ..api import LIVE_MATTE, live_device, live_model, webcam as run_webcam  # torch loads here, not for --help
    from ..config import with_flags

    _, model_cfg, device_cfg, output_cfg, _ = configs(
        "replace", None, model=model, input_size=input_size, normalize=None, device=device, precision=precision, fp16=fp16,
        batch=None, runtime=runtime, smooth=None, refine=None, overwrite=overwrite or None, strict=strict or None, crf=crf)
    device_cfg = live_device(model_cfg, device_cfg)  # the store's INT8 network on the CPU, where there is one
    if input_size is None:
        model_cfg = live_model(model_cfg, device_cfg)
    run_webcam(source, background=background, keep_alpha=keep_alpha, virtual=virtual, virtual_device=virtual_device,
               preview=preview, record=record, duration=duration, model=model_cfg, device=device_cfg,
               matte_config=with_flags(LIVE_MATTE, smooth=smooth, refine=refine, crop=crop), options=output_cfg,
               stats_json=stats_json, reporter=TerminalReporter())
