"""Output safety: never write over the input, never replace a file unless asked to, and never
leave a half-written file under the target's name.

Every output is written to a hidden temporary file beside its target,
``.<stem>.u2video-<token>.<role><ext>``, which this process keeps locked (``flock``) for as long
as it writes it. At the end the file is published under the target's name by a rename that
never replaces an existing file (unless --overwrite was given): a file that appeared there in
the meantime is kept, and ours gets another name. A temporary file whose lock nobody holds was
left by a process that died (SIGKILL, power loss); ``leftovers.py`` finds and finishes those.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import itertools
import os
import re
import secrets
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..errors import ConfigError, MediaError, OutputTaken
from ..interrupts import uninterrupted

try:
    import fcntl
except ImportError:  # Windows: no flock, so leftovers can't be told from live files (see is_abandoned)
    fcntl = None  # type: ignore[assignment]

# roles: "part" a video being written (playable as it grows), "tmp" a file written in one go,
# "run" the marker of a PNG sequence being written into its folder
TEMP_NAME = re.compile(r"^\.(?P<stem>.*)\.u2video-(?P<token>[0-9a-f]{8})\.(?P<role>part|tmp|run)(?P<suffix>\.[^.]*)?$")


def check_output(target: Path, inputs: list[Path], overwrite: bool) -> None:
    """Refuse an output that is one of the inputs, or that exists without ``overwrite``."""
    for source in inputs:
        if target.exists() and source.exists() and os.path.samefile(target, source):
            raise ConfigError(f"output {target} is the input file: choose another output path")
    if target.exists() and not overwrite:
        raise ConfigError(f"{target} already exists: pass --overwrite to replace it, or choose another path")


def ensure_writable_dir(folder: Path) -> bool:
    """Create ``folder`` if needed and prove a file can be written there, before any work.
    Returns whether the folder was created."""
    try:
        created = not folder.is_dir()
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise MediaError(f"cannot write to {folder} ({e.strerror or e}): choose a writable output folder") from None
    return created


_held: set["TempFile"] = set()  # temporary files this process holds now


class TempFile:
    """A new hidden file beside ``target``, locked by this process until ``release()``.

    It keeps the target's extension, so encoders that look at it pick the same format, and gets
    the permissions a plain new file would.
    """

    def __init__(self, target: Path, role: str = "tmp"):
        stem = target.stem[:180]  # room for the tag within the usual 255-byte name limit
        self.role = role
        self._fd: int | None = None
        _held.add(self)
        try:
            for _ in range(100):
                self.path = target.with_name(f".{stem}.u2video-{secrets.token_hex(4)}.{role}{target.suffix}")
                try:
                    self._fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
                    break
                except FileExistsError:
                    continue
            else:
                raise FileExistsError(errno.EEXIST, "no free temporary name")
            if fcntl is not None:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BaseException as e:  # Ctrl-C included: no file is left behind
            self.discard()
            if isinstance(e, OSError):
                raise MediaError(f"cannot write to {target.parent} ({e.strerror or e}): "
                                 "choose a writable output folder") from None
            raise

    def release(self) -> None:
        """Unlock (once the file is published or removed)."""
        _held.discard(self)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def discard(self) -> None:
        """Remove the file and unlock."""
        if getattr(self, "path", None) is not None:
            self.path.unlink(missing_ok=True)
        self.release()


def discard_empty_temp_files() -> None:
    """Remove the temporary files this process still holds that have nothing in them: what an
    interruption at the wrong moment (between creating a file and handing it to its owner) can
    leave. Files with data are left for the next run to recover (``leftovers.py``)."""
    for temp in list(_held):
        try:
            if temp.path.stat().st_size == 0:
                temp.discard()
        except OSError:
            pass


def is_abandoned(path: Path) -> bool:
    """Whether ``path`` (one of our temporary files) is locked by no process: its run died."""
    if fcntl is None:
        return False  # can't tell a dead run from a live one: leave the file alone
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def other_names(target: Path) -> Iterator[Path]:
    """Where this run's output goes when ``target`` was taken: out.u2video-1.mov, out.u2video-2.mov, ..."""
    for n in itertools.count(1):
        yield target.with_name(f"{target.stem}.u2video-{n}{target.suffix}")


def partial_names(target: Path) -> Iterator[Path]:
    """Where an interrupted run's output goes: clip.partial.mov, clip.partial-2.mov, ..."""
    yield target.with_name(f"{target.stem}.partial{target.suffix}")
    for n in itertools.count(2):
        yield target.with_name(f"{target.stem}.partial-{n}{target.suffix}")


def publish(tmp: Path, target: Path, overwrite: bool, elsewhere: Iterable[Path] | None = None) -> Path:
    """Move ``tmp`` to ``target`` and return where it went.

    With ``overwrite`` the rename replaces whatever is there. Without it, nothing is ever
    replaced, even a file that appeared after the run started: ``tmp`` then goes to the first
    free name of ``elsewhere`` (FileExistsError if that is None).
    """
    if overwrite:
        os.replace(tmp, target)
        return target
    for candidate in itertools.chain([target], elsewhere or ()):
        if _move_no_replace(tmp, candidate):
            return candidate
    raise FileExistsError(errno.EEXIST, "file exists", str(target))


def publish_output(tmp: Path, target: Path, overwrite: bool) -> Path:
    """``publish`` for a finished output: returns where it went, which is one of ``other_names``
    if ``target`` was taken meanwhile (see ``check_published``); MediaError if the file system
    refuses."""
    try:
        return publish(tmp, target, overwrite, other_names(target))
    except OSError as e:
        raise MediaError(f"could not write {target} ({e.strerror or e}): check free space and permissions") from None


def check_published(target: Path, written: Path) -> Path:
    """OutputTaken if the output went elsewhere because ``target`` was taken meanwhile."""
    if written != target:
        raise OutputTaken(target, written)
    return written


def _move_no_replace(tmp: Path, target: Path) -> bool:
    """Rename ``tmp`` to ``target`` unless ``target`` exists (then False), atomically."""
    try:
        os.link(tmp, target)  # fails if target exists, whoever created it and whenever
    except FileExistsError:
        return False
    except OSError as e:
        if e.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK, errno.EACCES):
            raise
        return _rename_no_replace(tmp, target)  # a file system without hard links (FAT, some shares)
    os.unlink(tmp)
    return True


_RENAME_NOREPLACE = 1
_AT_FDCWD = -100


def _rename_no_replace(tmp: Path, target: Path) -> bool:
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        renameat2 = getattr(libc, "renameat2", None)
        if renameat2 is not None:
            if renameat2(_AT_FDCWD, os.fsencode(tmp), _AT_FDCWD, os.fsencode(target), _RENAME_NOREPLACE) == 0:
                return True
            err = ctypes.get_errno()
            if err == errno.EEXIST:
                return False
            if err not in (errno.EINVAL, errno.ENOSYS):  # EINVAL: this file system can't do it
                raise OSError(err, os.strerror(err), str(target))
    if target.exists():  # last resort: a short window in which a new file could still be replaced
        return False
    os.rename(tmp, target)
    return True


@contextlib.contextmanager
def folder_file(target: Path, overwrite: bool) -> Iterator[TempFile]:
    """Write one file of a folder output (a frame, the audio beside the frames): yields the
    temporary file to write into, and publishes it when the block ends (unless the block
    discarded it). MediaError for a full disk, or for a file that appeared at ``target``
    meanwhile without ``overwrite`` (another program writing into the folder)."""
    tmp = TempFile(target)
    try:
        yield tmp
        if tmp.path.exists():
            publish(tmp.path, target, overwrite)
    except FileExistsError:
        raise MediaError(f"{target} appeared while this run was writing into {target.parent} (another program "
                         "writing there?): stopped; pass --overwrite, or choose an empty folder") from None
    except OSError as e:
        raise MediaError(f"could not write {target} ({e.strerror or e}): check free space") from None
    finally:
        tmp.discard()  # a no-op once published


def write_file(target: Path, data: bytes, overwrite: bool) -> Path:
    """Write ``data`` to a temporary file beside ``target`` and publish it; returns where it went
    (see ``publish_output``)."""
    with uninterrupted():
        tmp = TempFile(target)
        try:
            try:
                tmp.path.write_bytes(data)
            except OSError as e:
                raise MediaError(f"could not write {target} ({e.strerror or e}): check free space and permissions") from None
            return publish_output(tmp.path, target, overwrite)
        finally:
            tmp.discard()  # a no-op once published
