"""The option dataclasses (``config.py``) and presets (``presets.py``): defaults as the README
states them, range checks, and presets read from small TOML files written here. No model, no
video: only dataclasses and text."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from u2video.config import (ClusterConfig, Crop, DeviceConfig, DeviceKind, MatteConfig, ModelConfig, Normalization,
                            OutputConfig, Precision, Runtime, TuneConfig, VideoFormat, with_flags)
from u2video.errors import ConfigError
from u2video.presets import (_checked, builtin_names, all_presets, format_by_extension, is_png_sequence, load_preset,
                             preset_text, sequence_target, video_format)

PRESETS = Path(__file__).resolve().parents[1] / "presets"
BUILTIN = ["greenscreen", "h264-replace", "h264-replace-mkv", "h265-replace", "matte", "matte-prores", "png-seq",
           "prores-replace", "prores4444", "web-small", "webm-alpha", "webm-replace"]  # README, "Presets"
H264 = VideoFormat(".mp4", "mp4", "libx264", "yuv420p", {"crf": "18", "preset": "medium"})
PRORES = VideoFormat(".mov", "mov", "prores_ks", "yuva444p10le", {"profile": "4444"})
PNGS = VideoFormat("", "image2", "png", "rgba")
GREY = VideoFormat(".mkv", "matroska", "ffv1", "gray")


def write(tmp_path: Path, text: str, name: str = "p.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message, message
    return message


# -- enums: the strings flags and presets give --

@pytest.mark.parametrize("enum, values", [
    (DeviceKind, ["auto", "cpu", "cuda"]),
    (Precision, ["auto", "fp32", "fp16", "bf16", "int8"]),
    (Runtime, ["auto", "torch", "onnxruntime", "openvino"]),
    (Normalization, ["auto", "reference", "fixed"]),
    (Crop, ["auto", "off"]),
])
def test_enums_parse_exactly_the_documented_strings(enum, values):
    assert [m.value for m in enum] == values
    for value in values:
        assert enum(value).value == value and enum(value) == value  # str enums compare as strings
    with pytest.raises(ValueError):
        enum("gpu")


# -- ModelConfig --

def test_model_defaults_are_u2netp_at_320_with_auto_normalisation():
    config = ModelConfig()
    assert (config.name, config.input_size, config.normalization) == ("u2netp", 320, Normalization.AUTO)


def test_auto_normalisation_resolves_to_fixed_for_video_and_reference_for_images():
    assert ModelConfig().resolved(video=True).normalization is Normalization.FIXED
    assert ModelConfig().resolved(video=False).normalization is Normalization.REFERENCE
    resolved = ModelConfig(name="u2net", input_size=256).resolved(video=True)
    assert (resolved.name, resolved.input_size) == ("u2net", 256)  # only the normalisation changes


@pytest.mark.parametrize("given", [Normalization.REFERENCE, Normalization.FIXED])
def test_a_chosen_normalisation_is_kept_for_images_and_video(given):
    config = ModelConfig(normalization=given)
    assert config.resolved(video=True) is config and config.resolved(video=False) is config


@pytest.mark.parametrize("size", [32, 64, 192, 320, 2048])
def test_input_sizes_that_are_multiples_of_32_up_to_2048_are_accepted(size):
    assert ModelConfig(input_size=size).input_size == size


@pytest.mark.parametrize("size", [0, 16, 31, 33, 48, 321, 2049, 2080, -32])
def test_other_input_sizes_are_refused_naming_the_size_and_the_range(size):
    with pytest.raises(ConfigError) as error:
        ModelConfig(input_size=size)
    message = one_line(error)
    assert f"input size {size} " in message and "multiple of 32" in message and "32 and 2048" in message
    assert message.endswith("use e.g. 320 (the trained size), 256 or 192")  # what to give instead


# -- DeviceConfig --

def test_device_defaults_are_auto_everything_no_batch_and_no_cuda_graphs():
    config = DeviceConfig()
    assert config.kind is DeviceKind.AUTO and config.precision is Precision.AUTO and config.runtime is Runtime.AUTO
    assert config.batch is None and config.cuda_graphs is False


def test_batch_must_be_at_least_one():
    assert DeviceConfig(batch=1).batch == 1
    assert DeviceConfig(batch=64).batch == 64
    for bad in (0, -3):
        with pytest.raises(ConfigError) as error:
            DeviceConfig(batch=bad)
        assert f"batch size {bad} " in one_line(error) and "at least 1" in str(error.value)


# -- MatteConfig --

def test_matte_defaults_smooth_six_frames_each_side_refine_on_crop_auto():
    config = MatteConfig()
    assert config.smooth == 6 and config.refine is True and config.crop is Crop.AUTO


@pytest.mark.parametrize("smooth", [0, 1, 15])
def test_smoothing_from_0_to_15_frames_is_accepted(smooth):
    assert MatteConfig(smooth=smooth).smooth == smooth


@pytest.mark.parametrize("smooth", [-1, 16, 100])
def test_smoothing_outside_0_to_15_is_refused_naming_the_flag_and_range(smooth):
    with pytest.raises(ConfigError) as error:
        MatteConfig(smooth=smooth)
    message = one_line(error)
    assert f"--smooth {smooth} " in message and "out of range" in message and "0 (off) to 15" in message


def test_crop_takes_a_presets_string_and_refuses_others():
    assert MatteConfig(crop="off").crop is Crop.OFF
    assert MatteConfig(crop="auto").crop is Crop.AUTO
    assert MatteConfig(crop=Crop.OFF).crop is Crop.OFF
    with pytest.raises(ConfigError) as error:
        MatteConfig(crop="sideways")
    assert "crop 'sideways' is not one of auto, off" in one_line(error)


# -- VideoFormat --

def test_video_format_defaults_copy_audio_and_set_no_options():
    fmt = VideoFormat(".mov", "mov", "prores_ks", "yuva444p10le")
    assert fmt.codec_options == {} and fmt.container_options == {}
    assert fmt.codec_tag is None and fmt.audio_codec == "copy" and fmt.audio_bitrate is None


@pytest.mark.parametrize("pix_fmt", ["yuva444p10le", "yuva420p", "rgba", "bgra", "argb", "gbrap", "ya8"])
def test_pixel_formats_with_alpha(pix_fmt):
    assert VideoFormat(".x", "c", "codec", pix_fmt).alpha is True


@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuv444p10le", "gray", "rgb24", "bgr0", "gbrp"])
def test_pixel_formats_without_alpha(pix_fmt):
    assert VideoFormat(".x", "c", "codec", pix_fmt).alpha is False


def test_only_the_image2_container_is_a_png_sequence():
    assert PNGS.sequence is True
    assert H264.sequence is False and PRORES.sequence is False


@pytest.mark.parametrize("codec", ["libx264", "libx265", "h264_nvenc", "hevc_nvenc"])
def test_420_h264_and_h265_need_even_sizes(codec):
    assert VideoFormat(".mp4", "mp4", codec, "yuv420p").chroma_420 is True
    assert VideoFormat(".mp4", "mp4", codec, "yuv444p").chroma_420 is False


def test_vp9_and_prores_do_not_need_even_sizes():
    assert VideoFormat(".webm", "webm", "libvpx-vp9", "yuva420p").chroma_420 is False
    assert VideoFormat(".mov", "mov", "prores_ks", "yuv420p").chroma_420 is False


# -- OutputConfig --

def test_output_defaults_write_the_cutout_whole_without_overwriting():
    config = OutputConfig()
    assert config.mask_only is False and config.overwrite is False and config.strict is False
    assert config.picture is False and config.format is None
    assert (config.max_height, config.crf, config.start, config.end, config.frames, config.every) == (None,) * 6
    assert config.selecting is False
    assert all(config.selects(i) for i in (0, 1, 7, 1000))


def test_frames_select_only_those_frames_sorted_once_each():
    config = OutputConfig(frames=(80, 0, 40, 40))
    assert config.frames == (0, 40, 80) and isinstance(config.frames, tuple)
    assert config.selecting is True
    assert [i for i in range(100) if config.selects(i)] == [0, 40, 80]


def test_every_selects_every_nth_frame_from_the_first():
    config = OutputConfig(every=40)
    assert config.selecting is True
    assert [i for i in range(100) if config.selects(i)] == [0, 40, 80]
    assert all(OutputConfig(every=1).selects(i) for i in range(5))


@pytest.mark.parametrize("frames", [(), (-1,), (0, -5, 3)])
def test_frames_must_be_frame_numbers_from_0_up(frames):
    with pytest.raises(ConfigError) as error:
        OutputConfig(frames=frames)
    assert one_line(error).startswith("--frames needs frame numbers from 0 up")


def test_frame_0_alone_is_a_valid_choice():
    assert OutputConfig(frames=(0,)).frames == (0,)


@pytest.mark.parametrize("every", [0, -2])
def test_every_must_be_at_least_1(every):
    with pytest.raises(ConfigError) as error:
        OutputConfig(every=every)
    assert f"--every {every} " in one_line(error) and "at least 1" in str(error.value)


def test_frames_and_every_together_are_refused():
    with pytest.raises(ConfigError) as error:
        OutputConfig(frames=(0, 10), every=5)
    message = one_line(error)
    assert message.startswith("--frames and --every") and message.endswith("give one of them")


@pytest.mark.parametrize("choice", [{"frames": (0, 10)}, {"every": 5}])
@pytest.mark.parametrize("cut", [{"start": 1.0}, {"end": 5.0}, {"start": 0.0}])
def test_choosing_frames_refuses_start_and_end(choice, cut):
    with pytest.raises(ConfigError) as error:
        OutputConfig(**choice, **cut)
    message = one_line(error)
    assert message.startswith("--frames/--every") and message.endswith("drop --start/--end")


def test_picture_and_matte_only_together_are_refused():
    assert OutputConfig(picture=True).picture is True
    assert OutputConfig(mask_only=True).mask_only is True
    with pytest.raises(ConfigError) as error:
        OutputConfig(picture=True, mask_only=True)
    message = one_line(error)
    assert message.startswith("--picture") and "--matte-only" in message and message.endswith("give one of them")


def test_start_must_not_be_negative():
    assert OutputConfig(start=0.0).start == 0.0
    with pytest.raises(ConfigError) as error:
        OutputConfig(start=-0.5)
    assert "--start -0.5 is negative" in one_line(error)


def test_end_must_come_after_start():
    assert (OutputConfig(start=12.0, end=12.04).end) == 12.04
    for end in (12.0, 11.0):
        with pytest.raises(ConfigError) as error:
            OutputConfig(start=12.0, end=end)
        assert f"--end {end} is not after --start 12.0" in one_line(error)


@pytest.mark.parametrize("end", [0.0, -1.0])
def test_end_alone_must_be_after_the_clips_start(end):
    with pytest.raises(ConfigError) as error:
        OutputConfig(end=end)
    assert f"--end {end} must be after the start of the clip" in one_line(error)


def test_a_short_end_alone_is_accepted():
    assert OutputConfig(end=0.5).end == 0.5
    assert OutputConfig(end=20.0).end == 20.0


def test_crf_must_not_be_negative():
    assert OutputConfig(crf=0).crf == 0
    with pytest.raises(ConfigError) as error:
        OutputConfig(crf=-1)
    assert "--crf -1 is negative" in one_line(error) and "0 (best)" in str(error.value)


def test_max_height_must_be_at_least_16_lines():
    assert OutputConfig(max_height=16).max_height == 16
    with pytest.raises(ConfigError) as error:
        OutputConfig(max_height=15)
    assert "max height 15 is too small" in one_line(error) and "at least 16" in str(error.value)


# -- ClusterConfig --

def test_cluster_defaults_start_ray_here_60_s_segments_3_retries_150_warm_up_frames():
    config = ClusterConfig()
    assert config.address is None and config.segment_seconds == 60.0
    assert config.retries == 3 and config.warm_up_frames == 150


def test_cluster_limits_accept_the_edges():
    config = ClusterConfig(segment_seconds=0.5, retries=0, warm_up_frames=0)
    assert (config.segment_seconds, config.retries, config.warm_up_frames) == (0.5, 0, 0)


@pytest.mark.parametrize("kwargs, words", [
    ({"segment_seconds": 0.0}, "--segment-seconds 0.0 must be positive"),
    ({"segment_seconds": -5.0}, "--segment-seconds -5.0 must be positive"),
    ({"retries": -1}, "retries -1 is negative"),
    ({"warm_up_frames": -1}, "warm-up -1 frames is negative"),
])
def test_cluster_values_out_of_range_are_refused(kwargs, words):
    with pytest.raises(ConfigError) as error:
        ClusterConfig(**kwargs)
    assert words in one_line(error)


# -- TuneConfig --

def test_tune_defaults_as_the_readme_gives_them():
    config = TuneConfig()
    assert (config.base, config.steps, config.input_size, config.batch) == ("u2netp", 60, 320, 4)
    assert config.lr == 1e-4 and config.seed == 0 and config.paste is False and config.patience == 5


def test_tune_limits_accept_the_edges():
    config = TuneConfig(steps=1, input_size=32, batch=1, lr=0.5, patience=0)
    assert (config.steps, config.input_size, config.batch, config.lr, config.patience) == (1, 32, 1, 0.5, 0)
    assert TuneConfig(input_size=2048, lr=1e-9).input_size == 2048
    assert TuneConfig(lr=0.999).lr == 0.999


@pytest.mark.parametrize("kwargs, words", [
    ({"steps": 0}, "--steps 0 must be at least 1"),
    ({"input_size": 48}, "input size 48 is not a multiple of 32 between 32 and 2048: use e.g. 320"),
    ({"input_size": 2080}, "input size 2080 is not a multiple of 32 between 32 and 2048"),
    ({"input_size": 0}, "input size 0 is not a multiple of 32 between 32 and 2048"),
    ({"batch": 0}, "--batch 0 must be at least 1"),
    ({"lr": 0.0}, "--lr 0.0 is out of range"),
    ({"lr": 1.0}, "--lr 1.0 is out of range"),
    ({"lr": -1e-4}, "--lr -0.0001 is out of range"),
    ({"patience": -1}, "--patience -1 is negative"),
])
def test_tune_values_out_of_range_are_refused(kwargs, words):
    with pytest.raises(ConfigError) as error:
        TuneConfig(**kwargs)
    assert words in one_line(error)


# -- with_flags --

def test_flags_given_replace_fields_and_flags_not_given_keep_them():
    config = MatteConfig(smooth=3, refine=False)
    assert with_flags(config, smooth=None, refine=None) is config
    assert with_flags(config) is config
    changed = with_flags(config, smooth=0, refine=None)
    assert (changed.smooth, changed.refine) == (0, False)
    assert with_flags(config, refine=True).refine is True


def test_flags_are_checked_like_the_fields():
    with pytest.raises(ConfigError, match="--smooth 99"):
        with_flags(MatteConfig(), smooth=99)


# -- presets: loading --

def test_builtin_presets_are_the_twelve_the_readme_lists():
    assert builtin_names() == BUILTIN
    presets = all_presets()
    assert [p.name for p in presets] == BUILTIN
    by_name = {p.name: p for p in presets}
    for name in ("prores4444", "webm-alpha", "matte", "matte-prores"):
        assert by_name[name].command == "matte", name
    for name in ("h264-replace", "h264-replace-mkv", "h265-replace", "prores-replace", "webm-replace",
                 "greenscreen", "web-small"):
        assert by_name[name].command == "replace", name
    assert by_name["png-seq"].command is None  # RGBA for matte, RGB for replace
    assert all(p.description and p.format is not None for p in presets)


def test_web_small_preset_sets_its_format_height_and_description():
    preset = load_preset("web-small")
    assert preset.name == "web-small" and preset.path == "web-small"
    assert preset.description.startswith("Small H.264 .mp4 for sharing")
    fmt = preset.format
    assert (fmt.extension, fmt.container, fmt.codec, fmt.pix_fmt) == (".mp4", "mp4", "libx264", "yuv420p")
    assert (fmt.audio_codec, fmt.audio_bitrate) == ("aac", "128k")
    assert fmt.codec_options == {"crf": "28", "preset": "slow"}
    assert fmt.container_options == {"movflags": "+faststart"}
    output = preset.output_config()
    assert output.max_height == 720 and output.format == fmt and output.mask_only is False


def test_greenscreen_preset_gives_its_background_and_matte_presets_write_the_matte():
    assert load_preset("greenscreen").background == "#00b140"
    assert load_preset("h264-replace").background is None
    for name in ("matte", "matte-prores"):
        assert load_preset(name).output_config().mask_only is True
    assert load_preset("prores4444").output_config().mask_only is False
    assert load_preset("h265-replace").format.codec_tag == "hvc1"


def test_no_preset_gives_the_defaults_for_both_commands():
    preset = load_preset(None)
    assert preset.format is None and preset.command is None and preset.background is None
    assert preset.description == "" and dict(preset.tables) == {}
    assert preset.model_config() == ModelConfig() and preset.device_config() == DeviceConfig()
    assert preset.matte_config() == MatteConfig() and preset.output_config() == OutputConfig()
    preset.check_command("matte")
    preset.check_command("replace")


def test_a_preset_file_fills_every_section_and_flags_override_it(tmp_path):
    path = write(tmp_path, """
description = "mine"
command = "matte"
background = "white"
[model]
name = "u2net"
input_size = 256
normalization = "reference"
[device]
kind = "cpu"
precision = "fp32"
runtime = "openvino"
batch = 2
cuda_graphs = true
[matte]
smooth = 3
refine = false
crop = "off"
[output]
mask_only = true
max_height = 480
crf = 20
strict = true
[format]
extension = ".mkv"
container = "matroska"
codec = "ffv1"
pix_fmt = "gray"
""")
    preset = load_preset(path)
    assert (preset.name, preset.path, preset.description, preset.command, preset.background) == (
        "p", str(path), "mine", "matte", "white")
    assert preset.model_config() == ModelConfig("u2net", 256, Normalization.REFERENCE)
    assert preset.device_config() == DeviceConfig(DeviceKind.CPU, Precision.FP32, 2, Runtime.OPENVINO, True)
    assert preset.matte_config() == MatteConfig(smooth=3, refine=False, crop=Crop.OFF)
    assert preset.output_config() == OutputConfig(mask_only=True, max_height=480, crf=20, strict=True, format=GREY)
    # flags win; flags not given (None) leave the preset's values
    assert preset.model_config(input_size=128, name=None) == ModelConfig("u2net", 128, Normalization.REFERENCE)
    assert preset.device_config(kind=DeviceKind.CUDA, batch=None).kind is DeviceKind.CUDA
    assert preset.device_config(kind=DeviceKind.CUDA, batch=None).batch == 2
    assert preset.matte_config(smooth=0, refine=None) == MatteConfig(smooth=0, refine=False, crop=Crop.OFF)
    output = preset.output_config(max_height=240, overwrite=True, crf=None)
    assert (output.max_height, output.overwrite, output.crf, output.format) == (240, True, 20, GREY)


def test_a_preset_only_changes_what_it_sets(tmp_path):
    preset = load_preset(write(tmp_path, "[matte]\nsmooth = 2\n"))
    assert preset.matte_config() == MatteConfig(smooth=2, refine=True, crop=Crop.AUTO)
    assert preset.model_config() == ModelConfig() and preset.device_config() == DeviceConfig()
    assert preset.output_config() == OutputConfig()
    assert preset.command is None and preset.format is None and preset.description == ""


def test_a_preset_file_is_found_by_a_path_without_toml_suffix(tmp_path):
    path = write(tmp_path, 'description = "no suffix"\n', name="mine")
    preset = load_preset(str(path))
    assert preset.name == "mine" and preset.description == "no suffix"


def test_format_options_become_strings_and_optional_fields_are_read(tmp_path):
    preset = load_preset(write(tmp_path, """
[format]
extension = ".mp4"
container = "mp4"
codec = "libx265"
pix_fmt = "yuv420p"
codec_tag = "hvc1"
audio_codec = "aac"
audio_bitrate = "96k"
[format.codec_options]
crf = 22
preset = "fast"
[format.container_options]
movflags = "+faststart"
frag = 1
"""))
    fmt = preset.format
    assert fmt == VideoFormat(".mp4", "mp4", "libx265", "yuv420p", {"crf": "22", "preset": "fast"}, "hvc1",
                              {"movflags": "+faststart", "frag": "1"}, "aac", "96k")
    assert fmt.codec_options["crf"] == "22"  # TOML's integer, as the encoder option string


def test_an_empty_extension_means_a_png_sequence(tmp_path):
    preset = load_preset(write(tmp_path, '[format]\nextension = ""\ncontainer = "image2"\ncodec = "png"\n'
                                         'pix_fmt = "rgb24"\n'))
    assert preset.format.extension == "" and preset.format.sequence


BAD_PRESETS = [
    # (TOML, words the one-line message must hold)
    ('colour = "red"\n', "unknown entry 'colour' (known: background, command, description, device, format, matte, "
                         "model, output)"),
    ('zeta = 1\nalpha = 2\n', "unknown entry 'alpha'"),  # the first, sorted
    ('[tune]\nsteps = 3\n', "unknown entry 'tune'"),
    ('description = 5\n', "description = 5 should be a string"),
    ('command = 1\n', "command = 1 should be a string"),
    ('background = 5\n', "background = 5 should be a string"),
    ('command = "webcam"\n', "command must be \"matte\" or \"replace\", not 'webcam'"),
    ('[output]\nmax_height = "720"\n', "[output] max_height = '720' should be int"),
    ('[output]\nmax_height = 7.5\n', "[output] max_height = 7.5 should be int"),
    ('[output]\nmask_only = "false"\n', "[output] mask_only = 'false' should be bool"),
    ('[output]\nmask_only = 1\n', "[output] mask_only = 1 should be bool"),
    ('[output]\ncrf = true\n', "[output] crf = True should be int"),
    ('[matte]\nsmooth = true\n', "[matte] smooth = True should be int"),
    ('[matte]\nrefine = "yes"\n', "[matte] refine = 'yes' should be bool"),
    ('[matte]\ncrop = 1\n', "[matte] crop = 1 should be str"),
    ('[model]\nname = 3\n', "[model] name = 3 should be str"),
    ('[device]\nbatch = "2"\n', "[device] batch = '2' should be int"),
    ('[device]\nkind = "gpu"\n', "[device] kind = 'gpu' is not one of auto, cpu, cuda"),
    ('[device]\nprecision = "fp8"\n', "[device] precision = 'fp8' is not one of auto, fp32, fp16, bf16, int8"),
    ('[device]\nruntime = "tensorrt"\n', "runtime = 'tensorrt' is not one of auto, torch, onnxruntime, openvino"),
    ('[model]\nnormalization = "minmax"\n', "[model] normalization = 'minmax' is not one of auto, reference, fixed"),
    ('[matte]\ncrop = "sometimes"\n', "[matte] crop = 'sometimes' is not one of auto, off"),
    # per-run values are flags only: a preset must not overwrite, trim or pick frames
    ('[output]\noverwrite = true\n', "[output] has no key 'overwrite' (known: crf, mask_only, max_height, strict)"),
    ('[output]\nstart = 1.0\n', "[output] has no key 'start'"),
    ('[output]\nend = 2.0\n', "[output] has no key 'end'"),
    ('[output]\nframes = [0, 1]\n', "[output] has no key 'frames'"),
    ('[output]\nevery = 2\n', "[output] has no key 'every'"),
    ('[output]\npicture = true\n', "[output] has no key 'picture'"),
    ('[output]\nformat = "mov"\n', "[output] has no key 'format'"),
    ('[matte]\nsmoothing = 3\n', "[matte] has no key 'smoothing' (known: crop, refine, smooth)"),
    ('[model]\nsize = 3\n', "[model] has no key 'size' (known: input_size, name, normalization)"),
    ('[device]\ngpu = 1\n', "[device] has no key 'gpu' (known: batch, cuda_graphs, kind, precision, runtime)"),
    ('output = 3\n', "[output] must be a table of key = value lines"),
    ('matte = "smooth"\n', "[matte] must be a table of key = value lines"),
    ('model = [1]\n', "[model] must be a table of key = value lines"),
    ('device = 1\n', "[device] must be a table of key = value lines"),
    ('format = ".mp4"\n', "[format] must be a table of key = value lines"),
    ('[format]\nextension = ".mp4"\n', "[format] needs codec, container, pix_fmt"),
    ('[format]\ncodec = "png"\ncontainer = "image2"\npix_fmt = "rgba"\n', "[format] needs extension"),
    ('[format]\nextension = "mp4"\ncontainer = "mp4"\ncodec = "libx264"\npix_fmt = "yuv420p"\n',
     "[format] extension must start with a dot"),
    ('[format]\nextension = ".mp4"\ncontainer = "mp4"\ncodec = "libx264"\npix_fmt = "yuv420p"\nbitrate = "1M"\n',
     "[format] has no key 'bitrate'"),
    ('[format]\nextension = ".mp4"\ncontainer = "mp4"\ncodec = "libx264"\npix_fmt = "yuv420p"\naudio_bitrate = 128\n',
     "[format] audio_bitrate = 128 should be str"),
    ('[format]\nextension = ".mp4"\ncontainer = "mp4"\ncodec = "libx264"\npix_fmt = "yuv420p"\n'
     'codec_options = "crf=18"\n', "[format] codec_options = 'crf=18' should be dict"),
    ('[format]\nextension = 4\ncontainer = "mp4"\ncodec = "libx264"\npix_fmt = "yuv420p"\n',
     "[format] extension = 4 should be str"),
    ('[format\n', "is not valid TOML"),
]


@pytest.mark.parametrize("toml, words", BAD_PRESETS)
def test_bad_preset_files_are_refused_saying_what_is_wrong(toml, words, tmp_path):
    path = write(tmp_path, toml)
    with pytest.raises(ConfigError) as error:
        load_preset(path)
    message = one_line(error)
    assert words in message, message
    assert str(path) in message or "p.toml" in message  # which file


@pytest.mark.parametrize("toml, words", [
    ('[matte]\nsmooth = 99\n', "99 is out of range"),
    ('[device]\nbatch = 0\n', "batch size 0 must be at least 1"),
    ('[model]\ninput_size = 100\n', "input size 100 is not a multiple of 32"),
    ('[output]\nmax_height = 8\n', "max height 8 is too small"),
    ('[output]\ncrf = -1\n', "-1 is negative"),
])
def test_preset_values_out_of_range_fail_when_the_preset_loads(toml, words, tmp_path):
    path = write(tmp_path, toml)
    with pytest.raises(ConfigError) as error:
        load_preset(path)
    assert words in one_line(error) and f"preset {path}:" in one_line(error)  # which file says it


def test_a_preset_for_the_other_command_is_refused():
    load_preset("prores4444").check_command("matte")
    with pytest.raises(ConfigError) as error:
        load_preset("prores4444").check_command("replace")
    message = one_line(error)
    assert "preset prores4444 is for `u2video matte`, not `replace`" in message
    assert message.endswith("see `u2video presets`")
    with pytest.raises(ConfigError, match="is for `u2video replace`, not `matte`"):
        load_preset("web-small").check_command("matte")
    load_preset("png-seq").check_command("matte")
    load_preset("png-seq").check_command("replace")


def test_unknown_preset_names_list_the_builtin_ones():
    with pytest.raises(ConfigError) as error:
        load_preset("nope")
    message = one_line(error)
    assert "unknown preset 'nope'" in message and ", ".join(BUILTIN) in message
    assert message.endswith("or give a path to a .toml file")


@pytest.mark.parametrize("given", ["missing.toml", "sub/missing", "sub\\missing"])
def test_paths_to_missing_preset_files_say_the_file_does_not_exist(given, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as error:
        load_preset(given)
    assert "does not exist" in one_line(error) and "missing" in str(error.value)


def test_a_preset_path_object_is_accepted(tmp_path):
    preset = load_preset(write(tmp_path, '[matte]\nrefine = false\n', name="soft.toml"))
    assert preset.name == "soft" and preset.matte_config().refine is False


# -- presets: text --

def test_preset_text_is_the_builtin_file_as_written():
    assert preset_text("web-small") == (PRESETS / "web-small.toml").read_text(encoding="utf-8")
    assert preset_text("png-seq") == (PRESETS / "png-seq.toml").read_text(encoding="utf-8")


def test_preset_text_of_a_file_is_that_file(tmp_path):
    text = '# mine\n[matte]\nsmooth = 2\n'
    assert preset_text(str(write(tmp_path, text))) == text


def test_preset_text_of_unknown_names_and_missing_files_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="unknown preset 'nope'"):
        preset_text("nope")
    with pytest.raises(ConfigError, match="does not exist"):
        preset_text(str(tmp_path / "missing.toml"))


# -- formats by extension --

@pytest.mark.parametrize("command, mask_only, extension, expected", [
    ("matte", False, "mov", (".mov", "mov", "prores_ks", "yuva444p10le")),
    ("matte", False, ".MOV", (".mov", "mov", "prores_ks", "yuva444p10le")),
    ("matte", False, "webm", (".webm", "webm", "libvpx-vp9", "yuva420p")),
    ("matte", False, "png", ("", "image2", "png", "rgba")),
    ("matte", False, "PNG-seq", ("", "image2", "png", "rgba")),
    ("matte", True, "mkv", (".mkv", "matroska", "ffv1", "gray")),
    ("matte", True, "mov", (".mov", "mov", "prores_ks", "yuv444p10le")),
    ("matte", True, ".png", ("", "image2", "png", "rgba")),
    ("replace", False, "mp4", (".mp4", "mp4", "libx264", "yuv420p")),
    ("replace", True, "mp4", (".mp4", "mp4", "libx264", "yuv420p")),  # --matte-only is matte's alone
    ("replace", False, "mkv", (".mkv", "matroska", "libx264", "yuv420p")),
    ("replace", False, "mov", (".mov", "mov", "prores_ks", "yuv422p10le")),
    ("replace", False, "webm", (".webm", "webm", "libvpx-vp9", "yuv420p")),
    ("replace", False, "png", ("", "image2", "png", "rgba")),
])
def test_format_by_extension_gives_the_commands_default_format(command, mask_only, extension, expected):
    fmt = format_by_extension(command, mask_only, extension)
    assert (fmt.extension, fmt.container, fmt.codec, fmt.pix_fmt) == expected


@pytest.mark.parametrize("command, mask_only, extension, words", [
    ("matte", False, "mp4", "--format mp4: `matte` writes one of mov, webm, png"),
    ("matte", True, "webm", "--format webm: `matte` --matte-only writes one of mkv, mov, png"),
    ("replace", False, "avi", "--format avi: `replace` writes one of mp4, mkv, mov, webm, png"),
    ("replace", True, "gif", "--format gif: `replace` --matte-only writes one of mp4, mkv, mov, webm, png"),
])
def test_format_by_extension_refuses_others_listing_the_choices(command, mask_only, extension, words):
    with pytest.raises(ConfigError) as error:
        format_by_extension(command, mask_only, extension)
    assert words in one_line(error)


# -- output paths --

def test_png_sequences_are_folders_patterns_or_paths_without_extension(tmp_path):
    assert is_png_sequence(Path("out/%05d.png")) is True
    assert is_png_sequence(Path("frames_%d")) is True
    assert is_png_sequence(Path("out")) is True
    assert is_png_sequence(tmp_path) is True
    (tmp_path / "clips.d").mkdir()
    assert is_png_sequence(tmp_path / "clips.d") is True  # an existing folder, whatever its name
    assert is_png_sequence(Path("out.mov")) is False
    assert is_png_sequence(tmp_path / "missing.mp4") is False


def test_sequence_target_splits_a_pattern_and_names_a_folders_frames():
    assert sequence_target(Path("out/frame_%04d.png")) == (Path("out"), "frame_%04d.png")
    assert sequence_target(Path("out")) == (Path("out"), "%05d.png")
    assert sequence_target(Path("a/b/masks")) == (Path("a/b/masks"), "%05d.png")


# -- video_format --

@pytest.mark.parametrize("output, command, mask_only, expected", [
    ("clip.mov", "matte", False, (".mov", "prores_ks", "yuva444p10le")),
    ("CLIP.MOV", "matte", False, (".mov", "prores_ks", "yuva444p10le")),
    ("clip.webm", "matte", False, (".webm", "libvpx-vp9", "yuva420p")),
    ("out", "matte", False, ("", "png", "rgba")),
    ("out/%05d.png", "matte", False, ("", "png", "rgba")),
    ("clip.mkv", "matte", True, (".mkv", "ffv1", "gray")),
    ("clip.mov", "matte", True, (".mov", "prores_ks", "yuv444p10le")),
    ("out", "matte", True, ("", "png", "rgba")),
    ("clip.mp4", "replace", False, (".mp4", "libx264", "yuv420p")),
    ("clip.mp4", "replace", True, (".mp4", "libx264", "yuv420p")),
    ("clip.mkv", "replace", False, (".mkv", "libx264", "yuv420p")),
    ("clip.mov", "replace", False, (".mov", "prores_ks", "yuv422p10le")),
    ("clip.webm", "replace", False, (".webm", "libvpx-vp9", "yuv420p")),
    ("frames/", "replace", False, ("", "png", "rgba")),
])
def test_the_default_format_follows_the_outputs_extension(output, command, mask_only, expected):
    fmt = video_format(Path(output), command, mask_only, None)
    assert (fmt.extension, fmt.codec, fmt.pix_fmt) == expected


@pytest.mark.parametrize("output, command, mask_only, words", [
    ("clip.mp4", "matte", False, "clip.mp4: .mp4 cannot hold alpha (.mp4 has no codec with alpha that editors read): "
                                 "use .mov, .webm, or a folder for a PNG sequence"),
    ("clip.avi", "matte", False, "clip.avi: .avi cannot hold alpha: use .mov, .webm, or a folder"),
    ("clip.webm", "matte", True, "clip.webm: .webm cannot hold a grey matte: use .mkv, .mov, or a folder"),
    ("clip.avi", "replace", False, "clip.avi: .avi cannot hold video: use .mp4, .mkv, .mov, .webm, or a folder"),
    ("clip.avi", "replace", True, "clip.avi: .avi cannot hold a grey matte: use .mp4, .mkv, .mov, .webm, or a"),
])
def test_an_extension_without_a_default_format_is_refused(output, command, mask_only, words):
    with pytest.raises(ConfigError) as error:
        video_format(Path(output), command, mask_only, None)
    assert words in one_line(error)


def test_replace_into_mp4_gets_no_alpha_hint():
    with pytest.raises(ConfigError) as error:
        video_format(Path("clip.gif"), "replace", False, None)
    assert "editors read" not in one_line(error)


def test_a_given_format_is_used_as_it_is():
    assert video_format(Path("out.mp4"), "replace", False, H264) == H264
    assert video_format(Path("out.mov"), "matte", False, PRORES) == PRORES
    assert video_format(Path("out.mkv"), "matte", True, GREY) == GREY
    assert video_format(Path("frames"), "replace", False, PNGS) == PNGS
    upper = VideoFormat(".MOV", "mov", "prores_ks", "yuva444p10le")
    assert video_format(Path("out.mov"), "matte", False, upper) == upper


def test_a_sequence_format_needs_a_folder_and_a_file_format_a_file():
    with pytest.raises(ConfigError) as error:
        video_format(Path("out.mp4"), "replace", False, PNGS)
    assert "the png format writes a folder or a pattern like out/%05d.png, not out.mp4" in one_line(error)
    with pytest.raises(ConfigError) as error:
        video_format(Path("frames"), "replace", False, H264)
    assert "the libx264 format writes a .mp4 file, not frames" in one_line(error)


@pytest.mark.parametrize("name", ["%05d.png", "frame_%d.png", "f%5d_x.PNG", "%0d.png"])
def test_frame_patterns_with_one_number_ending_in_png_are_accepted(name):
    assert video_format(Path("out") / name, "matte", False, PNGS) == PNGS


@pytest.mark.parametrize("name", ["%05d.jpg", "%s.png", "%d_%d.png", "frame%.png", "%05d.png.bak"])
def test_other_frame_patterns_are_refused(name):
    with pytest.raises(ConfigError) as error:
        video_format(Path("out") / name, "matte", False, PNGS)
    message = one_line(error)
    assert f"{name} is not a frame pattern like frame_%05d.png" in message and message.endswith("ending in .png")


def test_a_format_for_another_extension_names_the_right_output():
    with pytest.raises(ConfigError) as error:
        video_format(Path("dir/clip.webm"), "matte", False, PRORES)
    assert ("the chosen format writes .mov files (prores_ks in mov), not .webm: name the output clip.mov"
            in one_line(error))


def test_matte_needs_alpha_unless_it_writes_the_matte_alone():
    with pytest.raises(ConfigError) as error:
        video_format(Path("out.mp4"), "matte", False, H264)
    message = one_line(error)
    assert "libx264/yuv420p has no alpha channel" in message
    assert message.endswith("(prores4444, webm-alpha, png-seq) or pass --matte-only")
    assert video_format(Path("out.mp4"), "matte", True, H264) == H264
    assert video_format(Path("out.mp4"), "replace", False, H264) == H264
    grey_pngs = VideoFormat("", "image2", "png", "gray")  # a PNG sequence's pixel format is chosen per command
    assert video_format(Path("out"), "matte", False, grey_pngs) == grey_pngs


def test_replace_refuses_a_grey_only_format():
    with pytest.raises(ConfigError) as error:
        video_format(Path("out.mkv"), "replace", False, GREY)
    assert "ffv1/gray holds only grey: `replace` writes colour" in one_line(error)
    assert video_format(Path("out.mkv"), "matte", True, GREY) == GREY


@pytest.mark.parametrize("codec, top", [("libx264", 51), ("libx265", 51), ("libvpx-vp9", 63)])
def test_crf_sets_the_encoders_quality_within_its_range(codec, top):
    ext, container = (".webm", "webm") if codec == "libvpx-vp9" else (".mp4", "mp4")
    given = VideoFormat(ext, container, codec, "yuv420p", {"preset": "medium", "crf": "18"})
    for crf in (0, top):
        fmt = video_format(Path("out" + ext), "replace", False, given, crf=crf)
        assert fmt.codec_options == {"preset": "medium", "crf": str(crf)}
        assert (fmt.codec, fmt.pix_fmt, fmt.extension) == (codec, "yuv420p", ext)
    assert given.codec_options == {"preset": "medium", "crf": "18"}  # the preset's format is left alone
    with pytest.raises(ConfigError) as error:
        video_format(Path("out" + ext), "replace", False, given, crf=top + 1)
    assert f"--crf {top + 1} is out of range for {codec}: give 0 to {top}" in one_line(error)


def test_crf_applies_to_the_default_format_too():
    fmt = video_format(Path("out.mp4"), "replace", False, None, crf=23)
    assert fmt.codec == "libx264" and fmt.codec_options["crf"] == "23" and fmt.codec_options["preset"] == "medium"
    assert video_format(Path("out.mp4"), "replace", False, None).codec_options["crf"] == "18"


def test_crf_is_refused_for_encoders_without_it():
    with pytest.raises(ConfigError) as error:
        video_format(Path("out.mov"), "matte", False, PRORES, crf=20)
    assert "--crf does not apply to prores_ks" in one_line(error) and "H.264/H.265 and VP9" in str(error.value)


# -- the type check of a table, for fields beyond the presets' sections --

def test_a_float_field_takes_integers_too_but_not_booleans_or_strings():
    assert _checked(ClusterConfig, {"segment_seconds": 30, "retries": 1}, "x") == {"segment_seconds": 30,
                                                                                  "retries": 1}
    assert _checked(ClusterConfig, {"segment_seconds": 2.5}, "x") == {"segment_seconds": 2.5}
    with pytest.raises(ConfigError) as error:
        _checked(ClusterConfig, {"segment_seconds": "60"}, "[cluster]")
    assert "[cluster] segment_seconds = '60' should be float or int" in one_line(error)
    with pytest.raises(ConfigError, match="should be float or int"):
        _checked(ClusterConfig, {"segment_seconds": True}, "[cluster]")
    with pytest.raises(ConfigError, match="address = 1 should be str"):
        _checked(ClusterConfig, {"address": 1}, "[cluster]")


@dataclass
class _Unions:
    ratio: None | float = None  # None first
    label: str | float = ""


def test_union_fields_take_each_of_their_types_whichever_order_they_are_written():
    assert _checked(_Unions, {"ratio": 0.5, "label": "a"}, "x") == {"ratio": 0.5, "label": "a"}
    assert _checked(_Unions, {"ratio": 2, "label": 1.5}, "x") == {"ratio": 2, "label": 1.5}
    assert _checked(_Unions, {"label": 3}, "x") == {"label": 3}
    with pytest.raises(ConfigError, match="label = True should be float or int or str"):
        _checked(_Unions, {"label": True}, "x")


def test_presets_are_read_as_utf8(tmp_path):
    path = tmp_path / "u.toml"
    path.write_bytes('description = "U²-Net — für Grün"\n'.encode("utf-8"))
    assert load_preset(path).description == "U²-Net — für Grün"
    assert preset_text(str(path)) == 'description = "U²-Net — für Grün"\n'


def test_preset_text_of_a_file_without_toml_suffix_is_that_file(tmp_path):
    # load_preset takes such a path (it has a '/'), so `u2video presets PATH` should show it too
    path = write(tmp_path, '[matte]\nsmooth = 2\n', name="mine")
    assert load_preset(str(path)).matte_config().smooth == 2
    assert preset_text(str(path)) == '[matte]\nsmooth = 2\n'
