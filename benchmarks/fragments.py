"""What crash-consistent writing costs: MOV/MP4 outputs are written as fragments (so a killed run
leaves a file that plays) and copied into the usual layout at the end. This compares that with
writing the usual layout directly, as u2video did before, on the same frames and encoder:

    python benchmarks/fragments.py [--frames 150] [--size 1280x720] [--rounds 3]

For ProRes 4444 .mov (matte's default) and H.264 .mp4 with +faststart (replace's default) it
prints the seconds spent encoding and muxing, the seconds of the final copy, the sizes of the
fragmented file and of both finished files, and checks that FFmpeg's mov demuxer reads the two
finished files alike (same frames, timestamps, codec tag, one moov and no moof).
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
from u2video.media.files import TEMP_NAME
from u2video.media.writers import VideoSink
from u2video.presets import load_preset


def frames(count: int, width: int, height: int) -> list[np.ndarray]:
    """The demo ball rolling: [H,W,4] RGBA uint8 frames, alpha a soft disc."""
    still = render_still(height, width)
    yy, xx = np.mgrid[0:height, 0:width]
    alpha = (255 * np.clip(1.5 - np.hypot(xx - width / 2, yy - height / 2) / (height / 3), 0, 1)).astype(np.uint8)
    return [np.dstack([np.roll(still, int(width * 0.01 * i), axis=1), alpha]) for i in range(count)]


def direct(path: Path, preset: str, pixels: list[np.ndarray], rate: Fraction) -> float:
    """The usual layout written in one go (the muxer's own index at the end or, with +faststart,
    moved to the front): seconds."""
    fmt = load_preset(preset).format
    started = time.perf_counter()
    with av.open(str(path), "w", format=fmt.container, options=dict(fmt.container_options)) as out:
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


def fragmented(path: Path, preset: str, pixels: list[np.ndarray], rate: Fraction) -> tuple[float, float, int]:
    """u2video's sink: fragments while writing, copied into the usual layout by finish().
    Returns (seconds writing, seconds finishing, bytes of the fragmented file before finish)."""
    fmt = load_preset(preset).format
    started = time.perf_counter()
    sink = VideoSink(path, fmt, pixels[0].shape[1], pixels[0].shape[0], rate, 1 / rate)
    for i, rgba in enumerate(pixels):
        sink.write(rgba if fmt.alpha else np.ascontiguousarray(rgba[..., :3]), i)
    fragment_bytes = sum(p.stat().st_size for p in path.parent.iterdir() if TEMP_NAME.match(p.name))
    wrote = time.perf_counter()
    sink.finish()  # the encoder's last packets, then the copy into the usual layout
    return wrote - started, time.perf_counter() - wrote, fragment_bytes


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
    print("| output | direct: s | u2video: s writing + s finishing | fragmented file before finish | finished: direct / u2video | reads alike |")
    print("| --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        for preset, ext in (("prores4444", ".mov"), ("h264-replace", ".mp4")):
            times: dict[str, list[float]] = {"direct": [], "write": [], "copy": []}
            for r in range(args.rounds):
                a, b = Path(tmp) / f"direct{r}{ext}", Path(tmp) / f"u2video{r}{ext}"
                times["direct"].append(direct(a, preset, pixels, rate))
                wrote, copied, fragment_bytes = fragmented(b, preset, pixels, rate)
                times["write"].append(wrote)
                times["copy"].append(copied)
            same = reads_alike(a, b)
            med = {k: statistics.median(v) for k, v in times.items()}
            mib = 1 << 20
            print(f"| {preset} {ext} | {med['direct']:.2f} | {med['write']:.2f} + {med['copy']:.2f} "
                  f"({100 * (med['write'] + med['copy']) / med['direct'] - 100:+.0f}%) | "
                  f"{fragment_bytes / mib:.2f} MiB ({100 * fragment_bytes / b.stat().st_size - 100:+.1f}%) | "
                  f"{a.stat().st_size / mib:.2f} / {b.stat().st_size / mib:.2f} MiB | {'yes' if same else 'NO'} |")


if __name__ == "__main__":
    main()
