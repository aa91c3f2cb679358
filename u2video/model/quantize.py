"""INT8 U²-Net for the CPU: made on this machine from the store's fp32 weights, never downloaded.

``quantize`` runs NNCF's post-training quantisation for OpenVINO on frames of the user's own
footage. Plain quantisation of U²-Net damages the matte (an IoU of ~0.9 against fp32, README
"INT8"): the error is spread through the network, so by default NNCF's accuracy control reverts
the layers that cost most, back to floating point, until the mean IoU at 0.5 against the fp32
network on held-out frames has dropped by at most ``max_drop``.

The result sits in the store beside the weights: ``<name>-int8.xml`` and ``.bin`` (OpenVINO's
IR) and ``<name>-int8.json``, which says how it was made (source weights and their md5, the
calibration files and theirs, the method, the versions, the measured agreement with fp32) and
holds the md5 of the two IR files, checked before every load. The JSON is written last, so a
quantisation that stopped half-way leaves no model that loads.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import torch

from ..config import Normalization, Runtime
from ..errors import ModelError
from ..progress import Reporter, SilentReporter
from .registry import MODELS
from .store import file_md5, lookup, store_dir
from .weights import load_network


@dataclass(frozen=True)
class QuantizeConfig:
    """How ``quantize`` makes the INT8 network."""

    input_size: int = 320  # the network's input side it is calibrated at (it runs at any size)
    frames: int = 150  # sampled evenly from the media; 2 of every 3 calibrate, the 3rd validates
    # accuracy control: the largest drop of the mean IoU at 0.5 against fp32 allowed; None:
    # plain quantisation (minutes faster, and a worse matte)
    max_drop: float | None = 0.01
    normalization: Normalization = Normalization.FIXED


@dataclass(frozen=True)
class Int8Model:
    """An INT8 network in the store, its files verified."""

    name: str
    xml: Path
    provenance: dict = field(compare=False)


def int8_paths(name: str) -> tuple[Path, Path, Path]:
    """(xml, bin, json) of ``name``'s INT8 network in the store."""
    base = store_dir() / f"{name}-int8"
    return base.with_suffix(".xml"), base.with_suffix(".bin"), base.with_suffix(".json")


def load_int8(name: str) -> Int8Model:
    """The INT8 network ``u2video models quantize <name>`` made, after checking its files against
    the md5 its JSON records. Raises ModelError saying what to run when it is missing or damaged."""
    if name not in MODELS:
        raise ModelError(f"--precision int8 takes a model of the store (one of {', '.join(MODELS)}), "
                         f"not {name}: give --model u2netp, say")
    xml, bin_, meta = int8_paths(name)
    make = f"make it with `u2video models quantize {name} --calibrate CLIP` (a clip like the ones you will process)"
    if not meta.is_file():
        raise ModelError(f"there is no INT8 {name} in the store {store_dir()}: {make}")
    try:
        provenance = json.loads(meta.read_text())
        files = provenance["files"]
    except (OSError, ValueError, KeyError, TypeError):
        raise ModelError(f"{meta} is damaged (not the JSON `u2video models quantize` writes): {make}") from None
    for path in (xml, bin_):
        if not path.is_file() or file_md5(path) != files.get(path.name):
            raise ModelError(f"{path} is missing or does not match the md5 in {meta.name}: the INT8 {name} is "
                             f"damaged; {make}")
    return Int8Model(name, xml, provenance)


def quantize(name: str, media: list[Path], config: QuantizeConfig = QuantizeConfig(),
             reporter: Reporter | None = None) -> Int8Model:
    """Make ``name``'s INT8 network from frames of ``media`` (video files or images) and put it in
    the store (replacing one there). Takes minutes: accuracy control compiles and validates the
    network once for each group of layers it tries."""
    try:
        import nncf
        import openvino as ov
    except ImportError:
        raise ModelError("making an INT8 network needs NNCF and OpenVINO: pip install nncf") from None
    from ..device import export_onnx, openvino_core
    from ..segmenter import Segmenter

    reporter = reporter or SilentReporter()
    lookup(name)  # an unknown name fails before any work
    if not media:
        raise ModelError("give footage to calibrate on: --calibrate CLIP (or images), like what you will process")
    frames, sources = _sample(media, config.frames)  # footage that can't be read fails before the weights load
    network, weights = load_network(name, reporter)
    size = config.input_size
    prepare = Segmenter(network, torch.device("cpu"), torch.float32, size, config.normalization, weights,
                        Runtime.TORCH, workers=1)
    inputs = [prepare.network_input(torch.from_numpy(f)[None]).numpy() for f in frames]  # [1,3,S,S] f32 each
    calibration, validation = ([x for i, x in enumerate(inputs) if i % 3 != 2],
                               [x for i, x in enumerate(inputs) if i % 3 == 2] or inputs[:1])

    core = openvino_core()  # the process's one (see device.openvino_core)
    fp32 = core.read_model(export_onnx(network))
    fp32.reshape([1, 3, size, size])
    config_ov = {"INFERENCE_PRECISION_HINT": "f32"}
    reference = _outputs(core.compile_model(fp32, "CPU", config_ov), validation)

    def mean_iou(compiled: object, data: list[np.ndarray]) -> float:
        return float(np.mean([iou(a, b) for a, b in zip(_outputs(compiled, data), reference)]))

    nncf.set_log_level(40)  # errors only: its INFO lines are not ours to print
    reporter.info(f"quantizing {name} at {size}x{size} on {len(calibration)} frames, checked on {len(validation)}"
                  + ("" if config.max_drop is None else " with accuracy control (tens of minutes on 2 cores)"))
    try:
        if config.max_drop is None:
            quantized = nncf.quantize(fp32, nncf.Dataset(calibration), preset=nncf.QuantizationPreset.MIXED,
                                      subset_size=len(calibration))
            method = "NNCF post-training quantisation (MIXED preset)"
        else:
            quantized = nncf.quantize_with_accuracy_control(
                fp32, nncf.Dataset(calibration), nncf.Dataset(validation), validation_fn=mean_iou,
                max_drop=config.max_drop, drop_type=nncf.DropType.ABSOLUTE,
                preset=nncf.QuantizationPreset.MIXED, subset_size=len(calibration))
            method = (f"NNCF post-training quantisation (MIXED preset) with accuracy control: layers reverted to "
                      f"fp32 until the mean IoU at 0.5 against fp32 dropped by at most {config.max_drop}")
    except Exception as e:  # NNCF raises its own kinds for models or data it can't handle
        raise ModelError(f"NNCF could not quantize {name} ({type(e).__name__}: {' '.join(str(e).split())[:300]}): "
                         "try other calibration footage, or --plain") from None

    outputs = _outputs(core.compile_model(quantized, "CPU", config_ov), validation)
    differences = [float(np.abs(a - b).mean()) for a, b in zip(outputs, reference)]
    ious = [iou(a, b) for a, b in zip(outputs, reference)]
    provenance = {
        "model": name, "made_by": "u2video models quantize", "created": datetime.datetime.now(
            datetime.timezone.utc).isoformat(timespec="seconds"),
        "source": {"file": weights.path.name, "md5": MODELS[name].md5},  # verified as it loaded
        "input_size": size, "normalization": config.normalization.value, "method": method,
        "calibration": {"frames": len(calibration), "validation_frames": len(validation), "media": sources},
        "versions": {p: _version(p) for p in ("u2video", "nncf", "openvino", "torch")},
        # agreement with the fp32 network on the validation frames (sigmoid outputs at input_size)
        "validation": {"mean_abs_diff": round(float(np.mean(differences)), 5),
                       "max_abs_diff": round(float(np.max(differences)), 5),
                       "iou_mean": round(float(np.mean(ious)), 5), "iou_min": round(float(np.min(ious)), 5)},
    }
    return _store(name, quantized, provenance, ov)


def _sample(media: list[Path], count: int) -> tuple[list[np.ndarray], list[dict]]:
    """About ``count`` frames ([H,W,3] uint8 RGB) spread evenly over ``media``, and per file its
    name, md5, how many frames it gave and (videos) which, counted from 0."""
    from ..media.images import is_image, read_image
    from ..media.source import VideoSource

    for path in media:
        if not Path(path).is_file():
            raise ModelError(f"{path} does not exist: give video files or images to calibrate on")
    videos = [Path(p) for p in media if not is_image(Path(p))]
    images = [Path(p) for p in media if is_image(Path(p))]
    frames: list[np.ndarray] = [read_image(p) for p in images]
    sources = [{"file": p.name, "md5": file_md5(p), "frames": 1} for p in images]
    share = max(1, (count - len(frames)) // max(1, len(videos)))
    for path in videos:
        with VideoSource(path) as source:
            total = source.info.frames or share
            step = max(1, total // share)
            taken = []
            for frame in source.frames():
                if frame.index % step == 0:
                    taken.append(frame)
                    if len(taken) == share:
                        break
        frames += [f.rgb for f in taken]
        sources.append({"file": path.name, "md5": file_md5(path), "frames": len(taken),
                        "indices": [f.index for f in taken]})
    if len(frames) < 3:
        raise ModelError(f"only {len(frames)} frame(s) to calibrate on: give longer clips or more images")
    return frames, sources


def _outputs(compiled: object, inputs: list[np.ndarray]) -> list[np.ndarray]:
    request = compiled.create_infer_request()  # type: ignore[attr-defined]
    return [request.infer({0: x})[0][0, 0].copy() for x in inputs]


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = ((a > 0.5) | (b > 0.5)).sum()
    return float(((a > 0.5) & (b > 0.5)).sum() / union) if union else 1.0


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "unknown"


def _store(name: str, quantized: object, provenance: dict, ov: object) -> Int8Model:
    xml, bin_, meta = int8_paths(name)
    try:
        xml.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(dir=xml.parent, prefix=f".{name}-int8."))
    except OSError as e:
        raise ModelError(f"cannot write to the model store {xml.parent} ({e.strerror}): "
                         "set U2NET_HOME to a writable folder") from None
    try:
        meta.unlink(missing_ok=True)  # the old network stops loading before its files change
        ov.save_model(quantized, str(work / xml.name), compress_to_fp16=False)  # type: ignore[attr-defined]
        provenance["files"] = {xml.name: file_md5(work / xml.name), bin_.name: file_md5(work / bin_.name)}
        (work / meta.name).write_text(json.dumps(provenance, indent=1) + "\n")
        for path in (bin_, xml, meta):  # the JSON last: only a complete set loads
            os.replace(work / path.name, path)
    except OSError as e:
        raise ModelError(f"could not write the INT8 {name} to {xml.parent} ({e.strerror}): check free space") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return Int8Model(name, xml, provenance)
