"""What ``tune`` learns from: the corrected masks in a folder and the clip's frames they belong to.

A masks folder holds grey PNGs named by 0-based frame index (``00040.png`` is frame 40, as
``u2video matte CLIP -o masks/ --matte-only --frames ...`` names them), 255 = subject. A mask of
another size than the frame is scaled to it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import MediaError
from ..media.source import VideoSource

_MASK_NAME = re.compile(r"^(\d+)\.png$", re.IGNORECASE)


@dataclass
class TrainingFrames:
    """The masked frames of a clip, in frame order."""

    indices: list[int]  # 0-based frame numbers
    frames: np.ndarray  # [N,H,W,3] uint8 RGB
    masks: np.ndarray  # [N,H,W] f32 0..1, 1 = subject


def mask_files(folder: Path) -> dict[int, Path]:
    """The masks in ``folder`` by frame index. MediaError, saying what is wrong, for a folder that
    is missing or empty, or a file not named by a frame number (hidden files are ignored)."""
    if not folder.is_dir():
        raise MediaError(f"masks folder {folder} does not exist: export masks with "
                         "`u2video matte CLIP -o FOLDER --matte-only --frames 0,40,80` and correct them")
    found: dict[int, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue
        match = _MASK_NAME.match(path.name)
        if match is None or not path.is_file():
            raise MediaError(f"{path} is not a mask named by its frame number: name masks like 00040.png "
                             "(frame 40, counted from 0), and keep other files out of the folder")
        index = int(match.group(1))
        if index in found:
            raise MediaError(f"{found[index].name} and {path.name} are both masks of frame {index}: keep one")
        found[index] = path
    if not found:
        raise MediaError(f"masks folder {folder} holds no masks: add grey PNGs named by frame number, "
                         "e.g. 00040.png, 255 = subject")
    return found


def read_mask(path: Path, height: int, width: int) -> np.ndarray:
    """A grey PNG (8 or 16 bits; RGB only if its three channels are equal) -> [height,width] f32
    0..1, scaled to the frame. MediaError for an unreadable or coloured image."""
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise MediaError(f"{path} is not a readable PNG: save the mask again as a grey PNG")
    if image.ndim == 3:
        if image.shape[2] == 4:
            raise MediaError(f"{path} has transparency: save the mask as a grey PNG without alpha, 255 = subject")
        if not (np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 1], image[..., 2])):
            raise MediaError(f"{path} is a colour image, not a grey mask: save it in greyscale, 255 = subject")
        image = image[..., 0]
    scale = float(np.iinfo(image.dtype).max) if image.dtype.kind == "u" else 1.0
    mask = image.astype(np.float32) / scale
    if mask.shape != (height, width):
        shrink = mask.shape[0] > height
        mask = cv2.resize(mask, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return np.clip(mask, 0.0, 1.0)


def load_training_frames(clip: Path, folder: Path) -> TrainingFrames:
    """Decode the frames ``folder``'s masks name from ``clip`` (one pass over the clip, up to the
    last of them) and read the masks. MediaError for a mask past the clip's end."""
    files = mask_files(folder)
    wanted = sorted(files)
    frames: dict[int, np.ndarray] = {}
    with VideoSource(clip) as video:
        count = 0
        for index, frame in enumerate(video.frames()):
            count = index + 1
            if index in files:
                frames[index] = frame.rgb
            if index >= wanted[-1]:
                break
    missing = [i for i in wanted if i not in frames]
    if missing:
        raise MediaError(f"{files[missing[0]].name} names frame {missing[0]}, but {clip.name} has {count} frames "
                         f"(0-{count - 1}): remove that mask or check the clip")
    height, width = frames[wanted[0]].shape[:2]
    masks = [read_mask(files[i], height, width) for i in wanted]
    return TrainingFrames(wanted, np.stack([frames[i] for i in wanted]), np.stack(masks))
