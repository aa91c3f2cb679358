"""``tune``: fine-tune a U²-Net on one clip's corrected masks.

The base network (BatchNorm already folded, as every loaded network is) trains from its weights
with the U²-Net training loss: binary cross-entropy on the fused output and on each of the six
side outputs, summed (deep supervision, Qin et al. 2020), on augmented samples of the masked
frames (``augment.py``), with Adam. With four masks or more, the middle one is held out: the
matte of that frame is checked ``VALIDATIONS`` times over the run, the weights that matted it best
are kept, and the run stops once ``patience`` checks in a row found none better.
"""

from __future__ import annotations

import copy
import os
import time
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import DeviceKind, Normalization, TuneConfig
from ..device import TrainingPrecision, pick_device
from ..errors import ConfigError
from ..media.files import check_output, ensure_writable_dir
from ..model.tuned import TunedModel, save_tuned, sidecar_of
from ..model.u2net import ARCHITECTURES
from ..model.store import file_md5
from ..model.weights import load_network
from ..progress import Reporter, SilentReporter
from ..segmenter import normalise
from .augment import AugmentParams, augment
from .data import TrainingFrames, load_training_frames

VALIDATIONS = 20  # checks of the held-out frame over a run (and one before the first step)


def deep_supervision_loss(logits: list[torch.Tensor], target: torch.Tensor) -> torch.Tensor:
    """U²-Net's training loss: BCE of each output (fused d0 and side d1..d6, logits [B,1,S,S])
    against target [B,1,S,S] f32 0..1, summed. A scalar."""
    return sum(F.binary_cross_entropy_with_logits(d.float(), target) for d in logits)  # type: ignore[return-value]


def _network_input(samples: torch.Tensor) -> torch.Tensor:
    """Augmented samples [B,3,S,S] f32 0..1 -> what the network takes in video (fixed scale)."""
    return normalise(samples * 255.0, Normalization.FIXED)


def held_out_mad(network: nn.Module, frames: torch.Tensor, masks: torch.Tensor, size: int) -> float:
    """Mean |matte - mask| of ``network`` on frames [N,3,H,W] f32 0..1 against masks [N,1,H,W],
    both at the network's input size (the frame squeezed to it, as the Segmenter does)."""
    x, y = augment(frames, masks, size, torch.Generator().manual_seed(0), AugmentParams.none())
    with torch.no_grad():
        pred = torch.sigmoid(network.side_logits(_network_input(x))[0].float())
    return float((pred - y).abs().mean())


def _architecture(network: nn.Module) -> str:
    return next(name for name, cls in ARCHITECTURES.items() if type(network) is cls)


def tune(clip: str | os.PathLike, masks: str | os.PathLike, output: str | os.PathLike,
         config: TuneConfig = TuneConfig(), device: DeviceKind = DeviceKind.AUTO, overwrite: bool = False,
         reporter: Reporter | None = None) -> TunedModel:
    """Fine-tune ``config.base`` on the frames of ``clip`` that ``masks`` (a folder of grey PNGs
    named by 0-based frame index, 255 = subject) correct, and write it to ``output`` (.pth) with a
    sidecar JSON; returns what was written. Every check (paths, masks, frames) runs before the
    first step; Ctrl-C during training writes nothing. Seeded: the same inputs and config give
    the same weights on the same device."""
    reporter = reporter or SilentReporter()
    clip, masks, output = Path(clip), Path(masks), Path(output)
    if output.suffix.lower() != ".pth":
        raise ConfigError(f"{output.name}: a tuned model is written as a .pth file: name it e.g. {output.stem}.pth")
    check_output(output, [clip], overwrite)
    ensure_writable_dir(output.parent)
    data = load_training_frames(clip, masks)
    torch_device = pick_device(device)
    network, weights = load_network(config.base, reporter)
    base_md5 = weights.spec.md5 if weights.spec else file_md5(weights.path)
    reporter.info(f"tuning {weights.spec.name if weights.spec else weights.path.name} on {len(data.indices)} "
                  f"masked frames of {clip.name} ({', '.join(map(str, data.indices))}) at "
                  f"{config.input_size}x{config.input_size}, {config.steps} steps of {config.batch} on {torch_device.type}")
    start = time.perf_counter()
    result = _train(network, data, config, torch_device, reporter)
    provenance = {
        "u2video": _version(),
        "architecture": _architecture(network),
        "base": {"name": config.base, "md5": base_md5},
        "clip": {"name": clip.name, "path": str(clip.resolve()), "frames_used": result["train_frames"]},
        "validation_frame": result["validation_frame"],
        "config": asdict(config),
        "augmentation": asdict(_augmentation(config)),
        "steps_run": result["steps_run"],
        "best_step": result["best_step"],
        "losses": {"train": result["train"], "validation_mad": result["validation"]},
        "device": torch_device.type,
        "precision": result["precision"],
        "seconds": round(time.perf_counter() - start, 1),
    }
    tuned = save_tuned(network.cpu(), output, provenance, overwrite)
    reporter.info(f"wrote {tuned.path} (and {sidecar_of(tuned.path).name}): {result['steps_run']} steps in "
                  f"{provenance['seconds']:.0f} s" + (
                      f", held-out frame {result['validation_frame']}: MAD {result['validation'][0][1]:.4f} -> "
                      f"{min(v for _, v in result['validation']):.4f}" if result["validation"] else ""))
    return tuned


def _version() -> str:
    from .. import __version__

    return __version__


def _augmentation(config: TuneConfig) -> AugmentParams:
    return AugmentParams(paste=0.5 if config.paste else 0.0)


def _train(network: nn.Module, data: TrainingFrames, config: TuneConfig, device: torch.device,
           reporter: Reporter) -> dict:
    """The loop. Leaves ``network`` holding the weights to keep (the best on the held-out frame,
    where there is one) and returns the run's record."""
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    frames = torch.from_numpy(data.frames).permute(0, 3, 1, 2).to(device)  # [N,3,H,W] uint8
    masks = torch.from_numpy(data.masks)[:, None].to(device)  # [N,1,H,W] f32
    held = len(data.indices) // 2 if len(data.indices) >= 4 else None
    train = [i for i in range(len(data.indices)) if i != held]
    params = _augmentation(config)
    network = network.to(device).train().requires_grad_(True)
    optimizer = torch.optim.Adam(network.parameters(), lr=config.lr)
    precision = TrainingPrecision(device)
    every = max(1, config.steps // VALIDATIONS)
    record: dict = {"train": [], "validation": [], "best_step": None, "precision": precision.name,
                    "train_frames": [data.indices[i] for i in train],
                    "validation_frame": data.indices[held] if held is not None else None}

    best: list = [float("inf"), None]  # the held-out MAD and state dict of the best weights so far

    def validate(step: int) -> bool:
        """Check the held-out frame; True when it is time to stop."""
        mad = held_out_mad(network, frames[held:held + 1].float().div(255), masks[held:held + 1], config.input_size)
        record["validation"].append([step, round(mad, 6)])
        if record["best_step"] is None or mad < best[0]:
            best[0], best[1] = mad, copy.deepcopy(network.state_dict())
            record["best_step"] = step
        checks_since = (step - record["best_step"]) // every
        return config.patience > 0 and checks_since >= config.patience

    if held is not None:
        validate(0)
    bar = reporter.bar("tuning", config.steps, "step")
    running, count, step, stopped_early = 0.0, 0, 0, False
    try:
        for step in range(1, config.steps + 1):
            pick = torch.randint(len(train), (config.batch,), generator=generator).tolist()
            chosen = torch.tensor([train[i] for i in pick], device=device)
            x, y = augment(frames[chosen].float().div_(255), masks[chosen], config.input_size, generator, params)
            with precision.autocast():
                loss = deep_supervision_loss(network.side_logits(_network_input(x)), y)
            precision.step(loss, optimizer)
            running, count = running + float(loss.detach()), count + 1
            bar.update(1)
            if step % every == 0 or step == config.steps:
                record["train"].append([step, round(running / count, 6)])
                bar.set_postfix_str(f"loss {running / count:.3f}")
                running, count = 0.0, 0
                if held is not None and validate(step):
                    stopped_early = True
                    break
    except KeyboardInterrupt:
        bar.close()
        reporter.warn(f"stopped after {step - 1} of {config.steps} steps: no model was written")
        raise
    finally:
        bar.close()
    if stopped_early:
        reporter.info(f"stopped at step {step}: the held-out frame's matte was best at step "
                      f"{record['best_step']} and has not improved for {config.patience} checks")
    record["steps_run"] = step
    if held is not None and best[1] is not None:
        network.load_state_dict(best[1])
    network.eval().requires_grad_(False)
    return record
