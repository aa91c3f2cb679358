"""What `u2video tune` gains, and what it costs: on the quality harness's ground-truth clips
(``benchmarks/quality.py``: a reference photo with its solid official alpha moving over a real
room, H.264), the true alpha of 5 frames spread over each clip is given to ``tune`` as the
corrected masks; the base and the tuned model then matte the whole clip with u2video's defaults
(smoothing, refinement, crop pass) and MAD (x1e3) is scored on the clip's other frames.

    U2NET_HOME=../shared/models python benchmarks/tune.py [--sets standard] [--images 10] [--steps 100]
        [--json FILE]

The clip handed to ``tune`` is the harness's decoded frames stored losslessly (FFV1), so ``tune``
and the mattes see the same pixels; the masks are the true alpha as 8-bit grey PNGs.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import av
import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality import REFERENCE, SHARED, clip_specs, crop_pass, ground_truth_clip, mattes, predict  # noqa: E402

import u2video  # noqa: E402
from u2video.config import DeviceConfig, DeviceKind, MatteConfig, ModelConfig, Normalization, TuneConfig  # noqa: E402
from u2video.segmenter import Segmenter  # noqa: E402

MASKS = 5


def write_lossless(frames: np.ndarray, path: Path) -> Path:
    """[T,H,W,3] uint8 RGB -> an FFV1 .mkv that decodes to exactly these pixels."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=25)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "bgr0"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))
    return path


def default_mattes(model: str, frames: np.ndarray, input_size: int) -> np.ndarray:
    """The defaults' matte of every frame with ``model``: [T,H,W] f32 0..1 (network, crop pass,
    smoothing and refinement, as ``u2video matte`` runs them on the CPU)."""
    segmenter = Segmenter.from_config(ModelConfig(model, input_size, Normalization.FIXED), DeviceConfig(DeviceKind.CPU))
    preds, _ = predict(segmenter, frames)
    cropped, _, _ = crop_pass(segmenter, frames, preds)
    return mattes(frames, MatteConfig(), cropped)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", default="standard", help="ground-truth sets of benchmarks/quality.py")
    parser.add_argument("--images", type=int, default=10, help="clips per set")
    parser.add_argument("--first", type=int, default=0, help="skip this many clips of the list")
    parser.add_argument("--steps", type=int, default=TuneConfig.steps)
    parser.add_argument("--lr", type=float, default=TuneConfig.lr)
    parser.add_argument("--input-size", type=int, default=TuneConfig.input_size)
    parser.add_argument("--paste", action="store_true")
    parser.add_argument("--json", type=Path, help="write every figure to this file")
    opts = parser.parse_args()
    if not (SHARED / "media").is_dir() or not REFERENCE.is_dir():
        sys.exit("needs ../shared/media and ../shared/reference beside the project")
    config = TuneConfig(steps=opts.steps, lr=opts.lr, input_size=opts.input_size, paste=opts.paste)
    print(f"tune {asdict(config)}; torch threads {torch.get_num_threads()}; {MASKS} masks per clip; MAD x1e3 on "
          "the other frames, u2video defaults", flush=True)
    results: dict = {"config": asdict(config), "clips": {}}
    specs = clip_specs(opts.images, opts.sets.split(","))[opts.first:]
    for spec in specs:
        frames, truth, _, _ = ground_truth_clip(spec)
        chosen = sorted({round(x) for x in np.linspace(0, len(frames) - 1, MASKS)})
        others = [t for t in range(len(frames)) if t not in chosen]
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            clip = write_lossless(frames, folder / "clip.mkv")
            (folder / "masks").mkdir()
            for t in chosen:
                cv2.imwrite(str(folder / "masks" / f"{t:05d}.png"), np.round(truth[t] * 255).astype(np.uint8))
            start = time.perf_counter()
            tuned = u2video.tune(clip, folder / "masks", folder / "tuned.pth", config, DeviceKind.CPU)
            seconds = time.perf_counter() - start
            base = default_mattes("u2netp", frames, config.input_size)
            after = default_mattes(str(tuned.path), frames, config.input_size)
        mad_base = float(np.abs(base[others] - truth[others]).mean() * 1e3)
        mad_tuned = float(np.abs(after[others] - truth[others]).mean() * 1e3)
        p = tuned.provenance
        results["clips"][f"{spec.group} {spec.name}"] = {
            "masks": chosen, "MAD base": mad_base, "MAD tuned": mad_tuned, "tune_seconds": seconds,
            "steps_run": p["steps_run"], "best_step": p["best_step"], "validation_mad": p["losses"]["validation_mad"]}
        print(f"  {spec.group:<8} {spec.name:<28} MAD {mad_base:.2f} -> {mad_tuned:.2f} "
              f"({(mad_tuned / mad_base - 1) * 100:+.0f}%), tune {seconds:.0f} s ({p['steps_run']} steps, best at "
              f"{p['best_step']})", flush=True)
    rel = [c["MAD tuned"] / c["MAD base"] - 1 for c in results["clips"].values()]
    times = [c["tune_seconds"] for c in results["clips"].values()]
    results["summary"] = {"MAD change mean": float(np.mean(rel)), "MAD change worst": float(max(rel)),
                          "clips worse": int(sum(r > 0 for r in rel)), "tune seconds mean": float(np.mean(times)),
                          "tune seconds max": float(max(times))}
    print(f"\nMAD tuned vs base: mean {np.mean(rel) * 100:+.0f}%, worst clip {max(rel) * 100:+.0f}%, "
          f"{sum(r > 0 for r in rel)} of {len(rel)} clips worse; tune took {np.mean(times):.0f} s on average "
          f"(max {max(times):.0f} s) on this machine")
    if opts.json:
        opts.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
