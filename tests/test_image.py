"""Image input: every Pillow mode becomes H×W×3 RGB 0..255; bad files get one-line errors."""
import re
import struct
import subprocess
import sys
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from nst.io import png
from nst.io.image import ImageError, image_shape, load_image, resize_longest, save_image


def saved(tmp_path, im, name):
    path = tmp_path / name
    im.save(path)
    return path


def test_rgb_png(tmp_path, rng):
    a = rng.integers(0, 256, (9, 11, 3), dtype=np.uint8)
    x = load_image(saved(tmp_path, Image.fromarray(a), "a.png"))
    assert x.dtype == np.float32 and x.shape == (9, 11, 3)
    np.testing.assert_array_equal(x, a)


def test_grayscale(tmp_path):
    x = load_image(saved(tmp_path, Image.new("L", (5, 4), 77), "g.png"))
    assert x.shape == (4, 5, 3) and np.all(x == 77)


def test_rgba_composited_over_white(tmp_path):
    im = Image.new("RGBA", (3, 2), (200, 0, 0, 0))           # fully transparent red
    assert np.all(load_image(saved(tmp_path, im, "t.png")) == 255)
    im = Image.new("RGBA", (3, 2), (200, 0, 0, 255))
    assert load_image(saved(tmp_path, im, "o.png"))[0, 0].tolist() == [200, 0, 0]


def test_palette(tmp_path):
    im = Image.new("RGB", (4, 4), (10, 120, 230)).quantize(colors=4)
    x = load_image(saved(tmp_path, im, "p.png"))
    assert x[0, 0].tolist() == [10, 120, 230]


def test_16bit_gray_scaled(tmp_path):
    a = np.full((3, 4), 65535, np.uint16)
    a[0, 0] = 257 * 100
    x = load_image(saved(tmp_path, Image.fromarray(a), "d.png"))
    assert x.shape == (3, 4, 3) and x[1, 1, 0] == pytest.approx(255) and x[0, 0, 2] == pytest.approx(100)


def test_cmyk(tmp_path):
    im = Image.new("CMYK", (4, 3), (0, 255, 255, 0))         # pure red in CMYK
    x = load_image(saved(tmp_path, im, "c.jpg"))
    assert x.shape == (3, 4, 3)
    assert x[1, 1, 0] > 200 and x[1, 1, 1] < 60 and x[1, 1, 2] < 60


@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation(tmp_path, rng, orientation, bits):
    # the picture as shown, not only its shape (a black one passed rotated either way): 8-bit PNGs
    # through Pillow, 16-bit ones through nst's own reader (image.ORIENT), both against Pillow's
    # exif_transpose of the same pixels, and 6 and 8 (90° clockwise, anticlockwise) worked by hand
    stored = rng.integers(0, 256, (3, 5, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "r.png"
    if bits == 8:
        Image.fromarray(stored).save(path, exif=exif)
    else:                                                       # an eXIf chunk holds the TIFF bytes
        data, tiff = png16_bytes(stored.astype(np.uint16) * 257, 2, [0]), exif.tobytes().removeprefix(b"Exif\0\0")
        at = data.index(b"IDAT") - 4
        path.write_bytes(data[:at] + struct.pack(">I", len(tiff)) + b"eXIf" + tiff
                         + struct.pack(">I", zlib.crc32(b"eXIf" + tiff)) + data[at:])
        assert png.read16(path.read_bytes()).shape == (3, 5, 3)
    shown, turned = load_image(path), Image.fromarray(stored)
    turned.info["exif"] = exif.tobytes()                        # what exif_transpose reads
    np.testing.assert_array_equal(shown, np.asarray(ImageOps.exif_transpose(turned)))
    assert image_shape(path) == shown.shape[:2]                  # nst batch's check: the same shape
    if orientation == 6:                                         # top row: the stored left column, bottom up
        np.testing.assert_array_equal(shown[0], stored[::-1, 0])
    if orientation == 8:                                         # top row: the stored right column, top down
        np.testing.assert_array_equal(shown[0], stored[:, -1])


READERS = [load_image, image_shape]     # image_shape (nst batch's check of its inputs) refuses what load_image does
LEADS_NOWHERE = r"x\.png: a symbolic link that leads nowhere \(a loop, or a missing target\)$"


@pytest.mark.parametrize("read", READERS)
@pytest.mark.parametrize("make, msg", [
    (lambda p: None, "no such file"),
    (lambda p: p.write_text("hello"), "not an image"),
    (lambda p: p.mkdir(), "directory"),
    (lambda p: p.symlink_to(p.parent / "gone.png"), LEADS_NOWHERE),
    (lambda p: p.symlink_to(p), LEADS_NOWHERE),
    (lambda p: (p.parent / "up").symlink_to(p.parent / "up") or p.parent.joinpath("up", "x.png"),
     "a symbolic link loop on its path"),
])
def test_bad_files(tmp_path, make, msg, read):
    path = tmp_path / "x.png"
    made = make(path)
    path = made if isinstance(made, Path) else path             # a path through a loop in a folder above
    with pytest.raises(ImageError, match=msg) as e:
        read(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("read", READERS)
def test_truncated(tmp_path, rng, read):
    path = saved(tmp_path, Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)), "t.jpg")
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(ImageError, match="t.jpg"):
        read(path)


@pytest.mark.parametrize("size", [0, -5, 10**6])
def test_absurd_size(size):
    with pytest.raises(ImageError, match="out of range"):
        resize_longest(np.zeros((8, 8, 3), np.float32), size)


def test_resize_longest_keeps_aspect():
    assert resize_longest(np.zeros((300, 451, 3), np.float32), 128).shape == (85, 128, 3)


RESIZE_PEAK = """
import numpy as np
from nst.io.image import resize
def hwm():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")) * 1024
img = np.full((2000, 3000, 3), 100.0, np.float32)           # 72 MB, above THREADED_PIXELS
before = hwm()
assert resize(img, 100, 150).shape == (100, 150, 3)
print((hwm() - before) / img.nbytes)
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc")
def test_resizing_a_huge_input_holds_less_than_its_size():
    # an 8000 px style image resampled with its three channels in flight at once held twice its
    # size beside it (each channel's copy and Pillow's), more than the run's estimate; one channel
    # at a time holds 2/3 of it (nst.memory.resize_bytes)
    out = subprocess.run([sys.executable, "-c", RESIZE_PEAK], capture_output=True, text=True, check=True)
    assert float(out.stdout) < 0.8, f"resize held {float(out.stdout):.2f}× its input beside it"


def test_save_is_atomic_and_keeps_old_file_on_error(tmp_path, monkeypatch):
    # the encoder fails half way through the file (a full disk): the old picture stays whole. (A
    # wrong shape, refused before any byte is written, passed a save straight into the file)
    out = tmp_path / "o.png"
    save_image(np.full((4, 5, 3), 300.0), out)               # clipped to 255
    assert np.all(load_image(out) == 255)

    def disk_full(im, fp, *a, **k):
        Path(fp).write_bytes(b"\x89PNG\r\n\x1a\n half")
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(Image.Image, "save", disk_full)
    with pytest.raises(OSError, match="No space left"):
        save_image(np.zeros((4, 5, 3)), out)
    monkeypatch.undo()
    assert np.all(load_image(out) == 255)
    assert [p.name for p in tmp_path.iterdir()] == ["o.png"]  # no temporary left behind


@pytest.mark.parametrize("path", [3, None, np.zeros((4, 4, 3))])
def test_load_image_of_no_path_says_what_it_takes(path):
    # pathlib's "expected str, bytes or os.PathLike object, not int"
    with pytest.raises(TypeError, match=r"^load_image\(path\): path must be a file name \(str or os.PathLike\), not "):
        load_image(path)


def test_load_image_takes_a_bytes_path(tmp_path, rng):
    path = saved(tmp_path, Image.fromarray(rng.integers(0, 256, (4, 5, 3), dtype=np.uint8)), "a.png")
    assert load_image(bytes(path)).shape == (4, 5, 3)


@pytest.mark.parametrize("shape", [(0, 0, 3), (0, 5, 3), (4, 0, 3)])
def test_saving_an_empty_image_names_the_path_and_writes_nothing(tmp_path, shape):
    # Pillow's "cannot write empty image", naming no file
    out = tmp_path / "o.png"
    needle = rf"^{out}: the image is empty \(shape {re.escape(str(shape))}\); nothing written$"
    with pytest.raises(ImageError, match=needle):
        save_image(np.zeros(shape), out)
    assert list(tmp_path.iterdir()) == []


def test_save_image_with_its_arguments_swapped_names_path(tmp_path):
    # save_image(path, array): "expected str, bytes or os.PathLike object, not ndarray" from pathlib
    with pytest.raises(TypeError, match=r"^save_image\(img, path\): path must be a file name .*, not ndarray$"):
        save_image(str(tmp_path / "o.png"), np.zeros((4, 5, 3)))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["dark.png", "dark.tif", "dark.pgm"])
def test_16bit_gray_decided_by_mode_not_values(tmp_path, name):
    # values ≤ 255 of 65535 are a dark image, not an 8-bit one
    x = load_image(saved(tmp_path, Image.fromarray(np.full((3, 4), 200, np.uint16)), name))
    np.testing.assert_allclose(x, 200 / 257, rtol=1e-6)


@pytest.mark.parametrize("dtype, top, read", [(np.int32, 255, 255), (np.uint32, 255, 255), (np.int16, 255, 255),
                                             (np.int32, 40000, 40000 / 257), (np.uint32, 65535, 255)])
def test_a_tiff_of_32_bit_integers_is_read_by_its_values(tmp_path, dtype, top, read):
    # Pillow's TIFF of an integer array (mode I, 32-bit samples: no range comes with them) holding
    # 8-bit values was read ÷257, near-black: values all within 0..255 are taken as they are, others
    # as 16-bit ones
    a = np.full((3, 4), top, dtype)
    a[0, :2] = 0, 100
    x = load_image(saved(tmp_path, Image.fromarray(a), "i.tif"))
    scale = read / top
    np.testing.assert_allclose(x[0, :3, 0], [0, 100 * scale, read], rtol=1e-6)
    assert x.dtype == np.float32 and x.shape == (3, 4, 3)


@pytest.mark.parametrize("values, read", [((0, 0.5, 1), (0, 127.5, 255)), ((0, 0.5, 2), (0, 0.5, 2)),
                                          ((0, 100, 300), (0, 100, 255))])
def test_a_float_image_in_0_to_1_is_scaled_by_255(tmp_path, values, read):
    # a float TIFF (mode F) in 0..1, float pictures' usual range, was read near-black without a word:
    # values all within 0..1 are scaled by 255; others are taken as 0..255 (clipped)
    a = np.full((3, 4), values[-1], np.float32)
    a[0, :2] = values[:2]
    x = load_image(saved(tmp_path, Image.fromarray(a), "f.tif"))
    np.testing.assert_allclose(x[0, :3, 1], read, rtol=1e-6)
    assert x.dtype == np.float32


def png16_bytes(samples, colour_type, filters):
    # H×W×C uint16 -> a 16-bit PNG whose row y uses filter filters[y % len] (pure Python, the spec's
    # formulas, as the reference the reader is checked against)
    h, w, c = samples.shape
    raw = samples.astype(">u2").reshape(h, -1).view(np.uint8).astype(int)
    bpp, out, prev = 2 * c, [], np.zeros(raw.shape[1], int)
    for y in range(h):
        f, row, enc = filters[y % len(filters)], raw[y], []
        for i, x in enumerate(row):
            a, b, cc = (row[i - bpp] if i >= bpp else 0), prev[i], (prev[i - bpp] if i >= bpp else 0)
            p = a + b - cc
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - cc)
            paeth = a if pa <= pb and pa <= pc else (b if pb <= pc else cc)
            enc.append((x - [0, a, b, (a + b) // 2, paeth][f]) % 256)
        out.append(bytes([f] + enc))
        prev = row
    chunk = lambda k, d: struct.pack(">I", len(d)) + k + d + struct.pack(">I", zlib.crc32(k + d))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"".join(out))) + chunk(b"IEND", b""))


@pytest.mark.parametrize("channels, colour_type", [(3, 2), (4, 6), (2, 4)])
def test_16bit_colour_png_read_at_16_bits(tmp_path, rng, channels, colour_type):
    a = rng.integers(0, 65536, (7, 9, channels), dtype=np.uint16)
    path = tmp_path / "c16.png"
    path.write_bytes(png16_bytes(a, colour_type, filters=[0, 1, 2, 3, 4]))
    np.testing.assert_array_equal(png.read16(path.read_bytes()), a)
    x = load_image(path).astype(np.float64)
    colour = a[..., :3] if channels >= 3 else np.repeat(a[..., :1], 3, axis=2)
    alpha = a[..., -1:] / 65535 if channels in (2, 4) else 1.0
    np.testing.assert_allclose(x, colour / 257 * alpha + 255 * (1 - alpha), atol=1e-3)



def test_16bit_png_paeth_ties_go_the_specs_way(rng):
    # bytes of four levels make Paeth's ties that matter (pa = pc, or pb = pc, with different
    # predictions: ~3 % of byte triples, ~0.1 % of random ones) common: each must go the spec's way
    a = (rng.integers(0, 4, (9, 11, 3)) * 256 + rng.integers(0, 4, (9, 11, 3))).astype(np.uint16)
    np.testing.assert_array_equal(png.read16(png16_bytes(a, 2, filters=[4])), a)

def test_16bit_written_and_read_back_exactly(tmp_path, rng):
    img = rng.uniform(0, 255, (5, 6, 3)).astype(np.float32)        # fractions Pillow's 8 bits would drop
    np.testing.assert_allclose(load_image(save_image(img, tmp_path / "a.png", bits=16)), img, atol=0.5 / 257 + 1e-4)


def test_decompression_bomb_refused_from_header(tmp_path):
    chunk = lambda k, d: struct.pack(">I", len(d)) + k + d + struct.pack(">I", zlib.crc32(k + d))
    path = tmp_path / "bomb.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 50000, 50000, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))
    with pytest.raises(ImageError, match="bomb.png: declares .* decompression bomb"):
        load_image(path)


def test_declared_size_against_free_memory(tmp_path, monkeypatch):
    path = saved(tmp_path, Image.new("RGB", (300, 200)), "big.png")
    monkeypatch.setattr("nst.memory.available", lambda backend: 10**5)
    with pytest.raises(ImageError, match=r"big.png: decoding its 300×200 pixels needs about"):
        load_image(path)


def test_a_broadcast_array_is_checked_by_its_own_values():
    # nst batch's stand-in pictures (one zero broadcast to H×W×3) were checked pixel by pixel: 90 ms
    # a shape at 4000×3000; NaN and 0..1 in a broadcast array are still found
    from nst.io.image import as_image, own_values
    big = np.broadcast_to(np.zeros((), np.float32), (3000, 4000, 3))
    assert own_values(big).shape == (1, 1, 1) and as_image(big, "content") is big
    row = np.broadcast_to(np.array([0.0, np.nan, 5.0], np.float32), (7, 9, 3))
    assert own_values(row).shape == (1, 1, 3)
    with pytest.raises(ValueError, match="content holds NaN or inf"):
        as_image(row, "content")
    with pytest.warns(UserWarning, match="values in 0..1 only"):
        as_image(np.broadcast_to(np.float32(0.5), (5, 5, 3)), "init")
    lone_nan = np.zeros((4, 4, 3), np.float32)
    lone_nan[3, 2, 1] = np.nan
    with pytest.raises(ValueError, match="holds NaN"):
        as_image(lone_nan, "style")


@pytest.mark.parametrize("suffix, animated", [(".gif", True), (".png", True), (".webp", True),
                                              (".gif", False), (".png", False)])
def test_an_animation_is_read_as_its_first_frame_with_a_warning(tmp_path, rng, suffix, animated):
    # an animated GIF, PNG or WebP was read as its first frame without a word
    frames = [Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)) for _ in range(3 if animated else 1)]
    path = tmp_path / f"a{suffix}"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, lossless=True)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        img = load_image(path)
    said = [str(w.message) for w in seen]
    assert said == ([f"{path} is an animation of 3 frames: nst reads its first frame only "
                     "(nst video styles every frame)"] if animated else [])
    with Image.open(path) as im:                         # the first frame as stored (a GIF's palette rounds)
        first = np.asarray(im.convert("RGB"), np.float32)
        last = im.seek(im.n_frames - 1) or np.asarray(im.convert("RGB"), np.float32)
    assert np.array_equal(img, first) and (not animated or not np.array_equal(img, last))
