"""GPU: one evaluation of J and ∂J/∂X, and optimiser iterations, nst (CuPy + kernels/cuda) vs PyTorch.

At each size (square, default 512, 1024, 2048) and with the default layers and weights: nst's cupy
backend as shipped (FP32 CUDA kernels), nst with the TF32 tensor-core conv kernels swapped in, and
PyTorch + cuDNN (bench/torch_reference.py) in FP32 and in TF32 — all on the same GPU, in one run.
Times use CUDA events after warm-up (median of a few). Peak device memory: CuPy's pool after a
fresh start (nst) and torch.cuda.max_memory_allocated (PyTorch). The network weights are random
(He-scaled) at VGG19's real shapes: the work is the same as with the real weights, and nothing
needs to travel to the GPU machine. Before timing, nst's J and gradient are checked against
PyTorch's at the smallest size. Also times 20 iterations of nst's Adam and L-BFGS on the device.

    python bench/bench_gpu_evaluation.py [--sizes 512,1024,2048] [--iterations 20] [--out FILE]
"""
import argparse
import dataclasses
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from bench_gpu import time_gpu  # noqa: E402
from nst.spec import CONV_LAYERS  # noqa: E402

OPTIMISER_SIZE = 512        # the optimisers' iterations are timed at OPTIMISER_SIZE² whatever --sizes


def random_vgg(seed=0):
    r = np.random.default_rng(seed)
    return {n: ((r.standard_normal((o, i, 3, 3)) * np.sqrt(2.0 / (9 * i))).astype(np.float32),
                (0.01 * r.standard_normal(o)).astype(np.float32)) for n, i, o in CONV_LAYERS}


def images(size, seed=1):
    r = np.random.default_rng(seed)
    base = r.uniform(0, 255, (size // 8, size // 8, 3)).astype(np.float32)
    up = np.kron(base, np.ones((8, 8, 1), np.float32))                 # smooth-ish content
    return up, r.uniform(0, 255, (size, size, 3)).astype(np.float32), up + r.normal(0, 8, up.shape).astype(np.float32)


def tf32_backend(be):
    # be with every layer's conv, forward and backward, on the TF32 tensor-core kernels
    from nst.kernels.cuda import get
    fwd, bwd = (get(op, "v3_wmma_tf32") for op in ("conv3x3_relu", "conv3x3_relu_backward_input"))
    return dataclasses.replace(be, conv3x3_relu=lambda x, layer, b: fwd(x, layer.weights, b),
                               conv3x3_relu_backward_input=lambda da, a, layer: bwd(da, a, layer.weights))


def nst_case(be, content, style, x, params):
    import cupy as cp
    from nst.objective import Objective
    pool = cp.get_default_memory_pool()
    pool.free_all_blocks()
    obj = Objective(content, style, content_weight=1, style_weight=1e3, tv_weight=1e-3,
                    weights=params, backend=be)
    xd = cp.asarray(x)
    seconds = time_gpu(lambda: obj.evaluate(xd), max_iters=5) / 1e3
    total, _, _, grad = obj.evaluate(xd)
    return seconds, pool.total_bytes(), float(total), cp.asnumpy(grad)


def torch_case(torch, tf32, content, style, x, params):
    from torch_reference import TorchObjective
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    obj = TorchObjective(content, style, weights=params, device="cuda")
    xt = obj._tensor(x)
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    obj.loss_and_grad(xt)
    times = []
    for _ in range(5):
        start.record()
        obj.loss_and_grad(xt)
        stop.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(stop) / 1e3)
    total, grad = obj.loss_and_grad(xt)
    return float(np.median(times)), torch.cuda.max_memory_allocated(), float(total), grad.cpu().numpy()


def iterations(be, content, style, params, optimizer, n=20):
    import cupy as cp
    from nst.run.run import Run
    from nst.run.settings import Settings
    run = Run(content, style, Settings(size=None, iterations=n, optimizer=optimizer, weights=params,
                                   backend=be.name, scales=1))
    cp.cuda.Device().synchronize()
    t = time.perf_counter()
    run.run()
    cp.cuda.Device().synchronize()
    return (time.perf_counter() - t) / n, run.history[-1]["total"] / run.history[0]["total"]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="512,1024,2048")
    p.add_argument("--iterations", type=int, default=20, help=f"of each optimiser at {OPTIMISER_SIZE}²")
    p.add_argument("--out", default=os.path.join(os.environ.get("OUT") or "gpu_out", "bench_gpu_evaluation.md"))
    args = p.parse_args(argv)
    from nst.backends import get_backend
    be = get_backend("cupy")
    try:
        import torch
        torch = torch if torch.cuda.is_available() else None
    except ImportError:
        torch = None
    params = random_vgg()
    lines = ["# One evaluation of J and ∂J/∂X on the GPU: nst vs PyTorch", "",
             "| size | implementation | s / evaluation | vs PyTorch same precision | peak device MiB "
             "| J rel. diff vs torch FP32 |",
             "|---|---|---|---|---|---|"]
    for size in (int(s) for s in args.sizes.split(",")):
        content, style, x = images(size)
        rows = {}
        cases = [("nst FP32", lambda: nst_case(be, content, style, x, params)),
                 ("nst TF32 conv", lambda: nst_case(tf32_backend(be), content, style, x, params))]
        if torch:
            cases += [("torch FP32", lambda: torch_case(torch, False, content, style, x, params)),
                      ("torch TF32", lambda: torch_case(torch, True, content, style, x, params))]
        for name, case in cases:
            try:
                rows[name] = case()
            except Exception as e:  # noqa: BLE001 - report and go on (e.g. out of memory at 2048²)
                rows[name] = e
        ref = rows.get("torch FP32")
        for name, r in rows.items():
            if isinstance(r, Exception):
                lines.append(f"| {size}² | {name} | failed: {type(r).__name__}: {str(r)[:80]} | | | |")
                continue
            base = rows.get("torch TF32" if "TF32" in name else "torch FP32")
            ratio = f"{r[0] / base[0]:.2f}" if base is not None and not isinstance(base, Exception) else "-"
            usable = ref is not None and not isinstance(ref, Exception)
            diff = f"{abs(r[2] - ref[2]) / abs(ref[2]):.1e}" if usable else "-"
            lines.append(f"| {size}² | {name} | {r[0]:.4f} | {ratio} | {r[1] / 2**20:.0f} | {diff} |")
        print("\n".join(lines[-len(rows):]), flush=True)
    lines += ["", f"| size | nst optimiser on the device | s / iteration | J_end / J_start ({args.iterations} its) |",
              "|---|---|---|---|"]
    content, style, _ = images(OPTIMISER_SIZE)
    side = f"{content.shape[0]}²"                   # the size measured, as the rows above name theirs
    for opt in ("adam", "lbfgs"):
        try:
            s, drop = iterations(be, content, style, params, opt, args.iterations)
            lines.append(f"| {side} | {opt} | {s:.4f} | {drop:.3g} |")
        except Exception as e:  # noqa: BLE001
            lines.append(f"| {side} | {opt} | failed: {type(e).__name__}: {str(e)[:80]} | |")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
