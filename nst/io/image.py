"""Images in and out: H×W×3 float32 RGB in 0..255 (SPEC.md "Images").

Any image Pillow reads comes in as RGB: EXIF orientation applied, grayscale/palette/CMYK
converted, alpha composited over white. 16-bit images (decided by their mode or bit depth, never
by their values) are read at 16 bits and scaled by 1/257; Pillow truncates 16-bit colour PNGs to
8 bits, so nst.io.png reads those. A TIFF of 32-bit integers is read as 8-bit values when they all
lie in 0..255, else as 16-bit ones; a float image in 0..1 is scaled by 255 (to_rgb_array). An
input's declared size is checked against MAX_INPUT_PIXELS and the free memory before any pixel is
decoded. Output is written atomically.
"""
import contextlib
import errno
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from nst import memory
from nst.io import png
from nst.io.assets import atomic_path, link_text

MAX_SIDE = 16384          # larger requests are a typo, not a picture
MAX_INPUT_PIXELS = 2 * 89478485   # Pillow's decompression-bomb limit (2 × its MAX_IMAGE_PIXELS default)
SAVE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".tif": "TIFF",
                ".tiff": "TIFF", ".webp": "WEBP"}
PNG16_RAWMODES = ("RGB;16B", "RGBA;16B", "LA;16B")   # 16-bit colour PNGs, which Pillow reads at 8 bits
# EXIF orientation -> the numpy transform that shows the image upright (as ImageOps.exif_transpose)
ORIENT = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
          5: lambda a: a.transpose(1, 0, 2), 6: lambda a: np.rot90(a, -1),
          7: lambda a: np.rot90(a, 2).transpose(1, 0, 2), 8: lambda a: np.rot90(a, 1)}


MARK = "nst"              # EXIF Software (PNG: a tEXt Software chunk) of every image nst writes


class ImageError(ValueError):
    """An input or output image problem; the message names the file."""


def to_rgb_array(im: Image.Image) -> np.ndarray:
    # any Pillow image -> H×W×3 float32 RGB 0..255. Gray of more than 8 bits, by what its samples
    # hold, then clipped to 0..255:
    #   16 bits (I;16…, or I from a PNG or a PGM/PPM above 255, which Pillow holds in 0..65535): ÷257,
    #     by the bit depth, never by the values (a dark 16-bit picture stays dark);
    #   other integers (I: a TIFF's 32-bit samples, which come with no range): values all within
    #     0..255 are 8-bit ones, taken as they are; else 16-bit ones, ÷257;
    #   floats (F): values all within 0..1 are a picture in 0..1 (float pictures' usual range), ×255;
    #     else taken as 0..255
    ranged_by_values = im.mode == "I" and im.format not in ("PNG", "PPM")   # exif_transpose drops format
    im = ImageOps.exif_transpose(im)
    if im.mode.startswith("I;16") or im.mode == "I":
        a = np.asarray(im, dtype=np.float32)
        return gray_to_rgb(a if ranged_by_values and a.max() <= 255 else a / 257.0)
    if im.mode == "F":
        a = np.asarray(im, np.float32)
        return gray_to_rgb(a * 255.0 if a.max() <= 1 else a)
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, rgba)
    return np.asarray(im.convert("RGB"), dtype=np.float32)


def gray_to_rgb(a):
    # H×W gray in 0..255 (beyond it: clipped) -> H×W×3 float32
    return np.repeat(np.clip(a, 0, 255)[..., None], 3, axis=2).astype(np.float32, copy=False)


def png16_to_rgb(a, orientation=1):
    # H×W×C uint16 (nst.io.png.read16) -> H×W×3 float32 0..255, alpha composited over white
    x = a.astype(np.float32) / 257.0
    colour, alpha = (x[..., :3], x[..., 3:]) if a.shape[2] >= 3 else (x[..., :1], x[..., 1:])
    if alpha.shape[2]:
        colour = colour * (alpha / 255.0) + 255.0 * (1 - alpha / 255.0)
    rgb = np.broadcast_to(colour, a.shape[:2] + (3,))
    return np.ascontiguousarray(ORIENT.get(orientation, lambda v: v)(rgb), dtype=np.float32)


def mode_bytes(im):
    # bytes a decoded pixel takes in Pillow (16-bit colour PNGs: ours, raw rows and uint16 out)
    if png16_rawmode(im):
        return 14
    if im.mode.startswith("I;16"):
        return 2
    return 4 if len(im.getbands()) > 1 or im.mode in ("I", "F") else 1


def png16_rawmode(im):
    tile = getattr(im, "tile", None) or [None]
    return im.format == "PNG" and tile[0] is not None and tile[0][3] in PNG16_RAWMODES


def check_declared_size(path, im):
    # before decoding: the size the file declares is sane and its decoding fits in free memory
    w, h = im.size
    if w * h > MAX_INPUT_PIXELS:
        raise ImageError(f"{path}: declares {w}×{h} pixels, more than the {MAX_INPUT_PIXELS:,} nst reads "
                         "(a decompression bomb?); use a smaller image")
    need, free = memory.decode_bytes(w, h, mode_bytes(im)), memory.available("numpy")
    if need > free:
        raise ImageError(f"{path}: decoding its {w}×{h} pixels needs about {memory.gib(need)}, "
                         f"{memory.gib(free)} is available; use a smaller image")


def declared_shape(path):
    # (h, w) a file's header declares (nothing decoded), or None where `opened` refuses it: load_image
    # then says why. Orientation left aside: what counts is h·w
    try:
        with opened(path) as im:
            return im.size[1], im.size[0]
    except ImageError:
        return None


def load_image(path) -> np.ndarray:
    # file -> H×W×3 float32 RGB 0..255; one-line ImageError naming the file on failure
    path = Path(image_path(path, "load_image(path)"))
    with opened(path) as im:
        if png16_rawmode(im) and not im.info.get("interlace"):
            return png16_to_rgb(png.read16(path.read_bytes()), im.getexif().get(0x0112, 1))
        im.load()
        return to_rgb_array(im)


class AnimationWarning(UserWarning):
    """An animated picture read as its first frame (nst batch's workers ignore it: the check said it)."""


def animation_frames(im):
    # -> the frame count of an animated GIF, PNG or WebP, else 0 (a camera's MPO JPEG, whose second
    # frame is a preview, is no animation)
    return im.n_frames if im.format in ("GIF", "PNG", "WEBP") and getattr(im, "is_animated", False) else 0


def warn_animation(path, im):
    # an animated picture is read as its first frame: warn, naming the frame count and nst video
    if frames := animation_frames(im):
        warnings.warn(f"{path} is an animation of {frames} frames: nst reads its first frame only "
                      "(nst video styles every frame)", AnimationWarning)


def image_shape(path, reserve=lambda need: contextlib.nullcontext()):
    # -> (H, W) of the array load_image returns (EXIF orientation applied), the file decoded to
    # be sure it is whole but not converted (nst batch checks every input so before its tasks);
    # reserve(bytes) is held while it decodes: the bytes decoding needs at its peak, from the header
    # read once (nst.memory.decode_bytes; nst batch's DecodeBudget)
    with opened(path) as im, reserve(memory.decode_bytes(*im.size, mode_bytes(im))):
        im.load()
        w, h = im.size
        return (w, h) if im.getexif().get(0x0112, 1) in (5, 6, 7, 8) else (h, w)


def is_path(x):
    # a file's name: text, bytes or an os.PathLike (not an array)
    return isinstance(x, (str, bytes)) or hasattr(x, "__fspath__")


def image_path(path, call):
    # -> path, or TypeError naming the call and its argument when it is no file name (a number, an array)
    if not is_path(path):
        raise TypeError(f"{call}: path must be a file name (str or os.PathLike), not {type(path).__name__}")
    return os.fsdecode(path) if isinstance(path, bytes) else path


@contextlib.contextmanager
def opened(path):
    # the Pillow image of `path`, its declared size checked; whatever fails in the block (opening,
    # decoding) is one ImageError naming the file
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)   # checked below
            with Image.open(path) as im:
                check_declared_size(path, im)
                warn_animation(path, im)
                yield im
    except ImageError:
        raise
    except Image.DecompressionBombError:
        raise ImageError(f"{path}: declares more than the {MAX_INPUT_PIXELS:,} pixels nst reads "
                         "(a decompression bomb?); use a smaller image") from None
    except FileNotFoundError:
        raise ImageError(f"{path}: {link_text(path) if os.path.islink(path) else 'no such file'}") from None
    except IsADirectoryError:
        raise ImageError(f"{path}: is a directory, not an image") from None
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image Pillow can read") from None
    except OSError as e:
        if e.errno == errno.ELOOP:                       # the link itself, else a folder above it
            what = link_text(path) if os.path.islink(path) else "a symbolic link loop on its path"
            raise ImageError(f"{path}: {what}") from None
        if e.errno and e.strerror:                       # the system's refusal (a name too long, no permission)
            raise ImageError(f"{path}: cannot be read ({e.strerror})") from None
        raise ImageError(f"{path}: unreadable or truncated image ({e})") from None
    except (SyntaxError, ValueError) as e:
        raise ImageError(f"{path}: unreadable or truncated image ({e})") from None


def as_image(x, what, dtype=np.float32, warn_scale=True):
    # a path or an H×W×3 array -> H×W×3 RGB 0..255 in `dtype` (None: an array's own, a file's
    # float32); ValueError naming `what` (the argument: "content", "picture 2") if it holds no
    # numbers, its shape is wrong or empty, or it holds NaN or inf; a warning if an array looks like
    # an image in 0..1 (warn_scale=False: the caller's own array, derived from one checked so)
    if is_path(x):
        img = load_image(x)
    else:
        try:
            img = np.asarray(x)
        except ValueError:                                 # a ragged nested list
            raise ValueError(f"{what} must be an H×W×3 array of numbers, got a ragged {type(x).__name__}") from None
        if img.ndim == 0:                                  # None, a number, bytes: no image at all
            raise ValueError(f"{what} must be an image file's path or an H×W×3 array, got {type(x).__name__}")
        if img.dtype.kind not in "fiu":
            raise ValueError(f"{what} must hold numbers (0..255), got dtype {img.dtype}")
        integers = img.dtype.kind in "iu"
        img = img.astype(dtype or img.dtype, copy=False)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"{what} must be H×W×3 RGB, got shape {img.shape}")
    if img.size == 0:
        raise ValueError(f"{what} is empty (shape {img.shape}): an image needs at least one pixel")
    values = own_values(img)
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{what} holds NaN or inf")
    if warn_scale and not is_path(x):
        warn_unit_range(values, what)
        if integers:
            warn_16_bit(values, what)
    return img


def own_values(a):
    # a, with each broadcast axis (stride 0: one value repeated) cut to its one value: the values
    # a holds, for checks of them (nst batch's stand-in pictures are one zero broadcast to H×W×3)
    return a[tuple(slice(None) if stride else slice(0, 1) for stride in a.strides)]


def warn_16_bit(img, what):
    # an integer array holding values above 255 is most likely a 16-bit image (tifffile, OpenCV's
    # IMREAD_UNCHANGED) given for 0..255: warn, naming it and the fix (files are scaled: load_image)
    top = img.max()
    if top > 255:
        warnings.warn(f"{what} holds integers above 255 (up to {top:.0f}); nst takes pixels in 0..255, so it "
                      "is read as far brighter than white: if it is a 16-bit image, divide it by 257", UserWarning)


def warn_unit_range(img, what, done="read"):
    # a float array whose values all lie in 0..1, some strictly between, is most likely an image in
    # 0..1 given for 0..255 (it would be `done`, read or written, as near-black): warn, naming it and
    # the fix. Not refused: a near-black picture is legitimate (whole values 0 and 1, as from 8 bits,
    # are not warned of)
    if img.dtype.kind == "f" and img.max() <= 1 and np.any((img > 0) & (img < 1)):
        warnings.warn(f"{what} holds values in 0..1 only; nst takes pixels in 0..255, so it is {done} as "
                      f"near-black: if it is an image in 0..1, multiply it by 255", UserWarning)


def check_size(size):
    if not isinstance(size, (int, np.integer)) or not 16 <= size <= MAX_SIDE:
        raise ImageError(f"size {size!r} is out of range: use 16..{MAX_SIDE} pixels (longest side)")


def longest_shape(shape, size):
    # (H, W, ...) -> (h, w) with max(h, w) == size, aspect kept: the shape resize_longest makes
    h, w = shape[:2]
    return tuple(max(1, round(d * size / max(h, w))) for d in (h, w))


def resize_longest(img, size):
    # H×W×3 -> resized so max(H, W) == size, aspect kept (Lanczos, per channel in float)
    check_size(size)
    return resize(img, *longest_shape(img.shape, size))


def resize(img, h, w):
    # H×W×3 float -> h×w×3 float32 (Lanczos per channel, no 8-bit rounding). A channel resampling
    # holds two H×W float32 planes (its contiguous copy and Pillow's); the channels resample in
    # threads of their own (Pillow lets go of the GIL), one at a time above THREADED_PIXELS, so a
    # huge input costs 2/3 of its own size beside it, not twice it (memory.resize_bytes)
    if img.shape[:2] == (h, w):
        return np.asarray(img, np.float32)

    def channel(c):
        plane = Image.fromarray(np.ascontiguousarray(img[..., c], np.float32), "F")   # H×W, Pillow's copy
        return np.asarray(plane.resize((w, h), Image.LANCZOS))
    workers = img.shape[2] if img.shape[0] * img.shape[1] <= memory.THREADED_PIXELS else 1
    with ThreadPoolExecutor(workers, thread_name_prefix="nst-resize") as pool:
        chans = list(pool.map(channel, range(img.shape[2])))
    return np.clip(np.stack(chans, axis=2), 0, 255).astype(np.float32)


def to_uint8(img):
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def check_output_format(path, bits=8):
    # -> Pillow format name for path's suffix; 16 bits only as PNG
    path = Path(path)
    fmt = SAVE_FORMATS.get(path.suffix.lower())
    if fmt is None and path.name.lower() in SAVE_FORMATS:     # ".png" is a hidden file's name, with no suffix
        raise ImageError(f"{path}: a name is needed before the suffix, e.g. {path.with_name('out' + path.name)}")
    if fmt is None:
        raise ImageError(f"{path}: unknown image suffix; use one of {', '.join(SAVE_FORMATS)}")
    if bits not in (8, 16) or (bits == 16 and fmt != "PNG"):
        raise ImageError(f"{path}: {bits}-bit output is not supported; 16-bit needs a .png name")
    return fmt


def save_image(img, path, bits=8, warn_scale=True):
    # H×W×3 0..255 -> file (8-bit, or 16-bit PNG); format from the suffix; written atomically. An
    # existing file is replaced only if nst wrote it (its mark): nothing of the user's is lost, from
    # the API too (the commands check every destination before a run: nst.io.destinations).
    # warn_scale=False: the picture is a run's own (nst's callers), not the caller's array
    fmt = check_output_format(image_path(path, "save_image(img, path)"), bits)
    if os.path.isdir(path):
        raise ImageError(f"{path} is a folder; give a file name, e.g. {Path(path) / 'out.png'}")
    if not_nsts(path):
        raise ImageError(f"{path} exists and nst did not write it; nst replaces only its own files: "
                         f"move it or choose another name{unmarked(path)}")
    img = np.asarray(img, dtype=np.float32)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ImageError(f"{path}: expected an H×W×3 image, got shape {img.shape}")
    if img.size == 0:
        raise ImageError(f"{path}: the image is empty (shape {img.shape}); nothing written")
    if not np.all(np.isfinite(img)):
        raise ImageError(f"{path}: the image holds NaN or inf; nothing written")
    if warn_scale:
        warn_unit_range(own_values(img), f"the image saved to {path}", done="written")
    exif = Image.Exif()
    exif[0x0131] = MARK
    with atomic_path(path) as tmp:
        if bits == 16:
            tmp.write_bytes(png.write16(np.clip(np.rint(img * 257.0), 0, 65535).astype(">u2"), MARK))
        else:
            Image.fromarray(to_uint8(img), "RGB").save(tmp, format=fmt, exif=exif.tobytes(),
                                                       **({"quality": 95} if fmt == "JPEG" else {}))
    return Path(path)


def unmarked(path):
    # why an existing picture of this format cannot be told apart from the user's, or ""
    if SAVE_FORMATS.get(Path(path).suffix.lower()) == "BMP":
        return " (BMP files carry no mark of the program that wrote them, so nst never replaces one: use .png)"
    return ""


def not_nsts(path, is_nsts=None):
    # something is at path that nst may not replace: a folder, a link to nothing, or a file nst did
    # not write (is_nsts(path): how to tell, default written_by_nst; nst.io.destinations passes its own)
    return os.path.lexists(path) and not (os.path.isfile(path) and (is_nsts or written_by_nst)(path))


def written_by_nst(path):
    # True for an image nst saved (its MARK), so that a rerun may replace its own snapshots
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as im:
                return im.info.get("Software") == MARK or im.getexif().get(0x0131) == MARK
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return False
