"""Images in and out: H×W×3 float32 RGB in 0..255 (SPEC.md "Images").

Any image Pillow reads comes in as RGB: EXIF orientation applied, grayscale/palette/CMYK
converted, alpha composited over white, 16-bit scaled to 0..255. Output is written atomically.
"""
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .assets import atomic_path

MAX_SIDE = 16384          # larger requests are a typo, not a picture
SAVE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".tif": "TIFF",
                ".tiff": "TIFF", ".webp": "WEBP"}


class ImageError(ValueError):
    """An input or output image problem; the message names the file."""


def to_rgb_array(im: Image.Image) -> np.ndarray:
    # any Pillow image -> H×W×3 float32 RGB 0..255
    im = ImageOps.exif_transpose(im)
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        a = np.asarray(im, dtype=np.float32)
        a = a / 257.0 if a.max() > 255 else a       # 16-bit -> 8-bit scale
        return np.repeat(np.clip(a, 0, 255)[..., None], 3, axis=2)
    if im.mode == "F":
        return np.repeat(np.clip(np.asarray(im, np.float32), 0, 255)[..., None], 3, axis=2)
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, rgba)
    return np.asarray(im.convert("RGB"), dtype=np.float32)


def load_image(path) -> np.ndarray:
    # file -> H×W×3 float32 RGB 0..255; one-line ImageError naming the file on failure
    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()
            return to_rgb_array(im)
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ImageError(f"{path}: is a directory, not an image") from None
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image Pillow can read") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageError(f"{path}: unreadable or truncated image ({e})") from None


def as_image(x, what):
    # a path or an H×W×3 array -> H×W×3 float32 RGB 0..255; ValueError naming `what` if the
    # shape is wrong or it holds NaN or inf
    img = load_image(x) if isinstance(x, (str, bytes)) or hasattr(x, "__fspath__") else np.asarray(x, np.float32)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"{what} image must be H×W×3 RGB, got shape {img.shape}")
    if not np.all(np.isfinite(img)):
        raise ValueError(f"{what} image holds NaN or inf")
    return img


def check_size(size):
    if not isinstance(size, (int, np.integer)) or not 16 <= size <= MAX_SIDE:
        raise ImageError(f"size {size!r} is out of range: use 16..{MAX_SIDE} pixels (longest side)")


def resize_longest(img, size):
    # H×W×3 -> resized so max(H, W) == size, aspect kept (Lanczos, per channel in float)
    check_size(size)
    h, w = img.shape[:2]
    scale = size / max(h, w)
    return resize(img, max(1, round(h * scale)), max(1, round(w * scale)))


def resize(img, h, w):
    # H×W×3 float -> h×w×3 float32 (Lanczos per channel, no 8-bit rounding)
    if img.shape[:2] == (h, w):
        return np.asarray(img, np.float32)
    chans = [np.asarray(Image.fromarray(np.ascontiguousarray(img[..., c], np.float32), "F")
                        .resize((w, h), Image.LANCZOS)) for c in range(img.shape[2])]
    return np.clip(np.stack(chans, axis=2), 0, 255).astype(np.float32)


def to_uint8(img):
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def check_output_format(path, bits=8):
    # -> Pillow format name for path's suffix; 16 bits only as PNG
    path = Path(path)
    fmt = SAVE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ImageError(f"{path}: unknown image suffix; use one of {', '.join(SAVE_FORMATS)}")
    if bits not in (8, 16) or (bits == 16 and fmt != "PNG"):
        raise ImageError(f"{path}: {bits}-bit output is not supported; 16-bit needs a .png name")
    return fmt


def save_image(img, path, bits=8):
    # H×W×3 0..255 -> file (8-bit, or 16-bit PNG); format from the suffix; written atomically
    fmt = check_output_format(path, bits)
    img = np.asarray(img, dtype=np.float32)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ImageError(f"{path}: expected an H×W×3 image, got shape {img.shape}")
    with atomic_path(path) as tmp:
        if bits == 16:
            tmp.write_bytes(png16(np.clip(np.rint(img * 257.0), 0, 65535).astype(">u2")))
        else:
            Image.fromarray(to_uint8(img), "RGB").save(tmp, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return Path(path)


def png16(rgb):
    # H×W×3 big-endian uint16 -> bytes of a 16-bit RGB PNG (Pillow writes 16 bits only for gray)
    h, w, _ = rgb.shape
    rows = np.concatenate([np.zeros((h, 1), np.uint8), rgb.reshape(h, -1).view(np.uint8)], axis=1)

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)  # 16-bit, colour type 2 (RGB)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows.tobytes(), 6)) + chunk(b"IEND", b""))
