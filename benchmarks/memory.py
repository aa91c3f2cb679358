"""Peak memory of the video pipeline for a short and a long clip.

Generates two H.264 clips with an AAC stereo tone (samples/make_samples.py's demo clip) (default 10 s and 60 s, 640x360, 25 fps),
runs ``u2video matte`` (to ProRes 4444 .mov) and ``u2video replace -b blur`` (to .mp4) on each in a
fresh child process, and prints each run's wall time, frames/s and peak resident memory (the child's
ru_maxrss from os.wait4), plus the ratio peak(longest)/peak(shortest) per mode.

The pipeline's queues are bounded (decode queue 2*batch frames, render queue 2 batches) and frames are
encoded as they come, so peak memory should not grow with clip length: the ratio should be close to 1.

Run:  U2NET_HOME=/path/to/models python benchmarks/memory.py  [--input-size 320] [--seconds 10,60]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODES = {  # mode -> (output suffix, extra CLI args)
    "matte": (".mov", []),
    "replace": (".mp4", ["-b", "blur"]),
}
INPUT_SIZE_NOTE = ("the network input size does not change how the pipeline buffers frames; "
                   "320 is the real size but makes the 60 s run take ~10 min on 2 cores")


def make_clip(path: Path, width: int, height: int, fps: int, seconds: int) -> int:
    """The project's demo clip (a rolling ball, with a 440 Hz AAC stereo tone) at this size and
    length; returns the frame count."""
    spec = importlib.util.spec_from_file_location("make_samples", ROOT / "samples" / "make_samples.py")
    samples = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(samples)
    samples.write_clip(path, seconds * fps, (height, width), fps, audio=True)
    return seconds * fps


def run_cli(args: list[str], log: Path) -> tuple[float, int]:
    """Run the CLI in a fresh process; returns (wall seconds, peak RSS in KiB)."""
    t0 = time.perf_counter()
    with open(log, "w") as err:  # a file, not a pipe: the progress bar cannot fill a pipe and stall the child
        proc = subprocess.Popen([sys.executable, "-m", "u2video", *args], stdout=subprocess.DEVNULL, stderr=err)
        # wait4 reaps the child and returns its own rusage (RUSAGE_CHILDREN would mix all runs' maxima).
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)  # so Popen does not try to reap it again
    if proc.returncode != 0:
        sys.exit(f"u2video {' '.join(args)} failed ({proc.returncode}):\n{log.read_text()[-3000:]}")
    return wall, usage.ru_maxrss  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input-size", type=int, default=64,
                        help=f"network input size (default 64): {INPUT_SIZE_NOTE}")
    parser.add_argument("--size", default="640x360", help="clip size WxH (default 640x360)")
    parser.add_argument("--fps", type=int, default=25, help="clip frame rate (default 25)")
    parser.add_argument("--seconds", default="10,60", help="clip lengths, comma-separated (default 10,60)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (clips, outputs, logs)")
    opts = parser.parse_args()
    width, height = (int(v) for v in opts.size.lower().split("x"))
    lengths = [int(s) for s in opts.seconds.split(",")]
    if not os.getenv("U2NET_HOME"):
        print("note: U2NET_HOME is not set; u2video looks for weights in ~/.u2net", file=sys.stderr)

    tmp = Path(tempfile.mkdtemp(prefix="u2video-mem-"))
    print(f"u2video peak memory: {width}x{height} @ {opts.fps} fps, clips {lengths} s, --input-size "
          f"{opts.input_size}\n  ({INPUT_SIZE_NOTE})\n  temp folder: {tmp}\n")
    clips = {}
    for seconds in lengths:
        t0 = time.perf_counter()
        path = tmp / f"clip_{seconds}s.mp4"
        clips[seconds] = (path, make_clip(path, width, height, opts.fps, seconds))
        print(f"  made {path.name} in {time.perf_counter() - t0:.1f} s", flush=True)

    print(f"\n{'mode':<8} {'clip s':>6} {'frames':>6} {'wall s':>7} {'fps':>6} {'peak RSS MiB':>12}")
    peaks: dict[str, dict[int, float]] = {}
    for mode, (suffix, extra) in MODES.items():
        for seconds, (clip, frames) in clips.items():
            out = tmp / f"{mode}_{seconds}s{suffix}"
            args = [mode, str(clip), "-o", str(out), "--device", "cpu", "--input-size", str(opts.input_size),
                    "--overwrite", *extra]
            wall, rss_kib = run_cli(args, tmp / f"{mode}_{seconds}s.log")
            peaks.setdefault(mode, {})[seconds] = rss_kib / 1024
            print(f"{mode:<8} {seconds:>6} {frames:>6} {wall:>7.1f} {frames / wall:>6.1f} {rss_kib / 1024:>12.1f}",
                  flush=True)

    lo, hi = min(lengths), max(lengths)
    print()
    for mode, by_len in peaks.items():
        print(f"{mode:<8} peak({hi} s)/peak({lo} s) = {by_len[hi] / by_len[lo]:.3f}")
    if opts.keep:
        print(f"\nkept {tmp}")
    else:
        for f in tmp.iterdir():
            f.unlink()
        tmp.rmdir()


if __name__ == "__main__":
    main()
