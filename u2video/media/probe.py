"""What an input holds, decided by its content (FFmpeg's probe), not by its name: a still image,
a video, or something u2video can't use, said in words ("audio only: 1 AAC stream")."""

from __future__ import annotations

import stat
from collections import Counter
from enum import Enum
from pathlib import Path

import av

from ..errors import MediaError

# extensions only pick the wording for a file FFmpeg can't read at all
_IMAGE_NAMES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}


class MediaKind(str, Enum):
    IMAGE = "image"
    VIDEO = "video"


def probe(path: Path) -> MediaKind:
    """IMAGE or VIDEO by what ``path`` holds; MediaError saying what was found otherwise."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise MediaError(f"{path} does not exist: check the path") from None
    except OSError as e:
        raise MediaError(f"cannot read {path} ({e.strerror}): check the path and its permissions") from None
    if stat.S_ISDIR(mode):
        raise MediaError(f"{path} is a folder: give a video file, or images")
    if not stat.S_ISREG(mode):
        raise MediaError(f"{path} is not a regular file (a device or a pipe): give a video or image file")
    if path.stat().st_size == 0:
        raise MediaError(f"{path} is empty (0 bytes): give a video or image file")
    try:
        with av.open(str(path), metadata_errors="replace") as container:  # streams must not be touched once it is closed
            fmt = container.format.name
            pictures = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
            found = describe_streams([s for s in container.streams if s not in pictures])
    except av.FFmpegError as e:
        if path.suffix.lower() in _IMAGE_NAMES:
            raise MediaError(f"{path} is not a readable image or is truncated/corrupt: re-export or re-download it") from None
        raise MediaError(f"{path} is not a video or image that FFmpeg can read ({e.strerror}): check the file "
                         "(an unfinished or truncated recording cannot be opened)") from None
    if pictures:
        return MediaKind.IMAGE if fmt == "image2" or fmt.endswith("_pipe") else MediaKind.VIDEO
    raise MediaError(f"{path} holds no video ({found}): give a video file or an image")


def describe_streams(streams: list) -> str:
    """e.g. "audio only: 1 AAC stream", "subtitles only: 2 SUBRIP streams", "no streams". Call
    while their container is open."""
    if not streams:
        return "no streams"
    kinds = Counter("cover art" if s.type == "video" else {"subtitle": "subtitles"}.get(s.type, s.type)
                    for s in streams)
    codecs = Counter(_codec_name(s) for s in streams)
    listed = ", ".join(f"{n} {codec} stream{'s' if n > 1 else ''}" for codec, n in codecs.items())
    what = f"{next(iter(kinds))} only" if len(kinds) == 1 else " and ".join(kinds)
    return f"{what}: {listed}"


def _codec_name(stream) -> str:
    try:
        return stream.codec_context.name.upper()
    except Exception:  # data and attachment streams may have no codec context
        return stream.type
