"""The live loop: the newest camera frame -> network -> past-only matte step -> render ->
outputs (virtual camera, preview window, recording), one frame at a time, with its latency.

The source reads on its own thread into a one-frame slot (``media/live.py``), so this loop
always works on the newest frame and frames that arrive while it is busy are dropped, never
queued: latency stays one frame's processing time however slow the machine is.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import torch

from .alpha import MatteStage
from .crop import SubjectCrop
from .errors import MediaError
from .interrupts import uninterrupted
from .media.live import LiveFrame, LiveSource
from .media.writers import Sink
from .pipeline import Render
from .progress import Reporter
from .segmenter import Segmenter
from .streams import StreamLanes

STATUS_EVERY = 5.0  # seconds between status lines


class LiveOutput(Protocol):
    def send(self, pixels: np.ndarray, frame: LiveFrame) -> None:
        """pixels: [H,W,3] RGB or [H,W,4] RGBA uint8, for ``frame``."""

    def close(self, complete: bool) -> None:
        """Release the device or finish the file; ``complete`` is False after an error. A second
        call does nothing."""


@dataclass
class LiveStats:
    seconds: float = 0.0
    captured: int = 0  # frames the source delivered
    processed: int = 0  # frames sent to the outputs
    dropped: int = 0  # frames replaced by a newer one before the loop took them
    latencies_ms: list[float] = field(default_factory=list)  # capture -> sent, per processed frame
    indices: list[int] = field(default_factory=list)  # capture index of each processed frame

    @property
    def capture_fps(self) -> float:
        return self.captured / self.seconds if self.seconds else 0.0

    @property
    def processed_fps(self) -> float:
        return self.processed / self.seconds if self.seconds else 0.0

    def latency_ms(self, percentile: float) -> float:
        return float(np.percentile(self.latencies_ms, percentile)) if self.latencies_ms else 0.0

    def line(self) -> str:
        drop = 100 * self.dropped / self.captured if self.captured else 0.0
        return (f"capture {self.capture_fps:.1f} fps, processed {self.processed_fps:.1f} fps, dropped "
                f"{self.dropped} ({drop:.0f}%), latency p50 {self.latency_ms(50):.0f} ms, p95 {self.latency_ms(95):.0f} ms")

    def to_dict(self) -> dict:
        data = asdict(self)
        data.update(capture_fps=round(self.capture_fps, 3), processed_fps=round(self.processed_fps, 3),
                    drop_rate=round(self.dropped / self.captured, 4) if self.captured else 0.0,
                    latency_ms_p50=round(self.latency_ms(50), 2), latency_ms_p95=round(self.latency_ms(95), 2))
        data["latencies_ms"] = [round(v, 2) for v in self.latencies_ms]
        return data

    def write_json(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2))


class Recording:
    """A live output that writes what is sent to a file through the same sinks as ``replace``
    and ``matte``, each frame at its capture time (so the file plays at the real pace, frames
    that were dropped included as longer frames)."""

    TIME_BASE = Fraction(1, 1000)

    def __init__(self, sink: Sink, reporter: Reporter):
        self.sink = sink
        self.reporter = reporter
        self.written: Path | None = None  # where the finished recording went
        self._t0: float | None = None
        self._closed = False

    def send(self, pixels: np.ndarray, frame: LiveFrame) -> None:
        if self._t0 is None:
            self._t0 = frame.captured
        self.sink.write(pixels, round((frame.captured - self._t0) / self.TIME_BASE))

    def close(self, complete: bool) -> None:
        """Finish the file (``complete``) or keep what was recorded as a partial one; once."""
        with uninterrupted():
            if self._closed:
                return
            if complete and self.sink.frames:
                self.written = self.sink.finish()
            else:
                kept = self.sink.salvage()
                self.reporter.warn(f"the recording was kept, finalised and playable, in {kept}" if kept
                                   else "nothing was recorded")
            self._closed = True


class Preview:
    """A window with the output (OpenCV), the stats in its title; q or Esc stops."""

    NAME = "u2video"

    def __init__(self, stats: LiveStats | None = None):
        if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            # OpenCV's window toolkit aborts the whole process without a screen; say so instead
            raise MediaError("--preview needs a screen and there is none here (no DISPLAY): run without "
                             "--preview, and --record a file to look at later")
        self.stats = stats
        self._shown = 0

    def send(self, pixels: np.ndarray, frame: LiveFrame) -> None:
        if pixels.ndim == 3 and pixels.shape[2] == 4:  # show the cut-out over grey
            alpha = pixels[..., 3:4].astype(np.float32) / 255
            pixels = (pixels[..., :3] * alpha + 128 * (1 - alpha)).astype(np.uint8)
        try:
            cv2.imshow(self.NAME, cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR))
            self._shown += 1
            if self.stats is not None and self._shown % 15 == 0:
                cv2.setWindowTitle(self.NAME, f"u2video: {self.stats.line()}")
            key = cv2.waitKey(1) & 0xFF
        except cv2.error as e:
            raise MediaError(f"cannot open a preview window ({e.msg.strip() or e}): run without --preview "
                             "on a machine without a screen") from None
        if key in (ord("q"), 27):
            raise StopLive

    def close(self, complete: bool) -> None:
        try:
            cv2.destroyWindow(self.NAME)
            cv2.waitKey(1)
        except cv2.error:
            pass


class StopLive(Exception):
    """Raised by an output (the preview's q key) to end the loop normally."""


def run_live(source: LiveSource, segmenter: Segmenter, matte: MatteStage, render: Render,
             outputs: list[LiveOutput], reporter: Reporter, duration: float | None = None,
             stats: LiveStats | None = None, crop: SubjectCrop | None = None) -> LiveStats:
    """Process the newest frame of ``source`` until it ends, ``duration`` seconds pass, an
    output asks to stop, or Ctrl-C; the outputs are closed either way. A source that fails
    (a camera that did not come back) raises its MediaError after the outputs are closed.
    ``stats`` (filled as it goes, e.g. for a preview to show) is returned. ``crop``: the
    subject-crop pass, one network pass a frame (None: the whole frame each time)."""
    stats = stats if stats is not None else LiveStats()
    bar = reporter.bar("live", None, "frame")
    start = time.monotonic()
    next_status = start + STATUS_EVERY
    wait = source.retry_seconds + 2.0
    # the video path's host buffers and lanes (pinned, on their own streams on CUDA), one frame
    # at a time: a frame is never waited for behind another
    lanes = StreamLanes(segmenter.device, depth=2)
    try:
        segmenter.warm_up()  # else the first frame waits for it, and the camera's next ones are dropped
        start = next_status = time.monotonic()
        next_status += STATUS_EVERY
        with source, torch.inference_mode(), lanes.compute():
            while duration is None or time.monotonic() - start < duration:
                frame = source.slot.take(timeout=wait)
                if frame is None:
                    break
                frames = lanes.upload([frame.rgb])  # [1,H,W,3] uint8 on the device
                # [1,1,S,S], or with the crop pass [1,1,gh,gw]
                preds = crop.live(frames) if crop is not None else segmenter.predict_lowres(frames)
                done_frames, alpha, _ = matte.push(frames, preds, [frame])  # past frames only: no delay
                done = lanes.download(render(done_frames, alpha))
                try:
                    pixels = done.wait()[0]  # the one sync: the frame is needed on the host now
                    for output in outputs:
                        output.send(pixels, frame)  # each copies what it keeps
                finally:
                    done.release()
                stats.latencies_ms.append(1000 * (time.monotonic() - frame.captured))
                stats.indices.append(frame.index)
                stats.processed += 1
                _count(stats, source, start)
                bar.update(1)
                if time.monotonic() >= next_status:
                    reporter.info(stats.line())
                    next_status += STATUS_EVERY
    except (KeyboardInterrupt, StopLive):
        pass  # the usual way to end a live session
    except BaseException:
        _finish(stats, source, start, outputs, bar, complete=False)
        raise
    _finish(stats, source, start, outputs, bar, complete=True)
    return stats


def _finish(stats: LiveStats, source: LiveSource, start: float, outputs: list[LiveOutput], bar, complete: bool) -> None:
    bar.close()
    _count(stats, source, start)
    for output in outputs:
        output.close(complete)


def _count(stats: LiveStats, source: LiveSource, start: float) -> None:
    stats.seconds = time.monotonic() - start
    stats.captured, stats.dropped = source.slot.captured, source.slot.dropped
