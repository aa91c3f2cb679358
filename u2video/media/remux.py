"""Copying packets from one file into another without decoding them (PyAV's remux recipe)."""

from __future__ import annotations

import os
import struct
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


def trim_to_whole(path: Path) -> bool:
    """Cut a MOV/MP4 or Matroska file that stopped mid-write (a full disk, a kill) back to its
    last whole fragment or cluster, in place (no room is needed for a copy). Returns whether
    it changed anything; files of other layouts are left as they are."""
    with open(path, "r+b") as f:
        head = f.read(8)
        f.seek(0, 2)
        size = f.tell()
        if head[4:8] in (b"ftyp", b"moov", b"wide", b"free", b"mdat"):
            end, segment = _whole_mp4(f, size), None
        elif head[:4] == b"\x1a\x45\xdf\xa3":  # EBML
            end, segment = _whole_matroska(f, size)
        else:
            return False
        if end is None:
            return False
        changed = end < size
        if segment is not None:  # a Segment whose size says it goes on past the end: a demuxer
            at, width, start, length = segment  # would report the file cut short, so say where it ends
            if start + length > end:
                f.seek(at)
                f.write(((1 << 7 * width) | (end - start)).to_bytes(width, "big"))
                changed = True
    if end < size:
        os.truncate(path, end)
    return changed


def _whole_mp4(f, size: int) -> int | None:
    """End of the last top-level box that is whole, a fragment's moof only with its mdat."""
    at, whole, moof_at = 0, 0, None
    while at + 8 <= size:
        f.seek(at)
        header = f.read(16)
        length, kind = struct.unpack(">I4s", header[:8])
        if length == 1 and len(header) == 16:
            length = struct.unpack(">Q", header[8:16])[0]
        elif length == 0:
            length = size - at  # to the end of the file
        if length < 8 or at + length > size:
            break
        at += length
        if kind == b"moof":
            moof_at = at - length
        elif kind == b"mdat" or moof_at is None:
            whole, moof_at = at, None
    return moof_at if moof_at is not None and moof_at < whole else whole


def _whole_matroska(f, size: int) -> tuple[int | None, tuple[int, int, int, int] | None]:
    """End of the last whole top-level element inside the Segment (clusters, chiefly), and the
    Segment's size field if its size is known: (its position, its width, where the Segment's
    content starts, the size it states)."""
    at = 0
    f.seek(0)
    data = f.read(min(size, 64))
    ebml_id, n = _vint(data, 0, keep_marker=True)
    ebml_size, m = _vint(data, n)
    at = n + m + ebml_size  # after the EBML header
    f.seek(at)
    data = f.read(16)
    segment_id, n = _vint(data, 0, keep_marker=True)
    if segment_id != 0x18538067:
        return None, None
    length, m = _vint(data, n)
    segment = None if length is None else (at + n, m, at + n + m, length)
    at += n + m
    whole = at
    while at < size:
        f.seek(at)
        data = f.read(16)
        if len(data) < 2:
            break
        try:
            _, n = _vint(data, 0, keep_marker=True)
            length, m = _vint(data, n)
        except ValueError:
            break
        if length is None or at + n + m + length > size:
            break  # an element cut short (or one of unknown size, still open when writing stopped)
        at += n + m + length
        whole = at
    return whole, segment


def _vint(data: bytes, at: int, keep_marker: bool = False) -> tuple[int | None, int]:
    """An EBML variable-length integer at ``at``: (value, bytes). Value None: 'unknown size'."""
    if at >= len(data) or data[at] == 0:
        raise ValueError("not an EBML number")
    length = 8 - data[at].bit_length() + 1
    if at + length > len(data):
        raise ValueError("cut short")
    value = int.from_bytes(data[at:at + length], "big")
    if keep_marker:
        return value, length
    value &= (1 << (7 * length)) - 1
    return (None if value == (1 << (7 * length)) - 1 else value), length
