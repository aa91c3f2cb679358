"""Sinks: where processed frames go. Each writes to a hidden temporary file beside its target,
laid out so that it plays up to its last frame at any moment (a fragmented MOV/MP4, Matroska
clusters flushed as they close, one complete PNG per frame), and publishes it under the
target's name in ``finish()`` without replacing anything unless asked to. If the run stops
half-way, ``salvage()`` finalises what was written as a playable ``<name>.partial<ext>`` (or
removes it) and says where it went."""

from __future__ import annotations

import contextlib
import os
import re
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path
from typing import Protocol

import av
import cv2
import numpy as np

from ..config import VideoFormat
from ..errors import ConfigError, MediaError
from ..interrupts import uninterrupted
from ..presets import sequence_target
from .audio import AudioCarrier, write_audio_files
from .files import TempFile, folder_file, is_abandoned, partial_names, publish, publish_output
from .images import encode_image
from .remux import complete_until, plays, remux, trim_to_whole
from ..device import cpu_threads
from .segments import INTRA_ONLY, SegmentEncoder, video_frame

# movenc muxers: written as fragments (one per packet, flushed at once), remuxed at the end
_FRAGMENTED = {"mov", "mp4", "ipod", "3gp"}
_FRAGMENT_OPTIONS = {"movflags": "+frag_keyframe+delay_moov+default_base_moof", "frag_duration": "1",
                     "flush_packets": "1"}
# Matroska writes a cluster when it closes: close them often, so a killed run loses little
_MATROSKA_OPTIONS = {"cluster_time_limit": "250", "flush_packets": "1"}


class Sink(Protocol):
    frames: int  # frames written so far
    written: Path | None  # where finish() published the output (None until then)
    audio_lost: list[tuple[float, float]]  # input seconds of audio left out as damaged

    planar_format: str | None  # a planar layout write() also takes, as [P,H,W] uint16 planes

    def write(self, pixels: np.ndarray, pts: int | None) -> None:
        """pixels: [H,W,4] RGBA, [H,W,3] RGB or [H,W] grey uint8, or [P,H,W] uint16 planes of
        ``planar_format``; pts in the source stream's time_base."""

    def finish(self) -> Path:
        """Flush, finalise and publish the result; returns where it went: another name beside the
        target if a file appeared there meanwhile (see ``files.check_published``)."""

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


def writing_options(fmt: VideoFormat) -> dict[str, str]:
    """Muxer options while writing: a layout that plays up to the last frame if the process dies.
    A fragmented MOV/MP4 gets the preset's own options (e.g. +faststart) when remuxed at the end."""
    if fmt.container in _FRAGMENTED:
        kept = {k: v for k, v in fmt.container_options.items() if k != "movflags"}
        return {**kept, **_FRAGMENT_OPTIONS}
    if fmt.container in ("matroska", "webm"):
        return {**_MATROSKA_OPTIONS, **fmt.container_options}
    return {**fmt.container_options, "flush_packets": "1"}


# NVIDIA's encoders in place of the software H.264/H.265 ones, where one opens (most data-centre
# GPUs have none): the same codec, several times faster, quality by a constant-quality target.
_HARDWARE = {"libx264": "h264_nvenc", "libx265": "hevc_nvenc"}
_HARDWARE_PIX_FMTS = {"yuv420p", "nv12", "yuv444p"}
_opens: dict[str, str | None] = {}  # hardware encoder -> why it did not open (None: it opened)


def pick_encoder(fmt: VideoFormat) -> tuple[str, dict[str, str], str]:
    """The encoder for ``fmt``: h264_nvenc/hevc_nvenc in place of libx264/libx265 where it
    opens, with the preset's quality (crf) as its constant-quality target. Returns (encoder,
    its options, a note for the output line: which encoder, and why not NVENC)."""
    hardware = _HARDWARE.get(fmt.codec)
    if hardware is None or fmt.pix_fmt not in _HARDWARE_PIX_FMTS:
        return fmt.codec, dict(fmt.codec_options), ""
    if hardware not in _opens:
        _opens[hardware] = _why_not_open(hardware)
    if _opens[hardware] is not None:
        return fmt.codec, dict(fmt.codec_options), f" (no NVIDIA encoder: {hardware} {_opens[hardware]})"
    options = {"preset": "p5", "rc": "vbr", "b": "0"}
    if "crf" in fmt.codec_options:
        options["cq"] = fmt.codec_options["crf"]
    return hardware, options, f" (NVIDIA's, in place of {fmt.codec})"


def _why_not_open(codec: str) -> str | None:
    try:
        context = av.CodecContext.create(codec, "w")
        context.width, context.height, context.pix_fmt = 256, 144, "yuv420p"
        context.time_base = Fraction(1, 25)
        context.open()
    except (av.FFmpegError, OSError, ValueError) as e:
        return f"did not open: {getattr(e, 'strerror', None) or e}"
    return None


def _configure(context: av.CodecContext, options: dict[str, str], width: int, height: int, pix_fmt: str,
               time_base: Fraction, segmented: bool) -> None:
    """Set up an encoder context before it opens: the output stream's own, and each segment
    encoder's the same way, so that their packets are interchangeable."""
    context.width, context.height, context.pix_fmt = width, height, pix_fmt
    context.time_base = time_base
    options = dict(options)
    if segmented:  # the segment encoders are the threads, one core each
        context.thread_type, context.thread_count = "SLICE", 1
    elif context.name == "prores_ks":
        # intra-only: frames encode apart, with the same packets; PyAV's default, slice threads,
        # only splits its quantiser search
        context.thread_type = "FRAME"
    if context.name == "prores_ks" and "qscale" in options:
        # ignored as an option: the fixed quantiser is the QSCALE flag with global_quality = q
        # (6x faster than its rate control; alpha stays lossless)
        context.qscale = True
        context.global_quality = int(options.pop("qscale"))
    context.options = options


class VideoSink:
    """Frames -> one video stream encoded in-process by PyAV, timestamps kept, with the source's
    audio streams carried alongside (see ``AudioCarrier``). ``overwrite``: ``finish()`` may
    replace an existing target. ``encoders``: threads for intra-only codecs (ProRes, FFV1), each
    encoding runs of frames (``SegmentEncoder``); None: one per core, 1: a single encoder."""

    def __init__(self, target: Path, fmt: VideoFormat, width: int, height: int, rate: Fraction,
                 time_base: Fraction, source: Path | None = None, start: float | None = None,
                 end: float | None = None, max_height: int | None = None, overwrite: bool = False,
                 encoders: int | None = None):
        self.target = target
        self.fmt = fmt
        self.frames = 0
        self._overwrite = overwrite
        self._audio: AudioCarrier | None = None
        self._closed = False  # the container is closed
        self._settled = False  # published, kept as a partial output, or removed
        self._temps: list[TempFile] = []  # the file being written, then its copy in the usual layout
        self._written: Path | None = None  # where finish() published it
        self._last_pts: int | None = None
        self._last_dts: int | None = None  # of the last packet muxed
        self._rate = rate
        self._video_started = False
        out_w, out_h = output_size(width, height, fmt, max_height)
        scaled = bool(max_height and height > max_height)
        self._pad = (0, 0) if scaled else (out_h - height, out_w - width)
        # frames converted elsewhere (on the GPU: compose.rgba_to_yuva444p10) for the encoder as
        # they are: only where the encoder takes that layout at the frames' own size
        self.planar_format = "yuva444p10le" if fmt.pix_fmt == "yuva444p10le" and (out_w, out_h) == (width, height) else None
        self._size_note = f"{out_w}x{out_h}" + (f" (scaled from {width}x{height})" if scaled else "") + (
            f" (padded from {width}x{height}: {fmt.pix_fmt} needs even sizes)" if any(self._pad) else "")
        try:
            self._temps.append(TempFile(target, "part"))
            self._container = av.open(str(self._tmp.path), "w", format=fmt.container, options=writing_options(fmt))
            self._codec, options, self._encoder_note = pick_encoder(fmt)
            stream = self._container.add_stream(self._codec, rate=rate)
            stream.time_base = time_base
            encoders = encoders or cpu_threads()  # one encoder per core this process may use
            segmented = self._codec in INTRA_ONLY and encoders > 1
            if fmt.codec_tag:
                stream.codec_context.codec_tag = fmt.codec_tag
            # not 1/rate as time base: variable frame rates stay exact
            _configure(stream.codec_context, options, out_w, out_h, fmt.pix_fmt, time_base, segmented)
            stream.codec_context.open()  # an impossible combination fails here, before decoding
            self._stream = stream
            self._time_base = time_base  # the frames' (the muxer may change the stream's, e.g. WebM's 1/1000)
            self._segments: SegmentEncoder | None = None
            if segmented:  # intra-only: N encoders on runs of frames, muxed in order into this stream

                def encoder() -> av.CodecContext:
                    context = av.CodecContext.create(self._codec, "w")
                    _configure(context, options, out_w, out_h, fmt.pix_fmt, time_base, segmented=True)
                    context.open()
                    return context

                self._segments = SegmentEncoder(encoder, self._codec, encoders, time_base)
                self._encoder_note += f" on {encoders} encoder threads"
            # The header is written with the first video packet, not before (so audio waits for it):
            # written before the encoder has produced a packet, HEVC tagged hvc1 fails in 1 of 5 runs
            # ("not yet implemented in FFmpeg").
            if source is not None:
                self._audio = AudioCarrier(source, self._container, fmt, start, end)
        except (av.FFmpegError, ValueError) as e:
            self._drop()
            raise ConfigError(f"cannot encode {fmt.codec}/{fmt.pix_fmt} into {target.name} ({e}): "
                              "choose another output format or preset") from None
        except BaseException:  # MediaError from the audio, or Ctrl-C: leave nothing behind
            self._drop()
            raise

    @property
    def _tmp(self) -> TempFile:
        return self._temps[-1]

    def describe(self) -> str:
        audio = self._audio.describe() if self._audio else ""
        return f"{self.target.name}: {self._codec}{self._encoder_note} {self.fmt.pix_fmt} {self._size_note}" + (
            f", audio {audio}" if audio else "")

    def write(self, pixels: np.ndarray, pts: int | None) -> None:
        if pixels.dtype == np.uint16:  # planes already in the encoder's layout
            if self.planar_format is None:
                raise ValueError(f"{self.target.name}: this output takes no planes ({self.fmt.pix_fmt})")
            layout = self.planar_format
        else:
            if any(self._pad):
                pad = ((0, self._pad[0]), (0, self._pad[1])) + ((0, 0),) * (pixels.ndim - 2)
                pixels = np.pad(pixels, pad, mode="edge")
            layout = "gray" if pixels.ndim == 2 else ("rgb24" if pixels.shape[2] == 3 else "rgba")
        if pts is None or (self._last_pts is not None and pts <= self._last_pts):
            pts = (self._last_pts + 1) if self._last_pts is not None else 0  # missing/duplicate pts
        self._last_pts = pts
        if self._segments is not None:
            packets = self._segments.encode(pixels, layout, pts)  # finished runs' packets, in order
        else:
            # planes are copied: the encoder's frame threads may hold the frame after encode() returns
            frame = video_frame(np.array(pixels, copy=True) if pixels.dtype == np.uint16 else pixels, layout)
            frame.pts, frame.time_base = pts, self._time_base
            packets = self._stream.encode(frame)  # PyAV converts to the encoder's pix_fmt and size
        self._mux(packets)
        self._video_started = self._video_started or bool(packets)
        if self._audio and self._video_started:
            self._audio.write_until(float(pts * self._time_base))
        self.frames += 1

    def write_packet(self, packet: av.Packet) -> None:
        """One encoded frame for this stream, as ``write`` would have made it (e.g. a segment encoded
        elsewhere with the same format): its pts and time_base must be set."""
        self._last_pts = packet.pts
        self._mux([packet])
        self._video_started = True
        if self._audio:
            self._audio.write_until(float(packet.pts * packet.time_base))
        self.frames += 1

    def _mux(self, packets: list[av.Packet]) -> None:
        for packet in packets:
            packet.stream = self._stream  # a segment encoder's packets belong to no stream yet
            self._mend_dts(packet)
        try:
            self._container.mux(packets)
        except OSError as e:
            raise MediaError(f"could not write {self.target} ({e.strerror or e}): check free space") from None

    def _mend_dts(self, packet: av.Packet) -> None:
        """x265 gives the packet of a one-frame encode an uninitialised dts (seen: -7.9e13, in a
        quarter of runs) and the muxer then refuses it: a dts more than 16 frames before its pts
        (more than any encoder reorders) is replaced by the next one in order."""
        if packet.dts is not None and packet.pts is not None and packet.time_base is not None:
            limit = 16 / (self._rate * packet.time_base)
            if packet.pts - packet.dts > limit:
                packet.dts = packet.pts if self._last_dts is None else min(packet.pts, self._last_dts + 1)
        if packet.dts is not None:
            self._last_dts = packet.dts

    def _close(self, all_audio: bool) -> None:
        self._closed = True  # whatever happens next, the container is not written to again
        if self._segments is not None:
            self._mux(self._segments.flush())
        self._mux(self._stream.encode(None))
        if self._audio:
            if all_audio:
                self._audio.finish()
            else:  # a partial file: audio as far as the video goes
                self._audio.write_until(float((self._last_pts or 0) * self._time_base))
                self._audio.close()
        try:
            self._container.close()
        except OSError as e:
            raise MediaError(f"could not write {self.target} ({e.strerror or e}): check free space") from None

    def _normal_layout(self, until: float | None = None) -> None:
        """A fragmented MOV/MP4 copied into the usual layout (one index; at the front with the
        preset's +faststart), which every editor reads; ``until``: the frames from there on are
        left out (any container: a partial file's broken end)."""
        if (self.fmt.container not in _FRAGMENTED and until is None) or self._tmp.role != "part":
            return  # nothing to copy, or copied already
        fragmented = self._tmp
        self._temps.append(TempFile(self.target))
        try:
            copied = remux(fragmented.path, self._tmp.path, self.fmt.container, self.fmt.container_options, until)
        except BaseException as e:
            self._temps.pop().discard()
            if isinstance(e, (av.FFmpegError, OSError)):
                raise MediaError(f"could not finish {self.target} ({getattr(e, 'strerror', None) or e}): "
                                 "check free space") from None
            raise
        self._discard_older()
        self.frames = copied  # what the file holds (a partial file's broken end left out)

    def _discard_older(self) -> None:
        """Remove every temporary file but the newest (a no-op for those already gone)."""
        for temp in self._temps[:-1]:
            temp.discard()

    @property
    def written(self) -> Path | None:
        """Where ``finish()`` published the output (None until then)."""
        return self._written

    @property
    def audio_lost(self) -> list[tuple[float, float]]:
        return self._audio.lost if self._audio else []

    def finish(self) -> Path:
        with uninterrupted():  # a stop signal waits until the output is published
            if self._written is None:
                if not self._closed:
                    self._close(all_audio=True)
                self._normal_layout()
                self._written = publish_output(self._tmp.path, self.target, self._overwrite)
            self._tmp.release()
            self._discard_older()
            self._settled = True
            return self._written

    def salvage(self) -> Path | None:
        with uninterrupted():
            if self._settled or self._written is not None:
                self._discard_older()
                return None
            self._settled = True
            if self.frames:
                try:
                    if not self._closed:
                        try:
                            self._close(all_audio=False)
                        except (MediaError, av.FFmpegError, OSError):
                            pass  # a full disk: the fragments or clusters written so far still play
                    trim_to_whole(self._tmp.path)  # without the one the disk had no room to finish
                    try:
                        self._normal_layout(complete_until(self._tmp.path))
                    except MediaError:
                        pass  # no room to copy it: the file plays as it is, but for its end
                    if plays(self._tmp.path):
                        names = partial_names(self.target)
                        kept = publish(self._tmp.path, next(names), False, names)
                        self._tmp.release()
                        self._discard_older()
                        return kept
                except Exception:  # could not finalise (a broken encoder, no room to rename): keep nothing
                    pass
            self._drop()
            return None

    def _drop(self) -> None:
        with uninterrupted():
            if getattr(self, "_segments", None) is not None:
                self._segments.close()
            for closing in (getattr(self, "_audio", None), getattr(self, "_container", None)):
                try:
                    if closing is not None:
                        closing.close()
                except Exception:  # already broken; removing the file is what matters
                    pass
            for temp in self._temps:
                temp.discard()
            self._settled = True


class PngSequenceSink:
    """One PNG per frame (RGBA, RGB or grey), numbered from 0, into a folder or a %d pattern,
    and the source's audio as WAV files beside them (or, with ``select``, the frames it picks,
    named by their index, and no audio). Each PNG is written whole and then
    published, so the frames written before a failure are complete and are kept. A locked
    marker file in the folder tells other runs (and a later one, if this one dies) that a
    sequence is being written there.

    Frames are compressed and written by ``encoders`` threads (None: one per core; OpenCV
    releases the GIL), up to two per thread in flight; ``frames`` counts those written whole, in
    order, and a stopped run keeps exactly those: none after a gap."""

    def __init__(self, target: Path, source: Path | None = None, fmt: VideoFormat | None = None,
                 start: float | None = None, end: float | None = None, max_height: int | None = None,
                 overwrite: bool = False, encoders: int | None = None, select: Callable[[int], bool] | None = None):
        self.folder, self.pattern = sequence_target(target)
        self.folder.mkdir(parents=True, exist_ok=True)
        if any(is_sequence_marker(p) and not is_abandoned(p) for p in self.folder.iterdir()):
            raise ConfigError(f"another u2video run is writing into {self.folder} now: wait for it to end, "
                              "or choose another folder")
        self._marker = TempFile(self.folder / "sequence", "run")
        self._marker.path.write_text(f"u2video (process {os.getpid()}) is writing a PNG sequence into this folder\n")
        self._audio_args = (source, fmt, start, end)
        self._max_height = max_height
        self._overwrite = overwrite
        self._finished = False
        self.frames = 0  # written whole, in order
        self.planar_format = None
        self.audio_lost: list[tuple[float, float]] = []
        self._workers = encoders or cpu_threads()
        self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="u2video-png")
        self._pending: deque[Future[Path]] = deque()  # frames self.frames, self.frames + 1, ... in flight
        # ``select``: only the frames it picks (by 0-based index), each named by its index, no audio
        self._select = select
        self._index = 0  # the next frame's index

    def describe(self) -> str:
        if self._select is not None:
            return f"{self.folder / self.pattern}: PNGs of the chosen frames, named by frame number (from 0)"
        return f"{self.folder / self.pattern}: PNG frames, audio as WAV beside them if the input has any"

    def write(self, pixels: np.ndarray, pts: int | None) -> None:
        index, self._index = self._index, self._index + 1
        if self._select is not None and not self._select(index):
            return
        self._pending.append(self._pool.submit(self._write_frame, np.array(pixels, copy=True), index))
        while self._pending and (self._pending[0].done() or len(self._pending) > 2 * self._workers):
            self._pending[0].result()  # a worker's error (a full disk) is raised here
            self._pending.popleft()
            self.frames += 1

    def _write_frame(self, pixels: np.ndarray, index: int) -> Path:
        height, width = pixels.shape[:2]
        if self._max_height and height > self._max_height:
            size = (max(1, round(width * self._max_height / height)), self._max_height)
            pixels = cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)
        target = self.folder / (self.pattern % index)
        with folder_file(target, self._overwrite) as tmp:
            tmp.path.write_bytes(encode_image(target, pixels))
        return target

    def _settle_frames(self) -> BaseException | None:
        """Wait for the frames in flight; count those written whole in order, remove any written
        after one that failed (a gap), and return the first failure."""
        self._pool.shutdown(wait=True)
        failure: BaseException | None = None
        for future in self._pending:
            error = future.exception()
            if failure is None and error is None:
                self.frames += 1
            elif failure is None:
                failure = error
            else:
                with contextlib.suppress(Exception):
                    future.result().unlink()
        self._pending.clear()
        return failure

    @property
    def written(self) -> Path | None:
        return self.folder if self._finished else None

    def finish(self) -> Path:
        with uninterrupted():
            return self._finish()

    def _finish(self) -> Path:
        failure = self._settle_frames()
        if failure is not None:
            raise failure
        if self._select is not None:  # chosen frames: no audio, and what else is in the folder stays
            self._marker.discard()
            self._finished = True
            return self.folder
        source, fmt, start, end = self._audio_args
        audio, self.audio_lost = (write_audio_files(source, self.folder, fmt, start, end, self._overwrite)
                                  if source and fmt else ([], []))
        # what an earlier run left here under the same names (with --overwrite) is not ours any more
        frame = re.compile("^" + re.sub(r"%0?\d*d", r"(\\d+)", re.escape(self.pattern)) + "$")
        for path in self.folder.iterdir():
            match = frame.match(path.name)
            stale_frame = match is not None and int(match.group(1)) >= self.frames
            stale_audio = re.fullmatch(r"audio(-\d+)?\.wav", path.name) is not None and path not in audio
            if stale_frame or stale_audio:
                path.unlink()
        self._marker.discard()
        self._finished = True
        return self.folder

    def salvage(self) -> Path | None:
        with uninterrupted():
            self._settle_frames()
            self._marker.discard()
            return self.folder if self.frames and not self._finished else None


def is_sequence_marker(path: Path) -> bool:
    return path.name.startswith(".sequence.u2video-") and path.name.endswith(".run")
