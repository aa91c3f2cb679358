"""The weight store: locate -> download (progress, checksum, atomic rename) -> load.

The store is ``$U2NET_HOME``, else ``$XDG_DATA_HOME/.u2net``, else ``~/.u2net``: rembg's rule, so
files rembg downloaded are reused as they are and the other way round. Files are verified
against the registry's md5 before every load. Two formats load into the PyTorch networks:

* the authors' ``.pth`` checkpoints (a state dict with BatchNorm, folded after loading), and
* rembg's ``.onnx`` files, whose exporter already folded BatchNorm: their Conv weights, in
  graph order, are mapped onto the network's convolutions in execution order.
"""

from __future__ import annotations

import hashlib
import os
import socket
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from ..errors import ModelError
from ..progress import Reporter, SilentReporter
from .registry import MODELS, ModelSpec
from .u2net import ARCHITECTURES, fold_batchnorm

OFFLINE_ENV = "U2VIDEO_OFFLINE"  # set to 1 to never download (tests, air-gapped machines)
_CHUNK = 1 << 20


def store_dir() -> Path:
    """The folder weights live in (rembg's rule; it need not exist yet)."""
    default = os.path.join(os.getenv("XDG_DATA_HOME", "~"), ".u2net")
    return Path(os.path.expanduser(os.getenv("U2NET_HOME", default)))


def file_md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class StoreEntry:
    spec: ModelSpec
    path: Path
    present: bool
    verified: bool  # present and its md5 matches the registry


def list_store() -> list[StoreEntry]:
    """Every registry model with its path in the store and whether it is there and intact."""
    entries = []
    for spec in MODELS.values():
        path = store_dir() / spec.filename
        present = path.is_file()
        entries.append(StoreEntry(spec, path, present, present and file_md5(path) == spec.md5))
    return entries


def lookup(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        known = ", ".join(MODELS)
        raise ModelError(
            f"unknown model '{name}': use one of {known}, a tuned model from `u2video models`, or a path to a "
            ".onnx or .pth file"
        ) from None


def _place_by_hand(spec: ModelSpec, path: Path) -> str:
    return f"place {spec.filename} (md5 {spec.md5}, from {spec.url}) at {path}"


def offline() -> bool:
    return os.getenv(OFFLINE_ENV, "") not in ("", "0")


def verify(spec: ModelSpec, path: Path) -> None:
    """Raise ModelError unless ``path`` holds exactly the registry's file for ``spec``."""
    actual = file_md5(path)
    if actual != spec.md5:
        remedy = (f"{_place_by_hand(spec, path)} (downloads are off: {OFFLINE_ENV} is set)" if offline()
                  else f"delete it and run `u2video models pull {spec.name}`")
        raise ModelError(f"{path} has md5 {actual}, not {spec.md5} as {spec.name} should: the file is damaged "
                         f"or not {spec.name}; {remedy}")


def pull(spec: ModelSpec, reporter: Reporter | None = None, force: bool = False) -> Path:
    """Download ``spec`` into the store unless an intact copy is there; return its path.

    The download goes to a temporary file in the store, is checked against the md5, and only
    then renamed into place, so the store never holds a partial or wrong file.
    """
    reporter = reporter or SilentReporter()
    target = store_dir() / spec.filename
    if target.is_file() and not force:
        verify(spec, target)
        return target
    if offline():
        raise ModelError(f"{spec.name} is not in the store and downloads are off ({OFFLINE_ENV}): "
                         + _place_by_hand(spec, target))
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{spec.filename}.", suffix=".part")
    except OSError as e:
        raise ModelError(f"cannot write to the model store {target.parent} ({e.strerror}): "
                         "set U2NET_HOME to a writable folder") from None
    tmp = Path(tmp_name)
    try:
        digest = hashlib.md5()
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(spec.url, timeout=30) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            bar = reporter.bar(f"downloading {spec.filename}", total, "B")
            try:
                for chunk in iter(lambda: response.read(_CHUNK), b""):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
            finally:
                bar.close()
        if digest.hexdigest() != spec.md5:
            raise ModelError(f"the download of {spec.filename} from {spec.url} has md5 "
                             f"{digest.hexdigest()}, not {spec.md5}; try again, or "
                             + _place_by_hand(spec, target))
        os.replace(tmp, target)
    except (urllib.error.URLError, socket.timeout, ConnectionError) as e:
        reason = getattr(e, "reason", e)
        raise ModelError(f"could not download {spec.filename} ({reason}); without network, "
                         + _place_by_hand(spec, target)) from None
    finally:
        tmp.unlink(missing_ok=True)
    return target


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
