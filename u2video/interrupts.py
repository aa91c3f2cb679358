"""Stop signals (Ctrl-C's SIGINT, SIGTERM, SIGHUP) and the short stretches of code they must
not cut in two.

A signal becomes an exception in the main thread (KeyboardInterrupt, or ``Interrupted`` once
the CLI called ``stop_on_signals``), raised between any two lines. Where that would leave a
file half-finished (publishing an output, finalising a partial one, cleaning up), the code runs
``with uninterrupted():``, which holds the signal until the block ends and then delivers it.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

from .errors import Interrupted

STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))
_depth = 0  # nesting of uninterrupted blocks in the main thread


def stop_on_signals() -> None:
    """SIGTERM and SIGHUP (a `timeout`, a service stop, a closed terminal) stop a run the way
    Ctrl-C does: the first one raises ``Interrupted`` in the main thread, so the partial output is
    finalised and reported. Later ones are ignored, so they can't cut that clean-up short."""

    def later(signum: int, frame: object) -> None:
        pass

    def first(signum: int, frame: object) -> None:
        for s in STOP_SIGNALS:
            signal.signal(s, later)
        raise Interrupted(signum)

    for s in STOP_SIGNALS:
        signal.signal(s, first)


@contextlib.contextmanager
def uninterrupted() -> Iterator[None]:
    """Hold stop signals while the block runs; deliver the first one held when it ends.

    Only the main thread gets signals (and may change their handlers): elsewhere this does
    nothing. Nested blocks hold until the outermost one ends.
    """
    global _depth
    if threading.current_thread() is not threading.main_thread() or _depth:
        _depth += threading.current_thread() is threading.main_thread()
        try:
            yield
        finally:
            _depth -= threading.current_thread() is threading.main_thread()
        return
    held: list[int] = []
    previous: dict[int, object] = {}
    _depth = 1
    try:
        for s in STOP_SIGNALS:
            previous[s] = signal.signal(s, lambda signum, frame: held.append(signum))
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        _depth = 0
        if held:
            handler = previous[held[0]]
            if callable(handler):
                handler(held[0], None)  # KeyboardInterrupt or Interrupted, now that the block is done
            elif handler == signal.SIG_DFL:
                signal.raise_signal(held[0])  # what it would have done (SIGTERM: end the process)
