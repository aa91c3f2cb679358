"""u2video: remove or replace the background of video and images with U²-Net.

Importing the package loads nothing heavy; the API functions import PyTorch when called.
"""

from __future__ import annotations

from typing import Any

from .config import DeviceConfig, DeviceKind, OutputConfig, ModelConfig, Normalization, Precision
from .errors import ConfigError, DeviceError, MediaError, ModelError, U2VideoError

__version__ = "0.1.0"


def matte(*args: Any, **kwargs: Any) -> Any:
    """Cut the subject out of images; see ``u2video.api.matte``."""
    from .api import matte as _matte

    return _matte(*args, **kwargs)


__all__ = [
    "matte", "ModelConfig", "DeviceConfig", "OutputConfig", "DeviceKind", "Precision", "Normalization",
    "U2VideoError", "ConfigError", "MediaError", "ModelError", "DeviceError", "__version__",
]
