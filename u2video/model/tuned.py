"""Tuned models: a network ``u2video tune`` adapted to one clip, saved as a normal ``.pth`` (the
folded network's state dict, which ``--model`` loads like any checkpoint) with a sidecar JSON
beside it (``NAME.json``): how it was made, and the md5 of the ``.pth``, checked before every
load as the store checks its files, so a sidecar never describes other weights.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from ..errors import ModelError
from ..media.files import write_file
from .store import file_md5, store_dir

KIND = "u2video tuned model"


def sidecar_of(pth: Path) -> Path:
    return pth.with_suffix(".json")


@dataclass(frozen=True)
class TunedModel:
    path: Path  # the .pth
    provenance: dict[str, Any]  # the sidecar: base, clip, frames, steps, losses, version, md5


def read_sidecar(pth: Path) -> dict[str, Any] | None:
    """The sidecar of ``pth`` if it has one written by ``tune`` (None otherwise: a plain
    checkpoint). ModelError for a sidecar that can't be read."""
    sidecar = sidecar_of(pth)
    if not sidecar.is_file():
        return None
    try:
        data = json.loads(sidecar.read_text())
    except (OSError, ValueError) as e:
        raise ModelError(f"{sidecar} (the sidecar of {pth.name}) can't be read ({e}): "
                         "tune again, or move the sidecar away to load the weights unchecked") from None
    return data if isinstance(data, dict) and data.get("kind") == KIND else None


def check_tuned(pth: Path) -> str | None:
    """Before loading ``pth``: if it has a sidecar, the file must be the one ``tune`` wrote (its
    md5), else ModelError. Returns the architecture the sidecar names (None: no sidecar)."""
    provenance = read_sidecar(pth)
    if provenance is None:
        return None
    actual = file_md5(pth)
    if actual != provenance.get("md5"):
        raise ModelError(f"{pth} has md5 {actual}, but its sidecar {sidecar_of(pth).name} says "
                         f"{provenance.get('md5')}: the weights changed after `u2video tune` wrote them; tune "
                         "again, or move the sidecar away to load them unchecked")
    return provenance.get("architecture")


def save_tuned(network: nn.Module, target: Path, provenance: dict[str, Any], overwrite: bool) -> TunedModel:
    """Write the network's state dict to ``target`` (.pth) and the sidecar beside it, each through
    a temporary file renamed into place (the .pth first: a crash between leaves weights that
    load unchecked, never a sidecar without its weights). Returns what was written."""
    buffer = io.BytesIO()
    torch.save({k: v.detach().float().cpu().contiguous() for k, v in network.state_dict().items()}, buffer)
    data = buffer.getvalue()
    written = write_file(target, data, overwrite)
    provenance = {"kind": KIND, **provenance, "md5": hashlib.md5(data).hexdigest()}
    write_file(sidecar_of(written), (json.dumps(provenance, indent=1) + "\n").encode(), True)
    return TunedModel(written, provenance)


def list_tuned(folders: list[Path] | None = None) -> list[TunedModel]:
    """The tuned models (a .pth with its sidecar) in ``folders`` (default: the store and the
    current folder), by path."""
    found: dict[Path, TunedModel] = {}
    for folder in folders if folders is not None else [store_dir(), Path.cwd()]:
        if not folder.is_dir():
            continue
        for pth in sorted(folder.glob("*.pth")):
            try:
                provenance = read_sidecar(pth)
            except ModelError:
                continue
            if provenance is not None:
                found.setdefault(pth.resolve(), TunedModel(pth, provenance))
    return list(found.values())


def tuned_in_store(name: str) -> Path | None:
    """``NAME`` as a tuned model in the store (``NAME.pth`` with a sidecar), so that ``--model NAME``
    finds what ``tune -o`` put there."""
    pth = store_dir() / f"{name}.pth"
    return pth if pth.is_file() and sidecar_of(pth).is_file() else None
