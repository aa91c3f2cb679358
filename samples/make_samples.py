"""Render u2video's demo material (ours, free to use): a still image to try the CLI on.

    python samples/make_samples.py            # writes samples/demo/still.png
    u2video matte samples/demo/still.png -o still_cutout.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "demo")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    still = args.out / "still.png"
    cv2.imwrite(str(still), cv2.cvtColor(render_still(), cv2.COLOR_RGB2BGR))
    print(f"wrote {still}")


if __name__ == "__main__":
    main()
