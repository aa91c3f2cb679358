"""Everything to measure on a lent GPU, in one run: one JSON file and a table.

    U2NET_HOME=<models> python benchmarks/gpu.py --out benchmarks/results/gpu-h200.json
    python benchmarks/gpu.py --dry-run --out /tmp/gpu-dry.json     # every part, on the CPU, tiny

(a) ``pytest -m gpu``; (b) model-only frames/s at 320² for u2netp and u2net, fp32/fp16/bf16,
batch 1…256, with peak GPU memory, and fp16 replayed from CUDA graphs (random weights of the
real architecture where the store has no file: speed only); (c) end to end on generated 1080p and 4K clips: ``matte`` -> ProRes 4444
and WebM, ``replace`` -> H.264, each stage's frames/s, end-to-end frames/s, efficiency (end to
end / slowest stage), GPU utilisation sampled by nvidia-smi; (d) live: 640x480 and 1080p
sources at 60 fps played in real time (processed frames/s, dropped, latency p50/p95); (e) GPU
against CPU mattes (fp32 and fp16): mean and max |Δα|, IoU at 0.5, on ../shared's official
test images where present, else on frames of the demo clip; (f) decoding the end-to-end clips:
software against NVDEC (``benchmarks/decode.py``, frames on the host or kept on the GPU), to
tell whether an NVDEC path is worth building. ``--dry-run`` runs every part on
the CPU at tiny sizes (a test runs it, so this script does not rot).
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import torch

import u2video
from u2video.api import LIVE_MATTE
from u2video.benchmark import BenchFormat, bench
from u2video.config import DeviceConfig, DeviceKind, ModelConfig, Normalization, Precision, Runtime
from u2video.device import pick_dtype, prepare_network
from u2video.media.demo import render_still, write_clip
from u2video.model.registry import MODELS
from u2video.model.u2net import U2NET, U2NETP, fold_batchnorm
from u2video.model.store import store_dir
from u2video.model.weights import load_network
from u2video.segmenter import Segmenter
from webcam import play_live  # benchmarks/webcam.py: a clip played as the webcam command plays it

ROOT = Path(__file__).resolve().parents[1]
REFERENCE_IMAGES = ROOT.parent / "shared" / "reference" / "u2net_official" / "images"


class Plan:
    """Sizes and counts for a real run or a dry run."""

    def __init__(self, dry: bool):
        self.dry = dry
        self.device = torch.device("cpu" if dry else "cuda")
        self.kind = DeviceKind.CPU if dry else DeviceKind.CUDA
        self.size = 64 if dry else 320
        self.batches = [1, 2] if dry else [1, 2, 4, 8, 16, 32, 64, 128, 256]
        self.precisions = [Precision.FP32, Precision.BF16] if dry else [Precision.FP32, Precision.FP16, Precision.BF16]
        self.seconds_per_point = 0.2 if dry else 1.0
        # (label, (height, width), frames): the end-to-end clips
        self.clips = [("tiny", (72, 128), 6)] if dry else [("1080p", (1080, 1920), 120), ("4K", (2160, 3840), 48)]
        self.live = [("tiny", (48, 64), 1.0)] if dry else [("640x480", (480, 640), 8.0), ("1080p", (1080, 1920), 8.0)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="the JSON file to write")
    parser.add_argument("--dry-run", action="store_true", help="every part on the CPU at tiny sizes")
    parser.add_argument("--parts", default="a,b,c,d,e,f", help="which parts to run, e.g. b,e")
    args = parser.parse_args()
    if not args.dry_run and not torch.cuda.is_available():
        print("gpu: PyTorch sees no CUDA GPU here: run with --dry-run to try the script on the CPU", file=sys.stderr)
        return 2
    plan = Plan(args.dry_run)
    parts = set(args.parts.split(","))
    result: dict = {"machine": machine(plan), "dry_run": plan.dry, "parts": {}}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="u2video-gpu-") as tmp:
        work = Path(tmp)
        steps = [("a", "tests", lambda: gpu_tests(plan)), ("b", "model", lambda: model_only(plan)),
                 ("c", "end_to_end", lambda: end_to_end(plan, work)), ("d", "live", lambda: live(plan, work)),
                 ("e", "parity", lambda: parity(plan, work)), ("f", "decode", lambda: decode(plan, work))]
        for key, name, step in steps:
            if key not in parts:
                continue
            t0 = time.perf_counter()
            try:
                result["parts"][name] = step()
            except Exception as e:  # one part failing must not lose the others' figures
                result["parts"][name] = {"error": f"{type(e).__name__}: {e}"}
            print(f"gpu: part {key} ({name}) took {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    result["seconds"] = round(time.perf_counter() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(table(result))
    return 0


def machine(plan: Plan) -> dict:
    info = {"python": platform.python_version(), "torch": torch.__version__, "u2video": u2video.__version__,
            "device": str(plan.device), "commit": git_commit()}
    if plan.device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(plan.device)
        info["cuda"] = torch.version.cuda
    return info


def git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


# --- (a) the GPU tests ----------------------------------------------------------------------

def gpu_tests(plan: Plan) -> dict:
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider", "tests"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    lines = done.stdout.strip().splitlines()
    failures = [line for line in lines if line.startswith(("FAILED", "ERROR"))]
    return {"exit_code": done.returncode, "summary": lines[-1] if lines else "", "failures": failures}


# --- (b) the network alone ------------------------------------------------------------------

def network(name: str) -> tuple[torch.nn.Module, str]:
    """The named network with its weights from the store, else randomly initialised (speed only)."""
    if (store_dir() / MODELS[name].filename).is_file():
        net, _ = load_network(name)
        return net, "store"
    torch.manual_seed(0)
    return fold_batchnorm((U2NETP if name == "u2netp" else U2NET)().eval()), "random (speed only)"


def u2netp_model(work: Path, size: int) -> ModelConfig:
    """u2netp from the store, else a checkpoint of random weights (so nothing is downloaded)."""
    if (store_dir() / MODELS["u2netp"].filename).is_file():
        return ModelConfig("u2netp", size, Normalization.FIXED)
    path = work / "u2netp-random.pth"
    if not path.exists():
        torch.manual_seed(0)
        torch.save(U2NETP().eval().state_dict(), path)
    return ModelConfig(str(path), size, Normalization.FIXED)


def model_only(plan: Plan) -> dict:
    out = {}
    for name in ("u2netp", "u2net"):
        net, weights = network(name)
        rows = []
        # eager in every precision; then fp16 replayed from CUDA graphs (device.CudaGraphNetwork),
        # to choose between them: the default stays eager until this says otherwise
        passes = [(p, False) for p in plan.precisions]
        passes += [(Precision.FP16, True)] if plan.device.type == "cuda" else []
        for precision, graphs in passes:
            dtype = pick_dtype(precision, plan.device)
            runner = prepare_network(net, plan.device, dtype, Runtime.TORCH, cuda_graphs=graphs)
            for batch in plan.batches if not graphs else [b for b in plan.batches if b <= 64]:
                row = {"precision": precision.value + (" + CUDA graphs" if graphs else ""), "batch": batch}
                try:
                    row.update(time_network(runner, plan, batch))
                except torch.cuda.OutOfMemoryError:
                    row["error"] = "out of memory"
                    rows.append(row)
                    break
                rows.append(row)
                if row["seconds_per_call"] > 2.0:  # larger batches would only take longer
                    break
            if plan.device.type == "cuda":
                torch.cuda.empty_cache()
        best = max((r for r in rows if "fps" in r), key=lambda r: r["fps"], default=None)
        out[name] = {"weights": weights, "size": plan.size, "rows": rows, "best": best}
    return out


@torch.inference_mode()
def time_network(runner, plan: Plan, batch: int) -> dict:
    x = torch.rand(batch, 3, plan.size, plan.size, device=plan.device)
    for _ in range(3):  # warm-up: cuDNN picks its algorithms, the allocator fills
        runner(x)
    sync(plan)
    if plan.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(plan.device)
    calls, start = 0, time.perf_counter()
    while calls < 3 or time.perf_counter() - start < plan.seconds_per_point:
        runner(x)
        calls += 1
        if calls % 8 == 0:
            sync(plan)
    sync(plan)
    seconds = time.perf_counter() - start
    row = {"fps": round(batch * calls / seconds, 1), "seconds_per_call": round(seconds / calls, 5)}
    if plan.device.type == "cuda":
        row["peak_gpu_mib"] = round(torch.cuda.max_memory_allocated(plan.device) / 2**20, 1)
    return row


def sync(plan: Plan) -> None:
    if plan.device.type == "cuda":
        torch.cuda.synchronize(plan.device)


# --- (c) end to end -------------------------------------------------------------------------

class Utilisation:
    """GPU utilisation (%) sampled by nvidia-smi every 0.2 s while in use; None without it."""

    def __init__(self):
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._smi = shutil.which("nvidia-smi")

    def __enter__(self) -> "Utilisation":
        if self._smi:
            self._thread.start()
        return self

    def __exit__(self, *_) -> None:
        self._stop.set()
        if self._smi:
            self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            done = subprocess.run([self._smi, "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
                                  capture_output=True, text=True)
            try:
                self.samples.append(float(done.stdout.split()[0]))
            except (ValueError, IndexError):
                pass

    def summary(self) -> dict | None:
        if not self.samples:
            return None
        return {"mean": round(float(np.mean(self.samples)), 1), "p95": round(float(np.percentile(self.samples, 95)), 1)}


def clip_file(work: Path, label: str, size: tuple[int, int], frames: int) -> Path:
    """The generated end-to-end clip (H.264 with sound), made once for parts c and f."""
    path = work / f"{label}.mp4"
    return path if path.exists() else write_clip(path, frames, size, 30, audio=True)


def end_to_end(plan: Plan, work: Path) -> list[dict]:
    rows = []
    model = u2netp_model(work, plan.size)
    for label, size, frames in plan.clips:
        clip = clip_file(work, label, size, frames)
        for fmt in (BenchFormat.PRORES, BenchFormat.WEBM, BenchFormat.H264):
            row = {"clip": label, "frames": frames, "format": fmt.value}
            try:
                with Utilisation() as use:
                    found = bench(clip, output_format=fmt, model=model,
                                  device=DeviceConfig(plan.kind, Precision.AUTO, batch=1 if plan.dry else None))  # None: probed
                data = found.to_dict()
                row.update(batch=data["batch"], stages={k: v["fps"] for k, v in data["stages"].items()}, slowest=data["slowest"],
                           efficiency=data["efficiency"], peak_gpu_mib=data.get("peak_gpu_mib"),
                           gpu_utilisation=use.summary(), model=found.model)
            except Exception as e:
                row["error"] = f"{type(e).__name__}: {e}"
            rows.append(row)
    return rows


# --- (f) decoding: software against NVDEC ---------------------------------------------------

def decode(plan: Plan, work: Path) -> list[dict]:
    """benchmarks/decode.py on each end-to-end clip, in a process of its own (FFmpeg's CUDA
    decoder fails where PyTorch made the GPU's context first)."""
    rows = []
    for label, size, frames in plan.clips:
        clip = clip_file(work, label, size, frames)
        done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "decode.py"), str(clip), "--json"],
                              capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            rows.append({"clip": label, "error": done.stderr.strip()[-500:]})
            continue
        rows.append({"clip": label, "ways": json.loads(done.stdout)})
    return rows


# --- (d) live -------------------------------------------------------------------------------

def live(plan: Plan, work: Path) -> list[dict]:
    """As ``u2video webcam`` runs: the newest frame, the past-only matte step, a blurred background."""
    rows = []
    segmenter = Segmenter.from_config(u2netp_model(work, plan.size), DeviceConfig(plan.kind, Precision.AUTO), workers=1)
    for label, size, seconds in plan.live:
        clip = write_clip(work / f"live-{label}.mp4", int(60 * (seconds + 1)), size, 60, audio=False)
        stats = play_live(clip, segmenter, LIVE_MATTE, duration=seconds)
        rows.append({"source": f"{label} at 60 fps", "input_size": plan.size, "captured": stats.captured,
                     "processed": stats.processed, "dropped": stats.dropped,
                     "processed_fps": round(stats.processed_fps, 2), "latency_ms_p50": round(stats.latency_ms(50), 2),
                     "latency_ms_p95": round(stats.latency_ms(95), 2)})
        clip.unlink()
    return rows


# --- (e) GPU against CPU --------------------------------------------------------------------

def parity(plan: Plan, work: Path) -> dict:
    """Full-resolution mattes from the device (fp32, fp16) against the CPU's fp32 (PyTorch)."""
    if REFERENCE_IMAGES.is_dir():
        images = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in sorted(REFERENCE_IMAGES.iterdir())
                  if p.suffix.lower() in (".jpg", ".png")]
        where = "official U²-Net test images"
    else:
        images = [np.roll(render_still(480, 640), 40 * i, axis=1) for i in range(8)]
        where = "frames of the demo still"
    model = u2netp_model(work, plan.size)
    cpu = Segmenter.from_config(model, DeviceConfig(DeviceKind.CPU, Precision.FP32, runtime=Runtime.TORCH))
    out = {"on": where, "images": len(images), "weights": "store" if (store_dir() / MODELS["u2netp"].filename).is_file()
           else "random (the network's weights are missing: differences of a random network)"}
    for precision in (Precision.FP32, Precision.FP16 if not plan.dry else Precision.BF16):
        device = Segmenter.from_config(model, DeviceConfig(plan.kind, precision, runtime=Runtime.TORCH))
        means, maxes, ious = [], [], []
        for rgb in images:
            frames = torch.from_numpy(np.ascontiguousarray(rgb))[None]
            a, b = device(frames).float().cpu(), cpu(frames)
            diff = (a - b).abs()
            means.append(float(diff.mean()))
            maxes.append(float(diff.max()))
            inter, union = float(((a > 0.5) & (b > 0.5)).sum()), float(((a > 0.5) | (b > 0.5)).sum())
            ious.append(inter / union if union else 1.0)
        out[precision.value] = {"mean_abs_diff": round(float(np.mean(means)), 5),
                                "mean_abs_diff_x255": round(255 * float(np.mean(means)), 3),
                                "max_abs_diff": round(max(maxes), 4), "min_iou": round(min(ious), 5)}
    return out


# --- the table ------------------------------------------------------------------------------

def table(result: dict) -> str:
    parts, lines = result["parts"], [f"u2video GPU benchmark on {result['machine'].get('gpu', result['machine']['device'])}"
                                     f" (commit {str(result['machine'].get('commit'))[:10]}), {result['seconds']} s"
                                     + (" — DRY RUN on the CPU, not a measurement" if result["dry_run"] else "")]
    for name, part in parts.items():
        if isinstance(part, dict) and "error" in part:
            lines.append(f"{name}: ERROR {part['error']}")
    if "tests" in parts and "summary" in parts["tests"]:
        lines.append(f"(a) pytest -m gpu: {parts['tests']['summary']} (exit {parts['tests']['exit_code']})")
    if "model" in parts and "error" not in parts["model"]:
        lines += ["", "(b) model only", "| network | weights | precision | batch | frames/s | GPU MiB |", "|---|---|---|---|---|---|"]
        for name, data in parts["model"].items():
            for r in data["rows"]:
                lines.append(f"| {name} | {data['weights']} | {r['precision']} | {r['batch']} | "
                             f"{r.get('fps', r.get('error'))} | {r.get('peak_gpu_mib', '')} |")
    if "end_to_end" in parts and isinstance(parts["end_to_end"], list):
        lines += ["", "(c) end to end", "| clip | output | stages (frames/s) | slowest | efficiency | GPU use % |",
                  "|---|---|---|---|---|---|"]
        for r in parts["end_to_end"]:
            if "error" in r:
                lines.append(f"| {r['clip']} | {r['format']} | ERROR {r['error']} | | | |")
                continue
            stages = ", ".join(f"{k} {v:.1f}" for k, v in r["stages"].items())
            use = r["gpu_utilisation"]["mean"] if r["gpu_utilisation"] else "n/a"
            lines.append(f"| {r['clip']} | {r['format']} | {stages} | {r['slowest']} | {r['efficiency']} | {use} |")
    if "live" in parts and isinstance(parts["live"], list):
        lines += ["", "(d) live", "| source | input | processed fps | captured / processed / dropped | p50 ms | p95 ms |",
                  "|---|---|---|---|---|---|"]
        for r in parts["live"]:
            lines.append(f"| {r['source']} | {r['input_size']}² | {r['processed_fps']} | {r['captured']} / "
                         f"{r['processed']} / {r['dropped']} | {r['latency_ms_p50']} | {r['latency_ms_p95']} |")
    if "decode" in parts and isinstance(parts["decode"], list):
        lines += ["", "(f) decode only (H.264), frames/s", "| clip | software | NVDEC, frames on the host | NVDEC, frames on the GPU |",
                  "|---|---|---|---|"]
        for r in parts["decode"]:
            ways = [w.get("fps", w.get("error")) for w in r.get("ways", [])] or [r.get("error")] * 3
            lines.append(f"| {r['clip']} | " + " | ".join(str(w) for w in ways) + " |")
    if "parity" in parts and "error" not in parts["parity"]:
        p = parts["parity"]
        lines += ["", f"(e) device against CPU fp32 mattes, {p['images']} {p['on']}, weights {p['weights']}"]
        for key in ("fp32", "fp16", "bf16"):
            if key in p:
                lines.append(f"{key}: mean |Δα| {p[key]['mean_abs_diff_x255']}/255, max {p[key]['max_abs_diff']}, "
                             f"min IoU {p[key]['min_iou']}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
