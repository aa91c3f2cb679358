"""Where the time goes: each stage of the frame loop alone, then the whole loop.

Stages, each timed on the same clip and settings:

* decode — the source's frames to RGB arrays (PyAV, FFmpeg's threads);
* model — resize, normalise and the network (``Segmenter.predict_lowres``) on decoded frames;
* matte — smoothing, refinement and rendering (RGBA or composite) back to host arrays;
* encode — rendered frames into the output format (a temporary file, removed);
* end to end — ``pipeline.run_video``, as ``matte``/``replace`` run it.

Efficiency is end to end ÷ the slowest single stage: 1.0 means the other stages are hidden
behind the slowest one. Peak memory is sampled while the end-to-end run goes.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path

import torch

from .alpha import MatteStage
from .backgrounds import parse_background
from .compose import Compositor, to_rgba
from .config import DeviceConfig, MatteConfig, ModelConfig
from .device import cpu_threads, peak_memory_mib, reset_peak_memory, resident_mib, synchronize
from .errors import ConfigError
from .media.demo import write_clip
from .media.source import VideoSource
from .media.writers import PngSequenceSink, Sink, VideoSink
from .pipeline import Render, run_video
from .presets import video_format
from .progress import Reporter, SilentReporter
from .segmenter import Segmenter

_CACHED_FRAMES = 16  # decoded frames kept for the model/matte/encode stages (cycled)


class BenchFormat(str, Enum):
    """What the benchmark writes: an alpha format from ``matte`` or a ``replace`` composite."""

    PRORES = "prores"  # matte -> .mov ProRes 4444 with alpha
    WEBM = "webm"  # matte -> .webm VP9 with alpha
    PNG = "png"  # matte -> RGBA PNG sequence
    H264 = "h264"  # replace onto a colour -> .mp4 H.264

    @property
    def target_name(self) -> str:
        return {"prores": "out.mov", "webm": "out.webm", "png": "frames", "h264": "out.mp4"}[self.value]


@dataclass(frozen=True)
class StageTime:
    name: str
    frames: int
    seconds: float  # wall time
    cpu_seconds: float  # CPU time of the whole process (all threads) meanwhile

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("inf")


@dataclass
class BenchResult:
    clip: str
    width: int
    height: int
    frames: int
    output: str  # what the encode/end-to-end stages wrote
    model: str  # Segmenter.describe()
    batch: int
    cores: int  # CPU cores this process may use
    stages: list[StageTime] = field(default_factory=list)
    peak_host_mib: float = 0.0  # resident memory of this process during the end-to-end run
    peak_gpu_mib: float | None = None  # CUDA memory allocated by PyTorch during it; None on the CPU

    def stage(self, name: str) -> StageTime:
        return next(s for s in self.stages if s.name == name)

    @property
    def slowest(self) -> StageTime:
        return min((s for s in self.stages if s.name != "end to end"), key=lambda s: s.fps)

    @property
    def efficiency(self) -> float:
        """End-to-end throughput ÷ the slowest single stage's."""
        return self.stage("end to end").fps / self.slowest.fps

    def to_dict(self) -> dict:
        data = asdict(self)
        data["stages"] = {s.name: {"frames": s.frames, "seconds": round(s.seconds, 4), "fps": round(s.fps, 3),
                                   "ms_per_frame": round(1000 * s.seconds / max(s.frames, 1), 2),
                                   "cpu_ms_per_frame": round(1000 * s.cpu_seconds / max(s.frames, 1), 2)}
                          for s in self.stages}
        data["slowest"] = self.slowest.name
        data["efficiency"] = round(self.efficiency, 4)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def table(self) -> str:
        lines = [f"{self.clip}: {self.width}x{self.height}, {self.frames} frames -> {self.output}",
                 f"{self.model}, batch {self.batch}",
                 f"{'stage':<12} {'frames':>7} {'fps':>9} {'ms/frame':>9} {'CPU ms/frame':>13}"]
        for s in self.stages:
            per = 1000 / max(s.frames, 1)
            lines.append(f"{s.name:<12} {s.frames:>7} {s.fps:>9.2f} {s.seconds * per:>9.1f} {s.cpu_seconds * per:>13.1f}")
        gpu = f", GPU {self.peak_gpu_mib:.0f} MiB" if self.peak_gpu_mib is not None else ""
        lines.append(f"efficiency {self.efficiency:.3f} (end to end / slowest stage, {self.slowest.name}); "
                     f"peak memory: host {self.peak_host_mib:.0f} MiB{gpu}; {self.cores} CPU cores")
        return "\n".join(lines)


def bench(video: str | Path | None = None, *, output_format: BenchFormat = BenchFormat.PRORES,
          size: tuple[int, int] = (640, 480), frames: int = 60, rate: int = 30,
          model: ModelConfig = ModelConfig(), device: DeviceConfig = DeviceConfig(),
          matte_config: MatteConfig = MatteConfig(), background: str = "#00b140",
          reporter: Reporter | None = None) -> BenchResult:
    """Time each stage on ``video`` (or a generated clip of ``size`` (width, height) and
    ``frames`` frames at ``rate`` fps), then the whole loop. Nothing is written outside a
    temporary folder. ``background`` is used for ``BenchFormat.H264`` (a replace)."""
    reporter = reporter or SilentReporter()
    if frames < 1:
        raise ConfigError(f"--frames {frames} must be at least 1")
    with tempfile.TemporaryDirectory(prefix="u2video-bench-") as tmp:
        folder = Path(tmp)
        if video is None:
            width, height = size
            if width < 16 or height < 16:
                raise ConfigError(f"--size {width}x{height} is too small: give at least 16x16")
            reporter.info(f"generating a {width}x{height} H.264 clip of {frames} frames")
            clip = write_clip(folder / "clip.mp4", frames, (height, width), rate, audio=False)
        else:
            clip = Path(video)
        command = "replace" if output_format is BenchFormat.H264 else "matte"
        target = folder / output_format.target_name
        fmt = video_format(target, command, False, None)
        backdrop = parse_background(background) if command == "replace" else None
        render: Render = Compositor(backdrop) if backdrop else to_rgba
        try:
            with VideoSource(clip) as probe:
                info = probe.info
            segmenter = Segmenter.from_config(model.resolved(video=True), device, reporter)
            batch = device.batch or segmenter.pick_batch(info.width, info.height).batch
            result = BenchResult(clip.name, info.width, info.height, 0, f"{fmt.codec} {fmt.pix_fmt}",
                                 segmenter.describe(), batch, cpu_threads())

            def new_sink(name: str) -> Sink:
                path = folder / name / output_format.target_name
                path.parent.mkdir()
                if fmt.sequence:
                    return PngSequenceSink(path)
                return VideoSink(path, fmt, info.width, info.height, info.rate, info.time_base)

            cached, pts, decode = _decode(clip)
            result.frames = decode.frames
            result.stages.append(decode)
            reporter.info(f"decode: {decode.fps:.1f} fps")
            model_time, preds = _model(segmenter, cached, decode.frames, batch)
            result.stages.append(model_time)
            reporter.info(f"model: {model_time.fps:.2f} fps")
            matte_time, rendered = _matte(cached, preds, matte_config, render, decode.frames, batch,
                                          segmenter.device)
            result.stages.append(matte_time)
            reporter.info(f"matte: {matte_time.fps:.1f} fps")
            encode = _encode(new_sink("encode"), rendered, pts, decode.frames)
            result.stages.append(encode)
            reporter.info(f"encode: {encode.fps:.1f} fps")
            del cached, preds, rendered

            sink = new_sink("end-to-end")
            reset_peak_memory(segmenter.device)
            with VideoSource(clip) as source, _PeakRss() as rss:
                clock = _Clock()
                stats = run_video(source, segmenter, MatteStage(matte_config), render, sink, batch, reporter)
                synchronize(segmenter.device)
                result.stages.append(clock.stage("end to end", stats.frames))
            result.peak_host_mib = rss.peak_mib
            result.peak_gpu_mib = peak_memory_mib(segmenter.device)
        finally:
            if backdrop is not None:
                backdrop.close()
    return result


def _decode(clip: Path) -> tuple[list[torch.Tensor], list, StageTime]:
    """Decode every frame; keep the first few (as [H,W,3] uint8 tensors) and every pts."""
    cached: list[torch.Tensor] = []
    pts: list = []
    with VideoSource(clip) as source:
        clock = _Clock()
        for frame in source.frames():
            if len(cached) < _CACHED_FRAMES:
                cached.append(torch.from_numpy(frame.rgb))
            pts.append(frame.pts)
        return cached, pts, clock.stage("decode", len(pts))


def _batches(cached: list[torch.Tensor], total: int, batch: int):
    """[B,H,W,3] uint8 batches cycling over ``cached`` until ``total`` frames were given."""
    done = 0
    while done < total:
        n = min(batch, total - done)
        yield torch.stack([cached[(done + i) % len(cached)] for i in range(n)])
        done += n


def _model(segmenter: Segmenter, cached: list[torch.Tensor], total: int, batch: int) -> tuple[StageTime, list[torch.Tensor]]:
    """The network as the frame loop runs it (``predict_batches``, several batches in flight
    where the device has workers for them), on the cached frames cycled."""
    warm = [(torch.stack(cached[:1] * batch), None)] * segmenter.workers
    for _ in segmenter.predict_batches(warm):  # first calls: session/cuDNN set-up, not throughput
        pass
    synchronize(segmenter.device)
    preds: list[torch.Tensor] = []
    clock = _Clock()
    for _, _, pred in segmenter.predict_batches((frames, None) for frames in _batches(cached, total, batch)):
        if len(preds) * batch < _CACHED_FRAMES:
            preds.append(pred)
    synchronize(segmenter.device)
    return clock.stage("model", total), preds


def _matte(cached: list[torch.Tensor], preds: list[torch.Tensor], config: MatteConfig, render: Render,
           total: int, batch: int, device: torch.device) -> tuple[StageTime, list]:
    """Smoothing, refinement and rendering, with the cached predictions cycled."""
    stage = MatteStage(config)
    flat = torch.cat(preds)  # [N,1,S,S]
    rendered: list = []
    done = 0
    clock = _Clock()
    for frames in _batches(cached, total, batch):
        index = [(done + i) % flat.shape[0] for i in range(frames.shape[0])]
        out_frames, alpha, keys = stage.push(frames, flat[index], list(range(done, done + len(index))))
        done += len(index)
        if keys:
            pixels = render(out_frames, alpha).cpu().numpy()
            rendered += list(pixels[: max(0, _CACHED_FRAMES - len(rendered))])
    out_frames, alpha, keys = stage.flush()
    if keys:  # a clip shorter than the smoothing window has all its frames here
        pixels = render(out_frames, alpha).cpu().numpy()
        rendered += list(pixels[: max(0, _CACHED_FRAMES - len(rendered))])
    synchronize(device)
    return clock.stage("matte", total), rendered


def _encode(sink: Sink, rendered: list, pts: list, total: int) -> StageTime:
    clock = _Clock()
    for i in range(total):
        sink.write(rendered[i % len(rendered)], pts[i])
    sink.finish()
    return clock.stage("encode", total)


class _Clock:
    """Wall and process CPU time since it was made."""

    def __init__(self) -> None:
        self._wall, self._cpu = time.perf_counter(), time.process_time()

    def stage(self, name: str, frames: int) -> StageTime:
        return StageTime(name, frames, time.perf_counter() - self._wall, time.process_time() - self._cpu)


class _PeakRss:
    """Samples this process's resident memory every 20 ms while the block runs (Linux's
    /proc; elsewhere the process's lifetime peak from getrusage)."""

    def __enter__(self) -> "_PeakRss":
        self.peak_mib = resident_mib()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak_mib = max(self.peak_mib, resident_mib())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mib = max(self.peak_mib, resident_mib())
