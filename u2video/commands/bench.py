"""`u2video bench`: throughput of each stage and of the whole loop."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import ConfigError
from ..terminal import TerminalReporter
from .options import (BatchOpt, DeviceOpt, Fp16Opt, PrecisionOpt, InputSizeOpt, ModelOpt, RefineOpt, RuntimeOpt, SmoothOpt,
                      configs)


def bench(
    video: Annotated[Optional[Path], typer.Argument(
        help="A clip to measure on; without one, a clip of --size and --frames is generated.", show_default=False)] = None,
    output_format: Annotated[str, typer.Option(
        "--format", help="What to write: prores (matte .mov 4444), webm (matte VP9 alpha), png (matte PNGs), "
        "h264 (replace onto a colour, .mp4).")] = "prores",
    size: Annotated[str, typer.Option("--size", help="Generated clip: WIDTHxHEIGHT.")] = "640x480",
    frames: Annotated[int, typer.Option("--frames", min=1, help="Generated clip: number of frames.")] = 60,
    model: ModelOpt = None,
    device: DeviceOpt = None,
    precision: PrecisionOpt = None,
    fp16: Fp16Opt = None,
    batch: BatchOpt = None,
    runtime: RuntimeOpt = None,
    input_size: InputSizeOpt = None,
    smooth: SmoothOpt = None,
    refine: RefineOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout instead of a table.")] = False,
    compare: Annotated[bool, typer.Option(
        "--compare", help="Instead: whole `u2video matte` processes (-> ProRes 4444) with each CPU runtime, and "
        "--precision int8 where the store has it, side by side with the per-frame loop around rembg's model, "
        "in alternating rounds (frames/s from start to exit, min/median/max, ratio, peak memory).")] = False,
    rounds: Annotated[int, typer.Option("--rounds", min=1, help="--compare: alternating rounds.")] = 3,
) -> None:
    """Measure decode, model, matte, encode and end to end (frames per second) and the efficiency
    (end to end / slowest stage), with peak memory; or, with --compare, whole runs side by side.

    Examples: u2video bench; u2video bench clip.mp4 --format h264 --json; u2video bench --size 1920x1080 --batch 8;
    u2video bench --compare --frames 120
    """
    if compare:
        from ..compare import compare as run_compare

        width, height = _size(size)
        flags = [*(["--input-size", str(input_size)] if input_size else []),
                 *(["--smooth", str(smooth)] if smooth is not None else []),
                 *([] if refine is None else ["--refine" if refine else "--no-refine"])]
        done = run_compare(video, size=(width, height), frames=frames, rounds=rounds, model=model or "u2netp",
                           model_flags=flags, reporter=TerminalReporter())
        typer.echo(done.to_json() if as_json else done.table())
        return
    from ..benchmark import BenchFormat, bench as run_bench  # torch loads here, not for --help

    try:
        fmt = BenchFormat(output_format)
    except ValueError:
        raise ConfigError(f"--format {output_format} is not one of {', '.join(f.value for f in BenchFormat)}") from None
    width, height = _size(size)
    _, model_cfg, device_cfg, _, matte_cfg = configs(
        "matte", None, model=model, input_size=input_size, normalize=None, device=device, precision=precision, fp16=fp16,
        batch=batch, runtime=runtime, smooth=smooth, refine=refine)
    result = run_bench(video, output_format=fmt, size=(width, height), frames=frames, model=model_cfg,
                       device=device_cfg, matte_config=matte_cfg, reporter=TerminalReporter())
    typer.echo(result.to_json() if as_json else result.table())


def _size(size: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in size.lower().split("x"))
    except ValueError:
        raise ConfigError(f"--size {size} is not WIDTHxHEIGHT, e.g. 640x480") from None
    return width, height
