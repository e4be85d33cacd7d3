"""`nst serve`'s gallery cards' pictures of finished runs: a small JPEG of each saved picture, made once
on the server and kept in memory (never written: OUTDIR holds only the runs' and the user's files),
made again when the picture's file changes. A card of a 2000 px run loaded its whole PNG (megabytes);
"Download PNG" and the live page still get the picture itself."""
import os
import threading
from collections import OrderedDict

from nst.web.channel import jpeg_bytes, small
from nst.web.uploads import Refused

KEEP = 256            # thumbnails kept, the least recently asked for let go first (≈ 20 KB each at 256 px)


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
