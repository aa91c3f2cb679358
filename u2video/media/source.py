"""Video files and streams -> upright RGB uint8 frames with their timestamps, decoded on FFmpeg's
threads, and an account of every frame that could not be decoded."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from ..errors import MediaError

_DEMUX_RETRIES = 50  # read errors in a row before the rest of a damaged file is given up


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
    frames: int  # expected frames (header count or duration x rate, scaled by the trim); 0 when unknown
    audio_streams: int
    rotation: int  # degrees counter-clockwise the stored frames were turned to make them upright


@dataclass
class FrameLoss:
    """What decoding a source lost. ``lost``: frames that could not be decoded or are missing
    (a damaged or truncated file); ``ranges``: where, in the input's seconds; ``damaged``: frames
    decoded with errors the decoder concealed (kept); ``expected``: the frames the file's index
    or duration promises in range (None: it promises nothing)."""

    decoded: int = 0
    lost: int = 0
    damaged: int = 0
    expected: int | None = None
    ranges: list[tuple[float, float]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.lost or self.damaged)

    def describe(self, name: str, written: int) -> str:
        """One line for a warning, e.g. "clip.mkv is damaged: 21 of 30 frames are missing or
        could not be decoded (0.36-1.20 s), so the output lacks them; 9 frames were written"."""
        parts = []
        if self.lost:
            count = (f"{self.lost} of {self.expected} frames" if self.expected and self.expected >= self.lost
                     else _frames(self.lost))
            where = f" ({', '.join(f'{a:.2f}-{b:.2f} s' for a, b in self.ranges)})" if self.ranges else ""
            parts.append(f"{count} are missing or could not be decoded{where}, so the output lacks them")
        if self.damaged:
            parts.append(f"{_frames(self.damaged)} were decoded with errors and kept as the decoder repaired them")
        return f"{name} is damaged: {'; '.join(parts)}; {_frames(written)} written"


def is_url(spec: str | os.PathLike) -> bool:
    return "://" in str(spec)


class VideoSource:
    """Opens a video file or stream URL and yields its frames upright, in presentation order,
    with their pts.

    ``start``/``end`` (seconds) trim: frames before ``start`` or from ``end`` on are dropped and
    pts are shifted so that ``start`` becomes 0 (the audio carrier shifts by the same amount).
    The first frame is decoded on open, so an undecodable file fails here, before any output
    exists. Damaged packets are skipped and decoding goes on after read errors; after
    ``frames()`` is exhausted, ``loss`` says what could not be decoded. Use as a context manager.
    """

    def __init__(self, path: str | os.PathLike, start: float | None = None, end: float | None = None):
        self.path = path if is_url(path) else Path(path)
        self.name = str(path) if is_url(path) else self.path.name
        self.start, self.end = start, end
        self.loss = FrameLoss()
        if isinstance(self.path, Path) and not self.path.is_file():
            raise MediaError(f"{path} does not exist: check the path" if not self.path.exists()
                             else f"{path} is not a file: give a video file")
        try:
            self._container = av.open(str(path), timeout=10 if is_url(path) else None, metadata_errors="replace")
        except (av.FFmpegError, OSError) as e:
            raise MediaError(f"{path} is not a readable video ({getattr(e, 'strerror', None) or e}): "
                             "check the file (an unfinished or truncated recording cannot be opened)") from None
        try:
            self._open()
        except BaseException:
            self._container.close()
            raise

    def _open(self) -> None:
        if not self._container.streams.video:
            from .probe import describe_streams
            raise MediaError(f"{self.path} holds no video ({describe_streams(list(self._container.streams))}): "
                             "give a video file")
        stream = self._stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"  # frame + slice threads; must be set before decoding
        self._shift = round(Fraction(self.start or 0) / stream.time_base)
        self.pts_shift = self._shift  # added to a frame's pts gives the stream's own
        self.rate = stream.average_rate or stream.guessed_rate or Fraction(30)
        self._span = _stream_span(self._container, stream)
        first = self._seek_and_decode_first()
        if self._stream.start_time is None and self._raw_first is not None and not self.start:
            self._span = (self._raw_first, self._span[1])  # a damaged header: the first frame says it
        if first is None:
            begin, finish = self._span
            span = f" (it runs from {begin:.2f} to {finish:.2f} s)" if finish else ""
            if self.start or self.end:
                raise MediaError(f"{self.name} has no frames between --start and --end{span}: "
                                 "give times inside the clip")
            raise MediaError(f"{self.path} holds no decodable video frames: check the file")
        self._first = first
        self.first_pts = (first.pts or 0) + self._shift  # the stream's own pts of the first frame read
        height, width = first.rgb.shape[:2]
        self.info = VideoInfo(width, height, self.rate, stream.time_base, self._expected() or 0,
                              len(self._container.streams.audio), self._rotation)

    def _window(self) -> tuple[float, float | None]:
        """The input seconds this run covers: the trim within the stream's span (end None: unknown)."""
        begin, finish = self._span
        lo = max(self.start or 0.0, begin)
        hi = finish if self.end is None else (self.end if finish is None else min(self.end, finish))
        return lo, hi

    def _expected(self) -> int | None:
        """Frames the file promises in the window: its index's count, else its duration x rate."""
        frames = self._stream.frames
        begin, finish = self._span
        lo, hi = self._window()
        if frames and not (self.start or self.end):
            return frames
        if hi is None or hi <= lo:
            return None
        if frames and finish and finish > begin:
            return max(1, round(frames * (hi - lo) / (finish - begin)))
        return max(1, round((hi - lo) * self.rate))

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

    def _packets(self) -> Iterator[av.Packet]:
        """The video stream's packets, read on past damage; ``_read_errors`` counts the errors."""
        def count() -> None:
            self._read_errors += 1
        return packets_past_errors(self._container, [self._stream], count)

    def _decode(self) -> Iterator[DecodedFrame]:
        stream = self._stream
        self._rotation = 0
        self._raw_first: float | None = None  # time of the first frame decoded, before trimming
        self._read_errors = 0
        index = sent = received = 0
        errors_seen = 0  # read errors by the last frame decoded in range
        lost_at: list[tuple[float, float]] = []  # packets that failed to decode: (start, end) s
        last_end: float | None = None  # end of the last frame decoded in range, s
        interval = float(1 / self.rate)
        for packet in self._packets():
            counted = packet.size and (received or not self.start)
            if counted:
                sent += 1  # after a seek, packets before the first keyframe don't count as lost
            try:
                decoded = packet.decode()  # the empty packet at the end flushes the decoder
            except av.FFmpegError:
                t = _seconds(packet.pts if packet.pts is not None else packet.dts, packet.time_base)
                if counted and t is not None:
                    lost_at.append((t, t + (float(packet.duration * packet.time_base) if packet.duration else interval)))
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
                        self._account(index, sent, received, lost_at, last_end, ended=True)
                        return
                    if self._read_errors > errors_seen and last_end is not None and seconds > last_end + 0.5 * interval:
                        lost_at.append((last_end, seconds))  # frames a read error skipped over
                    errors_seen = self._read_errors
                    duration = float(frame.duration * frame.time_base) if frame.duration else interval
                    last_end = seconds + duration
                if frame.is_corrupt:
                    self.loss.damaged += 1
                if index == 0:
                    self._rotation = round(frame.rotation / 90) % 4 * 90
                rgb = frame.to_ndarray(format="rgb24")  # any pixel format/depth -> 8-bit RGB
                if self._rotation:
                    rgb = np.ascontiguousarray(np.rot90(rgb, self._rotation // 90))
                pts = frame.pts - self._shift if frame.pts is not None else None
                yield DecodedFrame(rgb, pts, index)
                index += 1
        self._account(index, sent, received, lost_at, last_end, ended=False)

    def _account(self, decoded: int, sent: int, received: int, lost_at: list[tuple[float, float]],
                 last_end: float | None, ended: bool) -> None:
        """Fill ``loss``: packets that gave no frame, time the file promises after the last frame
        decoded (a truncated file), and the shortfall against its index."""
        lo, hi = self._window()
        ranges = list(lost_at)
        interval = float(1 / self.rate)
        if not ended and hi is not None and last_end is not None and hi - last_end > 0.5 * interval:
            ranges.append((last_end, hi))  # the file stops before its index or duration says
        ranges = _merged([(max(a, lo), b if hi is None else min(b, hi)) for a, b in ranges])
        by_time = round(sum(b - a for a, b in ranges) * float(self.rate))
        expected = self._expected()
        whole = not (self.start or self.end)  # trimmed counts are estimates: only times are compared
        shortfall = expected - decoded if expected and self._stream.frames and whole else 0
        # stopped at --end, the decoder still holds frames it was sent: those are not lost
        undecoded = 0 if ended else sent - received
        self.loss.decoded = decoded
        self.loss.expected = expected
        self.loss.lost = max(undecoded, by_time, shortfall, 0)
        self.loss.ranges = ranges


def packets_past_errors(container: av.container.InputContainer, streams: list,
                        on_error: Callable[[], None] | None = None) -> Iterator[av.Packet]:
    """``streams``' packets; after a read error (damaged data) reading goes on from where the
    demuxer resynchronises (``on_error`` is told), up to _DEMUX_RETRIES errors in a row."""
    errors = 0
    while errors < _DEMUX_RETRIES:
        try:
            for packet in container.demux(streams):
                errors = 0
                yield packet
            return
        except av.FFmpegError:
            errors += 1
            if on_error is not None:
                on_error()


def _frames(n: int) -> str:
    return f"{n} frame" if n == 1 else f"{n} frames"


def _merged(ranges: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for a, b in sorted(r for r in ranges if r[1] > r[0]):
        if out and a <= out[-1][1] + 1e-6:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _seconds(ts: int | None, time_base: Fraction | None) -> float | None:
    return None if ts is None or time_base is None else float(ts * time_base)


def _stream_span(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> tuple[float, float | None]:
    """(first, end) seconds of the video stream as the file's header says; end None when it
    says nothing reliable (e.g. a live WebM, or MPEG-TS, whose duration is only estimated)."""
    begin = _seconds(stream.start_time, stream.time_base)
    if begin is None:
        begin = container.start_time / av.time_base if container.start_time else 0.0
    if stream.frames and stream.duration:  # an index (MP4, MOV, AVI): exact
        return begin, begin + float(stream.duration * stream.time_base)
    if container.format.name.startswith("matroska"):  # Matroska durations are end times
        tag = stream.metadata.get("DURATION")
        if tag:
            h, m, s = tag.split(":")
            return begin, int(h) * 3600 + int(m) * 60 + float(s)
        if container.duration and len(container.streams) == 1:
            return begin, container.duration / av.time_base
    return begin, None
