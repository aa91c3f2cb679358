"""Render u2video's demo material (ours, free to use): a short clip with sound, a still, and a
background image, to try the CLI on right after installing.

    python samples/make_samples.py            # writes samples/demo/{clip.mp4,still.png,backdrop.png}
    u2video matte samples/demo/clip.mp4 -o clip.mov
    u2video replace samples/demo/clip.mp4 -o beach.mp4 --background samples/demo/backdrop.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from u2video.media.demo import render_still, write_clip  # noqa: F401  (the clip renderer lives in the library)


def render_backdrop(height: int = 720, width: int = 1280) -> np.ndarray:
    """[H,W,3] uint8 RGB: a sunset-like sky over a sea, to composite onto."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    t = yy / height
    sky = np.stack([250 - 60 * t, 150 + 60 * t, 90 + 140 * t], -1)
    sea = np.stack([30 + 20 * t, 90 + 40 * t, 140 + 30 * t], -1) + 8 * np.sin(xx / 11 + yy / 3)[..., None]
    img = np.where((yy < height * 0.6)[..., None], sky, sea)
    sun = (xx - width * 0.7) ** 2 + (yy - height * 0.45) ** 2 < (height * 0.08) ** 2
    img[sun] = (255, 230, 150)
    return np.clip(img, 0, 255).astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "demo")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    still, backdrop = args.out / "still.png", args.out / "backdrop.png"
    cv2.imwrite(str(still), cv2.cvtColor(render_still(), cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(backdrop), cv2.cvtColor(render_backdrop(), cv2.COLOR_RGB2BGR))
    clip = write_clip(args.out / "clip.mp4")
    for path in (clip, still, backdrop):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
