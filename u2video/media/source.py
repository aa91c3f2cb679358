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
        start_s = float(self._container.start_time / av.time_base) if self._container.start_time else 0.0
        duration = float(self._container.duration / av.time_base) if self._container.duration else None
        self._shift = round(Fraction(self.start or 0) / stream.time_base)
        first = self._seek_and_decode_first()
        if first is None:
            span = f" (it runs from {start_s:.2f} to {start_s + duration:.2f} s)" if duration else ""
            if self.start or self.end:
                raise MediaError(f"{self.path.name} has no frames between --start and --end{span}: "
                                 "give times inside the clip")
            raise MediaError(f"{self.path} holds no decodable video frames: check the file")
        self._first = first
        rate = stream.average_rate or stream.guessed_rate or Fraction(30)
        expected = stream.frames
        if expected and duration and (self.start or self.end):
            span = (min(self.end or start_s + duration, start_s + duration) - max(self.start or 0, start_s)) / duration
            expected = max(1, round(expected * span))
        height, width = first.rgb.shape[:2]
        self.info = VideoInfo(width, height, rate, stream.time_base, expected or 0,
                              len(self._container.streams.audio), self._rotation)

    def _seek_and_decode_first(self) -> DecodedFrame | None:
        """Position the decoder at ``start`` and decode the first frame in range.

        A seek lands on the keyframe at or before ``start`` in MP4/MKV, but MPEG-TS seeks by
        byte position and can land after it: then seek again from further back.
        """
        for back in (0.0, 2.0, 10.0, 60.0, None):
            if self.start:
                target = 0.0 if back is None else max(0.0, self.start - back)
                self._container.seek(int(target * av.time_base), backward=True)
            self._frames = self._decode()
            first = next(self._frames, None)
            landed = self._raw_first  # None: nothing decodable after the seek point
            if not self.start or back is None or (landed is not None and landed <= self.start + 1e-3):
                return first
        return None  # not reached

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
        self._raw_first: float | None = None  # time of the first frame decoded, before trimming
        index = sent = received = 0
        packets = self._container.demux(stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                break
            except av.FFmpegError:
                break  # a damaged container: keep what was decoded
            if packet.size and (received or not self.start):
                sent += 1  # after a seek, packets before the first keyframe don't count as lost
            try:
                decoded = packet.decode()  # the empty packet at the end flushes the decoder
            except av.FFmpegError:
                continue  # a corrupt packet: counted as lost below, decoding goes on
            for frame in decoded:
                received += 1
                seconds = frame.time
                if self._raw_first is None:
                    self._raw_first = seconds
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
