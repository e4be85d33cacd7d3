"""What every library entry point keeps (nst.Objective, the optimisers, Run, Job, nst.weights): a bad
number is a ValueError naming the argument, and messages go to the "nst" logger, silent unless the
caller sets logging up (the CLI passes its own `log`, which prints on stderr: nst.run.progress.log).
"""
import logging
import math


def log_to_logger(msg):
    # the library's messages (a weights download, a resume, a stop): the "nst" logger at INFO
    logging.getLogger("nst").info(msg.strip())


def finite_number(name, value, positive=False):
    # a finite number ≥ 0 (> 0 when positive), else ValueError naming it: a weight α, β, γ, λ_l or
    # of a blend (a NaN or negative weight makes J meaningless), a step size lr (positive: 0 never
    # moves, a negative one climbs J, NaN poisons x)
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = math.nan
    if not (math.isfinite(v) and (v > 0 if positive else v >= 0)):
        raise ValueError(f"{name} must be a finite number {'>' if positive else '≥'} 0, got {value!r}")
    return v
