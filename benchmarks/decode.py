"""How fast a clip decodes: FFmpeg's software decoder on its threads (what u2video uses), and
NVIDIA's NVDEC through PyAV's hwaccel, with frames downloaded to host memory or kept on the
GPU. Tells whether an NVDEC path is worth building for a clip size; u2video has none yet.

    python benchmarks/decode.py clip.mp4 [--json]

Run it in a process of its own: FFmpeg's CUDA decoder wants the GPU's primary context made its
way, and fails (EOPNOTSUPP) in a process where PyTorch made it first (../shared notes). Each
way's frames/s counts every frame of the clip, the frame's conversion to RGB on the host
included where the frame is on the host (as u2video's decode thread does it).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import av
from av.codec.hwaccel import HWAccel


def measure(path: str, way: str) -> dict:
    hwaccel = None
    if way != "software":
        hwaccel = HWAccel("cuda", allow_software_fallback=False, is_hw_owned=way == "nvdec, frames on the GPU")
    try:
        start = time.perf_counter()
        with av.open(path, hwaccel=hwaccel) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            frames, formats = 0, set()
            for frame in container.decode(stream):
                formats.add(frame.format.name)
                if way != "nvdec, frames on the GPU":
                    frame.to_ndarray(format="rgb24")
                frames += 1
        seconds = time.perf_counter() - start
    except (av.FFmpegError, OSError, ValueError, NotImplementedError) as e:
        return {"way": way, "error": f"{type(e).__name__}: {getattr(e, 'strerror', None) or e}"}
    return {"way": way, "frames": frames, "fps": round(frames / seconds, 1), "formats": sorted(formats)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("clip")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args()
    rows = [measure(args.clip, way) for way in ("software", "nvdec, frames on the host", "nvdec, frames on the GPU")]
    if args.json:
        print(json.dumps(rows))
        return 0
    for row in rows:
        print(f"{row['way']}: " + (row["error"] if "error" in row else f"{row['fps']} frames/s ({row['frames']} frames, "
                                   f"{', '.join(row['formats'])})"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
