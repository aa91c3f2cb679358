"""benchmarks/gpu.py, the one script for a lent GPU, run as a dry run on the CPU so that it
works the day a GPU is there."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_benchmark_dry_run_runs_every_part(u2netp_store, tmp_path):
    out = tmp_path / "gpu.json"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu.py"), "--dry-run", "--out", str(out)],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    parts = result["parts"]
    assert result["dry_run"] and set(parts) == {"tests", "model", "end_to_end", "live", "parity", "decode"}
    assert not [name for name, part in parts.items() if isinstance(part, dict) and "error" in part], parts
    assert parts["tests"]["exit_code"] == 0 and "skipped" in parts["tests"]["summary"]  # no GPU here
    for name in ("u2netp", "u2net"):
        rows = parts["model"][name]["rows"]
        assert [r["precision"] for r in rows if r["batch"] == 1] == ["fp32", "bf16"]
        for precision in ("fp32", "bf16"):
            batches = [r for r in rows if r["precision"] == precision]
            # batch 2 runs unless batch 1 took over 2 s a call (the script's rule; a loaded machine can)
            expected = [1] if batches[0]["seconds_per_call"] > 2.0 else [1, 2]
            assert [r["batch"] for r in batches] == expected, rows
        assert all(r["fps"] > 0 for r in rows)
    assert parts["model"]["u2net"]["weights"] == "random (speed only)"  # never downloaded
    assert [(r["clip"], r["format"]) for r in parts["end_to_end"]] == [("tiny", "prores"), ("tiny", "webm"), ("tiny", "h264")]
    for row in parts["end_to_end"]:
        assert "error" not in row, row
        # efficiency is a ratio of two timings: on a tiny clip on a busy machine it can pass 1, so
        # only its presence is checked here, never its size
        assert row["efficiency"] > 0 and row["stages"]["end to end"] > 0
    (live,) = parts["live"]
    assert live["processed"] > 0 and live["captured"] >= live["processed"]
    assert parts["parity"]["fp32"]["mean_abs_diff"] == 0  # the CPU against itself
    (decoded,) = parts["decode"]
    software, on_host, on_gpu = decoded["ways"]
    assert software["frames"] == 6 and software["fps"] > 0  # the tiny clip, every frame
    assert "error" in on_host and "error" in on_gpu  # no NVDEC here
    assert "DRY RUN" in done.stdout and "(b) model only" in done.stdout and "(f) decode only" in done.stdout
