"""Hand-written mutants of the I/O paths: each one is a bug we could plausibly write (audio
carrying, rename and salvage, colour order, the live slot, the defaults, ...). For each, this
script copies the project to a temporary folder, applies the bug there (the working tree is
never touched), runs the tests that should catch it and prints caught or SURVIVED.

    U2NET_HOME=../shared/models python tests/mutants.py            # all of them
    U2NET_HOME=../shared/models python tests/mutants.py -k audio   # those whose name has "audio"
    python tests/mutants.py --list

A mutant that survives means a bug of that kind would reach users: add a test that fails on it.
Every test named here is a pixel, stream or file check, never a timing test. Exit code 1 if
any mutant survived (or its edit no longer matches the code). mutmut covers the pure modules
(README, "Development").
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COPIED = ("u2video", "tests", "presets", "samples", "pyproject.toml")


@dataclass(frozen=True)
class Mutant:
    name: str
    edits: tuple[tuple[str, str, str], ...]  # (file, text in it, what it becomes)
    tests: tuple[str, ...]  # pytest node ids or files that must catch it


def mutant(name: str, file: str, old: str, new: str, *tests: str) -> Mutant:
    return Mutant(name, ((file, old, new),), tests)


MUTANTS = [
    # --- issue 19's table: bugs a reviewer planted that the suite missed then ---
    mutant("network input fed BGR instead of RGB", "u2video/segmenter.py",
           "return frames.to(self.device, non_blocking=True).permute(0, 3, 1, 2).float()",
           "return frames.to(self.device, non_blocking=True).flip(3).permute(0, 3, 1, 2).float()",
           "tests/test_fidelity.py"),
    mutant("smoothing made a no-op", "u2video/alpha.py",
           "    if params.radius == 0 or preds.shape[0] == 1:\n        return preds[centre:centre + 1]",
           "    if True:\n        return preds[centre:centre + 1]",
           "tests/test_alpha.py"),
    mutant("smoothing off by default", "u2video/config.py",
           "    smooth: int = 6  #", "    smooth: int = 0  #",
           "tests/test_defaults.py"),
    mutant("only the first audio stream carried", "u2video/media/audio.py",
           "if streams is None or i in streams]", "if (i == 0 if streams is None else i in streams)]",
           "tests/test_audio_streams.py"),
    mutant("matte-only output written without audio", "u2video/api.py",
           "                             source, options.start, options.end, options.max_height, options.overwrite)",
           "                             None if options.mask_only else source, options.start, options.end,"
           " options.max_height, options.overwrite)",
           "tests/test_audio_streams.py"),
    mutant("output copied instead of renamed at the end", "u2video/media/files.py",
           "        return _rename_no_replace(tmp, target)  # a file system without hard links (FAT, some shares)\n"
           "    os.unlink(tmp)",
           "        return _rename_no_replace(tmp, target)  # a file system without hard links (FAT, some shares)\n"
           "    pass  # the temporary file stays: a copy, not a rename",
           "tests/test_audio_streams.py"),
    Mutant("live frame slot made a 3-deep FIFO", (
        ("u2video/media/live.py",
         "            if not self._taken:\n                self.dropped += 1\n"
         "            self._frame, self._taken = frame, False\n",
         "            queue = self.__dict__.setdefault('_queue', [])\n            queue.append(frame)\n"
         "            if len(queue) > 3:\n                queue.pop(0)\n                self.dropped += 1\n"
         "            self._frame, self._taken = queue[0], False\n"),
        ("u2video/media/live.py",
         "            if not self._taken:\n                self._taken = True\n                return self._frame\n",
         "            if not self._taken:\n                queue = self.__dict__.setdefault('_queue', [])\n"
         "                frame = queue.pop(0)\n                self._taken = not queue\n                return frame\n"),
    ), ("tests/test_webcam.py::test_newest_frame_is_taken_and_replaced_ones_are_counted",)),
    mutant("live path decodes files as BGR", "u2video/media/live.py",
           "            time.sleep(delay)  # a file is released at its real rate, like a camera\n        return frame.rgb",
           "            time.sleep(delay)  # a file is released at its real rate, like a camera\n"
           "        return frame.rgb[..., ::-1]",
           "tests/test_colour_order.py::test_a_file_played_as_a_camera_gives_rgb"),
    mutant("image replace returns the frame without compositing", "u2video/api.py",
           "write_image(job.target, render(frames, alpha)[0].cpu().numpy(), overwrite)",
           "write_image(job.target, (frames if isinstance(render, Compositor) else render(frames, alpha))[0]"
           ".cpu().numpy(), overwrite)",
           "tests/test_video_replace.py::test_replace_an_image"),
    mutant("partial output keeps all audio instead of what was written", "u2video/media/writers.py",
           "            if all_audio:\n                self._audio.finish()",
           "            if True:\n                self._audio.finish()",
           "tests/test_audio_streams.py::test_a_partial_output_keeps_each_audio_stream_only_as_far_as_its_video"),
    mutant("background cover() stretches instead of cropping", "u2video/backgrounds.py",
           "    return resized[y:y + height, x:x + width]",
           "    return cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)",
           "tests/test_compose.py"),
    # --- more of the same kind ---
    mutant("refinement off by default", "u2video/config.py",
           "    refine: bool = True  #", "    refine: bool = False  #",
           "tests/test_defaults.py"),
    mutant("still areas not held", "u2video/alpha.py",
           "    if state is None or params.keep == 0 or state.alpha.shape != alpha.shape:",
           "    if True:",
           "tests/test_alpha.py"),
    mutant("frame times rewritten as 0, 1, 2, ...", "u2video/media/writers.py",
           "        if pts is None or (self._last_pts is not None and pts <= self._last_pts):",
           "        if True:",
           "tests/test_video_matte.py::test_variable_frame_rate_and_start_offset_are_kept"),
    mutant("rotation tag ignored", "u2video/media/source.py",
           "                if self._rotation:\n", "                if False:\n",
           "tests/test_video_matte.py::test_rotated_clip_comes_out_upright_with_no_rotation_tag"),
    mutant("cut-out premultiplied instead of straight alpha", "u2video/compose.py",
           "    return torch.cat((frames.to(a.device), a), dim=3)",
           "    return torch.cat(((frames.to(a.device).float() * a / 255).round().to(torch.uint8), a), dim=3)",
           "tests/test_compose.py"),
    mutant("ProRes 4444 written without its alpha plane", "presets/prores4444.toml",
           'pix_fmt = "yuva444p10le"', 'pix_fmt = "yuv444p10le"',
           "tests/test_video_matte.py::test_prores_4444_with_alpha"),
    mutant("an existing output replaced without --overwrite", "u2video/media/files.py",
           "    if target.exists() and not overwrite:\n        raise ConfigError",
           "    if False:\n        raise ConfigError",
           "tests/test_cli_images.py::test_existing_output_needs_overwrite"),
    mutant("damaged weights loaded without a checksum", "u2video/model/store.py",
           "    actual = file_md5(path)\n    if actual != spec.md5:",
           "    actual = file_md5(path)\n    if False:",
           "tests/test_store.py"),
    mutant("SIGTERM not handled as a stop", "u2video/interrupts.py",
           '("SIGINT", "SIGTERM", "SIGHUP")', '("SIGINT", "SIGHUP")',
           "tests/test_safety.py::test_sigterm_and_sighup_stop_like_ctrl_c"),
    mutant("one failed video ends the batch", "u2video/batch.py",
           "                fail(job, str(e), summary, reporter)\n                continue",
           "                raise",
           "tests/test_batch.py::test_a_folder_gives_each_video_its_own_output_and_a_damaged_one_fails_alone"),
    mutant("stale PNG frames kept on --overwrite", "u2video/media/writers.py",
           "            if stale_frame or stale_audio:", "            if False:",
           "tests/test_video_matte.py::test_overwriting_a_png_sequence_leaves_no_stale_frames"),
    mutant("images decoded as BGR", "u2video/media/images.py",
           "    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)\n\n\ndef _jpeg_is_complete",
           "    return bgr\n\n\ndef _jpeg_is_complete",
           "tests/test_colour_order.py"),
    mutant("camera frames left BGR", "u2video/media/live.py",
           "        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) if ok and bgr is not None else None",
           "        return bgr if ok and bgr is not None else None",
           "tests/test_colour_order.py::test_the_camera_reader_gives_rgb"),
    mutant("EXIF orientation ignored", "u2video/media/images.py",
           "cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)",
           "cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)",
           "tests/test_cli_images.py::test_exif_rotation_is_honoured"),
    mutant("blur background blurs the subject in", "u2video/backgrounds.py",
           "        keep = 1.0 - alpha  # weight: background pixels only",
           "        keep = torch.ones_like(alpha)",
           "tests/test_compose.py"),
    mutant("an output that does not play counted as finished", "u2video/batch.py",
           '        fail(job, f"{job.target} is there but does not play',
           '        return False\n        fail(job, f"{job.target} is there but does not play',
           "tests/test_batch.py::test_an_output_that_does_not_play_is_not_replaced"),
]


def apply(root: Path, m: Mutant) -> None:
    for file, old, new in m.edits:
        path = root / file
        text = path.read_text()
        if text.count(old) != 1:
            raise LookupError(f"{file}: the text to change is there {text.count(old)} times, not once "
                              "(the code moved: update the mutant)")
        path.write_text(text.replace(old, new))


def run(m: Mutant, timeout: float) -> tuple[str, str, float]:
    """-> (verdict, detail, seconds): caught (by which tests), SURVIVED, or ERROR."""
    with tempfile.TemporaryDirectory(prefix="u2video-mutant-") as tmp:
        root = Path(tmp)
        for name in COPIED:
            src = REPO / name
            if src.is_dir():
                shutil.copytree(src, root / name, ignore=shutil.ignore_patterns("__pycache__", "demo"))
            else:
                shutil.copy2(src, root / name)
        try:
            apply(root, m)
        except LookupError as e:
            return "ERROR", str(e), 0.0
        # the package's presets (u2video.builtin_presets) come from presets/: in the copy too,
        # not through the editable install's mapping to the checkout
        shutil.copytree(root / "presets", root / "u2video" / "builtin_presets")
        # the copy comes first on the path, before the editable install, in this process and
        # in every process the tests start
        env = dict(os.environ, PYTHONPATH=str(root), PYTHONDONTWRITEBYTECODE="1",
                   U2VIDEO_SHARED=str(REPO.parent / "shared"))  # the copy has no ../shared beside it
        started = time.monotonic()
        try:
            done = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-rf", "-p", "no:cacheprovider",
                                   *m.tests], cwd=root, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return "ERROR", f"tests ran past {timeout:g} s", time.monotonic() - started
        seconds = time.monotonic() - started
        failed = re.findall(r"^FAILED (\S+)", done.stdout, re.M)
        if done.returncode == 1 and failed:
            return "caught", ", ".join(f.replace("tests/", "") for f in failed), seconds
        skipped = re.search(r"(\d+) skipped", done.stdout)
        if skipped:  # a skipped test catches nothing: its data or package is missing here
            return "ERROR", f"{skipped.group(1)} of the tests skipped (pytest -rs says why)", seconds
        if done.returncode == 0:
            return "SURVIVED", "", seconds
        tail = (done.stdout + done.stderr).strip().splitlines()[-3:]
        return "ERROR", f"pytest exit {done.returncode}: " + " | ".join(tail), seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-k", default="", help="only mutants whose name contains this")
    parser.add_argument("--list", action="store_true", help="list the mutants and their tests")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per mutant's tests")
    args = parser.parse_args()
    chosen = [m for m in MUTANTS if args.k.lower() in m.name.lower()]
    if args.list:
        for m in chosen:
            print(f"{m.name}: {' '.join(m.tests)}")
        return 0
    results = []
    for i, m in enumerate(chosen, 1):
        verdict, detail, seconds = run(m, args.timeout)
        results.append(verdict)
        print(f"[{i}/{len(chosen)}] {verdict:8} {m.name} ({seconds:.0f} s){': ' + detail if detail else ''}",
              flush=True)
    caught = results.count("caught")
    print(f"{caught} of {len(results)} caught, {results.count('SURVIVED')} survived, {results.count('ERROR')} errors")
    return 0 if caught == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
