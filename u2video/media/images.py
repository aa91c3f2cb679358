"""Still images: strict decoding through PyAV, encoding through OpenCV, written atomically."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np

from ..errors import MediaError
from .files import atomic_output

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}
ALPHA_SUFFIXES = {".png", ".webp", ".tif", ".tiff"}  # formats that keep an alpha channel


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def read_image(path: Path) -> np.ndarray:
    """Decode an image file -> [H,W,3] uint8 RGB, turned upright by its EXIF orientation.

    Decoding is strict: a truncated or corrupt file raises MediaError instead of yielding a
    half-grey picture (OpenCV and FFmpeg's defaults both accept truncated JPEGs silently).
    """
    if not path.is_file():
        raise MediaError(f"{path} does not exist" if not path.exists() else f"{path} is not a file")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise MediaError(f"{path} holds no image: give a JPEG, PNG, WebP, BMP or TIFF file")
            stream = container.streams.video[0]
            stream.codec_context.options = {"err_detect": "explode"}
            frame = next(container.decode(stream), None)
            if frame is None:
                raise MediaError(f"{path} holds no decodable image: the file is empty or damaged")
            rgb = frame.to_ndarray(format="rgb24")
            rotation = frame.rotation  # display-matrix angle, counter-clockwise degrees
    except av.FFmpegError as e:
        raise MediaError(f"{path} is not a readable image or is truncated/corrupt ({e.strerror}): "
                         "re-export or re-download it") from None
    if rotation % 360:
        rgb = np.ascontiguousarray(np.rot90(rgb, k=(rotation // 90) % 4))
    return rgb


def write_image(path: Path, pixels: np.ndarray) -> None:
    """Write [H,W] grey, [H,W,3] RGB or [H,W,4] RGBA uint8 to ``path`` (format from its extension), atomically."""
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
    with atomic_output(path) as tmp:
        tmp.write_bytes(encoded.tobytes())
