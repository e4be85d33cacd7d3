"""Frames already made for the same video under another container's name: -o out.mkv after -o out.mp4
finds out.mp4.frames/ and takes the frames there whose digests (source pixels, settings, styles,
weights, the frames before: nst.video.plan) are this run's, so only the container changes. They are
hard-linked (copied where the disk cannot link) into OUT.frames/, each with its manifest row: the
frames it lacks (a new folder, or one an earlier, shorter --frames or other settings left), replacing
nst's own frame of other settings in one rename; the other folder is only read (nst replaces a frame
by a rename, so a link never changes it).
"""
import os
import shutil
from pathlib import Path

from nst.batch.results import read_manifest
from nst.io.assets import atomic_path
from nst.io.destinations import RunRefused, why_not_written
from nst.library import counted
from nst.run.progress import log
from nst.video import plan as plans
from nst.video.clip import VIDEO_FORMATS, is_video_path


def sibling_outdirs(output, outdir):
    # -> the OUT.frames/ folders of -o's stem under each other video suffix that exist (out.mp4.frames
    # for -o out.mkv), in VIDEO_FORMATS' order
    folders = [plans.outdir_for(Path(output).with_suffix(suffix)) for suffix in VIDEO_FORMATS]
    return [f for f in folders if f != Path(outdir) and f.is_dir() and not f.is_symlink()]


def take_frames_made(frames, output, outdir, dry_run=False):
    # -o a video file: the frames of `frames` that OUT.frames/ (`outdir`) lacks done and a sibling
    # folder holds done (plans.partition: a manifest row done with this frame's digest, nst's file)
    # linked into `outdir`, each with its row, said in one line (with --dry-run only said) -> their
    # names; a disk that refuses one stops there, said (the rest are made again); -o a folder: none
    if not is_video_path(output):
        return set()
    lacking = {f.output for f in plans.partition(frames, read_manifest(outdir), outdir)[0]}
    taken = {}
    for folder in sibling_outdirs(output, outdir) if lacking else ():
        rows = read_manifest(folder)
        try:
            done = plans.partition(frames, rows, folder)[1]
        except RunRefused:                                   # another's file there: not ours to take
            continue
        taken.update({f.output: (folder, rows[f.output]) for f in done if f.output in lacking - set(taken)})
    if not taken:
        return set()
    folders = ", ".join(sorted({str(folder) for folder, _ in taken.values()}))
    if dry_run:
        log(f"nst video: {counted(len(taken), 'frame')} made for the same source, frames and settings in {folders} "
            "would be taken (linked), not made again")
        return set(taken)
    Path(outdir).mkdir(parents=True, exist_ok=True)
    manifest, linked = plans.Manifest(outdir), set()
    try:
        for name, (folder, row) in taken.items():
            link_or_copy(folder / name, Path(outdir) / name)      # then its row: a row of this digest
            manifest.append({k: v for k, v in row.items() if k != "finished"})   # never names an older frame
            linked.add(name)
    except OSError as e:
        log(f"nst video: {len(taken) - len(linked)} of the frames in {folders} not taken ({why_not_written(e)}): "
            "they are made again")
    log(f"nst video: took {counted(len(linked), 'frame')} made for the same source, frames and settings from {folders} "
        "(linked; that folder is unchanged)")
    return linked


def counted_as_taken(todo, done, taken):
    # --dry-run: ([Frame] to run, [Frame] done) with the frames a run would take (their names) done
    return [f for f in todo if f.output not in taken], done + [f for f in todo if f.output in taken]


def link_or_copy(source, target):
    # `target` the same file as `source` (a hard link, its mode left as the other folder has it;
    # else, on another disk or one with no links, a copy), taking its name in one rename: nst's frame
    # of other settings there is replaced whole
    try:
        with atomic_path(target, linked=True) as part:
            os.unlink(part)
            os.link(source, part)
    except OSError:
        with atomic_path(target) as part:
            shutil.copyfile(source, part)
