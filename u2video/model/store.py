"""The weight store: locate -> download (progress, checksum, atomic rename) -> verify.

The store is ``$U2NET_HOME``, else ``$XDG_DATA_HOME/.u2net``, else ``~/.u2net``: rembg's rule, so
files rembg downloaded are reused as they are and the other way round. Files are verified
against the registry's md5 before every load (``weights.py`` loads them).
"""

from __future__ import annotations

import hashlib
import os
import socket
import ssl
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelError
from ..progress import Reporter, SilentReporter
from .registry import MODELS, ModelSpec

OFFLINE_ENV = "U2VIDEO_OFFLINE"  # set to 1 to never download (tests, air-gapped machines)
_CHUNK = 1 << 20


def store_dir() -> Path:
    """The folder weights live in (rembg's rule; it need not exist yet)."""
    default = os.path.join(os.getenv("XDG_DATA_HOME", "~"), ".u2net")
    return Path(os.path.expanduser(os.getenv("U2NET_HOME", default)))


def file_md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class StoreEntry:
    spec: ModelSpec
    path: Path
    present: bool
    verified: bool  # present and its md5 matches the registry


def list_store() -> list[StoreEntry]:
    """Every registry model with its path in the store and whether it is there and intact."""
    entries = []
    for spec in MODELS.values():
        path = store_dir() / spec.filename
        present = path.is_file()
        entries.append(StoreEntry(spec, path, present, present and file_md5(path) == spec.md5))
    return entries


def lookup(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        known = ", ".join(MODELS)
        raise ModelError(
            f"unknown model '{name}': use one of {known}, a tuned model from `u2video models`, or a path to a "
            ".onnx or .pth file"
        ) from None


def _place_by_hand(spec: ModelSpec, path: Path) -> str:
    return f"place {spec.filename} (md5 {spec.md5}, from {spec.url}) at {path}"


def offline() -> bool:
    return os.getenv(OFFLINE_ENV, "") not in ("", "0")


def verify(spec: ModelSpec, path: Path) -> None:
    """Raise ModelError unless ``path`` holds exactly the registry's file for ``spec``."""
    actual = file_md5(path)
    if actual != spec.md5:
        remedy = (f"{_place_by_hand(spec, path)} (downloads are off: {OFFLINE_ENV} is set)" if offline()
                  else f"delete it and run `u2video models pull {spec.name}`")
        raise ModelError(f"{path} has md5 {actual}, not {spec.md5} as {spec.name} should: the file is damaged "
                         f"or not {spec.name}; {remedy}")


def pull(spec: ModelSpec, reporter: Reporter | None = None, force: bool = False) -> Path:
    """Download ``spec`` into the store unless an intact copy is there; return its path.

    The download goes to a temporary file in the store, is checked against the md5, and only
    then renamed into place, so the store never holds a partial or wrong file.
    """
    reporter = reporter or SilentReporter()
    target = store_dir() / spec.filename
    if target.is_file() and not force:
        verify(spec, target)
        return target
    if offline():
        raise ModelError(f"{spec.name} is not in the store and downloads are off ({OFFLINE_ENV}): "
                         + _place_by_hand(spec, target))
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{spec.filename}.", suffix=".part")
    except OSError as e:
        raise ModelError(f"cannot write to the model store {target.parent} ({e.strerror}): "
                         "set U2NET_HOME to a writable folder") from None
    tmp = Path(tmp_name)
    try:
        digest = hashlib.md5()
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(spec.url, timeout=30) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            bar = reporter.bar(f"downloading {spec.filename}", total, "B")
            try:
                for chunk in iter(lambda: response.read(_CHUNK), b""):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
            finally:
                bar.close()
        if digest.hexdigest() != spec.md5:
            raise ModelError(f"the download of {spec.filename} from {spec.url} has md5 "
                             f"{digest.hexdigest()}, not {spec.md5}; try again, or "
                             + _place_by_hand(spec, target))
        os.replace(tmp, target)
    except (urllib.error.URLError, socket.timeout, ConnectionError, ssl.SSLError) as e:
        reason = getattr(e, "reason", e)
        raise ModelError(f"could not download {spec.filename} ({reason}); without network, "
                         + _place_by_hand(spec, target)) from None
    except OSError as e:  # writing it: a full disk, a store that went away
        raise ModelError(f"could not save {spec.filename} in the model store {target.parent} ({e.strerror or e}): "
                         "free some space, or set U2NET_HOME to a folder with room") from None
    finally:
        tmp.unlink(missing_ok=True)
    return target
