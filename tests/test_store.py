"""The model store (model/store.py): where it is, checksums, listing, lookup, verify and pull.

Downloads are faked: a registry entry points at a local file (file:// URL), or urlopen is replaced.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import socket
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path

import pytest

from u2video.errors import ModelError
from u2video.model import registry, store

U2NETP = registry.MODELS["u2netp"]


def md5_of(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


class RecordingReporter:
    """Records each bar (desc, total, unit), the bytes it was told about and whether it was closed."""

    def __init__(self):
        self.bars: list[dict] = []

    def info(self, message): pass

    def warn(self, message): pass

    def bar(self, desc, total, unit):
        record = {"desc": desc, "total": total, "unit": unit, "bytes": 0, "updates": 0, "closed": False}
        self.bars.append(record)

        class Bar:
            def update(self, n=1):
                record["bytes"] += n
                record["updates"] += 1

            def set_postfix_str(self, s=""): pass

            def close(self):
                record["closed"] = True
        return Bar()


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """An empty store at tmp_path/store (not created yet), downloads allowed."""
    monkeypatch.setenv("U2NET_HOME", str(tmp_path / "store"))
    monkeypatch.delenv("U2VIDEO_OFFLINE")
    return tmp_path / "store"


def release(tmp_path: Path, monkeypatch, content: bytes, md5: str | None = None) -> registry.ModelSpec:
    """A u2netp whose 'release' is a local file with ``content`` (urllib reads file:// like https://)."""
    path = tmp_path / "release" / "u2netp.onnx"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(content)
    spec = replace(U2NETP, url=path.as_uri(), md5=md5 or md5_of(content))
    monkeypatch.setitem(registry.MODELS, "u2netp", spec)
    return spec


class FakeResponse(io.BytesIO):
    def __init__(self, data: bytes, headers: dict, on_read=None):
        super().__init__(data)
        self.headers = headers
        self.on_read = on_read

    def read(self, n=-1):
        if self.on_read:
            self.on_read()
        return super().read(n)


def fake_urlopen(monkeypatch, make):
    """Replace urlopen; ``make(url, timeout)`` returns a response or raises. Returns the calls made."""
    calls = []

    def urlopen(url, timeout=None):
        calls.append((url, timeout))
        return make(url, timeout)
    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    return calls


# --- location and checksums -------------------------------------------------------------------


def test_store_dir_prefers_u2net_home(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("U2NET_HOME", str(tmp_path / "mine"))
    assert store.store_dir() == tmp_path / "mine"


def test_store_dir_falls_back_to_xdg_data_home(monkeypatch, tmp_path):
    monkeypatch.delenv("U2NET_HOME", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert store.store_dir() == tmp_path / ".u2net"


def test_store_dir_defaults_to_the_home_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("U2NET_HOME", raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert store.store_dir() == tmp_path / ".u2net"


def test_store_dir_expands_a_tilde(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("U2NET_HOME", "~/weights")
    assert store.store_dir() == tmp_path / "weights"


def test_file_md5_of_small_empty_and_multi_chunk_files(tmp_path):
    small = tmp_path / "small"
    small.write_bytes(b"abc")
    assert store.file_md5(small) == "900150983cd24fb0d6963f7d28e17f72"  # RFC 1321's test vector
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert store.file_md5(empty) == "d41d8cd98f00b204e9800998ecf8427e"
    big = tmp_path / "big"
    data = bytes(range(256)) * 5000 + b"tail"  # over 1 MiB: several reads
    big.write_bytes(data)
    assert store.file_md5(big) == md5_of(data)


# --- listing and lookup -----------------------------------------------------------------------------


def test_list_store_says_what_is_present_and_intact(monkeypatch, tmp_path):
    monkeypatch.setenv("U2NET_HOME", str(tmp_path))
    good = b"good weights"
    monkeypatch.setitem(registry.MODELS, "u2netp", replace(U2NETP, md5=md5_of(good)))
    (tmp_path / "u2netp.onnx").write_bytes(good)
    (tmp_path / "u2net.onnx").write_bytes(b"damaged")
    (tmp_path / "silueta.onnx").mkdir()  # not a file
    entries = {e.spec.name: e for e in store.list_store()}
    assert list(entries) == list(registry.MODELS)
    assert [(n, e.path, e.present, e.verified) for n, e in entries.items()] == [
        ("u2netp", tmp_path / "u2netp.onnx", True, True),
        ("u2net", tmp_path / "u2net.onnx", True, False),
        ("u2net_human_seg", tmp_path / "u2net_human_seg.onnx", False, False),
        ("silueta", tmp_path / "silueta.onnx", False, False),
    ]
    assert entries["u2netp"].spec.md5 == md5_of(good)


def test_lookup_known_and_unknown_names():
    assert store.lookup("u2net") is registry.MODELS["u2net"]
    with pytest.raises(ModelError) as err:
        store.lookup("u3net")
    assert str(err.value) == ("unknown model 'u3net': use one of u2netp, u2net, u2net_human_seg, silueta, a tuned "
                              "model from `u2video models`, or a path to a .onnx or .pth file")
    assert err.value.__suppress_context__  # no KeyError chained behind it


@pytest.mark.parametrize("value, expected", [(None, False), ("", False), ("0", False), ("1", True),
                                             ("yes", True), ("00", True)])
def test_offline_is_any_value_but_empty_or_zero(monkeypatch, value, expected):
    if value is None:
        monkeypatch.delenv("U2VIDEO_OFFLINE", raising=False)
    else:
        monkeypatch.setenv("U2VIDEO_OFFLINE", value)
    assert store.offline() is expected


# --- verify -------------------------------------------------------------------------------------------


def test_verify_accepts_the_right_file(tmp_path):
    path = tmp_path / "w.onnx"
    path.write_bytes(b"weights")
    assert store.verify(replace(U2NETP, md5=md5_of(b"weights")), path) is None


def test_verify_offline_says_how_to_place_the_file_by_hand(tmp_path):
    path = tmp_path / "u2netp.onnx"
    path.write_bytes(b"junk")
    with pytest.raises(ModelError) as err:
        store.verify(U2NETP, path)
    assert str(err.value) == (
        f"{path} has md5 {md5_of(b'junk')}, not {U2NETP.md5} as u2netp should: the file is damaged or not "
        f"u2netp; place u2netp.onnx (md5 {U2NETP.md5}, from {U2NETP.url}) at {path} "
        "(downloads are off: U2VIDEO_OFFLINE is set)")


def test_verify_online_says_to_delete_and_pull(tmp_path, monkeypatch):
    monkeypatch.setenv("U2VIDEO_OFFLINE", "0")
    path = tmp_path / "u2netp.onnx"
    path.write_bytes(b"junk")
    with pytest.raises(ModelError) as err:
        store.verify(U2NETP, path)
    assert str(err.value).endswith("not u2netp; delete it and run `u2video models pull u2netp`")


# --- pull ---------------------------------------------------------------------------------------------


def test_pull_reuses_an_intact_copy_even_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("U2NET_HOME", str(tmp_path))
    spec = replace(U2NETP, md5=md5_of(b"weights"), url="file:///nonexistent/u2netp.onnx")
    (tmp_path / "u2netp.onnx").write_bytes(b"weights")
    assert store.pull(spec) == tmp_path / "u2netp.onnx"
    monkeypatch.delenv("U2VIDEO_OFFLINE")
    assert store.pull(spec) == tmp_path / "u2netp.onnx"  # no download tried: the url would fail


def test_pull_refuses_a_damaged_copy_without_force(tmp_path, monkeypatch, home):
    spec = release(tmp_path, monkeypatch, b"the real weights")
    home.mkdir()
    (home / "u2netp.onnx").write_bytes(b"damaged")
    with pytest.raises(ModelError, match="damaged or not u2netp; delete it and run `u2video models pull u2netp`"):
        store.pull(spec)
    assert (home / "u2netp.onnx").read_bytes() == b"damaged"


def test_pull_with_force_downloads_again(tmp_path, monkeypatch, home):
    spec = release(tmp_path, monkeypatch, b"the real weights")
    home.mkdir()
    (home / "u2netp.onnx").write_bytes(b"damaged")
    assert store.pull(spec, force=True) == home / "u2netp.onnx"
    assert (home / "u2netp.onnx").read_bytes() == b"the real weights"


def test_pull_offline_says_where_to_put_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("U2NET_HOME", str(tmp_path))
    with pytest.raises(ModelError) as err:
        store.pull(U2NETP)
    assert str(err.value) == (
        f"u2netp is not in the store and downloads are off (U2VIDEO_OFFLINE): place u2netp.onnx "
        f"(md5 {U2NETP.md5}, from {U2NETP.url}) at {tmp_path / 'u2netp.onnx'}")
    assert list(tmp_path.iterdir()) == []


def test_pull_downloads_into_a_new_nested_store_with_progress(tmp_path, monkeypatch):
    content = bytes(range(256)) * 4500  # over 1 MiB: two reads
    spec = release(tmp_path, monkeypatch, content)
    monkeypatch.setenv("U2NET_HOME", str(tmp_path / "a" / "b"))
    monkeypatch.delenv("U2VIDEO_OFFLINE")
    reporter = RecordingReporter()
    path = store.pull(spec, reporter)
    assert path == tmp_path / "a" / "b" / "u2netp.onnx" and path.read_bytes() == content
    assert reporter.bars == [{"desc": "downloading u2netp.onnx", "total": len(content), "unit": "B",
                              "bytes": len(content), "updates": 2, "closed": True}]
    assert [p.name for p in path.parent.iterdir()] == ["u2netp.onnx"]  # no .part left


def test_pull_without_a_reporter_into_an_existing_store(tmp_path, monkeypatch, home):
    spec = release(tmp_path, monkeypatch, b"weights")
    home.mkdir()
    assert store.pull(spec).read_bytes() == b"weights"


def test_pull_writes_to_a_hidden_part_file_in_the_store_first(tmp_path, monkeypatch, home):
    spec = replace(U2NETP, md5=md5_of(b"weights"))
    seen = []
    calls = fake_urlopen(monkeypatch, lambda url, timeout: FakeResponse(
        b"weights", {"Content-Length": "7"}, on_read=lambda: seen.append(sorted(p.name for p in home.iterdir()))))
    store.pull(spec)
    assert calls[0][0] == U2NETP.url and calls[0][1] is not None and calls[0][1] > 0  # never waits forever
    assert seen and len(seen[0]) == 1
    part = seen[0][0]
    assert part.startswith(".u2netp.onnx.") and part.endswith(".part")
    assert sorted(p.name for p in home.iterdir()) == ["u2netp.onnx"]


@pytest.mark.parametrize("length", [None, "", "abc", "-5"])
def test_pull_without_a_usable_length_has_an_open_ended_bar(tmp_path, monkeypatch, home, length):
    spec = replace(U2NETP, md5=md5_of(b"weights"))
    headers = {} if length is None else {"Content-Length": length}
    fake_urlopen(monkeypatch, lambda url, timeout: FakeResponse(b"weights", headers))
    reporter = RecordingReporter()
    store.pull(spec, reporter)
    assert reporter.bars[0]["total"] is None and reporter.bars[0]["bytes"] == 7


def test_pull_with_a_wrong_checksum_leaves_nothing(tmp_path, monkeypatch, home):
    spec = release(tmp_path, monkeypatch, b"tampered", md5=md5_of(b"the real thing"))
    with pytest.raises(ModelError) as err:
        store.pull(spec)
    assert str(err.value) == (
        f"the download of u2netp.onnx from {spec.url} has md5 {md5_of(b'tampered')}, not {spec.md5}; try again, "
        f"or place u2netp.onnx (md5 {spec.md5}, from {spec.url}) at {home / 'u2netp.onnx'}")
    assert list(home.iterdir()) == []


def test_pull_from_a_missing_url_says_how_to_do_without_network(tmp_path, monkeypatch, home):
    spec = replace(U2NETP, url=(tmp_path / "gone.onnx").as_uri())
    with pytest.raises(ModelError) as err:
        store.pull(spec)
    message = str(err.value)
    assert message.startswith("could not download u2netp.onnx (") and "No such file" in message
    assert message.endswith(f"); without network, place u2netp.onnx (md5 {U2NETP.md5}, from {spec.url}) "
                            f"at {home / 'u2netp.onnx'}")
    assert err.value.__suppress_context__
    assert list(home.iterdir()) == []


@pytest.mark.parametrize("error, reason", [(urllib.error.URLError("name not resolved"), "name not resolved"),
                                           (socket.timeout("timed out"), "timed out"),
                                           (ConnectionResetError("reset by peer"), "reset by peer")])
def test_pull_network_errors_become_model_errors(tmp_path, monkeypatch, home, error, reason):
    def fail(url, timeout):
        raise error
    fake_urlopen(monkeypatch, fail)
    with pytest.raises(ModelError, match=rf"^could not download u2netp\.onnx \({reason}\); without network, place"):
        store.pull(U2NETP)
    assert list(home.iterdir()) == []


def test_pull_onto_a_full_disk_says_so_and_leaves_nothing(tmp_path, monkeypatch, home):
    fake_urlopen(monkeypatch, lambda url, timeout: FakeResponse(b"weights", {"Content-Length": "7"}))
    opened = os.fdopen

    def full(fd, mode):
        f = opened(fd, mode)
        f.write = lambda data: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left on device"))
        return f
    monkeypatch.setattr(os, "fdopen", full)
    with pytest.raises(ModelError, match=r"^could not save u2netp\.onnx in the model store .*No space left on device"
                                         r".*free some space, or set U2NET_HOME"):
        store.pull(replace(U2NETP, md5=md5_of(b"weights")))
    assert list(home.iterdir()) == []


def test_pull_interrupted_mid_download_closes_the_bar_and_leaves_nothing(tmp_path, monkeypatch, home):
    class Broken(FakeResponse):
        def read(self, n=-1):
            raise ConnectionResetError("reset mid-way")
    fake_urlopen(monkeypatch, lambda url, timeout: Broken(b"", {"Content-Length": "7"}))
    reporter = RecordingReporter()
    with pytest.raises(ModelError, match=r"could not download u2netp\.onnx \(reset mid-way\)"):
        store.pull(U2NETP, reporter)
    assert reporter.bars[0]["closed"] and reporter.bars[0]["total"] == 7
    assert list(home.iterdir()) == []


def test_pull_into_an_unwritable_store_says_to_set_u2net_home(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("U2NET_HOME", str(blocker / "store"))
    monkeypatch.delenv("U2VIDEO_OFFLINE")
    with pytest.raises(ModelError) as err:
        store.pull(U2NETP)
    assert str(err.value) == (f"cannot write to the model store {blocker / 'store'} (Not a directory): "
                              "set U2NET_HOME to a writable folder")
    assert err.value.__suppress_context__
