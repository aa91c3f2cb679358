"""Side by side: whole ``u2video matte`` processes with each CPU runtime and precision against the
per-frame loop people write around rembg's model (``peer_loop.py``), on the same clip.

Each is a separate process timed from start to exit (so start-up counts, as it does for a
user), with its peak resident memory, in alternating rounds (this machine's speed drifts
between minutes; alternating spreads that over every row). Frames/s are min/median/max over
the rounds, and each row's median is divided by the peer loop's.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .device import installed
from .config import Runtime
from .errors import ConfigError, ModelError, U2VideoError
from .media.demo import write_clip
from .model.quantize import load_int8
from .model.weights import resolve
from .progress import Reporter, SilentReporter

PEER = "peer loop (rembg's u2netp.onnx, onnxruntime, a frame at a time)"


@dataclass(frozen=True)
class CompareRow:
    name: str
    fps: list[float]  # one per round, sorted
    median_fps: float
    vs_peer: float  # median frames/s over the peer loop's median
    peak_mib: float  # the largest peak resident memory over the rounds


@dataclass(frozen=True)
class CompareResult:
    clip: str
    frames: int
    rounds: int
    rows: list[CompareRow]
    skipped: dict[str, str]  # variant -> why it did not run

    def table(self) -> str:
        lines = [f"whole processes on {self.clip} ({self.frames} frames), {self.rounds} alternating rounds:",
                 "| run | frames/s min / median / max | ÷ peer loop (medians) | peak memory MiB |",
                 "|---|---|---|---|"]
        for row in self.rows:
            lines.append(f"| {row.name} | {row.fps[0]:.2f} / {row.median_fps:.2f} / {row.fps[-1]:.2f} | "
                         f"{row.vs_peer:.2f} | {row.peak_mib:.0f} |")
        lines += [f"(not run: {name}: {why})" for name, why in self.skipped.items()]
        return "\n".join(lines)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def variants(model: str, model_flags: list[str]) -> tuple[dict[str, list[str]], dict[str, str]]:
    """The ``u2video matte`` command lines to compare for ``model`` ("CLIP" and "OUT" stand for
    the paths), and the variants that can't run here with the reason: each installed CPU
    runtime in fp32, and INT8 where the store holds ``model``'s INT8 network."""
    base = [sys.executable, "-m", "u2video", "matte", "CLIP", "-o", "OUT", "--overwrite", "--model", model, *model_flags]
    runs, skipped = {}, {}
    for runtime in (Runtime.OPENVINO, Runtime.ONNXRUNTIME):
        name = f"u2video matte, {runtime.value} fp32"
        if installed(runtime):
            runs[name] = [*base, "--device", "cpu", "--runtime", runtime.value]
        else:
            skipped[name] = f"{runtime.value} is not installed"
    try:
        load_int8(model)
        runs["u2video matte, openvino int8"] = [*base, "--device", "cpu", "--precision", "int8"]
    except ModelError as e:
        skipped["u2video matte, openvino int8"] = str(e)
    return runs, skipped


def compare(video: str | Path | None = None, *, size: tuple[int, int] = (640, 480), frames: int = 60,
            rounds: int = 3, model: str = "u2netp", model_flags: list[str] | None = None, only: str | None = None,
            reporter: Reporter | None = None) -> CompareResult:
    """Run each of ``variants`` and the peer loop as whole processes, ``rounds`` times in turn,
    on ``video`` (or a generated clip of ``size`` (width, height) and ``frames``), writing
    ProRes 4444 to a temporary folder. ``model_flags`` (e.g. ["--input-size", "64"]) go to
    every u2video run; the peer loop always runs rembg's recipe at 320². ``only``: run just the
    u2video variants whose name has it (e.g. "int8"), beside the peer loop."""
    reporter = reporter or SilentReporter()
    if rounds < 1:
        raise ConfigError(f"--rounds {rounds} is too few: give 1 or more")
    try:
        peer_model = resolve("u2netp", reporter).path  # the peer's file: rembg's, from the store
    except ModelError as e:
        raise ModelError(f"the peer loop runs rembg's u2netp.onnx: {e}") from None
    runs, skipped = variants(model, model_flags or [])
    runs = {row: command for row, command in runs.items() if not only or only in row}
    runs[PEER] = [sys.executable, str(Path(__file__).with_name("peer_loop.py")), "CLIP", "OUT", "--model", str(peer_model)]
    with tempfile.TemporaryDirectory(prefix="u2video-compare-") as tmp:
        if video is None:
            clip = write_clip(Path(tmp) / "clip.mp4", frames, (size[1], size[0]), 30, audio=False)
            name = f"a generated {size[0]}x{size[1]} clip"
        else:
            clip, name = Path(video), str(video)
            if not clip.is_file():
                raise ConfigError(f"{clip} is not a file: give a video clip to compare on")
        count = _frame_count(clip)
        times: dict[str, list[tuple[float, float]]] = {row: [] for row in runs}
        bar = reporter.bar("runs", rounds * len(runs), "run")
        try:
            for _ in range(rounds):
                for row, command in runs.items():
                    out = Path(tmp) / "out.mov"
                    out.unlink(missing_ok=True)
                    times[row].append(_timed([str(clip) if p == "CLIP" else str(out) if p == "OUT" else p
                                              for p in command]))
                    bar.update(1)
        finally:
            bar.close()
    peer = statistics.median(count / seconds for seconds, _ in times[PEER])
    rows = []
    for row, done in times.items():
        fps = sorted(count / seconds for seconds, _ in done)
        rows.append(CompareRow(row, fps, statistics.median(fps), statistics.median(fps) / peer,
                               max(mib for _, mib in done)))
    return CompareResult(name, count, rounds, rows, skipped)


def _frame_count(clip: Path) -> int:
    from .media.source import VideoSource

    with VideoSource(clip) as source:
        return sum(1 for _ in source.frames())


def _timed(command: list[str]) -> tuple[float, float]:
    """Run ``command``; (wall seconds, peak resident MiB) of that process. A run that fails
    raises ``U2VideoError`` with the end of what it printed."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        last = stderr.strip().splitlines()[-1] if stderr.strip() else f"exit status {proc.returncode}"
        raise U2VideoError(f"a compared run failed ({' '.join(command[1:4])}…): {last}")
    return seconds, usage.ru_maxrss / 1024
