"""Sinks: where processed frames go. Each writes to a temporary file beside its target and
renames it into place in ``finish()``; ``abort()`` removes what it wrote."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path
from typing import Protocol

import av
import numpy as np

from ..errors import MediaError
from .codecs import VideoFormat
from .files import temp_beside
from .images import write_image


class Sink(Protocol):
    def write(self, pixels: np.ndarray, pts: int | None) -> None:
        """pixels: [H,W,4] RGBA or [H,W] grey uint8; pts in the source stream's time_base."""

    def finish(self) -> None:
        """Flush, finalise and move the result to its target."""

    def abort(self) -> None:
        """Drop everything written so far."""


class VideoSink:
    """RGBA (or grey) frames -> one video stream encoded in-process by PyAV, timestamps kept."""

    def __init__(self, target: Path, fmt: VideoFormat, width: int, height: int, rate: Fraction,
                 time_base: Fraction):
        self.target = target
        self.fmt = fmt
        self._tmp = temp_beside(target)
        try:
            self._container = av.open(str(self._tmp), "w", format=fmt.container)
            stream = self._container.add_stream(fmt.codec, rate=rate)
            stream.width, stream.height, stream.pix_fmt = width, height, fmt.pix_fmt
            stream.time_base = time_base
            stream.options = dict(fmt.options)
            stream.codec_context.open()  # an impossible combination fails here, before decoding
        except (av.FFmpegError, ValueError) as e:
            self._tmp.unlink(missing_ok=True)
            raise MediaError(f"cannot encode {fmt.codec}/{fmt.pix_fmt} into {target.name} ({e}): "
                             "choose another output format") from None
        self._stream = stream
        self._in_format = "rgba" if fmt.alpha else "gray"
        self._last_pts: int | None = None
        self.frames = 0

    def write(self, pixels: np.ndarray, pts: int | None) -> None:
        frame = av.VideoFrame.from_ndarray(pixels, format=self._in_format)
        if pts is None or (self._last_pts is not None and pts <= self._last_pts):
            pts = (self._last_pts + 1) if self._last_pts is not None else 0  # missing/duplicate pts
        frame.pts, frame.time_base = pts, self._stream.time_base
        self._last_pts = pts
        self._mux(self._stream.encode(frame))
        self.frames += 1

    def _mux(self, packets: list[av.Packet]) -> None:
        try:
            self._container.mux(packets)
        except OSError as e:
            raise MediaError(f"could not write {self.target} ({e.strerror or e}): check free space") from None

    def finish(self) -> None:
        self._mux(self._stream.encode(None))
        self._container.close()
        os.replace(self._tmp, self.target)

    def abort(self) -> None:
        try:
            self._container.close()
        except Exception:  # already broken; removing the file is what matters
            pass
        self._tmp.unlink(missing_ok=True)


class PngSequenceSink:
    """One RGBA (or grey) PNG per frame, numbered from 0, into a folder or a %d pattern."""

    def __init__(self, target: Path):
        if "%" in target.name:
            self.folder, self.pattern = target.parent, target.name
        else:
            self.folder, self.pattern = target, "%05d.png"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.written: list[Path] = []

    def write(self, pixels: np.ndarray, pts: int | None) -> None:
        path = self.folder / (self.pattern % len(self.written))
        write_image(path, pixels)  # each file is atomic on its own
        self.written.append(path)

    def finish(self) -> None:
        pass

    def abort(self) -> None:
        for path in self.written:
            path.unlink(missing_ok=True)
