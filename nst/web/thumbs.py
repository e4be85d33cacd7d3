"""`nst serve`'s gallery cards' pictures: a small JPEG of each finished run's saved picture (and of a
queued or running run's content photo until it has one), made once on the server and kept in memory
(never written: OUTDIR holds only the runs' and the user's files), made again when the file changes.
A card of a 2000 px run loaded its whole PNG (megabytes); "Download PNG" and the live page still get
the picture itself. Each is answered with an ETag and how long a browser may keep it (card_answer):
the gallery fetched every card's picture again at each load."""
import hashlib
import os
import threading
from collections import OrderedDict

from nst.web.channel import jpeg_bytes, small
from nst.web.uploads import Refused

KEEP = 256            # thumbnails kept, the least recently asked for let go first (≈ 25 MB: 45–90 KB each
                      # at 512 px, measured on tubingen, starry_night and a stylised 512 px picture)
KEPT_BY_VERSION = "private, max-age=31536000, immutable"   # a finished run's ?v=its finish time: never changes
ASKED_AGAIN = "private, no-cache"    # a running run's not of ?v=its iteration, a photo, or no version: kept,
                                     # asked again (304 while the same)


def card_answer(request, jpeg, versioned):
    # a gallery card's JPEG with its ETag (its bytes' hash) and Cache-Control, kept a year when
    # `versioned` (its URL names this very picture), else asked again; 304 when the browser has it
    from aiohttp import web
    etag = hashlib.sha256(jpeg).hexdigest()[:24]
    headers = {"Cache-Control": KEPT_BY_VERSION if versioned else ASKED_AGAIN}
    if any(tag.value in (etag, "*") for tag in request.if_none_match or ()):
        response = web.Response(status=304, headers=headers)
    else:
        response = web.Response(body=jpeg, content_type="image/jpeg", headers=headers)
    response.etag = etag
    return response


def file_identity(f):
    # an open file -> what changes when it is replaced or rewritten (inode, size, mtime in ns)
    st = os.fstat(f.fileno())
    return st.st_ino, st.st_size, st.st_mtime_ns


class Thumbnails:
    """path -> (its file's identity, JPEG bytes at most channel.THUMB_SIDE a side), at most `keep`."""

    def __init__(self, keep=KEEP):
        self.keep, self.made, self.lock = keep, OrderedDict(), threading.Lock()

    def of(self, path):
        # -> the JPEG of the picture at `path`, made now unless this very file's is kept (runs off the
        # event loop: it reads and decodes the picture); Refused (404) when it is not a readable picture
        from PIL import Image
        try:
            with open(path, "rb") as f:
                identity = file_identity(f)
                with self.lock:
                    kept = self.made.get(path)
                    if kept and kept[0] == identity:
                        self.made.move_to_end(path)
                        return kept[1]
                jpeg = jpeg_bytes(small(Image.open(f)))
        except (OSError, ValueError, Image.DecompressionBombError):
            raise Refused(404, "the picture is not there or cannot be read") from None
        with self.lock:
            self.made[path] = (identity, jpeg)
            self.made.move_to_end(path)
            while len(self.made) > self.keep:
                self.made.popitem(last=False)
        return jpeg
