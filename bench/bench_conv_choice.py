"""A whole evaluation with the Numba backend's CHOSEN kernels against an alternative choice, paired.

Two Objectives in one process (tubingen.jpg in the style of starry_night.jpg, squared to SIZE²,
real weights, X = the content): one prepared with CHOSEN as shipped, one with the entries of
--alternative in its place. Their evaluations alternate (which goes first alternates too), so a
host whose speed drifts moves both alike; prints the median of the paired time ratios
(shipped / alternative) with its interquartile range, and how far ∂J/∂X and J move.

    python bench/bench_conv_choice.py --size 256 --pairs 24        # default: F(2×2) on the 512-input layers
    python bench/bench_conv_choice.py --size 512 --pairs 10 --alternative '{"conv3x3_relu": {"3": "v1", "*": "v5"}}'
    python bench/bench_conv_choice.py --size 256 --pairs 24 --alternative '{"maxpool2x2_backward": {"*": "v1"}}'
Any op of CHOSEN can be replaced: a conv op's entry by layer (input channels, "*"), another op's as
"*" (or as the version's name alone).
"""
import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
from shared_images import image  # noqa: E402


def f2_on_512():
    # the shipped conv choice with F(2×2) (v4) on the 512-input layers instead, as --alternative's JSON
    from nst.backends.numba_backend import CHOSEN
    return {op: {**{str(k): v for k, v in CHOSEN[op].items()}, "512": "v4"}
            for op in ("conv3x3_relu", "conv3x3_relu_backward_input")}


def objectives(side, alternative):
    # (shipped, alternative): Objectives prepared under each CHOSEN table
    import nst.backends.numba_backend as nb
    from nst.io.image import load_image, resize_longest
    from nst.objective import Objective
    c = np.ascontiguousarray(np.resize(resize_longest(load_image(image("tubingen.jpg")), side), (side, side, 3)))
    s = resize_longest(load_image(image("starry_night.jpg")), side)
    kw = dict(content_weight=1, style_weight=10, tv_weight=1e-3, style_layer_weights="auto", backend="numba",
              log=lambda m: None)
    shipped, saved = Objective(c, s, **kw), dict(nb.CHOSEN)
    nb.CHOSEN.update({op: ({int(k) if k.isdigit() else k: v for k, v in entry.items()} if isinstance(entry, dict)
                           else entry) for op, entry in alternative.items()})
    try:
        other = Objective(c, s, **kw)
    finally:
        nb.CHOSEN.clear()
        nb.CHOSEN.update(saved)
    return shipped, other, c


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--pairs", type=int, default=10)
    p.add_argument("--alternative", type=json.loads, default=None,
                   help="CHOSEN entries, as JSON (default: the shipped ones with F(2×2) on the 512-input layers)")
    a = p.parse_args()
    shipped, other, x = objectives(a.size, a.alternative or f2_on_512())
    from nst.backends.backend import CONV_OPS, OPS
    differ = [op for op in OPS if op not in CONV_OPS and getattr(shipped.be, op) is not getattr(other.be, op)]
    print(f"the alternative's other kernels (besides its conv layers'): {', '.join(differ) or 'none'}")
    r0, r1 = shipped(x), other(x)                           # warm-up, and how far the results move
    grad = np.linalg.norm(r0.grad - r1.grad) / np.linalg.norm(r1.grad)
    print(f"{a.size}²: ∂J/∂X shipped vs alternative, relative L2 {grad:.2g}; "
          f"J relative {abs(r0.total - r1.total) / abs(r1.total):.2g}")
    paired(a.size, a.pairs, shipped, other, x)


def paired(side, pairs, shipped, alternative, x):
    # evaluations of x by shipped(x) and alternative(x) alternating, which goes first alternating too;
    # prints both medians and the median (IQR) of the paired time ratios shipped / alternative
    ratios, times = [], {"shipped": [], "alternative": []}
    for i in range(pairs):
        order = [("shipped", shipped), ("alternative", alternative)][::1 if i % 2 == 0 else -1]
        pair = {}
        for name, evaluate in order:
            t = time.perf_counter()
            evaluate(x)
            pair[name] = time.perf_counter() - t
            times[name].append(pair[name])
        ratios.append(pair["shipped"] / pair["alternative"])
    q = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
    print(f"{side}²: shipped {statistics.median(times['shipped']):.3f} s, alternative "
          f"{statistics.median(times['alternative']):.3f} s (medians); shipped / alternative, median of "
          f"{pairs} paired ratios: {statistics.median(ratios):.3f} (IQR {q[0]:.3f}–{q[2]:.3f})")

if __name__ == "__main__":
    main()
