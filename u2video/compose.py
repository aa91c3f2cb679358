"""Pure tensor functions that turn frames and alpha into output pixels. Everything runs on
whatever device the tensors are on; the backgrounds themselves are in ``backgrounds.py``."""

from __future__ import annotations

import functools

import torch

from .backgrounds import Background


def alpha_to_uint8(alpha: torch.Tensor) -> torch.Tensor:
    """alpha f32 0..1 (any shape) -> uint8 0..255, rounded."""
    return (alpha * 255.0).round_().to(torch.uint8)


def to_rgba(frames: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """frames [B,H,W,3] uint8 + alpha [B,1,H,W] f32 0..1 -> [B,H,W,4] uint8, straight (not premultiplied)."""
    a = alpha_to_uint8(alpha).permute(0, 2, 3, 1)  # [B,H,W,1]
    return torch.cat((frames.to(a.device), a), dim=3)


def to_matte(frames: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """The grey matte as output pixels: alpha [B,1,H,W] f32 -> [B,H,W] uint8 (frames unused)."""
    return alpha_to_uint8(alpha)[:, 0]


def over(fg: torch.Tensor, alpha: torch.Tensor, bg: torch.Tensor) -> torch.Tensor:
    """fg, bg [B,3,H,W] f32 0..255 (bg may broadcast), alpha [B,1,H,W] 0..1 -> [B,H,W,3] uint8."""
    out = torch.sub(fg, bg).mul_(alpha).add_(bg)  # bg + alpha·(fg - bg), in one new tensor
    return out.clamp_(0, 255).round_().to(torch.uint8).permute(0, 2, 3, 1)


class Compositor:
    """frames [B,H,W,3] uint8 + alpha [B,1,H,W] -> the subject over ``background``: [B,H,W,3] uint8."""

    def __init__(self, background: Background):
        self.background = background

    def __call__(self, frames: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        fg = frames.to(alpha.device).permute(0, 3, 1, 2).float()
        return over(fg, alpha, self.background(fg, alpha))


# RGB -> Y'CbCr as FFmpeg's swscale converts RGB frames for ProRes (BT.601, limited range),
# scaled to 10 bits: Y 64..940, Cb/Cr 64..960 around 512
_BT601 = ((0.299, 0.587, 0.114), (-0.168736, -0.331264, 0.5), (0.5, -0.418688, -0.081312))


def rgba_to_yuva444p10(rgba: torch.Tensor) -> torch.Tensor:
    """[B,H,W,4] uint8 RGBA -> the planes of FFmpeg's yuva444p10le, [B,4,H,W] int16 (Y, Cb, Cr,
    A; 0..1023), so a GPU can do the colour conversion an encoder would otherwise do on a CPU
    core (10-15 ms a 1080p frame). Colour within 1 of swscale's values; alpha exactly
    swscale's (8 -> 10 bits by repeating the top bits: a*4 + (a+32)/64, at most 1023)."""
    x = rgba.permute(0, 3, 1, 2).float()  # [B,4,H,W] 0..255
    rgb, a = x[:, :3], x[:, 3:]
    matrix, scale, offset = _bt601_constants(rgba.device)
    ycc = torch.einsum("ck,bkhw->bchw", matrix, rgb)
    ycc = (ycc * scale + offset).round_()
    a10 = (a * 4 + torch.div(a + 32, 64, rounding_mode="floor")).clamp_(max=1023)
    return torch.cat((ycc, a10), dim=1).to(torch.int16)


@functools.cache
def _bt601_constants(device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Made once per device: a copy from host memory in the frame loop would wait for the GPU."""
    matrix = torch.tensor(_BT601, dtype=torch.float32, device=device)
    scale = torch.tensor((876.0, 896.0, 896.0), device=device).view(1, 3, 1, 1) / 255.0
    offset = torch.tensor((64.0, 512.0, 512.0), device=device).view(1, 3, 1, 1)
    return matrix, scale, offset
