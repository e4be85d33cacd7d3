"""Nothing of the user's is ever lost, and every bad option or file is one clear line (issue 9).

Each case of the table runs `nst transfer` on tiny files with the tiny random-weight VGG19 and
checks: the exit status, the one `nst: error:` line and what it names, no traceback (an uncaught
exception fails the test), every input byte-identical and no file left behind in the folder.
"""
import json
import os
import signal
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from nst.cli import main
from test_cli import cli
from nst.io.image import load_image, resize_longest, written_by_nst
from conftest import assert_pipe_refused

BASE = ["--backend", "numpy", "--size", "32", "--scales", "1", "--iterations", "2"]


def png_header_only(path, w, h, depth=8, colour=2, rows=None):
    # a PNG that declares w×h; its data is `rows` (filter byte + row bytes each) or one empty row
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    data = zlib.compress(rows if rows is not None else b"\0" * 64, 9)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, colour, 0, 0, 0))
                     + chunk(b"IDAT", data) + chunk(b"IEND", b""))
    return path


@pytest.fixture
def world(tmp_path, weights_file):
    # d: the folder; in/content.png, in/style.jpg; the command line up to -o
    rng = np.random.default_rng(7)
    (tmp_path / "in").mkdir()
    c, s = tmp_path / "in" / "content.png", tmp_path / "in" / "style.jpg"
    Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(c)
    Image.fromarray(rng.integers(0, 256, (36, 28, 3), dtype=np.uint8)).save(s)
    return {"d": tmp_path, "c": c, "s": s, "w": weights_file}


def command(world, *extra, content=None, style=None):
    return ["transfer", str(content or world["c"]), str(style or world["s"]), "--weights", str(world["w"]),
            *BASE, *extra]


def snapshot(folder):
    # {relative path: bytes} of every file under folder
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def checkpoint_of(world, name="ck.npz"):
    # a real checkpoint of the BASE run, for the resume cases to damage
    ck = world["d"] / name
    assert cli(command(world, "-o", str(world["d"] / "made.png"), "--checkpoint", str(ck))) == 0
    (world["d"] / "made.png").unlink()
    return ck


def drop_array(ck, name):
    # rewrite a checkpoint without one of its arrays
    with np.load(ck) as z:
        arrays = {k: z[k] for k in z.files if k != name}
    assert len(arrays) == len(z.files) - 1
    with open(ck, "wb") as f:
        np.savez(f, **arrays)


def add_array(ck, name, value):
    # rewrite a checkpoint with one more array
    with np.load(ck) as z:
        arrays = {k: z[k] for k in z.files}
    with open(ck, "wb") as f:
        np.savez(f, **arrays, **{name: value})


def rewrite_meta(ck, change):
    # load a checkpoint, change(meta) its JSON, write it back
    with np.load(ck) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays.pop("meta")))
    meta = change(meta) or meta
    with open(ck, "wb") as f:
        np.savez(f, meta=np.array(json.dumps(meta)), **arrays)


def damaged_metadata(weights, path):
    # a copy of the weights HDF5 with 2 KB zeroed at offset 1000 (its metadata: h5py's RuntimeError)
    data = bytearray(weights.read_bytes())
    data[1000:3000] = bytes(2000)
    path.write_bytes(bytes(data))
    return path


def setup_prev(world):
    # the snapshot name -o prev.png --save-every 2 writes (prev_0002.png) is the content image
    os.rename(world["c"], world["d"] / "in" / "prev_0002.png")
    world["c"] = world["d"] / "in" / "prev_0002.png"


def setup_strip(world):
    os.rename(world["s"], world["d"] / "in" / "strip.png")
    world["s"] = world["d"] / "in" / "strip.png"


def setup_bomb(role):
    def setup(world):
        path = png_header_only(world["d"] / "in" / "bomb.png", 50000, 50000)
        world[role] = path
    return setup


def setup_resume(damage):
    def setup(world):
        world["ck"] = checkpoint_of(world)
        damage(world["ck"])
    return setup


def truncate(ck):
    ck.write_bytes(ck.read_bytes()[:300])


def replace_content(world):
    # the same path, another picture: a resume must notice (inputs are known by their sha256)
    world["ck"] = checkpoint_of(world)
    Image.fromarray(np.zeros((30, 40, 3), np.uint8)).save(world["c"])


# (id, setup(world) or None, extra options (formatted with the world's paths), exit status, needles)
CASES = [
    # inputs that a destination would overwrite
    ("snapshot-is-input", setup_prev, ["-o", "{d}/in/prev.png", "--save-every", "2"], 2,
     ["--save-every", "prev_0002.png", "is an input (content)"]),
    ("checkpoint-is-input", None, ["-o", "{d}/o.png", "--checkpoint", "{c}"], 2, ["--checkpoint", "is an input (content)"]),
    ("report-holds-input", setup_strip, ["-o", "{d}/o.png", "--report", "{d}/in"], 2,
     ["--report", "strip.png", "is an input (style)"]),
    ("checkpoint-is-output", None, ["-o", "{d}/o.png", "--checkpoint", "{d}/o.png"], 2,
     ["--checkpoint", "also the -o destination"]),
    ("output-is-input", None, ["-o", "{c}"], 2, ["-o", "is an input (content)"]),
    ("output-is-style-by-other-name", None, ["-o", "{d}/in/../in/style.jpg"], 2, ["is an input (style)"]),
    ("output-is-weights", None, ["-o", "{w}"], 2, ["unknown image suffix"]),
    ("report-file-is-output", None, ["-o", "{d}/r/strip.png", "--report", "{d}/r"], 2,
     ["--report", "also the -o destination"]),
    ("checkpoint-not-ours", lambda w: (w["d"] / "data.npz").write_bytes(b"user data"),
     ["-o", "{d}/o.png", "--checkpoint", "{d}/data.npz"], 2, ["--checkpoint", "exists and nst did not write it"]),
    ("output-not-ours", lambda w: Image.new("RGB", (4, 4)).save(w["d"] / "photo.jpg"),
     ["-o", "{d}/photo.jpg"], 2, ["-o", "photo.jpg", "exists and nst did not write it"]),
    ("snapshot-not-ours", lambda w: Image.new("RGB", (4, 4)).save(w["d"] / "o_0002.png"),
     ["-o", "{d}/o.png", "--save-every", "2"], 2, ["--save-every", "o_0002.png", "exists and nst did not write it"]),
    ("report-file-not-ours", lambda w: ((w["d"] / "rep").mkdir(), (w["d"] / "rep" / "losses.json").write_text("[]")),
     ["-o", "{d}/o.png", "--report", "{d}/rep"], 2, ["--report", "losses.json", "exists and nst did not write it"]),
    ("init-is-output", None, ["-o", "{d}/o.png", "--init", "{d}/o.png"], 2, ["-o", "is an input (--init)"]),
    ("init-not-an-image-dry-run", lambda w: (w["d"] / "in" / "notes.png").write_text("my notes"),   # was taken
     ["-o", "{d}/o.png", "--init", "{d}/in/notes.png", "--dry-run"], 2,
     ["error: --init ", "notes.png: not an image Pillow can read"]),          # named by its option, as the others
    ("init-is-a-folder", None, ["-o", "{d}/o.png", "--init", "{d}/in", "--dry-run"], 2,
     ["error: --init ", "in: is a directory, not an image"]),
    ("init-typo", None, ["-o", "{d}/o.png", "--init", "randomm"], 2, ["--init randomm", "no such file", "not one of", "random"]),
    # destinations that cannot be written, found before the run
    ("output-under-a-file", None, ["-o", "{c}/out.png"], 2, ["-o", "is a file, not a folder"]),
    ("output-is-a-folder", lambda w: (w["d"] / "dir.png").mkdir(), ["-o", "{d}/dir.png"], 2, ["-o", "is a folder"]),
    ("output-is-a-folder-without-suffix", lambda w: (w["d"] / "styled").mkdir(), ["-o", "{d}/styled/"], 2,
     ["styled/ is a folder; give a file name, e.g. -o ", "styled/out.png"]),         # was "unknown image suffix"
    ("snapshot-is-a-folder", lambda w: (w["d"] / "o_0002.png").mkdir(), ["-o", "{d}/o.png", "--save-every", "2"], 2,
     ["--save-every", "o_0002.png is a folder, where nst writes a file: move it or choose another -o"]),  # "give a file name"
    ("report-file-is-a-folder", lambda w: (w["d"] / "rep" / "strip.png").mkdir(parents=True),
     ["-o", "{d}/o.png", "--report", "{d}/rep"], 2,
     ["--report", "strip.png is a folder, where nst writes a file: move it or choose another --report DIR"]),
    ("output-name-too-long", None, ["-o", "{d}/" + "a" * 260 + ".png"], 2, ["-o", "longer than this file system allows"]),
    ("snapshot-name-too-long", None, ["-o", "{d}/" + "a" * 248 + ".png", "--save-every", "1"], 2,
     ["--save-every", "longer than this file system allows"]),
    ("checkpoint-under-a-file", None, ["-o", "{d}/o.png", "--checkpoint", "{s}/ck.npz"], 2,
     ["--checkpoint", "is a file, not a folder"]),
    ("report-is-a-file", None, ["-o", "{d}/o.png", "--report", "{c}"], 2, ["--report", "is a file, not a folder"]),
    ("unknown-suffix", None, ["-o", "{d}/o.xyz"], 2, ["o.xyz", "unknown image suffix", ".png"]),
    ("16-bit-jpeg", None, ["-o", "{d}/o.jpg", "--bits", "16"], 2, ["16-bit needs a .png name"]),
    # decompression bombs, as content, style or --init
    ("bomb-content", setup_bomb("c"), ["-o", "{d}/o.png"], 2, ["bomb.png", "decompression bomb"]),
    ("bomb-style", setup_bomb("s"), ["-o", "{d}/o.png"], 2, ["bomb.png", "decompression bomb"]),
    ("bomb-init", setup_bomb("unused"), ["-o", "{d}/o.png", "--init", "{d}/in/bomb.png"], 2,
     ["error: --init ", "bomb.png", "decompression bomb"]),
    # damaged or crafted checkpoints
    ("resume-truncated", setup_resume(truncate), ["-o", "{d}/o.png", "--resume", "{d}/ck.npz"], 2,
     ["ck.npz", "unreadable or truncated"]),
    ("resume-empty", setup_resume(lambda ck: ck.write_bytes(b"")), ["-o", "{d}/o.png", "--resume", "{d}/ck.npz"], 2,
     ["ck.npz", "unreadable or truncated"]),
    ("resume-no-state", setup_resume(lambda ck: rewrite_meta(ck, lambda m: {k: v for k, v in m.items() if k != "state"})),
     ["-o", "{d}/o.png", "--resume", "{d}/ck.npz"], 2, ["ck.npz", "lacks part of a run's state"]),
    ("resume-meta-a-list", setup_resume(lambda ck: rewrite_meta(ck, lambda m: [1, 2])),
     ["-o", "{d}/o.png", "--resume", "{d}/ck.npz"], 2, ["ck.npz", "has format None"]),
    ("resume-scale-out-of-range", setup_resume(lambda ck: rewrite_meta(ck, lambda m: m["state"].update(scale=5))),
     ["-o", "{d}/o.png", "--resume", "{d}/ck.npz"], 2, ["ck.npz", "scale 5 is not one of this run's 1"]),
    ("resume-shape-wrong", setup_resume(lambda ck: rewrite_meta(ck, lambda m: m["state"].update(shape=[7, 7, 3]))),
     ["-o", "{d}/o.png", "--resume", "{d}/ck.npz"], 2, ["ck.npz", "image shape [7, 7, 3]"]),
    ("resume-history-vector-missing", setup_resume(lambda ck: drop_array(ck, "opt.pairs_y.0")),
     ["-o", "{d}/o.png", "--resume", "{d}/ck.npz"], 2, ["ck.npz", "its optimiser state is malformed", "pairs_y.0"]),
    ("resume-snapshot-malformed", setup_resume(lambda ck: add_array(ck, "snap.2", np.zeros((4, 4), np.float64))),
     ["-o", "{d}/o.png", "--resume", "{d}/ck.npz"], 2, ["ck.npz", "report snapshot snap.2 is malformed"]),
    ("resume-name-too-long", None, ["-o", "{d}/o.png", "--resume", "{d}/" + "a" * 300 + ".npz"], 2,
     ["a.npz cannot be read (File name too long)"]),
    ("weights-name-too-long", None, ["-o", "{d}/o.png", "--weights", "{d}/" + "a" * 300 + ".h5"], 2,
     ["a.h5 cannot be read (File name too long)"]),                             # was a traceback
    ("resume-missing", None, ["-o", "{d}/o.png", "--resume", "{d}/nope.npz"], 2, ["nope.npz", "does not exist"]),
    # a dry run's refusal: the error alone (the memory table and a warning were printed before it)
    ("resume-missing-dry-run", None, ["-o", "{d}/o.png", "--resume", "{d}/nope.npz", "--dry-run", "--size", "256"],
     2, ["nope.npz", "does not exist"]),
    ("resume-truncated-dry-run", setup_resume(truncate), ["-o", "{d}/o.png", "--resume", "{d}/ck.npz", "--dry-run"],
     2, ["ck.npz", "unreadable or truncated"]),
    ("resume-image", None, ["-o", "{d}/o.png", "--resume", "{c}"], 2,      # was "(ValueError)"
     ["content.png is unreadable or truncated (no .npz nst wrote whole); start the run again without --resume"]),
    ("resume-replaced-content", replace_content, ["-o", "{d}/o.png", "--resume", "{d}/ck.npz"], 2,
     ["--resume", "other settings or inputs (content)"]),
    # an older nst's checkpoint that no command of this one matches: a layer given twice (refused since)
    ("resume-older-layer-twice", setup_resume(lambda ck: rewrite_meta(ck, lambda m: m["identity"].update(
        style_layers=["block1_conv1", "block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1"]))),
     ["-o", "{d}/o.png", "--resume", "{d}/ck.npz"], 2,
     ["ck.npz was made by an older nst with block1_conv1 twice in --style-layers, which this one refuses; "
      "start the run again without --resume"]),
    ("resume-other-settings", setup_resume(lambda ck: None),
     ["-o", "{d}/o.png", "--resume", "{d}/ck.npz", "--tv-weight", "1"], 2, ["other settings or inputs (tv_weight)"]),
    # options refused where they enter
    ("checkpoint-every-0", None, ["-o", "{d}/o.png", "--checkpoint-every", "0"], 2, ["--checkpoint-every", "≥ 1", "'0'"]),
    ("style-layers-empty", None, ["-o", "{d}/o.png", "--style-layers", ","], 2, ["--style-layers", "at least one layer"]),
    ("style-blend-zero", None, ["-o", "{d}/o.png", "--style-blend", "0,0"], 2, ["--style-blend", "not all 0"]),
    ("style-blend-negative", None, ["-o", "{d}/o.png", "--style-blend=1,-1"], 2, ["--style-blend", "≥ 0"]),
    ("style-blend-count", None, ["-o", "{d}/o.png", "--style-blend", "1,2"], 2,    # was "1 style image(s)"
     ["--style-blend has 2 values for 1 style image; give one per STYLE"]),
    ("layer-weights-count", None, ["-o", "{d}/o.png", "--style-layer-weights", "1,2"], 2,
     ["--style-layer-weights has 2 values for 5"]),
    ("layer-weights-one", None, ["-o", "{d}/o.png", "--style-layer-weights", "1"], 2,  # was "1 values"
     ["--style-layer-weights has 1 value for 5"]),
    ("start-size-0", None, ["-o", "{d}/o.png", "--start-size", "0"], 2, ["--start-size", "from 16 to 16384"]),
    ("start-size-negative", None, ["-o", "{d}/o.png", "--start-size=-10"], 2, ["--start-size", "'-10'"]),
    ("adam-lr-nan", None, ["-o", "{d}/o.png", "--optimizer", "adam", "--lr", "nan"], 2, ["--lr", "finite number > 0"]),
    ("gd-lr-inf", None, ["-o", "{d}/o.png", "--optimizer", "gd", "--lr", "inf"], 2, ["--lr", "finite number > 0"]),
    ("lr-zero", None, ["-o", "{d}/o.png", "--lr", "0"], 2, ["--lr", "> 0"]),
    ("style-weight-negative", None, ["-o", "{d}/o.png", "--style-weight=-1e3"], 2, ["--style-weight", "≥ 0"]),
    ("style-weight-nan", None, ["-o", "{d}/o.png", "--style-weight", "nan"], 2, ["--style-weight", "finite"]),
    ("content-weight-inf", None, ["-o", "{d}/o.png", "--content-weight", "inf"], 2, ["--content-weight", "finite"]),
    ("history-negative", None, ["-o", "{d}/o.png", "--history=-3"], 2, ["--history", "from 1 to 1000"]),
    ("style-scale-tiny", None, ["-o", "{d}/o.png", "--style-scale", "0.01"], 2, ["--style-scale 0.01", "--style-scale ≥"]),
    ("style-scale-nan", None, ["-o", "{d}/o.png", "--style-scale", "nan"], 2, ["--style-scale", "finite"]),
    ("size-too-small-for-net", None, ["-o", "{d}/o.png", "--size", "17"], 2, ["content is 17×13", "block5_conv1"]),
    ("size-0", None, ["-o", "{d}/o.png", "--size", "0"], 2, ["--size", "from 16 to 16384"]),
    ("size-float", None, ["-o", "{d}/o.png", "--size", "3.5"], 2, ["--size", "whole number"]),
    ("iterations-0", None, ["-o", "{d}/o.png", "--iterations", "0"], 2, ["--iterations", "≥ 1"]),
    ("scales-0", None, ["-o", "{d}/o.png", "--scales", "0"], 2, ["--scales", "from 1 to 16"]),
    ("save-every-negative", None, ["-o", "{d}/o.png", "--save-every=-2"], 2, ["--save-every", "≥ 0"]),
    ("save-every-past-the-end", None, ["-o", "{d}/o.png", "--save-every", "3"], 2,   # wrote no snapshot, silently
     ["--save-every 3 with 2 iterations would write no snapshot: use N ≤ 2"]),
    ("save-every-past-one-iteration", None, ["-o", "{d}/o.png", "--iterations", "1", "--save-every", "2"], 2,
     ["--save-every 2 with 1 iteration would write no snapshot: use N ≤ 1"]),
    ("seed-negative", None, ["-o", "{d}/o.png", "--seed=-1"], 2, ["--seed", "from 0"]),
    ("average-1", None, ["-o", "{d}/o.png", "--average", "1"], 2, ["--average", "< 1"]),
    ("unknown-layer", None, ["-o", "{d}/o.png", "--content-layers", "conv9_9"], 2, ["unknown layer 'conv9_9'"]),
    ("unknown-optimizer", None, ["-o", "{d}/o.png", "--optimizer", "sgd"], 2, ["--optimizer", "invalid choice"]),
    ("no-output", None, [], 2, ["-o/--output"]),
    ("missing-init", None, ["-o", "{d}/o.png", "--init", "{d}/nope.png"], 2, ["nope.png", "no such file"]),
    ("missing-weights", None, ["-o", "{d}/o.png", "--weights", "{d}/nope.h5"], 2, ["nope.h5", "does not exist"]),
    ("weights-not-hdf5", None, ["-o", "{d}/o.png", "--weights", "{s}"], 2,       # was "(OSError)"
     ["style.jpg is not an HDF5 file; give VGG19 weights in the Keras HDF5 layout (.h5), or leave out --weights"]),
    ("weights-a-folder", None, ["-o", "{d}/o.png", "--weights", "{d}/in"], 2,    # was "(IsADirectoryError)"
     ["in is a folder, not an HDF5 file"]),
    ("resume-a-folder", None, ["-o", "{d}/o.png", "--resume", "{d}/in"], 2, ["checkpoint", "is a folder"]),
    ("content-a-folder", lambda w: w.update(c=w["d"] / "in"), ["-o", "{d}/o.png"], 2, ["is a directory"]),
    ("content-name-too-long", lambda w: w.update(c=w["d"] / ("a" * 300 + ".png")), ["-o", "{d}/o.png"], 2,
     ["a.png: cannot be read (File name too long)"]),          # was "unreadable or truncated image", the name twice
    ("content-too-thin", lambda w: (Image.new("RGB", (400, 8)).save(w["d"] / "in" / "thin.png"),
                                    w.update(c=w["d"] / "in" / "thin.png")),
     ["-o", "{d}/o.png"], 2, ["content is 32×1", "block5_conv1 needs", "--size 775 --start-size 775"]),
    ("content-too-thin-for-a-thin-style", lambda w: (Image.new("RGB", (400, 8)).save(w["d"] / "in" / "thin.png"),
                                                    Image.new("RGB", (8, 500)).save(w["d"] / "in" / "tall.png"),
                                                    w.update(c=w["d"] / "in" / "thin.png", s=w["d"] / "in" / "tall.png")),
     ["-o", "{d}/o.png"], 2, ["content is 32×1", "--size 969 --start-size 969"]),     # was 775: the style 15 px wide
    ("content-too-thin-for-the-style-scale", lambda w: (Image.new("RGB", (1000, 8)).save(w["d"] / "in" / "thin.png"),
                                                        w.update(c=w["d"] / "in" / "thin.png")),
     ["-o", "{d}/o.png", "--style-scale", "10"], 2,
     ["--size 1938 it needs", "a style image 19380 px long, above 16384", "crop or pad"]),   # was "--size 1938"
    ("content-thinner-than-any-size", lambda w: (Image.new("RGB", (4000, 2)).save(w["d"] / "in" / "thin.png"),
                                                 w.update(c=w["d"] / "in" / "thin.png")),
     ["-o", "{d}/o.png"], 2, ["block5_conv1 needs", "no size up to 16384 px", "crop or pad"]),
    ("style-too-thin", lambda w: (Image.new("RGB", (8, 400)).save(w["d"] / "in" / "thin.png"),
                                  w.update(s=w["d"] / "in" / "thin.png")),
     ["-o", "{d}/o.png"], 2, ["--style-scale 1 makes a style image 1×32", "--style-scale ≥"]),
    ("style-thinner-than-any-scale", lambda w: (Image.new("RGB", (4000, 2)).save(w["d"] / "in" / "thin.png"),
                                                w.update(s=w["d"] / "in" / "thin.png")),       # was "≥ 500"
     ["-o", "{d}/o.png"], 2, ["block5_conv1 needs", "no --style-scale makes its 2 px side 16 px", "crop or pad"]),
    ("style-scale-huge", None, ["-o", "{d}/o.png", "--size", "2000", "--style-scale", "9", "--dry-run"], 2,
     ["--style-scale 9", "above 16384"]),
    ("empty-output-name", None, ["-o", ""], 2, ["-o is empty", "-o out.png"]),
    ("report-is-the-output", None, ["-o", "{d}/o.png", "--report", "{d}/o.png"], 2,
     ["--report", "o.png", "-o destination"]),
    ("report-is-a-snapshot", None, ["-o", "{d}/o.png", "--save-every", "2", "--report", "{d}/o_0002.png"], 2,
     ["--report", "o_0002.png", "--save-every destination"]),
    ("weights-damaged-metadata", lambda w: w.update(w=damaged_metadata(w["w"], w["d"] / "damaged.h5")),
     ["-o", "{d}/o.png"], 2, ["damaged.h5", "is damaged", "nst weights fetch"]),
    # a symbolic link that leads nowhere, as nst batch and nst video say it (a dangling one was "no such
    # file", a loop "a symbolic link loop", --init's "no such file, and not one of content, …")
    ("content-symlink-loop", lambda w: (os.symlink(w["d"] / "in" / "loop.png", w["d"] / "in" / "loop.png"),
                                        w.update(c=w["d"] / "in" / "loop.png")),
     ["-o", "{d}/o.png"], 2, ["content ", "loop.png: a symbolic link that leads nowhere (a loop, or a missing target)"]),
    ("content-dangling-link", lambda w: (os.symlink(w["d"] / "gone.png", w["d"] / "in" / "link.png"),
                                         w.update(c=w["d"] / "in" / "link.png")),
     ["-o", "{d}/o.png"], 2, ["content ", "link.png: a symbolic link that leads nowhere (a loop, or a missing target)"]),
    ("style-dangling-link", lambda w: (os.symlink(w["d"] / "gone.png", w["d"] / "in" / "link.png"),
                                       w.update(s=w["d"] / "in" / "link.png")),
     ["-o", "{d}/o.png"], 2, ["style ", "link.png: a symbolic link that leads nowhere (a loop, or a missing target)"]),
    ("init-dangling-link", lambda w: os.symlink(w["d"] / "gone.png", w["d"] / "in" / "link.png"),
     ["-o", "{d}/o.png", "--init", "{d}/in/link.png"], 2,
     ["--init ", "link.png: a symbolic link that leads nowhere (a loop, or a missing target)"]),
    # a folder to make that is a link to nothing: the run did all its work, then -o went to the temporary folder
    ("output-under-a-dangling-link", lambda w: os.symlink(w["d"] / "nowhere", w["d"] / "out"),
     ["-o", "{d}/out/sub/o.png"], 2, ["out/sub/o.png: ", "/out is a link to ", "/nowhere, which does not exist"]),
    ("report-a-dangling-link", lambda w: os.symlink(w["d"] / "nowhere", w["d"] / "rep"),
     ["-o", "{d}/o.png", "--report", "{d}/rep"], 2, ["rep/losses.png: ", "/rep is a link to ", "/nowhere, which"]),
    ("content-missing", lambda w: w.update(c=w["d"] / "in" / "gone.png"), ["-o", "{d}/o.png"], 2,
     ["gone.png", "no such file"]),
    ("style-not-an-image", lambda w: (w["d"] / "in" / "t.png").write_text("hi") and w.update(s=w["d"] / "in" / "t.png"),
     ["-o", "{d}/o.png"], 2, ["t.png", "not an image"]),
]


@pytest.mark.parametrize("setup, extra, status, needles", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_refused_in_one_line(world, capsys, setup, extra, status, needles):
    if setup:
        setup(world)
    before = snapshot(world["d"])
    argv = command(world, *(e.format(**world) for e in extra), content=world["c"], style=world["s"])
    capsys.readouterr()
    assert cli(argv) == status
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nst: error: ") and not out, (out, err)
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert "Traceback" not in err
    assert snapshot(world["d"]) == before                       # inputs untouched, nothing left behind


@pytest.mark.parametrize("scales, hint", [
    (["--size", "64", "--scales", "5"], "--start-size 21"),      # was "--size 21 --start-size 21": 16 px again
    (["--size", "512", "--scales", "9", "--start-size", "16"], "--start-size 21"),      # was a 21 px picture
    (["--size", "20", "--scales", "2"], "--scales 1 --size 21"),
    (["--size", "20"], "--size 21 --start-size 21")])
def test_a_first_scale_too_small_is_refused_with_a_hint_that_works(world, capsys, scales, hint):
    # the hint keeps --size and the scales asked for where it can, and the command it gives runs
    argv = command(world, "-o", str(world["d"] / "o.png"), *scales, "--dry-run")
    assert cli(argv) == 2
    assert capsys.readouterr().err.strip().endswith(f"; use {hint} or larger")
    assert cli([*argv, *hint.split()]) == 0


@pytest.mark.parametrize("option", ["-o", "--save-every", "--checkpoint"])
def test_a_dangling_link_as_a_destination_is_refused_before_the_run(world, capsys, monkeypatch, option):
    # -o onto a link to nothing ran every iteration, then refused to save: the picture was lost
    from nst.run.run import Run
    monkeypatch.setattr(Run, "run", lambda *a: pytest.fail("the run started"))
    link = {"-o": "o.png", "--save-every": "o_0002.png", "--checkpoint": "ck.npz"}[option]
    os.symlink(world["d"] / "gone" / "elsewhere.png", world["d"] / link)
    extra = {"-o": [], "--save-every": ["--save-every", "2"], "--checkpoint": ["--checkpoint", str(world["d"] / link)]}
    assert cli(command(world, "-o", str(world["d"] / "o.png"), *extra[option])) == 2
    err = capsys.readouterr().err
    assert f"{option} {world['d'] / link} exists and nst did not write it" in err, err
    assert os.readlink(world["d"] / link) == str(world["d"] / "gone" / "elsewhere.png")


def test_long_output_name_works(world, capsys):
    # 244 characters: the temporary name beside it is short, so the run saves it
    out = world["d"] / ("a" * 240 + ".png")
    assert cli(command(world, "-o", str(out), "--save-every", "2")) == 0
    assert out.exists() and (world["d"] / ("a" * 240 + "_0002.png")).exists()
    assert not [p for p in world["d"].iterdir() if p.name.startswith(".nst-")]


def test_rerun_replaces_own_files(world):
    # -o, its snapshots, the checkpoint and the report of a previous run may be replaced, and are:
    # each is a new file (a new inode: written beside, renamed over), no other file is made (a rerun
    # that exited 0 keeping the old files, or writing others, passed)
    args = command(world, "-o", str(world["d"] / "o.png"), "--save-every", "1", "--checkpoint",
                   str(world["d"] / "ck.npz"), "--report", str(world["d"] / "rep"))

    def made():
        return {str(p.relative_to(world["d"])): p.stat().st_ino for p in world["d"].rglob("*")
                if p.is_file() and p.parent != world["d"] / "in"}
    assert cli(args) == 0
    first = made()
    assert {"o.png", "o_0001.png", "ck.npz"} <= set(first) and any(k.startswith("rep") for k in first), first
    for again in (args, [*args, "--bits", "16"], args):                    # 16-bit PNGs carry the mark too
        assert cli(again) == 0
        now = made()
        assert set(now) == set(first) and not {k for k in now if now[k] == first[k]}, (first, now)
        first = now


def test_a_users_file_in_a_report_folder_is_kept(world, capsys):
    # each report file is judged by itself: the user's picture put in nst's report folder stays
    args = command(world, "-o", str(world["d"] / "o.png"), "--report", str(world["d"] / "rep"))
    assert cli(args) == 0
    mine = world["d"] / "rep" / "strip.png"
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(mine)
    before = snapshot(world["d"])
    assert cli(args) == 2
    assert "--report " in capsys.readouterr().err and snapshot(world["d"]) == before


def test_an_existing_bmp_is_never_replaced_and_the_message_says_why(world, capsys):
    out = world["d"] / "o.bmp"
    assert cli(command(world, "-o", str(out))) == 0
    assert cli(command(world, "-o", str(out))) == 2
    assert "BMP files carry no mark" in capsys.readouterr().err


def test_declared_size_checked_before_decoding(world, monkeypatch, capsys):
    # a 13000×13000 1-bit PNG (a few KB) needs ~3.3 GiB to decode: refused from its header
    rows = (b"\0" + b"\0" * 1625) * 13000
    bomb = png_header_only(world["d"] / "in" / "big.png", 13000, 13000, depth=1, colour=0, rows=rows)
    monkeypatch.setattr("nst.memory.available", lambda backend: 2**30)
    monkeypatch.setattr(Image.Image, "load", lambda self: pytest.fail("decoded before the check"))
    assert cli(command(world, "-o", str(world["d"] / "o.png"), content=bomb)) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("nst: error: ") and "big.png" in err and "13000×13000" in err and "GiB" in err


def test_dry_run_counts_the_inputs(world, capsys):
    assert cli(command(world, "-o", str(world["d"] / "o.png"), "--dry-run")) == 0
    assert "inputs" in capsys.readouterr().out


def test_unwritable_checkpoint_keeps_the_run(world, monkeypatch, capsys):
    # a checkpoint that fails mid-run (disk full) is reported once; the run and -o go on
    import nst.io.checkpoint

    def full(*a, **k):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(nst.io.checkpoint, "save", full)
    out = world["d"] / "o.png"
    assert cli(command(world, "-o", str(out), "--checkpoint", str(world["d"] / "ck.npz"),
                       "--checkpoint-every", "1")) == 1
    err = capsys.readouterr().err
    assert err.count("cannot write --checkpoint (No space left on device)") == 1 and out.exists()


def test_first_signal_stops_at_iteration_boundary_second_aborts(world, monkeypatch, capsys):
    from nst.run.progress import Progress
    original = Progress.update

    def update(self, done, *a, **k):
        original(self, done, *a, **k)
        if done == 1:
            os.kill(os.getpid(), signal.SIGINT)
    monkeypatch.setattr(Progress, "update", update)
    ck, out = world["d"] / "ck.npz", world["d"] / "o.png"
    assert cli(command(world, "-o", str(out), "--checkpoint", str(ck))) == 130
    assert out.exists() and ck.exists()
    with np.load(ck) as z:
        assert json.loads(str(z["meta"]))["opt_scalars"]["iteration"] == 1   # a whole iteration
    assert "stopping at the next evaluation" in capsys.readouterr().err


def test_signal_before_first_iteration_writes_nothing(world, monkeypatch, capsys):
    import nst.objective
    original = nst.objective.Objective.__init__

    def init(self, *a, **k):
        os.kill(os.getpid(), signal.SIGTERM)
        original(self, *a, **k)
    monkeypatch.setattr(nst.objective.Objective, "__init__", init)
    before = snapshot(world["d"])
    assert cli(command(world, "-o", str(world["d"] / "o.png"), "--checkpoint", str(world["d"] / "ck.npz"))) == 130
    assert "before the first iteration: nothing written" in capsys.readouterr().err
    assert snapshot(world["d"]) == before


def test_resume_by_content_not_path(world, monkeypatch, capsys):
    # the same files by another path resume; the checkpoint names inputs by sha256
    checkpoint_of(world)
    monkeypatch.chdir(world["d"])
    assert cli(["transfer", "in/content.png", "in/../in/style.jpg", "--weights", str(world["w"]), *BASE,
                "-o", "o.png", "--resume", "ck.npz"]) == 0
    assert "resuming at iteration 2" in capsys.readouterr().err


def test_debug_shows_traceback(world, capsys):
    # --debug: the traceback above the one line, and the same exit status 2
    assert main(command(world, "-o", str(world["c"]), "--debug")) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and "RunRefused" in err and err.strip().splitlines()[-1].startswith("nst: error: -o ")


def test_every_option_has_help_with_default():
    from nst.cli.parser import build_parser
    sub = next(a for a in build_parser()._actions if a.dest == "command").choices["transfer"]
    for action in sub._actions:
        if action.dest == "help":
            continue
        assert action.help, action.dest
        if action.option_strings and action.nargs != 0 and not action.required:
            assert "default" in action.help, action.dest
    match = next(a for a in sub._actions if a.dest == "keep_colors").help
    assert "recolour the style image to the content's" in match


def test_16bit_gray_decided_by_mode(tmp_path):
    # values ≤ 255 of 65535: a dark image, never taken for an 8-bit one
    a = np.full((4, 5), 200, np.uint16)
    Image.fromarray(a).save(tmp_path / "dark.png")
    assert np.allclose(load_image(tmp_path / "dark.png"), 200 / 257)


def test_unwritable_folder_refused_before_the_run(world, monkeypatch, capsys):
    # a read-only folder (simulated: tests may run as root, who writes anywhere)
    def denied(*a, **k):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr("tempfile.mkstemp", denied)
    before = snapshot(world["d"])
    assert cli(command(world, "-o", str(world["d"] / "o.png"))) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("nst: error: -o ") and "cannot write in" in err and "Permission denied" in err
    assert snapshot(world["d"]) == before


def test_an_output_that_cannot_be_replaced_is_refused_before_the_run(world, unreplaceable, capsys):
    # it was found only after the run, at the last rename ("cannot write o.png (Operation not permitted)")
    out = world["d"] / "o.png"
    assert cli(command(world, "-o", str(out))) == 0                 # nst's own picture: a rerun may replace it
    unreplaceable(out)
    capsys.readouterr()
    before = snapshot(world["d"])
    assert cli(command(world, "-o", str(out))) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"nst: error: -o {out} exists and cannot be replaced (") and "\n" not in err, err
    assert snapshot(world["d"]) == before


def test_output_unwritable_at_the_end_goes_to_temp(world, monkeypatch, capsys, tmp_path_factory):
    import nst.run.job
    real = nst.run.job.save_image

    def full(img, path, *a, **k):
        if str(path).startswith(str(world["d"])):
            raise OSError(28, "No space left on device")
        return real(img, path, *a, **k)
    monkeypatch.setattr(nst.run.job, "save_image", full)
    temp = tmp_path_factory.mktemp("temp")
    monkeypatch.setattr("tempfile.tempdir", str(temp))
    assert cli(command(world, "-o", str(world["d"] / "o.png"))) == 1
    err = capsys.readouterr().err
    assert "cannot write" in err and "the image is in" in err
    assert len(list(temp.glob("nst-*.png"))) == 1


def test_a_file_put_at_o_during_the_run_is_kept_and_the_picture_goes_to_temp(world, monkeypatch, capsys,
                                                                              tmp_path_factory):
    # a file of the user's saved under -o's name while the run went on is kept, and the picture goes
    # to the temporary folder, as on a full disk (it was refused there at the end, exit 2: hours lost)
    from nst.run.job import Job
    out, mine = world["d"] / "o.png", b"the user's own file"
    real = Job.optimise

    def user_saves_there(self, *a, **k):
        result = real(self, *a, **k)
        out.write_bytes(mine)
        return result
    monkeypatch.setattr(Job, "optimise", user_saves_there)
    temp = tmp_path_factory.mktemp("temp")
    monkeypatch.setattr("tempfile.tempdir", str(temp))
    assert cli(command(world, "-o", str(out))) == 1
    err = capsys.readouterr().err
    assert f"cannot write {out} ({out} exists and nst did not write it;" in err and f"the image is in {temp}" in err
    assert out.read_bytes() == mine and len(list(temp.glob("nst-*.png"))) == 1


def test_a_file_put_at_a_snapshot_during_the_run_is_kept_and_the_run_goes_on(world, monkeypatch, capsys):
    # a snapshot's name taken by a file of the user's mid-run: kept, said once, the run writes -o
    # (the refusal stopped the run: no -o, the work lost)
    from nst.run.job import Job
    out, mine = world["d"] / "o.png", b"the user's own file"
    real = Job.optimise

    def user_saves_there(self, *a, **k):
        (world["d"] / "o_0002.png").write_bytes(mine)
        return real(self, *a, **k)
    monkeypatch.setattr(Job, "optimise", user_saves_there)
    assert cli(command(world, "-o", str(out), "--save-every", "1")) == 1
    err = capsys.readouterr().err
    assert f"warning: cannot write --save-every ({world['d'] / 'o_0002.png'} exists and nst did not" in err, err
    assert (world["d"] / "o_0002.png").read_bytes() == mine and written_by_nst(out)


@pytest.mark.parametrize("option, name", [("--checkpoint", "ck.npz"), ("--report", "rep/strip.png")])
def test_a_file_put_at_a_checkpoint_or_report_during_the_run_is_kept(world, monkeypatch, capsys, option, name):
    # the checkpoint or a report file replaced a file of the user's saved under its name mid-run
    from nst.run.job import Job
    out, mine = world["d"] / "o.png", b"the user's own file"
    real = Job.optimise

    def user_saves_there(self, *a, **k):
        (world["d"] / name).parent.mkdir(exist_ok=True)
        (world["d"] / name).write_bytes(mine)
        return real(self, *a, **k)
    monkeypatch.setattr(Job, "optimise", user_saves_there)
    assert cli(command(world, "-o", str(out), option, str(world["d"] / name.split("/")[0]))) == 1
    err = capsys.readouterr().err
    assert f"warning: cannot write {option} ({world['d'] / name} exists and nst did not write it)" in err, err
    assert (world["d"] / name).read_bytes() == mine and written_by_nst(out)


def test_second_signal_aborts_without_touching_the_checkpoint(world, monkeypatch, capsys):
    from nst.run.progress import Progress
    original = Progress.update

    def update(self, done, *a, **k):
        original(self, done, *a, **k)
        if done == 1:
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
    monkeypatch.setattr(Progress, "update", update)
    ck, out = world["d"] / "ck.npz", world["d"] / "o.png"
    assert cli(command(world, "-o", str(out), "--checkpoint", str(ck))) == 130
    assert out.exists() and not ck.exists()
    assert "stopped at once" in capsys.readouterr().err


def test_signals_while_the_files_are_written_never_lose_the_picture(world, monkeypatch, capsys):
    # Ctrl-C twice as the run's checkpoint is written: the checkpoint stops (keeping what it had),
    # -o is written all the same, 130; twice more as -o is written: it is finished first
    import nst.io.checkpoint
    import nst.run.job
    real_save, real_image = nst.io.checkpoint.save, nst.run.job.save_image

    def interrupted(real):
        def save(*a, **k):
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
            return real(*a, **k)
        return save
    monkeypatch.setattr(nst.io.checkpoint, "save", interrupted(real_save))
    monkeypatch.setattr(nst.run.job, "save_image", interrupted(real_image))
    ck, out = world["d"] / "ck.npz", world["d"] / "o.png"
    assert cli(command(world, "-o", str(out), "--checkpoint", str(ck))) == 130
    err = capsys.readouterr().err
    assert out.exists() and not ck.exists() and not list(world["d"].glob(".nst-*"))
    assert "--checkpoint not written" in err and "saving the picture first" in err


def test_an_optimiser_with_nothing_to_do_writes_the_start(world, capsys):
    # started at the photo with only the content term: the gradient is 0, L-BFGS stops at once,
    # and -o is the starting image (exit 0), not "nothing written"
    out = world["d"] / "o.png"
    assert cli(command(world, "-o", str(out), "--init", "content", "--style-weight", "0",
                       "--tv-weight", "0")) == 0
    assert "-o is the starting image" in capsys.readouterr().err
    start = resize_longest(load_image(world["c"]), 32)
    assert np.abs(load_image(out) - start).max() <= 0.5                   # 8-bit rounding only


@pytest.mark.parametrize("bug", [ValueError("internal"), OSError("internal")])
def test_internal_errors_are_not_user_errors(world, monkeypatch, bug):
    # a ValueError or OSError from inside nst is a bug: its traceback shows, never one tidy line
    def broken(self, image):
        raise bug
    monkeypatch.setattr("nst.objective.Objective.evaluate", broken)
    with pytest.raises(type(bug), match="internal"):
        main(command(world, "-o", str(world["d"] / "o.png")))
    assert not (world["d"] / "o.png").exists()


def test_a_run_that_overflows_at_once_says_so_in_one_voice(world, capsys):
    # NaN/inf at the first iteration: no "kept the last good image" beside "nothing written", and
    # none of NumPy's overflow warnings on the screen
    assert cli(command(world, "-o", str(world["d"] / "o.png"), "--style-weight", "1e308")) == 1
    err = capsys.readouterr().err
    assert "NaN/inf at iteration 1" in err and "nothing written" in err
    assert "last good image" not in err and "RuntimeWarning" not in err
    assert not (world["d"] / "o.png").exists()


def test_a_part_file_a_killed_process_left_is_removed_by_the_next_write(tmp_path):
    # a batch's or a video's OUTDIR (no run start to clear it): the next write into the folder removes
    # a .part of this host's process that is gone, and keeps a live one's and another host's
    import subprocess

    from nst.io.assets import atomic_path, host_tag
    gone = subprocess.Popen(["true"])                   # a process that has ended: its id is free
    gone.wait()
    names = [f".nst-{host_tag()}-{gone.pid}-dead.part", f".nst-{host_tag()}-{os.getpid()}-live.part",
             f".nst-ffffff-{gone.pid}-other.part"]
    for name in names:
        (tmp_path / name).write_bytes(b"half a picture")
    with atomic_path(tmp_path / "out.png") as tmp:
        tmp.write_bytes(b"new")
    assert (tmp_path / "out.png").read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.glob(".nst-*")) == sorted(names[1:])


def test_a_checkpoint_killed_mid_write_leaves_no_hidden_file_behind(world, capsys):
    # kill -9 while a checkpoint was written left its hidden .nst-XXXXXXXX.part (as large as the
    # checkpoint, one more per kill) for good (found killing a run in np.savez); the temporary name
    # now says which process wrote it, and the next run removes a dead process's
    import subprocess
    import sys
    d = world["d"]
    code = ("import os, signal, sys; from nst.io.assets import atomic_path\n"
            "with atomic_path(sys.argv[1]) as tmp:\n"
            "    tmp.write_bytes(b'half a checkpoint'); os.kill(os.getpid(), signal.SIGKILL)")
    assert subprocess.run([sys.executable, "-c", code, str(d / "ck.npz")]).returncode == -signal.SIGKILL
    other = d / ".nst-XXXXXXXX.part"                   # not one of this host's processes': kept
    other.write_bytes(b"?")
    assert [p.name for p in d.glob(".nst-*.part")] != [other.name]
    assert cli(command(world, "-o", str(d / "o.png"), "--checkpoint", str(d / "ck.npz"))) == 0
    assert [p.name for p in d.glob(".nst-*.part")] == [other.name]
    assert "removed 1 temporary file (" in capsys.readouterr().err


def test_rerunning_a_stopped_run_without_resume_keeps_its_checkpoint(world, monkeypatch, capsys):
    # a stopped run's command repeated without --resume started over and replaced the checkpoint
    # at its first save (found stopping a run at 10 of 16, rerunning it: the checkpoint then held
    # 3); it is now refused before any work, naming --resume; a finished run's is replaced
    d, ck = world["d"], world["d"] / "ck.npz"
    run = command(world, "-o", str(d / "o.png"), "--checkpoint", str(ck))
    from nst.run.progress import Progress
    original = Progress.update

    def update(self, done, *a, **k):
        original(self, done, *a, **k)
        if done == 1:
            os.kill(os.getpid(), signal.SIGINT)
    with monkeypatch.context() as m:
        m.setattr(Progress, "update", update)
        assert cli(run) == 130
    kept = ck.read_bytes()
    capsys.readouterr()
    assert cli(run) == 2
    err = capsys.readouterr().err
    assert "holds a stopped run (1 iteration done)" in err and f"--resume {ck}" in err
    assert ck.read_bytes() == kept
    assert cli([*run, "--resume", str(ck)]) == 0 and cli(run) == 0       # finished: a rerun replaces it


@pytest.mark.parametrize("what", ["checkpoint", "picture"])
def test_atomic_writes_reach_the_disk_before_the_rename(world, tmp_path, monkeypatch, what):
    # a power cut after the rename but before the data was written left an empty file under the
    # final name: the temporary file is fsynced before os.replace, and the folder after it
    from nst.io import assets
    from nst.io.image import save_image
    events, real_fsync, real_replace = [], os.fsync, os.replace

    def fsync(fd):
        st = os.fstat(fd)
        events.append(("fsync", "folder" if os.path.isdir(f"/proc/self/fd/{fd}") else st.st_ino, st.st_size))
        real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", os.stat(src).st_ino, dst))
        real_replace(src, dst)
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(assets.os, "replace", replace)
    if what == "picture":
        dest = tmp_path / "o.png"
        save_image(np.full((5, 7, 3), 128.0, np.float32), dest)
    else:
        dest = world["d"] / "ck.npz"
        assert cli(command(world, "-o", str(world["d"] / "o.png"), "--checkpoint", str(dest))) == 0
    at = [k for k, e in enumerate(events) if e[0] == "replace" and e[2] == dest][-1]
    (_, ino, size), (_, renamed, _), folder = events[at - 1], events[at], events[at + 1]
    assert events[at - 1][0] == "fsync" and ino == renamed and size > 0     # the temporary file, written
    assert folder[:2] == ("fsync", "folder")


@pytest.mark.parametrize("what", ["content", "style", "--init", "--weights", "--resume"])
def test_a_pipe_as_an_input_is_refused_not_waited_on(world, capsys, tmp_path_factory, what):
    # a FIFO (`<(curl …)`) as an input waited for a writer forever; now one line before any work, as
    # nst batch says it. (Outside the test's folder, which `snapshot` reads; the command runs in a
    # thread the test stops waiting for after 60 s, so that it fails instead of hanging.)
    pipe = tmp_path_factory.mktemp("pipe") / "picture.png"
    os.mkfifo(pipe)
    argv = (command(world, content=pipe) if what == "content" else command(world, style=pipe) if what == "style"
            else command(world, what, str(pipe)))
    argv += ["-o", str(world["d"] / "out.png")]
    before = snapshot(world["d"])
    assert_pipe_refused(main, argv, what, pipe, capsys)
    assert snapshot(world["d"]) == before


def test_a_checkpoint_that_cannot_be_read_says_so(world, monkeypatch, capsys):
    # a --resume file this user may not read (chmod 000) is said to be so, not "truncated"
    ck = checkpoint_of(world)

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr("nst.io.checkpoint.np.load", denied)
    capsys.readouterr()
    assert cli(command(world, "-o", str(world["d"] / "o.png"), "--resume", str(ck))) == 2
    assert capsys.readouterr().err == f"nst: error: checkpoint {ck} cannot be read (Permission denied)\n"


def test_a_write_failure_without_the_systems_reason_is_said_in_one_line(tmp_path, monkeypatch):
    # an OSError a library raises with no strerror and a message of two lines: each "why a write
    # failed" is said as nst.run.job says it (nst.io.destinations.why_not_written: its first line);
    # `e.strerror or e` gave both lines, breaking the one-line message
    from nst.batch import results, task
    from nst.web import uploads

    def refuse(*args, **kwargs):
        raise OSError("the device refused it\nretry code 7")
    monkeypatch.setattr(uploads, "atomic_path", refuse)
    with pytest.raises(uploads.Refused) as refused:
        uploads.store(b"bytes", tmp_path / "uploads" / "a.png", "content")
    assert str(refused.value) == "content: cannot be stored in OUTDIR/uploads (the device refused it)"
    monkeypatch.setattr(results, "append_row", refuse)
    manifest = results.Manifest(tmp_path)
    manifest.append({"output": "a.png"})
    assert manifest.unwritable == "the device refused it"
    ckpt = tmp_path / "task.npz"
    ckpt.write_bytes(b"")
    monkeypatch.setattr(task.destinations, "not_nsts", lambda option, path: False)   # taken for nst's checkpoint
    monkeypatch.setattr(type(ckpt), "unlink", refuse)
    with pytest.warns(UserWarning) as said:
        task.remove_checkpoint(ckpt)
    assert [str(w.message) for w in said] == [f"{ckpt}: not removed (the device refused it)"]
