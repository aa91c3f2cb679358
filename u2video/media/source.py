"""Video files -> upright RGB uint8 frames with their timestamps, decoded on FFmpeg's threads."""

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
    rgb: np.ndarray  # [H,W,3] uint8, upright
    pts: int | None  # in the stream's time_base, minus the trim start
    index: int


@dataclass(frozen=True)
class VideoInfo:
    width: int  # upright (after rotation)
    height: int
    rate: Fraction  # average frame rate
    time_base: Fraction
    frames: int  # expected frames (header count, scaled by the trim); 0 when unknown
    audio_streams: int
    rotation: int  # degrees counter-clockwise the stored frames were turned to make them upright


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES


class VideoSource:
    """Opens a video file and yields its frames upright, in presentation order, with their pts.

    ``start``/``end`` (seconds) trim: frames before ``start`` or from ``end`` on are dropped and
    pts are shifted so that ``start`` becomes 0 (the audio carrier shifts by the same amount).
    The first frame is decoded on open, so an undecodable file fails here, before any output
    exists. After ``frames()`` is exhausted, ``lost`` counts frames that could not be decoded
    (corrupt packets, truncation) and ``damaged`` those decoded with errors concealed.
    Use as a context manager.
    """

    def __init__(self, path: Path, start: float | None = None, end: float | None = None):
        self.path = path
        self.start, self.end = start, end
        self.lost = 0
        self.damaged = 0
        if not path.is_file():
            raise MediaError(f"{path} does not exist: check the path" if not path.exists()
                             else f"{path} is not a file: give a video file")
        try:
            self._container = av.open(str(path))
        except av.FFmpegError as e:
            raise MediaError(f"{path} is not a readable video ({e.strerror}): "
                             "check the file (an unfinished or truncated recording cannot be opened)") from None
        try:
            self._open()
        except BaseException:
            self._container.close()
            raise

    def _open(self) -> None:
        if not self._container.streams.video:
            raise MediaError(f"{self.path} has no video stream (audio only?): give a video file")
        stream = self._stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"  # frame + slice threads; must be set before decoding
        duration = float(self._container.duration / av.time_base) if self._container.duration else None
        if self.start is not None and duration is not None and self.start >= duration:
            raise MediaError(f"--start {self.start:g} s is past the end of {self.path.name} ({duration:.2f} s): "
                             "give an earlier start")
        if self.start:
            # seek to the keyframe at or before start; frames before it are decoded and dropped
            self._container.seek(int(self.start * av.time_base), backward=True)
        self._shift = round(Fraction(self.start or 0) / stream.time_base)
        self._frames = self._decode()
        first = next(self._frames, None)
        if first is None:
            raise MediaError(f"{self.path} holds no decodable video frames"
                             + (" in the --start/--end range" if self.start or self.end else "")
                             + ": check the file")
        self._first = first
        rate = stream.average_rate or stream.guessed_rate or Fraction(30)
        expected = stream.frames
        if expected and duration and (self.start or self.end):
            span = (min(self.end or duration, duration) - (self.start or 0)) / duration
            expected = max(1, round(expected * span))
        height, width = first.rgb.shape[:2]
        self.info = VideoInfo(width, height, rate, stream.time_base, expected or 0,
                              len(self._container.streams.audio), self._rotation)

    def __enter__(self) -> "VideoSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._container.close()

    def frames(self) -> Iterator[DecodedFrame]:
        """Every frame in range, the first one included. Call once."""
        yield self._first
        yield from self._frames

    def _decode(self) -> Iterator[DecodedFrame]:
        stream = self._stream
        self._rotation = 0
        index = sent = received = 0
        packets = self._container.demux(stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                break
            except av.FFmpegError:
                break  # a damaged container: keep what was decoded
            if packet.size:
                sent += 1
            try:
                decoded = packet.decode()  # the empty packet at the end flushes the decoder
            except av.FFmpegError:
                continue  # a corrupt packet: counted as lost below, decoding goes on
            for frame in decoded:
                received += 1
                seconds = frame.time
                if seconds is not None:
                    if self.start is not None and seconds < self.start - 1e-6:
                        continue
                    if self.end is not None and seconds >= self.end - 1e-6:
                        return
                if frame.is_corrupt:
                    self.damaged += 1
                if index == 0:
                    self._rotation = round(frame.rotation / 90) % 4 * 90
                rgb = frame.to_ndarray(format="rgb24")  # any pixel format/depth -> 8-bit RGB
                if self._rotation:
                    rgb = np.ascontiguousarray(np.rot90(rgb, self._rotation // 90))
                pts = frame.pts - self._shift if frame.pts is not None else None
                yield DecodedFrame(rgb, pts, index)
                index += 1
        self.lost = max(sent - received, 0)
        if not (self.start or self.end):  # a truncated file has fewer frames than its header says
            self.lost = max(self.lost, stream.frames - received)
