"""`u2video tune` and the export of frames to correct: augmentation, training, the .pth and its
sidecar, bad masks folders, and `matte --frames/--every/--picture`.

The clip is made here: a dark checked rectangle (the subject) moving over a gradient beside a
bright disc, which u2netp takes for the salient object: the base network's matte is wrong in a
way a few masks can correct."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from u2video.cli import app
from u2video.config import DeviceConfig, DeviceKind, ModelConfig, Normalization, TuneConfig
from u2video.errors import MediaError
from u2video.segmenter import Segmenter
from u2video.tuning.augment import AugmentParams, augment
from u2video.tuning.data import load_training_frames
from u2video.tuning.train import _network_input, tune

H, W, N = 96, 128, 20
MASKED = (0, 5, 10, 15)
FAST = dict(input_size=64, batch=4, lr=1e-3)


def scene(i: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame i: [H,W,3] uint8 RGB and its true mask [H,W] bool."""
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    img = np.empty((H, W, 3), np.float32)
    img[..., 0], img[..., 1], img[..., 2] = 60 + 80 * xx / W, 90, 140 - 60 * yy / H
    img[(yy - 30) ** 2 + (xx - 100) ** 2 < 14 ** 2] = (250, 240, 200)  # the distractor
    mask = np.zeros((H, W), bool)
    mask[40:85, 15 + 2 * i:45 + 2 * i] = True
    img[mask] = (70, 50, 40)
    img[mask] += 20 * ((xx[mask] // 4 + yy[mask] // 4) % 2)[:, None]
    return np.clip(img, 0, 255).astype(np.uint8), mask


def write_clip(path: Path) -> Path:
    """N frames, lossless (FFV1), so the decoded frames are ``scene``'s pixels."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = W, H, "bgr0"
        for i in range(N):
            for packet in stream.encode(av.VideoFrame.from_ndarray(scene(i)[0], format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_masks(folder: Path, frames=MASKED) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in frames:
        assert cv2.imwrite(str(folder / f"{i:05d}.png"), scene(i)[1].astype(np.uint8) * 255)
    return folder


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return write_clip(tmp_path_factory.mktemp("tune") / "clip.mkv")


@pytest.fixture(scope="module")
def tuned(clip, tmp_path_factory) -> Path:
    """A model tuned for 30 steps at 64² on the four masks (CPU)."""
    from .conftest import missing_shared, weights_dir

    if weights_dir() is None:
        missing_shared("needs rembg's u2netp.onnx")
    folder = tmp_path_factory.mktemp("tuned")
    base = str(weights_dir() / "u2netp.onnx")
    return tune(clip, write_masks(folder / "masks"), folder / "clip.pth",
                TuneConfig(base=base, steps=30, patience=0, **FAST), DeviceKind.CPU).path


def mattes(clip: Path, model: str, frames=range(N)) -> np.ndarray:
    """The per-frame matte of ``frames`` at 64²: [n,H,W] f32 0..1."""
    seg = Segmenter.from_config(ModelConfig(model, 64, Normalization.FIXED), DeviceConfig(DeviceKind.CPU))
    pixels = torch.from_numpy(np.stack([scene(i)[0] for i in frames]))
    return seg(pixels)[:, 0].numpy()


# --- augmentation ---------------------------------------------------------------------------------

def test_augmentation_warps_image_and_mask_alike():
    """A known shape, drawn in the image and its mask: after zoom, rotation, shift, flip and the
    elastic field, the image's shape is still exactly where the mask is."""
    frame = np.zeros((H, W), np.float32)
    frame[20:70, 30:60] = 1.0
    frame[50:60, 60:100] = 1.0  # an L, so a flip or turn shows
    image = torch.from_numpy(frame)[None, None].repeat(8, 3, 1, 1)
    mask = torch.from_numpy(frame)[None, None].repeat(8, 1, 1, 1)
    geometric = AugmentParams(brightness=0, contrast=0, saturation=0, hue=0, blur=0, noise=0)
    x, y = augment(image, mask, 64, torch.Generator().manual_seed(1), geometric)
    assert torch.equal(x[:, 0:1], y)  # the same grid, the same interpolation
    plain = augment(image, mask, 64, torch.Generator().manual_seed(1), AugmentParams.none())[1]
    moved = (y - plain).abs().mean(dim=(1, 2, 3))
    assert (moved > 0.02).all(), moved  # every sample was warped
    # with the grey-value changes on, the bright shape still sits on the mask
    x, y = augment(image, mask, 64, torch.Generator().manual_seed(1))
    shape, labelled = x.mean(dim=1, keepdim=True) > 0.5, y > 0.5
    iou = (shape & labelled).sum(dim=(1, 2, 3)) / (shape | labelled).sum(dim=(1, 2, 3))
    assert (iou > 0.9).all(), iou


def test_unaugmented_samples_are_what_the_network_sees(u2netp_store):
    """Training without augmentation feeds the network exactly the video path's input."""
    frames = torch.from_numpy(np.stack([scene(i)[0] for i in (0, 7)]))
    seg = Segmenter.from_config(ModelConfig("u2netp", 64, Normalization.FIXED), DeviceConfig(DeviceKind.CPU))
    x, _ = augment(frames.permute(0, 3, 1, 2).float() / 255, torch.zeros(2, 1, H, W), 64,
                   torch.Generator(), AugmentParams.none())
    assert torch.allclose(_network_input(x), seg.network_input(frames), atol=1e-5)


def test_pasting_labels_both_subjects():
    image = torch.zeros(2, 3, H, W)
    mask = torch.zeros(2, 1, H, W)
    image[0, :, 10:30, 10:30], mask[0, :, 10:30, 10:30] = 1.0, 1.0
    image[1, :, 60:90, 80:120], mask[1, :, 60:90, 80:120] = 0.5, 1.0
    params = dataclasses.replace(AugmentParams.none(), paste=1.0)
    x, y = augment(image, mask, 64, torch.Generator().manual_seed(0), params)
    # at 64x64 the squares sit at rows 7-20, columns 5-15 and rows 40-60, columns 40-60
    for i in range(2):  # each sample holds both squares, and both are labelled
        assert y[i, 0, 8:19, 6:14].min() > 0.99 and y[i, 0, 42:58, 42:58].min() > 0.99
        assert x[i, 0, 8:19, 6:14].min() > 0.99 and (x[i, 0, 42:58, 42:58] - 0.5).abs().max() < 1e-6
        assert y[i].sum() < 1.05 * (y[i, 0, 7:21, 5:15].sum() + y[i, 0, 40:60, 40:60].sum())  # and nothing else


# --- tuning -----------------------------------------------------------------------------------------

def test_tuning_lowers_the_loss_and_moves_the_matte_towards_the_masks(clip, tuned, u2netp_store):
    sidecar = json.loads(tuned.with_suffix(".json").read_text())
    losses = [loss for _, loss in sidecar["losses"]["train"]]
    assert losses[-1] < 0.5 * losses[0], losses
    truth = np.stack([scene(i)[1] for i in range(N)]).astype(np.float32)
    before = np.abs(mattes(clip, "u2netp") - truth).mean(axis=(1, 2))
    after = np.abs(mattes(clip, str(tuned)) - truth).mean(axis=(1, 2))
    unseen = [i for i in range(N) if i not in MASKED]
    # on the frames it never saw as well as on those it did
    assert after[unseen].mean() < 0.5 * before[unseen].mean(), (before, after)
    assert (after < before).all(), (before, after)


def test_the_sidecar_says_how_the_model_was_made(clip, tuned):
    sidecar = json.loads(tuned.with_suffix(".json").read_text())
    import hashlib

    import u2video

    assert sidecar["md5"] == hashlib.md5(tuned.read_bytes()).hexdigest()
    assert sidecar["base"]["md5"] == "8e83ca70e441ab06c318d82300c84806"  # rembg's u2netp.onnx
    assert sidecar["architecture"] == "u2netp" and sidecar["u2video"] == u2video.__version__
    assert sidecar["clip"]["name"] == "clip.mkv"
    assert sidecar["validation_frame"] == 10 and sidecar["clip"]["frames_used"] == [0, 5, 15]
    assert sidecar["steps_run"] == 30 and sidecar["config"]["steps"] == 30
    assert len(sidecar["losses"]["validation_mad"]) == 1 + 30  # before the first step, then after each (30 // 20)


def test_the_weights_kept_are_those_that_matted_the_held_out_frame_best(tuned):
    from u2video.model.weights import load_pth
    from u2video.tuning.train import held_out_mad

    sidecar = json.loads(tuned.with_suffix(".json").read_text())
    checks = dict((step, mad) for step, mad in sidecar["losses"]["validation_mad"])
    assert sidecar["best_step"] == min(checks, key=checks.get) and sidecar["best_step"] < sidecar["steps_run"]
    frame, mask = scene(10)
    mad = held_out_mad(load_pth(tuned), torch.from_numpy(frame).permute(2, 0, 1)[None].float() / 255,
                       torch.from_numpy(mask)[None, None].float(), 64)
    assert abs(mad - checks[sidecar["best_step"]]) < 1e-5


def test_the_tuned_model_loads_with_model_and_its_sidecar_is_checked(clip, tuned, tmp_path, u2netp_store):
    runner = CliRunner()
    out = tmp_path / "m.mkv"
    result = runner.invoke(app, ["matte", str(clip), "-o", str(out), "--matte-only", "--model", str(tuned),
                                 "--input-size", "64", "--smooth", "0", "--no-refine", "--crop", "off"])
    assert result.exit_code == 0, result.output
    with av.open(str(out)) as container:
        written = np.stack([f.to_ndarray()[..., 0] if f.format.name != "gray" else f.to_ndarray()
                            for f in container.decode(video=0)]).astype(np.float32) / 255
    expected = mattes(clip, str(tuned))
    assert np.abs(written - expected).max() <= 1.5 / 255
    listed = runner.invoke(app, ["models"], env={"U2NET_HOME": str(tuned.parent)})
    assert f"{tuned.stem}" in listed.output and "tuned from" in listed.output and "clip.mkv" in listed.output
    # weights changed after tuning: refused, one line, exit 4
    changed = tmp_path / "changed.pth"
    changed.write_bytes(tuned.read_bytes() + b"\0")
    changed.with_suffix(".json").write_text(tuned.with_suffix(".json").read_text())
    result = runner.invoke(app, ["matte", str(clip), "-o", str(tmp_path / "n.mkv"), "--matte-only", "--model",
                                 str(changed), "--input-size", "64"])
    assert result.exit_code == 4
    assert "changed after `u2video tune` wrote them" in result.output and "Traceback" not in result.output
    # a tuned model in the store is found by its name
    result = runner.invoke(app, ["matte", str(clip), "-o", str(tmp_path / "s.mkv"), "--matte-only", "--model",
                                 tuned.stem, "--input-size", "64"], env={"U2NET_HOME": str(tuned.parent)})
    assert result.exit_code == 0, result.output


def test_tuning_is_reproducible_with_its_seed(clip, tmp_path, u2netp_store):
    masks = write_masks(tmp_path / "masks", (0, 10))
    import u2video  # the public API

    made = [u2video.tune(clip, masks, tmp_path / f"{name}.pth", TuneConfig(steps=3, seed=seed, **FAST),
                         DeviceKind.CPU).path for name, seed in (("a", 0), ("b", 0), ("c", 1))]
    a, b, c = (torch.load(p, weights_only=True) for p in made)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_tune_from_the_command_line(clip, tmp_path, u2netp_store):
    masks = write_masks(tmp_path / "masks", (0, 10))
    out = tmp_path / "t.pth"
    result = subprocess.run([sys.executable, "-m", "u2video", "tune", str(clip), "--masks", str(masks), "-o", str(out),
                             "--steps", "2", "--input-size", "64"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "tuning:" in result.stderr and "loss" in result.stderr  # the bar, with the loss
    assert out.is_file() and out.with_suffix(".json").is_file()
    again = subprocess.run([sys.executable, "-m", "u2video", "tune", str(clip), "--masks", str(masks), "-o", str(out),
                            "--steps", "2", "--input-size", "64"], capture_output=True, text=True)
    assert again.returncode == 2 and "already exists" in again.stderr


@pytest.mark.parametrize("case, message", [
    ("missing", "does not exist"),
    ("empty", "holds no masks"),
    ("wrong name", "is not a mask named by its frame number"),
    ("past the end", "names frame 40, but clip.mkv has 20 frames"),
    ("colour", "is a colour image, not a grey mask"),
    ("transparent", "has transparency"),
    ("unreadable", "is not a readable PNG"),
])
def test_bad_masks_folders_are_one_line_errors(clip, tmp_path, case, message, u2netp_store):
    masks = tmp_path / "masks"
    if case != "missing":
        masks.mkdir()
    if case == "wrong name":
        write_masks(masks, (0,))
        (masks / "frame_10.png").write_bytes((masks / "00000.png").read_bytes())
    elif case == "past the end":
        write_masks(masks, (0,))
        (masks / "00040.png").write_bytes((masks / "00000.png").read_bytes())
    elif case == "colour":
        colour = np.zeros((H, W, 3), np.uint8)
        colour[..., 2] = 255
        cv2.imwrite(str(masks / "00003.png"), colour)
    elif case == "transparent":
        cv2.imwrite(str(masks / "00003.png"), np.zeros((H, W, 4), np.uint8))
    elif case == "unreadable":
        (masks / "00003.png").write_bytes(b"not a png")
    result = CliRunner().invoke(app, ["tune", str(clip), "--masks", str(masks), "-o", str(tmp_path / "t.pth"),
                                      "--steps", "1", "--input-size", "64"])
    assert result.exit_code == 3, result.output
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "t.pth").exists()


def test_masks_of_another_size_are_scaled_to_the_frame(clip, tmp_path):
    masks = tmp_path / "masks"
    masks.mkdir()
    truth = scene(5)[1].astype(np.uint8) * 255
    cv2.imwrite(str(masks / "00005.png"), cv2.resize(truth, (2 * W, 2 * H), interpolation=cv2.INTER_NEAREST))
    data = load_training_frames(clip, masks)
    assert data.indices == [5] and data.masks.shape == (1, H, W)
    assert np.abs(data.masks[0] - truth / 255).mean() < 0.01
    assert np.array_equal(data.frames[0], scene(5)[0])  # the decoded frame is frame 5
    with pytest.raises(MediaError, match="both masks of frame 5"):
        cv2.imwrite(str(masks / "5.png"), truth)
        load_training_frames(clip, masks)


# --- exporting frames to correct -------------------------------------------------------------------

def test_matte_exports_chosen_frames_named_by_number(clip, tmp_path, u2netp_store):
    runner = CliRunner()
    fast = ["--input-size", "64", "--smooth", "0", "--no-refine", "--crop", "off"]
    out = tmp_path / "masks"
    result = runner.invoke(app, ["matte", str(clip), "-o", str(out), "--matte-only", "--frames", "7,0,12", *fast])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["00000.png", "00007.png", "00012.png"]
    expected = mattes(clip, "u2netp", [0, 7, 12])
    for i, index in enumerate((0, 7, 12)):
        grey = cv2.imread(str(out / f"{index:05d}.png"), cv2.IMREAD_UNCHANGED)
        assert grey.ndim == 2 and np.abs(grey / 255 - expected[i]).max() <= 1 / 255 + 1e-6
    pictures = tmp_path / "frames"
    result = runner.invoke(app, ["matte", str(clip), "-o", str(pictures), "--picture", "--every", "8"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in pictures.iterdir()) == ["00000.png", "00008.png", "00016.png"]
    for index in (0, 8, 16):
        bgr = cv2.imread(str(pictures / f"{index:05d}.png"))
        assert np.array_equal(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), scene(index)[0])
    # the exported masks are what tune reads
    assert load_training_frames(clip, out).indices == [0, 7, 12]
    # pictures of chosen frames: the clip is read up to the last of them only
    result = runner.invoke(app, ["matte", str(clip), "-o", str(tmp_path / "two"), "--picture", "--frames", "2,7"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == ["00002.png", "00007.png"]
    assert "8/8" in result.output and f"{N}/{N}" not in result.output


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_tuning_on_cuda_with_mixed_precision(clip, tmp_path, u2netp_store):
    """On CUDA (AMP: fp16 autocast, a loss scaler) the loss falls as on the CPU and the model
    loads back for the CPU path."""
    made = tune(clip, write_masks(tmp_path / "masks"), tmp_path / "cuda.pth",
                TuneConfig(steps=30, patience=0, **FAST), DeviceKind.CUDA)
    p = made.provenance
    assert p["device"] == "cuda" and p["precision"] == "AMP fp16"
    losses = [loss for _, loss in p["losses"]["train"]]
    assert np.isfinite(losses).all() and losses[-1] < 0.5 * losses[0], losses
    truth = np.stack([scene(i)[1] for i in range(N)]).astype(np.float32)
    assert np.abs(mattes(clip, str(made.path)) - truth).mean() < np.abs(mattes(clip, "u2netp") - truth).mean()


def test_frame_choices_that_cannot_work_are_one_line_errors(clip, tmp_path):
    cv2.imwrite(str(tmp_path / "still.png"), scene(0)[0])
    cases = [
        (["matte", str(clip), "-o", str(tmp_path / "x.mov"), "--frames", "1"], "give a folder for -o"),
        (["matte", str(tmp_path / "still.png"), "-o", str(tmp_path / "out"), "--frames", "1"], "give one video file"),
        (["matte", str(clip), "-o", str(tmp_path / "y"), "--frames", "1", "--start", "0.1"], "drop --start/--end"),
        (["matte", str(clip), "-o", str(tmp_path / "z"), "--frames", "1", "--every", "2"], "give one of them"),
        (["matte", str(clip), "-o", str(tmp_path / "w"), "--frames", "one"], "is not a list of frame numbers"),
        (["matte", str(clip), "-o", str(tmp_path / "v"), "--picture", "--matte-only"], "give one of them"),
    ]
    for args, message in cases:
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2 and message in result.output, (args, result.output)
        assert len(result.output.strip().splitlines()) == 1
    assert not any((tmp_path / name).exists() for name in ("x.mov", "out", "y", "z", "w", "v"))


def test_the_demo_masks_cover_the_ball_and_the_box():
    """samples/tune_demo.py's masks: what render_still draws as the ball (red) and the box (blue),
    and nothing else, in every frame of the pan."""
    from u2video.media.demo import _roll, objects_mask, render_still

    still = render_still(360, 480).astype(int)
    red = still[..., 0] > 3 * still[..., 1]  # the ball, shaded (the table and the shadow are brownish)
    blue = still[..., 2] > still[..., 0] + 80
    for frame in (0, 30):
        mask = objects_mask(360, 480, frame)
        drawn = np.roll(red | blue, _roll(480, frame), axis=1)
        assert (drawn & mask).sum() / drawn.sum() > 0.97  # the objects are in the mask...
        assert (drawn & mask).sum() / mask.sum() > 0.9  # ...and the mask is the objects


def test_exported_mattes_are_a_full_runs_and_the_loop_stops_after_the_last_chosen_frame(clip, tmp_path, u2netp_store):
    """With the defaults (smoothing looks 6 frames ahead), --frames 3,5 gives frames 3 and 5 of a
    full run's matte, and the loop reads only the frames up to 5 + 6."""
    runner = CliRunner()
    full = tmp_path / "full.mkv"
    result = runner.invoke(app, ["matte", str(clip), "-o", str(full), "--matte-only", "--input-size", "64"])
    assert result.exit_code == 0, result.output
    with av.open(str(full)) as container:
        whole = [f.to_ndarray(format="gray") for f in container.decode(video=0)]
    assert len(whole) == N
    out = tmp_path / "masks"
    result = runner.invoke(app, ["matte", str(clip), "-o", str(out), "--matte-only", "--frames", "3,5",
                                 "--input-size", "64"])
    assert result.exit_code == 0, result.output
    for index in (3, 5):
        assert np.array_equal(cv2.imread(str(out / f"{index:05d}.png"), cv2.IMREAD_UNCHANGED), whole[index])
    assert "12/12" in result.output and f"{N}/{N}" not in result.output  # frames 0-11 went through the loop
