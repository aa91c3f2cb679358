"""Which video format an output gets: the preset's, or the default preset for its extension."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ..config import VideoFormat
from ..errors import ConfigError

# (command, mask_only) -> output extension ("" for a folder or %05d.png pattern) -> preset
DEFAULT_PRESETS: dict[tuple[str, bool], dict[str, str]] = {
    ("matte", False): {".mov": "prores4444", ".webm": "webm-alpha", "": "png-seq"},
    ("matte", True): {".mkv": "matte", ".mov": "matte-prores", "": "png-seq"},
    ("replace", False): {".mp4": "h264-replace", ".m4v": "h264-replace", ".mkv": "h264-replace-mkv",
                         ".mov": "prores-replace", ".webm": "webm-replace", "": "png-seq"},
}


def is_png_sequence(output: Path) -> bool:
    """A folder (existing, or a path without extension) or a printf pattern like out/%05d.png."""
    return "%" in output.name or output.is_dir() or not output.suffix


_CRF_CODECS = {"libx264": 51, "libx265": 51, "libvpx-vp9": 63}


def video_format(output: Path, command: str, mask_only: bool, given: VideoFormat | None,
                 crf: int | None = None) -> VideoFormat:
    """The format to write ``output`` with (``crf`` applied); ConfigError, before any decoding,
    if it can't work."""
    from ..presets import load_preset

    suffix = "" if is_png_sequence(output) else output.suffix.lower()
    if given is None:
        table = DEFAULT_PRESETS[(command, mask_only if command == "matte" else False)]
        if suffix not in table:
            what = "a grey matte" if mask_only else ("alpha" if command == "matte" else "video")
            hint = " (.mp4 has no codec with alpha that editors read)" if suffix == ".mp4" and command == "matte" else ""
            raise ConfigError(f"{output.name}: {suffix} cannot hold {what}{hint}: use "
                              f"{', '.join(s for s in table if s)}, or a folder for a PNG sequence")
        given = load_preset(table[suffix]).format
        assert given is not None
    if given.sequence != (suffix == ""):
        need = "a folder or a pattern like out/%05d.png" if given.sequence else f"a {given.extension} file"
        raise ConfigError(f"the {given.codec} format writes {need}, not {output.name}: change -o or the preset")
    if not given.sequence and suffix != given.extension.lower():
        raise ConfigError(f"the chosen format writes {given.extension} files ({given.codec} in {given.container}), "
                          f"not {suffix}: name the output {output.stem}{given.extension}")
    if command == "matte" and not mask_only and not given.sequence and not given.alpha:
        raise ConfigError(f"{given.codec}/{given.pix_fmt} has no alpha channel: for `matte` choose a format "
                          "with alpha (prores4444, webm-alpha, png-seq) or pass --matte-only")
    if crf is not None:
        if given.codec not in _CRF_CODECS or crf > _CRF_CODECS[given.codec]:
            raise ConfigError(f"--crf {crf} does not apply to {given.codec}: it sets H.264/H.265 (0-51) "
                              "and VP9 (0-63) quality")
        given = replace(given, codec_options={**given.codec_options, "crf": str(crf)})
    return given
