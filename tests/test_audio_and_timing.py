"""Audio and timing corner cases: late-starting audio, MP3 kept as it is, seeking in MPEG-TS."""

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from .test_cli_images import run
from .test_video_matte import FAST
from .test_video_matte import decoded, make_clip


def first_audio_second(path: Path) -> float:
    with av.open(str(path)) as container:
        packet = next(p for p in container.demux(audio=0) if p.size)
        return float(packet.pts * packet.time_base)


def test_transcoded_audio_keeps_its_place_in_time(u2netp_store, tmp_path):
    late = make_clip(tmp_path / "late.mp4", audio=True, timestamps=[1 + i / 25 for i in range(12)])  # all from 1 s
    assert abs(first_audio_second(late) - 1) < 0.03
    out = tmp_path / "late.webm"  # AAC can't go in WebM: transcoded to Opus
    assert run("matte", late, "-o", out, *FAST).exit_code == 0
    assert abs(first_audio_second(out) - first_audio_second(late)) < 0.03
    trimmed = tmp_path / "trimmed.webm"
    assert run("matte", late, "-o", trimmed, "--start", "1.2", *FAST).exit_code == 0
    assert float(decoded(trimmed, "libvpx-vp9")[0].pts * Fraction(1, 1000)) == 0.0
    assert abs(first_audio_second(trimmed)) < 0.03  # shifted with the video


def test_mp3_is_remuxed_into_mp4(u2netp_store, tmp_path):
    clip = tmp_path / "mp3.mkv"
    with av.open(str(make_clip(tmp_path / "v.mp4"))) as source, av.open(str(clip), "w") as out:
        video = out.add_stream_from_template(source.streams.video[0])
        sound = out.add_stream("libmp3lame", rate=44100)
        sound.layout = "stereo"
        for packet in source.demux(source.streams.video[0]):
            if packet.dts is not None:
                packet.stream = video
                out.mux(packet)
        for i in range(12):
            frame = av.AudioFrame.from_ndarray(np.zeros((2, 1152), np.float32), format="fltp", layout="stereo")
            frame.sample_rate, frame.pts = 44100, i * 1152
            out.mux(sound.encode(frame))
        out.mux(sound.encode(None))
    result = run("replace", clip, "-o", tmp_path / "out.mp4", "-b", "red", *FAST)
    assert result.exit_code == 0, result.output
    assert "audio mp3 copied" in result.stderr, result.stderr.splitlines()[1]
    with av.open(str(tmp_path / "out.mp4")) as container:
        assert container.streams.audio[0].codec_context.name.startswith("mp3")


def test_start_in_mpeg_ts_with_sparse_keyframes(u2netp_store, tmp_path):
    mp4 = tmp_path / "sparse.mp4"
    with av.open(str(mp4), "w") as container:  # one keyframe at the start only
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.options = {"g": "1000", "keyint_min": "1000", "sc_threshold": "0"}
        for i in range(100):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 2, np.uint8), format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    ts = tmp_path / "sparse.ts"
    with av.open(str(mp4)) as source, av.open(str(ts), "w", format="mpegts") as out:
        video = out.add_stream_from_template(source.streams.video[0])
        for packet in source.demux(source.streams.video[0]):
            if packet.dts is not None:
                packet.stream = video
                out.mux(packet)
    times = [float(f.pts * f.time_base) for f in decoded(ts)]
    start = times[0] + 3.0  # 25 frames before the end
    out = tmp_path / "out.mkv"
    result = run("matte", ts, "-o", out, "--matte-only", "--start", str(start), *FAST)
    assert result.exit_code == 0, result.output
    assert len(decoded(out)) == sum(t >= start - 1e-6 for t in times) == 25
    assert "damaged" not in result.stderr


def test_matroska_outputs_keep_the_frame_times_beside_copied_aac(u2netp_store, tmp_path):
    """AAC starts with a priming packet before 0, which Matroska can't hold: its muxer would move
    every stream 23 ms later. The priming is left out, so the frames keep their times."""
    clip = make_clip(tmp_path / "clip.mp4", audio=True)
    source = [f.time for f in decoded(clip)]
    for args in (["matte", "-o", tmp_path / "m.mkv", "--matte-only"], ["replace", "-o", tmp_path / "r.mkv", "-b", "red"]):
        result = run(args[0], clip, *args[1:], *FAST)
        assert result.exit_code == 0, result.output
        assert [f.time for f in decoded(args[2])] == source
        with av.open(str(args[2])) as out:
            samples = sum(f.samples for f in out.decode(audio=0))
        with av.open(str(clip)) as inp:
            assert samples == sum(f.samples for f in inp.decode(audio=0))  # all the audio that plays
