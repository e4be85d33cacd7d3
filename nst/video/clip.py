"""Reading and writing clips: a video file (PyAV, which ships FFmpeg in its wheel) or a folder of frames.

Legend: a frame is H×W×3 uint8 RGB; frames are numbered from 0 in the source. A clip is read
whole before anything runs (selected frames only, resized to --size), so a bad input is refused
before any output exists. Writing a video keeps the frame rate and copies the audio stream's
packets through where the container takes that codec.
"""
import fractions
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nst.io.destinations import RunRefused
from nst.io.image import ImageError, load_image, resize_longest, to_uint8

VIDEO_FORMATS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm", ".avi": "avi"}
FRAME_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
FOLDER_FPS = 25.0             # a folder of frames has no rate: this one, unless --fps says


@dataclass
class Clip:
    """The frames nst will stylise, and where they came from."""
    source: str                       # the path given
    frames: list                      # [H×W×3 uint8], the selected frames at the working size
    numbers: list                     # source frame number of each
    fps: float                        # the output's frame rate
    is_video: bool
    src_frames: int = 0               # frames in the source
    audio: bool = False               # the source has an audio stream
    span: tuple = (0.0, None)         # (start, end) seconds of the selection, for the audio


def is_video_path(path):
    return Path(path).suffix.lower() in VIDEO_FORMATS


def select(n, src_fps, frames=None, fps=None):
    # -> the source frame numbers kept: the slice A:B of range(n), then every frame that starts a
    # new 1/fps interval (fps below the source's), and the output rate
    a, b = frames or (None, None)
    numbers = list(range(n))[slice(a, b)]
    if fps is None or fps >= src_fps:
        return numbers, src_fps
    kept = [i for i in numbers if i == numbers[0] or int(i * fps / src_fps) != int((i - 1) * fps / src_fps)]
    return kept, fps


def read(path, size, frames=None, fps=None):
    # a video file or a folder of frames -> Clip; RunRefused (one line) for anything unreadable
    p = Path(path)
    if p.is_dir():
        return read_folder(p, size, frames, fps)
    if not p.exists():
        raise RunRefused(f"{path}: no such file or folder")
    return read_video(p, size, frames, fps)


def read_folder(folder, size, frames, fps):
    files = sorted(f for f in folder.iterdir() if f.suffix.lower() in FRAME_SUFFIXES and not f.name.startswith("."))
    numbers, out_fps = select(len(files), fps or FOLDER_FPS, frames, None)
    images = []
    for i in numbers:
        try:
            images.append(to_uint8(resize_longest(load_image(files[i]), size)))
        except (ImageError, OSError) as e:
            raise RunRefused(f"{folder}: frame {files[i].name} cannot be read ({str(e).splitlines()[0]})") from None
    check_count(folder, images, len(files))
    return Clip(str(folder), images, numbers, out_fps, False, len(files))


def read_video(path, size, frames, fps):
    import av
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise RunRefused(f"{path}: has no video stream")
            stream = container.streams.video[0]
            src_fps = float(stream.average_rate or stream.guessed_rate or FOLDER_FPS)
            audio = bool(container.streams.audio)
            decoded = [to_uint8(resize_longest(f.to_ndarray(format="rgb24").astype(np.float32), size))
                       for f in container.decode(stream)]
    except RunRefused:
        raise
    except (av.error.FFmpegError, ValueError, OSError) as e:
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise RunRefused(f"{path}: not a video nst can read ({why})") from None
    numbers, out_fps = select(len(decoded), src_fps, frames, fps)
    images = [decoded[i] for i in numbers]
    check_count(path, images, len(decoded))
    span = (numbers[0] / src_fps, (numbers[-1] + 1) / src_fps)
    return Clip(str(path), images, numbers, out_fps, True, len(decoded), audio, span)


def check_count(path, images, total):
    if total == 0:
        raise RunRefused(f"{path}: no frames in it")
    if not images:
        raise RunRefused(f"{path}: --frames selects none of its {total} frames")
    if len(images) == 1:
        raise RunRefused(f"{path}: only one frame selected; a video needs two or more "
                         "(use nst transfer for one picture)")


def write_video(frames, out, fps, source=None, span=(0.0, None), log=print):
    # [H×W×3 uint8] -> the video file `out` (through a temporary name, renamed when complete);
    # H and W cropped to even sizes (yuv420p); the source's audio within span copied when it can be
    import av

    from nst.io.assets import atomic_path
    fmt = VIDEO_FORMATS[Path(out).suffix.lower()]
    h, w = (frames[0].shape[0] // 2) * 2, (frames[0].shape[1] // 2) * 2
    rate = fractions.Fraction(fps).limit_denominator(1001)
    with atomic_path(out) as tmp, av.open(str(tmp), "w", format=fmt) as container:
        stream = container.add_stream(codec_for(fmt), rate=rate)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        audio = copy_audio_setup(container, source, log) if source else None
        for image in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image[:h, :w]), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        if audio:
            copy_audio(container, audio, source, span, log)
    return Path(out)


def codec_for(fmt):
    import av
    wanted = {"webm": ["libvpx-vp9", "libvpx"], "avi": ["mpeg4"]}.get(fmt, ["libx264", "h264", "mpeg4"])
    for name in wanted:
        try:
            av.codec.Codec(name, "w")
            return name
        except Exception:                # noqa: BLE001 - not in this FFmpeg build
            continue
    return "mpeg4"


def copy_audio_setup(container, source, log):
    # -> the output audio stream (a copy of the source's), or None
    import av
    try:
        with av.open(source) as src:
            if not src.streams.audio:
                return None
            return container.add_stream_from_template(src.streams.audio[0])
    except (av.error.FFmpegError, ValueError) as e:
        log(f"nst video: the audio is not copied ({e})")
        return None


def copy_audio(container, out_stream, source, span, log):
    # the source's audio packets within span (seconds), shifted to start at 0
    import av
    start, end = span
    try:
        with av.open(source) as src:
            a = src.streams.audio[0]
            tb = float(a.time_base)
            offset = None
            for packet in src.demux(a):
                if packet.pts is None or packet.dts is None:
                    continue
                t = packet.pts * tb
                if t < start or (end is not None and t >= end):
                    continue
                offset = packet.pts if offset is None else offset
                packet.pts, packet.dts = packet.pts - offset, packet.dts - offset
                packet.stream = out_stream
                container.mux(packet)
    except (av.error.FFmpegError, ValueError) as e:
        log(f"nst video: the audio is not copied ({str(e).splitlines()[0]})")


def frame_name(number):
    return f"frame_{number:06d}.png"


def same_place(a, b):
    return os.path.realpath(a) == os.path.realpath(b)
