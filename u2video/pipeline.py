"""The one frame loop: source -> batches -> upload -> segmenter -> matte (smoothing, refinement)
-> compose -> download -> sink.

Decoding and encoding run on their own threads (FFmpeg releases the GIL), the device work on
the caller's thread, joined by bounded queues and the host buffers of ``StreamLanes`` (on CUDA
the uploads, the work and the downloads of successive batches overlap on their own streams):
the stages overlap and memory stays flat however long the clip is.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .alpha import MatteStage
from .compose import rgba_to_yuva444p10
from .crop import SubjectCrop
from .device import HostMemoryTrimmer, frame_loop_threads
from .interrupts import uninterrupted
from .media.source import DecodedFrame, FrameLoss, VideoSource
from .media.writers import Sink
from .progress import Reporter
from .segmenter import Segmenter
from .streams import StreamLanes, stop_waiting

_END = object()

# frames [B,H,W,3] uint8 + alpha [B,1,H,W] f32, both on the device -> output pixels [B,...] uint8 (device)
Render = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class RunStats:
    frames: int  # frames written
    loss: FrameLoss  # what the source could not decode
    written: Path  # where the output went


class _Stage(threading.Thread):
    """A thread that keeps its exception for the caller instead of printing it."""

    def __init__(self, target: Callable[[], None], name: str):
        super().__init__(name=name, daemon=True)
        self._work = target
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._work()
        except BaseException as e:  # handed to the main thread, which re-raises it
            self.error = e


def _put(q: queue.Queue, item: object, stop: threading.Event, consumer: _Stage | None = None) -> bool:
    """Put ``item``; False once ``stop`` is set or the consumer thread ended (nobody will take it)."""
    while not stop.is_set() and (consumer is None or consumer.is_alive()):
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _get(q: queue.Queue, stop: threading.Event, producer: _Stage | None = None) -> object:
    """Next item, or _END once ``stop`` is set or the producer thread ended (its error re-raised)."""
    while True:
        try:
            return q.get(timeout=0.1)
        except queue.Empty:
            if stop.is_set():
                return _END
            if producer is not None and not producer.is_alive() and q.empty():
                if producer.error is not None:
                    raise producer.error
                return _END


def run_video(source: VideoSource, segmenter: Segmenter, matte: MatteStage, render: Render, sink: Sink,
              batch: int, reporter: Reporter, planar: bool | None = None, crop: SubjectCrop | None = None) -> RunStats:
    """Process every frame of ``source`` into ``sink`` and finish it.

    ``crop``: the subject-crop pass, between the network and the matte step (None: off).

    ``planar``: convert RGBA output to the sink's ``planar_format`` on the device and download
    the planes (None: on CUDA, where it takes that work off the encoders' CPU cores).

    On any error, Ctrl-C or stop signal (``errors.Interrupted``) the stages stop, the sink keeps
    what was written as a playable partial output or removes it, ``reporter.warn`` says which,
    and the exception propagates.
    """
    stop = threading.Event()
    on_device = planar if planar is not None else segmenter.device.type == "cuda"
    planes = sink.planar_format == "yuva444p10le" and on_device  # the one layout converted so far
    decoded: queue.Queue = queue.Queue(maxsize=2 * batch)
    rendered: queue.Queue = queue.Queue(maxsize=2)

    def decode() -> None:
        for frame in source.frames():
            if not _put(decoded, frame, stop):
                return
        _put(decoded, _END, stop)

    def encode() -> None:
        while True:
            item = _get(rendered, stop)
            if item is _END:
                return
            done, pts, as_planes = item
            try:
                for one, t in zip(done.wait(), pts):
                    # the sink copies the pixels: the buffer can go back
                    sink.write(one.view(np.uint16) if as_planes else one, t)
            finally:
                done.release()

    decoder, encoder = _Stage(decode, "u2video-decode"), _Stage(encode, "u2video-encode")
    lanes = StreamLanes(segmenter.device)
    encoding = stop_waiting(stop, encoder)
    bar = reporter.bar("frames", source.info.frames or None, "frame")
    trim = HostMemoryTrimmer(segmenter.device)  # ~100 MiB less at 640x480 (README, "Memory")
    count = 0

    def emit(frames: torch.Tensor, alpha: torch.Tensor, pts: list) -> bool:
        """Render the frames the matte step finished and queue them; False if the encoder died."""
        nonlocal count
        if not pts:
            return True  # the smoothing window is still filling
        pixels = render(frames, alpha)  # [B,H,W,C] or [B,H,W] uint8
        as_planes = planes and pixels.dim() == 4 and pixels.shape[3] == 4
        if as_planes:  # [B,4,H,W] 10-bit planes, downloaded as their bytes (the lanes carry uint8)
            pixels = rgba_to_yuva444p10(pixels).view(torch.uint8)
        done = lanes.download(pixels, encoding)
        if done is None or not _put(rendered, (done, pts, as_planes), stop, encoder):
            return False  # the encoder died: its error is raised below
        count += len(pts)
        bar.update(len(pts))
        trim()
        return True

    try:
        decoder.start()
        encoder.start()
        with frame_loop_threads(segmenter.device, segmenter.workers), lanes.compute():
            chunks = ((lanes.upload([f.rgb for f in chunk]), [f.pts for f in chunk])  # [B,H,W,3] u8 on the device
                      for chunk in _batches(decoded, stop, decoder, batch))
            for frames, pts, preds in segmenter.predict_batches(chunks):  # preds [B,1,S,S] f32 0..1, on the device
                if crop is not None:  # a second look at small subjects: [B,1,gh,gw]
                    preds = crop(frames, preds)
                if not emit(*matte.push(frames, preds, pts)):
                    break
            else:
                emit(*matte.flush())
        _put(rendered, _END, stop, encoder)
        encoder.join()
        if encoder.error is not None:
            raise encoder.error
        written = sink.finish()
    except BaseException:
        with uninterrupted():  # a second Ctrl-C must not cut the partial output short
            bar.close()  # before the message, so it gets a line of its own
            stop.set()
            decoder.join(timeout=10)
            encoder.join(timeout=30)  # it stops between frames; the sink is not touched while it runs
            kept = sink.salvage() if not encoder.is_alive() else None
            total = f" of {source.info.frames}" if source.info.frames else ""
            if sink.written is not None:
                reporter.warn(f"stopped after the output was finished: all {count} frames are in {sink.written}")
            elif kept is not None:
                reporter.warn(f"stopped after {sink.frames}{total} frames: those frames were kept, "
                              f"finalised and playable, in {kept}")
            else:
                reporter.warn(f"stopped after {count}{total} frames: no partial output was kept")
        raise
    finally:
        bar.close()
    return RunStats(count, source.loss, written)


def _batches(decoded: queue.Queue, stop: threading.Event, decoder: _Stage, size: int) -> Iterator[list[DecodedFrame]]:
    chunk: list[DecodedFrame] = []
    while True:
        item = _get(decoded, stop, decoder)
        if item is _END:
            break
        chunk.append(item)  # type: ignore[arg-type]
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
