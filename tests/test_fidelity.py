"""u2netp through u2video reproduces the U²-Net authors' published masks."""

import cv2
import numpy as np
import pytest

from u2video.config import DeviceConfig, DeviceKind, ModelConfig
from u2video.media.images import read_image
from u2video.segmenter import Segmenter

IMAGES = ["0003.jpg", "bike.jpg", "boat.jpg", "girl.png", "hockey.png", "horse.jpg", "im_01.png",
          "im_14.png", "sailboat3.jpg", "whisk.png"]


@pytest.fixture(scope="module")
def segmenter():
    from .conftest import missing_shared, weights_dir

    folder = weights_dir()
    if folder is None:
        missing_shared("needs rembg's u2netp.onnx in $U2NET_HOME or ../shared/models")
    return Segmenter.from_config(ModelConfig(str(folder / "u2netp.onnx")).resolved(video=False), DeviceConfig(DeviceKind.CPU))


@pytest.mark.parametrize("name", IMAGES)
def test_official_u2netp_results_are_reproduced(name, segmenter, reference_dir):
    mask = segmenter.mask(read_image(reference_dir / "images" / name)).astype(np.float32) / 255
    official_path = reference_dir / "u2netp_results" / (name.rsplit(".", 1)[0] + ".png")
    official = cv2.imread(str(official_path), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255
    assert mask.shape == official.shape
    mae = np.abs(mask - official).mean()
    ours, theirs = mask > 0.5, official > 0.5
    iou = (ours & theirs).sum() / (ours | theirs).sum()
    assert mae <= 0.005, f"{name}: mean absolute error {mae:.4f}"
    assert iou >= 0.99, f"{name}: IoU {iou:.4f}"
