"""The CLI's Reporter: one-line messages and tqdm bars on stderr (stdout stays free for data)."""

from __future__ import annotations

import sys

from tqdm import tqdm


class TerminalReporter:
    # tqdm.write: a line printed while a bar is drawn goes above it instead of through it
    def info(self, message: str) -> None:
        tqdm.write(f"u2video: {message}", file=sys.stderr)

    def warn(self, message: str) -> None:
        tqdm.write(f"u2video: warning: {message}", file=sys.stderr)

    def bar(self, desc: str, total: int | None, unit: str) -> tqdm:
        scale = unit == "B"
        return tqdm(total=total, desc=desc, unit=unit, unit_scale=scale, unit_divisor=1024 if scale else 1000,
                    file=sys.stderr, dynamic_ncols=True, leave=True)
