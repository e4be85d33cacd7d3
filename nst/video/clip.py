"""Reading clips: a video file (PyAV, which ships FFmpeg in its wheel) or a folder of frames
(nst.video.writing writes the video file).

Legend: a frame is H×W×3 uint8 RGB; frames are numbered from 0 in the source. A clip is read
whole before anything runs (selected frames only, upright, resized to --size, into a temporary
file on disk, nst.video.store; refused before they are decoded where that disk has too little free
space), so a bad input is refused before any output exists. --fps F samples a video file in its
own time: at each 1/F s, the frame on screen then (by its timestamp, so a variable-rate file keeps
pace with its audio), a frame on screen over several ticks written that many times. Without
--fps, a file whose frames are off its header's rate (pauses, bursts: a phone's variable rate)
keeps each frame's own time (Clip.times).
"""
import dataclasses
import fractions
import math
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nst.io.destinations import RunRefused
from nst.io.image import ImageError, load_image, resize_longest, to_uint8
from nst.library import fps_text
from nst.video.clip_checks import (check_complete, check_count, check_disk, check_fps, check_not_cut,
                                   unreadable)
from nst.video.header import avi_indexed
from nst.video.matroska import tag_seconds
from nst.video.store import FrameFile, Pictures

VIDEO_FORMATS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm", ".avi": "avi"}
FRAME_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
FOLDER_FPS = 25.0             # a folder of frames has no rate: this one, unless --fps says
ATTACHED_PIC = 0x0400         # FFmpeg's AV_DISPOSITION_ATTACHED_PIC: a "video" stream that is a song's cover
NO_TIMESTAMPS = 0x0080        # FFmpeg's AVFMT_NOTIMESTAMPS: a format whose packets carry no times (a raw stream)
SAME_RATE = 5e-4              # --fps this far below the source's rate, relatively, is that rate (output_rate)


@dataclass
class Clip:
    """The frames nst will stylise, and where they came from."""
    source: str                       # the path given
    frames: list                      # N×H×W×3 uint8 (or a list of H×W×3), the selected frames at the
                                      # working size: read() maps them from a file on disk (nst.video.store)
    numbers: list                     # source frame number of each
    fps: float                        # the output's frame rate
    is_video: bool
    src_frames: int = 0               # frames in the source
    audio: bool = False               # the source has an audio stream
    span: tuple = (0.0, None)         # (start, end) seconds of the selection, for the audio
    repeats: list = None              # how many output frames each fills (--fps on a variable rate); None: one
    times: list = None                # seconds of each from the first, kept in the output (a variable rate
                                      # without --fps; fps is then the header's nominal rate); None: k / fps
    src_shape: tuple = None           # (H, W) of a source frame, upright, before it was resized to --size
    src_estimated: bool = False       # src_frames is the header's length × its rate, not a count (a
                                      # Matroska file, an AVI with no index, read up to B only: a variable
                                      # rate makes it far off)
    rate_note: str = None             # a video with no frame rate of its own (a raw stream): where fps came
                                      # from, said after it (rate_text)
    source_id: tuple = None           # file_id of a video file as its frames were read: its sound is
                                      # copied at the end from that file only (nst.video.output)


def ffmpeg_name(path):
    # a file's name as FFmpeg is to open it: absolute, so a relative name with a colon ("a:b.mp4") is
    # not taken for a protocol's URL (FFmpeg's "a:"; it said "Protocol not found")
    return os.path.abspath(path)


def is_video_path(path):
    # -o a video file nst writes: a video suffix, and not a name ending in / (a folder, as -o's help says)
    return Path(path).suffix.lower() in VIDEO_FORMATS and not str(path).endswith(("/", os.sep))


def select(n, src_fps, frames=None, fps=None):
    # -> the source frame numbers kept: the slice A:B of range(n), then every frame that starts a
    # new 1/fps interval counted from A (fps below the source's), and the output rate
    a, b = frames or (None, None)
    numbers = list(range(n))[slice(a, b)]
    return [i for i in numbers if starts_interval(i - numbers[0], src_fps, fps)], output_rate(src_fps, fps)


def output_rate(src_fps, fps):
    # the video's frame rate: --fps when it is below the source's, else the source's; --fps the
    # source's rate as written, rounded (29.97 for 30000/1001, as the summary line says it), is that
    # rate: kept below it, it dropped frame 1 and wrote every other at a rate off the sound's
    return src_fps if fps is None or fps >= src_fps * (1 - SAME_RATE) else fps


def starts_interval(k, src_fps, fps):
    # frame slot k (counted from the selection's first) starts a new 1/fps interval: a tick of the output
    return output_rate(src_fps, fps) == src_fps or k == 0 or int(k * fps / src_fps) != int((k - 1) * fps / src_fps)


def on_screen(images, repeats):
    # each frame as many times as the output frames it fills (Clip.repeats; once each where None);
    # Pictures (files read when indexed) stay so
    if repeats is None:
        return images
    if isinstance(images, Pictures):
        return Pictures(on_screen(images.paths, repeats))
    return [image for image, k in zip(images, repeats) for _ in range(k)]


def natural_key(name):
    # "frame10.png" -> ("frame", 10, ".png"): numbers by value (frame2 before frame10), as %d names need
    return [int(part) if i % 2 else part for i, part in enumerate(re.split(r"(\d+)", name))]


def read(path, size, frames=None, fps=None, keep_in=None):
    # a video file or a folder of frames -> Clip, its frames kept in a temporary file in the folder
    # keep_in (None: the temporary folder); RunRefused (one line) for anything unreadable
    p, keep_in = Path(path), keep_in or tempfile.gettempdir()
    check_exists(p)
    if p.is_dir():
        return read_folder(p, size, frames, fps, keep_in)
    return read_video(p, size, frames, fps, keep_in)


def check_exists(path):
    # IN names something (nst.video.cli asks before the weights are read, and fetched if missing),
    # said as its link, pipe and device cases are ("IN PATH: …")
    if not Path(path).exists():
        raise RunRefused(f"IN {path}: no such file or folder")


def read_folder(folder, size, frames, fps, keep_in):
    # the frames in name order (numbers by value), every selected one the same size as the first
    files = sorted((f for f in folder.iterdir() if f.suffix.lower() in FRAME_SUFFIXES and not f.name.startswith(".")),
                   key=lambda f: natural_key(f.name))
    check_not_a_video_folder(folder, files)
    check_one_sequence(folder, files)
    numbers, out_fps = select(len(files), fps or FOLDER_FPS, frames, None)
    images, first = FrameFile(keep_in), None
    for i in numbers:
        try:
            image = load_image(files[i])
        except (ImageError, OSError) as e:
            raise RunRefused(f"{folder}: frame {files[i].name} cannot be read ({str(e).splitlines()[0]})") from None
        if first is None:
            check_disk(folder, len(numbers), image.shape, size, keep_in)
        first = first or (files[i].name, image.shape[:2])
        if image.shape[:2] != first[1]:
            raise RunRefused(f"{folder}: frame {files[i].name} is {image.shape[1]}×{image.shape[0]} but "
                             f"{first[0]} is {first[1][1]}×{first[1][0]}; every frame of a video has one size")
        images.append(to_uint8(resize_longest(image, size)))
    check_count(folder, images, len(files))
    return Clip(str(folder), images.array(), numbers, out_fps, False, len(files), src_shape=first[1])


def check_one_sequence(folder, files):
    # where most names are one numbered pattern (frame_0001.png: "frame_#.png"), a file outside it
    # (a cover.jpg, a thumbnail of the same size) would silently become a frame: refused, named
    patterns = [re.sub(r"\d+", "#", f.name.lower()) for f in files]
    main = max(set(patterns), key=patterns.count, default="")
    odd = [f.name for f, p in zip(files, patterns) if p != main]
    if "#" in main and odd and patterns.count(main) > len(files) / 2:
        them = "it" if len(odd) == 1 else "them"
        raise RunRefused(f"{folder}: {', '.join(odd[:3])}{' …' if len(odd) > 3 else ''} not named like the "
                         f"other {patterns.count(main)} frames ({main.replace('#', 'N')}): move {them} out of "
                         f"the folder, or name {them} as a frame")


def check_not_a_video_folder(folder, files):
    # a folder with no frames but a video file in it: the user meant the file
    videos = sorted(f.name for f in folder.iterdir() if is_video_path(f) and f.is_file()) if not files else []
    if videos:
        raise RunRefused(f"{folder}: no frames in it ({' '.join(FRAME_SUFFIXES)}) but a video, {videos[0]}: "
                         f"give the video file as IN ({folder / videos[0]})")


def read_video(path, size, frames, fps, keep_in):
    # decodes up to frame B−1 only, keeping (resized) just the selected frames; a file read to its
    # end (or not at all) that is shorter than its container declares, or decodes clearly fewer
    # frames than its header declares, is cut short: refused
    import av
    source_id = file_id(path)
    try:
        with av.open(ffmpeg_name(path)) as container:
            videos = [v for v in container.streams.video if not int(getattr(v, "disposition", 0)) & ATTACHED_PIC]
            if not videos:
                check_not_cut(path)
                cover = " (only a cover picture for its sound)" if container.streams.video else ""
                raise RunRefused(f"{path}: has no video stream{cover}")
            stream = videos[0]
            src_fps, note = frame_rate(container, stream), None
            if src_fps is None:                           # no rate of its own: --fps is its rate, as a folder's
                src_fps, fps, note = fps or FOLDER_FPS, None, unknown_rate_note(path, fps)
            nominal = nominal_rate(container, stream, src_fps)    # a variable rate's base rate
            check_fps(path, fps, src_fps)
            audio, (declared, exact) = bool(container.streams.audio), declared_frames(container, stream, src_fps)
            ctx = stream.codec_context                         # None in some files cut short
            if ctx and ctx.width and ctx.height:
                check_disk(path, selected(declared, frames, src_fps, fps), (ctx.height, ctx.width), size, keep_in)
            d = decode(container, stream, frames, src_fps, fps, size, FrameFile(keep_in))
            if note:                                      # its frames' times: FFmpeg's, from a guessed rate
                d = dataclasses.replace(d, times=[None] * len(d.times), end=None)
            estimated = not exact and not d.whole
            if d.whole:
                check_not_cut(path)
                check_complete(path, d, declared, src_fps)
                declared = d.count
    except RunRefused:
        raise
    except (av.error.FFmpegError, ValueError, OSError) as e:
        check_not_cut(path)
        raise RunRefused(unreadable(path, e)) from None
    check_count(path, d.images, d.count)
    # --fps below the header's rate: its ticks; else every frame, at the header's rate or, where the
    # frames are off it, at their own times (the header's guessed rate their nominal one); not at the
    # mean rate of frames 0..B−1: frames at an even rate after a pause before A were slowed by it,
    # their sound run on past B−1
    thinned = output_rate(src_fps, fps) != src_fps
    rate = fps if thinned else src_fps
    start = d.times[0] if None not in d.times else d.numbers[0] / src_fps
    span = (start, start + sum(d.repeats) / rate)                      # the audio of what the output shows
    repeats = d.repeats if max(d.repeats) > 1 else None
    times = None if thinned else own_times(d, src_fps)
    if times:
        rate, span = nominal, (start, d.end)
    return Clip(str(path), d.images.array(), d.numbers, rate, True, declared, audio, span, repeats, times,
                d.shape, estimated, note, source_id)


def file_id(path):
    # -> (inode, bytes, modification time in ns) of a file, None where there is none: the same file,
    # unchanged, while it stays the same
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def own_times(d, src_fps):
    # -> each kept frame's time from the first (seconds) where one is over half a frame off k / the
    # header's rate (a pause, a burst): written at one rate they would drift from the sound; else None
    if None in d.times or d.end is None:
        return None
    times = [t - d.times[0] for t in d.times]
    return None if all(nearest_slot(t, src_fps) == k for k, t in enumerate(times)) else times


def nearest_slot(seconds, rate):
    # a time as a frame number of `rate`, to the nearest (a container's clock rounds timestamps,
    # Matroska's to the millisecond)
    return math.floor(seconds * rate + 0.5)


def at_one_rate(clip):
    # a clip with its own times (Clip.times) -> the same shown at one rate, clip.fps (the --fps rule):
    # at each 1/fps s the frame on screen (its time to the nearest tick), held frames repeated, frames
    # no tick shows dropped
    seconds = clip.span[1] - clip.span[0]
    slots = [nearest_slot(t, clip.fps) for t in clip.times] + [nearest_slot(seconds, clip.fps)]
    shown = [max(b - a, 0) for a, b in zip(slots, slots[1:])]
    kept = [k for k, n in enumerate(shown) if n]
    repeats = [shown[k] for k in kept]
    return dataclasses.replace(clip, frames=[clip.frames[k] for k in kept], numbers=[clip.numbers[k] for k in kept],
                               repeats=repeats if max(repeats) > 1 else None, times=None,
                               span=(clip.span[0], clip.span[0] + sum(repeats) / clip.fps))


def rate_text(clip):
    # "25 fps", or "the source's variable rate" (each frame at its own time, Clip.times), or for a
    # video with no rate of its own "25 fps, assumed: clip.mjpeg has no frame rate of its own (…)"
    return "the source's variable rate" if clip.times else fps_text(clip.fps) + (clip.rate_note or "")


def unknown_rate_note(path, fps):
    # what rate_text says after the rate of a video with no rate of its own: --fps's, or assumed
    why = f"{Path(path).name} has no frame rate of its own"
    return f", --fps's: {why}" if fps else f", assumed: {why} (--fps sets it)"


@dataclass
class Decoded:
    """What decode() kept of a video stream, and the timing it saw."""
    numbers: list                     # source frame numbers kept
    images: FrameFile                 # their frames at the working size
    times: list                       # their times (seconds), None where a frame has none
    repeats: list                     # the output frames each fills (ticks())
    count: int = 0                    # frames decoded
    whole: bool = False               # decoded to the end of the file
    end: float = None                 # when the selection's last frame leaves the screen (seconds), if known
    shape: tuple = None               # (H, W) of the first frame kept, upright, before it was resized


def decode(container, stream, frames, src_fps, fps, size, images):
    # the frames A..B−1 of `stream` (nothing past B decoded), the selected ones upright and resized
    # into `images` (a FrameFile) -> Decoded. Each frame is placed once the next one's time says
    # until when it is on screen
    a, b = frames or (0, None)
    a = a or 0
    d, start, held = Decoded([], images, [], []), None, None
    for d.count, frame in enumerate(container.decode(stream), 1):
        i = d.count - 1
        if b is not None and i >= b:
            d.end = frame.time
            break
        if i >= a:
            start = start if held else frame.time                  # frame A's time
            at = slot(frame.time, start, held, src_fps)
            if held:
                place(d, held, at, src_fps, fps, size)
            held = (i, frame, at)
    else:
        d.whole = True
    if held:
        d.end = d.end if d.end is not None else leaves_screen(held[1], src_fps)
        place(d, held, held[2] + 1, src_fps, fps, size)
    return d


def leaves_screen(frame, src_fps):
    # a file's last frame -> its time plus its duration (the container's, else one frame of the
    # header's rate); None without a time
    if frame.time is None:
        return None
    return frame.time + (float(frame.duration * frame.time_base) if frame.duration and frame.time_base else 1 / src_fps)


def slot(time, start, held, src_fps):
    # a frame's time as a frame number of the header's rate, counted from the selection's first frame
    # (nearest_slot), so a constant-rate file's frame k is in slot k; a frame without a time: the slot
    # after the last
    if held is None:
        return 0
    if time is None or start is None:
        return held[2] + 1
    return nearest_slot(time - start, src_fps)


def place(d, held, until, src_fps, fps, size):
    # the held frame (number, av.VideoFrame, slot), on screen up to slot `until`: kept, upright and
    # resized, when it fills an output frame
    number, frame, at = held
    shown = ticks(at, until, src_fps, fps)
    if shown:
        d.numbers.append(number)
        d.times.append(frame.time)
        d.repeats.append(shown)
        image = upright(frame)
        d.shape = d.shape or image.shape[:2]
        d.images.append(to_uint8(resize_longest(image.astype(np.float32), size)))


def ticks(at, until, src_fps, fps):
    # -> the output frames a source frame on screen from slot `at` up to `until` fills: one each without
    # --fps; with it, its slots that start a 1/fps interval (starts_interval, the rule frame numbers
    # always had: a constant-rate file keeps the frames it kept), so a frame held over a variable
    # rate's pause fills each tick of the pause
    if output_rate(src_fps, fps) == src_fps:
        return 1
    return sum(starts_interval(k, src_fps, fps) for k in range(at, until))


def upright(frame):
    # a decoded av.VideoFrame -> H×W×3 uint8 as a player shows it: turned and mirrored by the stream's
    # display matrix (a phone's portrait video is stored landscape with "rotate 90"; a selfie camera's
    # may be mirrored)
    image = frame.to_ndarray(format="rgb24")
    turns, mirrored = display_transform(display_matrix(frame))
    image = np.rot90(image, turns) if turns else image
    return np.ascontiguousarray(image[:, ::-1] if mirrored else image)


def display_matrix(frame):
    # -> the frame's display matrix (9 int32, FFmpeg's AV_FRAME_DATA_DISPLAYMATRIX), None without one
    for data in frame.side_data:
        if data.type.name == "DISPLAYMATRIX":
            return np.frombuffer(bytes(data), np.int32)
    return None


def display_transform(matrix):
    # FFmpeg's 3×3 display matrix ([x' y' 1] = [x y 1]·M, 16.16 fixed point) -> (quarter turns
    # counterclockwise, mirrored left-right after turning): a mirror makes the determinant negative and
    # negates column 0 (av_display_matrix_flip; a vertical flip is a mirror and half a turn); the turn
    # is av_display_rotation_get's, to the nearest quarter
    if matrix is None:
        return 0, False
    a, b, c, d = (float(matrix[k]) for k in (0, 1, 3, 4))
    mirrored = a * d - b * c < 0
    a = -a if mirrored else a
    return round(-math.degrees(math.atan2(b, a)) / 90) % 4, mirrored


def frame_rate(container, stream):
    # -> the source's frames a second: its header's (FFmpeg's average_rate), else FFmpeg's guess from
    # the frames' times (guessed_rate), or the rate the average is but for the clock's rounding
    # (exact_rate); an AVI's header rate is of ticks, a frame or an empty chunk
    # each: where its index holds fewer frames than its ticks (dropped frames, a 1/1000 time base), or
    # it has no index to say, the frames' own rate is the guess. A raw stream (.m4v, .h264, .mjpeg: a
    # format with no timestamps) has no header rate, only FFmpeg's default 25: its rate is its codec's
    # headers' (an MPEG-4 VOL's, an H.264 VUI's), None where they declare none
    if container.format.flags & NO_TIMESTAMPS:
        rate = getattr(stream.codec_context, "framerate", None)
        return float(rate) if rate else None
    if 0 < indexed_frames(container, stream) < stream.frames or unindexed_avi(container):
        return float(stream.guessed_rate or FOLDER_FPS)
    return float(exact_rate(container, stream) or stream.average_rate or stream.guessed_rate or FOLDER_FPS)


def nominal_rate(container, stream, src_fps):
    # -> the base rate of a clip whose frames keep their own times (a variable rate): FFmpeg's guess
    # from those times (guessed_rate), but for the clock's rounding as the header's rate (exact_rate)
    guess = stream.guessed_rate
    return float(exact_rate(container, stream, guess) or guess) if guess else src_fps


def exact_rate(container, stream, rounded=None):
    # -> the rate a clip's average_rate (its frames over its length, on the stream's clock), or the
    # rate `rounded` given, is but for the clock's rounding, None where it is none: a better-stated
    # rate at which its N frames last within one tick of the time base as long. Stated by FFmpeg's
    # guess or the codec's headers (an H.264 VUI's), else, where the rate is no standard one, the NTSC
    # rate k·1000/1001 nearest it. At Apple's 1/600 s a 30000/1001 MP4 of 48 frames lasts 961 ticks, not
    # 960.96: an average of 28800/961, 29.9688 fps; at Matroska's 1 ms FFmpeg keeps a 60000/1001
    # clip's frame length (16683333 ns) as 19001/317 fps, a fraction of terms under 30000
    rounded, tick = rounded or stream.average_rate, stream.time_base
    n = stream.frames or declared_frames(container, stream, float(rounded or 0))[0]
    if not (rounded and n and tick):
        return None
    stated = [stream.guessed_rate, getattr(stream.codec_context, "framerate", None)]
    if not standard_rate(rounded):
        stated.append(fractions.Fraction(round(rounded * 1001 / 1000) * 1000, 1001))
    return next((rate for rate in stated if rate and rate != rounded and abs(n / rounded - n / rate) <= tick), None)


def standard_rate(rate):
    # FFmpeg's standard rates (its guess from frames' times picks among them): twelfths of a frame a
    # second and the NTSC rates k·1000/1001
    return (rate * 12).denominator == 1 or (rate * 1001 / 1000).denominator == 1


def indexed_frames(container, stream):
    # -> the frames an AVI's index lists (its chunks that hold one: FFmpeg leaves the empty ones out),
    # 0 for another container or an AVI without an index
    entries = getattr(stream, "index_entries", None) if container.format.name == "avi" else None
    return len(entries) if entries is not None and not unindexed_avi(container) else 0


def unindexed_avi(container):
    # an AVI with no index (a capture stopped before writing it): FFmpeg's index entries are then the
    # key frames it has read so far (one, a few), its header's length a count of ticks
    return container.format.name == "avi" and not avi_indexed(container.name)


def declared_frames(container, stream, src_fps):
    # -> (the frame count the header declares, whether it is a count: else the header's length × the
    # rate, an estimate); 0 when it declares none. The stream's count, but an AVI's counts ticks, empty
    # ones included: its index's; an MP4's or MOV's counts the frames its edit list leaves out too (a
    # clip trimmed without encoding keeps those before its start, to decode from): its duration's, at
    # most; else its duration × the rate, else the container's duration when the video is its only stream
    indexed = indexed_frames(container, stream)         # an AVI's header walked once (avi_indexed)
    if indexed:
        return indexed, True
    seconds = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else None
    if stream.frames and container.format.name != "avi":
        return min(stream.frames, round(seconds * src_fps) if seconds else stream.frames), True
    tag = stream.metadata.get("DURATION")                 # Matroska keeps a stream's duration as a tag
    if seconds is None and tag:
        seconds = tag_seconds(tag)
    if seconds is None and container.duration and len(container.streams) == 1:
        seconds = container.duration / 1e6
    return (round(seconds * src_fps) if seconds else 0), False


def selected(declared, frames, src_fps, fps):
    # -> about how many of `declared` frames --frames and --fps keep (0 where none are declared)
    kept = len(range(declared)[slice(*(frames or (None, None)))])
    return math.ceil(kept * output_rate(src_fps, fps) / src_fps)


def frame_name(number):
    return f"frame_{number:06d}.png"


def same_place(a, b):
    return os.path.realpath(a) == os.path.realpath(b)
