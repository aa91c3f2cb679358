"""Still images: decoded and encoded with OpenCV, JPEGs checked strictly with PyAV, written atomically."""

from __future__ import annotations

import io
from pathlib import Path

import av
import cv2
import numpy as np

from ..errors import MediaError
from .files import write_file

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}
ALPHA_SUFFIXES = {".png", ".webp", ".tif", ".tiff"}  # formats that keep an alpha channel


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def read_image(path: Path) -> np.ndarray:
    """Decode an image file -> [H,W,3] uint8 RGB, turned upright by its EXIF orientation.

    OpenCV (libjpeg) decodes the pixels: it upsamples JPEG chroma as PIL does in the U²-Net
    authors' pipeline, which FFmpeg's decoder does not (a mean difference of ~1 grey level that
    moves mask edges). OpenCV accepts truncated JPEGs silently, though, so JPEGs are also run
    through FFmpeg's strict decoder: a damaged file is an error, not a half-grey picture.
    """
    if not path.is_file():
        raise MediaError(f"{path} does not exist" if not path.exists() else f"{path} is not a file")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise MediaError(f"cannot read {path} ({e.strerror})") from None
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    if bgr is None or (data[:2] == b"\xff\xd8" and not _jpeg_is_complete(data)):
        raise MediaError(f"{path} is not a readable image or is truncated/corrupt: re-export or re-download it")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _jpeg_is_complete(data: bytes) -> bool:
    try:
        with av.open(io.BytesIO(data), format="jpeg_pipe") as container:
            stream = container.streams.video[0]
            stream.codec_context.options = {"err_detect": "explode"}
            return next(container.decode(stream), None) is not None
    except av.FFmpegError:
        return False


def encode_image(path: Path, pixels: np.ndarray) -> bytes:
    """[H,W] grey, [H,W,3] RGB or [H,W,4] RGBA uint8 -> the file bytes of ``path``'s format (its extension)."""
    if pixels.ndim == 3 and pixels.shape[2] == 4:
        bgr = cv2.cvtColor(pixels, cv2.COLOR_RGBA2BGRA)
    elif pixels.ndim == 3:
        bgr = cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)
    else:
        bgr = pixels
    params = [cv2.IMWRITE_WEBP_QUALITY, 101] if path.suffix.lower() == ".webp" else []  # 101 = lossless
    ok, encoded = cv2.imencode(path.suffix.lower(), bgr, params)
    if not ok:
        raise MediaError(f"could not encode {path.name} as {path.suffix}: use .png")
    return encoded.tobytes()


def write_image(path: Path, pixels: np.ndarray, overwrite: bool = False) -> Path:
    """Encode ``pixels`` (see ``encode_image``) and write them to ``path`` whole, replacing a file
    there only with ``overwrite``. Returns where the image went: beside ``path`` under another
    name if a file appeared there meanwhile (see ``files.check_published``)."""
    return write_file(path, encode_image(path, pixels), overwrite)
