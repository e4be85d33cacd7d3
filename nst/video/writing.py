"""Writing a clip's video file: the frames encoded (H.264 where FFmpeg has it, VP9 in WebM, MPEG-4 in
AVI) at the clip's frame rate or, given their times (a variable rate), each at its own time, and the
source's audio within the clip's span, its packets copied through where the container takes that
codec and can start it at the first frame (MP4 and MOV: an edit list trims the packet on air then)
and end it within RUN_ON of the last, else decoded, cut at the span's edges to the sample and encoded
again (Opus in WebM, PCM in AVI, FLAC in Matroska, AAC elsewhere).
"""
import fractions
from pathlib import Path

import numpy as np

from nst.library import log_to_logger
from nst.video.clip import VIDEO_FORMATS

VARIABLE_FPS = 0x0400         # FFmpeg's AVFMT_VARIABLE_FPS: a container keeping each frame's time (not AVI)
# the clock of frames written at their own times: milliseconds and 29.97 fps's 1/30000 s steps
# exactly, within MPEG-4 Part 2's 65535 ticks a second
TIME_BASE = fractions.Fraction(1, 60000)


def write_video(frames, out, fps, source=None, span=(0.0, None), log=log_to_logger, times=None):
    # [H×W×3 uint8] -> the video file `out` (through a temporary name, renamed when complete);
    # H and W cropped to even sizes (yuv420p); frame k at k / fps or, given times (seconds from the
    # first; a container that keeps_times), at times[k], lasting to the next or to the span's end;
    # the source's audio within span copied when it can be
    import av

    from nst.io.assets import atomic_path
    fmt = VIDEO_FORMATS[Path(out).suffix.lower()]
    h, w = (frames[0].shape[0] // 2) * 2, (frames[0].shape[1] // 2) * 2
    rate = fractions.Fraction(fps).limit_denominator(1001)
    with atomic_path(out) as tmp, av.open(str(tmp), "w", format=fmt) as container:
        # own times: no B-frames, so each packet's dts is its pts and MP4's length (its dts + durations)
        # reaches the last frame's end (with B-frames it stopped short by the reordering, over a pause)
        stream = container.add_stream(codec_for(fmt), rate=rate, options={"bf": "0"} if times else None)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        pts, durations = own_clock(stream, times, span[1] - span[0]) if times else (None, {})
        audio = copy_audio_setup(container, source, span, log) if source else None
        for k, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image[:h, :w]), format="rgb24")
            if pts:
                frame.pts, frame.time_base = pts[k], TIME_BASE
            mux_video(container, stream.encode(frame), durations)
        mux_video(container, stream.encode(), durations)
        if audio:
            copy_audio(container, audio, source, span, log)
    return Path(out)


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


# what an audio stream the container will not take as it is (plays_as_is, fits_copied) is encoded
# to; AVI's PCM and Matroska's FLAC have no encoder delay (AAC's 1024 samples would play late in AVI,
# which has no edit list to skip them) and lose nothing more of the source's sound
AUDIO_CODECS = {"webm": "libopus", "avi": "pcm_s16le", "matroska": "flac"}
AUDIO_DEFAULT = "aac"                       # ... in every other container
# containers whose edit list starts a track inside its first packet: FFmpeg writes one for a first
# packet timed before 0, as for AAC's encoder delay, and players skip that packet's earlier samples
EDIT_LISTS = {"mp4", "mov"}
PACKET_CLOCK = fractions.Fraction(1, 1000)   # a packet's time to within Matroska's millisecond clock
# a copied packet plays whole: this much sound after the last frame passes (AAC's packets last 21 to
# 64 ms, MP3's 26, Opus's 20); one running on longer (PCM muxed as one packet) is cut, encoded again
RUN_ON = fractions.Fraction(1, 10)


def copy_audio_setup(container, source, span, log):
    # -> (output audio stream, copied: True when the source's packets go through as they are,
    # False when they are decoded and encoded again in the container's codec), or None
    import av
    try:
        with av.open(source) as src:
            if not src.streams.audio:
                return None
            template = src.streams.audio[0]
            fmt = container.format.name
            if not plays_as_is(fmt, template.codec_context.name) or not fits_copied(src, fmt, span):
                return encoded_stream(container, template), False
            try:
                return container.add_stream_from_template(template), True
            except ValueError:               # the container does not take this codec (aac in webm)
                return encoded_stream(container, template), False
    except (av.error.FFmpegError, ValueError) as e:
        log(f"nst video: the audio is not copied ({str(e).splitlines()[0]})")
        return None


def plays_as_is(fmt, codec):
    # audio of `codec` copied into a `fmt` file plays where such files play, in step: not PCM in MP4,
    # which FFmpeg writes but browsers and most players do not take; nothing in AVI, which times its
    # sound from its first sample, not by the packets' times: copied packets start at a packet's edge
    # (up to one packet early), and an AVI source's AAC brings a sample size that makes it 0.5 s early
    return not (fmt == "mp4" and codec.startswith("pcm_")) and fmt != "avi"


def copied_from(fmt, stream, start):
    # -> the time (seconds) in the source whose packet on air is the first copied into `fmt` for a
    # clip from `start`: in MP4 and MOV `start` (the edit list trims that packet to it); elsewhere the
    # codec delay before it (Matroska's CodecDelay, copied with the codec: a player skips that many
    # samples of the first packet: an encoder's priming, so the source's first packet is kept at 0)
    delay = fractions.Fraction(stream.codec_context.delay or 0, stream.rate) if stream.rate else 0
    return fractions.Fraction(start) - (0 if fmt in EDIT_LISTS else delay)


def fits_copied(src, fmt, span):
    # the packets of src's first audio stream copied into `fmt` for span (seconds: the first frame's
    # time, the last's end) play no sound from before its start, unless an edit list trims it (the
    # first packet begins at copied_from(start), within PACKET_CLOCK; else, skipped as the codec's
    # delay, the sound from it would be lost) and no more than RUN_ON after its end
    a = src.streams.audio[0]
    end, at, first = span[1], copied_from(fmt, a, span[0]), None
    for packet in src.demux(a):
        if packet.pts is None:
            continue
        t = packet.pts * a.time_base
        if end is not None and t >= end:
            break
        first = t if t <= at + PACKET_CLOCK else first
        if end is not None and t + packet.duration * a.time_base > end + RUN_ON:
            return False
    return fmt in EDIT_LISTS or first is None or first >= at - PACKET_CLOCK


def encoded_stream(container, template):
    # an output audio stream in the container's codec (AUDIO_CODECS, else AAC) for `template`'s audio
    stream = container.add_stream(AUDIO_CODECS.get(container.format.name, AUDIO_DEFAULT),
                                  rate=48000 if container.format.name == "webm" else template.rate)
    stream.layout = "mono" if template.layout.nb_channels == 1 else "stereo"     # not its name: "2 channels"
    return stream


def copy_audio(container, audio, source, span, log):
    # the source's audio within span (seconds), shifted to start at 0: its packets as they are, or
    # (audio = (stream, False)) decoded, resampled and encoded again
    import av
    out_stream, copied = audio
    try:
        with av.open(source) as src:
            if copied:
                copy_packets(container, out_stream, src, span)
            else:
                encode_again(container, out_stream, src, span)
    except (av.error.FFmpegError, ValueError) as e:
        log(f"nst video: the audio is not copied ({str(e).splitlines()[0]})")


def copy_packets(container, out_stream, src, span):
    # the packets of src's first audio stream from the one on air at copied_from(start) to before
    # end, their times less `start` (the first frame's) counted in samples: audio that begins after
    # the picture still begins after it, in step (in the source's own clock, one tick a packet in an
    # AVI's AAC, they were rounded to a whole packet, up to half of one off); the first one timed
    # before 0, for the edit list or the codec delay to trim (it was dropped: up to a packet of
    # silence first, or no sound at all from PCM stored as one long packet)
    start, end = span
    a = src.streams.audio[0]
    tick = fractions.Fraction(1, a.rate) if a.rate else a.time_base
    since, at = fractions.Fraction(start), copied_from(container.format.name, a, start)

    def ticks(ts):                                       # a source time -> samples from `start`
        return round((ts * a.time_base - since) / tick)

    def mux(packet):
        packet.pts, packet.dts = ticks(packet.pts), ticks(packet.dts)
        packet.duration, packet.time_base = round(packet.duration * a.time_base / tick), tick
        packet.stream = out_stream
        container.mux(packet)
    on_air = None                                        # the last packet begun by `at`, held until the next
    for packet in src.demux(a):
        if packet.pts is None or packet.dts is None:
            continue
        if packet.pts * a.time_base <= at + PACKET_CLOCK:
            on_air = packet
            continue
        if on_air is not None:
            mux(on_air)
            on_air = None
        if end is None or packet.pts * a.time_base < end:
            mux(packet)
    if on_air is not None:
        mux(on_air)


def encode_again(container, out_stream, src, span):
    # src's first audio stream decoded from `start` (the first frame's) to `end`, the frames on air
    # then cut there to the sample (one long frame, PCM stored as one packet, at both), resampled to
    # what the output's encoder takes and encoded, numbered in samples from `start`: sound that
    # begins after the picture still begins after it
    import av
    start, end = span
    ctx = out_stream.codec_context
    resampler = av.AudioResampler(format=ctx.format.name, layout=ctx.layout.name, rate=ctx.sample_rate)
    samples = None
    for frame in [*src.decode(src.streams.audio[0]), None]:
        if frame is not None and (frame.time is None or frame.time + frame.samples / frame.sample_rate <= start
                                  or (end is not None and frame.time >= end)):
            continue
        if frame is not None:
            samples = round(max(frame.time - start, 0) * ctx.sample_rate) if samples is None else samples
            frame = cut_to(frame, start, end)
        for out in resampler.resample(frame):
            out.pts, samples = samples, samples + out.samples
            for packet in out_stream.encode(out):
                container.mux(packet)
    for packet in out_stream.encode(None):
        container.mux(packet)


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
