"""A virtual camera as a live output, through pyvirtualcam (the ``webcam`` extra): v4l2loopback
on Linux, OBS Virtual Camera on Windows and macOS."""

from __future__ import annotations

import sys

import numpy as np

from ..errors import DeviceError
from .live import LiveFrame

_HOW_TO = {
    "linux": "install v4l2loopback and load it: sudo modprobe v4l2loopback devices=1 exclusive_caps=1 "
             "card_label=u2video",
    "darwin": "install OBS Studio (it provides the virtual camera), start its virtual camera once, then stop it",
    "win32": "install OBS Studio (26 or newer): it provides the virtual camera",
}


class VirtualCamera:
    """Sends RGB (or RGBA with ``alpha``) frames of one size to the first virtual camera, or to
    ``device`` (e.g. /dev/video10)."""

    def __init__(self, width: int, height: int, fps: float, alpha: bool = False, device: str | None = None):
        try:
            import pyvirtualcam
        except ImportError:
            raise DeviceError("the virtual camera needs pyvirtualcam: pip install 'u2video[webcam]' "
                              "(or run with --no-virtual to record and/or preview only)") from None
        fmt = pyvirtualcam.PixelFormat.RGBA if alpha else pyvirtualcam.PixelFormat.RGB
        try:
            self._camera = pyvirtualcam.Camera(width, height, fps, fmt=fmt, device=device)
        except Exception as e:  # pyvirtualcam raises RuntimeError/ValueError with the backend's reason
            how = _HOW_TO.get(sys.platform, "install a virtual camera (v4l2loopback or OBS Studio)")
            raise DeviceError(f"no virtual camera to send to ({str(e).strip().splitlines()[0] if str(e) else type(e).__name__}): "
                              f"{how}; or run with --no-virtual") from None
        self.description = f"virtual camera {self._camera.device} ({width}x{height}, {'RGBA' if alpha else 'RGB'})"

    def send(self, pixels: np.ndarray, frame: LiveFrame) -> None:
        self._camera.send(np.ascontiguousarray(pixels))

    def close(self, complete: bool) -> None:
        if self._camera is not None:
            self._camera.close()
            self._camera = None
