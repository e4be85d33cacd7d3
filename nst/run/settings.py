"""The settings of a run: one frozen, validated object, the same for the API, the CLI and batch.

Every option is defined once, in RULES: how a command line's text becomes a value, which values
are valid, and what the error says. `Settings(...)` checks every field against its rule when it
is made (ValueError naming the option), so a Settings that exists is valid; the CLI's argparse
types are built from the same rules (nst.cli.options), so a bad value is refused as it is typed.
Manifests store `as_dict()`; `Settings.from_dict` reads it back, its errors naming the keys as
stored (style_weight) where the command line's name its flags (--style-weight). Checkpoints and
reports record `as_record()`: the same, with arrays named by their sha256.
"""
import dataclasses
import math
import numbers
import os
import re

from nst import optim
from nst.io.assets import recorded
from nst.io.image import MAX_SIDE
from nst.library import counted
from nst.spec import AUTO, DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS, resolve_layer, resolve_layers

INIT_KEYWORDS = ("content", "recolored", "random", "style")
OPTIMIZERS = tuple(optim.OPTIMIZERS)     # --optimizer's names, nst.optim's
POOLINGS = ("max", "avg")
KEEP_COLORS = ("luminance", "match")


def init_file(init):
    # --init's value -> the image file it names (a path), or None: a keyword or an array
    return init if isinstance(init, (str, os.PathLike)) and init not in INIT_KEYWORDS else None


class SettingsError(ValueError):
    """An option's value is not valid, or options disagree; the message names each option as the
    command line spells it (--style-weight), and `for_api()` as the API's keyword and a stored
    dict's key (style_weight)."""

    def for_api(self):
        # the same error naming keywords (api_names)
        return SettingsError(api_names(str(self)))


def api_names(text):
    # a message for the API: each option as its keyword, --style-weight -> style_weight (other -- words kept)
    def keyword(m):
        field = m[1].replace("-", "_")
        return field if field in FIELDS else m[0]
    return re.sub(r"--([a-z][a-z-]*)", keyword, text)


class EmptyItem(ValueError):
    """A comma-separated list has an empty item ("a,,b", "a,"): said as such, whatever the option."""


class Rule:
    """One option: parse(text) -> value for the command line, check(value) -> the error or None."""

    def __init__(self, parse, ok, valid, own_errors=False):
        # own_errors: parse's ValueError already says what is wrong (a layer name), pass it on
        self.parse_text, self.ok, self.valid, self.own_errors = parse, ok, valid, own_errors

    def check(self, value):
        # -> None when valid, else "VALID, got VALUE"
        try:
            good = self.ok(value)
        except (TypeError, ValueError):
            good = False
        return None if good else f"{self.valid}, got {value!r}"

    def parse(self, text):
        # command-line text -> a valid value, or ValueError("VALID, got 'TEXT'")
        try:
            value = self.parse_text(text)
        except EmptyItem:
            raise
        except (ValueError, OverflowError):
            if self.own_errors:
                raise
            value = None
        if value is None or self.check(value):
            raise ValueError(f"{self.valid}, got {text!r}")
        return value


def integer(lo, hi=None):
    valid = f"must be a whole number ≥ {lo}" if hi is None else f"must be a whole number from {lo} to {hi}"
    def ok(v):
        return isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= lo and (hi is None or v <= hi)
    return Rule(int, ok, valid)


def number(lo=0.0, hi=math.inf, lo_open=False, hi_open=False):
    # a finite float in [lo, hi] (open at either end when asked)
    def ok(v):
        if not (isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)):
            return False
        return (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)
    lo_s, hi_s = f"{'>' if lo_open else '≥'} {lo:g}", f"{'<' if hi_open else '≤'} {hi:g}"
    return Rule(float, ok, f"must be a finite number {lo_s}" + ("" if hi == math.inf else f" and {hi_s}"))


def choice(*options):
    return Rule(str, lambda v: v in options, f"must be one of {', '.join(map(str, options))}")


def items(text):
    # "a, b,c" -> ("a", "b", "c"): a comma-separated list; EmptyItem for an empty item beside others
    # ("a,,b", "a,"), which a user meant to be something (a typo would otherwise drop it without a
    # word); none given ("", ",") -> (), for the option's own "give at least one"
    found = tuple(t.strip() for t in text.split(","))
    empty = next((i for i, t in enumerate(found, 1) if not t), None)
    if empty and any(found):
        raise EmptyItem(f"item {empty} is empty")
    return tuple(t for t in found if t)


def words(text):
    # "a,b c" -> ("a", "b", "c"): commas (items, no empty one) or spaces between the words
    return tuple(w for item in items(text) for w in item.split())


def parse_layers(text):
    # "conv1_1,block2_conv1", or a list of such names -> ("block1_conv1", "block2_conv1"); ValueError
    # for an unknown name or a layer given twice
    return tuple(resolve_layers(words(text) if isinstance(text, str) else text))


def layers_ok(v):
    return len(v) > 0 and all(resolve_layer(n) == n for n in v)


def parse_weights(text):
    return tuple(float(t) for t in words(text)) if isinstance(text, str) else tuple(text)


def weights_ok(v):
    return len(v) > 0 and all(math.isfinite(x) and x >= 0 for x in v) and sum(v) > 0


def optional(rule):
    # the rule, or None
    return Rule(rule.parse_text, lambda v: v is None or rule.ok(v), rule.valid)


LAYERS = Rule(parse_layers, layers_ok, "give at least one layer, e.g. block4_conv2 or conv4_2",
              own_errors=True)
WEIGHTS = Rule(parse_weights, weights_ok, "must be comma-separated finite numbers ≥ 0, not all 0")
LAYER_WEIGHTS = Rule(lambda t: AUTO if t.strip() == AUTO else parse_weights(t),
                     lambda v: v == AUTO or weights_ok(v), "must be auto or " + WEIGHTS.valid[8:])

ITERATIONS = Rule(lambda t: AUTO if t.strip() == AUTO else int(t),
                  lambda v: v == AUTO or integer(1).check(v) is None, "must be auto or a whole number ≥ 1")

# field -> its rule (the CLI option is --field-name)
RULES = {
    "size": optional(integer(16, MAX_SIDE)), "iterations": ITERATIONS,
    "optimizer": choice(*OPTIMIZERS), "lr": optional(number(lo_open=True)), "history": integer(1, 1000),
    "content_weight": number(), "style_weight": number(), "tv_weight": number(),
    "content_layers": LAYERS, "style_layers": LAYERS, "style_layer_weights": optional(LAYER_WEIGHTS),
    "style_blend": optional(WEIGHTS), "style_scale": number(lo_open=True, hi=16), "pooling": choice(*POOLINGS),
    "init": Rule(str, lambda v: v is not None, "must be an init keyword, an image file or an array"),
    "seed": integer(0, 2**32 - 1), "keep_colors": optional(choice(*KEEP_COLORS)),
    "average": number(hi=1, hi_open=True), "scales": optional(integer(1, 16)),
    "start_size": integer(16, MAX_SIDE), "backend": Rule(str, lambda v: isinstance(v, str), "must be a backend name"),
    "weights": Rule(str, lambda v: True, "must be an HDF5 file"),
    "tile": Rule(lambda t: AUTO if t.strip() == AUTO else int(t),
                 lambda v: v is None or v == AUTO or integer(0, MAX_SIDE).ok(v),
                 f"must be auto or a whole number from 0 to {MAX_SIDE}"),
}


def option_name(field):
    return "--" + field.replace("_", "-")


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything that decides the picture (SPEC.md's α, β, γ, layers, λ_l, the optimiser, the
    schedule). Output files are not settings: nst.run.job.Outputs."""
    size: int = 512                    # longest side of the output (None: the content's)
    iterations: object = AUTO          # N per scale, or "auto": the automatic schedule (nst.run.schedule)
    optimizer: str = "lbfgs"
    lr: float = None                   # None: each optimiser's own default
    history: int = optim.HISTORY       # L-BFGS pairs kept (another value with another optimizer: refused)
    content_weight: float = 1.0        # α
    style_weight: float = 10.0         # β: with λ_l "auto" every term is relative (docs/maths.md)
    tv_weight: float = 1e-3            # γ
    content_layers: tuple = DEFAULT_CONTENT_LAYERS
    style_layers: tuple = DEFAULT_STYLE_LAYERS
    style_layer_weights: object = AUTO  # "auto" (λ_l = f·m_l·E_c/(Σm·E_s^l)), None (1/|L|) or one per layer
    style_blend: tuple = None          # one weight per style image (None: equal)
    style_scale: float = 1.0
    pooling: str = "max"
    init: object = "recolored"         # INIT_KEYWORDS, an image path or an H×W×3 array
    seed: int = 0
    keep_colors: str = None
    average: float = 0.0               # EMA decay of the output (0: off)
    scales: int = None                 # coarse-to-fine scales (None: as many as start_size needs)
    start_size: int = 256
    backend: str = "auto"
    weights: object = None             # an HDF5 path, a {layer: (W, b)} dict, or None: the default file
    tile: object = AUTO                # an interior side in px: J and ∂J/∂X tile by tile (nst.tiled),
                                       # the same result; "auto": only when the picture does not fit
                                       # (decided by nst.run.checks.check_memory); 0 or None: never

    def __post_init__(self):
        # normalise (layer names, tuples) and validate every field; ValueError names the option
        for field in ("content_layers", "style_layers"):
            self._set(field, _layers_of(field, getattr(self, field)))
        for field in ("style_blend", "style_layer_weights"):
            value = getattr(self, field)
            if value is not None and value != AUTO:
                self._set(field, _tuple_of(field, value, parse_weights))
        for field, rule in RULES.items():
            error = rule.check(getattr(self, field))
            if error:
                raise SettingsError(f"{option_name(field)} {error}")
        lam = self.style_layer_weights
        if isinstance(lam, tuple) and len(lam) != len(self.style_layers):
            raise SettingsError(f"--style-layer-weights has {counted(len(lam), 'value')} for {len(self.style_layers)} "
                             "--style-layers; give one per layer")
        if self.history != optim.HISTORY and self.optimizer != "lbfgs":      # it would change nothing
            raise SettingsError(f"--history {self.history} applies to --optimizer lbfgs only (the steps L-BFGS "
                                f"keeps), not {self.optimizer}: drop --history, or use --optimizer lbfgs")

    def _set(self, field, value):
        object.__setattr__(self, field, value)

    @property
    def init_file(self):
        # the --init image file, or None (a keyword or an array)
        return init_file(self.init)

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def as_dict(self):
        # JSON-able (tuples as lists); arrays and weight dicts are left as they are
        return {f.name: list(v) if isinstance(v, tuple) else v
                for f in dataclasses.fields(self) for v in [getattr(self, f.name)]}

    def as_record(self):
        # as_dict() as JSON records it (a checkpoint's and a report's settings): arrays and weight
        # dicts by their sha256 (nst.io.assets.recorded), not numpy's summary of their corners
        return {k: recorded(v) for k, v in self.as_dict().items()}

    @classmethod
    def from_dict(cls, d):
        # {field: value} as as_dict() stores it (a manifest row) or as stylize's keywords
        # -> Settings; an error names each key as written (style_weight), not the command's flag
        unknown = set(d) - FIELDS
        command_only = sorted(unknown & set(COMMAND_ONLY))
        if command_only:
            raise TypeError(f"{', '.join(command_only)}: `nst transfer`'s, for the files it writes and how it "
                            "runs; nst.stylize takes the run's settings only, returns the picture and writes "
                            "nothing (callback=(it, x, terms) sees each iteration's image)")
        if unknown:
            raise TypeError(f"unknown option(s): {', '.join(sorted(unknown))}")
        try:
            return cls(**d)
        except SettingsError as e:
            raise e.for_api() from None


def _layers_of(field, value):
    # a list, tuple or "a,b" text of layer names (Keras' or the paper's) -> a tuple of Keras names;
    # an unknown name is a SettingsError naming the option and the name; anything else is left for
    # the rule to refuse
    if not isinstance(value, (str, list, tuple)):
        return value
    try:
        return parse_layers(value)
    except ValueError as e:
        raise SettingsError(f"{option_name(field)}: {e}") from None


def _tuple_of(field, value, parse):
    # a list, tuple or "a,b" text -> a tuple; an empty item is a SettingsError naming the option,
    # anything else is left for the rule to refuse
    try:
        return parse(value) if isinstance(value, (str, list, tuple)) else value
    except EmptyItem as e:
        raise SettingsError(f"{option_name(field)}: {e}") from None
    except ValueError:
        return value


FIELDS = {f.name for f in dataclasses.fields(Settings)}
# `nst transfer`'s options that are no setting of the run: its files and how it runs (the parser's
# other destinations; tests/test_api.py checks the two lists together)
COMMAND_ONLY = ("output", "bits", "save_every", "checkpoint", "checkpoint_every", "resume", "report",
                "dry_run", "web", "scheduler", "debug")
DEFAULTS = Settings()


def scale_sizes(size, scales, start_size):
    # longest sides, coarse to fine: ×√2 steps from start_size up to size (scales=None: as many as
    # that takes; 1: a single scale at size). Never above size: a start_size ≥ size with scales > 1
    # starts at size/√2^(scales−1) instead (at least 16 px).
    if scales is None:
        steps = math.log(size / start_size) / math.log(math.sqrt(2))
        scales = 1 if size <= start_size else 1 + math.ceil(steps - 1e-9)
    if scales < 1 or start_size < 1:
        raise ValueError(f"scales and start_size must be ≥ 1, got {scales} and {start_size}")
    if scales == 1:
        return [size]
    if start_size >= size:
        start_size = max(min(16, size), size / math.sqrt(2) ** (scales - 1))
    ratio = (size / start_size) ** (1 / (scales - 1))
    return [round(start_size * ratio ** i) for i in range(scales - 1)] + [size]
