"""What crash-consistent writing costs: MOV/MP4 outputs are written as fragments (so a killed run
leaves a file that plays) and copied into the usual layout at the end. This compares that with
writing the usual layout directly, as u2video did before, on the same frames and encoder:

    python benchmarks/fragments.py [--frames 150] [--size 1280x720] [--rounds 3]

For ProRes 4444 .mov (matte's default) and H.264 .mp4 with +faststart (replace's default) it
prints the seconds of encoding into the usual layout directly, of encoding into fragments and of
the final copy, the sizes of each file, and checks that FFmpeg's mov demuxer reads the finished
file as it reads the directly written one (same frames, pixels, timestamps, codec tag; one moov
and no moof).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from u2video.media.demo import render_still
from u2video.media.remux import remux
from u2video.media.writers import writing_options
from u2video.presets import load_preset


def frames(count: int, width: int, height: int) -> list[np.ndarray]:
    """The demo ball rolling: [H,W,4] RGBA uint8 frames, alpha a soft disc."""
    still = render_still(height, width)
    yy, xx = np.mgrid[0:height, 0:width]
    alpha = (255 * np.clip(1.5 - np.hypot(xx - width / 2, yy - height / 2) / (height / 3), 0, 1)).astype(np.uint8)
    return [np.dstack([np.roll(still, int(width * 0.01 * i), axis=1), alpha]) for i in range(count)]


def encode(path: Path, preset: str, pixels: list[np.ndarray], rate: Fraction, options: dict[str, str]) -> float:
    """Encode the frames with the preset's encoder into ``path`` with these muxer options: seconds."""
    fmt = load_preset(preset).format
    started = time.perf_counter()
    with av.open(str(path), "w", format=fmt.container, options=options) as out:
        stream = out.add_stream(fmt.codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = pixels[0].shape[1], pixels[0].shape[0], fmt.pix_fmt
        stream.time_base = stream.codec_context.time_base = 1 / rate
        stream.options = dict(fmt.codec_options)
        for i, rgba in enumerate(pixels):
            frame = av.VideoFrame.from_ndarray(rgba if fmt.alpha else np.ascontiguousarray(rgba[..., :3]),
                                               format="rgba" if fmt.alpha else "rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return time.perf_counter() - started


def copied(fragmented: Path, final: Path, preset: str) -> float:
    """What VideoSink.finish() adds: the fragments copied into the usual layout: seconds."""
    fmt = load_preset(preset).format
    started = time.perf_counter()
    remux(fragmented, final, fmt.container, fmt.container_options)
    return time.perf_counter() - started


def layout(path: Path) -> list[str]:
    data, boxes, at = path.read_bytes(), [], 0
    while at + 8 <= len(data):
        size, kind = int.from_bytes(data[at:at + 4], "big"), data[at + 4:at + 8].decode("latin-1")
        size = int.from_bytes(data[at + 8:at + 16], "big") if size == 1 else size
        boxes.append(kind)
        if size < 8:
            break
        at += size
    return boxes


def reads_alike(a: Path, b: Path) -> bool:
    def summary(path: Path):
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            tag = stream.codec_context.codec_tag
            frames = [(f.pts, f.to_ndarray(format="rgb24").tobytes()) for f in container.decode(stream)]
        return tag, frames
    return summary(a) == summary(b) and "moof" not in layout(b) and layout(b).count("moov") == 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))
    pixels = frames(args.frames, width, height)
    rate = Fraction(25)
    print(f"{args.frames} frames of {width}x{height}, {args.rounds} alternating rounds (median)\n")
    print("| output | usual layout, written directly | fragments + copy (u2video) | fragmented file | finished file | reads alike |")
    print("| --- | --- | --- | --- | --- | --- |")
    mib = 1 << 20
    with tempfile.TemporaryDirectory() as tmp:
        for preset, ext in (("prores4444", ".mov"), ("h264-replace", ".mp4")):
            fmt = load_preset(preset).format
            times: dict[str, list[float]] = {"direct": [], "fragments": [], "copy": []}
            for r in range(args.rounds):  # alternating, so drifts in the machine's speed hit both
                direct, fragments, final = (Path(tmp) / f"{name}{r}{ext}" for name in ("direct", "fragments", "final"))
                times["direct"].append(encode(direct, preset, pixels, rate, dict(fmt.container_options)))
                times["fragments"].append(encode(fragments, preset, pixels, rate, writing_options(fmt)))
                times["copy"].append(copied(fragments, final, preset))
            med = {k: statistics.median(v) for k, v in times.items()}
            u2 = med["fragments"] + med["copy"]
            print(f"| {preset} {ext} | {med['direct']:.2f} s, {direct.stat().st_size / mib:.2f} MiB "
                  f"| {med['fragments']:.2f} + {med['copy']:.2f} s ({100 * u2 / med['direct'] - 100:+.1f}%) "
                  f"| {fragments.stat().st_size / mib:.2f} MiB ({100 * fragments.stat().st_size / direct.stat().st_size - 100:+.2f}%) "
                  f"| {final.stat().st_size / mib:.2f} MiB | {'yes' if reads_alike(direct, final) else 'NO'} |")


if __name__ == "__main__":
    main()
