"""ProRes 4444 rate control: prores_ks's own (a quantiser searched per slice) against a fixed
quantiser (what the presets' ``qscale`` sets), on frames of the real clips in ../shared/media.

    python benchmarks/prores.py [--frames 12]

For each: encode time per frame on one thread, size per frame, colour PSNR after the round
trip (RGB -> yuva444p10le -> ProRes -> RGB; min and mean over frames), and whether the 10-bit
alpha plane decodes bit-exact. Then the whole stream at quantiser 4 by PyAV's thread type (slice
threads, PyAV's default, against frame threads): frames/s, and whether the packets are those of
a one-thread encode. Last, u2video's own ProRes 4444 output (``VideoSink``, RGBA frames in, the
colour conversion included, as the tool runs it): one encoder on frame threads against segment
encoders (``media/segments.py``), frames/s and whether the files' packets are the same.
``--height 1080`` scales the frames up first.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import torch

from u2video.compose import rgba_to_yuva444p10
from u2video.device import cpu_threads
from u2video.media.writers import VideoSink
from u2video.presets import load_preset

MEDIA = Path(__file__).resolve().parents[1].parent / "shared" / "media"


def clip_frames(count: int) -> list[np.ndarray]:
    paths = sorted(MEDIA.glob("*.mkv"))
    frames: list[np.ndarray] = []
    for path in paths:
        with av.open(str(path)) as container:
            for i, frame in enumerate(container.decode(video=0)):
                if i % 15 == 0:
                    frames.append(frame.to_ndarray(format="rgb24"))
                if len(frames) >= count * (paths.index(path) + 1) // len(paths):
                    break
    return frames


def plane(frame: av.VideoFrame, index: int, width: int) -> np.ndarray:
    return np.frombuffer(frame.planes[index], np.uint16).reshape(frame.height, -1)[:, :width]


def measure(frames: list[np.ndarray], quantiser: int | None) -> dict:
    h, w = frames[0].shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    alpha = (np.clip(1.5 - np.hypot((xx - w / 2) / (w / 4), (yy - h / 2) / (h / 3)), 0, 1) * 255).astype(np.uint8)
    encoder = av.CodecContext.create("prores_ks", "w")
    encoder.width, encoder.height, encoder.pix_fmt, encoder.time_base = w, h, "yuva444p10le", Fraction(1, 25)
    encoder.options = {"profile": "4444", "vendor": "apl0"}
    encoder.thread_type, encoder.thread_count = "SLICE", 1
    if quantiser is not None:
        encoder.qscale, encoder.global_quality = True, quantiser
    decoder = av.CodecContext.create("prores", "r")
    seconds, size, psnrs, exact = 0.0, 0, [], True
    for i, rgb in enumerate(frames):
        source = av.VideoFrame.from_ndarray(np.dstack([rgb, alpha]), format="rgba").reformat(format="yuva444p10le")
        source.pts = i
        start = time.perf_counter()
        packets = encoder.encode(source)
        seconds += time.perf_counter() - start
        packets += encoder.encode(None) if i == len(frames) - 1 else []
        for packet in packets:
            size += packet.size
            for back in decoder.decode(packet):
                shift = 2 if back.format.name.endswith("12le") else 0
                exact &= bool(np.array_equal(plane(back, 3, w) >> shift, plane(source_of(frames, alpha, len(psnrs)), 3, w)))
                rgb_back = back.to_ndarray(format="rgb24").astype(float)
                mse = np.mean((rgb_back - frames[len(psnrs)]) ** 2)
                psnrs.append(10 * np.log10(255 ** 2 / max(mse, 1e-12)))
    return {"ms_per_frame": 1000 * seconds / len(frames), "mb_per_frame": size / len(frames) / 2 ** 20,
            "psnr_min": min(psnrs), "psnr_mean": float(np.mean(psnrs)), "alpha_exact": exact}


def source_of(frames: list[np.ndarray], alpha: np.ndarray, i: int) -> av.VideoFrame:
    return av.VideoFrame.from_ndarray(np.dstack([frames[i], alpha]), format="rgba").reformat(format="yuva444p10le")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--height", type=int, help="scale the frames to this height first (e.g. 1080)")
    args = parser.parse_args()
    frames = clip_frames(args.frames)
    if frames and args.height:
        h, w = frames[0].shape[:2]
        size = (round(w * args.height / h) // 2 * 2, args.height)
        frames = [cv2.resize(f, size, interpolation=cv2.INTER_CUBIC) for f in frames]
    if not frames:
        print(f"prores: no clips in {MEDIA}", file=sys.stderr)
        return 1
    h, w = frames[0].shape[:2]
    print(f"{len(frames)} frames of {', '.join(p.name for p in sorted(MEDIA.glob('*.mkv')))}, {w}x{h}, one thread")
    print("| rate control | ms/frame | MiB/frame | colour PSNR min / mean | alpha plane bit-exact |")
    print("|---|---|---|---|---|")
    for quantiser in (None, 2, 4, 6, 9):
        r = measure(frames, quantiser)
        name = "prores_ks's own (searched per slice)" if quantiser is None else f"fixed quantiser {quantiser}"
        print(f"| {name} | {r['ms_per_frame']:.1f} | {r['mb_per_frame']:.3f} | {r['psnr_min']:.2f} / "
              f"{r['psnr_mean']:.2f} dB | {'yes' if r['alpha_exact'] else 'NO'} |")
    print()
    print("Fixed quantiser 4, the whole stream (flush included), by PyAV's thread type:")
    print("| threads | frames/s | packets as with one thread |")
    print("|---|---|---|")
    one = None
    for thread_type, count in (("SLICE", 1), ("SLICE", 0), ("FRAME", 0)):
        fps, packets = stream_speed(frames, thread_type, count)
        one = one or packets
        label = f"{thread_type.lower()}, {'one thread' if count == 1 else 'a thread per core'}"
        print(f"| {label} | {fps:.1f} | {'yes' if packets == one else 'NO'} |")
    print()
    workers = cpu_threads()
    print(f"u2video's ProRes 4444 output (prores4444 preset), RGBA frames in, {workers} cores:")
    print("| encoders | frames/s | packets as with one encoder |")
    print("|---|---|---|")
    single = None
    for encoders, planes in ((1, False), (workers, False), (workers, True)):
        fps, packets = sink_speed(frames, encoders, planes)
        single = single or packets
        label = "one, on frame threads" if encoders == 1 else f"{encoders} segment encoders"
        if planes:  # what CUDA runs: compose.rgba_to_yuva444p10 on the GPU, not timed here
            print(f"| {label}, frames converted beforehand (as on CUDA) | {fps:.1f} | n/a (converted apart) |")
        else:
            print(f"| {label} | {fps:.1f} | {'yes' if packets == single else 'NO'} |")
    return 0


def sink_speed(frames: list[np.ndarray], encoders: int, planes: bool = False) -> tuple[float, list[bytes]]:
    """Frames/s of writing 4 x the frames through ``VideoSink`` (finish included): as RGBA, or
    as yuva444p10le planes converted beforehand."""
    h, w = frames[0].shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    alpha = (np.clip(1.5 - np.hypot((xx - w / 2) / (w / 4), (yy - h / 2) / (h / 3)), 0, 1) * 255).astype(np.uint8)
    rgba = [np.dstack([rgb, alpha]) for rgb in frames]
    if planes:
        rgba = [p.view(np.uint16) for p in rgba_to_yuva444p10(torch.from_numpy(np.stack(rgba))).numpy()]
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "out.mov"
        start = time.perf_counter()
        sink = VideoSink(out, load_preset("prores4444").format, w, h, Fraction(25), Fraction(1, 25), encoders=encoders)
        for i in range(4 * len(rgba)):
            sink.write(rgba[i % len(rgba)], i)
        sink.finish()
        fps = 4 * len(rgba) / (time.perf_counter() - start)
        with av.open(str(out)) as container:
            packets = [bytes(p) for p in container.demux(video=0) if p.size]
    return fps, packets


def stream_speed(frames: list[np.ndarray], thread_type: str, count: int) -> tuple[float, list[bytes]]:
    h, w = frames[0].shape[:2]
    alpha = np.full((h, w), 200, np.uint8)
    sources = [av.VideoFrame.from_ndarray(np.dstack([rgb, alpha]), format="rgba").reformat(format="yuva444p10le")
               for rgb in frames]
    encoder = av.CodecContext.create("prores_ks", "w")
    encoder.width, encoder.height, encoder.pix_fmt, encoder.time_base = w, h, "yuva444p10le", Fraction(1, 25)
    encoder.options = {"profile": "4444", "vendor": "apl0"}
    encoder.qscale, encoder.global_quality = True, 4
    encoder.thread_type, encoder.thread_count = thread_type, count
    packets: list[bytes] = []
    start = time.perf_counter()
    for i in range(4 * len(sources)):
        frame = sources[i % len(sources)]
        frame.pts = i
        packets += [bytes(p) for p in encoder.encode(frame)]
    packets += [bytes(p) for p in encoder.encode(None)]
    return 4 * len(sources) / (time.perf_counter() - start), packets


if __name__ == "__main__":
    sys.exit(main())
