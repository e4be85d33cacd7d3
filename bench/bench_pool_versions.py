"""The versions of a 2×2 pool kernel side by side at the VGG19 pooling shapes, in one process.

Each round runs every version once, in an order that rotates from round to round, so a host whose
speed drifts (two cores shared with other work) moves all alike; prints each version's median time,
its GB/s of compulsory traffic and the ratio v1 / version. x is a ReLU output (whole windows of
zeros, as the pools see), dy standard normal; every version is checked against v1 bit for bit and
against the NumPy reference before it is timed. Arrays come from the heap as in a run
(kernels/cpu_memory.keep_freed_pages, which the Numba backend sets).

    python bench/bench_pool_versions.py --sizes 256 512 --runs 11
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

POOL_OPS = ("maxpool2x2_backward", "maxpool2x2", "avgpool2x2", "avgpool2x2_backward")


def inputs(op, c, h, rng):
    # the op's arguments at C×h×h: (dy, x) for a backward, (x,) for a forward
    x = np.maximum(rng.standard_normal((c, h, h)), 0).astype(np.float32)
    dy = rng.standard_normal((c, h // 2, h // 2)).astype(np.float32)
    return (dy, x) if op.endswith("_backward") else (x,)


def traffic(op, c, h):
    # bytes read and written once: x (+ dy) in, dx (or y) out
    x = 4 * c * h * h
    return x + x // 4 + (x if op.endswith("_backward") else 0)


def check(op, versions, args):
    # every version equals v1 bit for bit and the reference within the tests' rule
    from nst import ops
    from nst.tolerance import mismatch
    want = versions["v1"](*args)
    for name, fn in versions.items():
        got = fn(*args)
        assert got.tobytes() == want.tobytes(), f"{op}.{name} differs from v1"
        message = mismatch(got, getattr(ops, op)(*args), 1e-6, 1e-6, f"{op}.{name}")
        assert message is None, message


def timed(versions, args, runs):
    # version -> median seconds over `runs` rounds, the order rotated each round
    names, times = list(versions), {n: [] for n in versions}
    for r in range(runs):
        for n in names[r % len(names):] + names[:r % len(names)]:
            t = time.perf_counter()
            versions[n](*args)
            times[n].append(time.perf_counter() - t)
    return {n: statistics.median(ts) for n, ts in times.items()}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--op", default="maxpool2x2_backward", choices=POOL_OPS)
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 512], help="input sides (default 256 512)")
    p.add_argument("--runs", type=int, default=11, help="rounds, each running every version once (default 11)")
    a = p.parse_args()
    from bench_kernels_cpu import POOL_LAYERS
    from nst.kernels import NUMBA
    from nst.kernels.cpu_memory import keep_freed_pages
    keep_freed_pages()
    versions = NUMBA.versions(a.op)
    rng = np.random.default_rng(0)
    others = [n for n in versions if n != "v1"]
    print(f"| {a.op} at input side | C, pool input | " + " | ".join(f"{n} ms (GB/s)" for n in versions)
          + "".join(f" | v1 / {n}" for n in others) + " |")
    print("|---" * (2 + len(versions) + len(others)) + "|")
    for s in a.sizes:
        for c, d in POOL_LAYERS:
            h = s // d
            args = inputs(a.op, c, h, rng)
            check(a.op, versions, args)
            t = timed(versions, args, a.runs)
            gb = traffic(a.op, c, h) / 1e9
            print(f"| {s} | {c}, {h}² | " + " | ".join(f"{1e3 * t[n]:.2f} ({gb / t[n]:.0f})" for n in versions)
                  + "".join(f" | {t['v1'] / t[n]:.2f}" for n in others) + " |", flush=True)


if __name__ == "__main__":
    main()
