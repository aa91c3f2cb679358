"""`--precision int8` against fp32: per-frame mattes and network speed (issue 15).

1. ``--make``: builds the INT8 u2netp the way the README says, in a store of its own (``--store``,
   with rembg's u2netp.onnx linked in from $U2NET_HOME): ``u2video models quantize u2netp
   --calibrate <the clips of ../shared/media>`` (320², 150 frames, accuracy control, max IoU drop
   0.01), timed. Without ``--make`` the INT8 network already in ``--store`` is measured.
2. Mattes: u2video's per-frame mattes (the network at 320², upsampled to the frame; no temporal
   smoothing, no refinement) with INT8 and with fp32 (OpenVINO; onnxruntime's agree within 1e-5)
   on the official U²-Net test images of ../shared/reference and on frames of ../shared/media that
   the calibration did not use (every 23rd from the 11th). Per image: mean |Δα| (α in 0..1) and
   the IoU of α > 0.5; the mean and the worst, and the images below the targets.
3. Speed: the network stage as the frame loop runs it (a frame per core in flight), ms a frame,
   INT8 against fp32, in alternating rounds.

    U2NET_HOME=../shared/models python benchmarks/int8.py --store /tmp/int8-store [--make] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import av
import numpy as np
import torch

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
MEDIA = SHARED / "media"
IMAGES = SHARED / "reference" / "u2net_official" / "images"


def make(store: Path) -> float:
    from u2video.model.quantize import QuantizeConfig, quantize
    from u2video.terminal import TerminalReporter

    clips = sorted(p for p in MEDIA.iterdir() if p.suffix in (".mkv", ".mp4"))
    print(f"u2video models quantize u2netp --calibrate {' '.join(p.name for p in clips)}  (store {store})")
    start = time.perf_counter()
    made = quantize("u2netp", clips, QuantizeConfig(), TerminalReporter())
    seconds = time.perf_counter() - start
    print(f"made in {seconds / 60:.1f} min; its own check: {made.provenance['validation']}")
    return seconds


def evaluation_frames(provenance: dict) -> list[tuple[str, np.ndarray]]:
    from u2video.media.images import read_image

    used = {m["file"]: set(m.get("indices", [])) for m in provenance["calibration"]["media"]}
    out = [(p.name, read_image(p)) for p in sorted(IMAGES.iterdir())]
    for clip in sorted(p for p in MEDIA.iterdir() if p.suffix in (".mkv", ".mp4")):
        with av.open(str(clip)) as container:
            for i, frame in enumerate(container.decode(video=0)):
                if i % 23 == 11 and i not in used.get(clip.name, ()):
                    out.append((f"{clip.name}#{i}", frame.to_ndarray(format="rgb24")))
    return out


def mattes(segmenter, frames: list[tuple[str, np.ndarray]]) -> list[np.ndarray]:
    return [segmenter(torch.from_numpy(rgb)[None])[0, 0].numpy() for _, rgb in frames]


def speed(segmenter, frame: np.ndarray, count: int) -> float:
    batch = torch.from_numpy(frame)[None]
    for _ in segmenter.predict_batches((batch, None) for _ in range(2 * segmenter.workers)):
        pass  # compile, warm up
    start = time.perf_counter()
    for _ in segmenter.predict_batches((batch, None) for _ in range(count)):
        pass
    return (time.perf_counter() - start) / count * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", type=Path, required=True, help="a store for the INT8 network (made if missing)")
    parser.add_argument("--make", action="store_true", help="quantize first (about 15-25 min on 2 cores)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--frames", type=int, default=24, help="frames per speed round")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    source = Path(os.environ.get("U2NET_HOME", SHARED / "models")) / "u2netp.onnx"
    args.store.mkdir(parents=True, exist_ok=True)
    if not (args.store / "u2netp.onnx").exists():
        (args.store / "u2netp.onnx").symlink_to(source.resolve())
    os.environ["U2NET_HOME"] = str(args.store)

    from u2video.config import DeviceConfig, ModelConfig, Normalization, Precision, Runtime
    from u2video.model.quantize import iou, load_int8
    from u2video.segmenter import Segmenter

    made_s = make(args.store) if args.make else None
    int8_model = load_int8("u2netp")
    model = ModelConfig(input_size=320, normalization=Normalization.FIXED)
    frames = evaluation_frames(int8_model.provenance)
    int8 = Segmenter.from_config(model, DeviceConfig(precision=Precision.INT8))
    fp32 = Segmenter.from_config(model, DeviceConfig(runtime=Runtime.OPENVINO))

    a, b = mattes(int8, frames), mattes(fp32, frames)
    rows = []
    for (name, _), x, y in zip(frames, a, b):
        rows.append({"image": name, "mean_abs_diff": float(np.abs(x - y).mean()), "iou": iou(x, y)})
    diffs, ious = [r["mean_abs_diff"] for r in rows], [r["iou"] for r in rows]
    print(f"\nper-frame mattes, INT8 vs fp32, {len(rows)} images ({sum(not '#' in r['image'] for r in rows)} official "
          f"test images, {sum('#' in r['image'] for r in rows)} clip frames not used to calibrate):")
    print(f"mean |Δα| mean {np.mean(diffs):.4f} max {np.max(diffs):.4f}; IoU mean {np.mean(ious):.4f} min {np.min(ious):.4f}")
    worse = [r for r in rows if r["mean_abs_diff"] > 0.01 or r["iou"] < 0.98]
    print(f"{len(worse)} of {len(rows)} below the per-image targets (mean |Δα| <= 0.01, IoU >= 0.98):")
    for r in sorted(worse, key=lambda r: r["iou"]):
        print(f"  {r['image']}: mean |Δα| {r['mean_abs_diff']:.4f}, IoU {r['iou']:.4f}")

    frame = frames[0][1]
    timings: dict[str, list[float]] = {"fp32 (openvino)": [], "int8 (openvino)": []}
    for _ in range(args.rounds):
        timings["fp32 (openvino)"].append(speed(fp32, frame, args.frames))
        timings["int8 (openvino)"].append(speed(int8, frame, args.frames))
    print(f"\nnetwork stage at 320², {fp32.workers} frames in flight, {args.rounds} alternating rounds of {args.frames}:")
    print("| network | ms a frame min / median / max |")
    print("|---|---|")
    for name, ms in timings.items():
        print(f"| {name} | {min(ms):.0f} / {np.median(ms):.0f} / {max(ms):.0f} |")
    ratio = np.median(timings["fp32 (openvino)"]) / np.median(timings["int8 (openvino)"])
    print(f"INT8 is {ratio:.2f}x fp32 (medians)")
    if args.json:
        args.json.write_text(json.dumps({"made_seconds": made_s, "provenance": int8_model.provenance, "rows": rows,
                                         "timings_ms": timings, "speedup": ratio}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
