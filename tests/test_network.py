"""The U²-Net modules: architecture size, shapes, BatchNorm folding, precision."""

import pytest
import torch

from u2video.model.u2net import U2NET, U2NETP, fold_batchnorm

from .conftest import randomise_batchnorm


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_parameter_counts_match_the_paper():
    # Paper: U²-Net 44.0 M parameters (176.3 MB), U²-Netp 1.13 M (4.7 MB).
    assert round(n_params(U2NET()) / 1e6, 1) == 44.0
    assert round(n_params(U2NETP()) / 1e6, 2) == 1.13


def test_authors_state_dict_names():
    keys = set(U2NETP().state_dict())
    for key in ("stage1.rebnconvin.conv_s1.weight", "stage1.rebnconv7.conv_s1.weight",
                "stage1.rebnconv1d.bn_s1.running_var", "stage5.rebnconv4.conv_s1.weight",
                "stage6.rebnconv3d.conv_s1.bias", "side6.weight", "outconv.weight"):
        assert key in keys


@pytest.mark.parametrize("shape", [(2, 3, 64, 64), (1, 3, 70, 93)])
def test_fused_output_shape_and_range(shape):
    torch.manual_seed(0)
    net = fold_batchnorm(U2NETP())
    with torch.no_grad():
        out = net(torch.randn(*shape))
        every = net.forward_all(torch.randn(*shape))
    assert out.shape == (shape[0], 1, *shape[2:])
    assert 0 <= out.min() and out.max() <= 1
    assert len(every) == 7 and all(o.shape == out.shape for o in every)


def test_dilated_blocks_keep_size_and_use_dilations():
    stage5 = U2NETP().stage5
    assert [stage5.get_submodule(f"rebnconv{i}").conv_s1.dilation[0] for i in (1, 2, 3, 4)] == [1, 2, 4, 8]
    assert [stage5.get_submodule(f"rebnconv{i}d").conv_s1.dilation[0] for i in (3, 2, 1)] == [4, 2, 1]
    with torch.no_grad():
        assert stage5(torch.randn(1, 64, 10, 10)).shape == (1, 64, 10, 10)


def test_fold_batchnorm_keeps_the_function():
    torch.manual_seed(1)
    net = randomise_batchnorm(U2NETP().eval())
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        before = net(x)
        fold_batchnorm(net)
        after = net(x)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    assert torch.allclose(before, after, atol=1e-5)


def test_fp16_matches_fp32():
    torch.manual_seed(2)
    net = fold_batchnorm(U2NETP())
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        full = net(x)
        half = net.half()(x.half()).float()
    assert (full - half).abs().max() < 2e-2


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_matches_cpu():
    torch.manual_seed(3)
    net = fold_batchnorm(U2NETP())
    x = torch.randn(4, 3, 320, 320)
    with torch.no_grad():
        cpu = net(x)
        gpu = net.cuda()(x.cuda()).cpu()
        gpu16 = net.half()(x.cuda().half()).float().cpu()
    assert (cpu - gpu).abs().max() < 1e-3
    assert (cpu - gpu16).abs().max() < 2e-2
