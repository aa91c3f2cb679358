"""Shared fixtures. Test media is generated here; ../shared is read in place when present."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
# ../shared beside the checkout; $U2VIDEO_SHARED where the tests run from a copy (tests/mutants.py)
SHARED = Path(os.environ.get("U2VIDEO_SHARED") or REPO.parent / "shared")
REFERENCE = SHARED / "reference" / "u2net_official"


# .ci/run sets this: there ../shared is part of the test set, and a test that needs it fails
# (instead of skipping, which would leave CI green with the fidelity tests never run)
NEED_SHARED = os.environ.get("U2VIDEO_TESTS_NEED_SHARED") == "1"

# Ray starts its workers at nice 15: beside any busy process (CI's neighbours, the CPU-hog runs
# of tests/README.md) they got almost no CPU and the Ray tests took most of half an hour. The
# tests' local Ray, in process or started by a CLI subprocess, runs its workers at our priority.
os.environ.setdefault("RAY_worker_niceness", "0")


def missing_shared(what: str) -> None:
    """Skip a test whose data (rembg's weights, ../shared) is absent; fail it where CI needs that data."""
    if NEED_SHARED:
        pytest.fail(f"{what} (U2VIDEO_TESTS_NEED_SHARED=1: CI runs with ../shared beside the clone and "
                    "U2NET_HOME=../shared/models)", pytrace=False)
    pytest.skip(what)


def weights_dir() -> Path | None:
    """Where rembg's u2netp.onnx is: $U2NET_HOME (as .ci/run sets it), else ../shared/models."""
    for folder in (os.environ.get("U2NET_HOME"), SHARED / "models"):
        if folder and (Path(folder) / "u2netp.onnx").is_file():
            return Path(folder).resolve()  # absolute: tests link to it from temporary stores
    return None


# Tests must never fetch weights; a missing file becomes a ModelError instead. Set at import, not
# in a function fixture, so that module-scoped fixtures (test_int8's quantisation) are covered too.
os.environ["U2VIDEO_OFFLINE"] = "1"


@pytest.fixture
def u2netp_store(monkeypatch) -> Path:
    folder = weights_dir()
    if folder is None:
        missing_shared("needs rembg's u2netp.onnx in $U2NET_HOME or ../shared/models")
    monkeypatch.setenv("U2NET_HOME", str(folder))
    return folder


@pytest.fixture
def reference_dir() -> Path:
    if not (REFERENCE / "images").is_dir():
        missing_shared("needs ../shared/reference/u2net_official (official U²-Net test images and outputs)")
    return REFERENCE


def synthetic_scene(height: int = 96, width: int = 128, seed: int = 0) -> np.ndarray:
    """[H,W,3] uint8 RGB: a bright disc (the subject) over a smooth two-colour gradient with noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.empty((height, width, 3), np.float32)
    img[..., 0] = 40 + 60 * xx / width
    img[..., 1] = 70 + 40 * yy / height
    img[..., 2] = 110
    inside = (yy - height * 0.55) ** 2 + (xx - width * 0.5) ** 2 < (min(height, width) * 0.3) ** 2
    img[inside] = (230, 190, 60)
    img += rng.normal(0, 4, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def write_rgb(path: Path, rgb: np.ndarray) -> Path:
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


def read_rgba(path: Path) -> np.ndarray:
    bgra = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert bgra is not None and bgra.shape[2] == 4, f"{path} is not an RGBA image"
    return cv2.cvtColor(bgra, cv2.COLOR_BGRA2RGBA)


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def randomise_batchnorm(net: torch.nn.Module) -> torch.nn.Module:
    """Give every BatchNorm non-trivial statistics, as a trained network has (in place)."""
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.3, 0.3)
    return net
