"""What runs the network: OpenVINO (the CPU default) and onnxruntime against PyTorch, the
fallbacks between them, several batches in flight at once, precision, batch size, CUDA graphs."""

import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from u2video.compose import alpha_to_uint8
from u2video.config import DeviceConfig, DeviceKind, ModelConfig, Normalization, Precision, Runtime
from u2video.device import pick_dtype, precision_name
from u2video.errors import DeviceError
from u2video.segmenter import Segmenter

from .conftest import synthetic_scene, write_rgb
from .test_cli_images import run


def segmenter(runtime: Runtime, size: int = 64, normalization=Normalization.FIXED, workers: int = 0) -> Segmenter:
    return Segmenter.from_config(ModelConfig("u2netp", size, normalization),
                                 DeviceConfig(DeviceKind.CPU, runtime=runtime), workers=workers)


def test_the_cpu_default_is_openvino_with_a_call_per_core(u2netp_store):
    seg = segmenter(Runtime.AUTO)
    assert seg.runtime is Runtime.OPENVINO and seg.workers >= 1
    assert "openvino" in seg.describe()
    assert segmenter(Runtime.AUTO, workers=1).workers == 1


def test_a_missing_runtime_package_is_skipped_by_auto_and_named_when_asked_for(u2netp_store, monkeypatch):
    import openvino

    monkeypatch.setitem(sys.modules, "openvino", None)  # "import openvino" raises ImportError now
    assert segmenter(Runtime.AUTO).runtime is Runtime.ONNXRUNTIME
    with pytest.raises(DeviceError, match="needs the openvino package: pip install openvino"):
        segmenter(Runtime.OPENVINO)
    monkeypatch.setitem(sys.modules, "openvino", openvino)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    assert segmenter(Runtime.AUTO).runtime is Runtime.OPENVINO
    with pytest.raises(DeviceError, match="needs the onnxruntime package: pip install onnxruntime"):
        segmenter(Runtime.ONNXRUNTIME)


def test_openvino_runs_rembgs_file_as_it_is_with_the_loaded_networks_output(u2netp_store):
    """OpenVINO reads the store's u2netp.onnx itself: no PyTorch network is loaded (70 MiB), and
    the matte is the one an export of the loaded network gives."""
    from u2video.device import prepare_network
    from u2video.model.weights import load_network

    seg = segmenter(Runtime.AUTO, 64, workers=1)
    assert seg.runtime is Runtime.OPENVINO and seg.network is None
    frames = torch.from_numpy(synthetic_scene(96, 128))[None]
    exported = prepare_network(load_network("u2netp")[0].eval(), torch.device("cpu"), torch.float32,
                               Runtime.OPENVINO, workers=1)
    x = seg.network_input(frames)
    direct, via_export = seg._run(x), exported(x)
    assert direct.shape == (1, 1, 64, 64) and direct.std() > 0.2  # a matte (0.38), not a blank
    assert (direct - via_export).abs().max() <= 1e-6
    # the other runtimes run the loaded network
    assert segmenter(Runtime.ONNXRUNTIME).network is not None
    assert segmenter(Runtime.TORCH).network is not None


def test_where_openvino_fails_on_rembgs_file_auto_loads_the_network_for_onnxruntime(u2netp_store, monkeypatch):
    import u2video.device as device

    def cannot_compile(*args, **kwargs):
        raise RuntimeError("no CPU plugin")

    x = torch.rand(1, 3, 64, 64)
    onnx = u2netp_store / "u2netp.onnx"
    expected = device.prepare_network(None, torch.device("cpu"), torch.float32, Runtime.OPENVINO, 1, onnx=onnx)(x)
    monkeypatch.setattr(device, "OpenVinoNetwork", cannot_compile)
    runner = device.prepare_network(None, torch.device("cpu"), torch.float32, Runtime.AUTO, 1, onnx=onnx)
    assert runner.runtime is Runtime.ONNXRUNTIME
    assert (runner(x) - expected).abs().max() <= 1e-5


_FREED_BUT_RESIDENT = """
import ctypes, sys, torch
from u2video.device import HostMemoryTrimmer
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
def anon_mib():
    return int(open("/proc/self/status").read().split("RssAnon:")[1].split()[0]) / 1024
blocks = [libc.malloc(64 << 10) for _ in range(1000)]  # 64 KiB each: on the heap, not mmapped
for block in blocks:
    ctypes.memset(block, 1, 64 << 10)  # resident
for block in blocks[:-1]:  # the last one keeps the heap's top: glibc's free() can't shrink it
    libc.free(block)
before = anon_mib()
HostMemoryTrimmer(torch.device(sys.argv[3]), period=float(sys.argv[1]), above_mib=float(sys.argv[2]))()
print(before - anon_mib())
"""


def test_the_frame_loops_trimmer_gives_freed_heap_memory_back():
    from u2video.device import _malloc_trim

    if _malloc_trim() is None:
        pytest.skip("glibc's allocator on Linux only")
    def released(period: str, above_mib: str = "0", device: str = "cpu") -> float:
        done = subprocess.run([sys.executable, "-c", _FREED_BUT_RESIDENT, period, above_mib, device],
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return float(done.stdout)

    assert released("0") > 50  # of the 62 MiB freed
    assert released("3600") < 5  # not before its period is up
    assert released("0", "100000") < 5  # nor while resident memory is below its bar
    assert released("0", "0", "cuda") < 5  # nor for runs on a GPU


@pytest.mark.parametrize("runtime", [Runtime.ONNXRUNTIME, Runtime.OPENVINO])
@pytest.mark.parametrize("name", ["horse.jpg", "bike.jpg"])
def test_cpu_runtimes_and_pytorch_give_the_same_matte(name, runtime, u2netp_store, reference_dir):
    """At the trained size, on official test images: within 1/255 everywhere (the exported
    network is the same function; only float rounding differs)."""
    path = reference_dir / "images" / name
    if not path.is_file():
        pytest.skip(f"{name} not in the reference set")
    rgb = torch.from_numpy(cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB))[None]
    mattes = {}
    for each in (Runtime.TORCH, runtime):
        seg = segmenter(each, 320, Normalization.REFERENCE)
        assert seg.runtime is each
        mattes[each] = alpha_to_uint8(seg(rgb)).int()
    diff = (mattes[Runtime.TORCH] - mattes[runtime]).abs()
    assert mattes[Runtime.TORCH].float().std() > 30  # a real matte, not a blank one
    assert diff.max() <= 1


@pytest.mark.parametrize("runtime", [Runtime.ONNXRUNTIME, Runtime.OPENVINO])
def test_batches_in_flight_come_back_in_order_and_unchanged(runtime, u2netp_store):
    """Two workers: every batch's prediction is the one it gets alone, in the order given,
    whatever batch finishes first; the tags travel with their frames."""
    frames = [torch.from_numpy(synthetic_scene(72, 96, seed=s))[None] for s in range(7)]
    frames[3] = torch.cat([frames[3], frames[4]])  # batches of different sizes
    seg = segmenter(runtime, workers=2)
    alone = [seg.predict_lowres(f) for f in frames]
    out = list(seg.predict_batches((f, i) for i, f in enumerate(frames)))
    assert [tag for _, tag, _ in out] == list(range(7))
    for i, (f, _, pred) in enumerate(out):
        assert f is frames[i]
        assert pred.shape == (f.shape[0], 1, 64, 64)
        assert torch.equal(pred, alone[i])
    assert (alone[0] - alone[1]).abs().max() > 1e-3  # different scenes, different predictions


@pytest.mark.parametrize("runtime", [Runtime.ONNXRUNTIME, Runtime.OPENVINO])
def test_cpu_runtime_asked_for_where_it_cannot_run(runtime, u2netp_store):
    with pytest.raises(DeviceError, match=f"--runtime {runtime.value} runs fp32 only"):
        Segmenter.from_config(ModelConfig("u2netp", 64, Normalization.FIXED),
                              DeviceConfig(DeviceKind.CPU, Precision.FP16, runtime=runtime))


class _NotExportable(torch.nn.Module):
    """An operator the ONNX exporter has no translation for (stands in for a PyTorch whose
    exporter changed): AUTO must still run, on PyTorch."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(torch.special.i0(x[:, :1]))


def test_a_network_onnxruntime_cannot_take_runs_on_pytorch_under_auto():
    from u2video.device import prepare_network

    cpu = torch.device("cpu")
    runner = prepare_network(_NotExportable(), cpu, torch.float32, Runtime.AUTO)
    assert runner.runtime is Runtime.TORCH and runner.workers == 1
    x = torch.randn(2, 3, 16, 16)
    assert torch.allclose(runner(x), torch.sigmoid(torch.special.i0(x[:, :1])))
    with pytest.raises(DeviceError, match="use --runtime torch"):
        prepare_network(_NotExportable(), cpu, torch.float32, Runtime.ONNXRUNTIME)


class _Determinant(torch.nn.Module):
    """Exports to ONNX (a Det node) that onnxruntime runs and OpenVINO can't convert."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        square = x[:, 0, :3, :3] @ x[:, 0, :3, :3].transpose(-1, -2) + torch.eye(3)  # [B,3,3]
        return torch.sigmoid(torch.det(square).view(-1, 1, 1, 1) * x[:, :1])


def test_a_network_openvino_cannot_compile_runs_on_onnxruntime_under_auto():
    from u2video.device import prepare_network

    cpu = torch.device("cpu")
    runner = prepare_network(_Determinant(), cpu, torch.float32, Runtime.AUTO)
    assert runner.runtime is Runtime.ONNXRUNTIME
    x = torch.rand(2, 3, 16, 16)
    assert torch.allclose(runner(x), _Determinant()(x), atol=1e-5)
    with pytest.raises(DeviceError, match="could not prepare the network for openvino .*Det.*use --runtime torch") as e:
        prepare_network(_Determinant(), cpu, torch.float32, Runtime.OPENVINO)
    assert "\n" not in str(e.value)  # a one-line error


_SIGNAL_AFTER_OPENVINO = """
import gc, signal, torch
from u2video.device import OpenVinoNetwork
x = torch.rand(1, 3, 16, 16)
first = OpenVinoNetwork(torch.nn.Conv2d(3, 1, 3, padding=1), streams=1, threads=1); first(x)
second = OpenVinoNetwork(torch.nn.Conv2d(3, 1, 3, padding=1), streams=1, threads=1); second(x)
del first; gc.collect()  # dropped in the order they were made, as sessions one after another
del second; gc.collect()
signal.signal(signal.SIGINT, lambda *_: print("handled", flush=True))
signal.raise_signal(signal.SIGINT)
"""


def test_openvino_networks_made_and_dropped_leave_ctrl_c_working():
    """OpenVINO's CPU plugin (one per Core) swaps in its own signal stack on the thread that
    compiles and frees it when its Core goes: with a Core per network, two networks dropped in
    the order they were made left a freed signal stack behind, and the next Ctrl-C segfaulted.
    In a child process, so a crash fails this test and not the suite."""
    proc = subprocess.run([sys.executable, "-c", _SIGNAL_AFTER_OPENVINO], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "handled", (proc.returncode, proc.stderr[-2000:])


@pytest.mark.parametrize("precision, dtype", [(Precision.AUTO, torch.float32), (Precision.FP32, torch.float32),
                                              (Precision.FP16, torch.float16), (Precision.BF16, torch.bfloat16)])
def test_precision_picks_the_network_dtype_and_runs(u2netp_store, precision, dtype):
    """Each --precision runs the real u2netp on the CPU (AUTO is fp32 there; half formats go to
    PyTorch, as onnxruntime runs fp32 only) and stays close to fp32."""
    frames = torch.from_numpy(np.stack([synthetic_scene(120, 160, seed=s) for s in (1, 2)]))
    model = ModelConfig("u2netp", 64, Normalization.FIXED)
    seg = Segmenter.from_config(model, DeviceConfig(DeviceKind.CPU, precision))
    reference = Segmenter.from_config(model, DeviceConfig(DeviceKind.CPU, Precision.FP32, runtime=Runtime.TORCH))
    assert seg.dtype == dtype and f"({precision_name(dtype)}, " in seg.describe()
    assert seg.runtime is (Runtime.TORCH if dtype != torch.float32 else seg.runtime)
    got, want = seg.predict_lowres(frames), reference.predict_lowres(frames)
    assert got.dtype == torch.float32 and got.shape == want.shape == (2, 1, 64, 64)
    # mean |Δ| of 0..1 at 64²; measured 0.006 (fp16) and 0.036 (bf16: 8 significant bits, README "Precision")
    tolerance = {torch.float32: 1e-4, torch.float16: 0.015, torch.bfloat16: 0.08}[dtype]
    assert (got - want).abs().mean() < tolerance


def test_precision_auto_is_half_on_cuda_only():
    assert pick_dtype(Precision.AUTO, torch.device("cuda")) == torch.float16
    assert pick_dtype(Precision.AUTO, torch.device("cpu")) == torch.float32
    assert pick_dtype(Precision.BF16, torch.device("cpu")) == torch.bfloat16


@pytest.mark.parametrize("flags, said", [(["--precision", "bf16"], "bf16"), (["--fp16"], "fp16"),
                                         (["--fp32", "--precision", "fp32"], "fp32")])
def test_precision_flags(u2netp_store, tmp_path, flags, said):
    """--precision, and --fp16/--fp32 as its older spelling, reach the network (its line says so)."""
    src = write_rgb(tmp_path / "scene.png", synthetic_scene(64, 80, seed=3))
    result = run("matte", src, "-o", tmp_path / "cut.png", "--device", "cpu", "--input-size", "64", *flags)
    assert result.exit_code == 0, result.output
    assert f"({said}, " in result.stderr


def test_contradictory_precision_flags_are_one_line_errors(tmp_path):
    result = run("matte", tmp_path / "x.png", "-o", tmp_path / "y.png", "--fp16", "--precision", "bf16")
    assert result.exit_code == 2
    assert result.stderr.strip() == "u2video: error: --fp16 and --precision bf16 disagree: give one of them"


def test_batch_probe_takes_the_fastest_size_that_fits_half_the_free_memory():
    """The probe's logic, run on the CPU with a real network (on CUDA the free memory and the
    network's memory per frame are measured): sizes past the memory cap are never tried, and
    the one taken is the smallest within 5% of the best measured."""
    from u2video.device import prepare_network, probe_batch
    from u2video.model.u2net import U2NETP, fold_batchnorm

    runner = prepare_network(fold_batchnorm(U2NETP().eval()), torch.device("cpu"), torch.float32, Runtime.TORCH)
    per_frame = 10_000_000
    choice = probe_batch(runner, torch.device("cpu"), 64, free_bytes=8 * per_frame + 5, bytes_per_frame=per_frame,
                         candidates=(1, 2, 4, 8, 16), repeats=1)
    assert choice.cap == 4 and set(choice.fps) <= {1, 2, 4} and 1 in choice.fps
    best = max(choice.fps.values())
    assert choice.fps[choice.batch] >= 0.95 * best
    assert all(f < 0.95 * best for b, f in choice.fps.items() if b < choice.batch)
    assert f"batch {choice.batch} (probed" in choice.describe() and "up to 4" in choice.describe()
    starved = probe_batch(runner, torch.device("cpu"), 64, free_bytes=per_frame, bytes_per_frame=per_frame)
    assert starved.batch == 1 and list(starved.fps) == [1]


def test_without_batch_the_cpu_runs_one_frame_a_call_and_says_nothing(u2netp_store):
    segmenter = Segmenter.from_config(ModelConfig("u2netp", 64, Normalization.FIXED), DeviceConfig(DeviceKind.CPU))
    choice = segmenter.pick_batch(1920, 1080)
    assert (choice.batch, choice.fps) == (1, {})
    assert DeviceConfig().batch is None and DeviceConfig(batch=4).batch == 4


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_batch_probe_measures_memory_and_picks_a_size(u2netp_store):
    segmenter = Segmenter.from_config(ModelConfig("u2netp", 320, Normalization.FIXED), DeviceConfig(DeviceKind.CUDA))
    choice = segmenter.pick_batch(3840, 2160)
    free, _ = torch.cuda.mem_get_info()
    assert choice.fps and choice.batch in choice.fps and 1 <= choice.batch <= choice.cap
    # 4K frames' full-resolution stages fit half the memory that was free
    assert choice.cap * 64 * 3840 * 2160 <= free + torch.cuda.memory_reserved()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_graph_replays_match_eager_and_are_not_overwritten():
    from u2video.device import prepare_network
    from u2video.model.u2net import U2NETP, fold_batchnorm

    net = fold_batchnorm(U2NETP().eval())
    cuda = torch.device("cuda")
    with torch.inference_mode():
        eager = prepare_network(net, cuda, torch.float16, Runtime.TORCH)
        graphed = prepare_network(net, cuda, torch.float16, Runtime.TORCH, cuda_graphs=True)
        a, b = torch.rand(2, 3, 320, 320, device=cuda), torch.rand(2, 3, 320, 320, device=cuda)
        first, second = graphed(a), graphed(b)  # the second replay must not change the first result
        assert torch.allclose(first, eager(a), atol=2e-3) and torch.allclose(second, eager(b), atol=2e-3)
        assert not torch.allclose(first, second)


def test_cuda_graphs_come_from_a_preset_and_change_nothing_on_the_cpu(u2netp_store, tmp_path):
    from u2video.presets import load_preset

    preset = tmp_path / "graphs.toml"
    preset.write_text('command = "matte"\n[device]\ncuda_graphs = true\n')
    config = load_preset(preset).device_config(kind=DeviceKind.CPU)
    assert config.cuda_graphs is True and DeviceConfig().cuda_graphs is False
    segmenter = Segmenter.from_config(ModelConfig("u2netp", 64, Normalization.FIXED), config)
    assert "CUDA graphs" not in segmenter.describe()  # the CPU has none: the usual runner
    frames = torch.from_numpy(synthetic_scene(96, 128))[None]
    plain = Segmenter.from_config(ModelConfig("u2netp", 64, Normalization.FIXED), DeviceConfig(DeviceKind.CPU))
    assert torch.equal(segmenter(frames), plain(frames))


def test_openvino_keeps_compiled_networks_in_the_cache_folder_and_works_without_one(tmp_path, monkeypatch):
    """Compiled once, loaded from $U2VIDEO_CACHE_DIR/openvino after that; a damaged entry or a
    folder it can't write is compiled afresh, with the same output."""
    from u2video.device import OpenVinoNetwork

    torch.manual_seed(3)
    conv = torch.nn.Conv2d(3, 1, 3, padding=1)
    x = torch.rand(1, 3, 24, 24)
    want = conv(x).detach()
    monkeypatch.setenv("U2VIDEO_CACHE_DIR", str(tmp_path))
    first = OpenVinoNetwork(conv, streams=1, threads=1)
    assert torch.allclose(first(x), want, atol=1e-5)
    assert not first._compile(tuple(x.shape)).get_property("LOADED_FROM_CACHE")
    blobs = list((tmp_path / "openvino").glob("*.blob"))
    assert len(blobs) == 1
    second = OpenVinoNetwork(conv, streams=1, threads=1)
    assert torch.allclose(second(x), want, atol=1e-5)
    assert second._compile(tuple(x.shape)).get_property("LOADED_FROM_CACHE")
    blobs[0].chmod(0o600)
    blobs[0].write_bytes(b"not a compiled network")
    damaged = OpenVinoNetwork(conv, streams=1, threads=1)
    assert torch.allclose(damaged(x), want, atol=1e-5)
    (tmp_path / "file").write_text("a file where the folder would go")
    monkeypatch.setenv("U2VIDEO_CACHE_DIR", str(tmp_path / "file"))
    unwritable = OpenVinoNetwork(conv, streams=1, threads=1)
    assert torch.allclose(unwritable(x), want, atol=1e-5)
    monkeypatch.setenv("U2VIDEO_CACHE_DIR", "")
    assert not OpenVinoNetwork(conv, streams=1, threads=1)._compile(tuple(x.shape)).get_property("LOADED_FROM_CACHE")
