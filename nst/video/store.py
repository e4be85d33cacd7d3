"""Where a clip's frames are kept: on disk, not in memory, so a long clip needs disk space, not RAM.

FrameFile: the selected source frames at the working size, written as they are decoded to an
unnamed temporary file (next to OUTDIR: on the disk the outputs go to, not in a tmpfs /tmp) and
read back as one N×H×W×3 uint8 array mapped from it (numpy.memmap): the page cache holds what
memory allows, so a clip that fits in RAM runs as fast as before. The file has no name: it is gone
when nst exits, however it exits. Pictures: the finished frames' files, read one at a time as the
video is written.
"""
import tempfile
from collections.abc import Sequence

import numpy as np

from nst.io.destinations import RunRefused, why_not_written
from nst.io.image import load_image


class FrameFile:
    """Frames appended one by one to a temporary file in `folder`; array() maps them back."""

    def __init__(self, folder=None):
        self.folder, self.file = folder, tempfile.TemporaryFile(dir=folder)
        self.shape, self.count = None, 0

    def __len__(self):
        return self.count

    def append(self, image):
        # H×W×3 uint8, every frame the shape of the first (ValueError otherwise); a disk that takes no
        # more (full: a clip whose header declares no length is not checked before) is one line
        self.shape = self.shape or image.shape
        if image.shape != self.shape:
            raise ValueError(f"a frame of {image.shape[1]}×{image.shape[0]} after frames of "
                             f"{self.shape[1]}×{self.shape[0]}: every frame of a video has one size")
        try:
            self.file.write(np.ascontiguousarray(image, np.uint8).data)
        except OSError as e:
            raise RunRefused(f"the clip's frames cannot be kept on the disk of {self.folder} ({why_not_written(e)}) "
                             f"after {self.count}: free some space, or stylise a part (--frames A:B), fewer frames "
                             "(--fps) or a smaller --size") from None
        self.count += 1

    def array(self):
        # -> N×H×W×3 uint8 mapped from the file (a plain ndarray view, read-only); [] when empty
        if not self.count:
            return []
        self.file.flush()
        return np.asarray(np.memmap(self.file, np.uint8, "r", shape=(self.count, *self.shape)))


class Pictures(Sequence):
    """Picture files read when indexed, one at a time, as H×W×3 uint8."""

    def __init__(self, paths):
        self.paths = list(paths)

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, k):
        return np.asarray(load_image(self.paths[k]), np.uint8)
