"""`nst video`'s last step: the video file from the finished frames (OUT a video file), written
again only when its frames, rate or audio changed, its manifest row beside it."""
import hashlib
import json
import os
from pathlib import Path


from nst.library import counted, fps_text
from nst.run.progress import log
from nst.video import clip as clips
from nst.video import plan as plans
from nst.video import writing


def finish(args, clip, frames, manifest, outdir):
    # every frame is done: write the video (OUT a video file) unless it is up to date
    from nst.io.assets import sha256_file
    from nst.video.store import Pictures
    rows = plans.read_manifest(outdir)
    if not clips.is_video_path(args.output):
        log(f"nst video: {len(frames)} frames in {outdir}")
        return 0
    if sound_gone(clip, outdir):
        return 1
    key = video_key(clip, frames)
    row = rows.get("video")
    out = Path(args.output)
    if row and row.get("frames_digest") == key and out.exists() and row.get("sha256") == sha256_file(out):
        log(f"nst video: {out} is up to date")
        return 0
    images = Pictures(outdir / f.output for f in frames)           # read one at a time as they are written
    if not write_out(images, out, clip, outdir, manifest, key):
        return 1
    shown = len(clips.on_screen(frames, clip.repeats))
    held = f", {shown} shown, some held over the source's pauses" if shown != len(frames) else ""
    log(f"nst video: wrote {out} ({len(frames)} frames{held}, {clips.rate_text(clip)}{even_text(clip)}); "
        f"frames in {outdir}")
    return 0


def sound_gone(clip, outdir):
    # IN, whose sound is copied now, removed or changed since its frames were read (a traceback, or
    # another file's sound under these frames): said in one line -> True
    now = clips.file_id(clip.source) if clip.audio else clip.source_id
    if now == clip.source_id:
        return False
    what = "was removed" if now is None else "changed"
    log(f"nst video: error: {clip.source} {what} after its frames were read, so its sound cannot be copied; "
        f"the frames are in {outdir}: run the same command again with it in place")
    return True


def even_text(clip):
    # ", at 46×34: ..." where a frame's side is odd (writing.write_video crops to even sides, yuv420p's)
    h, w = clip.frames[0].shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return ""
    return f", at {w // 2 * 2}×{h // 2 * 2}: a video's sides are even, the frames' last odd row or column left out"


def fitted(clip, out):
    # a clip whose frames keep their own times (a variable rate) for OUT a container of one rate
    # (AVI): the frame on screen at each 1/fps s of the header's rate, as ffmpeg writes it, said in
    # one line; any other clip as it is
    if not clip.times or not clips.is_video_path(out) or writing.keeps_times(out):
        return clip
    log(f"nst video: {Path(out).suffix} keeps one frame rate: the source's variable rate is written at "
        f"{fps_text(clip.fps)}, each frame as often as it is on screen (.mp4 .mov .mkv .webm keep its timing)")
    return clips.at_one_rate(clip)


def write_out(images, out, clip, outdir, manifest, key):
    # the video file and its manifest row -> True; a frame gone from OUTDIR since it was made, or a
    # disk that refuses either (full), is one line and the frames stay -> False: -o is as it was
    # (written under a temporary name) or, when its row could not be added, removed (a file without
    # its row would be refused as another's next time)
    import av
    from nst.io.assets import sha256_file
    from nst.io.image import ImageError
    try:
        write_video(images, out, clip)
    except (OSError, av.error.FFmpegError) as e:
        return write_failed(out, e, outdir)
    except ImageError:
        gone = [p for p in images.paths if not os.path.lexists(p)]     # a frame (or the hard link to one
        if not gone:                             # taken from out.mkv.frames) removed since it was made
            raise
        more = f" (and {counted(len(gone) - 1, 'other frame')})" if len(gone) > 1 else ""
        log(f"nst video: error: {gone[0]}: no such file{more}; run the same command again: it makes the "
            f"missing frames again and writes {out}")
        return False
    try:
        manifest.append({"output": "video", "path": str(out), "sha256": sha256_file(out), "frames_digest": key,
                         "frames": len(images), "fps": clip.fps, "status": "done"})
    except OSError as e:
        Path(out).unlink(missing_ok=True)
        return write_failed(outdir / plans.MANIFEST, e, outdir)
    return True


def write_failed(path, e, outdir):
    # the one line of a file the disk refused -> False
    from nst.batch.engine import cannot_write
    log(f"nst video: error: {cannot_write(path, e)}; the frames are in {outdir}: free some space and run "
        "the same command again")
    return False


def keeps_any_sound(out):
    # what a user can do where -o's container refused the sound both ways: Matroska takes any codec
    # copied and FLAC encoded (writing.AUDIO_CODECS)
    mkv = Path(out).with_suffix(".mkv")
    return "" if Path(out).suffix.lower() == ".mkv" else f" (Matroska takes any sound: -o {mkv})"


def video_key(clip, frames):
    # sha256 of what decides the video file: each frame's digest, source number and repeats (or
    # time), the frame rate, and the audio copied (the source file's sha256 and the span), so a change
    # to any rewrites it
    from nst.io.assets import sha256_file
    audio = {"source": sha256_file(clip.source), "span": clip.span} if clip.audio else None
    held = {"repeats": clip.repeats} if clip.repeats else {}
    own = {"times": clip.times} if clip.times else {}
    text = json.dumps({"frames": [f.digest for f in frames], "numbers": [f.number for f in frames],
                       "fps": clip.fps, "audio": audio, **held, **own}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def write_video(images, out, clip):
    # the video (each frame as often as the clip's ticks show it) with the source's audio. Where the
    # muxer refuses the copied audio only as the file is written (an FFmpeg error that is not the
    # disk's: a codec and container pair not foreseen by plays_as_is, as MP3 under 16 kHz in MP4), the
    # audio is encoded again in the container's codec (writing.AUDIO_CODECS); refused too, the video is
    # written without it, said in one line naming -o and FFmpeg's reason (not its temporary name)
    import av
    images = clips.on_screen(images, clip.repeats)
    source = clip.source if clip.audio else None
    if source is None:
        return writing.write_video(images, out, clip.fps, None, clip.span, log, clip.times)
    for copy_sound in (True, False):
        try:
            with writing.ffmpeg_reasons():
                return writing.write_video(images, out, clip.fps, source, clip.span, log, clip.times, copy_sound)
        except av.error.FFmpegError as e:
            if isinstance(e, OSError):
                raise
            refused = writing.reason(e)
    log(f"nst video: the audio is not copied into {out} nor encoded again (FFmpeg: {refused}); the video is "
        f"written without it{keeps_any_sound(out)}")
    return writing.write_video(images, out, clip.fps, None, clip.span, log, clip.times)
