"""Parallel segment encoding for intra-only codecs (ProRes, FFV1): one encoder is one core, and
at 1080p one core converts and encodes ProRes 4444 at ~20 frames/s, far below what a GPU
delivers. Here N encoders, each its own codec context configured like the output stream's,
take turns on runs of consecutive frames; the packets come back in frame order and are muxed
into the one stream, so the file is the one a single encoder writes (same packets, same pts).

Why runs and not single frames: FFV1 carries its coder state from one frame to the next until
the next keyframe (every ``gop_size`` frames), so a run is a whole number of GOPs and every run
starts on a keyframe for the encoder that takes it. ProRes frames are independent; short runs
keep the frames in flight (and their memory) few.

The colour conversion (RGBA -> the encoder's planar format, ~10-15 ms a 1080p frame) runs on the
worker too: PyAV releases the GIL in swscale and in the encoder, so the threads run in parallel.
"""

from __future__ import annotations

import queue
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from fractions import Fraction

import av
import numpy as np

# codecs whose packets do not depend on frames outside their run (FFV1: runs of whole GOPs)
INTRA_ONLY = {"prores_ks", "ffv1"}
_PRORES_RUN = 4  # frames: a run's memory is a few frames, its scheduling cost is negligible


def video_frame(pixels: np.ndarray, layout: str) -> av.VideoFrame:
    """A frame of ``pixels``: [H,W,C] or [H,W] uint8 in PyAV ``layout`` (copied into the frame),
    or [P,H,W] uint16 planes of a planar ``layout`` such as yuva444p10le (not copied: keep them
    unchanged while the frame is in use)."""
    if pixels.dtype == np.uint16:
        return av.VideoFrame.from_dlpack(list(pixels), format=layout)
    return av.VideoFrame.from_ndarray(pixels, format=layout)


class SegmentEncoder:
    """Encodes frames on ``workers`` codec contexts in parallel, returning packets in frame order.

    ``make_context()`` returns a new, opened encoder context set up exactly like the output
    stream's (codec, size, pixel format, time base, options): packets from any of them decode
    with the stream's header.

        encoder = SegmentEncoder(make_context, "prores_ks", workers=8)
        packets = encoder.encode(rgba, "rgba", pts)   # packets of the runs finished so far, in order
        packets = encoder.flush()                     # the rest; the encoder is closed
    """

    def __init__(self, make_context: Callable[[], av.CodecContext], codec: str, workers: int,
                 time_base: Fraction):
        self._contexts: queue.Queue[av.CodecContext] = queue.Queue()
        first = make_context()
        self._contexts.put(first)
        for _ in range(workers - 1):
            self._contexts.put(make_context())
        self.workers = workers
        self.run = first.gop_size if codec == "ffv1" else _PRORES_RUN
        self._time_base = time_base
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="u2video-segment")
        self._pending: deque[Future[list[av.Packet]]] = deque()
        self._run: list[tuple[np.ndarray, str, int]] = []
        self._ready: list[av.Packet] = []  # taken from finished runs, not yet returned
        self._closed = False

    def encode(self, pixels: np.ndarray, layout: str, pts: int) -> list[av.Packet]:
        """Queue one frame (``pixels`` as ``video_frame`` takes them; copied, so the caller may
        reuse its buffer) and return the packets of every run finished so far, in
        order. Blocks while ``workers`` + 1 runs are in flight."""
        self._run.append((np.array(pixels, copy=True), layout, pts))
        if len(self._run) == self.run:
            self._submit()
        while self._pending and (self._pending[0].done() or len(self._pending) > self.workers):
            self._take()
        done, self._ready = self._ready, []
        return done

    def flush(self) -> list[av.Packet]:
        """Encode what is queued, wait for every run and return the remaining packets in order.
        The encoder is closed afterwards (also if a run failed: its error is raised)."""
        try:
            if self._run:
                self._submit()
            while self._pending:
                self._take()
            done, self._ready = self._ready, []
            return done
        finally:
            self.close()

    def close(self) -> None:
        """Stop: runs not started are dropped, running ones are waited for. Idempotent."""
        if not self._closed:
            self._closed = True
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pending.clear()

    def _take(self) -> None:
        """Move the oldest run's packets to ``_ready``. A Ctrl-C (raised in the main thread between
        Python calls) may cut the wait, but not the two C calls after it: the run is taken once."""
        packets = self._pending[0].result()
        self._ready.extend(packets)
        self._pending.popleft()

    def _submit(self) -> None:
        run, self._run = self._run, []
        self._pending.append(self._pool.submit(self._encode_run, run))

    def _encode_run(self, run: list[tuple[np.ndarray, str, int]]) -> list[av.Packet]:
        context = self._contexts.get()  # a free one: runs outnumber contexts only while queued
        try:
            packets: list[av.Packet] = []
            for pixels, layout, pts in run:
                frame = video_frame(pixels, layout)
                frame.pts, frame.time_base = pts, self._time_base
                packets += context.encode(frame)  # converted to the encoder's format here
            if len(packets) != len(run):  # an encoder that holds frames back is not intra-only
                raise RuntimeError(f"{context.name} returned {len(packets)} packets for {len(run)} frames")
            return packets
        finally:
            self._contexts.put(context)
