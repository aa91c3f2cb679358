"""The `u2video tune` loop on our demo clip, end to end, and the README's before/after picture.

The demo clip (the camera panning past a red ball and a blue box on a table, ``make_samples.py``)
has subjects we can paint exactly. U²-Netp, a saliency network, mattes the ball and leaves the
box out; here the user wants both objects. Five masks of the ball and the box (not the ball's
shadow), as a user would paint them, are written into samples/demo/masks/, ``u2video tune``
learns from them, and both models matte the clip with the defaults. Prints the MAD against the
true masks on the frames tune never saw, and writes samples/tune-before-after.png: two of those
frames, the base model's matte, the tuned one's.

    python samples/tune_demo.py        # ~6 minutes on 2 CPU cores
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import av
import cv2
import numpy as np

import u2video
from u2video.media.demo import objects_mask, write_clip

HERE = Path(__file__).resolve().parent
FRAMES, SIZE = 75, (360, 480)  # write_clip's defaults
MASKED = (0, 18, 37, 56, 74)
SHOWN = (9, 46)  # frames tune never saw


def grey(path: Path) -> np.ndarray:
    """All frames of a grey matte video: [T,H,W] f32 0..1."""
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="gray") for f in container.decode(video=0)]).astype(np.float32) / 255


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=HERE / "demo")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    clip = args.out / "clip.mp4"
    if not clip.is_file():
        write_clip(clip)
    masks = args.out / "masks"
    masks.mkdir(exist_ok=True)
    for i in MASKED:  # what the user paints: the ball and the box, not the shadow
        cv2.imwrite(str(masks / f"{i:05d}.png"), objects_mask(*SIZE, frame=i).astype(np.uint8) * 255)
    model = args.out / "objects.pth"
    u2video.tune(clip, masks, model, overwrite=True)
    truth = np.stack([objects_mask(*SIZE, frame=i) for i in range(FRAMES)]).astype(np.float32)
    unseen = [i for i in range(FRAMES) if i not in MASKED]
    with tempfile.TemporaryDirectory() as tmp:
        mattes = {}
        for name, weights in (("base", "u2netp"), ("tuned", str(model))):
            out = Path(tmp) / f"{name}.mkv"
            u2video.matte(clip, out, model=u2video.ModelConfig(weights), options=u2video.OutputConfig(mask_only=True))
            mattes[name] = grey(out)
    for name, alpha in mattes.items():
        print(f"{name}: MAD against the true masks on the {len(unseen)} unseen frames "
              f"{np.abs(alpha[unseen] - truth[unseen]).mean() * 1e3:.1f} (x1e3)")
    with av.open(str(clip)) as container:
        pictures = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    rows = []
    for i in SHOWN:
        cells = [pictures[i]] + [np.repeat((mattes[k][i] * 255).astype(np.uint8)[..., None], 3, -1)
                                 for k in ("base", "tuned")]
        rows.append(np.concatenate([np.pad(c, ((4, 4), (4, 4), (0, 0)), constant_values=255) for c in cells], 1))
    sheet = cv2.resize(np.concatenate(rows, 0), None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    target = HERE / "tune-before-after.png"
    cv2.imwrite(str(target), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    print(f"wrote {target}: frames {', '.join(map(str, SHOWN))}; the frame, u2netp's matte, the tuned model's")


if __name__ == "__main__":
    main()
