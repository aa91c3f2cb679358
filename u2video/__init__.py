"""u2video: remove or replace the background of video and images with U²-Net.

Importing the package loads nothing heavy; the API functions import PyTorch when called.
"""

from __future__ import annotations

from typing import Any

from .config import (ClusterConfig, DeviceConfig, DeviceKind, MatteConfig, ModelConfig, Normalization, OutputConfig, Precision, Runtime,
                     TuneConfig, VideoFormat)
from .errors import ConfigError, DeviceError, MediaError, ModelError, U2VideoError

__version__ = "0.1.0"


def matte(*args: Any, **kwargs: Any) -> Any:
    """Cut the subject out of a video or images; see ``u2video.api.matte``."""
    from .api import matte as _matte

    return _matte(*args, **kwargs)


def replace(*args: Any, **kwargs: Any) -> Any:
    """Put the subject of a video or images on a new background; see ``u2video.api.replace``."""
    from .api import replace as _replace

    return _replace(*args, **kwargs)


def webcam(*args: Any, **kwargs: Any) -> Any:
    """Live background removal to a virtual camera, preview or recording; see ``u2video.api.webcam``."""
    from .api import webcam as _webcam

    return _webcam(*args, **kwargs)


def bench(*args: Any, **kwargs: Any) -> Any:
    """Time decode, model, matte, encode and the whole loop; see ``u2video.benchmark.bench``."""
    from .benchmark import bench as _bench

    return _bench(*args, **kwargs)


def compare(*args: Any, **kwargs: Any) -> Any:
    """Whole ``u2video matte`` runs of each CPU runtime and precision against the per-frame peer
    loop, side by side; see ``u2video.compare.compare``."""
    from .compare import compare as _compare

    return _compare(*args, **kwargs)


def tune(*args: Any, **kwargs: Any) -> Any:
    """Fine-tune U²-Net on one clip from a few corrected masks; see ``u2video.tuning.train.tune``."""
    from .tuning import tune as _tune

    return _tune(*args, **kwargs)


def load_preset(name_or_path: str) -> Any:
    """A preset by name or .toml path; its ``output_config()`` etc. fill the options. See ``u2video.presets``."""
    from .presets import load_preset as _load

    return _load(name_or_path)


__all__ = [
    "matte", "replace", "webcam", "bench", "compare", "tune", "load_preset", "ClusterConfig", "TuneConfig", "MatteConfig", "ModelConfig", "VideoFormat", "DeviceConfig", "OutputConfig", "DeviceKind", "Precision", "Normalization", "Runtime",
    "U2VideoError", "ConfigError", "MediaError", "ModelError", "DeviceError", "__version__",
]
