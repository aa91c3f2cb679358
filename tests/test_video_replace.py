"""`u2video replace` and presets: composites checked pixel by pixel against the model's matte,
on clips the tests generate."""

from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch

import u2video
from u2video.backgrounds import cover, parse_color

from .conftest import md5, read_rgba, write_rgb, missing_shared
from .test_api import load_samples_module
from .test_cli_images import run
from .test_video_matte import clip  # noqa: F401  (the fixture: 12 frames with a stereo AAC tone)
from .test_video_matte import N_FRAMES, audio_seconds, decoded, make_clip, model_alpha, seconds


# At 128² the network finds the ball in these 160x120 frames (at 64² its matte stays below 0.5),
# so composites have a real subject and a real background to check.
FAST = ["--input-size", "128", "--device", "cpu", "--smooth", "0", "--no-refine", "--crop", "off"]


@pytest.fixture(scope="module")
def alpha(clip) -> np.ndarray:
    from .conftest import weights_dir

    if weights_dir() is None:
        missing_shared("needs rembg's u2netp.onnx in $U2NET_HOME or ../shared/models")
    return model_alpha(clip, 128).astype(np.float32) / 255  # [N,H,W]


def rgb_frames(path: Path) -> np.ndarray:
    return np.stack([f.to_ndarray(format="rgb24") for f in decoded(path)]).astype(np.float32)


def composite(source: np.ndarray, alpha: np.ndarray, background: np.ndarray) -> np.ndarray:
    return source * alpha[..., None] + background * (1 - alpha[..., None])


def test_colour_background_h264_with_audio(u2netp_store, clip, alpha, tmp_path):
    out = tmp_path / "out.mp4"
    result = run("replace", clip, "-o", out, "-b", "#1e90ff", *FAST)
    assert result.exit_code == 0, result.output
    with av.open(str(out)) as container:
        ctx = container.streams.video[0].codec_context
        assert (ctx.name, ctx.pix_fmt) == ("h264", "yuv420p")
    ours, source = rgb_frames(out), rgb_frames(clip)
    assert len(ours) == N_FRAMES and seconds(decoded(out)) == seconds(decoded(clip))
    expected = composite(source, alpha, np.array([0x1E, 0x90, 0xFF], np.float32))
    assert np.abs(ours - expected).mean() < 4  # H.264 at crf 18 on a small frame
    codec, duration = audio_seconds(out)
    assert codec == "aac" and abs(duration - audio_seconds(clip)[1]) < 0.001


def test_image_background_is_scaled_to_cover(u2netp_store, clip, alpha, tmp_path):
    backdrop = load_samples_module().render_backdrop(90, 300)  # wider than the clip: cropped at the sides
    image = write_rgb(tmp_path / "backdrop.png", backdrop)
    out = tmp_path / "out.mkv"
    assert run("replace", clip, "-o", out, "-b", image, *FAST).exit_code == 0
    # 300x90 to cover 160x120: scaled by 120/90 to 400x120, then the middle 160 columns (by hand, not cover())
    covered = cv2.resize(backdrop, (400, 120), interpolation=cv2.INTER_LINEAR)[:, 120:280]
    expected = composite(rgb_frames(clip), alpha, covered.astype(np.float32))
    assert np.abs(rgb_frames(out) - expected).mean() < 4
    assert audio_seconds(out)[0] == "aac"  # Matroska takes it as it is


def test_video_background_loops(u2netp_store, clip, alpha, tmp_path):
    short = make_clip(tmp_path / "bg.mp4", frames=5, size=(60, 80))  # 5 frames behind 12: looped
    out = tmp_path / "out.mov"
    assert run("replace", clip, "-o", out, "-b", short, *FAST).exit_code == 0
    background = np.stack([cover(f.to_ndarray(format="rgb24"), 160, 120) for f in decoded(short)]).astype(np.float32)
    looped = background[np.arange(N_FRAMES) % 5]
    expected = composite(rgb_frames(clip), alpha, looped)
    assert np.abs(rgb_frames(out) - expected).mean() < 3  # ProRes 422 HQ


def test_blur_background_is_smooth_and_keeps_the_subject(u2netp_store, clip, alpha, tmp_path):
    out = tmp_path / "out.mp4"
    assert run("replace", clip, "-o", out, "-b", "blur:40", *FAST).exit_code == 0
    ours, source = rgb_frames(out), rgb_frames(clip)
    subject, behind = alpha > 0.95, alpha < 0.05
    assert np.abs(ours - source)[subject].mean() < 4
    detail = lambda img: np.abs(np.diff(img, axis=2)).mean(-1)[behind[:, :, 1:]].mean()  # noqa: E731
    assert detail(ours) < 0.5 * detail(source)  # horizontal gradients behind the subject: blurred away
    assert abs(ours[behind].mean() - source[behind].mean()) < 8  # as bright as the scene behind


@pytest.mark.parametrize("height, width", [(120, 160), (1080, 1920), (2, 50)])  # (2, 50): a kernel wider than the frame
def test_blur_background_of_an_even_frame_is_that_frame(height, width):
    """A blur keeps an even colour as it is, per channel (it once divided 3-channel frames by 9)."""
    from u2video.backgrounds import parse_background

    frames = torch.tensor([200.0, 100.0, 30.0]).view(1, 3, 1, 1).repeat(1, 1, height, width)
    alpha = torch.zeros(1, 1, height, width)
    alpha[..., : height // 2, : width // 2] = 1.0  # a subject over a quarter: left out of the blur
    out = parse_background("blur:200")(frames, alpha)
    assert torch.allclose(out, frames, atol=1e-3)


def test_replace_an_image(u2netp_store, tmp_path):
    still = load_samples_module().render_still(96, 128)
    colour = np.array((20, 140, 220), np.float32)  # one colour: its cover is itself at any size
    photo = write_rgb(tmp_path / "photo.png", still)
    backdrop = write_rgb(tmp_path / "beach.png", np.full((50, 50, 3), colour, np.uint8))
    out = tmp_path / "out.png"
    result = run("replace", photo, "--background", backdrop, "-o", out, *FAST)
    assert result.exit_code == 0, result.output
    assert run("matte", photo, "--mask-only", "-o", tmp_path / "mask.png", *FAST).exit_code == 0
    alpha = cv2.imread(str(tmp_path / "mask.png"), cv2.IMREAD_GRAYSCALE).astype(np.float32)[..., None] / 255
    assert 0.05 < (alpha > 0.5).mean() < 0.95  # subject and background both there
    expected = colour + alpha * (still.astype(np.float32) - colour)  # the subject over the colour, by hand
    ours = cv2.cvtColor(cv2.imread(str(out)), cv2.COLOR_BGR2RGB).astype(np.float32)
    assert ours.shape == (96, 128, 3)
    assert np.abs(ours - expected).max() <= 1.5  # the mask file's alpha is rounded to 1/255


def test_presets_list_show_and_apply(u2netp_store, clip, tmp_path):
    listing = run("presets")
    assert listing.exit_code == 0
    names = [line.split()[0] for line in listing.stdout.splitlines()]
    for required in ("prores4444", "webm-alpha", "png-seq", "matte", "h264-replace", "greenscreen", "web-small"):
        assert required in names
    shown = run("presets", "web-small")
    assert shown.exit_code == 0 and "max_height = 720" in shown.stdout

    # web-small: AAC 128k transcode, height cap (overridden by a flag), faststart
    out = tmp_path / "small.mp4"
    result = run("replace", clip, "-o", out, "--preset", "web-small", "--max-height", "60", "-b", "white", *FAST)
    assert result.exit_code == 0, result.output
    with av.open(str(out)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert (video.codec_context.width, video.codec_context.height) == (80, 60)
        assert audio.codec_context.name == "aac" and 100_000 < audio.codec_context.bit_rate <= 140_000
    data = out.read_bytes()
    assert data.find(b"moov") < data.find(b"mdat")  # index first: plays while downloading

    # greenscreen brings its own background
    out = tmp_path / "key.mp4"
    assert run("replace", clip, "-o", out, "--preset", "greenscreen", *FAST).exit_code == 0
    corner = rgb_frames(out)[0, :4, :4].reshape(-1, 3).mean(0)  # top-left of the wall: background
    assert np.abs(corner - np.array(parse_color("#00b140"))).max() < 8

    # a preset file of one's own, with flags over it
    mine = tmp_path / "mine.toml"
    mine.write_text('command = "replace"\nbackground = "black"\n[format]\nextension = ".mp4"\ncontainer = "mp4"\n'
                    'codec = "libx265"\npix_fmt = "yuv420p"\ncodec_tag = "hvc1"\n[format.codec_options]\n'
                    'crf = "30"\nx265-params = "log-level=error"\n')
    out = tmp_path / "hevc.mp4"
    assert run("replace", clip, "-o", out, "--preset", mine, "--crf", "20", *FAST).exit_code == 0
    with av.open(str(out)) as container:
        assert container.streams.video[0].codec_context.name == "hevc"
    assert b"hvc1" in out.read_bytes()[:4096] or b"hvc1" in out.read_bytes()


@pytest.mark.parametrize("args, message", [
    (["--preset", "prores4444"], "is for `u2video matte`"),
    (["--preset", "h264-replace", "-o", "{tmp}/x.webm"], "writes .mp4 files"),
    (["--preset", "nope"], "unknown preset 'nope'"),
    (["-b", "notacolour"], "is not a colour"),
    (["-b", "{tmp}/missing.jpg"], "does not exist"),
    (["-b", "blur:abc"], "blur strength must be a number"),
    (["--crf", "20", "-o", "{tmp}/x.mov"], "does not apply to prores_ks"),
    ([], "replace needs --background"),
])
def test_bad_replace_options(args, message, u2netp_store, clip, tmp_path):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if "-o" not in args:
        args += ["-o", str(tmp_path / "out.mp4")]
    if "-b" not in args and message != "replace needs --background":
        args += ["-b", "red"]
    before = md5(clip)
    result = run("replace", clip, *args, *FAST)
    assert result.exit_code in (2, 3), result.output
    errors = [l for l in result.stderr.splitlines() if l.startswith("u2video: error:")]
    assert len(errors) == 1 and message in errors[0] and "Traceback" not in result.output
    assert md5(clip) == before and not [p for p in tmp_path.iterdir()]


def test_a_codec_the_container_cannot_hold_fails_before_the_model_loads(clip, tmp_path):
    preset = tmp_path / "prores.toml"
    preset.write_text('[format]\nextension = ".mp4"\ncontainer = "mp4"\ncodec = "prores_ks"\npix_fmt = "yuva444p10le"\n')
    # no u2netp_store: loading the model would fail (offline, no weights), so exit 2 proves the order
    result = run("matte", clip, "-o", tmp_path / "out.mp4", "--preset", preset, "--model", tmp_path / "none.onnx")
    assert result.exit_code == 2, result.output
    assert "does not support 'prores_ks'" in result.stderr and "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prores.toml"]


@pytest.mark.parametrize("toml, message", [
    ('[output]\nmax_height = "720"\n', "max_height = '720' should be int"),
    ('[output]\nmask_only = "false"\n', "mask_only = 'false' should be bool"),
    ('[output]\noverwrite = true\n', "has no key 'overwrite'"),  # per run, never from a preset
    ('background = 5\n', "background = 5 should be a string"),
    ('[device]\nkind = "gpu"\n', "kind = 'gpu' is not one of auto, cpu, cuda"),
    ('[format]\nextension = "mp4"\ncontainer = "mp4"\ncodec = "libx264"\npix_fmt = "yuv420p"\n', "must start with a dot"),
    ('[format\n', "is not valid TOML"),
])
def test_bad_preset_files(toml, message, clip, tmp_path):
    preset = tmp_path / "bad.toml"
    preset.write_text(toml)
    result = run("replace", clip, "-o", tmp_path / "out.mp4", "-b", "red", "--preset", preset)
    assert result.exit_code == 2, result.output
    errors = [l for l in result.stderr.splitlines() if l.startswith("u2video: error:")]
    assert len(errors) == 1 and message in errors[0] and "Traceback" not in result.output
    assert not (tmp_path / "out.mp4").exists()


def test_output_size_rounds_down_when_scaling_and_pads_odd_sizes():
    from u2video.media.writers import output_size
    from u2video.presets import load_preset

    h264, prores = load_preset("h264-replace").format, load_preset("prores-replace").format
    assert output_size(250, 100, h264, 75) == (184, 74)  # never over the limit, even for 4:2:0
    assert output_size(161, 121, h264, None) == (162, 122)  # padded, not stretched
    assert output_size(250, 100, prores, 75) == (188, 75)
    assert output_size(161, 121, prores, 1000) == (161, 121)


def test_every_builtin_preset_opens_its_encoder(tmp_path):
    from fractions import Fraction

    from u2video.media.writers import PngSequenceSink, VideoSink
    from u2video.presets import all_presets

    for preset in all_presets():
        fmt = preset.format
        target = tmp_path / (f"{preset.name}" + fmt.extension)
        if fmt.sequence:
            sink = PngSequenceSink(target)
        else:
            sink = VideoSink(target, fmt, 64, 48, Fraction(25), Fraction(1, 25))
        sink.write(np.zeros((48, 64, 4 if fmt.alpha else 3), np.uint8), 0)
        sink.finish()
        assert target.exists()


def test_python_api_replace(u2netp_store, clip, tmp_path):
    out = u2video.replace(clip, tmp_path / "out.webm", "black",
                          model=u2video.ModelConfig(input_size=64),
                          options=u2video.load_preset("webm-replace").output_config(end=0.2))
    assert out == [tmp_path / "out.webm"]
    assert len(decoded(out[0], "libvpx-vp9")) == 5


def test_one_frame_h265_is_written_every_time(tmp_path):
    """x265 gives a one-frame encode's packet a garbage dts in about a quarter of tries, which
    the MP4 muxer refuses: the sink mends it, and the frame plays."""
    from fractions import Fraction

    from u2video.media.writers import VideoSink
    from u2video.presets import load_preset

    fmt = load_preset("h265-replace").format
    for i in range(30):
        sink = VideoSink(tmp_path / f"one{i}.mp4", fmt, 64, 48, Fraction(25), Fraction(1, 25))
        sink.write(np.full((48, 64, 3), 90, np.uint8), 0)
        sink.finish()
        frames = decoded(tmp_path / f"one{i}.mp4")
        assert len(frames) == 1 and frames[0].pts == 0


@pytest.mark.parametrize("preset, software, hardware", [("h264-replace", "libx264", "h264_nvenc"),
                                                          ("h265-replace", "libx265", "hevc_nvenc")])
def test_the_output_line_names_the_encoder_that_wrote_the_file(u2netp_store, clip, tmp_path, preset, software, hardware):
    """NVIDIA's encoder where it opens, else the software one, and the line says which: the
    software encoders sign the stream ("x264 - core", "x265 (build"), NVENC does not."""
    out = tmp_path / "out.mp4"
    result = run("replace", clip, "-o", out, "-b", "red", "-p", preset, *FAST)
    assert result.exit_code == 0, result.output
    (line,) = [l for l in result.stderr.splitlines() if l.startswith("u2video: writing out.mp4:")]
    with av.open(str(out)) as container:
        first = bytes(container.streams.video[0].codec_context.extradata or b"")  # x265 signs here
        first += bytes(next(p for p in container.demux(video=0) if p.size))  # x264 here
    signed = b"x264 - core" in first or b"x265 (build" in first
    if signed:
        assert f"out.mp4: {software} (no NVIDIA encoder: {hardware} did not open" in line, line
    else:
        assert f"out.mp4: {hardware} (NVIDIA's, in place of {software})" in line, line
