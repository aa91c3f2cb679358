"""Matte quality and cost, per frame vs u2video's smoothing, refinement and crop pass: the README's tables.

1. Ground-truth clips, one per official U²-Net test image in ../shared/reference: the photo is the
   foreground and the official U²-Net output, made solid (thresholded at 0.5 at four times the
   display size, then area-averaged: a hard, anti-aliased edge, as a solid object has on camera;
   the official outputs themselves are 320² predictions scaled up, softer than any camera edge),
   is its alpha. It is composited over the first 50 frames of the empty room in
   ../shared/media/one-by-one-person-detection.mp4 (real sensor noise), with Gaussian noise (σ 3
   levels) on the whole frame, then encoded as H.264 (crf 18) and decoded again, like real
   footage (frame-to-frame noise then matches the webcam clips'). Two sets: "standard", 1280x720
   with the photo 60% of the frame's height (half its width for wide photos), and "wide", the
   subject 20%, 27.5% or 35% of the frame's height (in turn) at 1280x720 and 1920x1080 (in turn),
   as a camera across a room sees a person. The subject holds still for 10 frames, sways slowly
   (out 3 px and back, under 1 px a frame) for 10, pans at 8 px a frame for 10, jumps by 8% of
   the width every third frame for 10, and holds still for 10. The room has a table, which
   U²-Netp (a saliency network, not a person detector) often takes for a subject.
   Scored with the video-matting metrics used on VideoMatte240K (as in RobustVideoMatting's
   evaluation) at full resolution: MAD and MSE (×1e3), Grad (Gaussian-derivative gradient error,
   σ 1.4, ÷1e3) and dtSSD (×1e2), plus dtSSD per motion segment and MAD on the jump frames.
2. Flicker index on the real static-camera webcam clips in ../shared/media (640x480): the mean
   |α_t − α_{t−1}| (×1e3) over pixels whose blurred image (σ 2) changed by less than 2/255.
3. Cost: the crop pass's and the matte step's time per frame for each variant (on the same
   predictions), and, with --end-to-end, ``u2video.matte`` on each webcam clip to ProRes 4444
   per frame and with the defaults.

Each variant reuses the same network predictions (the crop pass's own, ``crop.SubjectCrop``, for
the variant with it), so the tables compare only what comes after the network: per frame
(--smooth 0 --no-refine --crop off: bilinear upsampling), refine only, smooth only, smoothing and
refinement (--crop off), and all three.

    U2NET_HOME=../shared/models python benchmarks/quality.py [--images 10] [--sets standard,wide] [--end-to-end]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
from pathlib import Path

import av
import cv2
import numpy as np
import torch

import u2video
from u2video.alpha import MatteStage
from u2video.config import Crop, DeviceConfig, DeviceKind, MatteConfig, ModelConfig, Normalization, OutputConfig
from u2video.crop import SubjectCrop
from u2video.segmenter import Segmenter

SHARED = Path(__file__).resolve().parents[2] / "shared"
REFERENCE = SHARED / "reference" / "u2net_official"
ROOM = SHARED / "media" / "one-by-one-person-detection.mp4"  # empty for its first ~55 frames
WEBCAM = ["book.mkv", "help.mkv", "please.mkv", "walk.mkv"]
VARIANTS = {"per-frame": MatteConfig(0, False, Crop.OFF), "refine": MatteConfig(0, True, Crop.OFF),
            "smooth": MatteConfig(refine=False, crop=Crop.OFF), "smooth+refine": MatteConfig(crop=Crop.OFF),
            "smooth+refine+crop": MatteConfig(crop=Crop.AUTO)}
UNCROPPED, CROPPED = "smooth+refine", "smooth+refine+crop"
WIDE_SHARES = (0.2, 0.275, 0.35)  # the subject's height in the wide shots, as a share of the frame's
SEGMENT = 10  # frames per motion segment
SEGMENTS = ["still", "slow", "pan", "jumps", "still"]


def decode(path_or_bytes) -> np.ndarray:
    """All frames as [T,H,W,3] uint8 RGB."""
    with av.open(path_or_bytes) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def motion(width: int) -> tuple[list[float], list[str]]:
    """The subject's horizontal offset (pixels, fractional) and a label for every frame."""
    offsets, labels, x = [], [], 0.0
    for segment, name in enumerate(SEGMENTS):
        for i in range(SEGMENT):
            label = name
            if name == "slow":
                x = 3.0 * np.sin(np.pi * (i + 1) / SEGMENT)  # out 3 px and back, under 1 px a frame
            elif name == "pan":
                x += 8.0
            elif name == "jumps":
                label = "jump" if i % 3 == 0 else "still"
                x += 0.08 * width if label == "jump" else 0.0
            offsets.append(x)
            labels.append(label)
    return offsets, labels


def solid_alpha(stem: str, width: int, height: int) -> np.ndarray:
    """The official U²-Net output for ``stem`` as a solid object at (width, height): f32 0..1."""
    official = cv2.imread(str(REFERENCE / "u2net_results" / f"{stem}.png"), cv2.IMREAD_GRAYSCALE)
    large = cv2.resize(official.astype(np.float32) / 255, (4 * width, 4 * height), interpolation=cv2.INTER_LINEAR)
    return cv2.resize((large >= 0.5).astype(np.float32), (width, height), interpolation=cv2.INTER_AREA)


def ground_truth_clip(image: Path, size=(720, 1280), noise=3.0, seed=0, subject=0.6
                      ) -> tuple[np.ndarray, np.ndarray, list[str], list[float]]:
    """(decoded H.264 frames [T,H,W,3] uint8, true alpha [T,H,W] f32 0..1, motion labels, the
    subject's horizontal position in pixels per frame). ``subject``: the photo's height as a
    share of the frame's (a wide shot: 0.2-0.35)."""
    rng = np.random.default_rng(seed)
    height, width = size
    photo = cv2.cvtColor(cv2.imread(str(image)), cv2.COLOR_BGR2RGB)
    # 60% of the frame's height, or half its width for wide photos: room for all the moves
    scale = min(subject * height / photo.shape[0], 0.5 * width / photo.shape[1])
    fw, fh = round(photo.shape[1] * scale), round(photo.shape[0] * scale)
    fg = cv2.resize(photo, (fw, fh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC).astype(np.float32)
    alpha = solid_alpha(image.stem, fw, fh)
    offsets, labels = motion(width)
    with av.open(str(ROOM)) as container:
        rooms = [cv2.resize(f.to_ndarray(format="rgb24"), (width, height), interpolation=cv2.INTER_LINEAR)
                 for _, f in zip(offsets, container.decode(video=0))]
    buffer, truth, positions = io.BytesIO(), [], []
    with av.open(buffer, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "18"}
        for x, room in zip(offsets, rooms):
            positions.append(0.1 * width + x)  # at most 0.42 of the width + 83 px: the subject stays inside
            shift = np.float32([[1, 0, positions[-1]], [0, 1, (height - fh) / 2]])
            a = cv2.warpAffine(alpha, shift, (width, height), flags=cv2.INTER_LINEAR)
            premultiplied = cv2.warpAffine(fg * alpha[..., None], shift, (width, height), flags=cv2.INTER_LINEAR)
            frame = premultiplied + room * (1 - a[..., None]) + rng.normal(0, noise, (height, width, 3))
            picture = av.VideoFrame.from_ndarray(np.clip(frame + 0.5, 0, 255).astype(np.uint8), format="rgb24")
            out.mux(stream.encode(picture))
            truth.append(a)
        out.mux(stream.encode(None))
    buffer.seek(0)
    return decode(buffer), np.stack(truth), labels, positions


def predict(segmenter: Segmenter, frames: np.ndarray) -> tuple[torch.Tensor, float]:
    """The network's predictions [T,1,S,S] for all frames, and its seconds per frame (batches of 4)."""
    start = time.perf_counter()
    preds = torch.cat([segmenter.predict_lowres(torch.from_numpy(frames[i:i + 4])) for i in range(0, len(frames), 4)])
    return preds, (time.perf_counter() - start) / len(frames)


def mattes(frames: np.ndarray, config: MatteConfig, preds: torch.Tensor | list[torch.Tensor]) -> tuple[np.ndarray, float]:
    """The matte step over precomputed predictions ([T,1,S,S], or T of [1,1,h,w] from the crop
    pass), one frame at a time as the CLI's default batch: alpha [T,H,W] f32, and its seconds per frame."""
    stage, out = MatteStage(config), []
    start = time.perf_counter()
    for i in range(len(frames)):
        pred = preds[i:i + 1] if torch.is_tensor(preds) else preds[i]  # [1,1,h,w] either way
        _, alpha, keys = stage.push(torch.from_numpy(frames[i:i + 1]), pred, [i])
        out += list(alpha[:, 0].numpy()) if keys else []  # the first frames wait for their window
    _, alpha, keys = stage.flush()
    out += list(alpha[:, 0].numpy()) if keys else []
    return np.stack(out), (time.perf_counter() - start) / len(frames)


def gradient(a: np.ndarray) -> np.ndarray:
    gy, gx = np.gradient(cv2.GaussianBlur(a, (0, 0), 1.4))
    return np.sqrt(gx ** 2 + gy ** 2)


def moved_error_dtssd(pred: np.ndarray, truth: np.ndarray, labels: list[str], positions: list[float]) -> float:
    """On the pan frames, the dtSSD that the previous frame's error alone gives when it moves with
    the subject: what a temporal filter cannot remove, as the error is not flicker."""
    out = []
    for t in (t for t, label in enumerate(labels) if label == "pan" and t > 0):
        error = pred[t - 1] - truth[t - 1]
        shift = np.float32([[1, 0, positions[t] - positions[t - 1]], [0, 1, 0]])
        moved = cv2.warpAffine(error, shift, error.shape[::-1], flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        out.append(np.sqrt(((moved - error) ** 2).mean()) * 1e2)
    return float(np.mean(out))


def scores(pred: np.ndarray, truth: np.ndarray, labels: list[str], truth_grad: list[np.ndarray],
           positions: list[float]) -> dict[str, float]:
    """pred, truth [T,H,W] f32 0..1 -> MAD, MSE, Grad, dtSSD, dtSSD per segment, MAD on jump
    frames, and the part of the pan frames' dtSSD that the moving error explains."""
    per_frame_mad = np.abs(pred - truth).mean(axis=(1, 2)) * 1e3
    dt = np.sqrt((((pred[1:] - pred[:-1]) - (truth[1:] - truth[:-1])) ** 2).mean(axis=(1, 2))) * 1e2
    kind = np.array(labels[1:])  # dtSSD of frame t is labelled by frame t's motion
    out = {"MAD": per_frame_mad.mean(), "MSE": ((pred - truth) ** 2).mean() * 1e3,
           "Grad": np.mean([((gradient(p) - g) ** 2).sum() / 1e3 for p, g in zip(pred, truth_grad)]),
           "dtSSD": dt.mean()}
    for name in ("still", "slow", "pan", "jump"):
        out[f"dtSSD {name}"] = dt[kind == name].mean()
    out["MAD jump"] = per_frame_mad[np.array(labels) == "jump"].mean()
    out["dtSSD pan, moved error"] = moved_error_dtssd(pred, truth, labels, positions)
    return {k: float(v) for k, v in out.items()}


def flicker_index(alpha: np.ndarray, frames: np.ndarray) -> float:
    grey = np.stack([cv2.GaussianBlur(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY).astype(np.float32), (0, 0), 2) for f in frames])
    still = np.abs(grey[1:] - grey[:-1]) < 2.0
    return float(np.abs(alpha[1:] - alpha[:-1])[still].mean() * 1e3)


def end_to_end(clip: Path, config: MatteConfig, input_size: int) -> float:
    """Seconds per frame of ``u2video.matte`` on ``clip`` to ProRes 4444 (decode, network, matte, encode)."""
    frames = sum(1 for _ in av.open(str(clip)).decode(video=0))
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        u2video.matte(clip, Path(tmp) / "out.mov", model=ModelConfig("u2netp", input_size),
                      device=DeviceConfig(DeviceKind.CPU), options=OutputConfig(), matte_config=config)
        return (time.perf_counter() - start) / frames


def change(new: float, old: float) -> str:
    return f"{new:.2f} ({(new / old - 1) * 100:+.0f}%)" if old else f"{new:.2f}"


def crop_pass(segmenter: Segmenter, frames: np.ndarray, preds: torch.Tensor) -> tuple[list[torch.Tensor], float, float]:
    """The subject-crop pass over a clip's first predictions, in order as the frame loop runs it:
    (T predictions [1,1,h,w]: the grid's where it cropped, [1,1,S,S] where not; its seconds per
    frame; mean boxes cropped per frame)."""
    crop, out, boxes = SubjectCrop(segmenter, *frames.shape[1:3]), [], 0
    start = time.perf_counter()
    for i in range(0, len(frames), 4):
        out += list(crop(torch.from_numpy(frames[i:i + 4]), preds[i:i + 4]).split(1))
        boxes += sum(len(b) for b in crop.boxes)
    return out, (time.perf_counter() - start) / len(frames), boxes / len(frames)


def clip_specs(count: int, sets: list[str]) -> list[tuple[str, Path, tuple[int, int], float]]:
    """(set, reference image, frame size, subject's height share) of every ground-truth clip."""
    images = sorted((REFERENCE / "images").iterdir())[:count]
    specs = [("standard", image, (720, 1280), 0.6) for image in images] if "standard" in sets else []
    if "wide" in sets:  # subjects 20-35% of the frame's height, 720p and 1080p in turn
        specs += [("wide", image, ((720, 1280), (1080, 1920))[i % 2], WIDE_SHARES[i % len(WIDE_SHARES)])
                  for i, image in enumerate(images)]
    return specs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input-size", type=int, default=320)
    parser.add_argument("--images", type=int, default=10, help="how many reference images become clips (per set)")
    parser.add_argument("--sets", default="standard,wide", help="which ground-truth clips: standard, wide")
    parser.add_argument("--end-to-end", action="store_true", help="also time u2video.matte on the webcam clips")
    parser.add_argument("--json", type=Path, help="write every figure to this file")
    opts = parser.parse_args()
    if not (SHARED / "media").is_dir() or not REFERENCE.is_dir():
        sys.exit("needs ../shared/media and ../shared/reference beside the project")
    segmenter = Segmenter.from_config(ModelConfig("u2netp", opts.input_size, Normalization.FIXED),
                                      DeviceConfig(DeviceKind.CPU))
    defaults = next(k for k, v in VARIANTS.items() if v == MatteConfig())
    print(f"{segmenter.describe()}, torch threads {torch.get_num_threads()}; variants: "
          + ", ".join(f"{k} (smooth {v.smooth}, refine {v.refine}, crop {v.crop.value})" for k, v in VARIANTS.items())
          + f"; the defaults: {defaults}")
    results: dict = {"ground_truth": {}, "flicker": {}, "cost_ms": {}, "crop_ms": {}, "end_to_end_ms": {}}
    costs: dict[str, dict[str, list[float]]] = {}
    crop_costs: dict[str, list[float]] = {}
    network: list[float] = []

    print(f"\nground-truth clips ({len(SEGMENTS) * SEGMENT} frames, H.264); lower is better; in brackets: change "
          "from per frame")
    for group, image, size, share in clip_specs(opts.images, opts.sets.split(",")):
        frames, truth, labels, positions = ground_truth_clip(image, size=size, subject=share)
        truth_grad = [gradient(t) for t in truth]
        preds, seconds = predict(segmenter, frames)
        network.append(seconds)
        cropped, crop_seconds, boxes = crop_pass(segmenter, frames, preds)
        crop_costs.setdefault(f"{size[0]}p", []).append(crop_seconds)
        name = f"{image.stem} {size[0]}p {share:.0%}"
        clip = results["ground_truth"].setdefault(group, {})[name] = {"boxes_per_frame": boxes}
        for variant, config in VARIANTS.items():
            alpha, cost = mattes(frames, config, cropped if config.crop is Crop.AUTO else preds)
            costs.setdefault(f"{size[0]}p", {}).setdefault(variant, []).append(cost)
            clip[variant] = scores(alpha, truth, labels, truth_grad, positions)
            base = clip["per-frame"]
            print(f"  {group:<8} {name:<20} {variant:<18} " + "  ".join(
                f"{k} {change(v, base[k]) if variant != 'per-frame' else f'{v:.2f}'}" for k, v in clip[variant].items()),
                flush=True)
        print(f"  {'':<8} {name:<20} crop pass: {boxes:.2f} boxes a frame, {crop_seconds * 1e3:.0f} ms a frame", flush=True)

    print("\nflicker index on ../shared/media webcam clips (x1e3, lower is steadier)")
    for name in WEBCAM:
        frames = decode(str(SHARED / "media" / name))
        preds, seconds = predict(segmenter, frames)
        network.append(seconds)
        cropped, crop_seconds, _ = crop_pass(segmenter, frames, preds)
        crop_costs.setdefault("480p", []).append(crop_seconds)
        clip = results["flicker"][name] = {}
        for variant, config in VARIANTS.items():
            alpha, cost = mattes(frames, config, cropped if config.crop is Crop.AUTO else preds)
            costs.setdefault("480p", {}).setdefault(variant, []).append(cost)
            clip[variant] = flicker_index(alpha, frames)
        print(f"  {name:<11} " + "  ".join(f"{k} {change(v, clip['per-frame'])}" for k, v in clip.items()), flush=True)

    for group, clips in results["ground_truth"].items():
        print(f"\nsummary over the {group} ground-truth clips (mean of the per-clip changes from per frame; worst clip)")
        for variant in list(VARIANTS)[1:]:
            parts = []
            for metric in ("MAD", "MAD jump", "Grad", "dtSSD", "dtSSD still", "dtSSD slow", "dtSSD pan", "dtSSD jump",
                           "dtSSD pan, moved error"):
                rel = [c[variant][metric] / c["per-frame"][metric] - 1 for c in clips.values()]
                parts.append(f"{metric} {np.mean(rel) * 100:+.0f}% ({max(rel) * 100:+.0f}%)")
            print(f"  {variant:<18} " + ", ".join(parts))
        rel = [c[CROPPED]["MAD"] / c[UNCROPPED]["MAD"] - 1 for c in clips.values()]
        print(f"  the crop pass ({CROPPED} vs {UNCROPPED}): MAD {np.mean(rel) * 100:+.0f}% "
              f"(best {min(rel) * 100:+.0f}%, worst {max(rel) * 100:+.0f}%)")
    for variant in list(VARIANTS)[1:]:
        flick = [c[variant] / c["per-frame"] - 1 for c in results["flicker"].values()]
        print(f"  flicker, {variant}: {np.mean(flick) * 100:+.0f}% (worst {max(flick) * 100:+.0f}%)")

    results["network_ms"] = float(np.mean(network) * 1e3)
    results["cost_ms"] = {size: {k: float(np.mean(v) * 1e3) for k, v in c.items()} for size, c in costs.items()}
    results["crop_ms"] = {size: float(np.mean(v) * 1e3) for size, v in crop_costs.items()}
    print(f"\ntime per frame on this machine: network {results['network_ms']:.0f} ms (batches of 4); crop pass "
          + ", ".join(f"{size} {v:.0f} ms" for size, v in results["crop_ms"].items()) + "; matte step "
          + "; ".join(f"{size}: " + ", ".join(f"{k} {v:.1f} ms" for k, v in c.items())
                      for size, c in results["cost_ms"].items()))
    if opts.end_to_end:
        for name in WEBCAM:
            clip = SHARED / "media" / name
            times = {k: end_to_end(clip, VARIANTS[k], opts.input_size) * 1e3 for k in ("per-frame", defaults)}
            results["end_to_end_ms"][name] = times
            print(f"  u2video matte {name} -> .mov: per frame {times['per-frame']:.0f} ms/frame, defaults "
                  f"{change(times[defaults], times['per-frame'])} ms/frame", flush=True)
    if opts.json:
        opts.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
