"""Sinks: where processed frames go. Each writes to a temporary file beside its target and
renames it into place in ``finish()``. If the run stops half-way, ``salvage()`` finalises what
was written as a playable ``<name>.partial<ext>`` (or removes it) and says where it went."""

from __future__ import annotations

import os
import re
from fractions import Fraction
from pathlib import Path
from typing import Protocol

import av
import cv2
import numpy as np

from ..config import VideoFormat
from ..errors import ConfigError, MediaError
from ..presets import sequence_target
from .audio import AudioCarrier, write_audio_files
from .files import temp_beside
from .images import write_image


class Sink(Protocol):
    frames: int  # frames written so far

    def write(self, pixels: np.ndarray, pts: int | None) -> None:
        """pixels: [H,W,4] RGBA, [H,W,3] RGB or [H,W] grey uint8; pts in the source stream's time_base."""

    def finish(self) -> None:
        """Flush, finalise and move the result to its target."""

    def salvage(self) -> Path | None:
        """After a failure: keep what was written as a finalised partial output (returned), or
        remove it (None). Never raises."""

    def describe(self) -> str:
        """One line: what is written where (format, size, audio)."""


def output_size(width: int, height: int, fmt: VideoFormat, max_height: int | None) -> tuple[int, int]:
    """The encoded size: scaled down to at most ``max_height`` lines, and even for 4:2:0 encoders
    that need it (rounded down when scaling; otherwise padded by one edge row/column)."""
    even = 2 if fmt.chroma_420 else 1
    if max_height and height > max_height:
        new_height = max_height // even * even
        return max(even, round(width * new_height / height) // even * even), new_height
    return width + width % even, height + height % even


def partial_name(target: Path) -> Path:
    """clip.mov -> clip.partial.mov (clip.partial-2.mov, ... if taken)."""
    candidate = target.with_name(f"{target.stem}.partial{target.suffix}")
    n = 2
    while candidate.exists():
        candidate = target.with_name(f"{target.stem}.partial-{n}{target.suffix}")
        n += 1
    return candidate


class VideoSink:
    """Frames -> one video stream encoded in-process by PyAV, timestamps kept, with the source's
    audio streams carried alongside (see ``AudioCarrier``)."""

    def __init__(self, target: Path, fmt: VideoFormat, width: int, height: int, rate: Fraction,
                 time_base: Fraction, source: Path | None = None, start: float | None = None,
                 end: float | None = None, max_height: int | None = None):
        self.target = target
        self.fmt = fmt
        self.frames = 0
        self._tmp = temp_beside(target)
        self._audio: AudioCarrier | None = None
        out_w, out_h = output_size(width, height, fmt, max_height)
        scaled = bool(max_height and height > max_height)
        self._pad = (0, 0) if scaled else (out_h - height, out_w - width)
        self._size_note = f"{out_w}x{out_h}" + (f" (scaled from {width}x{height})" if scaled else "") + (
            f" (padded from {width}x{height}: {fmt.pix_fmt} needs even sizes)" if any(self._pad) else "")
        try:
            self._container = av.open(str(self._tmp), "w", format=fmt.container,
                                      options=dict(fmt.container_options))
            stream = self._container.add_stream(fmt.codec, rate=rate)
            stream.width, stream.height, stream.pix_fmt = out_w, out_h, fmt.pix_fmt
            stream.time_base = time_base
            stream.codec_context.time_base = time_base  # not 1/rate: variable frame rates stay exact
            stream.options = dict(fmt.codec_options)
            if fmt.codec_tag:
                stream.codec_context.codec_tag = fmt.codec_tag
            stream.codec_context.open()  # an impossible combination fails here, before decoding
        except (av.FFmpegError, ValueError) as e:
            self._drop()
            raise ConfigError(f"cannot encode {fmt.codec}/{fmt.pix_fmt} into {target.name} ({e}): "
                              "choose another output format or preset") from None
        self._stream = stream
        self._time_base = time_base  # the frames' (the muxer may change the stream's, e.g. WebM's 1/1000)
        # The header is written with the first video packet, not before (so audio waits for it):
        # written before the encoder has produced a packet, HEVC tagged hvc1 fails in 1 of 5 runs
        # ("not yet implemented in FFmpeg").
        if source is not None:
            try:
                self._audio = AudioCarrier(source, self._container, fmt, start, end)
            except MediaError:
                self._drop()
                raise
        self._last_pts: int | None = None
        self._video_started = False

    def describe(self) -> str:
        audio = self._audio.describe() if self._audio else ""
        return f"{self.target.name}: {self.fmt.codec} {self.fmt.pix_fmt} {self._size_note}" + (
            f", audio {audio}" if audio else "")

    def write(self, pixels: np.ndarray, pts: int | None) -> None:
        if any(self._pad):
            pad = ((0, self._pad[0]), (0, self._pad[1])) + ((0, 0),) * (pixels.ndim - 2)
            pixels = np.pad(pixels, pad, mode="edge")
        layout = "gray" if pixels.ndim == 2 else ("rgb24" if pixels.shape[2] == 3 else "rgba")
        frame = av.VideoFrame.from_ndarray(pixels, format=layout)
        if pts is None or (self._last_pts is not None and pts <= self._last_pts):
            pts = (self._last_pts + 1) if self._last_pts is not None else 0  # missing/duplicate pts
        frame.pts, frame.time_base = pts, self._time_base
        self._last_pts = pts
        packets = self._stream.encode(frame)  # PyAV converts to the encoder's pix_fmt and size
        self._mux(packets)
        self._video_started = self._video_started or bool(packets)
        if self._audio and self._video_started:
            self._audio.write_until(float(pts * self._time_base))
        self.frames += 1

    def _mux(self, packets: list[av.Packet]) -> None:
        try:
            self._container.mux(packets)
        except OSError as e:
            raise MediaError(f"could not write {self.target} ({e.strerror or e}): check free space") from None

    def _close(self, all_audio: bool) -> None:
        self._mux(self._stream.encode(None))
        if self._audio:
            if all_audio:
                self._audio.finish()
            else:  # a partial file: audio as far as the video goes
                self._audio.write_until(float((self._last_pts or 0) * self._time_base), lead=0)
                self._audio.close()
        self._container.close()

    def finish(self) -> None:
        self._close(all_audio=True)
        os.replace(self._tmp, self.target)

    def salvage(self) -> Path | None:
        if self.frames:
            try:
                self._close(all_audio=False)
                kept = partial_name(self.target)
                os.replace(self._tmp, kept)
                return kept
            except Exception:  # could not finalise (disk full, broken encoder): keep nothing
                pass
        self._drop()
        return None

    def _drop(self) -> None:
        for closing in (getattr(self, "_audio", None), getattr(self, "_container", None)):
            try:
                if closing is not None:
                    closing.close()
            except Exception:  # already broken; removing the file is what matters
                pass
        self._tmp.unlink(missing_ok=True)


class PngSequenceSink:
    """One PNG per frame (RGBA, RGB or grey), numbered from 0, into a folder or a %d pattern,
    and the source's audio as WAV files beside them. Each PNG is written atomically, so the
    frames written before a failure are complete and are kept."""

    def __init__(self, target: Path, source: Path | None = None, fmt: VideoFormat | None = None,
                 start: float | None = None, end: float | None = None, max_height: int | None = None):
        self.folder, self.pattern = sequence_target(target)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._audio_args = (source, fmt, start, end)
        self._max_height = max_height
        self.frames = 0

    def describe(self) -> str:
        return f"{self.folder / self.pattern}: PNG frames, audio as WAV beside them if the input has any"

    def write(self, pixels: np.ndarray, pts: int | None) -> None:
        height, width = pixels.shape[:2]
        if self._max_height and height > self._max_height:
            size = (max(1, round(width * self._max_height / height)), self._max_height)
            pixels = cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)
        write_image(self.folder / (self.pattern % self.frames), pixels)
        self.frames += 1

    def finish(self) -> None:
        source, fmt, start, end = self._audio_args
        audio = write_audio_files(source, self.folder, fmt, start, end) if source and fmt else []
        # what an earlier run left here under the same names (with --overwrite) is not ours any more
        frame = re.compile("^" + re.sub(r"%0?\d*d", r"(\\d+)", re.escape(self.pattern)) + "$")
        for path in self.folder.iterdir():
            match = frame.match(path.name)
            stale_frame = match is not None and int(match.group(1)) >= self.frames
            stale_audio = re.fullmatch(r"audio(-\d+)?\.wav", path.name) is not None and path not in audio
            if stale_frame or stale_audio:
                path.unlink()

    def salvage(self) -> Path | None:
        return self.folder if self.frames else None
