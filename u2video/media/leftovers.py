"""What runs that died left behind: hidden temporary files (``files.py``) whose lock no process
holds. A run killed by SIGKILL, the OOM killer or a power cut can't finish its output, but its
video was written so that it plays up to its last frame (``writers.py``). The next run that
writes into the same folder finalises such a file as ``<name>.partial<ext>``, removes what can't
be played, and says what it did."""

from __future__ import annotations

from pathlib import Path

import av

from ..interrupts import uninterrupted
from ..progress import Reporter
from .files import TEMP_NAME, TempFile, is_abandoned, partial_names, publish
from .remux import complete_until, plays, remux, trim_to_whole


def recover_leftovers(folder: Path, reporter: Reporter) -> list[Path]:
    """Finish or remove every abandoned temporary file in ``folder``; returns the partial
    outputs kept. Files that another live run is writing are left alone."""
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return []
    kept: list[Path] = []
    for path in entries:
        match = TEMP_NAME.match(path.name)
        if match is None or not path.is_file() or not is_abandoned(path):
            continue
        target = path.with_name(match["stem"] + (match["suffix"] or ""))
        try:
            with uninterrupted():
                if match["role"] == "part":  # a video being written: plays up to where it stopped
                    partial, frames = _finalise(path, target)
                    if partial is not None:
                        kept.append(partial)
                        reporter.warn(f"an interrupted run left {target.name} unfinished: its {frames} frames were "
                                      f"kept, finalised and playable, in {partial}")
                    else:
                        reporter.warn(f"removed {path}: an interrupted run's unfinished {target.name}, with no "
                                      "frame that plays")
                elif match["role"] == "run":  # the marker of a PNG sequence being written here
                    path.unlink(missing_ok=True)
                    reporter.warn(f"{folder} holds the frames of an interrupted run: every frame file there is "
                                  "complete, the sequence stops where the run did")
                else:  # a file written in one go (a frame, an image, a WAV, a final copy): never finished
                    path.unlink(missing_ok=True)
                    reporter.warn(f"removed {path}: an unfinished file of an interrupted run")
        except OSError as e:  # another run got to it first, or the folder is read-only: leave it
            reporter.warn(f"could not finish {path}, left by an interrupted run ({e.strerror or e})")
    return kept


def _finalise(leftover: Path, target: Path) -> tuple[Path | None, int]:
    """Copy ``leftover`` into a normal file named like a partial output of ``target``; the
    leftover itself if that fails but it plays; (None, 0) and nothing left if it doesn't play."""
    trim_to_whole(leftover)  # the fragment or cluster being written when the run died
    if not plays(leftover):
        leftover.unlink(missing_ok=True)
        return None, 0
    names = partial_names(target)
    copy = TempFile(target)
    try:
        frames = remux(leftover, copy.path, until=complete_until(leftover))
        kept = publish(copy.path, next(names), False, names)
        leftover.unlink()
    except (av.FFmpegError, OSError, ValueError):
        copy.discard()
        frames = _count_video_packets(leftover)
        kept = publish(leftover, next(names), False, names)  # it plays as it is
    finally:
        copy.release()
    return kept, frames


def _count_video_packets(path: Path) -> int:
    try:
        with av.open(str(path), metadata_errors="replace") as container:
            return sum(1 for p in container.demux(video=0) if p.size)
    except (av.FFmpegError, OSError):
        return 0
