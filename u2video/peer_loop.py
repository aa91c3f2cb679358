"""The per-frame loop people write around rembg's model, as the yardstick for u2video on video:
decode a frame -> onnxruntime on rembg's u2netp.onnx (one session on every core, rembg's
recipe: 320x320, divided by the image's max, ImageNet mean/std; the first output min-max
normalised) -> bilinear back to the frame -> RGBA -> ProRes 4444 (prores_ks as PyAV gives it),
one frame at a time. No u2video code: this is the peer.

    python u2video/peer_loop.py clip.mp4 out.mov [--model ~/.u2net/u2netp.onnx]

It lives in the package so that ``u2video bench --compare`` can run it as the yardstick; it is
run by its path, as a script, and imports nothing from u2video.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import av
import cv2
import numpy as np
import onnxruntime as ort

MEAN, STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("clip")
    parser.add_argument("out")
    home = Path(os.environ.get("U2NET_HOME", Path.home() / ".u2net"))
    parser.add_argument("--model", default=str(home / "u2netp.onnx"))
    args = parser.parse_args()
    session = ort.InferenceSession(args.model, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    start, frames = time.perf_counter(), 0
    with av.open(args.clip) as source, av.open(args.out, "w") as out:
        video = source.streams.video[0]
        video.thread_type = "AUTO"
        stream = out.add_stream("prores_ks", rate=video.average_rate)
        stream.width, stream.height, stream.pix_fmt = video.width, video.height, "yuva444p10le"
        for frame in source.decode(video):
            rgb = frame.to_ndarray(format="rgb24")
            x = cv2.resize(rgb, (320, 320), interpolation=cv2.INTER_LINEAR).astype(np.float32)
            x = (x / max(x.max(), 1e-6) - MEAN) / STD
            pred = session.run(None, {name: x.transpose(2, 0, 1)[None].astype(np.float32)})[0][0, 0]
            pred = (pred - pred.min()) / max(pred.max() - pred.min(), 1e-6)
            alpha = cv2.resize(pred, (video.width, video.height), interpolation=cv2.INTER_LINEAR)
            rgba = np.dstack([rgb, (alpha * 255).round().astype(np.uint8)])
            encoded = av.VideoFrame.from_ndarray(rgba, format="rgba")
            encoded.pts, encoded.time_base = frame.pts, frame.time_base
            out.mux(stream.encode(encoded))
            frames += 1
        out.mux(stream.encode(None))
    seconds = time.perf_counter() - start
    print(f"peer loop: {frames} frames in {seconds:.2f} s, {frames / seconds:.2f} frames/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
