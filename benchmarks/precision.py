"""How far each --precision's prediction is from fp32's, on the official U²-Net test images.

    U2NET_HOME=../shared/models python benchmarks/precision.py [--device cpu|cuda] [--size 320]

For every image of ../shared/reference/u2net_official/images: the mean and max |Δ| of the
network's 0..1 prediction (u2netp, fixed normalisation) against PyTorch fp32 on the same device,
and the IoU of the masks at 0.5.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import torch

from u2video.config import DeviceConfig, DeviceKind, ModelConfig, Normalization, Precision, Runtime
from u2video.segmenter import Segmenter

IMAGES = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "u2net_official" / "images"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--size", type=int, default=320, help="the network's input size")
    parser.add_argument("--images", type=Path, default=IMAGES)
    args = parser.parse_args()
    paths = sorted(p for p in args.images.iterdir() if p.suffix.lower() in (".jpg", ".png"))
    if not paths:
        print(f"precision: no images in {args.images}", file=sys.stderr)
        return 1
    model, kind = ModelConfig("u2netp", args.size, Normalization.FIXED), DeviceKind(args.device)
    reference = Segmenter.from_config(model, DeviceConfig(kind, Precision.FP32, runtime=Runtime.TORCH))
    rows = ["| precision | image | mean abs diff | max abs diff | IoU at 0.5 |", "|---|---|---|---|---|"]
    for precision in (Precision.FP16, Precision.BF16):
        segmenter = Segmenter.from_config(model, DeviceConfig(kind, precision, runtime=Runtime.TORCH))
        for path in paths:
            rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
            frames = torch.from_numpy(rgb)[None]
            want, got = reference.predict_lowres(frames), segmenter.predict_lowres(frames)
            diff = (got - want).abs()
            a, b = got > 0.5, want > 0.5
            iou = float((a & b).sum()) / max(1.0, float((a | b).sum()))
            rows.append(f"| {precision.value} | {path.name} | {float(diff.mean()):.4f} | {float(diff.max()):.3f} | {iou:.4f} |")
    print(f"u2netp at {args.size}², {args.device}, against PyTorch fp32 on the same device")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
