"""The weight store and the two loaders (.pth with BatchNorm, rembg's folded .onnx)."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from u2video.errors import ModelError
from u2video.model import registry, store, weights
from u2video.model.u2net import U2NET, U2NETP, fold_batchnorm
from u2video.segmenter import _MEAN, _STD

from .conftest import md5, randomise_batchnorm, synthetic_scene


def normalised_input(rgb: np.ndarray, size: int) -> np.ndarray:
    """[H,W,3] uint8 -> [1,3,S,S] float32 as the authors prepare it."""
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float()
    x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    x = x / x.max()
    x = (x - torch.tensor(_MEAN).view(1, 3, 1, 1)) / torch.tensor(_STD).view(1, 3, 1, 1)
    return x.numpy().astype(np.float32)


def test_rembg_onnx_in_pytorch_matches_onnxruntime(u2netp_store, reference_dir):
    ort = pytest.importorskip("onnxruntime", reason="needs onnxruntime (pip install -e '.[dev]')")
    import cv2

    onnx_path = u2netp_store / "u2netp.onnx"
    rgb = cv2.imread(str(reference_dir / "images" / "horse.jpg"))[:, :, ::-1].copy()
    x = normalised_input(rgb, 320)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    expected = session.run(None, {session.get_inputs()[0].name: x})[0]  # d0: [1,1,320,320]
    net = weights.load_onnx(onnx_path, "u2netp")
    with torch.no_grad():
        got = net(torch.from_numpy(x)).numpy()
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= 1e-3
    assert expected.std() > 0.1  # a real mask, not a flat map


def test_architecture_is_detected_from_the_onnx_file(u2netp_store):
    net = weights.load_onnx(u2netp_store / "u2netp.onnx")
    assert isinstance(net, U2NETP)


@pytest.mark.parametrize("arch", [U2NET, U2NETP])
def test_random_checkpoint_round_trips_through_pth_and_onnx(arch, tmp_path):
    pytest.importorskip("onnx", reason="needs onnx (pip install -e '.[onnx]')")
    torch.manual_seed(4)
    original = randomise_batchnorm(arch().eval())
    pth = tmp_path / "model.pth"
    torch.save(original.state_dict(), pth)  # the authors' format: a state dict with BatchNorm
    onnx_path = tmp_path / "model.onnx"
    # The TorchScript exporter folds BatchNorm into the convolutions, as rembg's files have it.
    torch.onnx.export(original, torch.randn(1, 3, 64, 64), str(onnx_path), dynamo=False,
                      opset_version=11, input_names=["input.1"])

    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = original(x)
        from_pth = weights.load_pth(pth)
        from_onnx = weights.load_onnx(onnx_path)
        assert type(from_pth) is arch and type(from_onnx) is arch
        assert (from_pth(x) - expected).abs().max() <= 1e-4
        assert (from_onnx(x) - expected).abs().max() <= 1e-4


def test_pth_wrapped_as_dataparallel_loads(tmp_path):
    net = U2NETP().eval()
    state = {f"module.{k}": v for k, v in net.state_dict().items()}
    torch.save({"state_dict": state}, tmp_path / "wrapped.pth")
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(weights.load_pth(tmp_path / "wrapped.pth")(x), fold_batchnorm(net)(x), atol=1e-5)


def test_store_lists_the_registry_with_state(u2netp_store):
    entries = {e.spec.name: e for e in store.list_store()}
    assert set(entries) == {"u2netp", "u2net", "u2net_human_seg", "silueta"}
    assert entries["u2netp"].verified and entries["u2netp"].path == u2netp_store / "u2netp.onnx"


def test_store_location_follows_rembg(monkeypatch, tmp_path):
    monkeypatch.delenv("U2NET_HOME", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert store.store_dir() == tmp_path / ".u2net"
    monkeypatch.setenv("U2NET_HOME", str(tmp_path / "elsewhere"))
    assert store.store_dir() == tmp_path / "elsewhere"


def test_wrong_checksum_is_refused(monkeypatch, tmp_path):
    monkeypatch.setenv("U2NET_HOME", str(tmp_path))
    (tmp_path / "u2netp.onnx").write_bytes(b"not the weights")
    with pytest.raises(ModelError, match="md5.*place u2netp.onnx .* by hand|md5.*downloads are off"):
        weights.load_network("u2netp")  # offline (conftest): the advice is what works offline
    monkeypatch.setenv("U2VIDEO_OFFLINE", "0")
    with pytest.raises(ModelError, match="md5.*u2video models pull u2netp"):
        weights.load_network("u2netp")


def test_missing_weights_offline_say_where_to_put_them(monkeypatch, tmp_path):
    monkeypatch.setenv("U2NET_HOME", str(tmp_path))
    with pytest.raises(ModelError) as err:
        weights.load_network("u2net")
    message = str(err.value)
    assert str(tmp_path / "u2net.onnx") in message and registry.MODELS["u2net"].md5 in message
    assert "\n" not in message


def test_unknown_model_name():
    with pytest.raises(ModelError, match="unknown model 'u3net'.*u2netp"):
        weights.load_network("u3net")


def fake_release(tmp_path: Path, monkeypatch, content: bytes, md5_of: bytes) -> registry.ModelSpec:
    """A registry entry whose 'release' is a local file (urllib reads file:// like https://)."""
    import hashlib

    release = tmp_path / "release" / "u2netp.onnx"
    release.parent.mkdir()
    release.write_bytes(content)
    spec = replace(registry.MODELS["u2netp"], url=release.as_uri(), md5=hashlib.md5(md5_of).hexdigest())
    monkeypatch.setitem(registry.MODELS, "u2netp", spec)
    monkeypatch.setenv("U2NET_HOME", str(tmp_path / "store"))
    monkeypatch.delenv("U2VIDEO_OFFLINE")
    return spec


class CountingReporter:
    def __init__(self):
        self.bytes = 0

    def info(self, message): pass

    def warn(self, message): pass

    def bar(self, desc, total, unit):
        reporter = self

        class Bar:
            def update(self, n=1):
                reporter.bytes += n

            def close(self): pass
        return Bar()


def test_download_verifies_then_renames(tmp_path, monkeypatch):
    payload = np.random.default_rng(0).bytes(3 << 20)
    spec = fake_release(tmp_path, monkeypatch, payload, payload)
    reporter = CountingReporter()
    path = store.pull(spec, reporter)
    assert path == tmp_path / "store" / "u2netp.onnx" and md5(path) == spec.md5
    assert reporter.bytes == len(payload)
    assert sorted(p.name for p in path.parent.iterdir()) == ["u2netp.onnx"]  # no .part left


def test_download_with_wrong_checksum_leaves_nothing(tmp_path, monkeypatch):
    spec = fake_release(tmp_path, monkeypatch, b"tampered", b"the real thing")
    with pytest.raises(ModelError, match="md5"):
        store.pull(spec)
    assert list((tmp_path / "store").iterdir()) == []


def test_files_that_are_not_models(tmp_path):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(synthetic_scene().tobytes())
    with pytest.raises(ModelError, match="not a readable ONNX|not a U²-Net"):
        weights.load_onnx(junk)
    text = tmp_path / "notes.pth"
    text.write_text("hello")
    with pytest.raises(ModelError, match="not a PyTorch checkpoint"):
        weights.load_pth(text)
    other = tmp_path / "other.pth"
    torch.save(torch.nn.Conv2d(3, 8, 3).state_dict(), other)
    with pytest.raises(ModelError, match="not a U²-Net"):
        weights.load_pth(other)
