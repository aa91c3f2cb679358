"""`u2video models quantize` and `--precision int8`: the INT8 network is made here from rembg's
file, stored with its checksums and provenance, verified before it loads, and run by OpenVINO.

The network is quantised at 192² on a few frames of a generated clip with plain quantisation
(seconds; at 64² its deepest stages are 2x2 and it agrees with fp32 no better than chance); its agreement with fp32 at 320² with accuracy control, the figures the README gives,
is measured by ``benchmarks/int8.py`` (minutes), not here.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("nncf")
pytest.importorskip("openvino")

from u2video.config import DeviceConfig, ModelConfig, Normalization, Precision, Runtime  # noqa: E402
from u2video.device import pick_runtime  # noqa: E402
from u2video.errors import DeviceError, ModelError  # noqa: E402
from u2video.model import quantize as quantize_module  # noqa: E402
from u2video.model.registry import MODELS  # noqa: E402
from u2video.model.store import file_md5  # noqa: E402
from u2video.segmenter import Segmenter  # noqa: E402

from .conftest import missing_shared, weights_dir  # noqa: E402
from .test_cli_images import run  # noqa: E402
from .test_video_matte import FAST, decoded, make_clip  # noqa: E402


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> tuple[Path, Path, object]:
    """A store holding rembg's u2netp.onnx (linked) and the INT8 network the CLI made from it;
    the clip it was calibrated on; the CLI's result."""
    source = weights_dir()
    if source is None:
        missing_shared("needs rembg's u2netp.onnx in $U2NET_HOME or ../shared/models")
    store = tmp_path_factory.mktemp("store")
    (store / "u2netp.onnx").symlink_to(source / "u2netp.onnx")
    clip = make_clip(tmp_path_factory.mktemp("clip") / "calibrate.mp4", frames=24)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("U2NET_HOME", str(store))
        result = run("models", "quantize", "u2netp", "--calibrate", clip, "--input-size", "192", "--frames", "12",
                     "--plain")
    return store, clip, result


@pytest.fixture
def int8_store(made, monkeypatch) -> Path:
    store, _, result = made
    assert result.exit_code == 0, result.output
    monkeypatch.setenv("U2NET_HOME", str(store))
    return store


def test_quantize_stores_the_network_with_its_checksums_and_how_it_was_made(made, int8_store):
    _, clip, result = made
    assert "u2netp INT8:" in result.stdout and "IoU mean" in result.stdout
    xml, bin_, meta = (int8_store / f"u2netp-int8{s}" for s in (".xml", ".bin", ".json"))
    provenance = json.loads(meta.read_text())
    assert provenance["files"] == {xml.name: file_md5(xml), bin_.name: file_md5(bin_)}
    assert provenance["source"] == {"file": "u2netp.onnx", "md5": MODELS["u2netp"].md5}
    assert provenance["calibration"]["media"] == [{"file": "calibrate.mp4", "md5": file_md5(clip), "frames": 12,
                                                   "indices": list(range(0, 24, 2))}]
    assert provenance["calibration"]["frames"] == 8 and provenance["calibration"]["validation_frames"] == 4
    assert provenance["input_size"] == 192 and "accuracy control" not in provenance["method"]
    assert set(provenance["validation"]) == {"mean_abs_diff", "max_abs_diff", "iou_mean", "iou_min"}
    assert not [p.name for p in int8_store.iterdir() if p.name.startswith(".")]  # no work folder left
    # quantised for real: the IR's convolutions take fake-quantised (INT8) inputs and weights
    assert xml.read_text().count('type="FakeQuantize"') > 50


def test_int8_runs_the_quantized_network(made, int8_store, tmp_path):
    _, clip, _ = made
    out = tmp_path / "int8.mov"
    result = run("matte", clip, "-o", out, *FAST, "--precision", "int8")
    assert result.exit_code == 0, result.output
    assert "(int8, openvino" in result.stderr
    assert len(decoded(out)) == 24

    frames = torch.from_numpy(np.stack([f.to_ndarray(format="rgb24") for f in decoded(clip)[:6]]))
    model = ModelConfig(input_size=192, normalization=Normalization.FIXED)  # the size it was calibrated at
    int8_segmenter = Segmenter.from_config(model, DeviceConfig(precision=Precision.INT8), workers=1)
    assert int8_segmenter.network is None  # the fp32 network is not loaded beside it (memory)
    int8 = int8_segmenter.predict_lowres(frames)
    fp32 = Segmenter.from_config(model, DeviceConfig(runtime=Runtime.OPENVINO), workers=1).predict_lowres(frames)
    # another network (INT8 arithmetic) computing nearly the same function: plain quantisation
    # on 8 frames at 192² measured IoU 0.95 and a correlation of 0.985 on these frames (at 128²
    # only 0.81 and 0.93: its matte hovers around 0.5 there, and the IoU came out under 0.8 once)
    assert float((int8 - fp32).abs().max()) > 1e-3
    assert float(np.corrcoef(int8.flatten(), fp32.flatten())[0, 1]) > 0.85
    union = ((int8 > 0.5) | (fp32 > 0.5)).sum()
    assert union > 0 and float(((int8 > 0.5) & (fp32 > 0.5)).sum() / union) > 0.8


def test_damaged_or_missing_int8_network_is_refused_in_one_line(made, int8_store, tmp_path, monkeypatch):
    _, clip, _ = made
    copy = tmp_path / "store"
    shutil.copytree(int8_store, copy, symlinks=True)
    monkeypatch.setenv("U2NET_HOME", str(copy))
    data = bytearray((copy / "u2netp-int8.bin").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / "u2netp-int8.bin").write_bytes(bytes(data))
    result = run("matte", clip, "-o", tmp_path / "a.mov", *FAST, "--precision", "int8")
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "u2netp-int8.bin is missing or does not match the md5 in u2netp-int8.json" in result.stderr
    assert "u2video models quantize u2netp --calibrate" in result.stderr
    (copy / "u2netp-int8.json").unlink()
    result = run("matte", clip, "-o", tmp_path / "a.mov", *FAST, "--precision", "int8")
    assert result.exit_code != 0 and "there is no INT8 u2netp in the store" in result.stderr
    assert not (tmp_path / "a.mov").exists()


def test_an_int8_network_openvino_cannot_read_is_a_clear_error(made, int8_store, tmp_path, monkeypatch):
    copy = tmp_path / "store"
    shutil.copytree(int8_store, copy, symlinks=True)
    monkeypatch.setenv("U2NET_HOME", str(copy))
    xml = copy / "u2netp-int8.xml"
    xml.write_text("<net>not a network</net>")
    meta = json.loads((copy / "u2netp-int8.json").read_text())
    meta["files"][xml.name] = file_md5(xml)  # intact as far as the checksum goes
    (copy / "u2netp-int8.json").write_text(json.dumps(meta))
    with pytest.raises(DeviceError, match="could not prepare the INT8 network u2netp-int8.xml for OpenVINO"):
        Segmenter.from_config(ModelConfig(input_size=64, normalization=Normalization.FIXED),
                              DeviceConfig(precision=Precision.INT8))


def test_int8_runtime_choices(monkeypatch):
    cpu = torch.device("cpu")
    assert pick_runtime(Runtime.AUTO, cpu, torch.float32, int8=True) is Runtime.OPENVINO
    with pytest.raises(DeviceError, match="int8 runs on OpenVINO only, not onnxruntime"):
        pick_runtime(Runtime.ONNXRUNTIME, cpu, torch.float32, int8=True)
    with pytest.raises(DeviceError, match="int8 runs on OpenVINO only, not torch"):
        pick_runtime(Runtime.TORCH, cpu, torch.float32, int8=True)
    monkeypatch.setattr("u2video.device.installed", lambda runtime: runtime is not Runtime.OPENVINO)
    with pytest.raises(DeviceError, match="int8 needs the openvino package"):
        pick_runtime(Runtime.AUTO, cpu, torch.float32, int8=True)


def test_quantize_refuses_what_it_cannot_use(u2netp_store, tmp_path):
    with pytest.raises(ModelError, match="give footage to calibrate on"):
        quantize_module.quantize("u2netp", [])
    with pytest.raises(ModelError, match="does not exist: give video files or images"):
        quantize_module.quantize("u2netp", [tmp_path / "gone.mp4"])
    with pytest.raises(ModelError, match="unknown model"):
        quantize_module.quantize("u2netq", [tmp_path / "gone.mp4"])
    with pytest.raises(ModelError, match="int8 takes a model of the store"):
        quantize_module.load_int8(str(tmp_path / "mine.onnx"))


def test_live_default_input_is_larger_with_int8():
    from u2video.api import live_model
    from u2video.config import DeviceKind

    model = ModelConfig()
    assert live_model(model, DeviceConfig(DeviceKind.CPU, precision=Precision.INT8)).input_size == 192
    assert live_model(model, DeviceConfig(DeviceKind.CPU)).input_size == 128


def test_live_use_on_the_cpu_takes_the_int8_network_where_the_store_has_one(made, int8_store, tmp_path, monkeypatch):
    """Live use needs the speed: precision AUTO on the CPU becomes INT8 at 192² where the store
    holds the INT8 network, and stays fp32 at 128² without one, or when a precision is given."""
    from u2video.api import live_device, live_model
    from u2video.config import DeviceKind, Runtime

    cpu = DeviceConfig(DeviceKind.CPU)
    chosen = live_device(ModelConfig(), cpu)
    assert chosen.precision is Precision.INT8 and live_model(ModelConfig(), chosen).input_size == 192
    for given in (DeviceConfig(DeviceKind.CPU, precision=Precision.FP32),
                  DeviceConfig(DeviceKind.CPU, runtime=Runtime.ONNXRUNTIME)):
        assert live_device(ModelConfig(), given) == given
    (tmp_path / "u2netp.onnx").symlink_to((int8_store / "u2netp.onnx").resolve())
    monkeypatch.setenv("U2NET_HOME", str(tmp_path))  # rembg's file alone: no INT8 network
    assert live_device(ModelConfig(), cpu) == cpu and live_model(ModelConfig(), cpu).input_size == 128
