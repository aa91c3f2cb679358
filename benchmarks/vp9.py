"""VP9 with alpha (the webm-alpha preset): encoder settings against speed, size and quality, on
frames of the real clips in ../shared/media with an alpha ramp, written through u2video's own
``VideoSink`` (RGBA in, the colour conversion and the alpha's second encode included); with
``--preset webm-replace`` the same for VP9 without alpha.

    python benchmarks/vp9.py [--frames 96] [--height 720] [--preset webm-alpha|webm-replace]

For each setting: frames/s on this machine's cores, KiB per frame, colour PSNR (decoded RGB
against the source, min and mean over frames) and alpha PSNR (libvpx's decoder, which keeps
the alpha plane).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from u2video.media.writers import VideoSink
from u2video.presets import load_preset

MEDIA = Path(__file__).resolve().parents[1].parent / "shared" / "media"

SETTINGS = {  # each sets deadline and cpu-used itself, whatever the preset has
    "good, cpu-used 4 (webm-replace's)": {"deadline": "good", "cpu-used": "4"},
    "good, cpu-used 4, tile-columns 2": {"deadline": "good", "cpu-used": "4", "tile-columns": "2"},
    "good, cpu-used 5": {"deadline": "good", "cpu-used": "5"},
    "realtime, cpu-used 5 (webm-alpha's)": {"deadline": "realtime", "cpu-used": "5"},
    "realtime, cpu-used 7": {"deadline": "realtime", "cpu-used": "7"},
    "realtime, cpu-used 5, crf + 3": {"deadline": "realtime", "cpu-used": "5", "crf": "+3"},
}


def clip_frames(count: int, height: int | None) -> list[np.ndarray]:
    """``count`` consecutive frames from each clip in turn (consecutive: VP9 predicts between
    frames, so spaced-out frames would measure the wrong thing)."""
    frames: list[np.ndarray] = []
    paths = sorted(MEDIA.glob("*.mkv"))
    for path in paths:
        with av.open(str(path)) as container:
            for i, frame in enumerate(container.decode(video=0)):
                if i >= count // len(paths):
                    break
                rgb = frame.to_ndarray(format="rgb24")
                if height:
                    h, w = rgb.shape[:2]
                    rgb = cv2.resize(rgb, (round(w * height / h) // 2 * 2, height), interpolation=cv2.INTER_AREA)
                frames.append(rgb)
    return frames


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(float) - b.astype(float)) ** 2)
    return float(10 * np.log10(255**2 / max(mse, 1e-12)))


def measure(rgba: list[np.ndarray], options: dict[str, str], preset: str) -> dict:
    fmt = load_preset(preset).format
    options = dict(options)
    if options.get("crf", "").startswith("+"):
        options["crf"] = str(int(fmt.codec_options["crf"]) + int(options["crf"]))
    fmt = replace(fmt, codec_options={**fmt.codec_options, **options})
    h, w = rgba[0].shape[:2]
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "out.webm"
        start = time.perf_counter()
        sink = VideoSink(out, fmt, w, h, Fraction(25), Fraction(1, 25))
        for i, pixels in enumerate(rgba):
            sink.write(pixels, i)
        sink.finish()
        fps = len(rgba) / (time.perf_counter() - start)
        size = out.stat().st_size
        decoder = av.CodecContext.create("libvpx-vp9", "r")  # FFmpeg's own vp9 decoder drops alpha
        with av.open(str(out)) as container:
            decoded = [f.to_ndarray(format="rgba") for p in container.demux(video=0) if p.size
                       for f in decoder.decode(p)]
    colour = [psnr(d[..., :3], s[..., :3]) for d, s in zip(decoded, rgba)]
    alpha = [psnr(d[..., 3], s[..., 3]) for d, s in zip(decoded, rgba)] if fmt.alpha else [float("nan")]
    return {"fps": fps, "kib_per_frame": size / len(rgba) / 1024, "colour_min": min(colour),
            "colour_mean": float(np.mean(colour)), "alpha_mean": float(np.mean(alpha)), "frames": len(decoded)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=96)
    parser.add_argument("--height", type=int, default=720, help="scale the frames to this height (0: as they are)")
    parser.add_argument("--preset", default="webm-alpha", choices=["webm-alpha", "webm-replace"])
    args = parser.parse_args()
    frames = clip_frames(args.frames, args.height or None)
    if not frames:
        print(f"vp9: no clips in {MEDIA}", file=sys.stderr)
        return 1
    h, w = frames[0].shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    alpha = (np.clip(1.5 - np.hypot((xx - w / 2) / (w / 4), (yy - h / 2) / (h / 3)), 0, 1) * 255).astype(np.uint8)
    rgba = [np.dstack([rgb, alpha]) if args.preset == "webm-alpha" else rgb for rgb in frames]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    crf = load_preset(args.preset).format.codec_options["crf"]
    print(f"{args.preset}: {len(rgba)} frames ({args.frames // 4} consecutive from each of 4 clips), {w}x{h}, "
          f"{cores} cores, crf {crf} unless said")
    print("| setting | frames/s | KiB/frame | colour PSNR min / mean | alpha PSNR mean |")
    print("|---|---|---|---|---|")
    for name, options in SETTINGS.items():
        r = measure(rgba, options, args.preset)
        assert r["frames"] == len(rgba), r
        print(f"| {name} | {r['fps']:.1f} | {r['kib_per_frame']:.1f} | {r['colour_min']:.2f} / "
              f"{r['colour_mean']:.2f} dB | {'n/a' if np.isnan(r['alpha_mean']) else format(r['alpha_mean'], '.2f') + ' dB'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
