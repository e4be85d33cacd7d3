"""What L-BFGS's memory costs in time to a picture: a shorter history, or its pairs stored in float16.

L-BFGS keeps 2 × history image-sized vectors (s, y). What is measured (tubingen.jpg in the style of
starry_night.jpg at --size, default layers and weights, X0 = the content image, nst.optim.LBFGS as
nst.run.run steps it, Numba): history 20 (the default) runs --iterations iterations; its final J
is the target. Each variant then runs from the same X0 until J ≤ target (at most 3× the
iterations). Reported: evaluations of J and ∂J/∂X to the target (each costs the same, so this is
time to a picture on any machine), wall time (a shared machine: indicative only), and the
optimiser's bytes per pixel ((2m + 4) vectors of 3 floats; float16 pairs: 2m at 2 bytes).

    python bench/bench_lbfgs_memory.py --size 256 --iterations 60
"""
import argparse
import sys
import time
from collections import deque
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
from shared_images import image  # noqa: E402


def half(v):
    # v float32 -> (v / max|v| in float16, max|v|): gradients reach 1e6, past float16's 65504
    scale = float(np.max(np.abs(v))) or 1.0
    return (v / scale).astype(np.float16), scale


def full(packed):
    v, scale = packed
    return v.astype(np.float32) * np.float32(scale)


class HalfPairs(deque):
    """L-BFGS's (s, y, ρ) history with s and y stored in float16, each scaled by its max (read back
    as float32 in use; ρ = 1/(yᵀs) of the float32 pair)."""

    def append(self, pair):
        s, y, rho = pair
        super().append((half(s), half(y), rho))

    def __iter__(self):
        return ((full(s), full(y), rho) for s, y, rho in deque.__iter__(self))

    def __reversed__(self):
        return ((full(s), full(y), rho) for s, y, rho in deque.__reversed__(self))

    def __getitem__(self, i):
        s, y, rho = deque.__getitem__(self, i)
        return full(s), full(y), rho


def run(obj, x0, history, half, target, max_iterations):
    # -> (evaluations, iterations, J, wall s) of nst's L-BFGS until J ≤ target
    from nst.optim import LBFGS
    shape = x0.shape

    def fun(x_flat):
        total, _, _, grad = obj.evaluate(x_flat.reshape(shape))
        return float(total), grad.reshape(-1)
    opt = LBFGS(x0.reshape(-1).astype(np.float32), history=history)
    if half:
        opt.pairs = HalfPairs(maxlen=history)
    t = time.perf_counter()
    while opt.iteration < max_iterations and (opt.g is None or opt.f > target) and not opt.stopped:
        opt.step(fun)
    return opt.evaluations, opt.iteration, opt.f, time.perf_counter() - t


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--iterations", type=int, default=60)
    p.add_argument("--variants", nargs="+", default=["10", "5", "20h", "5h"],
                   help="history sizes; a trailing h stores the pairs in float16")
    p.add_argument("--target", type=float, default=None,
                   help="the target J (default: what history 20 reaches in --iterations)")
    args = p.parse_args(argv)
    from nst.io.image import load_image, resize_longest
    from nst.objective import Objective
    content = resize_longest(load_image(image("tubingen.jpg")), args.size)
    style = resize_longest(load_image(image("starry_night.jpg")), args.size)
    obj = Objective(content, style, content_weight=1.0, style_weight=10.0, tv_weight=1e-3,
                    style_layer_weights="auto", backend="numba", log=lambda m: None)
    obj(content)                                                        # warm-up
    if args.target is None:
        evals, its, target, wall = run(obj, content, 20, False, -np.inf, args.iterations)
        print(f"{content.shape[1]}×{content.shape[0]}: target J = {target!r} (history 20, {its} "
              f"iterations, {evals} evaluations, {wall:.0f} s)")
    else:
        target = args.target
        print(f"{content.shape[1]}×{content.shape[0]}: target J = {target!r} (given)")
    print("| history | pairs stored as | optimiser bytes/px | evaluations to target | iterations | "
          "wall s | reached |")
    print("|---|---|---|---|---|---|---|")
    for v in args.variants:
        m, half = int(v.rstrip("h")), v.endswith("h")
        e, i, j, w = run(obj, content, m, half, target, 3 * args.iterations)
        per_px = 3 * (4 * 4 + 2 * m * (2 if half else 4))
        print(f"| {m} | {'float16' if half else 'float32'} | {per_px} | {e} | {i} | {w:.0f} | "
              f"{'yes' if j <= target else f'no (J {j:.6g})'} |", flush=True)


if __name__ == "__main__":
    main()
