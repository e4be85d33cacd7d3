"""What every library entry point keeps (nst.Objective, the optimisers, Run, Job, nst.weights): a bad
number is a ValueError naming the argument, and messages go to the "nst" logger, silent unless the
caller sets logging up (the CLI passes its own `log`, which prints on stderr: nst.run.progress.log).
"""
import logging
import math
import numbers


def log_to_logger(msg):
    # the library's messages (a weights download, a resume, a stop): the "nst" logger at INFO
    logging.getLogger("nst").info(msg.strip())


def as_float(value):
    # float(value), or NaN where it is no number (None, text, a list): every check below refuses NaN
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def finite_number(name, value, positive=False):
    # a finite number ≥ 0 (> 0 when positive), else ValueError naming it: a weight α, β, γ, λ_l or
    # of a blend (a NaN or negative weight makes J meaningless), a step size lr (positive: 0 never
    # moves, a negative one climbs J, NaN poisons x)
    v = as_float(value)
    if not (math.isfinite(v) and (v > 0 if positive else v >= 0)):
        raise ValueError(f"{name} must be a finite number {'>' if positive else '≥'} 0, got {value!r}")
    return v


def fraction(name, value, open_low=False):
    # a number in [0, 1) ((0, 1) when open_low), else ValueError naming it: Adam's β₁, β₂, Armijo's c₁
    v = as_float(value)
    if not (0 < v < 1 if open_low else 0 <= v < 1):
        raise ValueError(f"{name} must be a number in {'(' if open_low else '['}0, 1), got {value!r}")
    return v


def whole_number(name, value):
    # an integer ≥ 1, else ValueError naming it: L-BFGS's history, its line search's trials, a tile's side
    if not (isinstance(value, numbers.Integral) and value >= 1):
        raise ValueError(f"{name} must be a whole number ≥ 1, got {value!r}")
    return int(value)


def counted(n, noun, plural=None):
    # 1, "frame" -> "1 frame"; 0 or 3 -> "3 frames" (plural: when not noun + "s"): a count and its noun, agreeing
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def fps_text(fps):
    # a frame rate as people write it: 59.94006 -> "59.94 fps", 24000/1001 -> "23.976 fps", 25.0 ->
    # "25 fps" (three decimals, as NTSC's rates are named; below 1 fps three significant digits); a
    # Fraction (PyAV's rates) as its float: Fraction takes no "g" format before Python 3.12
    fps = float(fps)
    return f"{round(fps, 3) if fps >= 1 else float(f'{fps:.3g}'):g} fps"
