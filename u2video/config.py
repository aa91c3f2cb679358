"""Options as frozen dataclasses and str Enums. Validation raises ConfigError in __post_init__.

Commands fill these from flags (later: from a preset, then flags); the library only reads them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum

from .errors import ConfigError


class DeviceKind(str, Enum):
    AUTO = "auto"  # CUDA when PyTorch sees a GPU, else CPU
    CPU = "cpu"
    CUDA = "cuda"


class Precision(str, Enum):
    FP32 = "fp32"
    FP16 = "fp16"


class Normalization(str, Enum):
    """How the network's input and output are scaled.

    REFERENCE is the authors' test script: divide each image by its own max, min-max normalise
    each prediction. It reproduces their published masks, so it is the default for images.
    FIXED divides by 255 and keeps the sigmoid output as it is: a frame's matte then depends on
    that frame alone with a constant gain, which video needs (per-frame min-max makes mattes
    flicker).
    """

    AUTO = "auto"  # REFERENCE for images, FIXED for video
    REFERENCE = "reference"
    FIXED = "fixed"


@dataclass(frozen=True)
class ModelConfig:
    name: str = "u2netp"  # registry name or a path to a .onnx/.pth file
    input_size: int = 320  # the square size the network sees
    normalization: Normalization = Normalization.AUTO

    def resolved(self, video: bool) -> "ModelConfig":
        """AUTO normalisation made concrete for images or video."""
        if self.normalization is not Normalization.AUTO:
            return self
        return replace(self, normalization=Normalization.FIXED if video else Normalization.REFERENCE)

    def __post_init__(self) -> None:
        if not 32 <= self.input_size <= 2048 or self.input_size % 32:
            raise ConfigError(f"input size {self.input_size} is not a multiple of 32 between 32 and 2048: "
                              "use e.g. 320 (the trained size), 256 or 192")


@dataclass(frozen=True)
class DeviceConfig:
    kind: DeviceKind = DeviceKind.AUTO
    precision: Precision = Precision.FP32
    batch: int = 1  # frames per network call

    def __post_init__(self) -> None:
        if self.batch < 1:
            raise ConfigError(f"batch size {self.batch} must be at least 1")


@dataclass(frozen=True)
class OutputConfig:
    mask_only: bool = False  # write the grey mask/matte instead of the RGBA cut-out
    overwrite: bool = False  # replace outputs that already exist
