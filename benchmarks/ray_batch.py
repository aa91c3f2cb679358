"""A folder of clips in one process and on Ray, and what splitting a long clip into segments
changes in its matte.

    U2NET_HOME=../shared/models python benchmarks/ray_batch.py [--clips 4] [--frames 100]
        [--segments-clip ../shared/media/one-by-one-person-detection.mp4] [--from 60] [--seconds 40]
        [--segment-seconds 20] [--warm-ups 0,150] [--crop auto] [--skip overhead|segments] [--join-check] [--json FILE]

1. **Overhead**: ``--clips`` demo clips (the project's renderer, 640x480, ``--frames`` each, with
   audio) matted by ``u2video matte DIR -o OUT`` and by the same with ``--ray`` (a local Ray started
   by the command), both as subprocesses with u2video's defaults; wall time of each command, and
   the ratio. The outputs are compared frame by frame (max |Δα|).
2. **Segments**: ``--seconds`` of a real clip from ``--from`` (people walking in a room),
   matted whole in one process and on Ray cut into ``--segment-seconds`` segments, each segment
   started ``w`` frames early for each ``--warm-ups`` w (0: the smoothing window only), with the
   crop pass ``--crop``; max |Δα| against the single pass, over all frames and over the first
   second of each segment.
3. **Join check** (``--join-check``): two libx264 segments of a demo clip joined by copying their
   packets, against one encoder: frames and pts decoded from the join, and the one encoder's rate.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def alphas(path: Path) -> tuple[list[int], np.ndarray]:
    """(pts, alpha [N,H,W] uint8) of a matte (.mkv grey) or an RGBA .mov."""
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
    grey = frames[0].format.name.startswith("gray")
    return [f.pts for f in frames], np.stack([f.to_ndarray(format="gray") if grey else f.to_ndarray(format="rgba")[..., 3]
                                             for f in frames])


def overhead(folder: Path, clips: int, frames: int) -> dict:
    from u2video.media.demo import write_clip

    source = folder / "clips"
    source.mkdir()
    for i in range(clips):
        write_clip(source / f"clip{i}.mp4", frames, (480, 640), 25, audio=True)
    times = {}
    for name, extra in (("plain", []), ("ray", ["--ray"])):
        began = time.perf_counter()
        run = subprocess.run([sys.executable, "-m", "u2video", "matte", str(source), "-o", str(folder / name), *extra],
                             capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
        times[name] = time.perf_counter() - began
        if run.returncode:
            raise SystemExit(f"{name} failed ({run.returncode}):\n{run.stderr[-2000:]}")
        print(f"  {name}: {times[name]:.1f} s  ({run.stderr.strip().splitlines()[-1]})", flush=True)
    worst = 0
    for i in range(clips):
        pa, a = alphas(folder / "plain" / f"clip{i}.mov")
        pb, b = alphas(folder / "ray" / f"clip{i}.mov")
        assert pa == pb, f"clip{i}: pts differ"
        worst = max(worst, int(np.abs(a.astype(int) - b).max()))
    ratio = times["ray"] / times["plain"]
    print(f"overhead: {clips} clips x {frames} frames: plain {times['plain']:.1f} s, --ray {times['ray']:.1f} s, "
          f"ratio {ratio:.3f} ({(ratio - 1) * 100:+.1f}%); max |dalpha| {worst}/255", flush=True)
    return {"clips": clips, "frames": frames, "seconds": times, "ratio": ratio, "max_dalpha": worst}


def cut(clip: Path, target: Path, start: float, seconds: float) -> None:
    """Frames [start, start + seconds) of ``clip`` as a lossless FFV1 clip starting at 0."""
    with av.open(str(clip)) as inp, av.open(str(target), "w") as out:
        src = inp.streams.video[0]
        stream = out.add_stream("ffv1", rate=src.average_rate)
        stream.width, stream.height, stream.pix_fmt = src.width, src.height, "yuv420p"
        stream.time_base = src.time_base
        first = None
        for frame in inp.decode(src):
            t = float(frame.pts * src.time_base)
            if t < start:
                continue
            if t >= start + seconds:
                break
            first = frame.pts if first is None else first
            frame.pts -= first
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


def segments(folder: Path, clip: Path, start: float, seconds: float, warm_ups: list[int], crop: str,
             segment_seconds: float) -> dict:
    import u2video
    from u2video.config import ClusterConfig, Crop, MatteConfig, OutputConfig

    excerpt = folder / "excerpt.mkv"
    cut(clip, excerpt, start, seconds)
    options = OutputConfig(mask_only=True)
    began = time.perf_counter()
    matte_config = MatteConfig(crop=Crop(crop))
    u2video.matte([excerpt], folder / "single.mkv", options=options, matte_config=matte_config)
    print(f"  single pass: {time.perf_counter() - began:.1f} s", flush=True)
    pts, reference = alphas(folder / "single.mkv")
    with av.open(str(excerpt)) as container:
        stream = container.streams.video[0]
        rate = float(stream.average_rate)
    results = {}
    for warm in warm_ups:
        out = folder / f"warm{warm}"
        began = time.perf_counter()
        u2video.matte([excerpt], out, options=options, matte_config=matte_config,
                      cluster=ClusterConfig(segment_seconds=segment_seconds, warm_up_frames=warm))
        took = time.perf_counter() - began
        got_pts, got = alphas(out / "excerpt.mkv")
        assert got_pts == pts, "pts differ"
        diff = np.abs(got.astype(int) - reference).reshape(len(pts), -1).max(axis=1)
        starts = [round(k * segment_seconds * rate) for k in range(1, int(seconds // segment_seconds) + 1)
                  if k * segment_seconds * rate < len(pts)]
        first_second = [int(diff[s:s + round(rate)].max()) for s in starts]
        results[str(warm)] = {"max_dalpha": int(diff.max()), "frames_over_1": int((diff > 1).sum()),
                                "first_second_of_each_segment": first_second, "seconds": took}
        print(f"crop {crop}, warm-up {warm} frames: max |dalpha| {int(diff.max())}/255 over {len(pts)} frames, {int((diff > 1).sum())} "
              f"frames > 1/255; first second of each segment: {first_second}; {took:.1f} s", flush=True)
    return {"clip": clip.name, "from": start, "seconds": seconds, "crop": crop, "segment_seconds": segment_seconds, "frames": len(pts), "by_warm_up": results}


def join_check(folder: Path, frames: int = 100) -> dict:
    """Per-segment libx264 encodes joined by copying their packets, against one encoder: does the
    join mux and decode to the source's frames and pts, and how fast is the one encoder?"""
    from u2video.media.demo import write_clip

    source = write_clip(folder / "src.mp4", frames, (480, 640), 25, audio=False)
    with av.open(str(source)) as container:
        decoded = [(f.to_ndarray(format="rgb24"), f.pts) for f in container.decode(video=0)]
        time_base = container.streams.video[0].time_base

    def encode(path: Path, items: list) -> None:
        with av.open(str(path), "w", format="mp4") as out:
            stream = out.add_stream("libx264", rate=25)
            stream.width, stream.height, stream.pix_fmt, stream.time_base = 640, 480, "yuv420p", time_base
            stream.codec_context.options = {"crf": "18", "preset": "medium"}  # the h264-replace preset's
            for rgb, pts in items:
                frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                frame.pts, frame.time_base = pts, time_base
                out.mux(stream.encode(frame))
            out.mux(stream.encode(None))

    began = time.perf_counter()
    encode(folder / "one.mp4", decoded)
    fps = len(decoded) / (time.perf_counter() - began)
    half = len(decoded) // 2
    encode(folder / "s0.mp4", decoded[:half])
    encode(folder / "s1.mp4", decoded[half:])
    try:
        with av.open(str(folder / "joined.mp4"), "w", format="mp4") as out:
            with av.open(str(folder / "s0.mp4")) as first:
                stream = out.add_stream_from_template(first.streams.video[0])
            for part in ("s0.mp4", "s1.mp4"):
                with av.open(str(folder / part)) as inp:
                    for packet in inp.demux(video=0):
                        if packet.size:
                            packet.stream = stream
                            out.mux(packet)
        with av.open(str(folder / "joined.mp4")) as container:
            pts = [f.pts for f in container.decode(video=0)]
        joined = f"decoded {len(pts)} frames, pts equal to the source's: {pts == [p for _, p in decoded]}"
    except (av.FFmpegError, ValueError) as e:
        joined = f"failed: {e}"
    print(f"join: two libx264 segments copied into one .mp4: {joined}; one libx264 encoder (medium, crf 18) at "
          f"640x480: {fps:.1f} frames/s", flush=True)
    return {"joined": joined, "one_encoder_fps": fps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=4)
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--segments-clip", type=Path, default=SHARED / "media" / "one-by-one-person-detection.mp4")
    parser.add_argument("--from", dest="start", type=float, default=60, help="where the excerpt starts (s)")
    parser.add_argument("--seconds", type=float, default=40)
    parser.add_argument("--warm-ups", default="0,150", help="frames a segment starts early (0: the smoothing window)")
    parser.add_argument("--crop", default="auto", choices=["auto", "off"])
    parser.add_argument("--segment-seconds", type=float, default=20)
    parser.add_argument("--skip", choices=["overhead", "segments"], action="append", default=[])
    parser.add_argument("--join-check", action="store_true", help="also the H.264 join check (3.)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    report = {"cores": len(os.sched_getaffinity(0))}
    with tempfile.TemporaryDirectory() as tmp:
        if args.join_check:
            os.mkdir(Path(tmp) / "c")
            report["join"] = join_check(Path(tmp) / "c")
        if "overhead" not in args.skip:
            os.mkdir(Path(tmp) / "a")
            report["overhead"] = overhead(Path(tmp) / "a", args.clips, args.frames)
        if "segments" not in args.skip:
            os.mkdir(Path(tmp) / "b")
            report["segments"] = segments(Path(tmp) / "b", args.segments_clip, args.start, args.seconds,
                                          [int(w) for w in args.warm_ups.split(",")], args.crop, args.segment_seconds)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
