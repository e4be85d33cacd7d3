"""What a clip must be for nst video to read it, each refusal one line naming the file: --fps
within the source's rate, the file whole (nst.video.header), readable, its frames within the free
disk space, and
decoding the frames its header declares, two or more of them selected."""
import errno
from pathlib import Path

from nst.io.destinations import RunRefused
from nst.library import counted, fps_text
from nst.video import header


def check_fps(path, fps, src_fps):
    # --fps keeps source frames, it makes none: a rate clearly above the source's is refused
    if fps is not None and fps > src_fps * 1.01:
        raise RunRefused(f"--fps {fps:g} is above {path}'s {fps_text(src_fps)}: nst video keeps source frames, it "
                         "does not add any; give a lower --fps, or leave it out to keep every frame")


def check_not_cut(path):
    # a file shorter than its container declares (nst.video.header) stopped being copied part way
    cut = header.cut_short(path)
    if cut:
        raise RunRefused(f"{path}: the file is cut short ({cut[0]:,} bytes where its container declares at least "
                         f"{cut[1]:,}): copy it again in full")


def unreadable(path, e):
    # -> the one line for a file FFmpeg cannot open or decode: empty, not readable, or not a video
    why = getattr(e, "strerror", None) or (str(e).splitlines()[0] if str(e) else type(e).__name__)
    if getattr(e, "errno", None) == errno.EACCES:
        return f"{path}: cannot be read ({why})"
    if Path(path).stat().st_size == 0:
        return f"{path}: the file is empty"
    return f"{path}: not a video nst can read ({why})"


def check_disk(path, count, shape, size, folder):
    # the selected frames are kept at the working size (uint8) in a temporary file in `folder`
    # (nst.video.store): refused before they are decoded where its disk has less free space
    import shutil

    from nst.io.image import longest_shape
    from nst.memory import gib
    h, w = longest_shape(shape, size)
    need, free = count * h * w * 3, shutil.disk_usage(folder).free
    if need > free:
        raise RunRefused(f"{path}: {count} frames at {max(h, w)} px need {gib(need)} on the disk of {folder}, "
                         f"which has {gib(free)} free: free some space, or stylise a part (--frames A:B), fewer "
                         "frames (--fps) or a smaller --size")


def check_complete(path, decoded, declared, src_fps):
    # a file decoding clearly fewer frames than declared (10% and one frame of slack) is cut short,
    # unless its last frame's time reaches its declared end (a variable-rate file: fewer frames, same
    # length; decoded.end: when the last frame leaves the screen, the file decoded to its end)
    seconds = declared / src_fps
    if declared and decoded.count < 0.9 * declared - 1 and (decoded.end is None or decoded.end <
                                                            0.9 * seconds - 1 / src_fps):
        raise RunRefused(f"{path}: decodes to {counted(decoded.count, 'frame')} but its header declares {declared} "
                         f"({seconds:g} s): the file looks cut short; re-encode or re-copy it")


def check_count(path, images, total):
    if total == 0:
        raise RunRefused(f"{path}: no frames in it")
    if not len(images):
        raise RunRefused(f"{path}: --frames selects none of its {counted(total, 'frame')}")
    if len(images) == 1:
        raise RunRefused(f"{path}: only one frame selected; a video needs two or more "
                         "(use nst transfer for one picture)")
