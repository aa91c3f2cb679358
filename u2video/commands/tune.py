"""`u2video tune`: adapt U²-Net to one clip from a few corrected masks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..terminal import TerminalReporter
from .options import DeviceOpt, OverwriteOpt


def tune(
    clip: Annotated[Path, typer.Argument(help="The video the masks belong to.", show_default=False)],
    masks: Annotated[Path, typer.Option(
        "--masks", help="Folder of corrected masks: grey PNGs named by 0-based frame number (00040.png), 255 = "
        "subject, as `u2video matte CLIP -o FOLDER --matte-only --frames ...` exports them.", show_default=False)],
    output: Annotated[Path, typer.Option(
        "--output", "-o", help="The tuned model, a .pth (a .json sidecar is written beside it); give it to --model.",
        show_default=False)],
    base: Annotated[str, typer.Option("--base", help="The model to start from: a name from `u2video models` or a "
                                                    ".onnx/.pth path.")] = "u2netp",
    steps: Annotated[int, typer.Option("--steps", min=1, help="Training steps (fewer if the held-out mask "
                                                             "stops improving).")] = 60,
    input_size: Annotated[int, typer.Option("--input-size", min=32, max=2048,
                                            help="Square size it trains at; run it at the same --input-size.")] = 320,
    batch: Annotated[int, typer.Option("--batch", min=1, max=256, help="Augmented samples per step.")] = 4,
    lr: Annotated[float, typer.Option("--lr", help="Adam's learning rate.")] = 1e-4,
    seed: Annotated[int, typer.Option("--seed", help="Random seed: the same inputs and seed give the same "
                                                    "model on the same device.")] = 0,
    paste: Annotated[bool, typer.Option("--paste", help="Also paste one masked frame's subject onto another "
                                                        "masked frame (both labelled).")] = False,
    patience: Annotated[int, typer.Option("--patience", min=0, help="With 4 masks or more one is held out: stop "
                                          "after this many checks of it without a better matte (0: never).")] = 5,
    device: DeviceOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Fine-tune U²-Net on a few corrected masks of one clip, for mattes of that footage.

    Export masks: u2video matte clip.mp4 -o masks/ --matte-only --frames 0,40,80,120,160

    Correct them in any paint program (white = subject), then: u2video tune clip.mp4 --masks masks/ -o clip.pth

    Use it: u2video matte clip.mp4 -o clip.mov --model clip.pth
    """
    from ..config import DeviceKind, TuneConfig
    from ..tuning import tune as run_tune

    config = TuneConfig(base=base, steps=steps, input_size=input_size, batch=batch, lr=lr, seed=seed, paste=paste,
                        patience=patience)
    run_tune(clip, masks, output, config, device or DeviceKind.AUTO, overwrite, TerminalReporter())
