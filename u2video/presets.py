"""Presets: named TOML files in ``presets/`` (installed as ``u2video.builtin_presets``) or any path.

A preset fills the same dataclasses as the flags: defaults < preset < flags. Its tables:

    description = "..."         # one line for `u2video presets`
    command = "matte"           # or "replace"; absent: both
    background = "#00b140"      # replace only
    [format]                    # VideoFormat: extension, container, codec, pix_fmt, ...
    [format.codec_options]      # passed to the encoder (crf, profile, ...)
    [output] / [model] / [device]  # fields of OutputConfig / ModelConfig / DeviceConfig
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from enum import Enum
from importlib.resources import files
from pathlib import Path
from typing import Any, Mapping, TypeVar

from .config import DeviceConfig, ModelConfig, OutputConfig, VideoFormat, with_flags
from .errors import ConfigError

T = TypeVar("T")
_SECTIONS = {"format", "output", "model", "device"}
_TOP = {"description", "command", "background"}


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

    def output_config(self, **flags: Any) -> OutputConfig:
        base = replace(self._fill(OutputConfig(), "output"), format=self.format)
        return with_flags(base, **flags)

    def check_command(self, command: str) -> None:
        if self.command not in (None, command):
            raise ConfigError(f"preset {self.name} is for `u2video {self.command}`, not `{command}`: "
                              "see `u2video presets`")

    def _fill(self, config: T, section: str) -> T:
        table = self.tables.get(section, {})
        known = {f.name for f in fields(config)} - {"format"}  # type: ignore[arg-type]
        values: dict[str, Any] = {}
        for key, value in table.items():
            if key not in known:
                raise ConfigError(f"preset {self.path}: [{section}] has no key {key!r} (known: {', '.join(sorted(known))})")
            current = getattr(config, key)
            try:
                values[key] = type(current)(value) if isinstance(current, Enum) else value
            except ValueError:
                raise ConfigError(f"preset {self.path}: [{section}] {key} = {value!r} is not one of "
                                  f"{', '.join(m.value for m in type(current))}") from None
        try:
            return replace(config, **values)
        except TypeError as e:
            raise ConfigError(f"preset {self.path}: [{section}] {e}") from None


NO_PRESET = Preset("defaults", "(built in)")


def builtin_names() -> list[str]:
    return sorted(p.name[:-5] for p in files("u2video.builtin_presets").iterdir() if p.name.endswith(".toml"))


def load_preset(name_or_path: str | Path | None) -> Preset:
    """A built-in preset by name, or a .toml file by path; None gives the empty preset."""
    if name_or_path is None:
        return NO_PRESET
    text_name = str(name_or_path)
    if text_name.endswith(".toml") or "/" in text_name or "\\" in text_name:
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
    unknown = set(data) - _SECTIONS - _TOP
    if unknown:
        raise ConfigError(f"preset {path}: unknown entry {sorted(unknown)[0]!r} "
                          f"(known: {', '.join(sorted(_SECTIONS | _TOP))})")
    if data.get("command") not in (None, "matte", "replace"):
        raise ConfigError(f"preset {path}: command must be \"matte\" or \"replace\", not {data['command']!r}")
    fmt = None
    if "format" in data:
        table = dict(data["format"])
        for key in ("codec_options", "container_options"):
            table[key] = {str(k): str(v) for k, v in table.get(key, {}).items()}
        try:
            fmt = VideoFormat(**table)
        except TypeError as e:
            raise ConfigError(f"preset {path}: [format] {e}") from None
    tables = {s: data[s] for s in ("output", "model", "device") if s in data}
    return Preset(name, path, data.get("description", ""), data.get("command"), data.get("background"), fmt, tables)


def all_presets() -> list[Preset]:
    return [load_preset(n) for n in builtin_names()]


def preset_text(name_or_path: str) -> str:
    """The preset's TOML as written, for `u2video presets NAME`."""
    path = Path(name_or_path)
    if name_or_path.endswith(".toml") and path.is_file():
        return path.read_text(encoding="utf-8")
    load_preset(name_or_path)  # unknown names fail with the list
    return files("u2video.builtin_presets").joinpath(f"{name_or_path}.toml").read_text(encoding="utf-8")
