"""u2video against the model alone and against a naive per-frame loop, in one run.

On a generated clip (the demo clip: a ball rolling across a table, H.264, default 640x480,
30 fps, 60 frames) it measures, with u2netp at 320² and the threads this process may use:

0. whole processes, in ``--rounds`` alternating rounds: ``u2video matte clip -o out.mov`` with
   each CPU runtime (and ``--precision int8`` where the store has the INT8 network), and ``u2video/peer_loop.py`` (the per-frame loop around rembg's file
   that people write, no u2video code), each timed from start to exit with its peak memory;
   frames/s min/median/max and each one's median over the peer loop's;

1. model only, in three alternating rounds of 20 frames: onnxruntime on rembg's u2netp.onnx
   (one session using every core, as rembg makes it) on a [1,3,320,320] input, and u2video's
   model stage (resize, normalise, network; a frame per core in flight) on decoded frames;
2. ``u2video bench`` for per-frame output (``--smooth 0 --no-refine``) and for the defaults:
   decode, model, matte, encode and end to end, and the efficiency;
3. a naive loop, the way rembg is used on video: decode one frame -> the same network (one
   onnxruntime session on every core) -> bilinear upsampling -> RGBA -> encode, one frame at a
   time on one thread, to the same format (ProRes 4444 .mov).

Run:  U2NET_HOME=/path/to/models python benchmarks/speed.py [--size 640x480] [--frames 60] [--rounds 3]
      [--whole-process-only] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import torch

from u2video.benchmark import BenchFormat, bench
from u2video.compare import compare
from u2video.compose import to_rgba
from u2video.config import DeviceConfig, MatteConfig, ModelConfig, Normalization, Runtime
from u2video.device import cpu_threads
from u2video.media.demo import write_clip
from u2video.model.store import store_dir
from u2video.model.weights import resolve
from u2video.presets import load_preset
from u2video.terminal import TerminalReporter
from u2video.segmenter import Segmenter


def rembg_onnxruntime(frames: int) -> float:
    """Frames/s of onnxruntime on rembg's u2netp.onnx, one session on every core, on a
    [1,3,320,320] input."""
    import onnxruntime as ort

    path = resolve("u2netp").path
    options = ort.SessionOptions()
    options.intra_op_num_threads = cpu_threads()
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    x = np.random.default_rng(0).random((1, 3, 320, 320), dtype=np.float32)
    session.run(None, {name: x})
    start = time.perf_counter()
    for _ in range(frames):
        session.run(None, {name: x})
    return frames / (time.perf_counter() - start)


def u2video_model(clip: Path, frames: int) -> float:
    """Frames/s of u2video's model stage as the frame loop runs it (``predict_batches``: resize,
    normalise, the network; a batch per core in flight) on the clip's first frames."""
    segmenter = Segmenter.from_config(ModelConfig(normalization=Normalization.FIXED), DeviceConfig())
    with av.open(str(clip)) as source:
        decoded = [torch.from_numpy(f.to_ndarray(format="rgb24"))[None] for _, f in zip(range(8), source.decode(video=0))]
    for _ in segmenter.predict_batches((decoded[0], None) for _ in range(segmenter.workers)):
        pass  # set-up
    start = time.perf_counter()
    for _ in segmenter.predict_batches((decoded[i % len(decoded)], None) for i in range(frames)):
        pass
    return frames / (time.perf_counter() - start)


def naive_loop(clip: Path, target: Path) -> tuple[int, float]:
    """Decode one frame -> network -> bilinear upsampling -> RGBA -> encode, one at a time."""
    fmt = load_preset("prores4444").format
    # onnxruntime, one session on every core: the peer's runtime, whatever u2video's default is
    segmenter = Segmenter.from_config(ModelConfig(normalization=Normalization.FIXED),
                                      DeviceConfig(runtime=Runtime.ONNXRUNTIME), workers=1)
    count = 0
    with av.open(str(clip)) as source, av.open(str(target), "w") as out:
        video = source.streams.video[0]
        stream = out.add_stream(fmt.codec, rate=video.average_rate)
        stream.width, stream.height, stream.pix_fmt = video.width, video.height, fmt.pix_fmt
        stream.options = dict(fmt.codec_options)
        segmenter(torch.zeros(1, video.height, video.width, 3, dtype=torch.uint8))  # set-up, not throughput
        start = time.perf_counter()
        for frame in source.decode(video):
            rgb = torch.from_numpy(frame.to_ndarray(format="rgb24"))[None]
            rgba = to_rgba(rgb, segmenter(rgb))[0].numpy()
            encoded = av.VideoFrame.from_ndarray(rgba, format="rgba")
            encoded.pts = frame.pts
            out.mux(stream.encode(encoded))
            count += 1
        out.mux(stream.encode(None))
    return count, count / (time.perf_counter() - start)


def whole_process(clip: Path, rounds: int, only: str | None = None) -> dict:
    """Alternating rounds of u2video (each CPU runtime and INT8) and the peer loop, whole
    processes: ``u2video bench --compare`` (``u2video.compare``)."""
    result = compare(clip, rounds=rounds, only=only, reporter=TerminalReporter())
    print("\n" + result.table())
    return {row.name: {"fps": row.fps, "median_fps": row.median_fps, "vs_peer": row.vs_peer, "peak_mib": row.peak_mib}
            for row in result.rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="640x480")
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of the whole-process runs")
    parser.add_argument("--whole-process-only", action="store_true", help="only part 0")
    parser.add_argument("--only", help="part 0: only the u2video runs whose name has this in it (e.g. int8), "
                        "and the peer loop")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    print(f"store {store_dir()}, {cpu_threads()} threads, torch {torch.__version__}, PyAV {av.__version__}")

    figures: dict = {"size": args.size, "frames": args.frames, "threads": cpu_threads()}
    with tempfile.TemporaryDirectory() as tmp:
        clip = write_clip(Path(tmp) / "clip.mp4", args.frames, (height, width), 30, audio=False)
        figures["whole_process"] = whole_process(clip, args.rounds, args.only)
        if args.whole_process_only:
            if args.json:
                args.json.write_text(json.dumps(figures, indent=2))
            return
        # model only, alternating in rounds so that both see the same machine (its speed drifts)
        rounds = [(rembg_onnxruntime(20), u2video_model(clip, 20)) for _ in range(3)]
        figures["model_only_rounds"] = [{"rembg_onnxruntime_fps": a, "u2video_fps": b} for a, b in rounds]
        for i, (a, b) in enumerate(rounds, 1):
            print(f"model only, round {i}: onnxruntime on rembg's u2netp.onnx {a:.2f} fps, u2video {b:.2f} fps "
                  f"({b / a:.3f}x)")
        figures["rembg_onnxruntime_fps"] = float(np.median([a for a, _ in rounds]))
        figures["u2video_model_fps"] = float(np.median([b for _, b in rounds]))
        for label, config in (("per-frame", MatteConfig(smooth=0, refine=False)), ("defaults", MatteConfig())):
            result = bench(clip, output_format=BenchFormat.PRORES, matte_config=config)
            figures[label] = result.to_dict()
            print(f"\nu2video, {label}:\n{result.table()}")
        frames, fps = naive_loop(clip, Path(tmp) / "naive.mov")
        figures["naive_fps"] = fps
        print(f"\nnaive loop (decode one -> network -> bilinear -> encode), {frames} frames: {fps:.2f} fps")

    print(f"\nmodel only (medians of the rounds), u2video / onnxruntime on rembg's file: "
          f"{figures['u2video_model_fps'] / figures['rembg_onnxruntime_fps']:.3f}")
    for label in ("per-frame", "defaults"):
        model = figures[label]["stages"]["model"]["fps"]  # measured in the same bench run
        e2e = figures[label]["stages"]["end to end"]["fps"]
        print(f"{label}: end to end {e2e:.2f} fps = {e2e / model:.3f} x model only, "
              f"{e2e / figures['naive_fps']:.3f} x the naive loop")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
