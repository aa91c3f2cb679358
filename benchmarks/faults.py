"""Fault injection for the u2video CLI: bad inputs, signals, two writers, a full disk, mutated clips.

Every case runs the real CLI (``python -m u2video ...``) as a subprocess, on media this script
generates itself with PyAV into a temporary folder, and looks at what happened:

* the exit code and time; a hang (no exit within 60 s: killed), a crash (killed by a signal
  this script did not send, or exit 134/139), a Python traceback on stderr, or a clean error
  (non-zero exit with a ``u2video: error:`` line and no traceback);
* whether the input files changed (md5 before and after);
* every file left in the output folder, hidden ones too: each must play (videos open with PyAV
  and decode every frame without an FFmpeg error, .webm through the libvpx-vp9 decoder so the
  alpha is read; images open with OpenCV; WAV opens with PyAV; an empty file never plays);
* silent losses: a run that exits 0 with fewer frames than the original clip has, and no
  ``u2video: warning:`` line about lost/missing/damaged frames.

The groups:

1. bad inputs: empty, text, random bytes, truncated and overwritten files, odd frame sizes,
   wrong extensions, audio/subtitle/data-only files, /dev/zero, folders, the output on the
   input (also through a symlink and a hard link), a read-only output folder, bad flags; each
   through ``matte -o .mov``, ``replace -o .mp4 -b red``, ``matte -o frames/`` and ``matte -o .webm``.
2. SIGINT, SIGTERM, SIGHUP and SIGKILL part-way through a 200-frame clip (sent once the
   progress bar reaches a random frame, 10-60% in), for each output format
   (.mov, .webm, .mp4 by replace, a PNG folder, a --matte-only .mkv); after SIGKILL one more short
   run writes into the same folder, to see whether it tidies what the killed run left.
3. two runs writing the same output at once (without and with --overwrite).
4. a full disk: a small tmpfs mounted on the output folder (root on Linux), else RLIMIT_FSIZE.
5. ``--mutations`` seeded random mutations of a 30-frame clip with audio (.mkv, faststart .mp4,
   .mkv, .mp4 with the index at the end, in turn): flipped bytes, cuts, duplicated ranges,
   overwritten ranges; written through .mov, .mp4, PNGs and .webm in turn.

Every model run is cheap (``--input-size 64 --device cpu``, clips of 160x120), and two cases run
at a time: the full run (387 runs) took 36 minutes on 2 cores, --quick (30 runs) about 4.

Run (the weights must be in $U2NET_HOME; U2VIDEO_OFFLINE=1 is set for the children if unset):

    U2NET_HOME=/path/to/models python benchmarks/faults.py --quick          # a smoke test
    U2NET_HOME=/path/to/models python benchmarks/faults.py --json faults.json [--seed 1]
        [--mutations 200] [--keep DIR] [--groups 1,2,3,4,5] [--workers 2] [--only REGEX]

It prints a markdown table (one row per group), the cases that went wrong, and per output format
and signal what a stopped run left. Exit status 0 only if no case had a traceback, hang, crash,
unplayable file, modified input or silent loss.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import hashlib
import json
import multiprocessing
import os
import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import av
import av.logging
import cv2
import numpy as np

from u2video.media.demo import write_clip

CLI = [sys.executable, "-m", "u2video"]
CHEAP = ["--input-size", "64", "--device", "cpu"]  # every model run: tiny network input, on the CPU
HANG_S = 60.0  # no exit within this many seconds (from the start, or 30 s after our signal) is a hang
SIZE = (120, 160)  # (height, width) of the generated clips
RATE = 25
SHORT = 24  # frames of the bad-input corpus clips
MUTATED = 30  # frames of the clip the mutations start from
LONG = 200  # frames of the clip the signals interrupt
KILLS = 5  # SIGKILLs at random moments per output format
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}
TRACEBACK = "Traceback (most recent call last)"
LOSS_WARNING = re.compile(r"^u2video: warning:.*\b(lost|missing|damaged)\b", re.IGNORECASE)

# output mode -> (command, output name under the case's output folder, extra flags)
MODES = {
    "mov": ("matte", "out.mov", []),
    "mp4": ("replace", "out.mp4", ["-b", "red"]),
    "png": ("matte", "frames/", []),
    "webm": ("matte", "out.webm", []),
    "mkv": ("matte", "matte.mkv", ["--matte-only"]),
}
SIGNALS = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM, "SIGHUP": signal.SIGHUP, "SIGKILL": signal.SIGKILL}
# disk (bytes) that fills about 40% of the way through the 200-frame clip with audio, per format
MID_DISK = {"mov": 2048 << 10, "png": 2048 << 10, "mkv": 256 << 10, "mp4": 96 << 10, "webm": 48 << 10}
GROUPS = {1: "bad inputs", 2: "signals", 3: "two writers", 4: "full disk", 5: "mutations"}


# ---------------------------------------------------------------------------------------------
# Media generation (PyAV). Everything the cases read is made here, from code.
# ---------------------------------------------------------------------------------------------

def pattern_frames(count: int, width: int, height: int):
    """RGB frames: a gradient with a square moving across it (any size, even 1x1)."""
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([xx * 255 // max(width, 1), yy * 255 // max(height, 1), np.full_like(xx, 96)], -1)
    for i in range(count):
        img = base.astype(np.uint8).copy()
        side = max(1, min(width, height) // 3)
        x0 = (i * 3) % max(1, width - side + 1)
        img[height // 3:height // 3 + side, x0:x0 + side] = (230, 40, 40)
        yield img


def write_video(path: Path, count: int, width: int, height: int, codec: str = "libx264",
                pix_fmt: str = "yuv420p", fmt: str | None = None, audio: str | None = None,
                options: dict | None = None) -> Path:
    """Encode ``count`` pattern frames (and a tone in ``audio``'s codec) into any container."""
    with av.open(str(path), "w", format=fmt, options=options or {}) as out:
        video = out.add_stream(codec, rate=RATE)
        video.width, video.height, video.pix_fmt = width, height, pix_fmt
        if codec.startswith("libvpx"):
            video.options = {"deadline": "realtime", "cpu-used": "8"}  # fast: the clip's content doesn't matter
        sound = add_tone_stream(out, audio) if audio else None
        for i, rgb in enumerate(pattern_frames(count, width, height)):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if sound is not None:
            write_tone_frames(out, sound, count / RATE)
    return path


def add_tone_stream(out, codec: str):
    """A mono audio stream (set up before the muxer opens the encoders)."""
    stream = out.add_stream(codec, rate=48000 if codec in ("libopus", "opus") else 44100)
    stream.layout = "mono"
    return stream


def write_tone_frames(out, stream, seconds: float) -> None:
    """A 440 Hz mono tone of ``seconds`` into an audio ``stream``, in its encoder's sample format."""
    ctx = stream.codec_context
    rate = ctx.sample_rate
    fmt = ctx.codec.audio_formats[0].name if ctx.codec.audio_formats else "fltp"
    chunk = ctx.frame_size or 1024
    t = np.arange(int(seconds * rate)) / rate
    tone = 0.3 * np.sin(2 * np.pi * 440 * t)
    for k in range(0, len(tone), chunk):
        part = tone[k:k + chunk]
        data = sample_array(part, fmt)
        frame = av.AudioFrame.from_ndarray(data[None, :], format=fmt, layout="mono")
        frame.sample_rate, frame.pts = rate, k
        out.mux(stream.encode(frame))
    out.mux(stream.encode(None))


def sample_array(samples: np.ndarray, fmt: str) -> np.ndarray:
    """Samples in -1..1 as the array PyAV wants for this sample format (s16, s32, flt, dbl, planar or not)."""
    if fmt.startswith("s16"):
        return (samples * 32767).astype(np.int16)
    if fmt.startswith("s32"):
        return (samples * 2147483647).astype(np.int32)
    return samples.astype(np.float64 if fmt.startswith("dbl") else np.float32)


def write_audio_only(path: Path, codec: str, fmt: str, seconds: float = 1.0) -> Path:
    with av.open(str(path), "w", format=fmt) as out:
        write_tone_frames(out, add_tone_stream(out, codec), seconds)
    return path


def remux(src: Path, dst: Path, fmt: str, options: dict | None = None) -> Path:
    """Copy the audio and video packets of ``src`` into another container, untouched."""
    with av.open(str(src)) as inp, av.open(str(dst), "w", format=fmt, options=options or {}) as out:
        streams = {s.index: out.add_stream_from_template(s) for s in inp.streams if s.type in ("video", "audio")}
        for packet in inp.demux():
            if packet.dts is None or packet.stream.index not in streams:
                continue  # flush packets
            packet.stream = streams[packet.stream.index]
            out.mux(packet)
    return dst


def write_subtitles(folder: Path) -> tuple[Path, Path]:
    """An .srt file, and the same subtitles alone in a .mkv (a file with no video at all)."""
    srt = folder / "subs.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:01,000\nhello\n\n2\n00:00:01,000 --> 00:00:02,000\nworld\n")
    mkv = folder / "subs-only.mkv"
    with av.open(str(srt)) as inp, av.open(str(mkv), "w") as out:
        stream = out.add_stream_from_template(inp.streams[0])
        for packet in inp.demux():
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)
    return srt, mkv


def write_data_only(path: Path) -> Path:
    """An MPEG-TS holding one data stream and nothing else."""
    with av.open(str(path), "w", format="mpegts") as out:
        data = out.add_data_stream()
        for k in range(25):
            packet = av.Packet(bytes([k]) * 188)
            packet.stream, packet.pts, packet.dts = data, k * 3600, k * 3600
            out.mux(packet)
    return path


def video_times(path: Path) -> list[float]:
    """Presentation times (s) of every frame of the first video stream, decoded."""
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        return [float(f.pts * stream.time_base) for f in c.decode(stream)]


def cut(data: bytes, fraction: float) -> bytes:
    return data[:int(len(data) * fraction)]


def overwrite(data: bytes, rng: random.Random, start: int, length: int) -> bytes:
    out = bytearray(data)
    out[start:start + length] = rng.randbytes(min(length, len(data) - start))
    return bytes(out)


# ---------------------------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------------------------

@dataclasses.dataclass
class Case:
    name: str
    group: int
    args: list[str]  # after ``u2video``
    inputs: list[str]  # files (or folders) whose bytes must not change
    out_dir: str  # the folder whose files are listed and checked afterwards
    target: str | None = None  # the -o path, for counting frames
    expected: int | None = None  # frames the original clip has (silent-loss check); None: not checked
    input_times: list[float] | None = None  # the input's frame times, for the prefix check
    send: str | None = None  # signal name, sent after ``send_after`` frames of progress
    send_after: int = 0
    followup: list[str] | None = None  # a later run into the same folder (after SIGKILL)
    partner: list[str] | None = None  # a second run started at the same moment (two writers)
    disk: int | None = None  # bytes of disk the output folder gets (full disk)
    read_only: bool = False  # mount the output folder read-only
    note: str = ""


def mode_args(mode: str, inputs: list[Path], out_dir: Path) -> tuple[list[str], Path]:
    command, name, extra = MODES[mode]
    target = out_dir / name
    out = str(target) + ("/" if name.endswith("/") else "")  # a trailing slash: a folder of PNGs
    return [command, *map(str, inputs), "-o", out, *CHEAP, *extra], target


class Builder:
    """Makes the media and the cases inside the work folder."""

    def __init__(self, work: Path, seed: int, quick: bool):
        self.work, self.rng, self.quick = work, random.Random(seed), quick
        self.media = work / "media"
        self.media.mkdir(parents=True)
        self.cases: list[Case] = []

    def case_dirs(self, name: str) -> tuple[Path, Path]:
        root = self.work / "cases" / name
        (root / "in").mkdir(parents=True)
        (root / "out").mkdir()
        return root / "in", root / "out"

    def copy_in(self, src: Path, in_dir: Path, name: str | None = None) -> Path:
        """Each case reads its own copy, so one case that damages its input can't spoil the next."""
        dst = in_dir / (name or src.name)
        if src.is_dir():
            shutil.copytree(src, dst)
        else:
            shutil.copyfile(src, dst)
        return dst

    # -- the clips every group starts from --
    def make_base_media(self) -> None:
        m = self.media
        write_clip(m / "short.mp4", SHORT, SIZE, RATE, audio=True)  # moov at the end (PyAV's default)
        remux(m / "short.mp4", m / "faststart.mp4", "mp4", {"movflags": "+faststart"})
        remux(m / "short.mp4", m / "short.mkv", "matroska")
        remux(m / "short.mp4", m / "short.mov", "mov")
        write_video(m / "short.webm", SHORT, SIZE[1], SIZE[0], "libvpx-vp9", "yuv420p", "webm", "libopus")
        write_clip(m / "mutate.mp4", MUTATED, SIZE, RATE, audio=True)
        remux(m / "mutate.mp4", m / "mutate-faststart.mp4", "mp4", {"movflags": "+faststart"})
        remux(m / "mutate.mp4", m / "mutate.mkv", "matroska")
        write_clip(m / "long-audio.mp4", LONG, SIZE, RATE, audio=True)
        write_clip(m / "long-silent.mp4", LONG, SIZE, RATE, audio=False)
        write_clip(m / "tiny.mp4", 8, SIZE, RATE, audio=False)  # for the follow-up runs
        self.times = {name: video_times(m / name) for name in
                      ("short.mp4", "mutate.mp4", "long-audio.mp4", "long-silent.mp4")}
        assert len(self.times["short.mp4"]) == SHORT and len(self.times["long-audio.mp4"]) == LONG

    # -- group 1 --
    def bad_corpus(self) -> list[tuple[str, Path, int | None]]:
        """(name, file, frames the original had or None) for every bad input."""
        m, rng = self.media / "bad", self.rng
        m.mkdir()
        mp4 = (self.media / "short.mp4").read_bytes()
        fast = (self.media / "faststart.mp4").read_bytes()
        mkv = (self.media / "short.mkv").read_bytes()
        webm = (self.media / "short.webm").read_bytes()
        files: list[tuple[str, Path, int | None]] = []

        def put(name: str, data: bytes, frames: int | None) -> None:
            (m / name).write_bytes(data)
            files.append((name, m / name, frames))

        put("empty.mp4", b"", None)
        put("text.mp4", b"this is not a video\n" * 20, None)
        for ext in ("mp4", "mkv", "mov"):
            put(f"random.{ext}", rng.randbytes(64 * 1024), None)
        for pct in (30, 60, 90):
            put(f"cut{pct}.mp4", cut(mp4, pct / 100), SHORT)  # moov at the end: cut away
        put("cut50-faststart.mp4", cut(fast, 0.5), SHORT)
        put("cut90-faststart.mp4", cut(fast, 0.9), SHORT)
        put("cut50.mkv", cut(mkv, 0.5), SHORT)
        put("cut95.mkv", cut(mkv, 0.95), SHORT)
        put("cut50.webm", cut(webm, 0.5), SHORT)
        put("garbage-mid.mkv", overwrite(mkv, rng, len(mkv) * 2 // 5, len(mkv) // 10), SHORT)
        put("garbage-mid.mp4", overwrite(mp4, rng, len(mp4) * 2 // 5, len(mp4) // 10), SHORT)
        # odd sizes: 4:2:0 H.264 needs even ones, so 4:4:4 (and FFV1 for 1x1)
        for (w, h, codec, pix, name) in ((161, 121, "libx264", "yuv444p", "odd-161x121.mp4"),
                                         (2, 2, "libx264", "yuv420p", "tiny-2x2.mp4"),
                                         (1, 1, "libx264", "yuv444p", "tiny-1x1.mp4"),
                                         (1, 1, "ffv1", "yuv444p", "tiny-1x1-ffv1.mkv")):
            try:
                write_video(m / name, SHORT, w, h, codec, pix)
                files.append((name, m / name, SHORT))
            except (av.FFmpegError, ValueError) as e:
                print(f"faults: could not encode {name} ({e}); left out", file=sys.stderr)
        put("mkv-named.mp4", mkv, SHORT)
        put("mp4-named.png", mp4, SHORT)
        remux(self.media / "short.mp4", m / "clip.3gp", "3gp")
        files.append(("clip.3gp", m / "clip.3gp", SHORT))
        put("no-extension", mp4, SHORT)
        for name, codec, fmt in (("audio.m4a", "aac", "ipod"), ("audio.wav", "pcm_s16le", "wav"),
                                 ("audio.mp3", "libmp3lame", "mp3")):
            try:
                files.append((name, write_audio_only(m / name, codec, fmt), None))
            except (av.FFmpegError, ValueError) as e:
                print(f"faults: could not encode {name} ({e}); left out", file=sys.stderr)
        srt, subs = write_subtitles(m)
        files += [("subs-only.mkv", subs, None), ("subs.srt", srt, None)]
        files.append(("data-only.ts", write_data_only(m / "data-only.ts"), None))
        (m / "empty-folder").mkdir()
        (m / "text-folder").mkdir()
        (m / "text-folder" / "notes.txt").write_text("no images here\n")
        files += [("empty-folder", m / "empty-folder", None), ("text-folder", m / "text-folder", None)]
        return files

    def group1(self) -> None:
        corpus = self.bad_corpus()
        quick_names = {"text.mp4", "cut60.mp4", "cut50.mkv", "odd-161x121.mp4", "audio.wav", "no-extension"}
        good = self.media / "short.mp4"
        # a control: the harness must see a clean success on a good clip
        for mode in (["mov"] if self.quick else list(MODES)):
            self.add_simple(f"g1-control/{mode}", 1, good, mode, SHORT)
        for name, path, frames in corpus:
            if self.quick and name not in quick_names:
                continue
            modes = ["mov"] if self.quick else ["mov", "mp4", "png", "webm"]
            for mode in modes:
                self.add_simple(f"g1-{name}/{mode}", 1, path, mode, frames)
        # /dev/zero: never copied (it never ends), read where it is
        for mode in (["mov"] if self.quick else ["mov", "mp4"]):
            in_dir, out_dir = self.case_dirs(f"g1-dev-zero/{mode}")
            args, target = mode_args(mode, [Path("/dev/zero")], out_dir)
            self.cases.append(Case(f"g1-dev-zero/{mode}", 1, args, [], str(out_dir), str(target)))
        self.output_is_input(good)
        self.read_only_output(good)
        self.bad_flags(good)

    def add_simple(self, name: str, group: int, src: Path, mode: str, frames: int | None, **extra) -> Case:
        in_dir, out_dir = self.case_dirs(name)
        copy = self.copy_in(src, in_dir)
        args, target = mode_args(mode, [copy], out_dir)
        case = Case(name, group, args, [str(copy)], str(out_dir), str(target), frames, **extra)
        self.cases.append(case)
        return case

    def output_is_input(self, good: Path) -> None:
        """-o the input itself, or a symlink / hard link to it."""
        variants = [("same", "matte", ".mov", []), ("same-overwrite", "matte", ".mov", ["--overwrite"]),
                    ("symlink-overwrite", "matte", ".mov", ["--overwrite"]),
                    ("hardlink-overwrite", "matte", ".mov", ["--overwrite"]),
                    ("same-overwrite-replace", "replace", ".mp4", ["--overwrite", "-b", "red"])]
        if self.quick:
            variants = variants[1:2]
        for label, command, suffix, extra in variants:
            in_dir, _ = self.case_dirs(f"g1-output-is-input/{label}")
            src = self.copy_in(self.media / ("short.mov" if suffix == ".mov" else "short.mp4"), in_dir, "in" + suffix)
            out = src
            if label.startswith("symlink"):
                out = in_dir / ("link" + suffix)
                out.symlink_to(src.name)
            elif label.startswith("hardlink"):
                out = in_dir / ("hard" + suffix)
                os.link(src, out)
            args = [command, str(src), "-o", str(out), *CHEAP, *extra]
            self.cases.append(Case(f"g1-output-is-input/{label}", 1, args, [str(src)], str(in_dir),
                                   None, None, note="the output folder is the input folder"))

    def read_only_output(self, good: Path) -> None:
        """An output folder that can't be written: a read-only tmpfs (root ignores chmod), and /proc."""
        for mode in (["mov"] if self.quick else ["mov", "mp4", "png"]):
            case = self.add_simple(f"g1-read-only-folder/{mode}", 1, good, mode, None, read_only=True)
            case.note = "read-only tmpfs on the output folder"
        in_dir, out_dir = self.case_dirs("g1-proc-folder/mov")
        copy = self.copy_in(good, in_dir)
        args = ["matte", str(copy), "-o", "/proc/u2video-faults/out.mov", *CHEAP]
        self.cases.append(Case("g1-proc-folder/mov", 1, args, [str(copy)], str(out_dir), None, None,
                               note="an output folder under /proc (can't be made)"))

    def bad_flags(self, good: Path) -> None:
        flags = [("batch0", "mov", ["--batch", "0"]), ("smooth-1", "mov", ["--smooth", "-1"]),
                 ("crf99", "mp4", ["--crf", "99"]), ("start-nan", "mov", ["--start", "nan"]),
                 ("start5-end2", "mov", ["--start", "5", "--end", "2"]),
                 ("start-past-end", "mov", ["--start", "100"]),
                 ("preset-unknown", "mov", ["--preset", "no-such-preset"]),
                 ("model-unknown", "mov", ["--model", "no-such-model"]),
                 ("background-unknown", "mp4", ["-b", "no-such-colour"])]
        if self.quick:
            flags = flags[3:5]
        for label, mode, extra in flags:
            case = self.add_simple(f"g1-flag-{label}/{mode}", 1, good, mode, None)
            if mode == "mp4" and extra[0] == "-b":
                case.args = [a for a in case.args if a not in ("-b", "red")]
            case.args += extra  # later flags win, so these replace the defaults (e.g. -b red)

    # -- group 2 --
    def group2(self) -> None:
        tiny = self.media / "tiny.mp4"
        plan = [(mode, sig) for mode in MODES for sig in SIGNALS if sig != "SIGKILL"]
        # SIGKILL at KILLS random moments of each of these formats (the README's 20 of 20), once for the .mkv matte
        plan += [(mode, "SIGKILL") for mode in ("mov", "webm", "mp4", "png") for _ in range(KILLS)] + [("mkv", "SIGKILL")]
        if self.quick:  # each format once, each signal at least once, SIGKILL twice
            plan = [("mov", "SIGKILL"), ("webm", "SIGINT"), ("mp4", "SIGTERM"), ("png", "SIGKILL"), ("mkv", "SIGHUP")]
        seen: dict[str, int] = {}
        for mode, sig in plan:
            # audio on every other format for each signal (a checkerboard), so each signal meets both
            with_audio = (list(MODES).index(mode) + list(SIGNALS).index(sig) + seen.get(mode + sig, 0)) % 2 == 0
            clip = "long-audio.mp4" if with_audio else "long-silent.mp4"
            n = seen[mode + sig] = seen.get(mode + sig, 0) + 1
            case = self.add_simple(f"g2-{mode}-{sig}" + (f"#{n}" if sig == "SIGKILL" and mode != "mkv" else ""), 2,
                                   self.media / clip, mode, LONG, input_times=self.times[clip], send=sig,
                                   send_after=self.rng.randint(LONG // 10, LONG * 6 // 10),
                                   note="with audio" if clip == "long-audio.mp4" else "no audio")
            if sig == "SIGKILL":
                target = Path(case.target)
                folder = target if mode == "png" else target.parent  # where the killed run wrote
                case.followup = ["matte", str(tiny), "-o", str(folder / "other.mov"), *CHEAP]

    # -- group 3 --
    def group3(self) -> None:
        pairs = [("mov", []), ("mov", ["--overwrite"]), ("mp4", []), ("png", ["--overwrite"])]
        if self.quick:
            pairs = pairs[:1]
        for mode, extra in pairs:
            label = mode + ("-overwrite" if extra else "")
            case = self.add_simple(f"g3-two-writers/{label}", 3, self.media / "long-audio.mp4", mode, LONG,
                                   input_times=self.times["long-audio.mp4"])
            case.args += extra
            case.partner = list(case.args)

    # -- group 4 --
    def group4(self) -> None:
        # a disk too small for the header or first frames, and one that fills about 40% of the way
        plan = [(mode, size) for mode in MODES for size in (16 * 1024, MID_DISK[mode])]
        if self.quick:
            plan = [("mov", MID_DISK["mov"]), ("png", 16 * 1024)]
        for mode, size in plan:
            self.add_simple(f"g4-full-disk-{size // 1024}k/{mode}", 4, self.media / "long-audio.mp4", mode, LONG,
                            input_times=self.times["long-audio.mp4"], disk=size)

    # -- group 5 --
    def group5(self, count: int) -> None:
        sources = [self.media / "mutate.mkv", self.media / "mutate-faststart.mp4",
                   self.media / "mutate.mkv", self.media / "mutate.mp4"]
        kinds = ("flip", "cut", "duplicate", "garbage")
        modes = ("mov", "mp4", "png", "webm")
        folder = self.media / "mutated"
        folder.mkdir()
        for i in range(count):
            src = sources[i % len(sources)]
            data = src.read_bytes()
            kind = kinds[self.rng.randrange(len(kinds))]
            mutated, what = mutate(data, kind, self.rng)
            path = folder / f"m{i:03d}-{kind}{src.suffix}"
            path.write_bytes(mutated)
            self.add_simple(f"g5-{path.stem}/{modes[(i // 2) % len(modes)]}", 5, path, modes[(i // 2) % len(modes)],
                            MUTATED, note=f"{src.name}: {what}")


def mutate(data: bytes, kind: str, rng: random.Random) -> tuple[bytes, str]:
    """One seeded mutation of ``data``; returns it and a short description."""
    n = len(data)
    out = bytearray(data)
    if kind == "flip":
        count = rng.randint(1, 50)
        for _ in range(count):
            pos = rng.randrange(n)
            out[pos] ^= rng.randint(1, 255)
        return bytes(out), f"{count} bytes flipped"
    if kind == "cut":
        at = rng.randrange(1, n)
        return bytes(out[:at]), f"cut at {at} of {n} bytes"
    if kind == "duplicate":
        start = rng.randrange(n)
        length = rng.randint(1, min(4096, n - start))
        at = rng.randrange(n)
        return bytes(out[:at] + out[start:start + length] + out[at:]), f"{length} bytes from {start} copied to {at}"
    start = rng.randrange(n)
    length = rng.randint(1, min(4096, n - start))
    out[start:start + length] = rng.randbytes(length)
    return bytes(out), f"{length} random bytes at {start}"


# ---------------------------------------------------------------------------------------------
# Running one case (in a worker process)
# ---------------------------------------------------------------------------------------------

def child_env() -> dict:
    env = dict(os.environ)
    env.setdefault("U2VIDEO_OFFLINE", "1")  # never download weights in the middle of a fault run
    env.pop("U2VIDEO_DEBUG", None)  # tracebacks must be the CLI's own, not asked for
    env["COLUMNS"] = "100"
    return env


class Run:
    """One CLI process: its output is read as it comes, so progress can trigger a signal."""

    def __init__(self, args: list[str], preexec=None):
        self.args = args
        self.start = time.monotonic()
        self.proc = subprocess.Popen(CLI + args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=child_env(), preexec_fn=preexec)
        self._err: list[bytes] = []
        self._out: list[bytes] = []
        self._readers = [threading.Thread(target=self._pump, args=(self.proc.stderr, self._err), daemon=True),
                         threading.Thread(target=self._pump, args=(self.proc.stdout, self._out), daemon=True)]
        for reader in self._readers:
            reader.start()
        self.sent: str | None = None
        self.sent_at: float | None = None
        self.sent_progress: int | None = None
        self.hang = False

    @staticmethod
    def _pump(pipe, sink: list[bytes]) -> None:
        while chunk := pipe.read1(65536):
            sink.append(chunk)

    @property
    def stderr(self) -> str:
        return b"".join(self._err).decode("utf-8", "replace")

    def progress(self) -> int:
        """Frames the progress bar last reported (tqdm writes ``n/total [`` or ``nframe [``)."""
        found = re.findall(r"(\d+)(?:/\d+ |frame )\[", self.stderr)
        return int(found[-1]) if found else 0

    def signal_after(self, name: str, frames: int) -> None:
        """Send ``name`` once the bar shows ``frames`` (or after 20 s without getting there)."""
        give_up = time.monotonic() + 20
        while self.proc.poll() is None and self.progress() < frames and time.monotonic() < give_up:
            time.sleep(0.02)
        if self.proc.poll() is None:
            self.sent_progress = self.progress()
            os.kill(self.proc.pid, SIGNALS[name])
            self.sent, self.sent_at = name, time.monotonic()

    def wait(self) -> None:
        deadline = self.start + HANG_S
        if self.sent_at is not None:
            deadline = max(deadline, self.sent_at + 30)
        try:
            self.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.hang = True
            self.proc.kill()
            self.proc.wait()
        self.duration = time.monotonic() - self.start
        for reader in self._readers:
            reader.join(timeout=5)

    def record(self) -> dict:
        err = self.stderr
        lines = [line.strip() for line in re.split(r"[\r\n]+", err) if line.strip()]
        rc = self.proc.returncode
        traceback = TRACEBACK in err
        ours = -SIGNALS[self.sent] if self.sent else None
        crash = not self.hang and (rc in (134, 139) or (rc < 0 and rc != ours))
        clean = (not self.hang and rc > 0 and not traceback
                 and any(line.startswith("u2video: error:") for line in lines))
        return {"args": self.args, "rc": rc, "duration_s": round(self.duration, 2), "hang": self.hang,
                "crash": crash, "traceback": traceback, "ok": rc == 0 and not self.hang,
                "clean_error": clean, "signal": self.sent, "signal_at_progress": self.sent_progress,
                "warned_loss": any(LOSS_WARNING.match(line) for line in lines),
                "message": key_line(lines, traceback), "u2video_lines": [l for l in lines if l.startswith("u2video:")],
                "stderr_tail": err[-3000:]}


def key_line(lines: list[str], traceback: bool) -> str:
    """The first useful stderr line: the exception after a traceback, else u2video's error/warning."""
    lines = [line for line in lines if not re.match(r"^frames:", line)]
    if traceback:
        after = lines[max(i for i, line in enumerate(lines) if TRACEBACK in line) + 1:]
        errors = [line for line in after if re.match(r"^[\w.]+(Error|Exception|Interrupt|Exit)\b", line)]
        return (errors or after or ["(traceback)"])[-1][:300]
    for prefix in ("u2video: error:", "u2video: warning:", "u2video: interrupted"):
        for line in lines:
            if line.startswith(prefix):
                return line[:300]
    rest = [line for line in lines if not line.startswith("u2video: ")]
    return (rest or lines or [""])[-1][:300]


def md5s(paths: list[str]) -> dict[str, str]:
    result = {}
    for path in map(Path, paths):
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for f in files:
            result[str(f)] = hashlib.md5(f.read_bytes()).hexdigest() if f.exists() else "(missing)"
    return result


def check_file(path: Path) -> dict:
    """Does it play? For videos also: frames decoded, their times (s), the pixel format.

    Every packet of every audio and video stream is decoded, going on past errors, so a damaged
    stretch still leaves the count of frames that do decode; any FFmpeg error (raised, or only
    logged, as decoders conceal most) makes the file unplayable, and says which stream it was in."""
    info = {"size": path.stat().st_size, "plays": False, "frames": None, "error": None}
    if re.fullmatch(r"\.sequence\.u2video-\w+\.run", path.name):  # a PNG run's lock and note: text, not media
        info.update(plays=True, marker=True)
        return info
    if info["size"] == 0:
        info["error"] = "empty file"
        return info
    if path.suffix.lower() in IMAGE_SUFFIXES:
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        info["plays"] = image is not None
        info["error"] = None if image is not None else "OpenCV can't read it"
        info["frames"] = 1 if image is not None else 0
        return info
    times: list[float] = []
    problems: list[str] = []
    video = None
    with av.logging.Capture(local=False) as logs:  # FFmpeg's decode errors are mostly logged, not raised
        try:
            with av.open(str(path)) as c:
                wanted = [s for s in c.streams if s.type in ("video", "audio")]
                if not wanted:
                    info["error"] = "no audio or video stream"
                    return info
                video = c.streams.video[0] if c.streams.video else None
                decoders = {s.index: s.codec_context for s in wanted}
                info["components"] = c.format.name.split(",") + [s.codec_context.name for s in wanted] + [
                    "libvpx-vp9", "libvpx", "libdav1d"]
                for s in wanted:
                    if s.type == "video" and s.codec_context.name in ("vp9", "vp8") and path.suffix.lower() == ".webm":
                        # FFmpeg's native VP9 decoder drops the alpha; libvpx reads it from the side data
                        decoders[s.index] = av.CodecContext.create(
                            "libvpx-vp9" if s.codec_context.name == "vp9" else "libvpx", "r")
                for packet in c.demux(*wanted):
                    try:
                        frames = decoders[packet.stream.index].decode(packet)
                    except av.FFmpegError as e:
                        problems.append(f"{packet.stream.type}: {e}")
                        continue
                    for frame in frames:
                        if video is not None and packet.stream.index == video.index:
                            times.append(float(frame.pts * video.time_base) if frame.pts is not None else float("nan"))
                            info["pix_fmt"] = frame.format.name
        except (av.FFmpegError, OSError, ValueError) as e:
            problems.append(f"container: {type(e).__name__}: {e}")
    # only what this file's demuxer and decoders said (a log line from another file can arrive late)
    ours = set(info.pop("components", ()))
    problems += [f"log [{name}]: {message.strip()}" for level, name, message in logs
                 if level <= av.logging.ERROR and (not name or set(name.split(",")) & ours)]
    info["frames"] = len(times) if video is not None or times else None
    info["times"] = times
    if problems:
        info["error"] = f"{len(problems)} FFmpeg error(s), first {problems[0]}"[:300]
    elif video is not None and not times:
        info["error"] = "no frame decoded"
    else:
        info["plays"] = True
    return info


def list_files(folder: Path, input_times: list[float] | None, not_from_input: str | None = None) -> list[dict]:
    """Every file under ``folder`` (hidden ones too), each checked; videos also for being a
    prefix of the input (no more frames, same times as its first N), except ``not_from_input``."""
    found = []
    if not folder.is_dir():
        return found
    for root, _, names in os.walk(folder):
        for name in sorted(names):
            path = Path(root) / name
            if not path.is_file():
                continue
            info = check_file(path)
            info["path"] = str(path.relative_to(folder))
            times = info.pop("times", None)
            if input_times is not None and times and info["frames"] and name != not_from_input:
                info["prefix"] = len(times) <= len(input_times) and all(
                    abs(a - b) <= 0.002 for a, b in zip(times, input_times))  # 2 ms: a 1/1000 time base
                if not info["prefix"]:
                    info["prefix_detail"] = prefix_detail(times, input_times)
            found.append(info)
    return found


def prefix_detail(times: list[float], input_times: list[float]) -> str:
    """Why ``times`` are not the first N of ``input_times``: too many, or the first that differs."""
    if len(times) > len(input_times):
        return f"{len(times)} frames, the input has {len(input_times)}"
    i = next(i for i, (a, b) in enumerate(zip(times, input_times)) if abs(a - b) > 0.002)
    return f"frame {i} of {len(times)} at {times[i]:.3f} s, the input's at {input_times[i]:.3f} s"


def frames_written(target: Path | None) -> int | None:
    """Frames in the run's output: decoded from a video, counted for a PNG folder."""
    if target is None:
        return None
    if target.suffix == "" or target.is_dir():
        return len([p for p in target.glob("*.png") if re.fullmatch(r"\d+\.png", p.name)]) if target.is_dir() else 0
    if not target.exists():
        return 0
    return check_file(target)["frames"] or 0


def mount_tmpfs(folder: Path, size: int, read_only: bool = False) -> bool:
    options = f"size={size}" + (",ro" if read_only else "")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "u2video-faults", str(folder)],
                          capture_output=True)
    return done.returncode == 0


def unmount(folder: Path) -> None:
    subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def fsize_limit(size: int):
    """For the child only: files can't grow past ``size`` bytes (EFBIG; Python ignores SIGXFSZ)."""
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
    return apply


def execute(case: Case, keep: bool) -> list[dict]:
    """Run one case; returns one record per writer (two for the two-writer cases)."""
    av.logging.set_level(av.logging.ERROR)
    out_dir = Path(case.out_dir)
    before = md5s(case.inputs)
    mounted, preexec, disk_method = False, None, None
    if case.read_only:
        mounted = mount_tmpfs(out_dir, 1 << 20, read_only=True)
        if not mounted:
            return [base_record(case) | {"skipped": "can't mount a read-only tmpfs (not root?)"}]
    if case.disk:
        mounted = mount_tmpfs(out_dir, case.disk)
        disk_method = f"tmpfs {case.disk // 1024} KiB" if mounted else f"RLIMIT_FSIZE {case.disk // 1024} KiB"
        preexec = None if mounted else fsize_limit(case.disk)
    try:
        runs = [Run(case.args, preexec)]
        if case.partner:
            runs.append(Run(case.partner, preexec))  # the same moment, the same output
        if case.send:
            runs[0].signal_after(case.send, case.send_after)
        for run in runs:
            run.wait()
        records = [base_record(case) | run.record() for run in runs]
        if case.partner:
            records[1]["name"] += "#2"
        after = md5s(case.inputs)
        changed = [path for path in before if after.get(path) != before[path]]
        files = list_files(out_dir, case.input_times)
        written = frames_written(Path(case.target)) if case.target else None
        first = records[0]
        first.update(inputs_changed=changed, files=files, frames_out=written, disk_method=disk_method)
        followup_files = None
        if case.followup:  # a later run into the folder the killed one wrote in
            later = Run(case.followup)
            later.wait()
            first["followup"] = later.record()
            followup_files = list_files(out_dir, case.input_times, not_from_input=Path(case.followup[3]).name)
            first["followup"]["files"] = followup_files
            for flag in ("traceback", "hang", "crash"):
                first[flag] = first[flag] or first["followup"][flag]
        for record in records:
            judge(record, case, written, files if record is first else [], followup_files if record is first else None)
        if keep and mounted:  # the mount goes away below: keep a copy of what was in it
            shutil.copytree(out_dir, out_dir.parent / "out-contents", dirs_exist_ok=True)
        return records
    except Exception as e:  # a fault of the harness, not of u2video: reported apart
        return [base_record(case) | {"harness_error": f"{type(e).__name__}: {e}"}]
    finally:
        if mounted:
            unmount(out_dir)


def base_record(case: Case) -> dict:
    return {"name": case.name, "group": case.group, "note": case.note, "expected_frames": case.expected,
            "target": case.target}


def judge(record: dict, case: Case, written: int | None, files: list[dict], followup_files: list[dict] | None) -> None:
    """The bad counts of one record. After a SIGKILL, nothing can run in the killed process: what
    it left is the hidden temporary file, which the next run into the folder finishes or removes
    (README, "Safety"), so what counts there is what is left after that run."""
    if followup_files is not None:
        unplayable = [f"(after the next run) {f['path']}" for f in followup_files if not f["plays"]]
    else:
        unplayable = [f["path"] for f in files if not f["plays"]]
    record["unplayable"] = unplayable
    record["inputs_changed"] = record.get("inputs_changed", [])
    # A run that says it succeeded but wrote fewer frames than the clip has, without a warning.
    record["silent_loss"] = bool(
        record["ok"] and case.expected is not None and written is not None and written < case.expected
        and not record["warned_loss"])


# ---------------------------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------------------------

COLUMNS = ["cases", "ok", "clean errors", "other exits", "tracebacks", "hangs", "crashes",
           "unplayable files left", "inputs modified", "silent losses"]
BAD = ["tracebacks", "hangs", "crashes", "unplayable files left", "inputs modified", "silent losses"]


def counts(records: list[dict]) -> dict[str, int]:
    ran = [r for r in records if "rc" in r]
    return {
        "cases": len(ran),
        "ok": sum(r["ok"] for r in ran),
        "clean errors": sum(r["clean_error"] for r in ran),
        "other exits": sum(not r["ok"] and not r["clean_error"] and not r["traceback"] and not r["hang"]
                           and not r["crash"] for r in ran),
        "tracebacks": sum(r["traceback"] for r in ran),
        "hangs": sum(r["hang"] for r in ran),
        "crashes": sum(r["crash"] for r in ran),
        "unplayable files left": sum(len(r["unplayable"]) for r in ran),
        "inputs modified": sum(bool(r["inputs_changed"]) for r in ran),
        "silent losses": sum(r["silent_loss"] for r in ran),
    }


def table(records: list[dict], disk_methods: set[str]) -> tuple[str, dict]:
    rows = ["| group | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for group, label in GROUPS.items():
        mine = [r for r in records if r["group"] == group]
        if not mine:
            continue
        if group == 4 and disk_methods:
            label += " (" + ", ".join(sorted(disk_methods)) + ")"
        c = counts(mine)
        rows.append(f"| {group} {label} | " + " | ".join(str(c[k]) for k in COLUMNS) + " |")
    total = counts(records)
    rows.append("| **total** | " + " | ".join(f"**{total[k]}**" for k in COLUMNS) + " |")
    return "\n".join(rows), total


def problems(records: list[dict]) -> list[str]:
    lines = []
    for r in records:
        if "harness_error" in r:
            lines.append(f"- {r['name']}: HARNESS ERROR (not u2video's) {r['harness_error']}")
            continue
        if "rc" not in r:
            continue
        what = [k for k, flag in (("traceback", r["traceback"]), ("hang", r["hang"]), ("crash", r["crash"]),
                                  ("silent loss", r["silent_loss"])) if flag]
        if r["unplayable"]:
            what.append("unplayable: " + ", ".join(r["unplayable"][:4]) + (" ..." if len(r["unplayable"]) > 4 else ""))
        if r["inputs_changed"]:
            what.append("input modified")
        if r["silent_loss"]:
            what[what.index("silent loss")] = f"silent loss ({r['frames_out']} of {r['expected_frames']} frames)"
        message = r["message"]
        if r["hang"]:
            message = f"no exit within {HANG_S:.0f} s, killed; last stderr line: {message}"
        elif r["signal"] and r["rc"] == -SIGNALS[r["signal"]]:
            message = f"killed by our {r['signal']}"
        if r.get("followup") and (r["followup"]["traceback"] or r["followup"]["crash"] or r["followup"]["hang"]):
            message += f" / follow-up: {r['followup']['message']}"
        if what:
            lines.append(f"- {r['name']} (rc {r['rc']}): {'; '.join(what)} — {message}")
    # not a bad count, but worth a line: both writers said they wrote the output without --overwrite
    for r in records:
        if r["group"] == 3 and r["name"].endswith("#2") and "--overwrite" not in r["args"]:
            first = next(x for x in records if x["name"] == r["name"][:-2])
            if first.get("ok") and r.get("ok"):
                lines.append(f"- {first['name']}: note: both writers exited 0 without --overwrite (one replaced the other)")
    return lines


def unplayable_causes(records: list[dict]) -> dict[str, int]:
    """Unplayable files counted by what failed: the audio or video stream, the container, empty..."""
    causes: dict[str, int] = {}
    for r in records:
        files = r.get("files", [])
        followup = r.get("followup")
        for f in (followup["files"] if followup else files):  # as judge() counts
            if f["plays"]:
                continue
            match = re.search(r"first (audio|video|container|log \[\w+\])", f["error"] or "")
            cause = (match.group(1) + " decode errors") if match else (f["error"] or "?")
            causes[cause] = causes.get(cause, 0) + 1
    return dict(sorted(causes.items(), key=lambda kv: -kv[1]))


def describe_left(files: list[dict]) -> str:
    """What a run left, PNG folders summed up: 'name: N fr, plays, prefix'."""
    parts, pngs = [], {}
    for f in files:
        folder, name = os.path.split(f["path"])
        if re.fullmatch(r"\d+\.png", name):
            pngs.setdefault(folder, []).append((int(name[:-4]), f))
        elif f.get("marker"):
            parts.append(f"{f['path']}: the run's marker")
        else:
            plays = "plays" if f["plays"] else f"UNPLAYABLE ({f['error']})"
            frames = f" {f['frames']} fr," if f["frames"] is not None else ""
            prefix = {True: ", prefix", False: f", NOT a prefix ({f.get('prefix_detail')})"}.get(f.get("prefix"), "")
            parts.append(f"{f['path']}:{frames} {plays}{prefix}")
    for folder, numbered in pngs.items():
        numbers = sorted(n for n, _ in numbered)
        good = all(f["plays"] for _, f in numbered)
        prefix = numbers == list(range(len(numbers))) and len(numbers) <= LONG
        parts.append(f"{folder or '.'}/: {len(numbers)} PNGs, {'all read' if good else 'SOME UNREADABLE'}"
                     f"{', prefix' if prefix else ', NOT a prefix'}")
    return "; ".join(parts) or "nothing"


def signal_table(records: list[dict]) -> str:
    rows = ["| format | signal | sent at frame | exit | left | later run (after SIGKILL) |", "|---|---|---|---|---|---|"]
    for r in records:
        if r["group"] != 2 or "rc" not in r:
            continue
        mode, sig = r["name"][3:].rsplit("-", 1)
        sent = r["signal_at_progress"] if r["signal"] else "not sent (finished first)"
        later = ""
        if r.get("followup"):
            f = r["followup"]
            said = "; ".join(line for line in f["u2video_lines"] if re.match(r"u2video: (warning|error):", line))
            later = f"exit {f['rc']}: {said or '(no warning)'} → {describe_left(f['files'])}"
        rows.append(f"| {mode} | {sig} | {sent} | {r['rc']} | {describe_left(r['files'])} | {later} |")
    return "\n".join(rows)


def kill_verdict(r: dict) -> tuple[bool, str, str]:
    """For a SIGKILL case: (ok, what the kill left, what the next run made of it). OK: every file
    left plays and its frames are the input's first N (the PNGs: numbered from 0, all readable),
    and after the next run no hidden temporary file is left."""
    def hidden(files: list[dict]) -> list[dict]:
        return [f for f in files if os.path.basename(f["path"]).startswith(".")]

    after = r["followup"]["files"]
    ours = [f for f in after if os.path.basename(f["path"]) != "other.mov"]
    ok = (not hidden(after) and all(f["plays"] for f in ours)
          and all(f.get("prefix", True) for f in ours if not re.fullmatch(r"\d+\.png", os.path.basename(f["path"]))))
    numbers = sorted(int(os.path.basename(f["path"])[:-4]) for f in ours if re.fullmatch(r"\d+\.png", os.path.basename(f["path"])))
    ok = ok and numbers == list(range(len(numbers)))
    return ok, describe_left(r["files"]), describe_left(ours)


def kill_table(records: list[dict]) -> tuple[str, int, int]:
    rows = ["| case | killed at frame | left by the kill (hidden temporary file) | after the next run into the folder | ok |",
            "|---|---|---|---|---|"]
    good = total = 0
    for r in records:
        if r["group"] != 2 or r.get("signal") != "SIGKILL" or not r.get("followup"):
            continue
        ok, left, after = kill_verdict(r)
        good, total = good + ok, total + 1
        rows.append(f"| {r['name'][3:]} | {r['signal_at_progress']} | {left} | {after} | {'yes' if ok else 'NO'} |")
    return "\n".join(rows), good, total


# ---------------------------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a handful of cases per group (a smoke test)")
    parser.add_argument("--seed", type=int, default=1, help="seeds the corpus, the mutations and the signal frames")
    parser.add_argument("--mutations", type=int, default=200, help="mutated clips in group 5 (--quick: at most 8)")
    parser.add_argument("--json", type=Path, help="write every case's record here")
    parser.add_argument("--keep", type=Path, help="make the work folder here and keep it")
    parser.add_argument("--groups", default="1,2,3,4,5", help="which groups to run, e.g. 2,3")
    parser.add_argument("--workers", type=int, default=2, help="cases run at once")
    parser.add_argument("--only", help="run only the cases whose name matches this regular expression; every "
                        "case is still built, so each one's mutation or signal frame is the full run's")
    args = parser.parse_args()
    groups = {int(g) for g in args.groups.split(",")}

    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        if any(args.keep.iterdir()):
            parser.error(f"--keep {args.keep} is not empty")
        work = args.keep.resolve()
    else:
        work = Path(tempfile.mkdtemp(prefix="u2video-faults-"))
    started = time.monotonic()
    try:
        builder = Builder(work, args.seed, args.quick)
        builder.make_base_media()
        for group in sorted(groups):
            if group == 5:
                builder.group5(min(args.mutations, 8) if args.quick else args.mutations)
            else:
                getattr(builder, f"group{group}")()
        cases = [c for c in builder.cases if not args.only or re.search(args.only, c.name)]
        # The two-writer cases run two processes: alone, so that no more than `workers` run at once.
        pooled = [c for c in cases if not c.partner]
        alone = [c for c in cases if c.partner]
        print(f"faults: {len(cases)} cases in {work} (seed {args.seed})", file=sys.stderr)
        records = run_all(pooled, alone, args.workers, keep=bool(args.keep))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    elapsed = time.monotonic() - started

    records.sort(key=lambda r: (r["group"], r["name"]))
    disk_methods = {r["disk_method"].split(" ")[0] for r in records if r.get("disk_method")}
    text, total = table(records, disk_methods)
    out = [f"u2video fault injection: {len(records)} runs, seed {args.seed}, {elapsed / 60:.1f} min"
           + (" (--quick)" if args.quick else ""), "", text, ""]
    causes = unplayable_causes(records)
    if causes:
        out += ["Unplayable files by cause: " + ", ".join(f"{k} {v}" for k, v in causes.items()), ""]
    listed = problems(records)
    out += ["Cases with a traceback, hang, crash, unplayable file, modified input or silent loss:", ""]
    out += listed or ["- none"]
    if any(r["group"] == 2 for r in records):
        out += ["", "Signals: what a stopped run left (prefix: its frames are the input's first N, same times)", "",
                signal_table(records)]
        kills, good, total_kills = kill_table(records)
        if total_kills:
            out += ["", f"SIGKILL: {good} of {total_kills} left files that play up to where the run was killed "
                    "(its frames the input's first N), finished by the next run into the folder", "", kills]
    skipped = [f"- {r['name']}: {r['skipped']}" for r in records if "skipped" in r]
    if skipped:
        out += ["", "Skipped:", *skipped]
    print("\n".join(out))
    if args.json:
        args.json.write_text(json.dumps({"seed": args.seed, "quick": args.quick, "minutes": round(elapsed / 60, 2),
                                         "totals": total, "records": records}, indent=1, default=str))
    bad = sum(total[k] for k in BAD) + sum("harness_error" in r for r in records)
    return 0 if bad == 0 else 1


def run_all(pooled: list[Case], alone: list[Case], workers: int, keep: bool) -> list[dict]:
    records: list[dict] = []
    total, done = len(pooled) + len(alone), 0

    def report(recs: list[dict]) -> None:
        nonlocal done
        done += 1
        for r in recs:
            records.append(r)
            status = ("HARNESS ERROR " + r["harness_error"]) if "harness_error" in r else (
                r.get("skipped") or f"rc={r['rc']} {r['duration_s']}s " + ", ".join(
                    k for k in ("ok", "clean_error", "traceback", "hang", "crash", "silent_loss") if r.get(k))
                + (f" unplayable={len(r['unplayable'])}" if r.get("unplayable") else ""))
            print(f"[{done}/{total}] {r['name']}: {status}", file=sys.stderr, flush=True)

    # spawn: clean worker processes (no inherited threads or FFmpeg state from the generator)
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        for future in concurrent.futures.as_completed([pool.submit(execute, c, keep) for c in pooled]):
            report(future.result())
        for case in alone:
            report(pool.submit(execute, case, keep).result())
    return records


if __name__ == "__main__":
    sys.exit(main())
