"""The matte step's cost (smoothing, refinement, hold: ``alpha.MatteStage`` with the defaults) on
real frames, and whether a change kept its output.

60 frames (30 each of walk.mkv and book.mkv in ../shared/media, scaled to 640x480) and u2netp's
predictions for them (at 320², fixed normalisation; computed once and cached in the system's
temporary folder) go through a MatteStage on one thread, as the CPU frame loop runs it; the
best of four passes is printed in CPU ms a frame. ``--save F`` keeps the mattes, ``--compare F``
prints the largest difference from mattes saved before (in 1/255).

    U2NET_HOME=<models> python benchmarks/matte_step.py [--save before.pt | --compare before.pt]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import av
import cv2
import numpy as np
import torch

from u2video.alpha import MatteStage
from u2video.config import DeviceConfig, DeviceKind, MatteConfig, ModelConfig, Normalization

MEDIA = Path(__file__).resolve().parents[1].parent / "shared" / "media"
CACHE = Path(tempfile.gettempdir()) / "u2video-matte-step-inputs.pt"


def inputs() -> tuple[torch.Tensor, torch.Tensor]:
    """frames [60,480,640,3] uint8 and predictions [60,1,320,320]."""
    if CACHE.exists():
        return torch.load(CACHE)
    from u2video.segmenter import Segmenter

    segmenter = Segmenter.from_config(ModelConfig("u2netp", 320, Normalization.FIXED), DeviceConfig(DeviceKind.CPU))
    frames = []
    for name in ("walk.mkv", "book.mkv"):
        with av.open(str(MEDIA / name)) as container:
            for i, frame in enumerate(container.decode(video=0)):
                if i == 30:
                    break
                frames.append(cv2.resize(frame.to_ndarray(format="rgb24"), (640, 480), interpolation=cv2.INTER_AREA))
    stacked = torch.from_numpy(np.stack(frames))
    preds = torch.cat([segmenter.predict_lowres(stacked[i:i + 1]) for i in range(len(frames))])
    torch.save((stacked, preds), CACHE)
    return stacked, preds


def run(frames: torch.Tensor, preds: torch.Tensor) -> torch.Tensor:
    stage = MatteStage(MatteConfig())
    out = []
    for i in range(frames.shape[0]):
        _, alpha, keys = stage.push(frames[i:i + 1], preds[i:i + 1], [i])
        out += list(alpha) if keys else []
    out += list(stage.flush()[1])
    return torch.stack(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--save", type=Path)
    parser.add_argument("--compare", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)  # as in the CPU frame loop, where the network has the cores
    cv2.setNumThreads(1)
    frames, preds = inputs()
    run(frames, preds)  # warm-up
    times = []
    for _ in range(4):
        start = time.process_time()
        alpha = run(frames, preds)
        times.append(1000 * (time.process_time() - start) / frames.shape[0])
    print(f"matte step: {min(times):.1f} CPU ms a 640x480 frame (best of 4; all: "
          f"{', '.join(f'{t:.1f}' for t in times)})")
    if args.save:
        torch.save(alpha, args.save)
    if args.compare:
        diff = (alpha - torch.load(args.compare)).abs()
        print(f"against {args.compare}: max |Δα| {255 * diff.max().item():.4f}/255, mean {255 * diff.mean().item():.5f}/255")


if __name__ == "__main__":
    main()
