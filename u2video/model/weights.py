"""Loading weights: a registry name (pulled and verified by ``store.py``), a tuned model or a
file -> a PyTorch U²-Net. Two formats load into the networks:

* the authors' ``.pth`` checkpoints (a state dict with BatchNorm, folded after loading), and
* rembg's ``.onnx`` files, whose exporter already folded BatchNorm: their Conv weights, in
  graph order, are mapped onto the network's convolutions in execution order.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from ..errors import ModelError
from ..progress import Reporter
from .registry import MODELS, ModelSpec
from .store import lookup, pull
from .u2net import ARCHITECTURES, fold_batchnorm


@dataclass(frozen=True)
class ResolvedWeights:
    path: Path
    spec: ModelSpec | None  # None for a file given by path
    architecture: str | None  # None: detect from the file


def resolve(model: str, reporter: Reporter | None = None) -> ResolvedWeights:
    """A registry name (downloaded and verified as needed), a tuned model's name in the store, or a
    path to a .onnx/.pth file (a tuned one checked against its sidecar)."""
    if model in MODELS:
        spec = MODELS[model]
        return ResolvedWeights(pull(spec, reporter), spec, spec.architecture)
    from .tuned import check_tuned, tuned_in_store  # tuned.py builds on this module

    path = tuned_in_store(model) or Path(model).expanduser()
    if path.suffix.lower() in (".onnx", ".pth", ".pt"):
        if not path.is_file():
            raise ModelError(f"model file {path} does not exist: check the path")
        # a tuned model's sidecar names its architecture, once its md5 matched the weights
        return ResolvedWeights(path, None, check_tuned(path) if path.suffix.lower() != ".onnx" else None)
    lookup(model)  # raises the unknown-name error
    raise AssertionError("unreachable")


def load_network(model: str, reporter: Reporter | None = None) -> tuple[nn.Module, ResolvedWeights]:
    """Load a U²-Net by registry name or path: eval mode, BatchNorm folded, fp32 on the CPU."""
    weights = resolve(model, reporter)
    return load_weights(weights), weights


def load_weights(weights: ResolvedWeights) -> nn.Module:
    """Resolved weights -> their network: eval mode, BatchNorm folded, fp32 on the CPU."""
    if weights.path.suffix.lower() == ".onnx":
        return load_onnx(weights.path, weights.architecture)
    return load_pth(weights.path, weights.architecture)


def runs_as_is(weights: ResolvedWeights) -> bool:
    """True for a registry file in rembg's ONNX format (its md5 checked by ``resolve``): a
    runtime that reads ONNX may run it as it is, with no PyTorch network loaded or exported."""
    return weights.spec is not None and weights.path.suffix.lower() == ".onnx"


# --- .pth ---------------------------------------------------------------------------------

def load_pth(path: Path, architecture: str | None = None) -> nn.Module:
    """An authors'-style checkpoint (state dict, with or without BatchNorm) -> folded network."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many kinds for a file that is not a checkpoint
        raise ModelError(f"{path} is not a PyTorch checkpoint u2video can read ({type(e).__name__}): "
                         "give a U²-Net .pth or .onnx file") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(f"{path} holds no state dict of tensors: give a U²-Net .pth or .onnx file")
    state = {k.removeprefix("module."): v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    has_bn = any(".bn_s1." in k for k in state)
    for name in [architecture] if architecture else list(ARCHITECTURES):
        net = ARCHITECTURES[name]().eval()
        if not has_bn:
            fold_batchnorm(net)
        expected = {k: v.shape for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
        if expected == {k: v.shape for k, v in state.items()}:
            net.load_state_dict(state, strict=False)
            return fold_batchnorm(net)
    raise ModelError(f"{path} is not a U²-Net or U²-Netp checkpoint (its tensor names or shapes "
                     "differ): give the authors' .pth or rembg's .onnx")


# --- .onnx --------------------------------------------------------------------------------

def _onnx_conv_params(path: Path) -> list[tuple[np.ndarray, np.ndarray, tuple[int, ...]]]:
    """(weight, bias, dilations) of every Conv node in graph order, as float32 arrays."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise ModelError("reading .onnx weights needs the onnx package: pip install 'u2video[onnx]'") from None
    try:
        graph = onnx.load(str(path)).graph
    except Exception as e:  # protobuf's DecodeError and friends
        raise ModelError(f"{path} is not a readable ONNX file ({type(e).__name__}): "
                         "delete it or give another model") from None

    initializers = {t.name: t for t in graph.initializer}
    producers = {out: node for node in graph.node for out in node.output}

    def constant(name: str) -> np.ndarray:
        # Weights may sit behind a Cast (fp16 files) or a DequantizeLinear (int8 files).
        if name in initializers:
            return numpy_helper.to_array(initializers[name])
        node = producers.get(name)
        if node is not None and node.op_type == "Constant":
            return numpy_helper.to_array(node.attribute[0].t)
        if node is not None and node.op_type in ("Cast", "Identity"):
            return constant(node.input[0])
        if node is not None and node.op_type == "DequantizeLinear":
            x = constant(node.input[0]).astype(np.float32)
            scale = constant(node.input[1]).astype(np.float32)
            zero = constant(node.input[2]).astype(np.float32) if len(node.input) > 2 else np.float32(0)
            axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
            if scale.ndim == 1:
                shape = [1] * x.ndim
                shape[axis] = -1
                scale, zero = scale.reshape(shape), np.reshape(zero, shape) if np.ndim(zero) else zero
            return (x - zero) * scale
        raise ModelError(f"{path}: a Conv weight ('{name}') is computed by the graph, not stored; "
                         "this ONNX layout is not supported, use the .pth file instead")

    params = []
    for node in graph.node:
        if node.op_type != "Conv":
            continue
        weight = constant(node.input[1]).astype(np.float32)
        bias = (constant(node.input[2]).astype(np.float32) if len(node.input) > 2 and node.input[2]
                else np.zeros(weight.shape[0], np.float32))
        dil = next((tuple(a.ints) for a in node.attribute if a.name == "dilations"), (1, 1))
        params.append((weight, bias, dil))
    return params


def _convs_in_execution_order(net: nn.Module) -> list[nn.Conv2d]:
    order: list[nn.Conv2d] = []
    hooks = [m.register_forward_hook(lambda m, i, o: order.append(m))
             for m in net.modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.no_grad():
            net(torch.zeros(1, 3, 32, 32))
    finally:
        for h in hooks:
            h.remove()
    return order


def load_onnx(path: Path, architecture: str | None = None) -> nn.Module:
    """rembg-style ONNX file (BatchNorm folded) -> the equivalent folded PyTorch network."""
    params = _onnx_conv_params(path)
    for name in [architecture] if architecture else list(ARCHITECTURES):
        net = fold_batchnorm(ARCHITECTURES[name]())
        convs = _convs_in_execution_order(net)
        if len(convs) == len(params) and all(
            c.weight.shape == w.shape and tuple(c.dilation) == d for c, (w, _, d) in zip(convs, params)
        ):
            with torch.no_grad():
                for conv, (w, b, _) in zip(convs, params):
                    conv.weight.copy_(torch.from_numpy(w))
                    conv.bias.copy_(torch.from_numpy(b))
            return net
    raise ModelError(f"{path} is not a U²-Net or U²-Netp ONNX graph (its {len(params)} convolutions "
                     "do not match either network): give a U²-Net .onnx or .pth file")
