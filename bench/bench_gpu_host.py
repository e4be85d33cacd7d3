"""GPU: what the host spends per operation, and L-BFGS's direction two ways, side by side.

A small picture on a GPU is bound by the host: Python and kernel launches, not the GPU's
arithmetic (bench/RESULTS.md "The GPU check"). For each operation: N calls back to back, then one
synchronisation; `host` is the time until the last call returned, `wall` until the GPU finished.
Where the two agree, the host bounds that operation. Then one evaluation of J and ∂J/∂X at the
default picture's three scales (random VGG19 weights at the real shapes, as
bench_gpu_evaluation.py), and L-BFGS's direction with 20 pairs: the compact form nst runs
(nst.lbfgs.PairHistory.direction) against the two-loop recursion on the same device arrays
(nst.lbfgs.two_loop), with the ratio.

    python bench/bench_gpu_host.py [--out FILE]      (needs a GPU and CuPy)
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path[:0] = [os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")]

from bench_gpu_evaluation import images, random_vgg  # noqa: E402

SCALES = ((192, 256), (272, 362), (384, 512))        # the default 512 px picture's scales, 4:3


def per_call(fn, n):
    # -> (host µs, wall µs) per call over n calls with one synchronisation at the end
    import cupy as cp
    fn()
    cp.cuda.Device().synchronize()
    t = time.perf_counter()
    for _ in range(n):
        fn()
    host = time.perf_counter() - t
    cp.cuda.Device().synchronize()
    return host / n * 1e6, (time.perf_counter() - t) / n * 1e6


def operations():
    # [(name, fn, calls)] for the small operations an L-BFGS iteration and an evaluation are made of
    import cupy as cp
    n = 3 * 256 * 192
    s, q, y = (cp.random.rand(n, dtype=cp.float32) for _ in range(3))
    a, b, o = (cp.random.rand(*sh, dtype=cp.float32) for sh in ((64, 576), (576, 64), (64, 64)))
    rows = cp.random.rand(20, n, dtype=cp.float32)
    alpha = cp.vdot(s, q)
    noop = cp.RawKernel(r'extern "C" __global__ void noop(float* x) {}', "noop")
    return [("a no-op RawKernel launch", lambda: noop((1,), (32,), (s,)), 2000),
            ("cupy.empty (64×32×32)", lambda: cp.empty((64, 32, 32), cp.float32), 2000),
            ("cupy.vdot(s, q), N = 3·256·192", lambda: cp.vdot(s, q), 2000),
            ("q -= alpha * y (alpha a 0-d array)", lambda: q.__isub__(alpha * y), 2000),
            ("cupy.matmul 64×576 @ 576×64, out=", lambda: cp.matmul(a, b, out=o), 2000),
            ("rows @ q, rows 20 × N (gemv)", lambda: rows @ q, 1000),
            ("float(cupy.vdot(s, q)) (a read to the host)", lambda: float(cp.vdot(s, q)), 500)]


def evaluation_rows():
    # [(name, host µs, wall µs)] for one evaluation at each scale of the default picture
    import cupy as cp
    from nst.objective import Objective
    params, out = random_vgg(), []
    for h, w in SCALES:
        content, style, _ = (np.ascontiguousarray(a[:h, :w]) for a in images(max(h, w)))
        obj = Objective(content, style, content_weight=1, style_weight=1e3, tv_weight=1e-3,
                        weights=params, backend="cupy", log=lambda m: None)
        x = cp.asarray(content)
        out.append((f"one evaluation, {w}×{h}", *per_call(lambda: obj.evaluate(x), 20)))
    return out


def direction_rows(pairs=20):
    # the direction d = −H g with `pairs` pairs at the coarsest scale: compact form vs two-loop
    import cupy as cp
    from nst.lbfgs import PairHistory, two_loop
    n = 3 * SCALES[0][0] * SCALES[0][1]
    cp.random.seed(0)
    history = PairHistory(pairs)
    for _ in range(pairs):
        s = cp.random.standard_normal(n, dtype=cp.float32)
        history.add(s, s * cp.random.uniform(0.5, 4.0, n, dtype=cp.float32))
    g = cp.random.standard_normal(n, dtype=cp.float32)
    listed = list(history)
    compact = per_call(lambda: history.direction(g), 200)
    loops = per_call(lambda: two_loop(g, listed), 200)
    d = history.direction(g)[0]
    diff = float(cp.abs(d + two_loop(g, listed)).max() / cp.abs(d).max())
    return compact, loops, diff


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None, help="markdown file (default $OUT/bench_gpu_host.md)")
    args = ap.parse_args(argv)
    import cupy as cp
    rows = [(name, *per_call(fn, calls)) for name, fn, calls in operations()] + evaluation_rows()
    compact, loops, diff = direction_rows()
    props = cp.cuda.runtime.getDeviceProperties(0)
    lines = ["# Host time per operation on the GPU path (bench/bench_gpu_host.py)", "",
             f"GPU: {props['name'].decode() if isinstance(props['name'], bytes) else props['name']}; "
             f"cupy {cp.__version__}; {os.cpu_count()} CPU cores", "",
             "| operation | host µs / call | wall µs / call |", "|---|---|---|"]
    lines += [f"| {name} | {host:.1f} | {wall:.1f} |" for name, host, wall in rows]
    lines += ["", "| L-BFGS direction, 20 pairs, N = 3·256·192 | host µs | wall µs |", "|---|---|---|",
              f"| compact form (nst.lbfgs.PairHistory.direction) | {compact[0]:.0f} | {compact[1]:.0f} |",
              f"| two-loop recursion (nst.lbfgs.two_loop) | {loops[0]:.0f} | {loops[1]:.0f} |",
              f"| compact / two-loop | {compact[0] / loops[0]:.2f} | {compact[1] / loops[1]:.2f} |", "",
              f"The two directions agree to {diff:.1e} (max |difference| / max |d|)."]
    text = "\n".join(lines)
    print(text)
    out = args.out or os.path.join(os.environ.get("OUT") or "gpu_out", "bench_gpu_host.md")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        f.write(text + "\n")


if __name__ == "__main__":
    main()
