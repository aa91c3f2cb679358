"""Live frames: a camera, or a video file or stream played at its real rate, read on a thread
of its own into a one-frame slot. Whoever processes frames always takes the newest one; a
frame that was replaced before anyone took it is dropped and counted, so nothing queues up
and latency cannot grow."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from ..errors import MediaError
from .source import FrameLoss, VideoSource, is_url


@dataclass
class LiveFrame:
    rgb: np.ndarray  # [H,W,3] uint8
    index: int  # 0, 1, 2, ... in capture order (gaps are dropped frames)
    captured: float  # time.monotonic() when it was read


class LatestFrame:
    """A one-frame slot between a producer and a consumer thread."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._frame: LiveFrame | None = None
        self._taken = True
        self.captured = 0
        self.dropped = 0  # frames replaced before anyone took them
        self.closed = False
        self.error: BaseException | None = None

    def put(self, frame: LiveFrame) -> None:
        with self._cond:
            if not self._taken:
                self.dropped += 1
            self._frame, self._taken = frame, False
            self.captured += 1
            self._cond.notify_all()

    def close(self, error: BaseException | None = None) -> None:
        """No more frames (the end of a file, or ``error``, raised to the consumer)."""
        with self._cond:
            self.closed, self.error = True, error
            self._cond.notify_all()

    def take(self, timeout: float | None = None) -> LiveFrame | None:
        """The newest frame not taken yet; waits for one. None once closed and empty, or after
        ``timeout`` seconds without a frame. Raises the producer's error."""
        with self._cond:
            self._cond.wait_for(lambda: not self._taken or self.closed, timeout)
            if not self._taken:
                self._taken = True
                return self._frame
            if self.error is not None:
                raise self.error
            return None  # closed, or nothing new within the timeout


class LiveSource:
    """Reads frames on a thread into a ``LatestFrame``. Use as a context manager; ``slot``
    gives the frames. ``width``, ``height`` and ``fps`` are known once it is open."""

    def __init__(self, spec: str | None, retry_seconds: float = 5.0, opener: Callable[[str | None], Reader] | None = None):
        self.spec = spec
        self.retry_seconds = retry_seconds
        self.slot = LatestFrame()
        self._stop = threading.Event()
        self._open = opener or open_reader  # called again to reconnect
        self._reader = self._open(spec)
        self.width, self.height, self.fps = self._reader.width, self._reader.height, self._reader.fps
        self.description = self._reader.description
        self._thread = threading.Thread(target=self._run, name="u2video-capture", daemon=True)

    @property
    def loss(self) -> FrameLoss | None:
        """What a file source could not decode (None for a camera); complete once it has ended."""
        return getattr(self._reader, "loss", None)

    def __enter__(self) -> "LiveSource":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        if self._thread.ident is not None:  # started
            self._thread.join(timeout=5)
        self._reader.release()

    def _run(self) -> None:
        index = 0
        try:
            while not self._stop.is_set():
                rgb = self._reader.read()
                if rgb is None:
                    if self._reader.finite:
                        break  # the end of a file
                    rgb = self._reconnect()
                    if rgb is None:
                        raise MediaError(f"{self.description} stopped sending frames and did not come back "
                                         f"within {self.retry_seconds:g} s: check the cable or the device")
                self.slot.put(LiveFrame(rgb, index, time.monotonic()))
                index += 1
            self.slot.close()
        except BaseException as e:  # handed to the consumer
            self.slot.close(e)

    def _reconnect(self) -> np.ndarray | None:
        """A camera that stopped (unplugged, busy): reopen it until ``retry_seconds`` pass."""
        deadline = time.monotonic() + self.retry_seconds
        while not self._stop.is_set() and time.monotonic() < deadline:
            self._reader.release()
            time.sleep(0.5)
            try:
                self._reader = self._open(self.spec)
            except MediaError:
                continue
            rgb = self._reader.read()
            if rgb is not None:
                return rgb
        return None


class Reader(Protocol):
    width: int
    height: int
    fps: float
    finite: bool  # a file ends; a camera that stops is reconnected
    description: str

    def read(self) -> np.ndarray | None:
        """The next frame [H,W,3] uint8 RGB, or None (the end, or a camera that stopped)."""

    def release(self) -> None: ...


class Camera:
    """A camera through OpenCV (V4L2 on Linux): an index or a device path (or anything else
    OpenCV's VideoCapture opens, read as a camera that never ends)."""

    finite = False

    def __init__(self, spec: str | None):
        target: int | str = 0 if spec is None else (int(spec) if spec.isdigit() else spec)
        self.description = f"camera {target}"
        level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # our message says it better
        try:
            self._capture = cv2.VideoCapture(target)
        finally:
            cv2.utils.logging.setLogLevel(level)
        if not self._capture.isOpened():
            self._capture.release()
            raise MediaError(f"cannot open {self.description}: check that it is plugged in and not used by "
                             "another program, or give another --source (an index, /dev/videoN, or a video file)")
        ok, bgr = self._capture.read()
        if not ok or bgr is None:
            self._capture.release()
            raise MediaError(f"{self.description} opened but sends no frames: it may be busy in another program")
        self._first: np.ndarray | None = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        self.height, self.width = self._first.shape[:2]
        self.fps = float(self._capture.get(cv2.CAP_PROP_FPS) or 30.0) or 30.0

    def read(self) -> np.ndarray | None:
        if self._first is not None:
            first, self._first = self._first, None
            return first
        ok, bgr = self._capture.read()
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) if ok and bgr is not None else None

    def release(self) -> None:
        self._capture.release()


class Playback:
    """A video file or stream URL decoded by ``VideoSource`` (upright, damaged packets skipped
    and counted in ``loss``) and released at its own timestamps, as a camera would deliver it."""

    def __init__(self, spec: str):
        self.description = spec
        self.finite = not is_url(spec)
        try:
            self._source = VideoSource(spec)
        except MediaError as e:
            raise MediaError(f"cannot play {spec} as a camera: {e}") from None
        self._frames = self._source.frames()
        info = self._source.info
        self.width, self.height, self.fps = info.width, info.height, float(info.rate)
        self._seconds = float(info.time_base)
        self._start: float | None = None  # monotonic time of the first frame
        self._first_time = 0.0

    @property
    def loss(self) -> FrameLoss:
        return self._source.loss

    def read(self) -> np.ndarray | None:
        frame = next(self._frames, None)
        if frame is None:
            return None
        seconds = frame.pts * self._seconds if frame.pts is not None else 0.0
        now = time.monotonic()
        if self._start is None:
            self._start, self._first_time = now, seconds
        delay = self._start + (seconds - self._first_time) - now
        if delay > 0:
            time.sleep(delay)  # a file is released at its real rate, like a camera
        return frame.rgb

    def release(self) -> None:
        self._source.close()


def open_reader(spec: str | None) -> Reader:
    """None, an index or /dev/... -> Camera; a file or URL -> Playback."""
    if spec is None or spec.isdigit() or spec.startswith("/dev/"):
        return Camera(spec)
    if not is_url(spec) and not Path(spec).is_file():
        raise MediaError(f"{spec} does not exist: give a camera index (0), a device (/dev/video0), "
                         "a video file or a stream URL")
    return Playback(spec)
