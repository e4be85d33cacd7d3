"""Hand-written optimisers over a flat image vector x (any array module: numpy or cupy).

Each optimiser holds its state and advances one iteration per `step(fun)`, where
fun(x) -> (J, ∂J/∂x) evaluates the objective (J may stay on the device: only L-BFGS's line
search reads it on the host). The image lives in pixel units 0..255; GD and Adam clip each step
into that box, L-BFGS (unconstrained) leaves clipping to the output.
"""
import contextlib
import math
import threading
import warnings

import numpy as np

from .library import counted, finite_number, fraction, whole_number
from .backends.backend import to_host, xp_of
from .lbfgs import PairHistory
from .ops import adam_step

HISTORY = 20     # L-BFGS pairs kept by default: LBFGS's, make_optimizer's, --history's (nst.run.settings)

LO, HI = 0.0, 255.0


def float_array(x):
    # x, the optimised vector: a NumPy or CuPy array of floats with at least one element, else a
    # TypeError / ValueError naming it (a list or integers failed deep inside a step)
    if not (isinstance(x, np.ndarray) or type(x).__module__.startswith("cupy")):
        raise TypeError(f"x must be a NumPy or CuPy array of floats (the image, flattened), got {type(x).__name__}")
    if x.dtype.kind != "f":
        raise TypeError(f"x must be an array of floats (float32 or float64), got {x.dtype}")
    if x.size == 0:
        raise ValueError("x is empty: there is nothing to optimise")
    return x


class NonFiniteLoss(FloatingPointError):
    """fun(x) found J or ∂J/∂x NaN or inf. GD and Adam stop before stepping (x stays the last
    good image); L-BFGS treats the trial point as a failed line-search step and backs off. L-BFGS
    also raises it itself when fun(x) returns a NaN or inf J at its starting point, or such a gradient."""


OVERFLOW = r"(overflow|invalid value|divide by zero) encountered"     # NumPy's floating-point warnings


@contextlib.contextmanager
def overflow_unwarned():
    # NumPy's overflow, invalid-value and divide-by-zero warnings silenced in the block: a run finds
    # non-finite values itself and says so in one line (NonFiniteLoss)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", OVERFLOW, RuntimeWarning)
        yield


class Abandoned(Exception):
    """fun(x) gave up its evaluation (a stop was asked): `step` lets it through with the optimiser's
    state as it was before the iteration, so a checkpoint of it resumes bit for bit."""


class Stateful:
    """state() -> {name: host array or number}; restore(state) puts it back (checkpoints)."""
    ARRAYS = ("x",)
    SCALARS = ("iteration", "evaluations")
    OPTIONAL = ()                        # floats that are None until known, saved once they are
    WRITES_X = False                     # step writes into x in place (else it replaces x with a new array)

    def state(self):
        out = {k: to_host(getattr(self, k)) for k in self.ARRAYS if getattr(self, k) is not None}
        out.update({k: getattr(self, k) for k in self.SCALARS})
        out.update({k: float(getattr(self, k)) for k in self.OPTIONAL if getattr(self, k) is not None})
        return out

    def restore(self, state):
        xp = xp_of(self.x)
        for k in self.ARRAYS:
            setattr(self, k, xp.asarray(state[k]) if k in state else None)
        for k in self.SCALARS:
            setattr(self, k, type(getattr(self, k))(state[k]))
        for k in self.OPTIONAL:
            setattr(self, k, float(state[k]) if k in state else None)

    def fields(self):
        # {name: value} of what state() saves, by reference (nothing copied): enough to put back a
        # step that replaces these arrays and never writes into them (LBFGS.step)
        return {k: getattr(self, k) for k in (*self.ARRAYS, *self.SCALARS, *self.OPTIONAL)}


class GradientDescent(Stateful):
    """x ← clip(x − lr·∇J): the method of the talk."""

    def __init__(self, x, lr):
        self.x, self.lr, self.iteration, self.evaluations = float_array(x), finite_number("lr", lr, positive=True), 0, 0

    def step(self, fun):
        j, g = fun(self.x)
        xp = xp_of(self.x)
        self.x = xp.clip(self.x - self.lr * g, LO, HI)
        self.iteration += 1
        self.evaluations += 1
        return j


class Adam(Stateful):
    """Adam (Kingma & Ba) with the pixels clipped to 0..255; `kernel` does one fused update. It
    writes into x under `x_lock`, counting the write in `iteration`: a reader on another thread (the
    live page: nst.run.run.Run.output_later) reads x under it, whole, or sees that it has moved on."""

    ARRAYS = ("x", "m", "v")
    WRITES_X = True                      # the fused kernel updates x, m, v in place

    def __init__(self, x, lr, beta1=0.9, beta2=0.999, eps=1e-8, kernel=adam_step):
        xp = xp_of(float_array(x))
        self.x, self.lr = x, finite_number("lr", lr, positive=True)
        self.beta1, self.beta2 = fraction("beta1", beta1), fraction("beta2", beta2)
        self.eps = finite_number("eps", eps, positive=True)
        self.m, self.v = xp.zeros_like(x), xp.zeros_like(x)
        self.iteration = self.evaluations = 0
        self.kernel = kernel
        self.x_lock = threading.Lock()

    def step(self, fun):
        j, g = fun(self.x)
        with self.x_lock:
            self.iteration += 1
            self.evaluations += 1
            self.kernel(self.x, g, self.m, self.v, self.iteration, self.lr, self.beta1, self.beta2,
                        self.eps, LO, HI)
        return j


class LBFGS(Stateful):
    """L-BFGS over the last `history` pairs (s = x_{k+1} − x_k, y = g_{k+1} − g_k), then a
    backtracking Armijo line search. Unlike the Wolfe search of Nocedal & Wright's Alg. 7.5, Armijo
    does not guarantee yᵀs > 0, so a pair without it is skipped. d = −H g is computed in the compact
    form of Byrd, Nocedal & Schnabel (`PairHistory`), the same H as the two-loop recursion (N&W
    Alg. 7.4, `two_loop`) in a few matrix products (docs/maths.md "Optimisers" derives all of this).

    A non-descent direction or a failed line search drops the history (logged once per reason) and
    retries from steepest descent within the same iteration. It stops (`stopped` says why; `step`
    then returns at once) when J can no longer be decreased measurably: an iteration decreased J by
    less than ftol·|J|, ‖g‖_∞ fell to gtol·‖g_0‖_∞, or steepest descent found no decrease before
    the expected decrease t·|gᵀd| fell below ftol·|J| (J is evaluated in float32: ~1e-7 relative).
    """

    ARRAYS = ("x", "g")
    SCALARS = ("iteration", "evaluations", "resets", "f")
    OPTIONAL = ("g0",)                                   # ‖g₀‖∞, the gtol rule's reference

    def __init__(self, x, history=HISTORY, lr=1.0, c1=1e-4, max_backtracks=20, ftol=1e-6, gtol=1e-9, log=None):
        self.x, self.lr = float_array(x), finite_number("lr", lr, positive=True)
        self.c1, self.max_backtracks = fraction("c1", c1, open_low=True), whole_number("max_backtracks", max_backtracks)
        self.ftol, self.gtol = finite_number("ftol", ftol), finite_number("gtol", gtol)
        self.pairs = PairHistory(whole_number("history", history))
        self.f, self.g, self.g0 = 0.0, None, None
        self.iteration = self.evaluations = self.resets = 0
        self.stopped = None                              # why it stopped, once it has
        self.logged = set()                              # reset reasons already logged
        self.log = log or (lambda msg: None)

    def _eval(self, fun, x):
        self.evaluations += 1
        j, g = fun(x)
        return float(j), g

    def direction(self, g):
        # -> (d = −H g, gᵀd, ‖g‖∞), H the L-BFGS matrix of the stored pairs (H₀ = I without any)
        return self.pairs.direction(g)

    def line_search(self, fun, d, gtd, t):
        # backtracking Armijo from step t -> (x, J, g) at the accepted point, or None once the
        # decrease a step t would give, t·|gᵀd|, is below what J resolves (ftol·|J|)
        for _ in range(self.max_backtracks):
            if t * -gtd < self.ftol * abs(self.f):
                return None
            x_new = self.x + t * d
            try:
                f_new, g_new = self._eval(fun, x_new)
                if f_new <= self.f + self.c1 * t * gtd:      # Armijo: sufficient decrease
                    return x_new, f_new, g_new
            except NonFiniteLoss:                         # overshot into NaN/inf: back off
                pass
            t *= 0.5
        return None

    def step(self, fun):
        # one iteration (or nothing, once stopped) -> J at the current x; fun raising Abandoned (in
        # the line search) drops the unfinished iteration: the state is put back as it was before it.
        # Until its last evaluation an iteration only replaces what state() saves (fields) and may
        # clear the pairs (a reset empties their order, the rows stay): those two are put back.
        before, order = self.fields(), self.pairs.rows.copy()
        try:
            return self._iterate(fun)
        except Abandoned:
            self.__dict__.update(before)
            self.pairs.rows = order
            raise

    def _iterate(self, fun):
        if self.stopped:
            return self.f
        if self.g is None:                                # the first evaluation: J must be finite there
            f, g = self._eval(fun, self.x)
            if not math.isfinite(f):
                raise NonFiniteLoss(f"J is {f} at the starting point: L-BFGS needs a finite J there")
            self.f, self.g = f, g
        while True:                                       # at most twice: after a reset d = −g
            d, gtd, g_max = self.direction(self.g)
            if not math.isfinite(g_max):                  # NaN would read as "no descent": converged
                raise NonFiniteLoss(f"∂J/∂x holds NaN or inf at iteration {self.iteration + 1}'s start: "
                                    "L-BFGS cannot step")
            self.g0 = g_max if self.g0 is None else self.g0
            if g_max <= self.gtol * self.g0:
                return self._stop(f"‖g‖∞ = {g_max:.3g} is ≤ {self.gtol:g} × the first gradient's")
            # No curvature known yet (first step, or after a reset): the Polyak step J/‖g‖² (×lr),
            # the step that would reach J = 0 were J linear; the line search shortens it.
            t = 1.0 if len(self.pairs) else self.lr * self.f / max(-gtd, 1e-30)
            found = self.line_search(fun, d, gtd, t) if gtd < 0 else None
            if found is not None:
                break
            why = "not a descent direction" if gtd >= 0 else "line search found no decrease"
            if not len(self.pairs):
                return self._stop(f"{why} along steepest descent: J is as low as float32 resolves")
            self._reset(why)
        x_new, f_new, g_new = found
        self.pairs.add(x_new - self.x, g_new - self.g)   # kept only with curvature, yᵀs > 0
        decrease = self.f - f_new
        self.x, self.f, self.g = x_new, f_new, g_new
        self.iteration += 1
        if decrease <= self.ftol * abs(self.f):
            self._stop(f"J decreased by {decrease / max(abs(self.f), 1e-300):.2g} (relative), "
                       f"≤ ftol = {self.ftol:g}")
        return self.f

    def _stop(self, why):
        self.stopped = why
        self.log(f"L-BFGS stopped after {counted(self.iteration, 'iteration')}, "
                 f"{counted(self.evaluations, 'evaluation')}: {why}"
                 + (f" (history cleared {self.resets}×)" if self.resets else ""))
        return self.f

    def state(self):
        # + the pairs
        return {**super().state(), **self.pairs.state()}

    def restore(self, state):
        # a state of this nst puts back the history's rows and products exactly; an older one's
        # pairs are added again, oldest first (products recomputed)
        super().restore(state)
        xp = xp_of(self.x)
        self.pairs.clear()
        s_list, y_list = history_arrays(state)
        if "pairs_rows" in state:
            self.pairs.load(s_list, y_list, state["pairs_rows"], state["pairs_sy"], state["pairs_yy"], xp)
        else:
            for s, y in zip(s_list, y_list):
                self.pairs.add(xp.asarray(s), xp.asarray(y))

    def _reset(self, why):
        # drop the history; logged the first time for each reason, counted always
        self.resets += 1
        if why not in self.logged:
            self.logged.add(why)
            self.log(f"L-BFGS iteration {self.iteration + 1}: {why}; history cleared "
                     "(logged once; the count is reported when it stops)")
        self.pairs.clear()


DEFAULT_GD_LR = 1e-8
# name -> optimiser: the one list of them (--optimizer's choices: nst.run.settings.OPTIMIZERS)
OPTIMIZERS = {"lbfgs": LBFGS, "adam": Adam, "gd": GradientDescent}


def make_optimizer(name, x, lr=None, history=HISTORY, log=None, adam_kernel=None):
    # a name of OPTIMIZERS -> its optimiser over x, with its own default step size
    kind = OPTIMIZERS.get(name)
    if kind is None:
        *most, last = OPTIMIZERS
        raise ValueError(f"unknown optimizer {name!r}: use {', '.join(most)} or {last}")
    if kind is LBFGS:
        return LBFGS(x, history=history, lr=1.0 if lr is None else lr, log=log)
    if kind is Adam:
        return Adam(x, lr=10.0 if lr is None else lr, kernel=adam_kernel or adam_step)
    return kind(x, lr=DEFAULT_GD_LR if lr is None else lr)


def history_arrays(state):
    # -> (s vectors, y vectors) of an L-BFGS state, oldest first: pairs_s.k / pairs_y.k (as many as
    # pairs_rows, or pairs_rho before it), or the k×N stacks pairs_s / pairs_y of checkpoints written
    # before per-vector arrays; KeyError if a vector is missing
    if "pairs_s" in state:
        return state["pairs_s"], state["pairs_y"]
    k = len(state["pairs_rows"] if "pairs_rows" in state else state.get("pairs_rho", []))
    return [state[f"pairs_s.{j}"] for j in range(k)], [state[f"pairs_y.{j}"] for j in range(k)]
