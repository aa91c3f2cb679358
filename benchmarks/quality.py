"""Matte quality and cost, per frame vs u2video's smoothing, refinement and crop pass: the README's tables.

1. Ground-truth clips, one per official U²-Net test image in ../shared/reference: the photo is the
   foreground and the official U²-Net output, made solid (thresholded at 0.5 at four times the
   display size, then area-averaged: a hard, anti-aliased edge, as a solid object has on camera;
   the official outputs themselves are 320² predictions scaled up, softer than any camera edge),
   is its alpha. It is composited over the first 50 frames of the empty room in
   ../shared/media/one-by-one-person-detection.mp4 (real sensor noise), with Gaussian noise (σ 3
   levels) on the whole frame, then encoded as H.264 (crf 18) and decoded again, like real
   footage (frame-to-frame noise then matches the webcam clips'). Four sets:
   - "standard": 1280x720, the photo 60% of the frame's height (half its width for wide photos);
   - "wide": the subject 20%, 27.5% or 35% of the frame's height (in turn) at 1280x720 and
     1920x1080 (in turn), as a camera across a room sees a person;
   - "elastic": as standard, and the subject bends as it moves (non-rigid motion): smooth
     random displacement fields as in U-Net's augmentation (a vector on each point of a 3x3
     grid, σ 4% of the subject's height, interpolated bicubically), each vector swinging along
     a sine by 0.25 rad on every frame where the subject moves, holding where it holds still;
   - "group": three photos at 45% of the height (at most 16% of the width each): one standing
     still in the middle, behind the others, one on the left and one on the right moving
     towards it by half the single subject's moves.
   The subject holds still for 10 frames, sways slowly (out 3 px and back, under 1 px a frame)
   for 10, pans at 8 px a frame for 10, jumps by 8% of the width every third frame for 10, and
   holds still for 10. The room has a table, which U²-Netp (a saliency network, not a person
   detector) often takes for a subject.
   Scored with the video-matting metrics used on VideoMatte240K (as in RobustVideoMatting's
   evaluation) at full resolution: MAD and MSE (×1e3), Grad (Gaussian-derivative gradient error,
   σ 1.4, ÷1e3) and dtSSD (×1e2), plus MAD split into its part near the subject (within 5% of
   the frame's height of it) and elsewhere (a table taken for a subject), dtSSD per motion
   segment and MAD on the jump frames.
2. Flicker index on the real static-camera webcam clips in ../shared/media (640x480): the mean
   |α_t − α_{t−1}| (×1e3) over pixels whose blurred image (σ 2) changed by less than 2/255.
3. Cost: the crop pass's and the matte step's time per frame for each variant (on the same
   predictions), and, with --end-to-end, ``u2video.matte`` on each webcam clip to ProRes 4444
   per frame and with the defaults.

Each variant reuses the same network predictions (the crop pass's own, ``crop.SubjectCrop``, for
the variant with it), so the tables compare only what comes after the network: per frame
(--smooth 0 --no-refine --crop off: bilinear upsampling), refine only, smooth only, smoothing and
refinement (--crop off), and all three.

    U2NET_HOME=../shared/models python benchmarks/quality.py [--images 10] [--sets standard,wide,elastic,group]
        [--no-flicker] [--true-boxes] [--end-to-end] [--json FILE]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
from dataclasses import dataclass
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
TRUE_BOXES = "crop, true boxes"  # --true-boxes: the crop pass with boxes from the true alpha
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


@dataclass(frozen=True)
class ClipSpec:
    """One ground-truth clip: its set, the reference image(s) that are its subject(s) (three for a
    group), the frame's (height, width), the subject's height as a share of the frame's, and
    whether the subject also bends (smooth elastic displacement fields, as in U-Net's
    augmentation) while it moves."""
    group: str
    images: tuple[Path, ...]
    size: tuple[int, int]
    share: float
    elastic: bool = False

    @property
    def name(self) -> str:
        return f"{'+'.join(i.stem for i in self.images)} {self.size[0]}p {self.share:.0%}"


class ElasticField:
    """A smooth displacement field that changes smoothly over time: a random displacement vector
    on each point of a 3×3 grid (σ ``sigma`` pixels, U-Net's augmentation) swings along a sine of
    its own phase, and per-pixel displacements are interpolated bicubically. ``warp`` bends an
    image [h,w(,c)] f32 by the field at ``phase`` (radians)."""

    def __init__(self, height: int, width: int, sigma: float, rng: np.random.Generator):
        self.height, self.width = height, width
        self.amplitude = rng.normal(0, sigma, (2, 3, 3)).astype(np.float32)
        self.offset = rng.uniform(0, 2 * np.pi, (2, 3, 3)).astype(np.float32)
        self.grid = np.mgrid[0:height, 0:width].astype(np.float32)  # y, x

    def warp(self, image: np.ndarray, phase: float) -> np.ndarray:
        coarse = self.amplitude * np.sin(phase + self.offset)  # [2,3,3]: dy, dx
        dy, dx = (cv2.resize(c, (self.width, self.height), interpolation=cv2.INTER_CUBIC) for c in coarse)
        return cv2.remap(image, self.grid[1] + dx, self.grid[0] + dy, cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def ground_truth_clip(spec: ClipSpec, noise=3.0, seed=0) -> tuple[np.ndarray, np.ndarray, list[str], list[float]]:
    """(decoded H.264 frames [T,H,W,3] uint8, true alpha [T,H,W] f32 0..1, motion labels, the
    last-drawn subject's horizontal position in pixels per frame: the one subject's, if alone).

    One subject: at 10% of the width, moving right by ``motion``'s offsets. A group (three
    images, each at most 16% of the width): one on the left moving right and one on the right
    moving left, by half those offsets, and one in the middle standing still, behind them.
    Elastic subjects bend by 4% of their height (σ at the 3×3 grid's points), the bend swinging
    by 0.25 rad on every frame labelled as moving and holding where the subject holds still."""
    rng = np.random.default_rng(seed)
    height, width = spec.size
    offsets, labels = motion(width)
    group = len(spec.images) > 1
    members = []  # (premultiplied fg, alpha, x and y at offset 0, direction, elastic field or None)
    for k, image in enumerate(spec.images):
        photo = cv2.cvtColor(cv2.imread(str(image)), cv2.COLOR_BGR2RGB)
        # alone: room for all the moves within half the width; in a group, 16% of it each
        scale = min(spec.share * height / photo.shape[0], (0.16 if group else 0.5) * width / photo.shape[1])
        fw, fh = round(photo.shape[1] * scale), round(photo.shape[0] * scale)
        fg = cv2.resize(photo, (fw, fh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
        alpha = solid_alpha(image.stem, fw, fh)
        pad = round(0.12 * fh) if spec.elastic else 0  # room for the bends (3σ)
        alpha = cv2.copyMakeBorder(alpha, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
        fg = cv2.copyMakeBorder(fg.astype(np.float32), pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        field = ElasticField(fh + 2 * pad, fw + 2 * pad, 0.04 * fh, rng) if spec.elastic else None
        x, direction = ((0.1 * width, 1) if not group else
                        ((0.03 * width, 0.5), (0.5 * width - fw / 2, 0), (0.97 * width - fw, -0.5))[k])
        members.append((fg * alpha[..., None], alpha, x - pad, (height - fh) / 2 - pad, direction, field))
    if group:  # the one standing still is behind the others
        members.sort(key=lambda m: m[4] != 0)
    with av.open(str(ROOM)) as container:
        rooms = [cv2.resize(f.to_ndarray(format="rgb24"), (width, height), interpolation=cv2.INTER_LINEAR)
                 for _, f in zip(offsets, container.decode(video=0))]
    buffer, truth, positions, phase = io.BytesIO(), [], [], 0.0
    with av.open(buffer, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "18"}
        for t, (offset, label, room) in enumerate(zip(offsets, labels, rooms)):
            phase += 0.25 if label != "still" and t > 0 else 0.0
            frame, a = room.astype(np.float32), np.zeros((height, width), np.float32)
            for premultiplied, alpha, x, y, direction, field in members:
                if field is not None:
                    premultiplied, alpha = field.warp(premultiplied, phase), field.warp(alpha, phase)
                # at most 0.42 of the width + 83 px from where it starts: every subject stays inside
                shift = np.float32([[1, 0, x + direction * offset], [0, 1, y]])
                placed = cv2.warpAffine(alpha, shift, (width, height), flags=cv2.INTER_LINEAR)
                frame = cv2.warpAffine(premultiplied, shift, (width, height), flags=cv2.INTER_LINEAR) \
                    + frame * (1 - placed[..., None])
                a = placed + a * (1 - placed)
            positions.append(members[-1][2] + members[-1][4] * offset)
            frame = frame + rng.normal(0, noise, (height, width, 3))
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


def near_subject(truth: np.ndarray) -> np.ndarray:
    """[T,H,W] bool: the pixels within 5% of the frame's height of a subject (a square
    neighbourhood of the true alpha's nonzero pixels)."""
    reach = max(1, round(0.05 * truth.shape[1]))
    kernel = np.ones((2 * reach + 1, 2 * reach + 1), np.uint8)
    return np.stack([cv2.dilate((t > 0.004).astype(np.uint8), kernel) > 0 for t in truth])


def scores(pred: np.ndarray, truth: np.ndarray, labels: list[str], truth_grad: list[np.ndarray],
           positions: list[float] | None, near: np.ndarray) -> dict[str, float]:
    """pred, truth [T,H,W] f32 0..1 -> MAD (and its parts near the subject and elsewhere, both over
    the whole frame's pixels, so they add up to MAD), MSE, Grad, dtSSD, dtSSD per segment, MAD
    on jump frames, and (given ``positions``: one rigid subject) the part of the pan frames'
    dtSSD that the moving error explains."""
    error = np.abs(pred - truth)
    per_frame_mad = error.mean(axis=(1, 2)) * 1e3
    dt = np.sqrt((((pred[1:] - pred[:-1]) - (truth[1:] - truth[:-1])) ** 2).mean(axis=(1, 2))) * 1e2
    kind = np.array(labels[1:])  # dtSSD of frame t is labelled by frame t's motion
    out = {"MAD": per_frame_mad.mean(), "MAD near": error[near].sum() / error.size * 1e3,
           "MAD elsewhere": error[~near].sum() / error.size * 1e3, "MSE": ((pred - truth) ** 2).mean() * 1e3,
           "Grad": np.mean([((gradient(p) - g) ** 2).sum() / 1e3 for p, g in zip(pred, truth_grad)]),
           "dtSSD": dt.mean()}
    for name in ("still", "slow", "pan", "jump"):
        out[f"dtSSD {name}"] = dt[kind == name].mean()
    out["MAD jump"] = per_frame_mad[np.array(labels) == "jump"].mean()
    if positions is not None:
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


def crop_pass(segmenter: Segmenter, frames: np.ndarray, preds: torch.Tensor, truth: np.ndarray | None = None
              ) -> tuple[list[torch.Tensor], float, float]:
    """The subject-crop pass over a clip's first predictions, in order as the frame loop runs it
    on the CPU (a frame at a time): (T predictions [1,1,h,w]: the grid's where it cropped,
    [1,1,S,S] where not; its seconds per frame; mean boxes cropped per frame). Given ``truth``
    [T,H,W], the boxes come from the true alpha instead of the first look (the same tracker,
    margins and merge): what the pass gives where it picks the right boxes."""
    crop, out, boxes = SubjectCrop(segmenter, *frames.shape[1:3]), [], 0
    start = time.perf_counter()
    for i in range(len(frames)):
        frame = torch.from_numpy(frames[i:i + 1])
        if truth is None:
            out.append(crop(frame, preds[i:i + 1]))
        else:  # SubjectCrop's own steps, fed the true alpha where they take the first look
            size = preds.shape[-1]
            crop.boxes = [crop._track(cv2.resize(truth[i], (size, size), interpolation=cv2.INTER_AREA))]
            out.append(crop._merge(frame, preds[i:i + 1], crop.boxes))
        boxes += len(crop.boxes[0])
    return out, (time.perf_counter() - start) / len(frames), boxes / len(frames)


SETS = ("standard", "wide", "elastic", "group")


def clip_specs(count: int, sets: list[str]) -> list[ClipSpec]:
    """Every ground-truth clip of ``sets``, ``count`` reference images in each."""
    everything = sorted((REFERENCE / "images").iterdir())
    images = everything[:count]
    specs = []
    for name in sets:
        if name == "standard":  # the subject 60% of the frame's height
            specs += [ClipSpec(name, (image,), (720, 1280), 0.6) for image in images]
        elif name == "wide":  # 20-35% of the height, 720p and 1080p in turn
            specs += [ClipSpec(name, (image,), ((720, 1280), (1080, 1920))[i % 2], WIDE_SHARES[i % len(WIDE_SHARES)])
                      for i, image in enumerate(images)]
        elif name == "elastic":  # as standard, bending as it moves
            specs += [ClipSpec(name, (image,), (720, 1280), 0.6, elastic=True) for image in images]
        elif name == "group":  # three subjects 45% of the height: this image and the next two
            specs += [ClipSpec(name, tuple(everything[(i + k) % len(everything)] for k in range(3)), (720, 1280), 0.45)
                      for i in range(len(images))]
        else:
            raise SystemExit(f"unknown set {name!r}: choose from {', '.join(SETS)}")
    return specs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input-size", type=int, default=320)
    parser.add_argument("--images", type=int, default=10, help="how many reference images become clips (per set)")
    parser.add_argument("--sets", default=",".join(SETS), help="which ground-truth clips: " + ", ".join(SETS))
    parser.add_argument("--no-flicker", action="store_true", help="skip the webcam clips' flicker index")
    parser.add_argument("--true-boxes", action="store_true",
                        help="also the crop pass with its boxes taken from the true alpha (a bound on box choice)")
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
    for spec in clip_specs(opts.images, opts.sets.split(",")):
        group, name, size = spec.group, spec.name, spec.size
        frames, truth, labels, positions = ground_truth_clip(spec)
        truth_grad, near = [gradient(t) for t in truth], near_subject(truth)
        rigid_positions = positions if len(spec.images) == 1 and not spec.elastic else None
        preds, seconds = predict(segmenter, frames)
        network.append(seconds)
        cropped, crop_seconds, boxes = crop_pass(segmenter, frames, preds)
        crop_costs.setdefault(f"{size[0]}p", []).append(crop_seconds)
        clip = results["ground_truth"].setdefault(group, {})[name] = {"boxes_per_frame": boxes}
        for variant, config in VARIANTS.items():
            alpha, cost = mattes(frames, config, cropped if config.crop is Crop.AUTO else preds)
            costs.setdefault(f"{size[0]}p", {}).setdefault(variant, []).append(cost)
            clip[variant] = scores(alpha, truth, labels, truth_grad, rigid_positions, near)
            base = clip["per-frame"]
            print(f"  {group:<8} {name:<28} {variant:<18} " + "  ".join(
                f"{k} {change(v, base[k]) if variant != 'per-frame' else f'{v:.2f}'}" for k, v in clip[variant].items()),
                flush=True)
        print(f"  {'':<8} {name:<28} crop pass: {boxes:.2f} boxes a frame, {crop_seconds * 1e3:.0f} ms a frame", flush=True)
        if opts.true_boxes:
            alpha, _ = mattes(frames, VARIANTS[CROPPED], crop_pass(segmenter, frames, preds, truth)[0])
            clip[TRUE_BOXES] = scores(alpha, truth, labels, truth_grad, rigid_positions, near)
            print(f"  {'':<8} {name:<28} {TRUE_BOXES}: " + "  ".join(
                f"{k} {change(v, clip[UNCROPPED][k])}" for k, v in clip[TRUE_BOXES].items()) + " (change from --crop off)",
                flush=True)

    print("\nflicker index on ../shared/media webcam clips (x1e3, lower is steadier)")
    for name in [] if opts.no_flicker else WEBCAM:
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
            for metric in ("MAD", "MAD near", "MAD elsewhere", "MAD jump", "Grad", "dtSSD", "dtSSD still",
                           "dtSSD slow", "dtSSD pan", "dtSSD jump", "dtSSD pan, moved error"):
                rel = [c[variant][metric] / c["per-frame"][metric] - 1 for c in clips.values() if metric in c[variant]]
                if not rel:
                    continue
                parts.append(f"{metric} {np.mean(rel) * 100:+.0f}% ({max(rel) * 100:+.0f}%)")
            print(f"  {variant:<18} " + ", ".join(parts))
        for variant in (CROPPED, TRUE_BOXES) if opts.true_boxes else (CROPPED,):
            for metric in ("MAD", "MAD near", "MAD elsewhere"):
                rel = [c[variant][metric] / c[UNCROPPED][metric] - 1 for c in clips.values()]
                print(f"  the crop pass ({variant} vs {UNCROPPED}): {metric} {np.mean(rel) * 100:+.0f}% "
                      f"(best {min(rel) * 100:+.0f}%, worst {max(rel) * 100:+.0f}%)")
    for variant in list(VARIANTS)[1:] if results["flicker"] else []:
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
