"""Options as frozen dataclasses and str Enums. Validation raises ConfigError in __post_init__.

Commands fill these from defaults, then a preset (``presets.py``), then flags; the library only
reads them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import TypeVar

from .errors import ConfigError

T = TypeVar("T")


class DeviceKind(str, Enum):
    AUTO = "auto"  # CUDA when PyTorch sees a GPU, else CPU
    CPU = "cpu"
    CUDA = "cuda"


class Precision(str, Enum):
    """The network's number format. AUTO: fp16 on CUDA (twice the speed of fp32 there, within
    2/255 of its mattes), fp32 on the CPU (where half formats are slower). INT8: on the CPU, by
    OpenVINO, the INT8 network ``u2video models quantize`` made and put in the store."""

    AUTO = "auto"
    FP32 = "fp32"
    FP16 = "fp16"
    BF16 = "bf16"
    INT8 = "int8"


class Runtime(str, Enum):
    """What runs the network. AUTO: on the CPU onnxruntime, else OpenVINO, whichever is installed
    first in that order (README "Speed", "OpenVINO"); PyTorch on CUDA."""

    AUTO = "auto"
    TORCH = "torch"
    ONNXRUNTIME = "onnxruntime"
    OPENVINO = "openvino"


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
    precision: Precision = Precision.AUTO
    batch: int | None = None  # frames per network call; None: 1 on the CPU, probed on CUDA (device.pick_batch)
    runtime: Runtime = Runtime.AUTO
    # CUDA: replay the network from CUDA graphs (device.CudaGraphNetwork); off until measured
    # faster on a GPU (benchmarks/gpu.py, part b); a preset's [device] table can turn it on
    cuda_graphs: bool = False

    def __post_init__(self) -> None:
        if self.batch is not None and self.batch < 1:
            raise ConfigError(f"batch size {self.batch} must be at least 1")


class Crop(str, Enum):
    """Whether the network looks again at a box around a subject that is small in the frame
    (``crop.py``). AUTO: on each frame where the subject's boxes cover under half of it; OFF:
    one look at the whole frame."""

    AUTO = "auto"
    OFF = "off"


@dataclass(frozen=True)
class MatteConfig:
    """How the network's prediction becomes the video's matte (see ``alpha.py``)."""

    # Chosen with benchmarks/quality.py (README, "Steadier mattes"): smoothing lowers flicker and
    # dtSSD; refinement lowers the gradient error, MAD and dtSSD (alone it raises flicker, which
    # the smoothing takes back).
    smooth: int = 6  # temporal smoothing: frames each side of the one being finished (0: off)
    refine: bool = True  # guided upsampling to full resolution (False: plain bilinear)
    crop: Crop = Crop.AUTO  # the subject-crop pass (README, "Small subjects")

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "crop", Crop(self.crop))  # a preset gives a string
        except ValueError:
            raise ConfigError(f"crop {self.crop!r} is not one of auto, off") from None
        if not 0 <= self.smooth <= 15:
            raise ConfigError(f"--smooth {self.smooth} is out of range: give 0 (off) to 15 frames")


@dataclass(frozen=True)
class VideoFormat:
    """One way to write video: what a preset's [format] table holds.

    ``container`` "image2" means a numbered PNG sequence (a folder or a %05d.png pattern).
    ``audio_codec`` "copy" remuxes each audio stream where the container takes its codec and
    transcodes the others to the container's usual codec; any other value transcodes to it.
    """

    extension: str  # ".mov"; "" for an image sequence
    container: str  # FFmpeg muxer: mov, mp4, webm, matroska, image2
    codec: str  # FFmpeg encoder: prores_ks, libvpx-vp9, libx264, libx265, ffv1, png
    pix_fmt: str  # encoder pixel format: yuva444p10le, yuva420p, yuv420p, gray, rgba
    codec_options: Mapping[str, str] = field(default_factory=dict)
    codec_tag: str | None = None  # e.g. "hvc1" so Apple players open HEVC
    container_options: Mapping[str, str] = field(default_factory=dict)
    audio_codec: str = "copy"
    audio_bitrate: str | None = None  # e.g. "128k" for a transcode; None: the encoder's default

    @property
    def alpha(self) -> bool:
        """Whether the pixel format keeps an alpha channel."""
        return self.pix_fmt.startswith(("yuva", "rgba", "bgra", "argb", "gbrap", "ya"))

    @property
    def sequence(self) -> bool:
        return self.container == "image2"

    @property
    def chroma_420(self) -> bool:
        """4:2:0 encoders other than VP9 need even width and height."""
        return "420" in self.pix_fmt and self.codec in ("libx264", "libx265", "h264_nvenc", "hevc_nvenc")


@dataclass(frozen=True)
class OutputConfig:
    mask_only: bool = False  # write the grey mask/matte instead of the RGBA cut-out / composite
    overwrite: bool = False  # replace outputs that already exist
    format: VideoFormat | None = None  # video format; None: chosen from the output's extension
    max_height: int | None = None  # scale video down to at most this height (keeps aspect)
    crf: int | None = None  # constant-quality setting for H.264/H.265/VP9; None: the format's
    start: float | None = None  # seconds into the input where output starts (video)
    end: float | None = None  # seconds into the input where output ends (video)
    strict: bool = False  # frames the input lost (damage, truncation) are an error, not a warning
    # video to PNGs: only these frames (0-based, from the clip's start), or every Nth, each named by
    # its frame number (masks to correct for ``tune``)
    frames: tuple[int, ...] | None = None
    every: int | None = None
    picture: bool = False  # write the frames themselves, no matte (the pictures masks are corrected on)

    def selects(self, index: int) -> bool:
        """Whether frame ``index`` (0-based) is written."""
        if self.frames is not None:
            return index in self.frames
        return self.every is None or index % self.every == 0

    @property
    def selecting(self) -> bool:
        return self.frames is not None or self.every is not None

    def __post_init__(self) -> None:
        if self.frames is not None:
            if not self.frames or any(f < 0 for f in self.frames):
                raise ConfigError("--frames needs frame numbers from 0 up, e.g. --frames 0,40,80")
            object.__setattr__(self, "frames", tuple(sorted(set(self.frames))))
        if self.every is not None and self.every < 1:
            raise ConfigError(f"--every {self.every} must be at least 1: e.g. --every 40")
        if self.frames is not None and self.every is not None:
            raise ConfigError("--frames and --every both choose frames: give one of them")
        if self.selecting and (self.start is not None or self.end is not None):
            raise ConfigError("--frames/--every count frames from the start of the clip: drop --start/--end")
        if self.picture and self.mask_only:
            raise ConfigError("--picture writes the frames themselves and --matte-only the matte: give one of them")
        if self.start is not None and self.start < 0:
            raise ConfigError(f"--start {self.start} is negative: give seconds from the beginning, e.g. 12.5")
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ConfigError(f"--end {self.end} is not after --start {self.start}: give a later end")
        if self.crf is not None and self.crf < 0:
            raise ConfigError(f"--crf {self.crf} is negative: give 0 (best) or more")
        if self.end is not None and self.end <= 0:
            raise ConfigError(f"--end {self.end} must be after the start of the clip: give seconds, e.g. 10")
        if self.max_height is not None and self.max_height < 16:
            raise ConfigError(f"max height {self.max_height} is too small: give at least 16 pixels")


@dataclass(frozen=True)
class ClusterConfig:
    """Running a batch on Ray (``cluster.py``)."""

    address: str | None = None  # a running cluster ("auto", "ray://head:10001"); None: start Ray here
    segment_seconds: float = 60.0  # a clip longer than this is split into segments of this length
    retries: int = 3  # a task whose worker died is tried again this many times
    # a segment starts this many frames before its first (README, "Many files and clusters": the
    # hold's state from earlier frames fades below 1/255 within ~110 frames on real footage)
    warm_up_frames: int = 150

    def __post_init__(self) -> None:
        if self.segment_seconds <= 0:
            raise ConfigError(f"--segment-seconds {self.segment_seconds} must be positive: e.g. 60")
        if self.retries < 0:
            raise ConfigError(f"retries {self.retries} is negative: give 0 or more")
        if self.warm_up_frames < 0:
            raise ConfigError(f"warm-up {self.warm_up_frames} frames is negative: give 0 or more")


@dataclass(frozen=True)
class TuneConfig:
    """How ``u2video tune`` adapts a network to one clip from a few corrected masks (``tune/``)."""

    base: str = "u2netp"  # the network tuning starts from: a registry name or a .onnx/.pth path
    steps: int = 60  # optimiser steps (fewer if validation stops it early): ~5 min for u2netp at 320² on 2 cores
    input_size: int = 320  # the square size it trains at (the size it will run at)
    batch: int = 4  # augmented samples per step
    lr: float = 1e-4  # Adam's learning rate
    seed: int = 0  # the same seed, masks and clip give the same weights (on the same device)
    paste: bool = False  # also paste one masked frame's subject onto another masked frame
    patience: int = 5  # validations without a better held-out matte before it stops (0: never)

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ConfigError(f"--steps {self.steps} must be at least 1: e.g. 100")
        if not 32 <= self.input_size <= 2048 or self.input_size % 32:
            raise ConfigError(f"input size {self.input_size} is not a multiple of 32 between 32 and 2048: "
                              "use e.g. 320 (the trained size), 256 or 192")
        if self.batch < 1:
            raise ConfigError(f"--batch {self.batch} must be at least 1")
        if not 0 < self.lr < 1:
            raise ConfigError(f"--lr {self.lr} is out of range: give e.g. 1e-4")
        if self.patience < 0:
            raise ConfigError(f"--patience {self.patience} is negative: give 0 (never stop early) or more")


def with_flags(config: T, **flags: object) -> T:
    """``config`` with every flag that was given (not None) replacing its field."""
    given = {k: v for k, v in flags.items() if v is not None}
    return replace(config, **given) if given else config
