"""Pure tensor functions that turn frames and alpha into output pixels. Everything runs on
whatever device the tensors are on; the backgrounds themselves are in ``backgrounds.py``."""

from __future__ import annotations

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
    out = bg + alpha * (fg - bg)
    return out.clamp_(0, 255).round_().to(torch.uint8).permute(0, 2, 3, 1)


class Compositor:
    """frames [B,H,W,3] uint8 + alpha [B,1,H,W] -> the subject over ``background``: [B,H,W,3] uint8."""

    def __init__(self, background: Background):
        self.background = background

    def __call__(self, frames: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        fg = frames.to(alpha.device).permute(0, 3, 1, 2).float()
        return over(fg, alpha, self.background(fg, alpha))
