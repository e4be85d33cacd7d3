"""GPU benchmark of kernels/cuda: every version × VGG19 layer shapes × input sizes.

Each version is validated against the cuBLAS baseline version on the device before it is timed
(CUDA events, after warm-up). Throughput comes from an explicit FLOP (or byte) count and is
reported as GFLOP/s and as % of cupy.matmul's FP32 sgemm rate on 4096², measured in the same run.
When PyTorch with CUDA is importable, the style loss + gradient is also timed with torch (FP32 and
TF32 separately). Writes a markdown table (default $OUT/bench_gpu.md, OUT defaults to ./gpu_out).

    python bench/bench_gpu.py [--sizes 512,1024,2048] [--budget 270] [--out FILE]

Extend by adding a bench_* function that appends rows through Report and time_gpu.
"""
import argparse
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from nst.kernels import cuda as kc  # noqa: E402
from nst.tolerance import rel_err  # noqa: E402

# (name, I, O, downscale) of the VGG19 conv layers that differ in shape
VGG_LAYERS = [("block1_conv1", 3, 64, 1), ("block1_conv2", 64, 64, 1),
              ("block2_conv1", 64, 128, 2), ("block2_conv2", 128, 128, 2),
              ("block3_conv1", 128, 256, 4), ("block3_conv2", 256, 256, 4),
              ("block4_conv1", 256, 512, 8), ("block4_conv2", 512, 512, 8),
              ("block5_conv1", 512, 512, 16)]
STYLE_LAYERS = [("block1_conv1", 64, 1), ("block2_conv1", 128, 2), ("block3_conv1", 256, 4),
                ("block4_conv1", 512, 8), ("block5_conv1", 512, 16)]
NAIVE_FLOP_LIMIT = 3e10          # v1 versions are timed only below this many FLOPs per call


def time_gpu(fn, min_iters=3, max_iters=50, target_s=0.15, warmup=1):
    # -> median milliseconds of fn() between CUDA events on the current stream, after warm-up
    import cupy as cp
    for _ in range(warmup):
        fn()
    start, end = cp.cuda.Event(), cp.cuda.Event()
    start.record()
    fn()
    end.record()
    end.synchronize()
    first = cp.cuda.get_elapsed_time(start, end)
    iters = int(min(max_iters, max(min_iters, target_s * 1e3 / max(first, 1e-3))))
    times = []
    for _ in range(iters):
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(cp.cuda.get_elapsed_time(start, end))
    return float(np.median(times))


class Report:
    """Markdown sections of rows; printed as they come, written at the end."""

    def __init__(self, sgemm_gflops):
        self.sgemm = sgemm_gflops
        self.lines = []

    def section(self, title, header):
        self.lines += ["", f"## {title}", "", "| " + " | ".join(header) + " |",
                       "|" + "---|" * len(header)]
        print(f"\n== {title}\n" + " | ".join(header), flush=True)

    def row(self, *cells):
        self.lines.append("| " + " | ".join(str(c) for c in cells) + " |")
        print(" | ".join(str(c) for c in cells), flush=True)

    def perf(self, flops, ms):
        # -> (GFLOP/s, % of sgemm) strings
        g = flops / (ms * 1e-3) / 1e9
        return f"{g:,.0f}", f"{100 * g / self.sgemm:.1f}%"

    def note(self, text):
        self.lines += ["", text]
        print(text, flush=True)


def measure_sgemm(n=4096):
    import cupy as cp
    a = cp.random.standard_normal((n, n), dtype=cp.float32)
    b = cp.random.standard_normal((n, n), dtype=cp.float32)
    ms = time_gpu(lambda: cp.matmul(a, b), warmup=2)
    return 2.0 * n ** 3 / (ms * 1e-3) / 1e9


class Budget:
    def __init__(self, seconds):
        self.end = time.time() + seconds

    def left(self):
        return self.end - time.time()


def _tol(op, version):
    return 2e-2 if kc.CUDA.tolerance(op, version) == "tf32" else 1e-4


def bench_conv(rep, sizes, budget, op):
    # conv3x3_relu or conv3x3_relu_backward_input: every version per (layer, size), vs im2col_cublas
    import cupy as cp
    mod, versions = kc.CUDA.module(op), kc.CUDA.versions(op)
    rep.section(f"{op} (vs im2col_cublas; % of sgemm)",
                ["layer", "I→O", "H×W", "version", "ms", "GFLOP/s", "% sgemm", "rel err"])
    rng = cp.random.default_rng(0)
    for size in sizes:
        for name, i, o, s in VGG_LAYERS:
            if budget.left() < 0:
                rep.note(f"{op}: time budget spent, skipped from {name} at {size}²")
                return
            h = w = size // s
            wt = (rng.standard_normal((o, i, 3, 3), dtype=cp.float32) * (9 * i) ** -0.5)
            if op == "conv3x3_relu":
                args = (rng.standard_normal((i, h, w), dtype=cp.float32), wt,
                        rng.standard_normal(o, dtype=cp.float32) * 0.1)
            else:
                args = (rng.standard_normal((o, h, w), dtype=cp.float32),
                        cp.maximum(rng.standard_normal((o, h, w), dtype=cp.float32), 0), wt)
            flops = mod.flops(i, o, h, w)
            ref = versions["im2col_cublas"](*args)
            for version, fn in versions.items():
                if version.startswith("v1") and flops > NAIVE_FLOP_LIMIT:
                    continue
                err = rel_err(fn(*args), ref)
                flag = "" if err <= _tol(op, version) else " MISMATCH"
                ms = time_gpu(lambda fn=fn, args=args: fn(*args))
                rep.row(name, f"{i}→{o}", f"{h}×{w}", version, f"{ms:.3f}", *rep.perf(flops, ms),
                        f"{err:.1e}{flag}")
            del args, ref
            cp.get_default_memory_pool().free_all_blocks()


def _torch():
    try:
        import torch
        return torch if torch.cuda.is_available() else None
    except Exception:  # noqa: BLE001 - no torch, or a torch without CUDA
        return None


def torch_style_fns(torch, f, target):
    # -> {name: fn} computing (J_s^l, ∂J/∂F) with torch: analytic formula and autograd
    c, hw = f.shape

    def analytic():
        diff = torch.mm(f, f.t()) / hw - target
        return (diff * diff).sum() / c ** 2, torch.mm(diff, f) * (4.0 / (c * c * hw))

    def autograd():
        x = f.detach().requires_grad_(True)
        j = torch.nn.functional.mse_loss(torch.mm(x, x.t()) / hw, target, reduction="sum") / c ** 2
        (g,) = torch.autograd.grad(j, x)
        return j, g
    return {"analytic": analytic, "autograd": autograd}


def bench_style(rep, sizes, budget):
    # Gram + style loss + gradient per style layer: every version vs style_cublas; torch if present
    import cupy as cp
    mod = kc.launcher("gram_style_loss")
    torch = _torch()
    rep.section("gram_style_loss: Ĝ, J_s^l and ∂J/∂a (vs cuBLAS version; FLOPs 4·C²·hw, Gram 2·C²·hw)",
                ["layer", "C", "H×W", "version", "ms", "GFLOP/s", "% sgemm", "rel err (J; grad)"])
    rng = cp.random.default_rng(1)
    for size in sizes:
        for name, c, s in STYLE_LAYERS:
            if budget.left() < 0:
                rep.note(f"gram_style_loss: time budget spent, skipped from {name} at {size}²")
                return
            h = w = size // s
            a = cp.abs(rng.standard_normal((c, h, w), dtype=cp.float32))
            target = mod.gram_cublas(cp.abs(rng.standard_normal((c, h, w), dtype=cp.float32)) * 1.2)
            j_ref, g_ref = mod.style_cublas(a, target)
            gram_ref = mod.gram_cublas(a)
            for op, version, fn in [(op, v, f) for op in ("gram", "style_loss_and_grad")
                                    for v, f in kc.CUDA.versions(op).items()]:
                is_gram = op == "gram"
                flops = (mod.flops_gram if is_gram else mod.flops_style)(c, h * w)
                rep_version = f"{'gram' if is_gram else 'style'}_{version}"
                if version.startswith("v1"):
                    if flops > NAIVE_FLOP_LIMIT:
                        continue
                if is_gram:
                    err = f"{rel_err(fn(a), gram_ref):.1e}"
                    ms = time_gpu(lambda fn=fn, a=a: fn(a))
                else:
                    j, g = fn(a, target)
                    err = f"{rel_err(j, j_ref):.1e}; {rel_err(g, g_ref):.1e}"
                    ms = time_gpu(lambda fn=fn, a=a, target=target: fn(a, target))
                rep.row(name, c, f"{h}×{w}", rep_version, f"{ms:.3f}", *rep.perf(flops, ms), err)
            if torch is not None:
                ft = torch.from_dlpack(a.reshape(c, h * w))
                tt = torch.from_dlpack(target)
                for tf32 in (False, True):
                    torch.backends.cuda.matmul.allow_tf32 = tf32
                    for tname, fn in torch_style_fns(torch, ft, tt).items():
                        j, g = fn()
                        err = f"{rel_err(cp.from_dlpack(j.detach()), j_ref):.1e}; " \
                              f"{rel_err(cp.from_dlpack(g.reshape(c, h, w).detach().contiguous()), g_ref):.1e}"
                        ms = time_gpu(fn)
                        rep.row(name, c, f"{h}×{w}", f"torch {tname} {'TF32' if tf32 else 'FP32'}",
                                f"{ms:.3f}", *rep.perf(mod.flops_style(c, h * w), ms), err)
                torch.backends.cuda.matmul.allow_tf32 = False
            del a, target, j_ref, g_ref, gram_ref
            cp.get_default_memory_pool().free_all_blocks()


def bench_bandwidth(rep, size, budget):
    # pools, content, TV, Adam at one size: GB/s from the bytes each must move (napkin count)
    import cupy as cp
    from nst import losses, ops
    rep.section(f"bandwidth-bound kernels at {size}² (block1 shapes; checked vs NumPy on a crop first)",
                ["kernel", "shape", "ms", "GB/s"])
    rng = cp.random.default_rng(2)
    c, h = 64, size
    x = rng.standard_normal((c, h, h), dtype=cp.float32)
    dy = rng.standard_normal((c, h // 2, h // 2), dtype=cp.float32)
    img = rng.random((h, h, 3), dtype=cp.float32) * 255
    n, n4 = x.size * 4, dy.size * 4
    small = x[:3, :37, :41].copy()
    assert rel_err(kc.get("maxpool2x2", "v1")(small), cp.asarray(ops.maxpool2x2(cp.asnumpy(small)))) < 1e-6
    assert rel_err(kc.get("tv_loss_and_grad", "v1_fused")(img[:31, :29].copy())[1],
                   cp.asarray(losses.tv_loss_and_grad(cp.asnumpy(img[:31, :29]))[1])) < 1e-4
    m, v, g = cp.zeros_like(img), cp.zeros_like(img), rng.standard_normal(img.shape, dtype=cp.float32)
    k = kc.get
    cases = [("maxpool2x2.v1", lambda: k("maxpool2x2", "v1")(x), n + n4),
             ("maxpool2x2_backward.v1", lambda: k("maxpool2x2_backward", "v1")(dy, x), 2 * n + n4),
             ("avgpool2x2.v1", lambda: k("avgpool2x2", "v1")(x), n + n4),
             ("avgpool2x2_backward.v1", lambda: k("avgpool2x2_backward", "v1")(dy, x), n + n4),
             ("content_loss_and_grad.v1_fused", lambda: k("content_loss_and_grad", "v1_fused")(x, x), 3 * n),
             ("content_loss_and_grad.cupy", lambda: k("content_loss_and_grad", "cupy")(x, x), 3 * n),
             ("tv_loss_and_grad.v1_fused", lambda: k("tv_loss_and_grad", "v1_fused")(img), 2 * img.nbytes),
             ("tv_loss_and_grad.cupy", lambda: k("tv_loss_and_grad", "cupy")(img), 2 * img.nbytes),
             ("adam_step.v1", lambda: k("adam_step", "v1")(img, g, m, v, 1, 1.0, 0.9, 0.999, 1e-8, 0.0, 255.0),
              7 * img.nbytes)]
    for name, fn, nbytes in cases:
        if budget.left() < 0:
            rep.note("bandwidth: time budget spent")
            return
        ms = time_gpu(fn)
        rep.row(name, "img" if "tv" in name or "adam" in name else f"{c}×{h}×{h}", f"{ms:.3f}",
                f"{nbytes / (ms * 1e-3) / 1e9:,.0f}")


def machine():
    import cupy as cp
    props = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)
    name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    torch = _torch()
    return (f"{name}, {props['multiProcessorCount']} SMs; cupy {cp.__version__}, CUDA runtime "
            f"{cp.cuda.runtime.runtimeGetVersion()}; torch {torch.__version__ if torch else 'absent'}; "
            f"{platform.node()}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="512,1024,2048", help="input sizes (square), comma-separated")
    p.add_argument("--budget", type=float, default=270.0, help="seconds; later cases are skipped after it")
    p.add_argument("--out", default=None, help="markdown file (default $OUT/bench_gpu.md)")
    args = p.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    out = args.out or os.path.join(os.environ.get("OUT") or "gpu_out", "bench_gpu.md")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)

    t0 = time.time()
    sgemm = measure_sgemm()
    rep = Report(sgemm)
    rep.lines = ["# kernels/cuda benchmark", "", f"Machine: {machine()}", "",
                 f"cupy.matmul FP32 sgemm 4096²: {sgemm:,.0f} GFLOP/s (the 100% of the % columns)"]
    print("\n".join(rep.lines), flush=True)
    budget = Budget(args.budget)
    steps = [lambda: bench_style(rep, sizes, budget),
             lambda: bench_conv(rep, sizes, budget, "conv3x3_relu"),
             lambda: bench_conv(rep, sizes, budget, "conv3x3_relu_backward_input"),
             lambda: bench_bandwidth(rep, max(sizes), Budget(max(budget.left(), 20)))]
    for step in steps:
        try:
            step()
        except Exception as e:  # noqa: BLE001 - one failing section must not hide the others
            rep.note(f"**section failed**: {type(e).__name__}: {e}")
    rep.note(f"Total {time.time() - t0:.0f} s.")
    with open(out, "w", encoding="utf-8") as f:
        f.write("\n".join(rep.lines) + "\n")
    print(f"\nresults table: {out}")


if __name__ == "__main__":
    main()
