"""How fast fp32 could be at best, against the per-frame peer loop, in alternating rounds.

The upper bound for any fp32 ``u2video matte`` on this CPU is its network alone: OpenVINO on
the exported u2netp at 320², two streams with a frame each in flight (as the frame loop runs
it), no decoding, matte step, encoding or start-up. Each round times that on ``--frames``
frames in this process, and the peer loop (``u2video/peer_loop.py``: decode, onnxruntime on
rembg's file, upsample, ProRes 4444, one frame at a time) as a whole process on a generated
640x480 clip of as many frames. If the network alone is under 1.5x the peer loop, no fp32
pipeline reaches 1.5x end to end here.

    U2NET_HOME=<models> python benchmarks/fp32_bound.py [--frames 120] [--rounds 3]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

import u2video.compare
from u2video.device import OpenVinoNetwork, cpu_threads
from u2video.media.demo import write_clip
from u2video.model.weights import load_network, resolve


def network_fps(network: OpenVinoNetwork, frames: int) -> float:
    """Frames/s of ``network`` on [1,3,320,320] inputs, a call per core at once."""
    x = torch.rand(1, 3, 320, 320)
    workers = cpu_threads()
    threads = [threading.Thread(target=lambda: [network(x) for _ in range(frames // workers)]) for _ in range(workers)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return workers * (frames // workers) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    network, _ = load_network("u2netp")
    openvino = OpenVinoNetwork(network, streams=cpu_threads(), threads=cpu_threads())
    network_fps(openvino, 2 * cpu_threads())  # compiled, warmed up
    peer = Path(u2video.compare.__file__).with_name("peer_loop.py")
    with tempfile.TemporaryDirectory() as tmp:
        clip = write_clip(Path(tmp) / "clip.mp4", args.frames, (480, 640), 30, audio=False)
        for round_ in range(args.rounds):
            start = time.perf_counter()
            subprocess.run([sys.executable, str(peer), str(clip), str(Path(tmp) / "out.mov"), "--model",
                            str(resolve("u2netp").path)], check=True, capture_output=True)
            peer_fps = args.frames / (time.perf_counter() - start)
            alone = network_fps(openvino, args.frames)
            print(f"round {round_ + 1}: peer loop {peer_fps:.2f} frames/s (whole process), OpenVINO fp32 network "
                  f"alone {alone:.2f} frames/s: at best {alone / peer_fps:.2f}x", flush=True)


if __name__ == "__main__":
    main()
