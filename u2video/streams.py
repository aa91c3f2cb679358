"""How batches of frames travel to the device and back: the only module besides ``device.py``
that knows about CUDA.

On CUDA three streams overlap: the upload of batch k+1 (from a pinned host buffer, on a copy
stream), the work on batch k (resize, network, matte, compositing, on the compute stream) and
the download of batch k-1's finished uint8 pixels (into a pinned host buffer, on a second copy
stream). CUDA events order the streams and tell the host when a pinned buffer may be written
again: a buffer is never refilled before the copy out of it finished, and a download buffer is
never reused before its consumer released it. On the CPU the same code runs with no streams
and no events (copies are done when they return), so the tests exercise the same slots, the
same order and the same back-pressure.

    lanes = StreamLanes(device)
    frames = lanes.upload([rgb, ...])            # [B,H,W,3] uint8 on the device
    with lanes.compute():
        pixels = work(frames)                    # [B,...] uint8 on the device
    done = lanes.download(pixels)                # returns at once on CUDA
    ... on another thread: done.wait() -> np.ndarray [B,...] uint8; done.release()
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch


class Slot:
    """One host buffer of a ring, with the event of the last copy into or out of it."""

    def __init__(self, ring: "SlotRing", index: int):
        self.ring, self.index = ring, index
        self.buffer: torch.Tensor | None = None  # uint8, pinned on CUDA, grown on demand
        self.event: torch.cuda.Event | None = None  # None on the CPU (copies are synchronous)

    def view(self, shape: tuple[int, ...]) -> torch.Tensor:
        """The buffer's first elements shaped ``shape`` (uint8), reallocated if it is too small."""
        count = int(np.prod(shape))
        if self.buffer is None or self.buffer.numel() < count:
            self.buffer = torch.empty(count, dtype=torch.uint8, pin_memory=self.ring.pinned)
        return self.buffer[:count].view(shape)

    def copied(self) -> None:
        """Wait until the last copy into or out of this buffer finished (CPU: it has)."""
        if self.event is not None:
            self.event.synchronize()


class SlotRing:
    """``size`` host buffers handed out in turn: ``acquire`` blocks until one is free."""

    def __init__(self, size: int, pinned: bool):
        self.size, self.pinned = size, pinned
        self._free: queue.Queue[Slot] = queue.Queue()
        for i in range(size):
            self._free.put(Slot(self, i))

    def acquire(self, keep_waiting: Callable[[], bool] = lambda: True) -> Slot | None:
        """A free slot whose last copy finished; None if ``keep_waiting`` says to give up."""
        while True:
            try:
                slot = self._free.get(timeout=0.1)
            except queue.Empty:
                if not keep_waiting():
                    return None
                continue
            slot.copied()
            return slot

    def release(self, slot: Slot) -> None:
        self._free.put(slot)


class Download:
    """A batch of finished pixels on its way to the host. ``wait`` returns them (a view of a
    ring buffer: valid until ``release``, which hands the buffer back for another batch)."""

    def __init__(self, slot: Slot, shape: tuple[int, ...]):
        self._slot, self._shape = slot, shape
        self._released = False

    def wait(self) -> np.ndarray:
        """[B,...] uint8, once the copy finished."""
        self._slot.copied()
        return self._slot.view(self._shape).numpy()

    def release(self) -> None:
        if not self._released:  # a second call must not put the buffer in the ring twice
            self._released = True
            self._slot.ring.release(self._slot)


class StreamLanes:
    """Upload, compute and download lanes on ``device``, with ``depth`` host buffers each way
    (so up to ``depth`` batches are in flight)."""

    def __init__(self, device: torch.device, depth: int = 3):
        self.device = device
        cuda = device.type == "cuda"
        self._upload = torch.cuda.Stream(device) if cuda else None
        self._compute = torch.cuda.Stream(device) if cuda else None
        self._download = torch.cuda.Stream(device) if cuda else None
        self.inputs = SlotRing(depth, pinned=cuda)
        self.outputs = SlotRing(depth, pinned=cuda)

    def upload(self, frames: Sequence[np.ndarray], keep_waiting: Callable[[], bool] = lambda: True) -> torch.Tensor | None:
        """frames: B arrays [H,W,3] uint8 -> [B,H,W,3] uint8 on the device, ready for work on
        the compute lane (None if ``keep_waiting`` gave up waiting for a buffer)."""
        slot = self.inputs.acquire(keep_waiting)
        if slot is None:
            return None
        host = slot.view((len(frames), *frames[0].shape))
        np.stack(frames, out=host.numpy())
        try:
            if self._upload is None:
                return host.clone()  # the slot is refilled later: the work must not see that
            with torch.cuda.stream(self._upload):
                device_frames = torch.empty(host.shape, dtype=torch.uint8, device=self.device)
                device_frames.copy_(host, non_blocking=True)
                slot.event = torch.cuda.Event()
                slot.event.record(self._upload)
            self._compute.wait_event(slot.event)
            device_frames.record_stream(self._compute)  # made on the upload stream, used on the compute one
            return device_frames
        finally:
            self.inputs.release(slot)  # the next acquire waits for this copy's event

    @contextlib.contextmanager
    def compute(self) -> Iterator[None]:
        """Work queued inside runs on the compute lane (CUDA), in order after the uploads."""
        if self._compute is None:
            yield
            return
        with torch.cuda.stream(self._compute):
            yield

    def download(self, pixels: torch.Tensor, keep_waiting: Callable[[], bool] = lambda: True) -> Download | None:
        """pixels: [B,...] uint8 made on the compute lane -> a Download of them (None if
        ``keep_waiting`` gave up waiting for a buffer that a consumer still holds)."""
        slot = self.outputs.acquire(keep_waiting)
        if slot is None:
            return None
        host = slot.view(tuple(pixels.shape))
        if self._download is None:
            host.copy_(pixels)
        else:
            self._download.wait_stream(self._compute)
            with torch.cuda.stream(self._download):
                host.copy_(pixels, non_blocking=True)
                pixels.record_stream(self._download)  # the allocator must not hand it out before the copy
                slot.event = torch.cuda.Event()
                slot.event.record(self._download)
        return Download(slot, tuple(pixels.shape))


def stop_waiting(stop: threading.Event, *needed: threading.Thread) -> Callable[[], bool]:
    """For ``keep_waiting``: go on while ``stop`` is clear and every thread in ``needed`` runs."""
    return lambda: not stop.is_set() and all(t.is_alive() for t in needed)
