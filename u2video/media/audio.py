"""Carry every audio stream of the input into the output: remuxed where the container takes the
codec, transcoded where it doesn't (Opus in WebM, AAC in MP4/MOV, PCM beside a PNG sequence), and
re-encoded where the input's stream is damaged.

The input is opened a second time for its audio, so packets can be muxed alongside the video
as it is written (the muxer interleaves them) without holding the whole track in memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av

from ..config import VideoFormat
from ..errors import MediaError
from .files import folder_file
from .audio_scan import STRICT, damaged_audio_streams, packet_in_range
from .source import packets_past_errors

# Audio codecs each muxer takes as they are (None: any). Everything else is transcoded.
_ACCEPTS: dict[str, set[str] | None] = {
    "mp4": {"aac", "mp3", "opus", "flac", "alac", "ac3", "eac3"},
    "mov": {"aac", "mp3", "alac", "ac3", "eac3", "pcm_s16le", "pcm_s24le", "pcm_s16be", "pcm_s24be", "pcm_f32le"},
    "webm": {"opus", "vorbis"},
    "matroska": None,
    "wav": {"pcm_s16le", "pcm_s24le", "pcm_f32le"},
}
_TRANSCODE_TO = {"mp4": "aac", "mov": "aac", "webm": "libopus", "matroska": "libopus", "wav": "pcm_s16le"}
_OPUS_RATES = (48000, 24000, 16000, 12000, 8000)
# FFmpeg's default layout for a channel count, for streams that say only "N channels"
_DEFAULT_LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}


class AudioCarrier:
    """Copies or transcodes audio streams of ``source`` into ``output``, trimmed like the video.

    ``streams``: which of the source's audio streams (indexes among its audio streams; None: all).
    Call ``write_until(t)`` as video up to ``t`` seconds is written, then ``finish()``. Damaged
    audio is not carried: a stream that would be copied is scanned first and re-encoded if any
    of it is damaged (see ``audio_scan``); a packet that does not decode or that the muxer
    refuses is left out, and ``lost`` says where (input seconds).
    """

    def __init__(self, source: Path, output: av.container.OutputContainer, fmt: VideoFormat,
                 start: float | None = None, end: float | None = None, streams: list[int] | None = None):
        self.start, self.end = start or 0.0, end
        self.lost: list[tuple[float, float]] = []  # audio left out because it was damaged
        self.written = 0  # packets muxed
        self._input = av.open(str(source), metadata_errors="replace")
        chosen = [s for i, s in enumerate(self._input.streams.audio) if streams is None or i in streams]
        self._plans: dict[int, tuple[av.audio.stream.AudioStream, bool]] = {}  # input index -> (out stream, copy?)
        accepts = _ACCEPTS.get(fmt.container, set())
        try:
            copyable = [s for s in chosen if fmt.audio_codec == "copy"
                        and (accepts is None or s.codec_context.codec.canonical_name in accepts)]
            # a damaged stream is re-encoded, not copied: its damaged packets are left out, and
            # those with damage that decodes and is only logged don't reach the output as they are
            damaged = damaged_audio_streams(source, [s.index for s in copyable], self.start, end)
            for stream in chosen:
                copy = stream in copyable and stream.index not in damaged
                if copy:
                    out = output.add_stream_from_template(stream)
                else:
                    codec = fmt.audio_codec
                    if codec == "copy":
                        name = stream.codec_context.codec.canonical_name  # "mp3", not the decoder's "mp3float"
                        codec = name if stream in copyable and _can_encode(name) else _TRANSCODE_TO[fmt.container]
                    # damaged packets raise, so they are left out instead of decoding to noise
                    stream.codec_context.options = dict(STRICT)
                    out = self._transcoder(output, stream, codec, fmt.audio_bitrate)
                self._plans[stream.index] = (out, copy)
            self._reencoded = damaged  # copyable, but re-encoded because damaged
        except (av.FFmpegError, ValueError, KeyError) as e:
            self._input.close()
            raise MediaError(f"cannot put {source.name}'s audio into {fmt.container} ({e}): "
                             "choose another output format") from None
        if self.start:
            self._input.seek(int(self.start * av.time_base), backward=True)
        self._packets: Iterator[av.Packet] = packets_past_errors(self._input, chosen) if chosen else iter(())
        self._pending: av.Packet | None = None
        self._output = output
        # Matroska can't hold a timestamp before 0: its muxer would move every stream later to
        # make room for AAC's priming packet, and the video would lose its exact times
        self._from_zero = fmt.container in ("matroska", "webm")

    def describe(self) -> str:
        """e.g. "aac copied, opus transcoded"; empty without audio."""
        return ", ".join(f"{out.codec_context.codec.canonical_name} "
                         + ("copied" if copy else "re-encoded (the input's is damaged)" if i in self._reencoded
                            else "transcoded") for i, (out, copy) in self._plans.items())

    @staticmethod
    def _transcoder(output: av.container.OutputContainer, stream: av.audio.stream.AudioStream,
                    codec: str, bitrate: str | None) -> av.audio.stream.AudioStream:
        rate = stream.codec_context.sample_rate or 48000
        if codec in ("libopus", "opus"):  # Opus takes only these rates: the next one up
            rate = next((r for r in sorted(_OPUS_RATES) if r >= rate), 48000)
        out = output.add_stream(codec, rate=rate)
        layout = stream.codec_context.layout
        if layout is not None:
            out.layout = _DEFAULT_LAYOUTS.get(layout.nb_channels, layout.name) if "channels" in layout.name else layout.name
        if bitrate:
            out.codec_context.bit_rate = _bits(bitrate)
        out.codec_context.open()
        return out

    def write_until(self, seconds: float | None) -> None:
        """Mux the audio packets that start by ``seconds`` of output time; None: all that is left.
        Called as each video frame is written, so a partial file's audio ends within one packet
        of its video (no audio is muxed ahead: the encoders' delay keeps audio ahead of the video
        packets anyway)."""
        while True:
            packet = self._pending or next(self._packets, None)
            self._pending = None
            if packet is None:
                return
            t = _seconds(packet.pts, packet.time_base)
            if seconds is not None and t is not None and t - self.start > seconds:
                self._pending = packet
                return
            self._carry(packet, t)

    def _carry(self, packet: av.Packet, t: float | None) -> None:
        out, copy = self._plans[packet.stream.index]
        trimmed = self.start > 0 or self.end is not None
        in_range = packet_in_range(packet, self.start, self.end)
        duration = float(packet.duration * packet.time_base) if packet.duration and packet.time_base else 0.0
        if copy:
            if packet.size == 0 or packet.dts is None or not in_range:
                return
            shift = round(Fraction(self.start) / packet.time_base)
            packet.pts -= shift
            packet.dts -= shift
            if self._from_zero and packet.pts + (packet.duration or 0) <= 0:
                return  # priming that ends before 0: decoders discard it anyway
            packet.stream = out
            self._mux(packet, t, duration)
            return
        try:
            frames = packet.decode()  # the empty packet at the end flushes the decoder
        except av.FFmpegError:
            self._lose(t, duration)
            return  # a corrupt packet: a short gap in the audio, not the end of the run
        for frame in frames:
            ft = _seconds(frame.pts, frame.time_base)
            if trimmed and ft is not None and (ft < self.start or (self.end is not None and ft >= self.end)):
                continue
            if frame.pts is not None:  # keep its place in time (a late start, the trim), shifted as the video
                frame.pts -= round(Fraction(self.start) / frame.time_base)
            try:
                encoded = out.encode(frame)
            except (av.FFmpegError, ValueError):  # damage that changed the layout or rate mid-stream
                self._lose(ft, frame.samples / (frame.sample_rate or 1))
                continue
            self._mux(encoded, ft, 0.0)

    def _lose(self, t: float | None, duration: float) -> None:
        if t is not None:
            self.lost.append((t, t + duration))

    def _mux(self, packets: av.Packet | list[av.Packet], t: float | None, duration: float) -> None:
        try:
            self._output.mux(packets)
        except OSError as e:
            raise MediaError(f"could not write the audio ({e.strerror or e}): check free space") from None
        except av.FFmpegError:  # timestamps a damaged input scrambled: the muxer refuses the packet
            self._lose(t, duration)
            return
        self.written += len(packets) if isinstance(packets, list) else 1

    def finish(self) -> None:
        """Mux what is left (within the trim) and flush the transcoders."""
        self.write_until(None)
        for out, copy in self._plans.values():
            if not copy:
                self._mux(out.encode(None), None, 0.0)
        self.close()

    def close(self) -> None:
        self._input.close()


def _can_encode(codec: str) -> bool:
    try:
        av.Codec(codec, "w")
    except (av.FFmpegError, ValueError):
        return False
    return True


def describe_audio_loss(name: str, lost: list[tuple[float, float]]) -> str:
    """One line for a warning: how much audio was left out, and where."""
    seconds = sum(b - a for a, b in lost)
    spans = sorted(lost)
    where = f"{spans[0][0]:.2f}-{spans[-1][1]:.2f} s"
    return (f"{name}'s audio is damaged: {len(lost)} piece{'s' if len(lost) > 1 else ''} ({seconds:.2f} s) could not "
            f"be decoded and {'were' if len(lost) > 1 else 'was'} left out, between {where}")


def _seconds(pts: int | None, time_base: Fraction | None) -> float | None:
    return None if pts is None or time_base is None else float(pts * time_base)


def _bits(rate: str) -> int:
    text = rate.strip().lower()
    scale = {"k": 1000, "m": 1000_000}.get(text[-1:], 1)
    try:
        return int(float(text.rstrip("km")) * scale)
    except ValueError:
        raise MediaError(f"audio bitrate {rate!r} is not a number like 128k") from None


def write_audio_files(source: Path, folder: Path, fmt: VideoFormat, start: float | None,
                      end: float | None, overwrite: bool = False) -> tuple[list[Path], list[tuple[float, float]]]:
    """Audio beside an image sequence: one WAV per audio stream (audio.wav, audio-2.wav, ...).
    Returns the files written and the audio left out as damaged; a stream with no audio that
    decodes gets no file."""
    with av.open(str(source), metadata_errors="replace") as probe:
        count = len(probe.streams.audio)
    written: list[Path] = []
    lost: list[tuple[float, float]] = []
    wav = VideoFormat(".wav", "wav", "", "", audio_codec=fmt.audio_codec if fmt.audio_codec != "copy" else "pcm_s16le")
    for i in range(count):
        target = folder / ("audio.wav" if i == 0 else f"audio-{i + 1}.wav")
        with folder_file(target, overwrite) as tmp:
            with av.open(str(tmp.path), "w", format="wav") as out:
                carrier = AudioCarrier(source, out, wav, start, end, streams=[i])
                carrier.finish()
            lost += carrier.lost
            if carrier.written:
                written.append(target)
            else:
                tmp.discard()  # no audio that decodes: no file
    return written, lost
