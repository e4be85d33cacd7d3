"""A write that fails says why in the error's own words, never "None".

An OSError raised by a library (OSError("…"), no errno) has no strerror; each message below reads
the reason through nst.io.destinations.why_not_written, so it gives the error's first line.
"""
import re

import pytest

WORDS = "the library's own words"


def refuse(*args, **kwargs):
    raise OSError(WORDS)


def said(text):
    # the reason is in the message, "None" is not
    return f"({WORDS})" in text and "None" not in text


def test_demo_images_that_cannot_be_written(tmp_path, monkeypatch, capsys):
    from nst.cli import main
    monkeypatch.setenv("NST_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr("nst.cli.demo.demo_images", refuse)
    assert main(["demo", "-o", str(tmp_path / "out.png")]) == 2
    err = capsys.readouterr().err
    assert said(err) and "cannot write the demo images" in err


def test_a_cache_folder_that_cannot_be_written(tmp_path, monkeypatch):
    from nst.io import assets
    monkeypatch.setattr(assets.tempfile, "mkstemp", refuse)
    with pytest.raises(assets.AssetError, match="cannot write in the cache folder") as e:
        assets.check_cache_folder(tmp_path)
    assert said(str(e.value))


def test_a_cache_folder_that_is_a_link_to_nothing(tmp_path):
    # NST_HOME a link to a folder since removed was called "a file or lies under one"
    from nst.io import assets
    (tmp_path / "home").symlink_to(tmp_path / "gone")
    with pytest.raises(assets.AssetError, match=r"/home \(\$NST_HOME, else ~/.cache/nst\) is a link to nothing; "):
        assets.check_cache_folder(tmp_path / "home")
    with pytest.raises(assets.AssetError, match=re.escape(f"lies under a link to nothing ({tmp_path / 'home'}); set")):
        assets.check_cache_folder(tmp_path / "home" / "nst")
    (tmp_path / "file").write_text("x")
    with pytest.raises(assets.AssetError, match="is a file or lies under one"):
        assets.check_cache_folder(tmp_path / "file" / "nst")


def test_a_serve_outdir_that_cannot_be_made(tmp_path, monkeypatch):
    pytest.importorskip("aiohttp")
    from nst.io.destinations import RunRefused
    from nst.web import app
    monkeypatch.setattr(app.Path, "mkdir", refuse)
    with pytest.raises(RunRefused, match="cannot make it") as e:
        app.make_outdir(tmp_path / "runs", "runs")
    assert said(str(e.value))


def test_a_manifest_that_cannot_be_appended_to(tmp_path, monkeypatch):
    from nst.batch import outdir
    (tmp_path / outdir.MANIFEST).write_text("")
    monkeypatch.setattr(outdir, "is_manifest", lambda path: True)
    monkeypatch.setattr(outdir, "open_for_append", refuse)
    with pytest.raises(outdir.RunRefused, match="cannot write") as e:
        outdir.check_manifest(tmp_path)
    assert said(str(e.value))


def test_video_frames_that_the_disk_does_not_take(tmp_path, monkeypatch):
    import numpy as np

    from nst.io.destinations import RunRefused
    from nst.video import store

    class Refusing:
        def write(self, data):
            refuse()

        def close(self):
            pass
    monkeypatch.setattr(store.tempfile, "TemporaryFile", lambda dir=None: Refusing())
    frames = store.FrameFile(tmp_path)
    with pytest.raises(RunRefused, match="cannot be kept on the disk") as e:
        frames.append(np.zeros((4, 4, 3), np.uint8))
    assert said(str(e.value))
