"""Segmenter: RGB frames in, alpha out. The preprocessing recipe lives here and nowhere else."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .compose import alpha_to_uint8
from .config import DeviceConfig, ModelConfig, Normalization, Precision, Runtime
from .device import BatchChoice, pick_batch, pick_device, pick_dtype, pick_runtime, precision_name, prepare_network
from .model.quantize import Int8Model, load_int8
from .model.weights import ResolvedWeights, load_weights, resolve, runs_as_is
from .progress import Reporter

T = TypeVar("T")

_MEAN = (0.485, 0.456, 0.406)  # ImageNet, as the authors' test script
_STD = (0.229, 0.224, 0.225)


def normalise(x: torch.Tensor, normalization: Normalization, mean: torch.Tensor | None = None,
              std: torch.Tensor | None = None) -> torch.Tensor:
    """[B,3,S,S] f32 RGB 0..255 -> the network's input scale (``tune`` trains on the same).
    ``mean``/``std``: the ImageNet ones as [1,3,1,1] on x's device, when the caller keeps them."""
    if normalization is Normalization.REFERENCE:
        x = x / x.amax(dim=(1, 2, 3), keepdim=True).clamp_min(1e-6)
    else:
        x = x / 255.0
    mean = torch.tensor(_MEAN, device=x.device).view(1, 3, 1, 1) if mean is None else mean
    std = torch.tensor(_STD, device=x.device).view(1, 3, 1, 1) if std is None else std
    return (x - mean) / std


@dataclass
class Segmenter:
    """A loaded U²-Net on a device, with its input recipe.

    Call it on a batch of frames: ``alpha = segmenter(frames)``.
    """

    # None: ``int8`` runs instead, or OpenVINO reads ``weights`` (rembg's ONNX file) as it is;
    # either way no PyTorch network is loaded
    network: nn.Module | None
    device: torch.device
    dtype: torch.dtype
    input_size: int
    normalization: Normalization
    weights: ResolvedWeights | None = None
    runtime: Runtime = Runtime.AUTO
    # batches in flight at once in ``predict_batches`` (each call then gets its share of the
    # cores); 0: the device's choice
    workers: int = 0
    cuda_graphs: bool = False  # on CUDA, replay the network from CUDA graphs
    int8: Int8Model | None = None  # run this INT8 network of ``network`` instead (CPU, OpenVINO)

    def __post_init__(self) -> None:
        as_is = (self.weights.path if self.network is None and self.int8 is None and self.weights
                 and runs_as_is(self.weights) else None)
        if self.network is None and self.int8 is None and as_is is None:
            raise ValueError("a Segmenter needs a network, rembg's ONNX file or an INT8 network")
        if self.network is not None:
            self.network = self.network.eval().requires_grad_(False)
        self._run = prepare_network(self.network, self.device, self.dtype, self.runtime, self.workers,
                                    self.cuda_graphs, self.int8.xml if self.int8 else None, onnx=as_is)
        self.runtime, self.workers = self._run.runtime, self._run.workers
        self._mean = torch.tensor(_MEAN, device=self.device).view(1, 3, 1, 1)
        self._std = torch.tensor(_STD, device=self.device).view(1, 3, 1, 1)

    @classmethod
    def from_config(cls, model: ModelConfig, device: DeviceConfig, reporter: Reporter | None = None,
                    workers: int = 0) -> "Segmenter":
        """Pick the device, fetch and verify the weights, load the network. ``workers``: batches
        in flight at once (0: the device's choice for throughput; 1 gives each call every core,
        for single images and live use)."""
        if model.normalization is Normalization.AUTO:
            raise ValueError("resolve AUTO normalisation with ModelConfig.resolved() first")
        torch_device = pick_device(device.kind)  # fail on a missing GPU before any download
        dtype = pick_dtype(device.precision, torch_device)
        int8 = device.precision is Precision.INT8
        pick_runtime(device.runtime, torch_device, dtype, int8)  # and on a runtime that can't run
        if int8:  # the INT8 network replaces the fp32 one: only its source is checked, not loaded
            quantized = load_int8(model.name)  # before the weights: a missing one says what to run
            network, weights = None, resolve(model.name, reporter)
        else:
            quantized, weights = None, resolve(model.name, reporter)
            # OpenVINO reads rembg's file as it is (the same output as the loaded network's export,
            # bit for bit): no PyTorch network, no export: ~70 MiB less, ready 1.2-2 s sooner
            as_is = runs_as_is(weights) and pick_runtime(device.runtime, torch_device, dtype) is Runtime.OPENVINO
            network = None if as_is else load_weights(weights)
        return cls(network, torch_device, dtype, model.input_size,
                   model.normalization, weights, device.runtime, workers, device.cuda_graphs, quantized)

    def describe(self) -> str:
        name = self.weights.spec.name if self.weights and self.weights.spec else (
            self.weights.path.name if self.weights else type(self.network).__name__)
        precision = "int8" if self.int8 else precision_name(self.dtype)
        graphs = ", CUDA graphs" if self.cuda_graphs and self.device.type == "cuda" else ""
        return (f"model {name} at {self.input_size}x{self.input_size} ({self.normalization.value} "
                f"normalisation) on {self.device.type} ({precision}, {self.runtime.value}{graphs}"
                + (f", {self.workers} frames at once)" if self.workers > 1 else ")"))

    @torch.inference_mode()
    def warm_up(self) -> None:
        """One call at batch 1, so the runtime's one-off work (OpenVINO compiling the network for
        the input shape, cuDNN choosing its kernels) is done before a live source starts."""
        self.predict_lowres(torch.zeros(1, 32, 32, 3, dtype=torch.uint8))

    @torch.inference_mode()
    def pick_batch(self, width: int, height: int) -> BatchChoice:
        """Frames per network call for ``width`` x ``height`` video when none was asked for
        (``device.pick_batch``: 1 on the CPU, probed on CUDA)."""
        return pick_batch(self._run, self.device, self.input_size, width * height)

    @torch.inference_mode()
    def network_input(self, frames: torch.Tensor) -> torch.Tensor:
        """frames: [B,H,W,3] uint8 RGB (any device) -> the network's input [B,3,S,S] f32 on
        self.device: resized and normalised (also what INT8 calibration feeds the network)."""
        x = self._pixels(frames)
        # Plain bilinear without anti-aliasing, as the authors' script (skimage resize, order 1):
        # their published masks are reproduced 10-40x closer than with an anti-aliased resize.
        return self._normalise(F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear",
                                             align_corners=False))

    def _pixels(self, frames: torch.Tensor) -> torch.Tensor:
        """[B,H,W,3] uint8 (any device) -> [B,3,H,W] f32 0..255 on self.device."""
        return frames.to(self.device, non_blocking=True).permute(0, 3, 1, 2).float()

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        """[B,3,S,S] f32 0..255 -> the network's input scale."""
        return normalise(x, self.normalization, self._mean, self._std)

    def _output(self, pred: torch.Tensor) -> torch.Tensor:
        if self.normalization is Normalization.REFERENCE:
            lo = pred.amin(dim=(1, 2, 3), keepdim=True)
            hi = pred.amax(dim=(1, 2, 3), keepdim=True)
            pred = (pred - lo) / (hi - lo).clamp_min(1e-6)
        return pred

    @torch.inference_mode()
    def predict_lowres(self, frames: torch.Tensor) -> torch.Tensor:
        """frames: [B,H,W,3] uint8 RGB (any device) -> saliency [B,1,S,S] f32 0..1 on self.device."""
        return self._output(self._run(self.network_input(frames)))  # [B,1,S,S] f32

    @torch.inference_mode()
    def predict_boxes(self, frames: torch.Tensor, boxes: torch.Tensor, batch: int = 1) -> torch.Tensor:
        """The network on a box of each frame: frames [N,H,W,3] uint8 RGB (any device), boxes
        [N,4] f32 (x0, y0, x1, y1 in pixels, edges; may reach past the frame, which is then
        extended by repeating its edge pixels) -> saliency [N,1,S,S] f32 0..1 of each box, on
        self.device. A box of the whole frame gives ``predict_lowres``'s input exactly.

        The network runs on ``batch`` boxes at a time (the last call padded with copies), the
        frame loop's batch: it then never sees an input shape the first look did not, as
        OpenVINO compiles and keeps a network for each shape (0.25-0.9 GiB more each for u2netp
        at 320², and a pause of a second or more while it compiles)."""
        x = self._pixels(frames)
        height, width = x.shape[-2:]
        boxes = boxes.to(self.device, torch.float32)
        theta = torch.zeros(x.shape[0], 2, 3, device=self.device)
        # the box in the frame's normalised coordinates (-1..1 across the frame's pixel edges)
        theta[:, 0, 0] = (boxes[:, 2] - boxes[:, 0]) / width
        theta[:, 0, 2] = (boxes[:, 0] + boxes[:, 2]) / width - 1
        theta[:, 1, 1] = (boxes[:, 3] - boxes[:, 1]) / height
        theta[:, 1, 2] = (boxes[:, 1] + boxes[:, 3]) / height - 1
        size = (x.shape[0], 3, self.input_size, self.input_size)
        grid = F.affine_grid(theta, size, align_corners=False)
        crops = self._normalise(F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False))
        count, batch = crops.shape[0], max(1, batch)
        if count % batch:
            crops = torch.cat([crops, crops[-1:].expand(batch - count % batch, -1, -1, -1)])
        return self._output(torch.cat([self._run(crops[i:i + batch]) for i in range(0, len(crops), batch)])[:count])

    def predict_batches(self, batches: Iterable[tuple[torch.Tensor, T]]) -> Iterator[tuple[torch.Tensor, T, torch.Tensor]]:
        """(frames [B,H,W,3] uint8, tag) pairs -> (frames, tag, saliency [B,1,S,S] f32), in the
        order given, with up to ``workers`` batches in the network at once (the rest of the
        frame loop runs meanwhile)."""
        if self.workers == 1:
            for frames, tag in batches:
                yield frames, tag, self.predict_lowres(frames)
            return
        pending: deque[tuple[torch.Tensor, T, Future]] = deque()
        with ThreadPoolExecutor(self.workers, thread_name_prefix="u2video-model") as pool:
            try:
                for frames, tag in batches:
                    pending.append((frames, tag, pool.submit(self.predict_lowres, frames)))
                    if len(pending) > self.workers:
                        done_frames, done_tag, future = pending.popleft()
                        yield done_frames, done_tag, future.result()
                while pending:
                    done_frames, done_tag, future = pending.popleft()
                    yield done_frames, done_tag, future.result()
            finally:
                for _, _, future in pending:
                    future.cancel()

    @torch.inference_mode()
    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        """frames: [B,H,W,3] uint8 RGB -> alpha [B,1,H,W] f32 0..1 on self.device (bilinear upsampling)."""
        height, width = frames.shape[1:3]
        pred = self.predict_lowres(frames)
        alpha = F.interpolate(pred, size=(height, width), mode="bilinear", align_corners=False, antialias=True)
        return alpha.clamp_(0.0, 1.0)

    def mask(self, image: np.ndarray) -> np.ndarray:
        """image: [H,W,3] uint8 RGB -> mask [H,W] uint8 (255 = subject)."""
        alpha = self(torch.from_numpy(np.ascontiguousarray(image))[None])
        return alpha_to_uint8(alpha)[0, 0].cpu().numpy()
