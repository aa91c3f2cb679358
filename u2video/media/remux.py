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
