"""Presets: named TOML files in ``presets/`` (installed as ``u2video.builtin_presets``) or any path.

A preset fills the same dataclasses as the flags: defaults < preset < flags. Its tables:

    description = "..."         # one line for `u2video presets`
    command = "matte"           # or "replace"; absent: both
    background = "#00b140"      # replace only
    [format]                    # VideoFormat: extension, container, codec, pix_fmt, ...
    [format.codec_options]      # passed to the encoder (crf, profile, ...)
    [output] / [model] / [device] / [matte]  # fields of OutputConfig / ModelConfig / DeviceConfig / MatteConfig
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from enum import Enum
from importlib.resources import files
from pathlib import Path
from types import UnionType
from typing import Any, Mapping, TypeVar, Union, get_args, get_origin, get_type_hints

from .config import DeviceConfig, MatteConfig, ModelConfig, OutputConfig, VideoFormat, with_flags
from .errors import ConfigError

T = TypeVar("T")
_SECTIONS = {"format", "output", "model", "device", "matte"}
_TOP = {"description", "command", "background"}
# flags only: a preset must not overwrite, trim or pick frames
_PER_RUN = frozenset({"overwrite", "start", "end", "frames", "every", "picture"})


@dataclass(frozen=True)
class Preset:
    name: str
    path: str
    description: str = ""
    command: str | None = None  # "matte", "replace", or None for both
    background: str | None = None
    format: VideoFormat | None = None
    tables: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # [output], [model], [device]

    def model_config(self, **flags: Any) -> ModelConfig:
        return with_flags(self._fill(ModelConfig(), "model"), **flags)

    def device_config(self, **flags: Any) -> DeviceConfig:
        return with_flags(self._fill(DeviceConfig(), "device"), **flags)

    def matte_config(self, **flags: Any) -> MatteConfig:
        return with_flags(self._fill(MatteConfig(), "matte"), **flags)

    def output_config(self, **flags: Any) -> OutputConfig:
        base = replace(self._fill(OutputConfig(), "output"), format=self.format)
        return with_flags(base, **flags)

    def check_command(self, command: str) -> None:
        if self.command not in (None, command):
            raise ConfigError(f"preset {self.name} is for `u2video {self.command}`, not `{command}`: "
                              "see `u2video presets`")

    def _fill(self, config: T, section: str) -> T:
        table = self.tables.get(section, {})
        values = _checked(type(config), table, f"preset {self.path}: [{section}]", exclude=_PER_RUN)
        for key, value in values.items():
            current = getattr(config, key)
            if isinstance(current, Enum):
                try:
                    values[key] = type(current)(value)
                except ValueError:
                    raise ConfigError(f"preset {self.path}: [{section}] {key} = {value!r} is not one of "
                                      f"{', '.join(m.value for m in type(current))}") from None
        return replace(config, **values)


def _checked(cls: type, table: object, where: str, exclude: frozenset[str] = frozenset()) -> dict[str, Any]:
    """``table``'s entries, each a field of ``cls`` with a value of that field's type, or ConfigError."""
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table of key = value lines")
    hints = get_type_hints(cls)
    known = {f.name for f in fields(cls)} - exclude - {"format"}
    for key, value in table.items():
        if key not in known:
            raise ConfigError(f"{where} has no key {key!r} (known: {', '.join(sorted(known))})")
        allowed = _types(hints[key])
        ok = isinstance(value, allowed) and not (isinstance(value, bool) and bool not in allowed)
        if not ok:
            names = " or ".join(sorted({t.__name__ for t in allowed}))
            raise ConfigError(f"{where} {key} = {value!r} should be {names}")
    return dict(table)


def _types(hint: Any) -> tuple[type, ...]:
    """The runtime types a field annotation allows (int also for float; enums take their strings)."""
    args = get_args(hint) if get_origin(hint) in (Union, UnionType) else (hint,)
    out: list[type] = []
    for arg in args:
        if arg is type(None):
            continue
        origin = get_origin(arg) or arg
        if isinstance(origin, type) and issubclass(origin, Enum):
            out.append(str)
        elif origin is float:
            out += [float, int]
        elif isinstance(origin, type) and issubclass(origin, Mapping):
            out.append(dict)
        elif isinstance(origin, type):
            out.append(origin)
    return tuple(out)


NO_PRESET = Preset("defaults", "(built in)")


def builtin_names() -> list[str]:
    return sorted(p.name[:-5] for p in files("u2video.builtin_presets").iterdir() if p.name.endswith(".toml"))


def load_preset(name_or_path: str | Path | None) -> Preset:
    """A built-in preset by name, or a .toml file by path; None gives the empty preset."""
    if name_or_path is None:
        return NO_PRESET
    text_name = str(name_or_path)
    if _is_path(text_name):
        path = Path(text_name)
        if not path.is_file():
            raise ConfigError(f"preset file {path} does not exist: check the path")
        text, name = path.read_text(encoding="utf-8"), path.stem
    else:
        if text_name not in builtin_names():
            raise ConfigError(f"unknown preset {text_name!r}: choose one of {', '.join(builtin_names())} "
                              "or give a path to a .toml file")
        text, name = files("u2video.builtin_presets").joinpath(f"{text_name}.toml").read_text(encoding="utf-8"), text_name
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"preset {name_or_path} is not valid TOML ({e}): fix the file") from None
    return _parse(name, str(name_or_path), data)


def _parse(name: str, path: str, data: dict[str, Any]) -> Preset:
    where = f"preset {path}"
    unknown = set(data) - _SECTIONS - _TOP
    if unknown:
        raise ConfigError(f"{where}: unknown entry {sorted(unknown)[0]!r} (known: {', '.join(sorted(_SECTIONS | _TOP))})")
    for key in _TOP:
        if key in data and not isinstance(data[key], str):
            raise ConfigError(f"{where}: {key} = {data[key]!r} should be a string")
    if data.get("command") not in (None, "matte", "replace"):
        raise ConfigError(f"{where}: command must be \"matte\" or \"replace\", not {data['command']!r}")
    fmt = None
    if "format" in data:
        table = _checked(VideoFormat, data["format"], f"{where}: [format]")
        missing = {"extension", "container", "codec", "pix_fmt"} - set(table)
        if missing:
            raise ConfigError(f"{where}: [format] needs {', '.join(sorted(missing))}")
        for key in ("codec_options", "container_options"):
            table[key] = {str(k): str(v) for k, v in table.get(key, {}).items()}
        if table["extension"] and not table["extension"].startswith("."):
            raise ConfigError(f"{where}: [format] extension must start with a dot, like \".mp4\" (or be \"\" for PNGs)")
        fmt = VideoFormat(**table)
    tables = {s: data[s] for s in ("output", "model", "device", "matte") if s in data}
    preset = Preset(name, path, data.get("description", ""), data.get("command"), data.get("background"), fmt, tables)
    try:  # checked now, and said to be the preset's
        preset.model_config(), preset.device_config(), preset.output_config(), preset.matte_config()
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None
    return preset


def all_presets() -> list[Preset]:
    return [load_preset(n) for n in builtin_names()]


def _is_path(text: str) -> bool:
    """A preset given as a file (anything else is a built-in preset's name)."""
    return text.endswith(".toml") or "/" in text or "\\" in text


def preset_text(name_or_path: str) -> str:
    """The preset's TOML as written, for `u2video presets NAME`."""
    load_preset(name_or_path)  # a missing file or an unknown name fails with what to do
    if _is_path(name_or_path):
        return Path(name_or_path).read_text(encoding="utf-8")
    return files("u2video.builtin_presets").joinpath(f"{name_or_path}.toml").read_text(encoding="utf-8")


# (command, mask_only) -> output extension ("" for a folder or %05d.png pattern) -> preset
DEFAULT_PRESETS: dict[tuple[str, bool], dict[str, str]] = {
    ("matte", False): {".mov": "prores4444", ".webm": "webm-alpha", "": "png-seq"},
    ("matte", True): {".mkv": "matte", ".mov": "matte-prores", "": "png-seq"},
    ("replace", False): {".mp4": "h264-replace", ".mkv": "h264-replace-mkv", ".mov": "prores-replace",
                         ".webm": "webm-replace", "": "png-seq"},
}
_CRF_RANGE = {"libx264": 51, "libx265": 51, "libvpx-vp9": 63}
_FRAME_PATTERN = re.compile(r"^[^%]*%0?\d*d[^%]*\.png$", re.IGNORECASE)


def format_by_extension(command: str, mask_only: bool, extension: str) -> VideoFormat:
    """``--format mov`` etc.: the command's default format for that extension ("png": PNG folders)."""
    table = DEFAULT_PRESETS[(command, mask_only if command == "matte" else False)]
    suffix = "" if extension.lower().lstrip(".") in ("png", "png-seq") else "." + extension.lower().lstrip(".")
    if suffix not in table:
        choices = ", ".join([s.lstrip(".") for s in table if s] + ["png"])
        raise ConfigError(f"--format {extension}: `{command}`{' --matte-only' if mask_only else ''} writes one of "
                          f"{choices}")
    fmt = load_preset(table[suffix]).format
    assert fmt is not None
    return fmt


def is_png_sequence(output: Path) -> bool:
    """A folder (existing, or a path without extension) or a printf pattern like out/%05d.png."""
    return "%" in output.name or output.is_dir() or not output.suffix


def sequence_target(output: Path) -> tuple[Path, str]:
    """(folder, file-name pattern) of a PNG sequence output: out/ -> (out, "%05d.png")."""
    return (output.parent, output.name) if "%" in output.name else (output, "%05d.png")


def video_format(output: Path, command: str, mask_only: bool, given: VideoFormat | None,
                 crf: int | None = None) -> VideoFormat:
    """The format to write ``output`` with: ``given`` (a preset's), or the default preset for the
    output's extension, with ``crf`` applied. ConfigError, before anything is decoded, if it
    can't work."""
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
    if given.sequence and "%" in output.name and not _FRAME_PATTERN.match(output.name):
        raise ConfigError(f"{output.name} is not a frame pattern like frame_%05d.png: one %d (or %05d), "
                          "ending in .png")
    if not given.sequence and suffix != given.extension.lower():
        raise ConfigError(f"the chosen format writes {given.extension} files ({given.codec} in {given.container}), "
                          f"not {suffix}: name the output {output.stem}{given.extension}")
    if command == "matte" and not mask_only and not given.sequence and not given.alpha:
        raise ConfigError(f"{given.codec}/{given.pix_fmt} has no alpha channel: for `matte` choose a format "
                          "with alpha (prores4444, webm-alpha, png-seq) or pass --matte-only")
    if command == "replace" and given.pix_fmt.startswith("gray"):
        raise ConfigError(f"{given.codec}/{given.pix_fmt} holds only grey: `replace` writes colour")
    if crf is not None:
        if given.codec not in _CRF_RANGE:
            raise ConfigError(f"--crf does not apply to {given.codec}: it sets H.264/H.265 and VP9 quality")
        if crf > _CRF_RANGE[given.codec]:
            raise ConfigError(f"--crf {crf} is out of range for {given.codec}: give 0 to {_CRF_RANGE[given.codec]}")
        given = replace(given, codec_options={**given.codec_options, "crf": str(crf)})
    return given
