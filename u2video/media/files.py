"""Output safety: never write over the input, never leave a half-written file at the target."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ..errors import ConfigError, MediaError


def check_output(target: Path, inputs: list[Path], overwrite: bool) -> None:
    """Refuse an output that is one of the inputs, or that exists without ``overwrite``."""
    for source in inputs:
        if target.exists() and source.exists() and os.path.samefile(target, source):
            raise ConfigError(f"output {target} is the input file: choose another output path")
    if target.exists() and not overwrite:
        raise ConfigError(f"{target} already exists: pass --overwrite to replace it, or choose another path")


def ensure_writable_dir(folder: Path) -> None:
    """Create ``folder`` if needed and prove a file can be written there, before any work."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise MediaError(f"cannot write to {folder} ({e.strerror or e}): choose a writable output folder") from None


def temp_beside(target: Path) -> Path:
    """Create an empty hidden file beside ``target`` to write into, then rename onto it.

    It keeps the target's extension so encoders that look at it pick the same format, and gets
    the permissions a plain new file would (mkstemp's are owner-only).
    """
    try:
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}.", suffix=f".part{target.suffix}")
        os.close(fd)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(name, 0o666 & ~umask)
    except OSError as e:
        raise MediaError(f"cannot write to {target.parent} ({e.strerror}): choose a writable output folder") from None
    return Path(name)


@contextlib.contextmanager
def atomic_output(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` only if the block succeeds."""
    tmp = temp_beside(target)
    try:
        yield tmp
        os.replace(tmp, target)
    except OSError as e:
        raise MediaError(f"could not write {target} ({e.strerror or e}): check free space and permissions") from None
    finally:
        tmp.unlink(missing_ok=True)
