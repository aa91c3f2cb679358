"""The U²-Net and U²-Netp networks (Qin et al., 2020), as modules only: no I/O, no device choice.

Attribute names follow the authors' code (``stage1.rebnconvin.conv_s1.weight`` ...) so their
``.pth`` checkpoints load with ``load_state_dict`` as they are. The residual U-blocks are built
from one ``RSU`` class instead of the five hand-unrolled copies of the original; the
convolutions still run in the original order, which the ONNX loader relies on.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.fusion import fuse_conv_bn_eval


def _upsample_like(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    # Size-based rather than scale-based, so any input size works (ceil-mode pooling makes
    # odd sizes round up); for 320x320 inputs this equals the authors' scale_factor=2.
    return F.interpolate(x, size=like.shape[2:], mode="bilinear", align_corners=False)


class REBNCONV(nn.Module):
    """3x3 convolution (dilated) -> BatchNorm -> ReLU. After ``fold_batchnorm`` bn is Identity."""

    def __init__(self, in_ch: int, out_ch: int, dilation: int = 1):
        super().__init__()
        self.conv_s1 = nn.Conv2d(in_ch, out_ch, 3, padding=dilation, dilation=dilation)
        self.bn_s1: nn.Module = nn.BatchNorm2d(out_ch)
        self.relu_s1 = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu_s1(self.bn_s1(self.conv_s1(x)))


class RSU(nn.Module):
    """Residual U-block RSU-L (``height`` = L). ``dilated=True`` gives RSU-4F.

    RSU-L: an input conv, an encoder of L-1 convs with 2x max-pooling between them, a
    dilation-2 conv at the bottom, and a decoder of L-1 convs with 2x upsampling between them;
    the block returns decoder output + input conv output.
    RSU-4F replaces pooling/upsampling by dilations 1, 2, 4, 8 (decoder 4, 2, 1), so the
    spatial size never changes; it is used where the feature map is already small.
    """

    def __init__(self, height: int, in_ch: int, mid_ch: int, out_ch: int, dilated: bool = False):
        super().__init__()
        self.height = height
        self.dilated = dilated
        self.rebnconvin = REBNCONV(in_ch, out_ch)
        # Encoder rebnconv1 .. rebnconv{L-1}, bottom rebnconv{L}; decoder rebnconv{L-1}d .. 1d.
        for i in range(1, height):
            dil = 2 ** (i - 1) if dilated else 1
            self.add_module(f"rebnconv{i}", REBNCONV(out_ch if i == 1 else mid_ch, mid_ch, dil))
        bottom = 2 ** (height - 1) if dilated else 2
        self.add_module(f"rebnconv{height}", REBNCONV(mid_ch, mid_ch, bottom))
        for i in range(height - 1, 0, -1):
            dil = 2 ** (i - 1) if dilated else 1
            self.add_module(f"rebnconv{i}d", REBNCONV(mid_ch * 2, out_ch if i == 1 else mid_ch, dil))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hxin = self.rebnconvin(x)
        skips = []
        hx = hxin
        for i in range(1, self.height):
            if i > 1 and not self.dilated:
                hx = F.max_pool2d(hx, 2, stride=2, ceil_mode=True)
            hx = getattr(self, f"rebnconv{i}")(hx)
            skips.append(hx)
        hx = getattr(self, f"rebnconv{self.height}")(hx)
        for i in range(self.height - 1, 0, -1):
            skip = skips[i - 1]
            if not self.dilated and i < self.height - 1:  # the bottom conv kept its input's size
                hx = _upsample_like(hx, skip)
            hx = getattr(self, f"rebnconv{i}d")(torch.cat((hx, skip), 1))
        return hx + hxin


# (height, in, mid, out, dilated) for encoder stages 1-6 and decoder stages 5d-1d.
_U2NET_STAGES = {
    "stage1": (7, 3, 32, 64, False),
    "stage2": (6, 64, 32, 128, False),
    "stage3": (5, 128, 64, 256, False),
    "stage4": (4, 256, 128, 512, False),
    "stage5": (4, 512, 256, 512, True),
    "stage6": (4, 512, 256, 512, True),
    "stage5d": (4, 1024, 256, 512, True),
    "stage4d": (4, 1024, 128, 256, False),
    "stage3d": (5, 512, 64, 128, False),
    "stage2d": (6, 256, 32, 64, False),
    "stage1d": (7, 128, 16, 64, False),
}
_U2NETP_STAGES = {
    "stage1": (7, 3, 16, 64, False),
    "stage2": (6, 64, 16, 64, False),
    "stage3": (5, 64, 16, 64, False),
    "stage4": (4, 64, 16, 64, False),
    "stage5": (4, 64, 16, 64, True),
    "stage6": (4, 64, 16, 64, True),
    "stage5d": (4, 128, 16, 64, True),
    "stage4d": (4, 128, 16, 64, False),
    "stage3d": (5, 128, 16, 64, False),
    "stage2d": (6, 128, 16, 64, False),
    "stage1d": (7, 128, 16, 64, False),
}


class _U2NetBase(nn.Module):
    """Two-level U-structure: six encoder stages, five decoder stages, six side outputs
    fused by a 1x1 conv. ``forward`` returns the fused map d0 as a sigmoid, [B,1,H,W] in 0..1;
    ``forward_all`` returns (d0, d1, ..., d6) like the authors' code, ``side_logits`` the same
    before the sigmoid."""

    def __init__(self, stages: dict[str, tuple[int, int, int, int, bool]]):
        super().__init__()
        for name, (height, cin, mid, cout, dilated) in stages.items():
            self.add_module(name, RSU(height, cin, mid, cout, dilated))
        side_in = [stages[s][3] for s in ("stage1d", "stage2d", "stage3d", "stage4d", "stage5d", "stage6")]
        for i, ch in enumerate(side_in, start=1):
            self.add_module(f"side{i}", nn.Conv2d(ch, 1, 3, padding=1))
        self.outconv = nn.Conv2d(6, 1, 1)

    def side_logits(self, x: torch.Tensor) -> list[torch.Tensor]:
        """x: [B,3,H,W] normalised image -> [d0 fused, d1..d6 side outputs], each [B,1,H,W] logits
        (before the sigmoid): what the training loss takes (``tune``)."""
        hx1 = self.stage1(x)
        hx2 = self.stage2(F.max_pool2d(hx1, 2, 2, ceil_mode=True))
        hx3 = self.stage3(F.max_pool2d(hx2, 2, 2, ceil_mode=True))
        hx4 = self.stage4(F.max_pool2d(hx3, 2, 2, ceil_mode=True))
        hx5 = self.stage5(F.max_pool2d(hx4, 2, 2, ceil_mode=True))
        hx6 = self.stage6(F.max_pool2d(hx5, 2, 2, ceil_mode=True))

        hx5d = self.stage5d(torch.cat((_upsample_like(hx6, hx5), hx5), 1))
        hx4d = self.stage4d(torch.cat((_upsample_like(hx5d, hx4), hx4), 1))
        hx3d = self.stage3d(torch.cat((_upsample_like(hx4d, hx3), hx3), 1))
        hx2d = self.stage2d(torch.cat((_upsample_like(hx3d, hx2), hx2), 1))
        hx1d = self.stage1d(torch.cat((_upsample_like(hx2d, hx1), hx1), 1))

        d1 = self.side1(hx1d)
        sides = [d1]
        for i, feat in enumerate((hx2d, hx3d, hx4d, hx5d, hx6), start=2):
            sides.append(_upsample_like(getattr(self, f"side{i}")(feat), d1))
        d0 = self.outconv(torch.cat(sides, 1))
        return [d0, *sides]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B,3,H,W] normalised image -> fused saliency d0: [B,1,H,W] in 0..1."""
        return torch.sigmoid(self.side_logits(x)[0])

    def forward_all(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """All seven outputs (d0 fused, d1..d6 side), each [B,1,H,W] sigmoid, as the authors return."""
        return tuple(torch.sigmoid(d) for d in self.side_logits(x))


class U2NET(_U2NetBase):
    """Full U²-Net, 44.0 M parameters (176 MB as float32)."""

    def __init__(self):
        super().__init__(_U2NET_STAGES)


class U2NETP(_U2NetBase):
    """U²-Netp, the small model: 1.13 M parameters (4.7 MB)."""

    def __init__(self):
        super().__init__(_U2NETP_STAGES)


ARCHITECTURES: dict[str, type[_U2NetBase]] = {"u2net": U2NET, "u2netp": U2NETP}


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """Fold every REBNCONV's BatchNorm into its convolution (eval-mode statistics), in place.

    After folding, the model computes the same function in eval mode with one op fewer per
    block; its convolutions then have the layout of rembg's ONNX files, whose exporter did the
    same fold. Folding twice is a no-op.
    """
    for module in model.modules():
        if isinstance(module, REBNCONV) and isinstance(module.bn_s1, nn.BatchNorm2d):
            module.conv_s1 = fuse_conv_bn_eval(module.conv_s1.eval(), module.bn_s1.eval())
            module.bn_s1 = nn.Identity()
    return model.eval()
