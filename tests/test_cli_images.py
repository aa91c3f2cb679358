"""`u2video matte` on images, driven through Typer's CliRunner and as a real process."""

import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from u2video.cli import app

from .conftest import md5, read_rgba, synthetic_scene, write_rgb

FAST = ["--input-size", "64", "--device", "cpu"]  # pipeline tests: small network input


def run(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_image_to_rgba_png(u2netp_store, tmp_path):
    rgb = synthetic_scene()
    src = write_rgb(tmp_path / "scene.png", rgb)
    out = tmp_path / "cut.png"
    result = run("matte", src, "-o", out, *FAST)
    assert result.exit_code == 0, result.output
    assert "model u2netp at 64x64" in result.stderr and "on cpu" in result.stderr
    rgba = read_rgba(out)
    assert rgba.shape == (96, 128, 4)
    assert np.array_equal(rgba[..., :3], rgb)  # colour untouched, straight alpha
    alpha = rgba[..., 3].astype(int)
    assert alpha.min() < 30 and alpha.max() > 225  # both background and subject present


def test_mask_only_equals_the_rgba_alpha(u2netp_store, tmp_path):
    src = write_rgb(tmp_path / "scene.png", synthetic_scene(seed=3))
    assert run("matte", src, "-o", tmp_path / "cut.png", *FAST).exit_code == 0
    assert run("matte", src, "-o", tmp_path / "mask.png", "--mask-only", *FAST).exit_code == 0
    mask = cv2.imread(str(tmp_path / "mask.png"), cv2.IMREAD_UNCHANGED)
    assert mask.ndim == 2 and mask.dtype == np.uint8
    assert np.array_equal(mask, read_rgba(tmp_path / "cut.png")[..., 3])


def test_folder_in_folder_out(u2netp_store, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for i in range(3):
        write_rgb(inputs / f"img{i}.jpg", synthetic_scene(64 + 8 * i, 96, seed=i))
    (inputs / "notes.txt").write_text("not an image; ignored")
    result = run("matte", inputs, "-o", tmp_path / "out", *FAST)
    assert result.exit_code == 0, result.output
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["img0.png", "img1.png", "img2.png"]
    assert read_rgba(tmp_path / "out" / "img2.png").shape == (80, 96, 4)
    assert "3/3" in result.stderr  # the progress bar


def test_one_bad_file_in_a_batch(u2netp_store, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    write_rgb(inputs / "good.png", synthetic_scene())
    (inputs / "bad.jpg").write_text("this is text")
    result = run("matte", inputs, "-o", tmp_path / "out", *FAST)
    assert result.exit_code == 3
    assert "skipped bad.jpg" in result.stderr and "1 of 2 images" in result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good.png"]


def jpeg_with_orientation(path: Path, rgb: np.ndarray, orientation: int) -> Path:
    """A JPEG whose EXIF says 'rotate to display' (as phones write portrait photos)."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 98])
    tiff = b"MM\x00*\x00\x00\x00\x08" + struct.pack(">H", 1) + struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0) + b"\0" * 4
    app1 = b"\xff\xe1" + struct.pack(">H", len(tiff) + 8) + b"Exif\x00\x00" + tiff
    data = buf.tobytes()
    path.write_bytes(data[:2] + app1 + data[2:])
    return path


def test_exif_rotation_is_honoured(u2netp_store, tmp_path):
    rgb = synthetic_scene(60, 100)
    src = jpeg_with_orientation(tmp_path / "portrait.jpg", rgb, orientation=6)  # 90° clockwise
    assert run("matte", src, "-o", tmp_path / "out.png", *FAST).exit_code == 0
    rgba = read_rgba(tmp_path / "out.png")
    assert rgba.shape == (100, 60, 4)
    upright = np.rot90(rgb, k=-1)
    assert np.abs(rgba[..., :3].astype(int) - upright).mean() < 4  # JPEG error only


def truncated(src: Path, dst: Path) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: len(data) // 2])
    return dst


@pytest.fixture
def good_png(tmp_path) -> Path:
    return write_rgb(tmp_path / "good.png", synthetic_scene(120, 160))


@pytest.fixture
def good_jpg(tmp_path) -> Path:
    return write_rgb(tmp_path / "good.jpg", synthetic_scene(120, 160))


BAD_CASES = {
    "missing file": lambda t, png, jpg: (["matte", t / "nope.jpg", "-o", t / "out.png"], "does not exist"),
    "text named .jpg": lambda t, png, jpg: (
        ["matte", (t / "text.jpg").write_text("hello") and t / "text.jpg", "-o", t / "out.png"], "not a readable image"),
    "truncated png": lambda t, png, jpg: (["matte", truncated(png, t / "cut.png"), "-o", t / "out.png"], "truncated"),
    "truncated jpeg": lambda t, png, jpg: (["matte", truncated(jpg, t / "cut.jpg"), "-o", t / "out.png"], "truncated"),
    "unknown model": lambda t, png, jpg: (["matte", png, "-o", t / "out.png", "--model", "u3net"], "unknown model"),
    "output folder under a file": lambda t, png, jpg: (["matte", png, "-o", png / "sub" / "out.png"], "cannot write"),
    "output folder in /proc": lambda t, png, jpg: (["matte", png, "-o", "/proc/u2video-test/out.png"], "cannot write"),
    "output is the input": lambda t, png, jpg: (["matte", png, "-o", png, "--overwrite"], "is the input"),
    "jpeg cannot hold alpha": lambda t, png, jpg: (["matte", png, "-o", t / "out.jpg"], "cannot hold transparency"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_input_gives_one_line_and_leaves_no_output(case, u2netp_store, tmp_path, good_png, good_jpg):
    args, expected = BAD_CASES[case](tmp_path, good_png, good_jpg)
    before = {p: md5(p) for p in tmp_path.iterdir() if p.is_file()}
    result = run(*args, *FAST)
    assert result.exit_code not in (0, 1), result.output  # a typed error, not a crash
    lines = [l for l in result.stderr.strip().splitlines() if not l.startswith("u2video: model ")]
    assert len(lines) == 1 and lines[0].startswith("u2video: error:") and expected in lines[0], result.stderr
    assert "Traceback" not in result.output
    assert {p: md5(p) for p in before} == before  # inputs untouched
    after = {p for p in tmp_path.rglob("*") if p.is_file()}
    assert after == set(before), "an output or temporary file was left behind"


def test_wrong_checksum_weights(tmp_path, good_png, monkeypatch):
    store = tmp_path / "store"
    store.mkdir()
    (store / "u2netp.onnx").write_bytes(b"\0" * 1000)
    monkeypatch.setenv("U2NET_HOME", str(store))
    result = run("matte", good_png, "-o", tmp_path / "out.png", *FAST)
    assert result.exit_code == 4 and "md5" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out.png").exists()


def test_existing_output_needs_overwrite(u2netp_store, tmp_path, good_png):
    out = tmp_path / "out.png"
    out.write_bytes(b"precious")
    result = run("matte", good_png, "-o", out, *FAST)
    assert result.exit_code == 2 and "--overwrite" in result.stderr and out.read_bytes() == b"precious"
    assert run("matte", good_png, "-o", out, "--overwrite", *FAST).exit_code == 0
    assert read_rgba(out).shape == (120, 160, 4)


def test_models_command_lists_and_verifies(u2netp_store):
    listing = run("models")
    assert listing.exit_code == 0
    line = next(l for l in listing.stdout.splitlines() if l.startswith("u2netp "))
    assert " ok " in line and str(u2netp_store / "u2netp.onnx") in line
    assert "missing" in next(l for l in listing.stdout.splitlines() if l.startswith("u2net "))
    assert run("models", "verify", "u2netp").exit_code == 0
    missing = run("models", "verify", "u2net")
    assert missing.exit_code == 4 and "u2video models pull u2net" in missing.stderr
    offline = run("models", "pull", "u2net")
    assert offline.exit_code == 4 and "u2net.onnx" in offline.stderr


def u2video_process(*args, env=None):
    exe = shutil.which("u2video", path=os.path.dirname(sys.executable)) or shutil.which("u2video")
    command = [exe] if exe else [sys.executable, "-m", "u2video"]
    return subprocess.run(command + [str(a) for a in args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


def test_real_process_exit_codes(u2netp_store, tmp_path, good_png):
    ok = u2video_process("matte", good_png, "-o", tmp_path / "out.png", *FAST)
    assert ok.returncode == 0, ok.stderr
    assert read_rgba(tmp_path / "out.png").shape == (120, 160, 4)
    bad = u2video_process("matte", tmp_path / "missing.png", "-o", tmp_path / "x.png")
    assert bad.returncode == 3 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr
    debug = u2video_process("--debug", "matte", tmp_path / "missing.png", "-o", tmp_path / "x.png")
    assert debug.returncode != 0 and "Traceback" in debug.stderr
