"""`u2video presets`: list the presets, or show one."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ..presets import all_presets, preset_text


def presets(
    name: Annotated[Optional[str], typer.Argument(
        help="A preset to show in full (its TOML); without it, all are listed.", show_default=False)] = None,
) -> None:
    """List the presets (for --preset), or show one. Copy one to a .toml file to make your own."""
    if name is not None:
        typer.echo(preset_text(name), nl=False)
        return
    for p in all_presets():
        fmt = p.format
        what = f"{fmt.codec} {fmt.pix_fmt} {fmt.extension or 'PNG files'}" if fmt else ""
        typer.echo(f"{p.name:<18} {p.command or 'any':<8} {what:<32} {p.description}")
