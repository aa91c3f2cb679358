"""How library code reports to whoever runs it, without printing.

The CLI passes a ``Reporter`` that prints and draws tqdm bars; Python callers get ``SilentReporter``
unless they pass their own. A bar only needs ``update(n)``, ``set_postfix_str(s)`` and ``close()`` (a tqdm has them).
"""

from __future__ import annotations

from typing import Protocol


class Bar(Protocol):
    def update(self, n: int = 1) -> object: ...

    def set_postfix_str(self, s: str = "") -> object:
        """Text after the counts (e.g. the current loss)."""

    def close(self) -> None: ...


class Reporter(Protocol):
    def info(self, message: str) -> None:
        """A one-line status message (e.g. which model and device are in use)."""

    def warn(self, message: str) -> None:
        """A one-line problem that did not stop the run."""

    def bar(self, desc: str, total: int | None, unit: str) -> Bar:
        """A progress bar over ``total`` units (None when unknown)."""


class _SilentBar:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, s: str = "") -> None:
        pass

    def close(self) -> None:
        pass


class SilentReporter:
    """Reports nothing; warnings are kept in ``warnings`` for the caller to read."""

    def __init__(self) -> None:
        self.warnings: list[str] = []

    def info(self, message: str) -> None:
        pass

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    def bar(self, desc: str, total: int | None, unit: str) -> Bar:
        return _SilentBar()
