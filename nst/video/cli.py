"""`nst video IN -o OUT --style S`: the command; the run on the cluster is nst.video.engine.

On the cluster (nst.batch.engine: a LocalCluster sized by cores and memory, or --scheduler): the
flows are computed across the workers a few frames ahead of each shot; within a shot the frames
run one after another (each needs the previous output), and the shots run side by side. The client
alone writes OUTDIR: each frame as it ends (its manifest row first), then the video
(nst.video.output). What is refused before any work: nst.video.checks.
"""
import argparse
import contextlib
import signal
from pathlib import Path

import numpy as np

from nst.batch.checks import check_workers
from nst.memory import gib
from nst.library import counted
from nst.run.progress import fmt_seconds, log
from nst.video import checks, output, reuse
from nst.video import clip as clips
from nst.video import plan as plans

# Defaults measured with bench/bench_video.py (bench/RESULTS.md "Video"): the smallest swept w
# whose flicker is ≥ 5× below the independent frames' with content and style terms within 1.2×;
# fewer later iterations flicker less (the frame stays nearer its warped start): 20 is ≥ 5× at 256
# and 512 px with both terms within 1.06×, in 2/5 of the time of 50, the default before.
TEMPORAL_WEIGHT = 10.0
LATER_ITERATIONS = 20


def frame_range(text):
    # "A:B" -> (A, B) (either may be empty), as a Python slice of the source's frames
    a, sep, b = text.partition(":")
    try:
        if not sep:
            raise ValueError
        lo, hi = (int(a) if a.strip() else None), (int(b) if b.strip() else None)
        if (lo is not None and lo < 0) or (hi is not None and hi < 0) or (hi is not None and hi <= (lo or 0)):
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be A:B, frame numbers from 0, B above A (B not included), e.g. 0:100, "
                                         f"got {text!r}") from None
    return lo, hi


def add_parser(sub):
    # the `video` subcommand, with every `nst transfer` run option (nst.cli.options, defined once)
    from nst.cli.options import (add_cluster_options, add_common_options, add_run_options, add_transfer_options,
                                 examples, integer, option_type)
    from nst.run.settings import number
    p = sub.add_parser("video", help="stylise a video without flicker (temporal consistency), resumable",
                       description="Stylise a video file or a folder of frames with the look of STYLE. Each\n"
                                   "frame after a shot's first starts from the previous output moved by the\n"
                                   "optical flow and is held to it where the flow is reliable (a cut starts a\n"
                                   "new shot; shots run side by side on a Dask cluster). The same command\n"
                                   "again continues at the first unfinished frame.",
                       epilog=examples("nst video clip.mp4 -o styled.mp4 --style painting.jpg",
                                       "nst video clip.mp4 -o styled.mp4 --style painting.jpg --size 256 "
                                       "--frames 0:48",
                                       "nst video frames/ -o styled/ --style painting.jpg --fps 12",
                                       "nst video clip.mp4 -o styled.mp4 --style painting.jpg --dry-run"
                                       "   # frames, shots, memory, time",
                                       "nst video clip.mp4 -o styled.mp4 --style painting.jpg   # again: goes on"),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", metavar="IN", help="a video file (.mp4 .mov .mkv .webm .avi ...) or a folder of frames "
                                               "(images, in name order, numbers by value)")
    p.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="a video file (.mp4 .mov .mkv .webm .avi; its frames and manifest.jsonl go in OUT.frames/) "
                        "or a folder for the frames (a name without a suffix); an existing one is replaced only "
                        "if nst wrote it")
    p.add_argument("--style", nargs="+", required=True,
                   help="the style image(s) (or folders of them) whose look the frames take (blend: --style-blend)")
    for add in (add_transfer_options, add_run_options, add_common_options):
        add(p)
    p.add_argument("--temporal-weight", type=option_type(number()), default=TEMPORAL_WEIGHT, metavar="W",
                   help="weight of the temporal loss, relative like --style-weight; 0: no temporal "
                        "term (default: %(default)g)")
    p.add_argument("--later-iterations", type=integer(1), default=LATER_ITERATIONS, metavar="N",
                   help="iterations of each later frame of a shot, one scale from the warped previous "
                        "output (the first frame gets --iterations per scale); fewer flicker less and "
                        "style a little less (default: %(default)s)")
    p.add_argument("--long-term", action="store_true",
                   help="tie each frame to frames i−1, i−2 and i−4 (closest first), not only i−1")
    p.add_argument("--frames", type=frame_range, metavar="A:B",
                   help="only the source's frames A to B−1, counted from 0 (either may be left out: "
                        "10: from frame 10 on) (default: every frame)")
    p.add_argument("--fps", type=option_type(number(lo_open=True)), metavar="F",
                   help="frames per second, > 0: for a video, keep at most F of its frames a second (at or above "
                        "its own rate: all); for a folder, or a video with no rate of its own (a raw .mjpeg), its "
                        "rate (default: the video's own; 25 for a folder)")
    p.add_argument("--independent-shots", type=integer(1), metavar="N",
                   help="also start a new shot every N frames (shots run in parallel; default: only at cuts)")
    add_cluster_options(p, "shots, cores and memory")
    p.add_argument("--dry-run", action="store_true",
                   help="print the frames, shots, the memory and the time (timed here: a frame's set-up and "
                        "an evaluation of J at each size it runs at); stop")
    return p


def video_options(args):
    return {"temporal_weight": args.temporal_weight, "later_iterations": args.later_iterations,
            "long_term": args.long_term, "independent_shots": args.independent_shots}


def main(args):
    # OUTDIR held by this run (nst.io.hold) until it returns or raises
    with contextlib.ExitStack() as held:
        return make_video(args, held)


def make_video(args, held):
    # the checks, the frames to run, the run, the video (OUT a video file)
    from nst.batch.plan import FileHashes, expand
    from nst.cli.options import settings_of
    from nst.io.destinations import check_regular, existing_ancestor
    from nst.io.hold import hold_outdir
    checks.check_libraries()
    checks.check_options(args)
    settings = settings_of(args)
    styles = expand(args.style, "style")
    check_regular([("IN", args.input), ("--init", settings.init_file), ("--weights", settings.weights)])
    clips.check_exists(args.input)
    video = video_options(args)
    outdir = plans.outdir_for(args.output)
    plans.check_destinations(args.input, args.output, outdir,
                             [("--style", s) for s in styles] + [("--weights", settings.weights)]
                             + ([("--init", settings.init_file)] if settings.init_file else []))
    if not args.dry_run:
        held.enter_context(hold_outdir("nst video", "-o", args.output, outdir))
    weights, init_image = checks.check_inputs(args, settings, styles)
    keep_in = existing_ancestor(outdir / plans.MANIFEST)           # the frames' file: on the outputs' disk
    clip = output.fitted(clips.read(args.input, settings.size, args.frames, args.fps, keep_in), args.output)
    checks.warn_upscaled(clip, settings.size)
    need, backend, run = run_memory(settings, clip.frames[0].shape[:2], styles, video)
    checks.warn_tile(run[0])
    check_workers(args.workers, need, backend, "frame")
    sha = FileHashes()
    init = settings.init_file
    frames = plans.plan(clip, settings, video, [sha[s] for s in styles],
                        weights.sha if weights else None, sha[init] if init else None)
    taken = reuse.take_frames_made(frames, args.output, outdir, args.dry_run)    # -o out.mkv after out.mp4
    manifest = plans.Manifest(outdir)
    todo, done = plans.partition(frames, manifest.previous, outdir)
    todo, done = reuse.counted_as_taken(todo, done, taken) if args.dry_run else (todo, done)
    # a folder of frames is the output: it holds this run's frames only; OUT.frames of a video file
    # is a cache the video is made from: an earlier run's other frames stay there, to be reused
    stale = [] if clips.is_video_path(args.output) else plans.stale_frames(frames, manifest.previous, outdir)
    shots = plans.shots_of(frames)
    h, w = clip.frames[0].shape[:2]
    in_source = f" ({in_source_text(clip)})" if clip.src_frames else ""
    log(f"nst video: {len(frames)} frames of {clip.source}{in_source} at {w}×{h}, "
        f"{clips.rate_text(clip)}, {counted(len(shots), 'shot')}: {len(done)} done before, "
        f"{len(todo)} to run")
    if args.dry_run:
        return dry_run(args, clip, frames, todo, stale, (need, backend, run), video)
    remove_stale(stale, manifest, outdir)
    if todo:
        status = execute(args, clip, frames, todo, settings, video, styles, manifest, outdir, (need, backend),
                         weights, init_image)
        if status:
            return status
    return output.finish(args, clip, frames, manifest, outdir)


def in_source_text(clip):
    # "36 in the source", or where the header declares no count and the file was read up to B only
    # (Clip.src_estimated) "about 42 in the source, estimated from its header's length and rate"
    if clip.src_estimated:
        return f"about {clip.src_frames} in the source, estimated from its header's length and rate"
    return f"{clip.src_frames} in the source"


def remove_stale(stale, manifest, outdir):
    # frames nst wrote in OUTDIR for an earlier plan that this one has not (another --fps, --frames):
    # removed, each with a manifest row, so OUTDIR holds this run's frames only
    for name in stale:
        manifest.append({"output": name, "status": "removed", "error": None})
        (Path(outdir) / name).unlink()
    if stale:
        log(f"nst video: removed {stale_text(stale)} from {outdir}")


def stale_text(stale, verb=""):
    # "3 frames of an earlier run that this one does not make[verb] (frame_000004.png, …)"
    return (f"{counted(len(stale), 'frame')} of an earlier run that this one does not make"
            f"{verb} ({', '.join(stale[:3])}{', …' if len(stale) > 3 else ''})")


def run_memory(settings, shape, styles, video):
    # -> (bytes, backend name, (Run, Run)) of one frame's run, the larger of a shot's first frame (the
    # coarse-to-fine schedule) and a later one (one scale, more L-BFGS pairs) (nst.memory, via Run),
    # and the two Runs; each checked for the deepest layer's size (nst.run.checks) before anything is
    # written
    from nst.io.image import load_image
    from nst.run.checks import check_sizes
    from nst.run.run import Run
    frame = np.zeros((*shape, 3), np.float32)
    styles = [load_image(s) for s in styles]
    run = Run(frame, styles, settings.replace(init="content"), log)
    later = Run(frame, styles, plans.later_settings(settings, video, max(shape)), log)
    check_sizes(run)
    check_sizes(later)
    need = max(run.memory_estimate()[0]["total"], later.memory_estimate()[0]["total"])
    return need, run.objective_backend().name, (run, later)


def dry_run(args, clip, frames, todo, stale, memory, video):
    from nst.batch import engine
    to_run = {f.output for f in todo}
    if stale:
        print(stale_text(stale, " would be removed"))
    for shot in plans.shots_of(frames):
        left = sum(f.output in to_run for f in shot)
        numbers = f"frames {shot[0].number}–{shot[-1].number}" if len(shot) > 1 else f"frame {shot[0].number}"
        print(f"shot {shot[0].shot}: {numbers} ({counted(len(shot), 'frame')}, {left} to run)")
    need, backend, (run, later) = memory
    shots_left = len({f.shot for f in todo})
    layout = engine.local_layout(max(1, shots_left), need, backend, args.workers, args.threads)
    print(f"one frame: up to {gib(need)} on {backend} (first frame of a shot: scales "
          f"{' → '.join(map(str, run.sizes))}, "
          f"{' + '.join(map(str, run.caps))} iterations at most; "
          f"later frames: {video['later_iterations']} iterations at "
          f"{max(clip.frames[0].shape[:2])} px)")
    print(time_line(run, later, todo, layout, args.scheduler))
    print(f"at once: {layout.where}" if not args.scheduler else f"at once: the cluster at {args.scheduler}")
    return 0


def time_line(run, later, todo, layout, scheduler):
    # --dry-run's time, measured here now (nst.video.estimate), said with its basis
    from nst.video import estimate
    if not todo:
        return "time: none, every frame is done"
    if not layout.fits:
        return "time: not measured: one frame does not fit in this machine's free memory"
    measured = estimate.measure(run, later)
    setup, each = measured["costs"]
    where = "one machine like this one (the cluster's may differ)" if scheduler else "this machine"
    return (f"time: about {fmt_seconds(estimate.seconds(measured, todo, layout.workers))} for "
            f"{counted(len(todo), 'frame')}, measured on {where} now: a worker's set-up {measured['worker']:.2g} s "
            f"(the weights, once a worker), a first frame {fmt_seconds(measured['first'])}, a later one "
            f"{fmt_seconds(measured['later'])} ({setup:.2g} s set-up, {each:.2g} s an evaluation of J, about "
            f"{estimate.EVALS_PER_ITERATION:g} an iteration); the shots share the cores; another load, another time")


def execute(args, clip, frames, todo, settings, video, styles, manifest, outdir, memory, weights, init_image):
    # run `todo` on the cluster -> None when every frame is done, else the exit status; weights:
    # the --weights file for the workers (nst.batch.checks.read_weights), or None; init_image: the
    # --init FILE's pixels (checks.check_inputs), or None
    from nst.batch import engine
    from nst.video.engine import WriteFailed, on_cluster
    need, backend = memory
    shots_left = len({f.shot for f in todo})
    layout = None if args.scheduler else engine.local_layout(shots_left, need, backend, args.workers, args.threads)
    if layout and not layout.fits:
        raise MemoryError(f"one frame needs about {gib(need)} but this machine has less free; try a smaller --size")
    settings = init_travels(settings, init_image, max(clip.frames[0].shape[:2]))
    previous_sigterm = signal.signal(signal.SIGTERM, signal.default_int_handler)      # SIGTERM = Ctrl-C
    try:
        with engine.connect(args.scheduler, layout) as client:
            if args.scheduler:                     # no worker joins in engine.WORKER_WAIT s: one line
                engine.wait_for_workers(client, lambda m: log(f"nst video: {m}"))
            layout = layout or engine.cluster_layout(client, need)
            log(f"nst video: {layout.where}")
            if weights:
                client.register_plugin(weights, name=weights.name)
            video = {**video, "weights_sha": weights.sha if weights else None,
                     "debug": args.debug}           # NumPy's overflow warnings said too, as by nst transfer's
            counts = on_cluster(client, clip, frames, todo, settings, video, styles, manifest, outdir)
    except KeyboardInterrupt:
        counts = None
    except WriteFailed as e:                         # OUTDIR takes no more (nst.batch.engine's rule)
        log(f"nst video: error: {e}; the frames made are kept in {outdir}: {e.hint} and run the same "
            "command again to go on")
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous_sigterm)
    if counts is None:
        log("nst video: interrupted; finished frames are kept: run the same command again to go on")
        return 130
    if counts["failed"]:
        log(f"nst video: {counted(counts['done'], 'frame')} done, {counts['failed']} failed; "
            f"see {outdir / plans.MANIFEST}")
        return 1
    return None


def init_travels(settings, init_image, side):
    # an --init FILE -> settings carrying its pixels (init_image, decoded once by checks.check_inputs;
    # uint8, longest side `side`, the frames'), as the frames and styles travel: a worker on another
    # machine has no such file, and a file changed while the run goes on would not be the one its
    # digest counted
    from nst.io.image import resize_longest, to_uint8
    if settings.init_file:
        return settings.replace(init=to_uint8(resize_longest(init_image, side)))
    return settings
