"""`u2video bench` and ``u2video.bench``: every stage measured on real frames, nothing left behind."""

import json
import tempfile
from pathlib import Path

import av
import pytest
from typer.testing import CliRunner

import u2video
from u2video.benchmark import BenchFormat
from u2video.cli import app
from u2video.config import MatteConfig, ModelConfig
from u2video.media.demo import write_clip

STAGES = ["decode", "model", "matte", "encode", "end to end"]


def run(*args):
    return CliRunner().invoke(app, ["bench", *map(str, args)])


def leftovers() -> list[str]:
    return sorted(p.name for p in Path(tempfile.gettempdir()).glob("u2video-bench-*"))


def test_bench_on_a_generated_clip_prints_json(u2netp_store):
    before = leftovers()
    result = run("--size", "96x64", "--frames", "7", "--input-size", "64", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert list(data["stages"]) == STAGES
    assert (data["width"], data["height"], data["frames"]) == (96, 64, 7)
    for name in STAGES:
        stage = data["stages"][name]
        assert stage["frames"] == 7 and stage["fps"] > 0 and stage["cpu_ms_per_frame"] >= 0
    assert data["output"] == "prores_ks yuva444p10le"
    assert data["slowest"] in STAGES[:-1]
    slowest_fps = min(data["stages"][s]["fps"] for s in STAGES[:-1])
    assert data["efficiency"] == pytest.approx(data["stages"]["end to end"]["fps"] / slowest_fps, rel=1e-3)
    assert data["peak_host_mib"] > 50 and data["peak_gpu_mib"] is None  # a CPU run holds the model
    assert "openvino" in data["model"]  # the CPU default
    assert "model:" in result.stderr and "frames" in result.stderr  # stage lines and the progress bar
    assert leftovers() == before  # the clip and outputs were in a temporary folder, now gone


@pytest.mark.parametrize("fmt", [BenchFormat.H264, BenchFormat.PNG])
def test_bench_on_a_given_clip_through_the_api(fmt, tmp_path, u2netp_store):
    clip = write_clip(tmp_path / "clip.mp4", 5, (48, 80), 25, audio=False)
    result = u2video.bench(clip, output_format=fmt, model=ModelConfig(input_size=64), matte_config=MatteConfig(smooth=2))
    assert result.frames == 5 and [s.name for s in result.stages] == STAGES
    assert all(s.frames == 5 for s in result.stages)
    assert result.output.startswith("libx264" if fmt is BenchFormat.H264 else "png")
    table = result.table()
    assert "end to end" in table and "efficiency" in table and "80x48" in table
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]  # the input is read, nothing written beside it
    with av.open(str(clip)) as c:
        assert c.streams.video[0].frames == 5


@pytest.mark.parametrize("args, expected", [
    (["--format", "avi"], "--format avi is not one of prores, webm, png, h264"),
    (["--size", "big"], "--size big is not WIDTHxHEIGHT"),
    (["--size", "8x8"], "too small"),
])
def test_bench_bad_options_are_one_line_errors(args, expected, u2netp_store):
    result = run(*args, "--frames", "2", "--input-size", "64")
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("u2video: error:") and expected in lines[-1], result.stderr
    assert "Traceback" not in result.output


def test_bench_on_a_clip_shorter_than_the_smoothing_window(u2netp_store):
    """All 3 frames come out of the matte step only when it is flushed: they are still encoded."""
    result = run("--size", "64x48", "--frames", "3", "--input-size", "64", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert all(data["stages"][name]["frames"] == 3 for name in STAGES)


def test_compare_runs_each_cpu_runtime_and_the_peer_loop_side_by_side(u2netp_store):
    """`u2video bench --compare`: whole processes, each row timed from its own runs, ratios against
    the peer loop's median; INT8 is named as not run where the store has no INT8 network."""
    from u2video.compare import PEER

    before = sorted(Path(tempfile.gettempdir()).glob("u2video-compare-*"))
    result = run("--compare", "--rounds", "2", "--size", "96x64", "--frames", "4", "--input-size", "64", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["frames"], data["rounds"]) == (4, 2)
    rows = {row["name"]: row for row in data["rows"]}
    assert list(rows) == ["u2video matte, openvino fp32", "u2video matte, onnxruntime fp32", PEER]
    assert "there is no INT8 u2netp" in data["skipped"]["u2video matte, openvino int8"]
    peer = sorted(rows[PEER]["fps"])[0] + (sorted(rows[PEER]["fps"])[1] - sorted(rows[PEER]["fps"])[0]) / 2
    for row in rows.values():
        assert len(row["fps"]) == 2 and row["fps"] == sorted(row["fps"]) and row["fps"][0] > 0
        assert row["median_fps"] == pytest.approx(sum(row["fps"]) / 2)
        assert row["vs_peer"] == pytest.approx(row["median_fps"] / peer)
        assert row["peak_mib"] > 50  # each process's own peak: they all load a network
    assert sorted(Path(tempfile.gettempdir()).glob("u2video-compare-*")) == before  # its folder is gone
