"""A video run worked out on the client before anything runs: shots, one Frame per output frame
with its digest, the flows it needs, and what OUTDIR already holds.

Shots: a cut is where two neighbouring frames' colour histograms differ by more than CUT_L1 (L1
distance of normalised 3×16-bin histograms, in [0, 2]); --independent-shots N also starts a shot
every N frames (more shots run in parallel, at the price of a seam). The first frame of a shot is
a full coarse-to-fine run; each later frame starts from the previous output warped by the flow.

A frame's digest chains: sha256 of its pixels, the settings, the style and weights files and the
previous frame's digest (a later frame's also the video options it runs with). So changing anything
redoes the frames it touches and every later frame of that shot (a shot's first frame stays when only
the later frames' options change), and a rerun continues at the first unfinished frame of each shot.
"""
import hashlib
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nst.io.assets import link_text, sha256_file
from nst.io.destinations import RunRefused, check_writable, exists, same_file
from nst.io.image import written_by_nst
from nst.batch.outdir import MANIFEST, check_manifest, kind, not_nsts_file, unreplaceable
from nst.batch.results import append_row, read_manifest
from nst.video.clip import VIDEO_FORMATS, frame_name, is_video_path

CUT_L1 = 0.6                  # histogram distance of a cut (a pan or a passing object stays well below)
FRAME_NAME = re.compile(r"frame_\d{6,}\.png")   # nst.video.clip.frame_name: the only names nst writes in OUTDIR
LONG_TERM = (1, 2, 4)         # earlier frames a later frame is tied to with --long-term, closest first
LATER_KEYS = ("temporal_weight", "later_iterations")    # the video options a shot's later frame runs with


@dataclass
class Frame:
    """One output frame: its place in the clip and shot, and what it depends on."""
    position: int             # index into Clip.frames
    number: int               # source frame number
    shot: int
    first: bool               # the first frame of its shot
    earlier: tuple            # positions of the earlier frames its temporal term uses, closest first
    digest: str
    output: str = field(default="")

    def __post_init__(self):
        self.output = self.output or frame_name(self.number)


def histogram(frame):
    # H×W×3 uint8 -> 48 normalised bin counts (16 per channel)
    h = np.concatenate([np.bincount(frame[..., k].ravel() >> 4, minlength=16) for k in range(3)])
    return h / max(h.sum() / 3, 1)


def shot_starts(frames, independent=None):
    # -> positions where a shot starts (0 first)
    starts = [0]
    hist = [histogram(f) for f in frames]
    for i in range(1, len(frames)):
        cut = np.abs(hist[i] - hist[i - 1]).sum() / 3 > CUT_L1
        if cut or (independent and i - starts[-1] >= independent):
            starts.append(i)
    return starts


def plan(clip, settings, video, style_shas, weights_sha, init_sha=None):
    # settings: nst.run.settings.Settings -> [Frame] in clip order; video: the video options
    # (independent_shots, long_term, ...); an --init FILE counts by its sha256 (init_sha), as styles do
    starts = shot_starts(clip.frames, video["independent_shots"])
    offsets = LONG_TERM if video["long_term"] else (1,)
    frames, previous = [], ""
    for shot, start in enumerate(starts):
        end = starts[shot + 1] if shot + 1 < len(starts) else len(clip.frames)
        for pos in range(start, end):
            earlier = tuple(pos - k for k in offsets if pos - k >= start)
            previous = "" if pos == start else previous
            key = digest_key(settings, video, style_shas, weights_sha, init_sha, [pos - e for e in earlier])
            digest = hashlib.sha256((key + previous).encode() + clip.frames[pos].tobytes()).hexdigest()
            frames.append(Frame(pos, clip.numbers[pos], shot, pos == start, earlier, digest))
            previous = digest
    return frames


def digest_key(settings, video, style_shas, weights_sha, init_sha, offsets):
    # what a frame's result depends on besides its pixels and the frame before (chained): a shot's
    # first frame (offsets empty) only the run's settings, styles and weights, so another
    # --temporal-weight, --later-iterations, --long-term or --independent-shots keeps it; a later
    # frame also the temporal weight, its iterations and which earlier frames it is tied to
    s = settings.as_dict()
    s["init"] = {"sha256": init_sha} if init_sha else s["init"]
    later = {k: video.get(k) for k in LATER_KEYS} | {"offsets": offsets} if offsets else None
    return json.dumps({"settings": s, "styles": style_shas, "weights": weights_sha, "later": later},
                      sort_keys=True, default=str)


def later_settings(settings, video, side, init="content"):
    # a shot's later frame: one scale at the frame's side, video's later_iterations, from init (the
    # warped previous output); its first frame runs `settings` as they are (coarse to fine)
    return settings.replace(scales=1, size=side, iterations=video["later_iterations"], init=init)


def shots_of(frames):
    # -> [[Frame]] per shot, in order
    out = {}
    for f in frames:
        out.setdefault(f.shot, []).append(f)
    return list(out.values())


def outdir_for(output):
    # -o a video file -> its frames go in OUT.frames/; -o a folder -> that folder
    return Path(str(output) + ".frames") if is_video_path(output) else Path(output)


def check_output_name(output):
    # -o is a video file nst writes (by its suffix) or a folder: a name without a suffix, one ending
    # in /, or an existing folder; another suffix (.gif, .png, a typo) is refused, not made a folder
    suffix = Path(output).suffix
    if suffix and not is_video_path(output) and not output.endswith(("/", os.sep)) and not Path(output).is_dir():
        raise RunRefused(f"-o {output}: {suffix} is not a video format nst writes ({' '.join(VIDEO_FORMATS)}); "
                         "for a folder of frames give a name without a suffix (or end it with /)")


def check_destinations(source, output, outdir, inputs):
    # nothing of the user's is overwritten (nst.io.destinations' rules): outputs only in OUTDIR and
    # at -o, never an input, never a file nst did not write
    out = Path(output)
    if out.exists() and out.is_dir() and is_video_path(output):
        raise RunRefused(f"-o {out} is a folder with a video's name; give a video file or another folder")
    if outdir.exists() and not outdir.is_dir():            # -o as typed (dir/ keeps its slash), named once
        where = f"-o {output}: {outdir}" if is_video_path(output) else f"-o {output}"
        raise RunRefused(f"{where} exists and is not a folder (nst video keeps the frames there): "
                         "move it away or choose another -o")
    real = os.path.realpath(outdir)
    for what, path in [("IN", source), *inputs]:
        if path and (same_file(path, out) or os.path.commonpath([os.path.realpath(path), real]) == real):
            raise RunRefused(f"-o {out}: would write over or beside the input {path} ({what}); "
                             "choose a destination for outputs only")
    if Path(source).is_dir() and any(inside(p, source) for p in (outdir, out)):
        raise RunRefused(f"-o {out}: would write inside the input folder {source} (IN); "
                         "choose a destination outside it")
    check_manifest(outdir)                                # absent, or nst's: never another's file
    check_writable("-o", outdir / MANIFEST, named=output)        # the frames' folder, named as -o was typed
    if is_video_path(output):
        check_writable("-o", out)
        if exists(out) and not video_written_by_nst(outdir, out):
            raise RunRefused(f"-o {out} exists and nst did not write it; move it or choose another name")
        if kind(out) == "link" and not exists(out):                # the user's: the video would replace it
            raise RunRefused(f"-o {out}: {link_text(out)}; move it or choose another name")


def video_written_by_nst(outdir, out):
    # the manifest of OUTDIR records the sha256 of the video nst last wrote at `out`, or (OUTDIR
    # removed) the video carries nst's mark
    from nst.video.writing import carries_mark
    row = read_manifest(outdir).get("video")
    return (bool(row) and row.get("sha256") == sha256_file(out)) or carries_mark(out)


def partition(frames, previous, outdir):
    # -> (to run, done before): in each shot, the frames before the first unfinished one are done;
    # anything at a frame's name but a file nst wrote is refused (never replaced): another's file, a
    # folder, a symbolic link (the user's, even one to nothing: never followed, nor replaced), and so
    # is a frame to be made again that cannot be replaced (read-only, chattr +i). Not batch's
    # picture_blocked: a frame of nst's with no row (a run stopped between frame and row) is made again
    todo, done = [], []
    for shot in shots_of(frames):
        finished = True
        for f in shot:
            path = Path(outdir) / f.output
            k = kind(path)
            why = not_nsts_file(path, k) if k != "missing" else None
            if why:
                raise RunRefused(f"{why}: not replaced; move it away")
            row = previous.get(f.output)
            finished = finished and k == "file" and bool(row) and row.get("status") == "done" \
                and row.get("digest") == f.digest
            if not finished and unreplaceable(path):       # found now, not at the frame's last rename
                raise RunRefused(f"{unreplaceable(path)}; its frame is to be made again")
            (done if finished else todo).append(f)
    return todo, done


def inside(path, folder):
    # `path` (existing or not) is `folder` or lies within it, links resolved
    real = os.path.realpath(folder)
    return os.path.commonpath([os.path.realpath(path), real]) == real


def stale_frames(frames, previous, outdir):
    # -> names of frames nst wrote in OUTDIR (a manifest row, nst's mark, a plain file) that this
    # plan does not make: an earlier run's other --fps or --frames; another's file is never listed
    wanted = {f.output for f in frames}
    stale = []
    for name, row in previous.items():
        path = Path(outdir) / name
        if FRAME_NAME.fullmatch(name) and name not in wanted and row.get("status") != "removed" \
                and path.is_file() and not path.is_symlink() and written_by_nst(path):
            stale.append(name)
    return sorted(stale)


class Manifest:
    """OUTDIR/manifest.jsonl: one row per frame as it ends (appended, fsynced), the video's row last."""

    def __init__(self, outdir):
        self.path = Path(outdir) / MANIFEST
        self.previous = read_manifest(outdir)

    def append(self, row):
        append_row(self.path, {**row, "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})


def row_of(frame, result):
    return {"output": frame.output, "frame": frame.number, "shot": frame.shot, "first": frame.first,
            "digest": frame.digest, "status": "failed", "error": None, **result}
