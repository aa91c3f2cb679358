"""The subject-crop pass (u2video/crop.py): boxes from a prediction, steady boxes, crops merged
back; and with rembg's u2netp at its trained 320², on wide synthetic frames with small figures
whose true matte is known: found, sharper with the crop, at the frame's edge, two apart, none."""

import av
import cv2
import numpy as np
import pytest
import torch

from u2video.config import Crop, DeviceConfig, DeviceKind, MatteConfig, ModelConfig, Normalization
from u2video.crop import LIVE_CROP, BoxTracker, CropParams, SubjectCrop, grid_size, merge, subject_boxes
from u2video.errors import ConfigError
from u2video.segmenter import Segmenter

from .test_cli_images import run

H, W = 720, 1280  # a wide shot


def figure_scene(figures: list[tuple[float, float, float]], seed: int = 0, height: int = H, width: int = W
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(frame [H,W,3] uint8, true alpha [H,W] f32): red figures (a head over a body; centre x, y
    and height in pixels) on a wall-like gradient with sensor noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    wall = np.stack([150 + 40 * xx / width, 140 + 30 * yy / height, np.full_like(xx, 120)], -1)
    fine = np.zeros((4 * height, 4 * width), np.uint8)  # drawn at 4x, then area-averaged: anti-aliased edges
    for cx, cy, size in figures:
        cv2.ellipse(fine, (round(4 * cx), round(4 * (cy - 0.38 * size))), (round(0.48 * size), round(0.52 * size)),
                    0, 0, 360, 255, -1)
        cv2.ellipse(fine, (round(4 * cx), round(4 * (cy + 0.12 * size))), (round(0.88 * size), round(1.52 * size)),
                    0, 0, 360, 255, -1)
    alpha = cv2.resize(fine.astype(np.float32) / 255, (width, height), interpolation=cv2.INTER_AREA)
    image = wall * (1 - alpha[..., None]) + np.float32([200, 40, 50]) * alpha[..., None]
    image += rng.normal(0, 2, image.shape)
    return np.clip(image + 0.5, 0, 255).astype(np.uint8), alpha


def full_res(pred: torch.Tensor, height: int = H, width: int = W) -> np.ndarray:
    """A prediction of the whole frame [1,1,h,w] -> [H,W] (bilinear)."""
    return cv2.resize(pred[0, 0].float().numpy(), (width, height), interpolation=cv2.INTER_LINEAR)


def edge_error(alpha: np.ndarray, truth: np.ndarray) -> float:
    """Mean |alpha - truth| within 7 pixels of the true edge."""
    solid = (truth > 0.5).astype(np.uint8)
    band = cv2.dilate(solid, np.ones((15, 15))) > cv2.erode(solid, np.ones((15, 15)))
    return float(np.abs(alpha - truth)[band].mean())


@pytest.fixture(scope="module")
def segmenter():
    from .conftest import missing_shared, weights_dir

    folder = weights_dir()
    if folder is None:
        missing_shared("needs rembg's u2netp.onnx in $U2NET_HOME or ../shared/models")
    return Segmenter.from_config(ModelConfig(str(folder / "u2netp.onnx"), 320, Normalization.FIXED),
                                 DeviceConfig(DeviceKind.CPU), workers=1)


def first_and_cropped(segmenter, frame: np.ndarray, crop: SubjectCrop | None = None):
    frames = torch.from_numpy(frame)[None]
    first = segmenter.predict_lowres(frames)
    crop = crop or SubjectCrop(segmenter, *frame.shape[:2])
    return first, crop(frames, first), crop


# -- boxes, steadiness and merging, on made-up predictions (no network) --

def blobs(*rects: tuple[int, int, int, int], size: tuple[int, int] = (90, 160)) -> np.ndarray:
    """A prediction [h,w] with 1 inside each (x0, y0, x1, y1) and 0 elsewhere."""
    pred = np.zeros(size, np.float32)
    for x0, y0, x1, y1 in rects:
        pred[y0:y1, x0:x1] = 1
    return pred


def test_boxes_hold_each_part_with_a_margin_and_drop_specks():
    # a prediction at 90x160 of a 720x1280 frame: 8 frame pixels to one
    (box,) = subject_boxes(blobs((40, 30, 60, 70), (100, 5, 101, 6)), H, W, 320)
    x0, y0, x1, y1 = box
    assert x0 < 320 and y0 < 240 and x1 > 480 and y1 > 560  # the part, 320..480 x 240..560, inside
    assert (x1 - x0) <= 4 / 3 * (y1 - y0) + 1e-6 and (y1 - y0) <= 4 / 3 * (x1 - x0) + 1e-6  # sides within 4:3
    assert x0 > 100 and x1 < 700  # a margin, not the whole frame; the one-pixel speck made no box


def test_parts_far_apart_get_a_box_each_and_near_ones_share_one():
    apart = subject_boxes(blobs((10, 30, 25, 60), (130, 30, 145, 60)), H, W, 320)
    assert len(apart) == 2 and apart[0][2] < apart[1][0]
    near = subject_boxes(blobs((60, 30, 75, 60), (80, 30, 95, 60)), H, W, 320)
    assert len(near) == 1
    many = subject_boxes(blobs(*[(5 + 38 * i, 40, 15 + 38 * i, 50) for i in range(5)]), H, W, 320,
                         CropParams(max_boxes=3))
    assert len(many) == 1  # more parts than max_boxes: one box around them all
    assert subject_boxes(np.zeros((90, 160), np.float32), H, W, 320) == []


def test_a_box_stays_put_while_its_subject_wobbles_and_follows_when_it_leaves():
    tracker = BoxTracker()
    first = tracker.update(subject_boxes(blobs((40, 30, 60, 70)), H, W, 320))
    for dx in (1, -1, 0, 1, 2, -1):  # a pixel of the prediction is 8 of the frame
        assert tracker.update(subject_boxes(blobs((40 + dx, 30, 60 + dx, 70)), H, W, 320)) == first
    moved = tracker.update(subject_boxes(blobs((90, 30, 110, 70)), H, W, 320))
    assert moved != first and moved[0][0] > first[0][2] - 200  # it went with the subject


def test_merge_puts_each_crop_in_its_box_and_background_elsewhere():
    grid = grid_size(H, W, 320)
    assert grid == (360, 640)
    box = (320.0, 160.0, 640.0, 480.0)
    past_edge = (1000.0, -10.0, 1285.0, 300.0)  # reaches just past the right and top edges
    crops = torch.ones(2, 1, 320, 320)
    merged = merge(crops, [[box], [past_edge]], H, W, grid, feather=0.1)
    assert merged.shape == (2, 1, 360, 640)
    inner = merged[0, 0, 100:220, 180:300]  # the box's middle (grid pixels are 2 frame pixels)
    assert torch.all(inner == 1)
    assert merged[0, 0, :70].max() == 0 and merged[0, 0, :, 330:].max() == 0  # outside: background
    assert 0 < merged[0, 0, 160, 162] < 1  # the feather band, inside the box's left edge
    assert merged[1, 0, 0, 639] == 1 and merged[1, 0, 60, 639] == 1  # open at the frame's edges: no fade
    assert merged[1, 0, 60, 502] < 1  # faded at its left edge, which is inside the frame


def test_crop_option_checked_and_given_by_flag_and_preset(tmp_path):
    assert MatteConfig().crop is Crop.AUTO
    assert MatteConfig(crop="off").crop is Crop.OFF  # a preset's string
    with pytest.raises(ConfigError, match="auto, off"):
        MatteConfig(crop="sideways")
    preset = tmp_path / "p.toml"
    preset.write_text('command = "matte"\n[matte]\ncrop = "sometimes"\n')
    result = run("matte", tmp_path / "in.mp4", "-o", tmp_path / "out.mov", "--preset", preset)
    assert result.exit_code != 0 and "auto, off" in result.output and "Traceback" not in result.output
    result = run("matte", tmp_path / "in.mp4", "-o", tmp_path / "out.mov", "--crop", "sideways")
    assert result.exit_code != 0 and "sideways" in result.output


# -- with the network --

def test_a_small_subject_is_found_and_its_matte_is_sharper_with_the_crop(segmenter):
    frame, truth = figure_scene([(300, 400, 220)])  # under a third of the frame's height
    first, merged, crop = first_and_cropped(segmenter, frame)
    (box,) = crop.boxes[0]
    ys, xs = np.nonzero(truth > 0.01)
    assert box[0] < xs.min() and box[1] < ys.min() and box[2] > xs.max() and box[3] > ys.max()
    assert merged.shape == (1, 1, 360, 640)
    without, with_crop = edge_error(full_res(first), truth), edge_error(full_res(merged), truth)
    assert with_crop < 0.6 * without, (with_crop, without)


def test_two_subjects_far_apart_get_a_crop_each(segmenter):
    frame, truth = figure_scene([(200, 400, 200), (1050, 380, 200)])
    first, merged, crop = first_and_cropped(segmenter, frame)
    assert len(crop.boxes[0]) == 2
    alpha = full_res(merged)
    for half in (slice(0, W // 2), slice(W // 2, W)):  # each figure on its own
        assert edge_error(alpha[:, half], truth[:, half]) < 0.6 * edge_error(full_res(first)[:, half], truth[:, half])


def test_crops_reach_the_network_in_the_first_looks_batch_and_padding_changes_nothing(segmenter):
    # OpenVINO compiles and keeps a network for every input shape it is given (a quarter to most
    # of a GiB each for u2netp), so 3 crops of a 2-frame batch must come as 2 calls of 2
    frames = torch.from_numpy(np.stack([figure_scene([(200, 400, 200), (1050, 380, 200)], seed=0)[0],
                                        figure_scene([(640, 380, 200)], seed=1)[0]]))
    shapes, network = [], segmenter._run
    try:
        segmenter._run = lambda x: shapes.append(tuple(x.shape)) or network(x)
        first = segmenter.predict_lowres(frames)
        crop = SubjectCrop(segmenter, H, W)
        crop(frames, first)
    finally:
        segmenter._run = network
    assert [len(b) for b in crop.boxes] == [2, 1]
    assert shapes == [(2, 3, 320, 320)] * 3  # the first look, then the crops in two calls of 2
    boxes = torch.tensor([box for frame_boxes in crop.boxes for box in frame_boxes])
    index = torch.tensor([0, 0, 1])
    one_at_a_time = segmenter.predict_boxes(frames[index], boxes, batch=1)
    assert torch.allclose(segmenter.predict_boxes(frames[index], boxes, batch=2), one_at_a_time, atol=1e-4)


def test_a_subject_cut_by_the_frame_edge_keeps_its_matte_to_the_edge(segmenter):
    frame, truth = figure_scene([(30, 500, 260)])  # its left side is out of the picture
    first, merged, crop = first_and_cropped(segmenter, frame)
    (box,) = crop.boxes[0]
    assert box[0] < 0  # the crop reaches past the frame (its edge pixels repeated there)
    alpha = full_res(merged)
    rows = truth[:, 0] > 0.99
    assert alpha[rows, 0].mean() > 0.9  # not faded out at the frame's edge
    assert edge_error(alpha, truth) < 0.6 * edge_error(full_res(first), truth)


def test_no_subject_gives_an_empty_matte(segmenter):
    frame, _ = figure_scene([])
    first, merged, crop = first_and_cropped(segmenter, frame)
    assert crop.boxes == [[]] and torch.equal(merged, first)  # nothing cropped: the first look as it is
    assert merged.max() < 0.1


def test_the_box_does_not_move_on_a_still_subject(segmenter):
    crop = SubjectCrop(segmenter, H, W)
    boxes = []
    for seed in range(5):  # the same scene, new sensor noise each frame
        frame, _ = figure_scene([(640, 380, 200)], seed=seed)
        first_and_cropped(segmenter, frame, crop)
        boxes.append(crop.boxes[0])
    assert len(boxes[0]) == 1 and all(b == boxes[0] for b in boxes)


def test_live_crops_from_the_previous_frame_with_one_pass_a_frame(segmenter):
    calls = []
    network = segmenter._run
    crop = SubjectCrop(segmenter, H, W, CropParams(refresh=4))
    try:
        segmenter._run = lambda x: calls.append(x.shape[0]) or network(x)  # counts the network's passes
        per_frame = []
        for t in range(6):
            frame, truth = figure_scene([(400 + 4 * t, 400, 220)], seed=t)  # walking slowly to the right
            before = len(calls)
            merged = crop.live(torch.from_numpy(frame)[None])
            per_frame.append(len(calls) - before)
            assert edge_error(full_res(merged), truth) < 0.06
    finally:
        segmenter._run = network
    # the first frame and every 4th: the whole frame, then its box; the others: the box alone
    assert per_frame == [2, 1, 1, 1, 2, 1]


def test_matte_with_the_crop_writes_a_sharper_matte_than_without(u2netp_store, tmp_path):
    """Through the CLI and the frame loop: a 3-frame 1280x720 clip of a small figure, grey mattes
    written, decoded and compared with the true alpha."""
    clip = tmp_path / "wide.mp4"
    frame, truth = figure_scene([(500, 400, 220)])
    with av.open(str(clip), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.options = {"crf": "12"}
        for _ in range(3):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(stream.encode(None))
    errors = {}
    for mode in ("off", "auto"):
        out = tmp_path / f"matte-{mode}.mkv"
        result = run("matte", clip, "-o", out, "--mask-only", "--device", "cpu", "--smooth", "0", "--crop", mode)
        assert result.exit_code == 0, result.output
        with av.open(str(out)) as container:
            mattes = [f.to_ndarray(format="gray").astype(np.float32) / 255 for f in container.decode(video=0)]
        assert len(mattes) == 3
        errors[mode] = np.mean([edge_error(m, truth) for m in mattes])
    assert errors["auto"] < 0.7 * errors["off"], errors


def test_files_crop_small_subjects_only_and_live_use_crops_large_ones_too(segmenter):
    frame, truth = figure_scene([(320, 260, 400)], height=480, width=640)  # most of a webcam's frame
    frames = torch.from_numpy(frame)[None]
    files = SubjectCrop(segmenter, 480, 640)
    first = segmenter.predict_lowres(frames)
    assert torch.equal(files(frames, first), first) and files.boxes == [[]]  # large enough: one look
    live = SubjectCrop(segmenter, 480, 640, LIVE_CROP)
    live.live(frames)
    merged = live.live(frames)  # the second frame: its box from the first
    assert len(live.boxes[0]) == 1 and merged.shape[-2:] == grid_size(480, 640, 320)
    assert edge_error(full_res(merged, 480, 640), truth) < edge_error(full_res(first, 480, 640), truth)


def test_a_part_that_comes_and_goes_does_not_move_the_subjects_box():
    tracker = BoxTracker()
    (subject,) = tracker.update(subject_boxes(blobs((40, 30, 60, 70)), H, W, 320))
    for frame in range(6):  # a lamp far away, seen in every other frame
        parts = [(40 + frame % 2, 30, 60 + frame % 2, 70)] + ([(140, 10, 150, 30)] if frame % 2 else [])
        boxes = tracker.update(subject_boxes(blobs(*parts), H, W, 320))
        assert boxes[0] == subject and len(boxes) == 1 + frame % 2
