"""Which audio streams of a file are damaged, so they are re-encoded rather than copied.

Some damage raises when decoded; some decodes to good-looking audio and is only logged (an AAC
"Reserved bit set.", a "channel element 3.11 is not allocated" after the last channel's data).
A copied packet of that second kind passes every check that does not read FFmpeg's log, yet a
player logs the same error on the output. Reading the log, though, means switching FFmpeg's
logging on, and while it is on every codec thread in the process calls into Python: a threaded
decoder being freed meanwhile deadlocks (PyAV #751). So the scan runs in a child process of its
own, where nothing else decodes: ``python -m u2video.media.audio_scan FILE INDEX... [--start S]
[--end S]`` prints the damaged streams' indexes as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import av.logging

from .source import packets_past_errors

# errors decoders would conceal and only log are returned instead ("explode"), so a damaged
# packet raises where the decoder allows it
STRICT = {"err_detect": "crccheck+bitstream+buffer+explode"}
_SCAN_TIMEOUT = 900  # seconds: a scan reads the file once; audio decodes ~500x faster than real time


def damaged_audio_streams(source: Path, indexes: list[int], start: float = 0.0,
                          end: float | None = None) -> set[int]:
    """Indexes (container stream indexes) among ``indexes`` with a packet between ``start`` and
    ``end`` seconds that fails to decode or makes the decoder log an error. Runs the scan in a
    child process (see the module's docstring); if the child can't tell, every stream counts as
    damaged, which costs a re-encode and never a bad copy."""
    if not indexes:
        return set()
    command = [sys.executable, "-m", "u2video.media.audio_scan", str(source), *map(str, indexes),
               "--start", repr(start)] + ([] if end is None else ["--end", repr(end)])
    package_root = str(Path(__file__).resolve().parents[2])  # importable there, installed or not
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=_SCAN_TIMEOUT, env=env,
                              stdin=subprocess.DEVNULL)
        return set(json.loads(done.stdout)) & set(indexes) if done.returncode == 0 else set(indexes)
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return set(indexes)


def scan(source: Path, indexes: list[int], start: float = 0.0, end: float | None = None) -> set[int]:
    """The child's work: decode each chosen stream's packets with FFmpeg's error logging on.
    Call only where no other thread uses PyAV (see the module's docstring)."""
    damaged: set[int] = set()
    av.logging.set_level(av.logging.ERROR)
    av.logging.set_skip_repeated(False)  # the same message from two packets is two errors
    with av.open(str(source), metadata_errors="replace") as container:
        wanted = [container.streams[i] for i in indexes]
        checks = {s.index: checker(s) for s in wanted}
        if start:
            container.seek(int(start * av.time_base), backward=True)
        for packet in packets_past_errors(container, wanted):
            check = checks.get(packet.stream.index)
            if check is None or packet.size == 0:
                continue
            if end is not None and packet.pts is not None and packet.time_base is not None \
                    and packet.pts * packet.time_base >= Fraction(end):
                del checks[packet.stream.index]  # past the range: this stream is done
            elif not packet_in_range(packet, start, end):
                continue  # before the range (the seek lands on a keyframe before it)
            else:
                with av.logging.Capture(local=False) as logs:
                    clean = decodes_cleanly(check, packet)
                if clean and not any(level <= av.logging.ERROR for level, _, _ in logs):
                    continue
                damaged.add(packet.stream.index)
                del checks[packet.stream.index]
            if not checks:
                break
    return damaged


def packet_in_range(packet: av.Packet, start: float, end: float | None) -> bool:
    """Whether an audio packet belongs to a run trimmed to ``start``..``end`` seconds (any of it
    after ``start``, its start before ``end``): what ``AudioCarrier`` carries, so the scan checks
    exactly that. Untrimmed runs and untimed packets take every packet."""
    if (start <= 0 and end is None) or packet.pts is None or packet.time_base is None:
        return True
    t = float(packet.pts * packet.time_base)
    return (end is None or t < end) and t + float((packet.duration or 0) * packet.time_base) > start


def checker(stream: av.audio.stream.AudioStream) -> av.CodecContext:
    """A decoder for ``stream``'s packets, set up as a player's decoder of the output would be
    (same extradata, rate, layout), that raises on every error the decoder can report."""
    source = stream.codec_context
    decoder = av.CodecContext.create(source.name, "r")
    decoder.extradata = source.extradata
    decoder.sample_rate = source.sample_rate
    decoder.layout = source.layout
    decoder.format = source.format
    decoder.options = dict(STRICT)
    return decoder


def decodes_cleanly(decoder: av.CodecContext, packet: av.Packet) -> bool:
    """Whether ``packet`` decodes without raising (errors the decoder only logs are not seen:
    see ``scan``)."""
    try:
        decoder.decode(packet)
    except av.FFmpegError:
        return False
    return True


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m u2video.media.audio_scan", description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("indexes", type=int, nargs="+", help="container stream indexes of audio streams")
    parser.add_argument("--start", type=float, default=0.0)
    parser.add_argument("--end", type=float)
    args = parser.parse_args()
    print(json.dumps(sorted(scan(args.source, args.indexes, args.start, args.end))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
