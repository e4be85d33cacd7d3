"""An --init FILE that nst cannot use is refused in the same line by nst transfer, batch and video.

`--init PATH: why`, why being nst.io.image's reason (not a picture, a folder) or the option's own
rule (no such file, and not one of the keywords), each said once.
"""
import numpy as np
import pytest
from PIL import Image

from nst.cli import main


@pytest.fixture
def files(tmp_path, tiny_weights_h5):
    # a content, a style, a folder of two frames, a text file named .png, the tiny weights
    rng = np.random.default_rng(3)
    (tmp_path / "frames").mkdir()
    for name in ("c.png", "s.png", "frames/f1.png", "frames/f2.png"):
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(tmp_path / name)
    (tmp_path / "notes.png").write_text("my notes")
    (tmp_path / "folder").mkdir()
    return tmp_path, tiny_weights_h5


def argv(command, d, weights, init):
    # the command with every input fine but --init, writing nothing (--dry-run)
    common = ["--init", init, "--weights", str(weights), "--size", "32", "--dry-run"]
    return {"transfer": ["transfer", str(d / "c.png"), str(d / "s.png"), "-o", str(d / "out.png")],
            "batch": ["batch", str(d / "c.png"), "--style", str(d / "s.png"), "-o", str(d / "out")],
            "video": ["video", str(d / "frames"), "--style", str(d / "s.png"), "-o", str(d / "out")]}[command] + common


@pytest.mark.parametrize("init, why", [
    ("notes.png", "not an image Pillow can read"),
    ("folder", "is a directory, not an image"),
    ("typo.png", "no such file, and not one of content, recolored, random, style")])
def test_each_command_refuses_a_bad_init_in_one_line(files, capsys, init, why):
    d, weights = files
    commands = ["transfer", "batch"] + (["video"] if have_video() else [])
    for command in commands:
        assert main(argv(command, d, weights, str(d / init))) == 2, command
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1] == f"nst: error: --init {d / init}: {why}", command


def have_video():
    # nst video's extra (OpenCV, PyAV) installed
    try:
        import av  # noqa: F401
        import cv2  # noqa: F401
    except ImportError:
        return False
    return True
