"""Colour order on every input path: a frame of red, green and blue bands must come out of each
reader as red, green and blue in that order (RGB, never BGR), and through to the outputs."""

from pathlib import Path

import av
import cv2
import numpy as np
import pytest

import u2video
from u2video.config import Crop, DeviceConfig, DeviceKind, MatteConfig, ModelConfig
from u2video.media.images import read_image
from u2video.media.live import Camera, LiveSource
from u2video.media.source import VideoSource

BANDS = ((200, 30, 30), (30, 200, 30), (30, 30, 200))  # red, green, blue from left to right
H, W = 48, 96


def bands() -> np.ndarray:
    """[H,W,3] uint8 RGB: three vertical bands."""
    rgb = np.empty((H, W, 3), np.uint8)
    for i, colour in enumerate(BANDS):
        rgb[:, i * W // 3:(i + 1) * W // 3] = colour
    return rgb


def assert_bands(rgb: np.ndarray, tolerance: int = 12) -> None:
    """Each band's centre holds its colour (codecs' chroma rounding allowed)."""
    assert rgb.shape[:2] == (H, W) and rgb.dtype == np.uint8
    for i, colour in enumerate(BANDS):
        centre = rgb[H // 4:3 * H // 4, i * W // 3 + 8:(i + 1) * W // 3 - 8].reshape(-1, 3).astype(int)
        assert np.abs(centre.mean(axis=0) - colour).max() < tolerance, (i, centre.mean(axis=0), colour)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """Five frames of the bands as H.264 4:4:4 (so chroma is not halved at the band edges)."""
    path = tmp_path_factory.mktemp("colour") / "bands.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv444p"
        stream.options = {"crf": "10"}
        for i in range(5):
            frame = av.VideoFrame.from_ndarray(bands(), format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def test_a_video_file_decodes_to_rgb(clip):
    with VideoSource(clip) as video:
        frames = list(video.frames())
    assert len(frames) == 5
    for frame in frames:
        assert_bands(frame.rgb)


def test_an_image_decodes_to_rgb(tmp_path):
    path = tmp_path / "bands.png"
    assert cv2.imwrite(str(path), bands()[..., ::-1])  # OpenCV writes BGR
    assert np.array_equal(read_image(path), bands())


def test_a_file_played_as_a_camera_gives_rgb(clip):
    with LiveSource(str(clip)) as live:
        frame = live.slot.take(timeout=10)
    assert frame is not None
    assert_bands(frame.rgb)


def test_the_camera_reader_gives_rgb(clip):
    camera = Camera(str(clip))  # OpenCV opens a file as it opens a camera
    try:
        first, second = camera.read(), camera.read()
    finally:
        camera.release()
    assert_bands(first)
    assert_bands(second)


def test_outputs_keep_the_colours(clip, tmp_path, u2netp_store):
    fast = dict(model=ModelConfig(input_size=64), device=DeviceConfig(DeviceKind.CPU),
                matte_config=MatteConfig(smooth=0, refine=False, crop=Crop.OFF))
    u2video.matte(clip, tmp_path / "cut.mov", **fast)
    with av.open(str(tmp_path / "cut.mov")) as container:
        rgba = next(container.decode(video=0)).to_ndarray(format="rgba")
    assert_bands(rgba[..., :3])  # straight alpha: the colours are there whatever the matte
    image = tmp_path / "bands.png"
    cv2.imwrite(str(image), bands()[..., ::-1])
    u2video.matte(image, tmp_path / "cut.png", model=fast["model"], device=fast["device"])
    cut = cv2.cvtColor(cv2.imread(str(tmp_path / "cut.png"), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGRA2RGBA)
    assert np.array_equal(cut[..., :3], bands())
