"""What ``replace`` puts behind the subject: a colour, an image, a video, or the blurred frame.

Each ``Background`` is called with the frames and their alpha and returns the background for
each frame on the frames' device; ``parse_background`` turns the --background text into one.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from . import media  # noqa: F401  (OpenCV before PyAV: see media/__init__.py)

import av
import av.filter
import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .errors import ConfigError, MediaError
from .filters import area, resize, separable
from .media.images import read_image
from .media.probe import MediaKind, probe
from .media.source import VideoSource


def cover(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale [h,w,3] uint8 to cover width x height (aspect kept) and crop the centre: [height,width,3]."""
    h, w = rgb.shape[:2]
    scale = max(width / w, height / h)
    sw, sh = max(width, math.ceil(w * scale)), max(height, math.ceil(h * scale))
    resized = cv2.resize(rgb, (sw, sh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    x, y = (sw - width) // 2, (sh - height) // 2
    return resized[y:y + height, x:x + width]


def _to_device(rgb: np.ndarray, device: torch.device) -> torch.Tensor:
    """[...,H,W,3] uint8 host -> [B,3,H,W] f32 0..255 on ``device``."""
    t = torch.from_numpy(np.ascontiguousarray(rgb)).to(device)
    t = t[None] if t.dim() == 3 else t
    return t.permute(0, 3, 1, 2).float()


class Background:
    """What ``replace`` puts behind the subject. ``__call__`` gets the frames and their alpha and
    returns the background for each: [B or 1,3,H,W] f32 0..255 on the frames' device."""

    description = "background"

    def __call__(self, frames: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def close(self) -> None:
        pass


class ColorBackground(Background):
    def __init__(self, rgb: tuple[int, int, int], name: str):
        self.rgb = rgb
        self.description = f"colour {name} {rgb}"

    def __call__(self, frames: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        return torch.tensor(self.rgb, dtype=torch.float32, device=frames.device).view(1, 3, 1, 1)


class ImageBackground(Background):
    def __init__(self, path: Path):
        self.rgb = read_image(path)
        self.description = f"image {path.name}"
        self._fitted: torch.Tensor | None = None

    def __call__(self, frames: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        _, _, h, w = frames.shape
        if self._fitted is None or self._fitted.shape[-2:] != (h, w) or self._fitted.device != frames.device:
            self._fitted = _to_device(cover(self.rgb, w, h), frames.device)  # fitted once per size
        return self._fitted


class VideoBackground(Background):
    """Frames of another video, scaled to cover, looped if shorter than the clip (and cut if longer)."""

    def __init__(self, path: Path):
        self.path = path
        self._video = VideoSource(path)  # fails now, before the main clip is decoded
        self._frames = self._video.frames()
        self.description = f"video {path.name}"

    def _next_rgb(self) -> np.ndarray:
        frame = next(self._frames, None)
        if frame is None:  # loop
            self._video.close()
            self._video = VideoSource(self.path)
            self._frames = self._video.frames()
            frame = next(self._frames)
        return frame.rgb

    def __call__(self, frames: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        b, _, h, w = frames.shape
        return _to_device(np.stack([cover(self._next_rgb(), w, h) for _ in range(b)]), frames.device)

    def close(self) -> None:
        self._video.close()


class BlurBackground(Background):
    """The frame itself, blurred with the subject left out (so it leaves no halo).

    ``strength`` is the Gaussian sigma in pixels at 1080 lines, scaled to the frame's height.
    Blurring is done at a reduced size (a wide blur hides the difference) to stay cheap at 4K.
    """

    def __init__(self, strength: float = 20.0):
        if not 0 < strength <= 200:
            raise ConfigError(f"blur strength {strength:g} is out of range: give more than 0 and up to 200, e.g. blur:20")
        self.strength = strength
        self.description = f"blur:{strength:g}"

    def __call__(self, frames: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        _, _, h, w = frames.shape
        sigma = self.strength * h / 1080
        factor = max(1, int(sigma / 2))  # blur at 1/factor size, where sigma is ~2 pixels
        small = (max(1, h // factor), max(1, w // factor))
        keep = 1.0 - alpha  # weight: background pixels only
        num = _gaussian(area(frames * keep, small), sigma / factor)
        den = _gaussian(area(keep, small), sigma / factor)
        blurred = num / den.clamp_min(1e-3)
        # where the subject covers everything nearby, fall back to the plain blurred frame
        plain = _gaussian(area(frames, small), sigma / factor)
        blurred = torch.where(den > 0.05, blurred, plain)
        return resize(blurred, (h, w))


def _gaussian(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of [B,C,H,W] with reflected borders (where the image is no wider
    than the kernel, the kernel is cut to the image and renormalised)."""
    radius = max(1, math.ceil(3 * sigma))
    if radius < min(x.shape[2], x.shape[3]):
        taps = [math.exp(-0.5 * (i / max(sigma, 1e-3)) ** 2) for i in range(-radius, radius + 1)]
        return separable(x, [t / sum(taps) for t in taps], border="reflect")
    t = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    k = torch.exp(-0.5 * (t / max(sigma, 1e-3)) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    pad_h, pad_w = min(radius, x.shape[2] - 1), min(radius, x.shape[3] - 1)
    kh, kw = k[radius - pad_h: radius + pad_h + 1], k[radius - pad_w: radius + pad_w + 1]
    # each channel's kernel sums to 1 (normalised before repeating it per channel)
    kh = (kh / kh.sum()).view(1, 1, -1, 1).repeat(c, 1, 1, 1)
    kw = (kw / kw.sum()).view(1, 1, 1, -1).repeat(c, 1, 1, 1)
    x = F.conv2d(F.pad(x, (0, 0, pad_h, pad_h), mode="reflect") if pad_h else x, kh, groups=c)
    return F.conv2d(F.pad(x, (pad_w, pad_w, 0, 0), mode="reflect") if pad_w else x, kw, groups=c)


_COLOR = re.compile(r"^(#|0x)?[0-9A-Za-z]+$")


def parse_color(text: str) -> tuple[int, int, int] | None:
    """A colour name (FFmpeg's list: the CSS/X11 names), #RRGGBB or 0xRRGGBB -> RGB; None if not one."""
    if not _COLOR.fullmatch(text):  # (match's $ would let a trailing newline through)
        return None
    try:
        graph = av.filter.Graph()
        src = graph.add("color", f"c={text}:s=2x2:r=1")
        fmt = graph.add("format", "pix_fmts=rgb24")
        sink = graph.add("buffersink")
        src.link_to(fmt)
        fmt.link_to(sink)
        graph.configure()
        r, g, b = sink.pull().to_ndarray()[0, 0]
    except (av.FFmpegError, ValueError):
        return None
    return int(r), int(g), int(b)


def parse_background(spec: str) -> Background:
    """``blur``/``blur:STRENGTH``, an image or video file, or a colour (name, #hex). Opens files now."""
    text = spec.strip()
    if text == "blur" or text.startswith("blur:"):
        try:
            return BlurBackground(float(text[5:]) if text.startswith("blur:") else 20.0)
        except ValueError:
            raise ConfigError(f"{spec!r}: blur strength must be a number, e.g. blur:20") from None
    path = Path(text)
    if path.is_file():
        try:
            kind = probe(path)  # by content: any image or video FFmpeg reads
        except MediaError as e:
            raise MediaError(f"background {e}") from None
        return ImageBackground(path) if kind is MediaKind.IMAGE else VideoBackground(path)
    rgb = parse_color(text)
    if rgb is not None:
        return ColorBackground(rgb, text)
    if path.suffix or "/" in text:
        raise MediaError(f"background {text} does not exist: check the path")
    raise ConfigError(f"background {text!r} is not a colour (name or #RRGGBB), an image or video file, "
                      "or blur[:strength]")
