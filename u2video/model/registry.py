"""The U²-Net family as rembg distributes it: data, not code.

File names, checksums and addresses are rembg's, so a store shared with rembg is reused as is.
"""

from __future__ import annotations

from dataclasses import dataclass

_REMBG_RELEASE = "https://github.com/danielgatis/rembg/releases/download/v0.0.0/"


@dataclass(frozen=True)
class ModelSpec:
    name: str
    architecture: str  # key of model.u2net.ARCHITECTURES
    filename: str  # inside the store
    md5: str
    url: str
    description: str
    input_size: int = 320  # what the weights were trained at


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            "u2netp", "u2netp", "u2netp.onnx", "8e83ca70e441ab06c318d82300c84806",
            _REMBG_RELEASE + "u2netp.onnx", "U²-Netp, small and fast (4.7 MB), general salient objects",
        ),
        ModelSpec(
            "u2net", "u2net", "u2net.onnx", "60024c5c889badc19c04ad937298a77b",
            _REMBG_RELEASE + "u2net.onnx", "U²-Net, full size (176 MB), general salient objects",
        ),
        ModelSpec(
            "u2net_human_seg", "u2net", "u2net_human_seg.onnx", "c09ddc2e0104f800e3e1bb4652583d1f",
            _REMBG_RELEASE + "u2net_human_seg.onnx", "U²-Net trained for people (176 MB)",
        ),
        ModelSpec(
            "silueta", "u2net", "silueta.onnx", "55e59e0d8062d2f5d013f4725ee84782",
            _REMBG_RELEASE + "silueta.onnx", "U²-Net reduced to 43 MB (silueta.me)",
        ),
    )
}
