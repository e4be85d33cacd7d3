"""16-bit PNG in and out, which Pillow does not do for colour images (it reads 16-bit RGB as 8 bits
and writes 16 bits only for gray). Layout: H×W×C big-endian uint16, C = 1 gray, 2 gray+alpha,
3 RGB, 4 RGBA. PNG: signature, IHDR, IDAT (zlib of rows, each a filter byte + the row), IEND.
"""
import struct
import zlib

import numpy as np

CHANNELS = {0: 1, 4: 2, 2: 3, 6: 4}           # PNG colour type -> samples per pixel


class PngError(ValueError):
    """A 16-bit PNG nst cannot decode (truncated, or a feature it does not read)."""


def write16(rgb, software=None):
    # H×W×3 big-endian uint16 -> bytes of a 16-bit RGB PNG (with a tEXt Software chunk if given)
    h, w, _ = rgb.shape
    rows = np.concatenate([np.zeros((h, 1), np.uint8), rgb.reshape(h, -1).view(np.uint8)], axis=1)
    header = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)  # 16-bit, colour type 2 (RGB)
    text = _chunk(b"tEXt", b"Software\0" + software.encode("latin-1")) if software else b""
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + text
            + _chunk(b"IDAT", zlib.compress(rows.tobytes(), 6)) + _chunk(b"IEND", b""))


def _chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def chunks(data):
    # bytes of a PNG -> [(kind, body)] up to IEND
    pos, out = 8, []
    while pos + 8 <= len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        out.append((kind, data[pos + 8:pos + 8 + n]))
        pos += 12 + n
        if kind == b"IEND":
            break
    return out


def read16(data):
    # bytes of a non-interlaced 16-bit PNG -> H×W×C uint16 (C from the colour type)
    found = chunks(data)
    if not found or found[0][0] != b"IHDR" or len(found[0][1]) != 13:
        raise PngError("no PNG header")
    w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", found[0][1])
    if depth != 16 or ctype not in CHANNELS or interlace:
        raise PngError(f"a {depth}-bit, colour type {ctype}, interlace {interlace} PNG is not read at 16 bits")
    stride = w * 2 * CHANNELS[ctype]
    need = h * (stride + 1)
    z = zlib.decompressobj()
    try:
        raw = z.decompress(b"".join(body for kind, body in found if kind == b"IDAT"), need)
    except zlib.error as e:
        raise PngError(f"corrupt image data ({e})") from None
    if len(raw) < need:
        raise PngError("truncated image data")
    rows = np.frombuffer(raw, np.uint8).reshape(h, stride + 1)
    try:
        out = _unfilter()(rows, 2 * CHANNELS[ctype])
    except ValueError:
        raise PngError("unknown row filter") from None
    return out.view(">u2").reshape(h, w, CHANNELS[ctype]).astype(np.uint16)


_KERNEL = []


def _unfilter():
    # the PNG row filters undone (None, Sub, Up, Average, Paeth), compiled once by Numba
    if not _KERNEL:
        from numba import njit

        @njit(cache=True)
        def unfilter(rows, bpp):
            h, n = rows.shape[0], rows.shape[1] - 1
            out = np.zeros((h, n), np.uint8)
            for y in range(h):
                f = rows[y, 0]
                if f > 4:
                    raise ValueError("unknown row filter")
                for i in range(n):
                    a = np.int32(out[y, i - bpp]) if i >= bpp else 0
                    b = np.int32(out[y - 1, i]) if y > 0 else 0
                    c = np.int32(out[y - 1, i - bpp]) if y > 0 and i >= bpp else 0
                    if f == 0:
                        pred = 0
                    elif f == 1:
                        pred = a
                    elif f == 2:
                        pred = b
                    elif f == 3:
                        pred = (a + b) // 2
                    else:
                        p = a + b - c
                        pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                        pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                    out[y, i] = (np.int32(rows[y, i + 1]) + pred) & 255
            return out
        _KERNEL.append(unfilter)
    return _KERNEL[0]
