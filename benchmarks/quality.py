"""Matte quality, per frame vs u2video's defaults: the numbers behind the README's table.

1. Ground-truth clips: each official U²-Net test image (../shared/reference) is the foreground,
   with the official U²-Net output as its alpha, moving over a real background (a frame of
   ../shared/media/one-by-one-person-detection.mp4) — slowly, then in fast jumps — composited,
   then encoded as H.264 and decoded again like real footage. Scored with the video-matting
   metrics used on VideoMatte240K (as in RobustVideoMatting's evaluation): MAD and MSE (×1e3),
   Grad (Gaussian-derivative gradient error, σ=1.4, ÷1e3) and dtSSD (×1e2), at full resolution.
2. Flicker index on the real static-camera webcam clips in ../shared/media: the mean
   |α_t − α_{t−1}| (×1e3) over pixels whose blurred image changed by less than 2/255.

Each variant reuses the same network predictions, so the table compares only the matte step:
per frame (no smoothing, bilinear upsampling), the defaults (smoothing), refinement only
(--smooth 0 --refine), and both (--refine).

    U2NET_HOME=../shared/models python benchmarks/quality.py [--input-size 320]
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import av
import cv2
import numpy as np
import torch

from u2video.alpha import MatteStage
from u2video.config import DeviceConfig, DeviceKind, MatteConfig, ModelConfig, Normalization
from u2video.segmenter import Segmenter

SHARED = Path(__file__).resolve().parents[2] / "shared"
REFERENCE = SHARED / "reference" / "u2net_official"
WEBCAM = ["book.mkv", "help.mkv", "please.mkv", "walk.mkv"]
VARIANTS = {"per-frame": MatteConfig(0, False), "defaults": MatteConfig(),
            "refine": MatteConfig(0, True), "both": MatteConfig(refine=True)}


def decode(path_or_bytes) -> np.ndarray:
    """All frames as [T,H,W,3] uint8 RGB."""
    with av.open(path_or_bytes) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def ground_truth_clip(image: Path, frames: int = 40, size=(360, 640)) -> tuple[np.ndarray, np.ndarray]:
    """(decoded H.264 frames [T,H,W,3] uint8, true alpha [T,H,W] f32 0..1) for one test image."""
    fg = cv2.cvtColor(cv2.imread(str(image)), cv2.COLOR_BGR2RGB)
    alpha = cv2.imread(str(REFERENCE / "u2net_results" / f"{image.stem}.png"), cv2.IMREAD_GRAYSCALE)
    height, width = size
    scale = 0.7 * min(height / fg.shape[0], width / fg.shape[1])
    fw, fh = int(fg.shape[1] * scale), int(fg.shape[0] * scale)
    fg = cv2.resize(fg, (fw, fh), interpolation=cv2.INTER_AREA).astype(np.float32)
    alpha = cv2.resize(alpha, (fw, fh), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    with av.open(str(SHARED / "media" / "one-by-one-person-detection.mp4")) as container:
        bg = next(container.decode(video=0)).to_ndarray(format="rgb24")  # the empty room
    bg = cv2.resize(bg, (width, height), interpolation=cv2.INTER_AREA).astype(np.float32)
    buffer, truth = io.BytesIO(), []
    with av.open(buffer, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "20"}
        x = 10.0
        for t in range(frames):
            x += 2 if t < frames // 2 else (40 if t % 4 == 0 else 0)  # slow, then fast jumps
            x0, y0 = int(x) % max(1, width - fw), (height - fh) // 2
            a = np.zeros((height, width), np.float32)
            a[y0:y0 + fh, x0:x0 + fw] = alpha
            f = np.zeros((height, width, 3), np.float32)
            f[y0:y0 + fh, x0:x0 + fw] = fg
            frame = f * a[..., None] + bg * (1 - a[..., None])
            out.mux(stream.encode(av.VideoFrame.from_ndarray(np.clip(frame, 0, 255).astype(np.uint8), format="rgb24")))
            truth.append(a)
        out.mux(stream.encode(None))
    buffer.seek(0)
    return decode(buffer), np.stack(truth)


def mattes(frames: np.ndarray, config: MatteConfig, preds: torch.Tensor) -> tuple[np.ndarray, float]:
    """The matte step over precomputed predictions: alpha [T,H,W] f32, and its seconds per frame."""
    stage, out = MatteStage(config), []
    start = time.perf_counter()
    for i in range(0, len(frames), 4):
        _, alpha, keys = stage.push(torch.from_numpy(frames[i:i + 4]), preds[i:i + 4], list(range(i, min(i + 4, len(frames)))))
        out += list(alpha[:, 0].numpy()) if keys else []  # the first frames wait for their window
    _, alpha, keys = stage.flush()
    out += list(alpha[:, 0].numpy()) if keys else []
    return np.stack(out), (time.perf_counter() - start) / len(frames)


def predict(segmenter: Segmenter, frames: np.ndarray) -> tuple[torch.Tensor, float]:
    start = time.perf_counter()
    preds = torch.cat([segmenter.predict_lowres(torch.from_numpy(frames[i:i + 4])) for i in range(0, len(frames), 4)])
    return preds, (time.perf_counter() - start) / len(frames)


def gradient(a: np.ndarray) -> np.ndarray:
    blurred = cv2.GaussianBlur(a, (0, 0), 1.4)
    gy, gx = np.gradient(blurred)
    return np.sqrt(gx ** 2 + gy ** 2)


def scores(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    mad = np.abs(pred - truth).mean() * 1e3
    mse = ((pred - truth) ** 2).mean() * 1e3
    grad = np.mean([((gradient(p) - gradient(t)) ** 2).sum() / 1e3 for p, t in zip(pred, truth)])
    dt = np.sqrt((((pred[1:] - pred[:-1]) - (truth[1:] - truth[:-1])) ** 2).mean(axis=(1, 2))).mean() * 1e2
    return {"MAD": mad, "MSE": mse, "Grad": grad, "dtSSD": dt}


def flicker_index(alpha: np.ndarray, frames: np.ndarray) -> float:
    grey = np.stack([cv2.GaussianBlur(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY).astype(np.float32), (0, 0), 2) for f in frames])
    still = np.abs(grey[1:] - grey[:-1]) < 2.0
    return float(np.abs(alpha[1:] - alpha[:-1])[still].mean() * 1e3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input-size", type=int, default=320)
    parser.add_argument("--images", type=int, default=4, help="how many reference images become clips")
    opts = parser.parse_args()
    if not (SHARED / "media").is_dir() or not REFERENCE.is_dir():
        sys.exit("needs ../shared/media and ../shared/reference beside the project")
    segmenter = Segmenter.from_config(ModelConfig("u2netp", opts.input_size, Normalization.FIXED),
                                      DeviceConfig(DeviceKind.CPU))
    print(f"{segmenter.describe()}; variants: " + ", ".join(f"{k} (smooth {v.smooth}, refine {v.refine})"
                                                          for k, v in VARIANTS.items()))
    print("\nground-truth clips (40 frames, 640x360, H.264): MAD MSE Grad dtSSD, lower is better")
    costs: dict[str, list[float]] = {k: [] for k in VARIANTS}
    network: list[float] = []
    for image in sorted((REFERENCE / "images").iterdir())[:opts.images]:
        frames, truth = ground_truth_clip(image)
        preds, net_time = predict(segmenter, frames)
        network.append(net_time)
        for name, config in VARIANTS.items():
            alpha, cost = mattes(frames, config, preds)
            costs[name].append(cost)
            s = scores(alpha, truth)
            print(f"  {image.stem:<10} {name:<10} " + " ".join(f"{k} {v:7.2f}" for k, v in s.items()), flush=True)
    print("\nflicker index on ../shared/media webcam clips (x1e3, lower is steadier)")
    for clip in WEBCAM:
        frames = decode(str(SHARED / "media" / clip))
        preds, net_time = predict(segmenter, frames)
        network.append(net_time)
        line = []
        for name, config in VARIANTS.items():
            alpha, cost = mattes(frames, config, preds)
            costs[name].append(cost)
            line.append(f"{name} {flicker_index(alpha, frames):6.2f}")
        print(f"  {clip:<11} " + "  ".join(line), flush=True)
    print(f"\ntime per frame on this machine: network {np.mean(network) * 1e3:.0f} ms; matte step: "
          + ", ".join(f"{k} {np.mean(v) * 1e3:.1f} ms" for k, v in costs.items()))


if __name__ == "__main__":
    main()
