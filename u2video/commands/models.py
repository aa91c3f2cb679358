"""`u2video models`: list, pull and verify weights in the store shared with rembg."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..terminal import TerminalReporter


def list_models() -> None:
    """List the models: name, whether present and verified, and path in the store; then the tuned
    models (`u2video tune`) in the store and in the current folder. Exits with an error (4) if a
    file in the store is damaged."""
    from ..errors import ModelError
    from ..model.tuned import list_tuned
    from ..model.store import list_store, store_dir

    typer.echo(f"store: {store_dir()}  (set U2NET_HOME to move it; shared with rembg)")
    damaged = []
    for entry in list_store():
        state = "ok" if entry.verified else ("BAD CHECKSUM" if entry.present else "missing")
        typer.echo(f"{entry.spec.name:<16} {state:<12} {entry.path}  - {entry.spec.description}")
        if entry.present and not entry.verified:
            damaged.append(entry.spec.name)
    for tuned in list_tuned():
        p = tuned.provenance
        frames = ",".join(map(str, p.get("clip", {}).get("frames_used", [])))
        typer.echo(f"{tuned.path.stem:<16} {'tuned':<12} {tuned.path}  - tuned from {p.get('base', {}).get('name')} "
                   f"on {p.get('clip', {}).get('name')} (frames {frames}; {p.get('steps_run')} steps)")
    if damaged:
        raise ModelError(f"{', '.join(damaged)} in the store failed the checksum: run `u2video models verify "
                         f"{damaged[0]}` for what to do")


def pull(
    names: Annotated[list[str], typer.Argument(help="Model names, e.g. u2netp u2net.", show_default=False)],
    force: Annotated[bool, typer.Option("--force", help="Download again even if an intact copy is there.")] = False,
) -> None:
    """Download models into the store (checksum verified, atomic)."""
    from ..model.store import lookup, pull as pull_model

    for spec in [lookup(n) for n in names]:
        path = pull_model(spec, TerminalReporter(), force=force)
        typer.echo(f"{spec.name}: {path} (md5 {spec.md5} verified)")


def verify(
    names: Annotated[Optional[list[str]], typer.Argument(help="Model names; all present ones when omitted.")] = None,
) -> None:
    """Check the md5 of models in the store; exits non-zero if one is missing or damaged."""
    from ..errors import ModelError
    from ..model.store import list_store, lookup, store_dir, verify as verify_model

    specs = [lookup(n) for n in names] if names else [e.spec for e in list_store() if e.present]
    if not specs:
        raise ModelError(f"no models in the store {store_dir()}: run `u2video models pull u2netp`")
    for spec in specs:
        path = store_dir() / spec.filename
        if not path.is_file():
            raise ModelError(f"{spec.name} is not in the store: run `u2video models pull {spec.name}`")
        verify_model(spec, path)
        typer.echo(f"{spec.name}: ok ({path})")


def quantize(
    name: Annotated[str, typer.Argument(help="The model to quantize, e.g. u2netp.", show_default=False)],
    calibrate: Annotated[list[Path], typer.Option(
        "--calibrate", metavar="FILE", help="Video files or images to calibrate on (repeat the option): footage like what you will "
        "process.", show_default=False)],
    input_size: Annotated[int, typer.Option("--input-size", min=32, max=1024,
                                            help="Input side it is calibrated at (it runs at any).")] = 320,
    frames: Annotated[int, typer.Option("--frames", min=3, help="Frames sampled from the footage; a third of "
                                                                   "them check the result.")] = 150,
    max_drop: Annotated[float, typer.Option("--max-drop", min=0.0, max=1.0,
                                            help="Accuracy control: the largest fall of the mean IoU against fp32 "
                                                 "that is allowed.")] = 0.01,
    plain: Annotated[bool, typer.Option("--plain", help="Plain quantisation, no accuracy control: minutes faster, "
                                                        "a worse matte.")] = False,
) -> None:
    """Make an INT8 network for `--precision int8` (CPU, OpenVINO) from the store's weights, with
    NNCF, and store it beside them with its md5 and how it was made. Needs NNCF (`pip install nncf`,
    or the project's int8 extra)."""
    from ..model.quantize import QuantizeConfig, quantize as make_int8

    config = QuantizeConfig(input_size=input_size, frames=frames, max_drop=None if plain else max_drop)
    made = make_int8(name, calibrate, config, TerminalReporter())
    v = made.provenance["validation"]
    typer.echo(f"{name} INT8: {made.xml} (and .bin, .json); against fp32 on "
               f"{made.provenance['calibration']['validation_frames']} held-out frames: mean |Δ| "
               f"{v['mean_abs_diff']:.4f}, IoU mean {v['iou_mean']:.4f}, min {v['iou_min']:.4f}")
