"""Copying packets from one file into another without decoding them (PyAV's remux recipe)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import av


def remux(source: Path, target: Path, container: str | None = None, options: Mapping[str, str] | None = None,
          until: float | None = None) -> int:
    """Copy every audio and video packet of ``source`` into a new file ``target``, in the muxer's
    normal layout (for MOV/MP4 one index, at the front with ``movflags=+faststart``), keeping
    timestamps and codec tags. ``container``: the muxer (None: from ``target``'s extension);
    ``until``: leave out packets that start at or after this many seconds. Returns the number
    of video packets copied. Raises av.FFmpegError or OSError."""
    video_packets = 0
    with av.open(str(source), metadata_errors="replace") as inp, av.open(str(target), "w", format=container, options=dict(options or {})) as out:
        streams = [s for s in inp.streams if s.type in ("video", "audio")]
        copies = {}
        for stream in streams:
            copy = out.add_stream_from_template(stream)
            # the template leaves the tag to the muxer, which would call ProRes 4444 'apch' (422 HQ)
            # and HEVC 'hev1' (which Apple players refuse)
            copy.codec_context.codec_tag = stream.codec_context.codec_tag
            copies[stream.index] = copy
        for packet in inp.demux(streams):
            if not packet.size:
                continue  # the demuxer's empty end-of-stream packets
            if until is not None and packet.pts is not None and packet.pts * packet.time_base >= until:
                continue
            video_packets += packet.stream.type == "video"
            packet.stream = copies[packet.stream.index]
            out.mux(packet)
    return video_packets


def plays(path: Path) -> bool:
    """Whether ``path`` opens and its first video frame decodes."""
    try:
        with av.open(str(path), metadata_errors="replace") as container:
            return next(container.decode(video=0), None) is not None
    except (av.FFmpegError, OSError, IndexError, ValueError):
        return False


def complete_until(path: Path) -> float | None:
    """Where the frames at the end of an unfinished video stop being whole, in seconds (None:
    they are whole to the end). A run stopped by a full disk or a kill can leave a last frame cut
    short, and a codec with B-frames stores a frame ahead of the ones shown before it, so the
    last frame or two can stand after a gap: both are cut. Only the packets from the last
    keyframe on are decoded."""
    try:
        with av.open(str(path), metadata_errors="replace") as container:
            stream = container.streams.video[0]
            times: list[float] = []
            tail: list[av.Packet] = []
            for packet in container.demux(stream):
                if not packet.size:
                    continue
                if packet.pts is not None:
                    times.append(float(packet.pts * packet.time_base))
                if packet.is_keyframe:
                    tail = []
                tail.append(packet)
            cuts = []
            for packet in tail:
                try:
                    packet.decode()
                except av.FFmpegError:
                    if packet.pts is not None:
                        cuts.append(float(packet.pts * packet.time_base))
    except (av.FFmpegError, OSError, IndexError, ValueError):
        return None
    times.sort()
    if len(times) >= 3:
        steps = sorted(b - a for a, b in zip(times, times[1:]))
        step = steps[len(steps) // 2]
        last = times[-6:]  # B-frame runs are short (x264: at most 3 by default)
        cuts += [a + step / 2 for a, b in zip(last, last[1:]) if b - a > 1.5 * step]
    return min(cuts) if cuts else None
