"""Live use on this machine: processed frames/s, drops and latency at each network input size,
and what the smaller sizes cost in quality.

1. Speed: the demo clip rendered at 640x480, 30 fps, 10 s, played at its real rate through
   ``u2video.live.run_live`` as ``u2video webcam`` runs it (newest frame, past-only matte
   step, blurred background), into an output that takes the frames and does nothing (a
   virtual camera's cost is a copy). For each input size and matte setting: processed fps,
   drop rate, latency from capture to output p50/p95.
2. Quality: the flicker index (benchmarks/quality.py: mean |α_t − α_{t−1}| ×1e3 where the
   blurred image is still) on the webcam clips in ../shared/media, every frame processed with
   the same live settings; and the mean |α − α₃₂₀| ×1e3 against per-frame mattes at 320², the
   network's trained size.
3. ``--picture PATH``: one frame of the demo clip, cut out at 320² per frame and with the live
   defaults on the CPU, side by side over grey (the README's samples/live-quality.png).

Run:  U2NET_HOME=/path/to/models python benchmarks/webcam.py [--sizes 320,256,192,160,128] [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import torch

from u2video.alpha import MatteStage
from u2video.api import LIVE_CPU_INPUT_SIZE, LIVE_MATTE
from u2video.backgrounds import parse_background
from u2video.compose import Compositor
from u2video.crop import LIVE_CROP, SubjectCrop
from u2video.config import Crop, DeviceConfig, DeviceKind, MatteConfig, ModelConfig, Normalization, Precision
from u2video.live import LiveStats, run_live
from u2video.media.demo import write_clip
from u2video.media.live import LiveSource
from u2video.progress import SilentReporter
from u2video.segmenter import Segmenter

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality import SHARED, WEBCAM, decode, flicker_index  # noqa: E402

SETTINGS = {"per-frame": MatteConfig(smooth=0, refine=False, crop=Crop.OFF),
            "smooth 3": MatteConfig(smooth=3, refine=False, crop=Crop.OFF),
            "smooth 3 + refine": MatteConfig(smooth=3, refine=True, crop=Crop.OFF),
            "smooth 3 + refine + crop": MatteConfig(smooth=3, refine=True, crop=Crop.AUTO)}


class Discard:
    def send(self, pixels, frame) -> None:
        pass

    def close(self, complete: bool) -> None:
        pass


PRECISION = Precision.AUTO  # --precision: int8 runs the store's INT8 network (`u2video models quantize`)


def segmenter(size: int, precision: Precision | None = None) -> Segmenter:
    return Segmenter.from_config(ModelConfig("u2netp", size, Normalization.FIXED),
                                 DeviceConfig(DeviceKind.CPU, precision=precision or PRECISION), workers=1)


def play_live(clip: Path, seg: Segmenter, config: MatteConfig, duration: float | None = None) -> LiveStats:
    """``clip`` played in real time through ``run_live`` as ``u2video webcam`` runs it: the
    newest frame, the past-only matte step, a blurred background, an output that does nothing."""
    backdrop = parse_background("blur")
    try:
        source = LiveSource(str(clip))
        crop = SubjectCrop(seg, source.height, source.width, LIVE_CROP) if config.crop is Crop.AUTO else None
        return run_live(source, seg, MatteStage(config, lookahead=False), Compositor(backdrop), [Discard()],
                        SilentReporter(), duration=duration, crop=crop)
    finally:
        backdrop.close()


def live_speed(clip: Path, size: int, config: MatteConfig) -> dict:
    stats = play_live(clip, segmenter(size), config)
    return {"processed_fps": stats.processed_fps, "drop_rate": stats.dropped / max(stats.captured, 1),
            "p50_ms": stats.latency_ms(50), "p95_ms": stats.latency_ms(95), "captured": stats.captured}


def predictions(frames: np.ndarray, seg: Segmenter, crop: Crop = Crop.OFF) -> list[torch.Tensor]:
    """The network's prediction for every frame, [1,1,S,S] each; with the crop pass as live use
    runs it (one pass a frame, the boxes from the frame before), [1,1,h,w] where it cropped."""
    cropper = SubjectCrop(seg, *frames.shape[1:3], LIVE_CROP) if crop is Crop.AUTO else None
    return [cropper.live(torch.from_numpy(frames[i:i + 1])) if cropper else seg.predict_lowres(torch.from_numpy(frames[i:i + 1]))
            for i in range(len(frames))]


def live_mattes(frames: np.ndarray, preds: list[torch.Tensor], config: MatteConfig) -> np.ndarray:
    """Every frame through the live matte step: [T,H,W] f32."""
    stage, out = MatteStage(config, lookahead=False), []
    for i in range(len(frames)):
        _, alpha, _ = stage.push(torch.from_numpy(frames[i:i + 1]), preds[i], [i])
        out.append(alpha[0, 0].numpy())
    return np.stack(out)


def picture(path: Path) -> None:
    """The last of 8 demo-clip frames cut out at 320² per frame and with the live defaults on the
    CPU (every frame through the matte step), side by side over grey."""
    with tempfile.TemporaryDirectory() as tmp:
        frames = decode(str(write_clip(Path(tmp) / "clip.mp4", 8, (480, 640), 30, audio=False)))
    panels = []
    for label, size, config in [("320, per frame", 320, SETTINGS["per-frame"]),
                                (f"{LIVE_CPU_INPUT_SIZE}, live defaults", LIVE_CPU_INPUT_SIZE, LIVE_MATTE)]:
        alpha = live_mattes(frames, predictions(frames, segmenter(size), config.crop), config)[-1][..., None]
        panel = (frames[-1] * alpha + 128 * (1 - alpha)).astype(np.uint8)
        cv2.putText(panel, label, (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (255, 255, 255), 2)
        panels.append(panel)
    cv2.imwrite(str(path), cv2.cvtColor(np.concatenate(panels, axis=1), cv2.COLOR_RGB2BGR))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="320,256,192,160,128")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--picture", type=Path)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--precision", choices=["auto", "int8"], default="auto",
                        help="int8: the store's INT8 network (the quality reference stays fp32 at 320)")
    parser.add_argument("--settings", default=",".join(SETTINGS), help="which matte settings, e.g. 'smooth 3'")
    parser.add_argument("--no-quality", action="store_true", help="speed only")
    args = parser.parse_args()
    global PRECISION
    PRECISION = Precision(args.precision)
    settings = {name: SETTINGS[name] for name in args.settings.split(",")}
    sizes = [int(s) for s in args.sizes.split(",")]
    results: dict = {"speed": {}, "quality": {}}
    with tempfile.TemporaryDirectory() as tmp:
        clip = write_clip(Path(tmp) / "clip.mp4", 30 * args.seconds, (480, 640), 30, audio=False)
        print(f"speed: 640x480 at 30 fps, {args.seconds} s, played in real time, blurred background, "
              f"precision {PRECISION.value}")
        print(f"{'size':>5} {'matte':<18} {'fps':>6} {'dropped':>8} {'p50 ms':>7} {'p95 ms':>7}")
        for size in sizes:
            for name, config in settings.items():
                r = live_speed(clip, size, config)
                results["speed"][f"{size} {name}"] = r
                print(f"{size:>5} {name:<18} {r['processed_fps']:>6.1f} {100 * r['drop_rate']:>7.0f}% "
                      f"{r['p50_ms']:>7.0f} {r['p95_ms']:>7.0f}", flush=True)

        if args.no_quality:
            clips = {}
        else:
            print("\nquality on ../shared/media webcam clips: flicker index, mean |α − α(320 per frame)| (×1e3)")
            clips = {name: decode(str(SHARED / "media" / name)) for name in WEBCAM}
        reference = {name: live_mattes(frames, predictions(frames, segmenter(320, Precision.FP32)), SETTINGS["per-frame"])
                     for name, frames in clips.items()}
        for size in sizes if clips else []:
            seg = segmenter(size)
            preds = {(name, crop): predictions(frames, seg, crop) for name, frames in clips.items()
                     for crop in {config.crop for config in settings.values()}}
            for name, config in settings.items():
                flicker, distance = [], []
                for clip_name, frames in clips.items():
                    alpha = live_mattes(frames, preds[clip_name, config.crop], config)
                    flicker.append(flicker_index(alpha, frames))
                    distance.append(1000 * float(np.abs(alpha - reference[clip_name]).mean()))
                results["quality"][f"{size} {name}"] = {"flicker": flicker, "distance": distance}
                print(f"{size:>5} {name:<18} flicker " + " ".join(f"{f:6.3f}" for f in flicker)
                      + "   distance " + " ".join(f"{d:5.1f}" for d in distance), flush=True)

    if args.picture:
        picture(args.picture)
        print(f"\nwrote {args.picture}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
