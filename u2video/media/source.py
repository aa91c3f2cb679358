"""Video files -> RGB uint8 frames with their timestamps, decoded on a thread by FFmpeg."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av
import numpy as np

from ..errors import MediaError

VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".mpg", ".mpeg", ".ts", ".mts", ".flv", ".wmv"}


@dataclass
class DecodedFrame:
    rgb: np.ndarray  # [H,W,3] uint8
    pts: int | None  # in the stream's time_base
    index: int


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    rate: Fraction  # average frame rate
    time_base: Fraction
    frames: int  # from the container header; 0 when unknown
    audio_streams: int


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES


class VideoSource:
    """Opens a video file and yields its frames in decode order with their own pts.

    Use as a context manager; ``info`` is available once open. Errors are MediaErrors that
    say what is wrong with the file.
    """

    def __init__(self, path: Path):
        self.path = path
        self.lost = 0  # frames the decoder could not decode (corrupt data)
        if not path.is_file():
            raise MediaError(f"{path} does not exist" if not path.exists() else f"{path} is not a file")
        try:
            self._container = av.open(str(path))
        except av.FFmpegError as e:
            raise MediaError(f"{path} is not a readable video ({e.strerror}): check the file") from None
        if not self._container.streams.video:
            self._container.close()
            raise MediaError(f"{path} has no video stream (audio only?): give a video file")
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"  # frame + slice threads; must be set before decoding
        ctx = self._stream.codec_context
        self.info = VideoInfo(ctx.width, ctx.height, self._stream.average_rate or Fraction(30),
                              self._stream.time_base, self._stream.frames,
                              len(self._container.streams.audio))

    def __enter__(self) -> "VideoSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._container.close()

    def frames(self) -> Iterator[DecodedFrame]:
        index = 0
        packets = self._container.demux(self._stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                break
            except av.FFmpegError:
                break  # a damaged container: keep what was decoded
            try:
                decoded = packet.decode()
            except av.FFmpegError:
                self.lost += 1  # a corrupt packet: skip it, count it, go on
                continue
            for frame in decoded:
                yield DecodedFrame(frame.to_ndarray(format="rgb24"), frame.pts, index)
                index += 1
