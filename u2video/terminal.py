"""The CLI's Reporter: one-line messages and tqdm bars on stderr (stdout stays free for data)."""

from __future__ import annotations

import sys

import typer
from tqdm import tqdm


class TerminalReporter:
    def info(self, message: str) -> None:
        typer.echo(f"u2video: {message}", err=True)

    def warn(self, message: str) -> None:
        typer.echo(f"u2video: warning: {message}", err=True)

    def bar(self, desc: str, total: int | None, unit: str) -> tqdm:
        scale = unit == "B"
        return tqdm(total=total, desc=desc, unit=unit, unit_scale=scale, unit_divisor=1024 if scale else 1000,
                    file=sys.stderr, dynamic_ncols=True, leave=True)
