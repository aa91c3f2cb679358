"""The outputs u2video can write, as a table: container, codec, pixel format, options."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError


@dataclass(frozen=True)
class VideoFormat:
    name: str
    container: str  # PyAV/FFmpeg muxer name
    codec: str
    pix_fmt: str
    alpha: bool  # keeps an alpha channel
    options: dict[str, str] = field(default_factory=dict)


PRORES_4444 = VideoFormat("prores4444", "mov", "prores_ks", "yuva444p10le", True,
                          {"profile": "4444", "vendor": "apl0", "qscale": "4"})
WEBM_ALPHA = VideoFormat("webm-alpha", "webm", "libvpx-vp9", "yuva420p", True,
                         {"crf": "24", "b": "0", "row-mt": "1", "deadline": "good", "cpu-used": "4"})
MATTE_FFV1 = VideoFormat("matte-ffv1", "matroska", "ffv1", "gray", False, {})  # lossless grey matte
MATTE_PRORES = VideoFormat("matte-prores", "mov", "prores_ks", "yuv444p10le", False, {"profile": "4444", "qscale": "2"})

ALPHA_FORMATS = {".mov": PRORES_4444, ".webm": WEBM_ALPHA}
MATTE_FORMATS = {".mkv": MATTE_FFV1, ".mov": MATTE_PRORES}


def is_png_sequence(output: Path) -> bool:
    """A folder (existing, or a path without extension) or a printf pattern like out/%05d.png."""
    return "%" in output.name or output.is_dir() or not output.suffix


def alpha_format(output: Path, matte_only: bool) -> VideoFormat:
    """The video format for ``output``'s extension; ConfigError for one that can't hold the result."""
    table = MATTE_FORMATS if matte_only else ALPHA_FORMATS
    fmt = table.get(output.suffix.lower())
    if fmt is None:
        what = "a grey matte" if matte_only else "alpha"
        choices = ", ".join(table)
        hint = " (.mp4 has no codec with alpha that editors read)" if output.suffix.lower() == ".mp4" else ""
        raise ConfigError(f"{output.name}: {output.suffix or 'no extension'} cannot hold {what}{hint}: "
                          f"use {choices}, or a folder for a PNG sequence")
    return fmt
