"""Device choice and what runs the network there; with ``streams.py`` (how batches travel to
the device and back) the only places that know about devices.

CPU: OpenVINO runs rembg's ONNX file as it is, or the network (BatchNorm folded) exported to
ONNX in memory where the weights came otherwise (1.2x
onnxruntime's frames/s, which measured 1.2x PyTorch eager's, on 2 cores, in less memory), or
by onnxruntime where OpenVINO is not installed or can't compile it or with --runtime
onnxruntime, or as the INT8 network ``u2video models quantize`` made with --precision int8;
PyTorch is the last fallback. CUDA: PyTorch, channels_last, fp16 (default), fp32 or bf16. Either way
the caller hands over a normalised [B,3,S,S] tensor and gets a [B,1,S,S] f32 tensor back on
the same device, so no other stage cares which it was.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import importlib
import io
import os
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn

from .config import DeviceKind, Precision, Runtime
from .errors import DeviceError
from .model.weights import load_onnx


def pick_device(kind: DeviceKind) -> torch.device:
    """AUTO -> CUDA if PyTorch sees a GPU, else CPU. CUDA without a GPU raises DeviceError."""
    has_cuda = torch.cuda.is_available()
    if kind is DeviceKind.CUDA and not has_cuda:
        raise DeviceError("--device cuda was asked for but PyTorch sees no CUDA GPU: install a CUDA "
                          "build of PyTorch (pytorch.org/get-started) or use --device cpu")
    if kind is DeviceKind.CPU or not has_cuda:
        return torch.device("cpu")
    return torch.device("cuda")


def pick_dtype(precision: Precision, device: torch.device) -> torch.dtype:
    """The dtype of the network's input and output: AUTO is fp16 on CUDA, fp32 elsewhere. INT8
    (CPU only) takes and gives fp32: its quantisation is inside the OpenVINO network."""
    if precision is Precision.INT8:
        if device.type != "cpu":
            raise DeviceError("--precision int8 runs on the CPU only: use --device cpu, or --precision fp16 on CUDA")
        return torch.float32
    if precision is Precision.AUTO:
        return torch.float16 if device.type == "cuda" else torch.float32
    return {Precision.FP32: torch.float32, Precision.FP16: torch.float16, Precision.BF16: torch.bfloat16}[precision]


def precision_name(dtype: torch.dtype) -> str:
    return {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}[dtype]


@dataclass
class TrainingPrecision:
    """How ``tune`` trains on ``device``: mixed precision (AMP: fp16 autocast and a loss scaler)
    on CUDA, plain fp32 on the CPU (where half formats are slower)."""

    device: torch.device

    def __post_init__(self) -> None:
        cuda = self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=cuda)
        self._autocast = dict(device_type=self.device.type, dtype=torch.float16, enabled=cuda)

    def autocast(self) -> contextlib.AbstractContextManager:
        return torch.autocast(**self._autocast)

    def step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        """Backpropagate ``loss`` and step ``optimizer`` (scaled on CUDA, so fp16 gradients do not underflow)."""
        optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(optimizer)
        self.scaler.update()

    @property
    def name(self) -> str:
        return "AMP fp16" if self.device.type == "cuda" else "fp32"


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (timing needs it on CUDA; the CPU is synchronous)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_mib(device: torch.device) -> float | None:
    """Peak memory PyTorch allocated on a CUDA device since the last reset; None on the CPU."""
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None


class HostMemoryTrimmer:
    """Hands the memory glibc's allocator holds free back to the system (``malloc_trim``) while
    the process's resident memory is above ``above_mib``, at most every ``period`` seconds, when
    called from the frame loop. The matte step allocates and frees ~30 MB of full-resolution
    planes a 640x480 frame on several threads, and glibc keeps the freed pages: the default fp32
    run peaked ~100 MiB higher without it. Trimming is not free (the pages are faulted in again:
    INT8 runs, which stay below the bar, were 7-10% slower with it), hence the bar. It acts for
    CPU runs only (on CUDA the matte step's planes live on the GPU), on Linux with glibc; with
    ``period`` None it does nothing."""

    def __init__(self, device: torch.device, period: float | None = 0.25, above_mib: float = 700):
        self.period, self.above_mib = period, above_mib
        self._last = time.monotonic()
        self._trim = _malloc_trim() if period is not None and device.type == "cpu" else None

    def __call__(self) -> None:
        if self._trim is None or time.monotonic() - self._last < self.period:
            return
        self._last = time.monotonic()
        if resident_mib() > self.above_mib:
            self._trim(0)


def resident_mib() -> float:
    """This process's resident memory now (Linux's /proc; elsewhere its lifetime peak from
    getrusage), MiB."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, AttributeError):
        import resource  # not on Windows

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def _malloc_trim() -> Callable[[int], int] | None:
    if not os.path.exists("/proc/self/statm"):
        return None
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc (musl)
        return None


def cpu_threads() -> int:
    """Threads for the network on the CPU: every core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def pick_workers(runtime: Runtime, device: torch.device) -> int:
    """How many batches go through the network at once. onnxruntime and OpenVINO on the CPU: one
    per core (onnxruntime: each call on one thread, on 2 cores as fast as one call on 2 threads,
    234 vs 238 ms a frame for u2netp at 320², with no barrier between the cores for the other
    threads to stall; OpenVINO: one stream per call). Elsewhere one (PyTorch threads its own
    operators; CUDA queues work)."""
    cpu_runtime = runtime in (Runtime.ONNXRUNTIME, Runtime.OPENVINO)
    return cpu_threads() if cpu_runtime and device.type == "cpu" else 1


@contextlib.contextmanager
def frame_loop_threads(device: torch.device, workers: int) -> Iterator[None]:
    """While the frame loop runs with ``workers`` network calls keeping every CPU core busy,
    PyTorch's and OpenCV's own operators (resizing, the matte step) run on one thread: split across cores
    that are already taken, they cost 40% more CPU time (74 vs 52 ms a 640x480 frame) and
    their threads wait on each other."""
    if device.type != "cpu" or workers < cpu_threads():
        yield
        return
    import cv2  # the matte step's filters (``filters.py``) on the CPU

    before = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before[0])
        cv2.setNumThreads(before[1])


# Device memory a frame of the batch takes outside the network, per pixel of the frame: the
# uploaded frame (3 B), its alpha and the refinement's float planes (~10 x 4 B), the rendered
# output (4 B) and the allocator's slack. An estimate, kept on the safe side.
FULL_RES_BYTES_PER_PIXEL = 64
BATCH_CANDIDATES = (1, 2, 4, 8, 16, 32, 64, 128, 256)


@dataclass(frozen=True)
class BatchChoice:
    """A batch size and why: the frames/s measured for each size tried, and the memory cap."""

    batch: int
    fps: dict[int, float]  # batch -> network frames/s in the probe
    cap: int  # the largest batch that fits half the free device memory

    def describe(self) -> str:
        tried = ", ".join(f"{b}: {f:.0f}" for b, f in self.fps.items())
        return f"batch {self.batch} (probed network frames/s by batch: {tried}; memory allows up to {self.cap})"


def probe_batch(run: Callable[[torch.Tensor], torch.Tensor], device: torch.device, input_size: int,
                free_bytes: int, bytes_per_frame: int, candidates: tuple[int, ...] = BATCH_CANDIDATES,
                repeats: int = 3) -> BatchChoice:
    """The batch size for ``run`` (a NetworkRunner): the smallest of ``candidates`` within 5% of
    the best frames/s measured on ``repeats`` calls each (after one to warm up), among those
    whose ``bytes_per_frame`` fit half of ``free_bytes``. Sizes stop being tried once two in a row
    gain less than 5%. The inputs are random [B,3,S,S] f32 on ``device``."""
    cap = max(1, int(free_bytes // 2 // max(1, bytes_per_frame)))
    fps: dict[int, float] = {}
    flat = 0  # sizes in a row that gained less than 5% over the best so far
    for batch in (b for b in candidates if b <= cap):
        x = torch.rand(batch, 3, input_size, input_size, device=device)
        run(x)  # warm-up: kernel choice, allocator growth
        synchronize(device)
        start = time.perf_counter()
        for _ in range(repeats):
            run(x)
        synchronize(device)
        rate = batch * repeats / (time.perf_counter() - start)
        flat = flat + 1 if fps and rate < 1.05 * max(fps.values()) else 0
        fps[batch] = rate
        if flat == 2:
            break
    if not fps:  # not even one frame fits: let the run say so
        return BatchChoice(1, {}, cap)
    best = max(fps.values())
    return BatchChoice(min(b for b, f in fps.items() if f >= 0.95 * best), fps, cap)


def pick_batch(run: Callable[[torch.Tensor], torch.Tensor], device: torch.device, input_size: int,
               frame_pixels: int) -> BatchChoice:
    """Frames per network call when ``--batch`` is not given. CPU: 1 (throughput comes from a
    batch per core in flight, ``pick_workers``). CUDA: ``probe_batch`` within the free memory,
    counting the network's own memory per frame (measured) and the full-resolution stages'."""
    if device.type != "cuda":
        return BatchChoice(1, {}, 1)
    torch.cuda.synchronize(device)
    peaks = []
    for batch in (1, 2):  # the network's memory per extra frame, from its peaks at batch 1 and 2
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        run(torch.rand(batch, 3, input_size, input_size, device=device))
        torch.cuda.synchronize(device)
        peaks.append(torch.cuda.max_memory_allocated(device) - base)
    network_bytes = max(peaks[1] - peaks[0], peaks[0] // 2, 1)
    free, _ = torch.cuda.mem_get_info(device)
    choice = probe_batch(run, device, input_size, free, network_bytes + FULL_RES_BYTES_PER_PIXEL * frame_pixels)
    torch.cuda.empty_cache()  # the large probes' blocks: the run allocates its own
    return choice


# AUTO's order: the fastest first (README, "Speed"); OpenVINO also takes less memory
_CPU_RUNTIMES = (Runtime.OPENVINO, Runtime.ONNXRUNTIME)
_PACKAGES = {Runtime.OPENVINO: "openvino", Runtime.ONNXRUNTIME: "onnxruntime"}


def pick_runtime(runtime: Runtime, device: torch.device, dtype: torch.dtype, int8: bool = False) -> Runtime:
    """AUTO -> for fp32 on the CPU the first of OpenVINO and onnxruntime that is installed, else
    PyTorch; for ``int8`` OpenVINO. An explicit runtime that can't run here raises DeviceError."""
    if int8:
        if runtime not in (Runtime.AUTO, Runtime.OPENVINO):
            raise DeviceError(f"--precision int8 runs on OpenVINO only, not {runtime.value}: leave --runtime out")
        if not installed(Runtime.OPENVINO):
            raise DeviceError("--precision int8 needs the openvino package: pip install openvino")
        return Runtime.OPENVINO
    if runtime in _CPU_RUNTIMES:
        name = runtime.value
        if device.type != "cpu":
            raise DeviceError(f"--runtime {name} runs on the CPU only: use --device cpu, or --runtime torch on CUDA")
        if dtype != torch.float32:
            raise DeviceError(f"--runtime {name} runs fp32 only: use --precision fp32, or --runtime torch")
        if not installed(runtime):
            raise DeviceError(f"--runtime {name} needs the {_PACKAGES[runtime]} package: pip install {_PACKAGES[runtime]}")
        return runtime
    if runtime is Runtime.AUTO:
        if device.type == "cpu" and dtype == torch.float32:
            return next((r for r in _CPU_RUNTIMES if installed(r)), Runtime.TORCH)
        return Runtime.TORCH
    return runtime


@dataclass(frozen=True)
class NetworkRunner:
    """The network made ready on its device: call it on a normalised [B,3,S,S] tensor on the
    device to get [B,1,S,S] f32 0..1 on the device. ``workers`` calls may run at once."""

    runtime: Runtime  # TORCH or ONNXRUNTIME
    workers: int
    run: Callable[[torch.Tensor], torch.Tensor]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.run(x)


def prepare_network(network: nn.Module | None, device: torch.device, dtype: torch.dtype, runtime: Runtime,
                    workers: int = 0, cuda_graphs: bool = False, int8: Path | None = None,
                    onnx: Path | None = None) -> NetworkRunner:
    """``network`` (eval, BatchNorm folded, on the CPU) ready to run on ``device``. ``workers``:
    calls in flight at once (0: ``pick_workers``); each onnxruntime call gets its share of the
    cores. If the export for onnxruntime fails and the runtime was AUTO, PyTorch runs it.
    ``cuda_graphs``: on CUDA, replay each batch shape from a captured graph (``CudaGraphNetwork``).
    ``int8``: an OpenVINO IR (.xml) of the network quantised to INT8, run instead (``network``
    may then be None). ``onnx``: rembg's ONNX file of the network, which OpenVINO reads as it is
    instead of an export of ``network``; with ``network`` None the network is loaded from it
    only where another runtime has to run it."""
    chosen = pick_runtime(runtime, device, dtype, int8=int8 is not None)
    if int8 is not None:
        count = workers or pick_workers(chosen, device)
        try:
            return NetworkRunner(chosen, count, OpenVinoNetwork(int8, streams=count, threads=cpu_threads()))
        except Exception as e:  # a file this OpenVINO can't read or compile
            raise DeviceError(f"could not prepare the INT8 network {int8.name} for OpenVINO ({type(e).__name__}: "
                              f"{_one_line(e)}): make it again with `u2video models quantize`") from None
    # AUTO tries each CPU runtime that is installed, fastest first, then PyTorch
    tries = [r for r in _CPU_RUNTIMES if installed(r)] if chosen in _CPU_RUNTIMES and runtime is Runtime.AUTO else [chosen]
    for candidate in tries:
        if candidate not in _CPU_RUNTIMES:
            break
        count = workers or pick_workers(candidate, device)
        try:
            if candidate is Runtime.OPENVINO:
                source = network if onnx is None else onnx
                return NetworkRunner(candidate, count, OpenVinoNetwork(source, streams=count, threads=cpu_threads()))
            network = _load_onnx(onnx) if network is None else network
            return NetworkRunner(candidate, count, OnnxRuntimeNetwork(network, threads=max(1, cpu_threads() // count)))
        except Exception as e:  # an exporter that changed, a model the runtime can't compile
            if runtime is not Runtime.AUTO:
                raise DeviceError(f"could not prepare the network for {candidate.value} ({type(e).__name__}: "
                                  f"{_one_line(e)}): use --runtime torch") from None
    module = (_load_onnx(onnx) if network is None else network).to(device, dtype, memory_format=torch.channels_last)
    if cuda_graphs and device.type == "cuda":
        return NetworkRunner(Runtime.TORCH, 1, CudaGraphNetwork(module, dtype))

    def run(x: torch.Tensor) -> torch.Tensor:
        return module(x.to(dtype).contiguous(memory_format=torch.channels_last)).float()

    return NetworkRunner(Runtime.TORCH, workers or 1, run)


def _load_onnx(onnx: Path | None) -> nn.Module:
    if onnx is None:
        raise ValueError("prepare_network needs a network or its ONNX file")
    return load_onnx(onnx)


def _one_line(e: Exception) -> str:
    why = " ".join(str(e).split())  # OpenVINO's reports run over several lines
    return why if len(why) <= 400 else why[:400] + "…"


class CudaGraphNetwork:
    """The network replayed from CUDA graphs, one captured per input shape on first use: U²-Net's
    ~480 small kernels a call cost more to launch one by one than to run at small batches
    (the author, U-2-Net #262), and a graph launches them all at once."""

    def __init__(self, module: nn.Module, dtype: torch.dtype):
        self._module, self._dtype = module, dtype
        self._graphs: dict[tuple[int, ...], tuple[torch.cuda.CUDAGraph, torch.Tensor, torch.Tensor]] = {}

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B,3,S,S] on the CUDA device -> [B,1,S,S] f32 (a new tensor: the graph's own output
        is overwritten by the next replay)."""
        key = tuple(x.shape)
        if key not in self._graphs:
            self._graphs[key] = self._capture(x)
        graph, static_in, static_out = self._graphs[key]
        static_in.copy_(x)
        graph.replay()
        return static_out.to(torch.float32, copy=True)  # copied for fp32 too

    def _capture(self, x: torch.Tensor) -> tuple[torch.cuda.CUDAGraph, torch.Tensor, torch.Tensor]:
        static_in = torch.empty(x.shape, dtype=self._dtype, device=x.device).contiguous(
            memory_format=torch.channels_last)
        static_in.copy_(x)
        side = torch.cuda.Stream(x.device)  # warm-up off the capturing stream, as PyTorch's docs do
        side.wait_stream(torch.cuda.current_stream(x.device))
        with torch.cuda.stream(side):
            for _ in range(3):
                self._module(static_in)
        torch.cuda.current_stream(x.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        # thread-local: the decode and encode threads never touch CUDA, but must not break a capture
        with torch.cuda.graph(graph, capture_error_mode="thread_local"):
            static_out = self._module(static_in)
        return graph, static_in, static_out


def installed(runtime: Runtime) -> bool:
    """Whether the package of a CPU runtime imports here."""
    try:
        importlib.import_module(_PACKAGES[runtime])
    except ImportError:
        return False
    return True


_EXPORTED: dict[str, bytes] = {}  # parameter digest -> ONNX model, so a process exports each network once


class OnnxRuntimeNetwork:
    """The network exported to ONNX (batch and size dynamic, the fused output only) and run by
    onnxruntime on the CPU with ``threads`` threads a call; calls from several threads run at once."""

    def __init__(self, network: nn.Module, threads: int):
        import onnxruntime as ort

        model = export_onnx(network)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # No busy-waiting between calls: the decode and encode threads need those cores.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B,3,S,S] f32 on the CPU -> [B,1,S,S] f32 0..1."""
        (out,) = self._session.run(None, {self._input: x.float().contiguous().numpy()})
        return torch.from_numpy(out)


CACHE_ENV = "U2VIDEO_CACHE_DIR"


def openvino_cache_dir() -> Path | None:
    """Where OpenVINO keeps compiled networks between runs (compiling u2netp at 320² takes
    about 1.5 s on 2 cores, loading it from here 0.4 s): $U2VIDEO_CACHE_DIR/openvino, else
    $XDG_CACHE_HOME/u2video/openvino, else ~/.cache/u2video/openvino. U2VIDEO_CACHE_DIR set
    to an empty value: no cache. OpenVINO keys each entry by the network, its shape, the
    settings and its own version, and compiles afresh when an entry can't be read."""
    if CACHE_ENV in os.environ:
        return Path(os.environ[CACHE_ENV]) / "openvino" if os.environ[CACHE_ENV] else None
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "u2video" / "openvino"


_OPENVINO_CORE: object | None = None
_OPENVINO_CORE_LOCK = threading.Lock()


def openvino_core() -> object:
    """The process's one ``openvino.Core``, made on first use and kept until exit.

    One, not one per network: each Core's CPU plugin installs an alternate signal stack on the
    thread that first compiles with it (for AMX state) and frees it when the Core goes, putting
    back the one it found only if its own is still current. Cores made and dropped out of order
    (sessions built and interrupted one after another) leave a thread's signal stack pointing
    at freed memory, and the next signal (Ctrl-C) crashed the process (segfault) instead of
    stopping it."""
    global _OPENVINO_CORE
    with _OPENVINO_CORE_LOCK:
        if _OPENVINO_CORE is None:
            import openvino as ov

            _OPENVINO_CORE = ov.Core()
        return _OPENVINO_CORE


class OpenVinoNetwork:
    """The network exported to ONNX (or a file: rembg's ONNX, the INT8 IR) and compiled by OpenVINO
    for the CPU, once per input shape (static shapes run faster than a dynamic model), fp32
    where it is not quantised, ``streams`` calls at once (each thread gets its own infer
    request) on ``threads`` threads in all."""

    def __init__(self, network: nn.Module | Path, streams: int, threads: int):
        self._core = openvino_core()
        self._config = {"PERFORMANCE_HINT": "THROUGHPUT", "NUM_STREAMS": streams, "INFERENCE_NUM_THREADS": threads,
                        # OpenVINO would run bf16 on CPUs that have it: slower here and not fp32's matte
                        "INFERENCE_PRECISION_HINT": "f32"}
        self._compiled: dict[tuple[int, ...], object] = {}
        self._lock = threading.Lock()
        self._requests = threading.local()  # per thread: shape -> infer request
        self._source = str(network) if isinstance(network, Path) else export_onnx(network)
        self._model: object | None = self._read()  # one OpenVINO can't read fails here, not mid-run

    def _read(self) -> object:
        """The network as OpenVINO parsed it, its first output only (rembg's files have seven:
        the fused matte and six side outputs, which would each get a buffer per request)."""
        import openvino as ov

        model = self._core.read_model(self._source)
        return ov.Model([model.outputs[0]], model.get_parameters(), model.get_friendly_name())

    def _compile(self, shape: tuple[int, ...]) -> object:
        with self._lock:
            if shape not in self._compiled:
                # the parsed model (11 MiB for u2netp) is not kept once compiled: another shape,
                # which the CPU frame loop never asks for, parses it again
                model, self._model = self._model or self._read(), None
                model.reshape(list(shape))
                cache = openvino_cache_dir()
                try:
                    self._compiled[shape] = self._core.compile_model(
                        model, "CPU", {**self._config, **({"CACHE_DIR": str(cache)} if cache else {})})
                except Exception:
                    if cache is None:
                        raise
                    # a cache folder it can't write to: compile without it (OpenVINO itself
                    # compiles afresh when a cached blob can't be read)
                    self._compiled[shape] = self._core.compile_model(model, "CPU", self._config)
            return self._compiled[shape]

    # OpenVINO's Python binding sets up its numpy access once per process, on the first infer; two
    # threads doing that at once deadlocked (pybind11's call_once against a C++ static guard: 2
    # hung runs in 113 of a fault run). So the first infer in the process runs alone.
    _first_infer = threading.Lock()
    _numpy_ready = False

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B,3,S,S] f32 on the CPU -> [B,1,S,S] f32 0..1."""
        shape = tuple(x.shape)
        requests = self._requests.__dict__.setdefault("by_shape", {})
        if shape not in requests:
            requests[shape] = self._compile(shape).create_infer_request()
        data = {0: x.float().contiguous().numpy()}
        if OpenVinoNetwork._numpy_ready:
            out = requests[shape].infer(data)
        else:
            with OpenVinoNetwork._first_infer:
                out = requests[shape].infer(data)
                OpenVinoNetwork._numpy_ready = True
        return torch.from_numpy(out[0].copy())  # the request's buffer is reused by its next call


def export_onnx(network: nn.Module) -> bytes:
    """``network`` as an ONNX model (input "image" [B,3,H,W] f32, batch and size dynamic; output
    "saliency" [B,1,H,W] f32), exported once per process."""
    digest = hashlib.sha1()
    for tensor in network.state_dict().values():
        digest.update(tensor.detach().cpu().numpy().tobytes())
    key = f"{type(network).__name__}:{digest.hexdigest()}"
    if key not in _EXPORTED:
        buffer = io.BytesIO()
        example = torch.zeros(1, 3, 64, 64)
        with warnings.catch_warnings():  # the TorchScript exporter's deprecation notice
            warnings.simplefilter("ignore")
            torch.onnx.export(network.float().cpu().eval(), (example,), buffer, input_names=["image"],
                              output_names=["saliency"], opset_version=17, dynamo=False,
                              dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"}})
        _EXPORTED.clear()  # one at a time: a full U²-Net is 176 MB
        _EXPORTED[key] = buffer.getvalue()
    return _EXPORTED[key]
