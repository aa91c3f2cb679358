"""Segmenter: the preprocessing recipe, batching, and the two normalisations."""

import pytest
import torch

from u2video.config import DeviceConfig, DeviceKind, ModelConfig, Normalization
from u2video.segmenter import Segmenter

from .conftest import synthetic_scene


@pytest.fixture(scope="module")
def frames():
    return torch.stack([torch.from_numpy(synthetic_scene(90, 120, seed=s)) for s in range(3)])  # [3,H,W,3]


@pytest.mark.parametrize("normalization", [Normalization.REFERENCE, Normalization.FIXED])
def test_a_frame_does_not_depend_on_its_batch(normalization, frames, u2netp_store):
    seg = Segmenter.from_config(ModelConfig("u2netp", 64, normalization), DeviceConfig(DeviceKind.CPU))
    together = seg(frames)
    alone = torch.cat([seg(frames[i:i + 1]) for i in range(len(frames))])
    assert together.shape == (3, 1, 90, 120) and together.dtype == torch.float32
    assert (together - alone).abs().max() < 1e-4  # float rounding of batched kernels only


def test_fixed_normalisation_keeps_the_gain(frames, u2netp_store):
    """REFERENCE stretches every prediction to 0..1; FIXED leaves a darker frame's matte alone,
    so the same frame at half brightness gives a different REFERENCE input but a FIXED one
    that is exactly the /255 scaling of it."""
    ref = Segmenter.from_config(ModelConfig("u2netp", 64, Normalization.REFERENCE), DeviceConfig(DeviceKind.CPU))
    fixed = Segmenter.from_config(ModelConfig("u2netp", 64, Normalization.FIXED), DeviceConfig(DeviceKind.CPU))
    lowres_ref = ref.predict_lowres(frames)
    assert torch.allclose(lowres_ref.amin(dim=(1, 2, 3)), torch.zeros(3), atol=1e-6)
    assert torch.allclose(lowres_ref.amax(dim=(1, 2, 3)), torch.ones(3), atol=1e-6)
    dim = (frames.float() * 0.5).round().to(torch.uint8)
    # Dividing by the image max undoes a global brightness change; /255 does not.
    assert (ref.predict_lowres(dim) - lowres_ref).abs().mean() < 0.02
    assert (fixed.predict_lowres(dim) - fixed.predict_lowres(frames)).abs().mean() > 0.02
