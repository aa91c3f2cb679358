"""Pure tensor functions that turn frames and alpha into output pixels."""

from __future__ import annotations

import torch


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
