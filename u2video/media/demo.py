"""Demo footage rendered from code (ours, free to use): a ball rolling across a table, as
H.264 with an optional tone. ``u2video bench`` runs on it when no video is given, and
``samples/make_samples.py`` writes it for the README's first commands."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def render_still(height: int = 480, width: int = 640, seed: int = 7) -> np.ndarray:
    """[H,W,3] uint8 RGB: a shaded ball and a box on a table, in front of a soft wall."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.zeros((height, width, 3), np.float32)
    horizon = int(height * 0.62)
    img[:horizon] = np.stack([170 + 30 * xx[:horizon] / width, 180 + 20 * yy[:horizon] / height,
                              200 * np.ones_like(xx[:horizon])], -1)  # wall
    img[horizon:] = np.stack([120 + 20 * yy[horizon:] / height, 90 + 10 * xx[horizon:] / width,
                              60 * np.ones_like(xx[horizon:])], -1)  # wooden table
    img[horizon:] += 10 * np.sin(xx[horizon:, :, None] / 7.0 + yy[horizon:, :, None] / 40.0)  # grain

    cx, cy, r = width * 0.45, height * 0.52, height * 0.22
    shadow = ((xx - cx - 20) / (r * 1.1)) ** 2 + ((yy - horizon - r * 0.55) / (r * 0.25)) ** 2 < 1
    img[shadow] *= 0.55
    dist = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2)
    ball = dist < r
    light = np.clip(1.15 - np.sqrt((xx - cx + r * 0.35) ** 2 + (yy - cy + r * 0.4) ** 2) / (1.6 * r), 0.25, 1.0)
    img[ball] = np.stack([225 * light, 40 * light, 45 * light], -1)[ball]

    x0, y0 = int(width * 0.7), int(horizon - height * 0.12)
    img[y0:horizon + 10, x0:x0 + 90] = (40, 90, 170)  # a blue box beside it
    img[y0:y0 + 12, x0:x0 + 90] = (70, 120, 200)
    img += rng.normal(0, 3, img.shape)  # sensor noise
    return np.clip(img, 0, 255).astype(np.uint8)


def objects_mask(height: int = 480, width: int = 640, frame: int = 0) -> np.ndarray:
    """[H,W] bool: where the ball and the box are in ``render_still`` (the ball's shadow is not
    an object), in frame ``frame`` of ``write_clip``'s roll: the masks a user who wants both
    objects would paint for ``u2video tune``."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    objects = np.sqrt((xx - width * 0.45) ** 2 + (yy - height * 0.52) ** 2) < height * 0.22
    horizon = int(height * 0.62)
    x0, y0 = int(width * 0.7), int(horizon - height * 0.12)
    objects[y0:horizon + 10, x0:x0 + 90] = True  # as render_still draws the box
    return np.roll(objects, _roll(width, frame), axis=1)


def _roll(width: int, frame: int) -> int:
    return int(width * 0.02 * frame)


def write_clip(path: Path, frames: int = 75, size: tuple[int, int] = (360, 480), rate: int = 25,
               audio: bool = True, rotation: int = 0, pix_fmt: str = "yuv420p",
               timestamps: Sequence[float] | None = None) -> Path:
    """A ball rolling across the still, as H.264 (``pix_fmt`` yuv420p10le for 10-bit), with a
    440 Hz stereo AAC tone of the same length when ``audio``. ``size`` is (height, width) as
    stored; ``rotation`` tags the stream to be turned that many degrees counter-clockwise for
    display (as phones do). ``timestamps`` (seconds, one per frame) make it variable-rate or
    start late; by default frame i is at i/rate."""
    height, width = size
    still = render_still(height, width)
    times = list(timestamps) if timestamps is not None else [i / rate for i in range(frames)]
    time_base = Fraction(1, 1000) if timestamps is not None else Fraction(1, rate)
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=rate)
        video.width, video.height, video.pix_fmt = width, height, pix_fmt
        video.codec_context.time_base = time_base
        if rotation:
            video.set_display_rotation(rotation)
        sound = container.add_stream("aac", rate=44100) if audio else None
        if sound is not None:
            sound.layout = "stereo"
        for i, t in enumerate(times):
            frame = av.VideoFrame.from_ndarray(np.roll(still, _roll(width, i), axis=1), format="rgb24")
            frame.pts, frame.time_base = round(t / time_base), time_base
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        if sound is not None:
            end = times[-1] + 1 / rate
            samples = np.arange(round(times[0] * 44100), round(end * 44100))
            tone = (0.3 * np.sin(2 * np.pi * 440 * samples / 44100)).astype(np.float32)
            for k in range(0, len(tone), 1024):
                chunk = tone[k:k + 1024]
                frame = av.AudioFrame.from_ndarray(np.stack([chunk, chunk]), format="fltp", layout="stereo")
                frame.sample_rate, frame.pts = 44100, int(samples[0]) + k
                container.mux(sound.encode(frame))
            container.mux(sound.encode(None))
    return path
