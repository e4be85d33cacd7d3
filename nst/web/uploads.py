"""Uploaded images: limited in bytes while they arrive, then in type and declared pixels before
any pixel is decoded (as nst.image.load_image checks a file), stored as OUTDIR/uploads/<sha256>.<ext>:
the name is ours, the uploader's file name is only shown, never used as a path.
"""
import hashlib
import io
import warnings
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from nst.io.assets import atomic_path
from nst.io.destinations import why_not_written
from nst.io.image import animation_frames

TYPES = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "BMP": ".bmp", "TIFF": ".tif"}


class Refused(Exception):
    """A request the server refuses: an HTTP status and a one-line reason for the page."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


async def read_limited(part, limit, what, rule=None):
    # a multipart part's bytes, refused (413) past `limit` bytes without reading the rest; the
    # refusal says `what` and the rule broken (by default: an upload's MiB)
    chunks, size = [], 0
    while chunk := await part.read_chunk(1 << 16):
        size += len(chunk)
        if size > limit:
            raise Refused(413, f"{what}: {rule or f'larger than the {limit / 2**20:g} MiB an upload may be'}")
        chunks.append(chunk)
    return b"".join(chunks)


def check_image(data, what, max_pixels):
    # -> the suffix of its type; Refused if empty, if not an image type we take, if animated, if it
    # declares more than max_pixels (before decoding), or if its data is damaged
    if not data:
        raise Refused(400, f"{what}: an empty file (0 bytes); send {', '.join(TYPES)}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                if im.format not in TYPES:
                    raise Refused(415, f"{what}: a {im.format} image; send {', '.join(TYPES)}")
                if frames := animation_frames(im):   # nst transfer warns and takes frame 1: the page shows no warning
                    raise Refused(415, f"{what}: an animation of {frames} frames; send one still picture "
                                       "(nst video styles every frame)")
                w, h = im.size
                if w * h > max_pixels:
                    raise Refused(413, f"{what}: declares {w}×{h} pixels, more than the {max_pixels:,} "
                                       "an upload may have (a decompression bomb?)")
                im.verify()
                return TYPES[im.format]
    except Image.DecompressionBombError:
        raise Refused(413, f"{what}: declares more pixels than an upload may have (a decompression bomb?)") from None
    except UnidentifiedImageError:
        raise Refused(415, f"{what}: not an image; send {', '.join(TYPES)}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise Refused(400, f"{what}: a damaged image ({type(e).__name__})") from None


def path_of(data, folder, suffix):
    # -> OUTDIR/uploads/<sha256 of the bytes><suffix>: where store() puts these bytes
    return Path(folder) / (hashlib.sha256(data).hexdigest()[:32] + suffix)


def store(data, path, what):
    # the bytes at `path` (path_of's), written once, atomically; Refused (507) in one line naming
    # `what` where the disk refuses them (full, read-only), OUTDIR as OUTDIR
    try:
        if not path.exists():
            with atomic_path(path) as tmp:
                tmp.write_bytes(data)
    except OSError as e:
        raise Refused(507, f"{what}: cannot be stored in OUTDIR/{path.parent.name} ({why_not_written(e)})") from None
    return path
