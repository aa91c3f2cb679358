"""Training, a path of its own: ``tune`` adapts U²-Net to one clip from a few corrected masks.
The inference path never imports it."""

from .train import tune

__all__ = ["tune"]
