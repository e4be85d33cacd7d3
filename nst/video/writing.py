"""Writing a clip's video file: the frames encoded (H.264 where FFmpeg has it, VP9 in WebM, MPEG-4 in
AVI) at the clip's frame rate or, given their times (a variable rate), each at its own time, and the
source's audio within the clip's span, its packets copied through where the container takes that
codec and can start it at the first frame (MP4 and MOV: an edit list trims the packet on air then,
copied with the one before it that its decoder overlaps it with; Matroska: only where a packet
starts with it) and end it with the last (the packet on air then trimmed: the edit list's end,
Matroska's DiscardPadding), else decoded, cut at the span's edges to the sample and encoded again
(Opus in WebM, PCM in AVI, FLAC in Matroska, AAC elsewhere; in AVI after silence from the first
frame to the sound's start, SAMPLE_TIMED): always, given copy_sound=False (nst.video.output's second
try, where the muxer refused the copy as the file started). The sound is read from a seek near the
span's start; a span without sound gets no audio track (an empty one, before). A Matroska file's
length is set to its last frame's end once written (nst.video.matroska); every file carries nst's
mark (its comment).
"""
import contextlib
import fractions
import itertools
import math
import re
from pathlib import Path

import numpy as np

from nst.io.image import MARK
from nst.library import log_to_logger
from nst.video import matroska
from nst.video.clip import VIDEO_FORMATS, ffmpeg_name

VARIABLE_FPS = 0x0400         # FFmpeg's AVFMT_VARIABLE_FPS: a container keeping each frame's time (not AVI)
# a clause of FFmpeg's advice to users of its own tools, naming its "strict" option, which nst has
# not: "…, to mux anyway set strict to -1", "…, add '-strict -2' if you want to use it."
STRICT_ADVICE = re.compile(r"[,;]?[^,;]*\bstrict\b[^,;]*", re.IGNORECASE)
# the clock of frames written at their own times: milliseconds and 29.97 fps's 1/30000 s steps
# exactly, within MPEG-4 Part 2's 65535 ticks a second
TIME_BASE = fractions.Fraction(1, 60000)


@contextlib.contextmanager
def ffmpeg_reasons():
    # FFmpeg's error lines kept within the block, so that an FFmpegError raised there carries its own
    # (e.log; reason()). PyAV's logging off (its default, level None): turned on at ERROR for the
    # block, every thread's lines kept from Python's logging and the terminal (av.logging.Capture of
    # all threads: off, none reached them), and off again after, even on error; on (a level the
    # caller set): left as the caller set it, FFmpeg's lines going where they went
    import av.logging
    if av.logging.get_level() is not None:
        yield
        return
    av.logging.set_level(av.logging.ERROR)
    try:
        with av.logging.Capture(local=False):
            yield
    finally:
        av.logging.set_level(None)


def reason(e):
    # an av.error.FFmpegError -> its cause in one line, without a file's name (a temporary one while
    # writing): FFmpeg's logged line where it was caught (ffmpeg_reasons), less its advice to set its
    # "strict" option (STRICT_ADVICE), else its message
    logged = (e.log[2] if getattr(e, "log", None) else "").strip()
    line = STRICT_ADVICE.sub("", logged.splitlines()[0]).strip(" .") if logged else ""
    return line or e.strerror or str(e).splitlines()[0]


def write_video(frames, out, fps, source=None, span=(0.0, None), log=log_to_logger, times=None, copy_sound=True):
    # [H×W×3 uint8] -> the video file `out` (through a temporary name, renamed when complete);
    # H and W cropped to even sizes (yuv420p); frame k at k / fps or, given times (seconds from the
    # first; a container that keeps_times), at times[k], lasting to the next or to the span's end;
    # the source's audio within span copied when it can be (and copy_sound), else encoded again
    import av

    from nst.io.assets import atomic_path
    fmt = VIDEO_FORMATS[Path(out).suffix.lower()]
    h, w = (frames[0].shape[0] // 2) * 2, (frames[0].shape[1] // 2) * 2
    rate = fractions.Fraction(fps).limit_denominator(1001)
    with atomic_path(out) as tmp:
        with av.open(ffmpeg_name(tmp), "w", format=fmt) as container:
            container.metadata["comment"] = MARK             # nst's, as its pictures carry it (carries_mark)
            # own times: no B-frames, so each packet's dts is its pts and MP4's length (its dts +
            # durations) reaches the last frame's end (with B-frames it stopped short by the
            # reordering, over a pause)
            stream = container.add_stream(codec_for(fmt), rate=rate, options={"bf": "0"} if times else None)
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            pts, durations = own_clock(stream, times, span[1] - span[0]) if times else (None, {})
            audio = copy_audio_setup(container, source, span, log, copy_sound) if source else None
            for k, image in enumerate(frames):
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image[:h, :w]), format="rgb24")
                if pts:
                    frame.pts, frame.time_base = pts[k], TIME_BASE
                mux_video(container, stream.encode(frame), durations)
            mux_video(container, stream.encode(), durations)
            if audio:
                copy_audio(container, audio, source, span, log)
        if audio and fmt in MATROSKA and span[1] is not None:       # the sound was cut at the last frame's end
            matroska.end_at(tmp, float(span[1] - span[0] if times else len(frames) / rate))
    return Path(out)


def carries_mark(path):
    # True for a regular file that is a video nst wrote (its comment is nst's MARK): known as nst's
    # with its manifest row gone (OUT.frames/ removed)
    import av
    if not Path(path).is_file():
        return False
    try:
        with av.open(ffmpeg_name(path)) as container:
            return any(key.lower() == "comment" and value == MARK for key, value in container.metadata.items())
    except (av.error.FFmpegError, OSError, ValueError):
        return False


def keeps_times(out):
    # the container of `out` keeps each frame's own time (MP4, MOV, Matroska, WebM); AVI has one rate
    import av
    return bool(av.format.ContainerFormat(VIDEO_FORMATS[Path(out).suffix.lower()], "w").flags & VARIABLE_FPS)


def own_clock(stream, times, seconds):
    # frames at their own times (seconds from the first; `seconds` the whole length) -> each frame's
    # pts in TIME_BASE (rising), {pts: its duration, to the next frame or the end}; the encoder's clock set
    stream.codec_context.time_base = TIME_BASE
    pts = []
    for t in times:
        pts.append(max(round(t / TIME_BASE), pts[-1] + 1) if pts else round(t / TIME_BASE))
    ends = pts[1:] + [max(round(seconds / TIME_BASE), pts[-1] + 1)]
    return pts, {p: end - p for p, end in zip(pts, ends)}


def mux_video(container, packets, durations):
    # the encoder's packets into the file, each given its frame's duration where known (own_clock):
    # a muxer takes the last frame's length from it
    for packet in packets:
        packet.duration = durations.get(packet.pts, packet.duration)
        container.mux(packet)


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


# what an audio stream the container will not take as it is (plays_as_is, packets_to_copy) is encoded
# to; AVI's PCM and Matroska's FLAC have no encoder delay (AAC's 1024 samples would play late in AVI,
# which has no edit list to skip them) and lose nothing more of the source's sound
AUDIO_CODECS = {"webm": "libopus", "avi": "pcm_s16le", "matroska": "flac"}
AUDIO_DEFAULT = "aac"                       # ... in every other container
# containers whose edit list starts a track inside its first packet: FFmpeg writes one for a first
# packet timed before 0, as for AAC's encoder delay, and players skip that packet's earlier samples;
# it ends where the last packet's duration does (end_at)
EDIT_LISTS = {"mp4", "mov"}
# containers whose length FFmpeg counts to the last audio packet's untrimmed end, and from before a
# codec delay (nst.video.matroska): set to the last frame's end once written
MATROSKA = {"matroska", "webm"}
PACKET_CLOCK = fractions.Fraction(1, 1000)   # a packet's time to within Matroska's millisecond clock
# the most a copied packet may run on past the last frame, to be trimmed there (end_at; AAC's packets
# last 21 to 64 ms, MP3's 26, Opus's 20); one running on longer (PCM muxed as one packet, which a
# player decodes whole) is cut, encoded again
RUN_ON = fractions.Fraction(1, 10)
# sound decoded before a clip's start after a seek (packets_from): a decoder's first packets there
# are not yet right (AAC's overlap with the packet before, Opus's 80 ms pre-roll), and are cut off
SEEK_PREROLL = 0.5
# containers that time their sound from its first sample, not by its packets' times (AVI): sound
# that starts after the first frame is encoded after that much silence, to start in step
SAMPLE_TIMED = {"avi"}
TIMELESS = "its packets carry no times"     # why sound whose packets (and so frames) have no pts is not copied


def copy_audio_setup(container, source, span, log, copy=True):
    # -> (output audio stream, the source's packets to copy as they are (packets_to_copy: read once,
    # here), or None: the sound decoded and encoded again in the container's codec, as always where
    # not `copy`), or None, said in one line, where it cannot be copied (TIMELESS: nowhere to put it)
    # or the source has no sound within span (no audio track: an empty one was written)
    import av
    try:
        with av.open(ffmpeg_name(source)) as src:
            if not src.streams.audio:
                return None
            template = src.streams.audio[0]
            fmt = container.format.name
            copies = copy and plays_as_is(fmt, template.codec_context.name)
            packets = packets_to_copy(src, fmt, span) if copies else None
            # packets_to_copy's None: a packet within span it cannot copy (sound there)
            if packets == [] or (not copies and next(sound_within(src, template, *span), None) is None):
                log(f"nst video: the audio is not copied (the source has no sound from {float(span[0]):.2f} s to "
                    f"{'its end' if span[1] is None else f'{float(span[1]):.2f} s'}, the frames' span); "
                    "the video is written without it")
                return None
            if packets is None:
                return encoded_stream(container, template), None
            try:
                return container.add_stream_from_template(template), packets
            except ValueError:               # the container does not take this codec (aac in webm)
                return encoded_stream(container, template), None
    except (av.error.FFmpegError, ValueError) as e:
        log(f"nst video: the audio is not copied ({str(e).splitlines()[0]})")
        return None


def plays_as_is(fmt, codec):
    # audio of `codec` copied into a `fmt` file plays where such files play, in step: not PCM in MP4,
    # which FFmpeg writes but browsers and most players do not take; not Opus or FLAC in MOV, which
    # FFmpeg's muxer refuses as the file starts (MP4 only: the video was written without sound);
    # nothing in AVI, which times its sound from its first sample, not by the packets' times: copied
    # packets start at a packet's edge (up to one packet early), and an AVI source's AAC brings a
    # sample size that makes it 0.5 s early
    return not ((fmt == "mp4" and codec.startswith("pcm_")) or (fmt == "mov" and codec in ("opus", "flac"))
                or fmt == "avi")


def copied_from(fmt, stream, start):
    # -> the time (seconds) in the source whose packet on air is the first copied into `fmt` for a
    # clip from `start`: in MP4 and MOV `start` (the edit list trims that packet to it); elsewhere the
    # codec delay before it (Matroska's CodecDelay, copied with the codec: a player skips that many
    # samples of the first packet: an encoder's priming, so the source's first packet is kept at 0)
    delay = fractions.Fraction(stream.codec_context.delay or 0, stream.rate) if stream.rate else 0
    return fractions.Fraction(start) - (0 if fmt in EDIT_LISTS else delay)


def packets_to_copy(src, fmt, span):
    # -> the packets of src's first audio stream that play span (seconds: the first frame's time, the
    # last's end) copied into `fmt`: from the one on air at copied_from(start) (with the one before it
    # in MP4 and MOV: primed, read from SEEK_PREROLL before) to the last begun before the end, read
    # once (the source is not read again to copy them; it was, to the file's end), []
    # where none plays within it (the sound ended before the start or begins after the end), or
    # None where they would play sound from before the start (no edit list to trim the first packet:
    # it must begin at copied_from(start), within PACKET_CLOCK; Matroska's muxer cannot trim a
    # packet's start: known at the next packet, read no further) or one runs on more than RUN_ON past
    # the end (a player decodes it whole). A packet without times is skipped (nowhere to put it);
    # ValueError (TIMELESS) where sound came and none of it had times
    a = src.streams.audio[0]
    end, at, kept, timeless = span[1], copied_from(fmt, a, span[0]), [], False

    def cut_inside(packet):                      # the copy would start inside this packet, untrimmed
        return fmt not in EDIT_LISTS and packet.pts * a.time_base < at - PACKET_CLOCK
    before, lead = None, SEEK_PREROLL if fmt in EDIT_LISTS else 0
    for packet in packets_from(src, a, at - lead):
        if packet.pts is None or packet.dts is None:
            timeless = timeless or packet.size > 0       # sound, not the demuxer's last, empty packet
            continue
        t = packet.pts * a.time_base
        if end is not None and t >= end:
            break
        if end is not None and t + packet.duration * a.time_base > end + RUN_ON:
            return None
        if t <= at + PACKET_CLOCK:                # on air at `at`: those before it are not copied
            kept = [packet] if on_air_at(packet, at) else []
            kept, before = primed(kept, before, fmt), packet
            continue
        if len(kept) == 1 and cut_inside(kept[0]):
            return None
        kept.append(packet)
    if timeless and not kept:
        raise ValueError(TIMELESS)
    return None if kept and cut_inside(kept[0]) else kept


def primed(kept, before, fmt):
    # [the packet on air at a clip's start] -> with the packet before it where the container's edit
    # list trims what it plays before the start (MP4, MOV) and it runs on into that one (or its
    # duration is unknown: a Matroska source's first packet): the decoder's overlap (AAC's first packet
    # decoded alone is half silent: a tone starting with frame A began 47 ms late), else as it is
    if not kept or before is None or fmt not in EDIT_LISTS:
        return kept
    ends = (before.pts + before.duration) * before.time_base
    joined = not before.duration or abs(ends - kept[0].pts * kept[0].time_base) <= PACKET_CLOCK
    return [before, *kept] if joined else kept


def on_air_at(packet, at):
    # a packet begun at or before `at` (seconds) still plays then (within PACKET_CLOCK; a packet of
    # unknown duration counts as playing): one that ended before it carries none of the span's sound
    ends = (packet.pts + packet.duration) * packet.time_base
    return not packet.duration or ends > at - PACKET_CLOCK


def packets_from(src, stream, seconds):
    # -> `stream`'s packets from the last that starts at or before `seconds` (the source's clock),
    # sought there: a clip's late --frames A:B does not read the sound before A; from the sound's
    # start where the seek lands after `seconds` (an index too coarse), from where it was where the
    # file cannot seek. At or before the sound's start (or 0): from the file's start, its encoder's
    # priming packet included (timed before the start: a seek to the start skips it)
    import av
    if not stream.time_base or seconds <= max(0, (stream.start_time or 0) * stream.time_base):
        return src.demux(stream)
    try:
        src.seek(math.floor(seconds / stream.time_base), stream=stream, backward=True)
    except av.error.FFmpegError:
        return src.demux(stream)
    packets, ahead = src.demux(stream), []
    for packet in packets:
        ahead.append(packet)
        if packet.pts is not None:
            break
    if ahead and ahead[-1].pts is not None and ahead[-1].pts * stream.time_base > seconds:
        src.seek(stream.start_time or 0, stream=stream, backward=True)
        return src.demux(stream)
    return itertools.chain(ahead, packets)


def sound_within(src, stream, start, end):
    # -> `stream`'s decoded frames (times known) on air between start and end (seconds; end None: to
    # the file's end), decoded from SEEK_PREROLL before start (packets_from) and no further than end;
    # none: the source has no sound within them. ValueError (TIMELESS) where the first frame decoded
    # has no time (its packet had none: nowhere to put the sound); a later one without is skipped
    timed = False
    for packet in packets_from(src, stream, start - SEEK_PREROLL):
        for frame in stream.decode(packet):
            if frame.time is None and not timed:
                raise ValueError(TIMELESS)
            timed = True
            if frame.time is not None and end is not None and frame.time >= end:
                return
            if frame.time is not None and frame.time + frame.samples / frame.sample_rate > start:
                yield frame


def encoded_stream(container, template):
    # an output audio stream in the container's codec (AUDIO_CODECS, else AAC) for `template`'s audio
    stream = container.add_stream(AUDIO_CODECS.get(container.format.name, AUDIO_DEFAULT),
                                  rate=48000 if container.format.name == "webm" else template.rate)
    stream.layout = "mono" if template.layout.nb_channels == 1 else "stereo"     # not its name: "2 channels"
    return stream


def copy_audio(container, audio, source, span, log):
    # the source's audio within span (seconds), shifted to start at 0: the packets copy_audio_setup
    # read, as they are, or (audio = (stream, None)) decoded from the source, resampled and encoded again
    import av
    out_stream, packets = audio
    try:
        if packets is not None:
            copy_packets(container, out_stream, packets, span)
            return
        with av.open(ffmpeg_name(source)) as src:
            encode_again(container, out_stream, src, span)
    except (av.error.FFmpegError, ValueError) as e:        # FFmpeg's: without the temporary file's name
        why = reason(e) if isinstance(e, av.error.FFmpegError) else str(e).splitlines()[0]
        log(f"nst video: the audio is not copied ({why})")


def copy_packets(container, out_stream, packets, span):
    # packets_to_copy's packets muxed, their times less `start` (the first frame's) counted in
    # samples: audio that begins after the picture still begins after it, in step (in the source's
    # own clock, one tick a packet in an AVI's AAC, they were rounded to a whole packet, up to half of
    # one off); the first one timed before 0, for the edit list or the codec delay to trim; the one on
    # air at the end trimmed there (end_at): it played whole, up to RUN_ON past the last frame
    if not packets:
        return
    start, end = span
    since = fractions.Fraction(start)
    tick = fractions.Fraction(1, out_stream.rate) if out_stream.rate else packets[0].time_base
    last = None if end is None else round((end - since) / tick)          # the last frame's end
    for packet in packets:
        source_tick = packet.time_base
        packet.pts, packet.dts = (round((ts * source_tick - since) / tick) for ts in (packet.pts, packet.dts))
        packet.duration, packet.time_base = round(packet.duration * source_tick / tick), tick
        if last is not None and packet.pts + packet.duration > last:
            end_at(packet, last - packet.pts, container.format.name)
        packet.stream = out_stream
        container.mux(packet)


def end_at(packet, samples, fmt):
    # a copied packet (timed in samples) made to stop `samples` into it: in MP4 and MOV by its
    # duration (FFmpeg's muxer ends the track's edit list there, as after an AAC encoder's last, short
    # packet); in Matroska and WebM by its DiscardPadding (FFmpeg's skip_samples side data: the
    # samples after are dropped once decoded)
    import struct

    from av.packet import PacketSideData, packet_sidedata_type_from_literal
    if fmt in EDIT_LISTS:
        packet.duration = max(samples, 1)
        return
    head, tail = skip_samples(packet)
    side = PacketSideData(packet_sidedata_type_from_literal("skip_samples"), 10)
    side.update(struct.pack("<IIBB", head, max(tail, packet.duration - samples), 0, 0))
    packet.set_sidedata(side, move=True)


def skip_samples(packet):
    # -> (samples skipped at its start, discarded at its end) of a packet's skip_samples side data
    import struct
    if not packet.has_sidedata("skip_samples"):
        return 0, 0
    return struct.unpack_from("<II", bytes(packet.get_sidedata("skip_samples")))


def encode_again(container, out_stream, src, span):
    # src's first audio stream decoded from `start` (the first frame's) to `end`, the frames on air
    # then cut there to the sample (one long frame, PCM stored as one packet, at both), resampled to
    # what the output's encoder takes and encoded, numbered in samples from `start`: sound that
    # begins after the picture still begins after it (in AVI, SAMPLE_TIMED, after as much silence)
    import av
    start, end = span
    ctx = out_stream.codec_context
    resampler = av.AudioResampler(format=ctx.format.name, layout=ctx.layout.name, rate=ctx.sample_rate)
    samples = None
    for frame in itertools.chain(sound_within(src, src.streams.audio[0], start, end), [None]):
        if frame is not None and samples is None:
            samples = round(max(frame.time - start, 0) * ctx.sample_rate)
            lead_in = silence(ctx, samples) if container.format.name in SAMPLE_TIMED and samples else None
            for packet in out_stream.encode(lead_in) if lead_in else ():
                container.mux(packet)
        if frame is not None:
            frame = cut_to(frame, start, end)
        for out in resampler.resample(frame):
            # in samples: a frame the resampler passes through kept its source's clock (1/1000 s in
            # Matroska: its samples were taken for milliseconds, an Opus .mkv's second of sound 47 s long)
            out.pts, out.time_base = samples, fractions.Fraction(1, ctx.sample_rate)
            samples += out.samples
            for packet in out_stream.encode(out):
                container.mux(packet)
    for packet in out_stream.encode(None):
        container.mux(packet)


def silence(ctx, samples):
    # an av.AudioFrame of `samples` zeros (silence in the signed formats encoders take) in the
    # encoder's format, layout and rate, timed at 0
    import av
    frame = av.AudioFrame(format=ctx.format.name, layout=ctx.layout.name, samples=samples)
    for plane in frame.planes:
        plane.update(bytes(plane.buffer_size))
    frame.sample_rate, frame.pts, frame.time_base = ctx.sample_rate, 0, fractions.Fraction(1, ctx.sample_rate)
    return frame


def cut_to(frame, start, end):
    # an av.AudioFrame -> its samples from `start` to before `end` (seconds; end None: to its end),
    # the same frame where it lies within them (planar: C×N planes; packed: 1×(N·C) interleaved)
    import av
    first = max(round((start - frame.time) * frame.sample_rate), 0)
    last = frame.samples if end is None else min(round((end - frame.time) * frame.sample_rate), frame.samples)
    if first == 0 and last == frame.samples:
        return frame
    samples = frame.to_ndarray()
    step = 1 if frame.format.is_planar else len(frame.layout.channels)
    rest = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples[:, first * step:last * step]),
                                      format=frame.format.name, layout=frame.layout.name)
    rest.sample_rate = frame.sample_rate
    return rest
