"""nst vs PyTorch layer by layer on the CPU: where one evaluation's time goes, on the same shapes.

For each VGG19 layer that one evaluation runs (up to block5_conv1 at an N×N input) it times, in
one library per fresh process, with that library's default threads:
- fwd: the 3×3 conv + bias + ReLU (nst: the chosen Numba kernel; torch: F.conv2d then F.relu)
- bwd: the backward to the input through the ReLU mask (nst: the fused kernel; torch:
  threshold_backward then aten.convolution_backward for the input only, as autograd runs them)
- style: the style loss and its gradient at the default style layers (nst: the chosen kernel;
  torch: Gram, loss and autograd through them)
- pool fwd / bwd: 2×2 max pooling and its backward (torch: max_pool2d_with_indices and its backward)
Inputs are random (the times do not depend on the values); each op is run once to warm up, then
--repeats times: its minimum is the worker's time. --rounds processes per library alternate
(order rotating), and the table shows the median over rounds and nst / torch.

    python bench/bench_layers.py --size 256            # ≈ 1 min on a quiet 2-core machine
Under pytest (collected, --benchmark-disable): nst's and torch's ops agree at a 24² input.
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import bench_evaluation  # noqa: E402
from bench_evaluation import DEEPEST  # noqa: E402
from nst.spec import CONV_LAYERS, CONV_NAMES, DEFAULT_STYLE_LAYERS, ends_block  # noqa: E402


def cases(size):
    # -> [(op, label, shape args)] for one evaluation at size×size, in network order
    out, h = [], size
    for name, i, o in CONV_LAYERS[:CONV_NAMES.index(DEEPEST) + 1]:
        out += [("fwd", name, (i, o, h)), ("bwd", name, (i, o, h))]
        if name in DEFAULT_STYLE_LAYERS:
            out.append(("style", name, (o, h)))
        if ends_block(name) and name != DEEPEST:
            out += [("pool fwd", name, (o, h)), ("pool bwd", name, (o, h))]
            h //= 2
    return out


def op_table(conv, style, pool):
    # op -> (shape args, rng) -> thunk, from a library's conv(i, o, h, rng, backward),
    # style(c, h, rng) and pool(c, h, rng, backward) makers
    return {"fwd": lambda a, r: conv(*a, r, False), "bwd": lambda a, r: conv(*a, r, True),
            "style": lambda a, r: style(*a, r),
            "pool fwd": lambda a, r: pool(*a, r, False), "pool bwd": lambda a, r: pool(*a, r, True)}


def nst_ops():
    # op_table of the Numba backend's chosen kernels
    from nst.backends import get_backend
    be = get_backend("numba")

    def conv(i, o, h, rng, backward):
        layer, b = be.prepare_weights(rng.standard_normal((o, i, 3, 3), np.float32) * 0.05,
                                      rng.standard_normal(o).astype(np.float32))
        x = rng.standard_normal((i, h, h), np.float32)
        if not backward:
            return lambda: be.conv3x3_relu(x, layer, b)
        a = np.maximum(rng.standard_normal((o, h, h), np.float32), 0)
        da = rng.standard_normal((o, h, h), np.float32)
        return lambda: be.conv3x3_relu_backward_input(da, a, layer)

    def style(c, h, rng):
        a = np.maximum(rng.standard_normal((c, h, h), np.float32), 0)
        target = be.gram(np.maximum(rng.standard_normal((c, h, h), np.float32), 0))
        return lambda: be.style_loss_and_grad(a, target)[1]          # the gradient

    def pool(c, h, rng, backward):
        x = rng.standard_normal((c, h, h), np.float32)
        dy = rng.standard_normal((c, h // 2, h // 2), np.float32)
        return (lambda: be.maxpool2x2_backward(dy, x)) if backward else (lambda: be.maxpool2x2(x))

    return op_table(conv, style, pool)


def torch_ops():
    # the same ops as PyTorch runs them in bench/torch_reference.py's objective under autograd
    import torch
    f = torch.nn.functional
    aten = torch.ops.aten

    def conv(i, o, h, rng, backward):
        w = torch.from_numpy(rng.standard_normal((o, i, 3, 3), np.float32) * 0.05)
        b = torch.from_numpy(rng.standard_normal(o).astype(np.float32))
        x = torch.from_numpy(rng.standard_normal((1, i, h, h), np.float32))
        if not backward:
            return lambda: f.relu(f.conv2d(x, w, b, padding=1))
        a = torch.from_numpy(np.maximum(rng.standard_normal((1, o, h, h), np.float32), 0))
        da = torch.from_numpy(rng.standard_normal((1, o, h, h), np.float32))
        return lambda: aten.convolution_backward(aten.threshold_backward(da, a, 0), x, w, None, [1, 1],
                                                 [1, 1], [1, 1], False, [0, 0], 1, [True, False, False])[0]

    def style(c, h, rng):
        a = torch.from_numpy(np.maximum(rng.standard_normal((1, c, h, h), np.float32), 0))
        s = torch.from_numpy(np.maximum(rng.standard_normal((c, h * h), np.float32), 0))
        target = s @ s.T / (h * h)

        def run():
            x = a.detach().requires_grad_(True)
            fm = x.reshape(c, -1)
            j = ((fm @ fm.T / (h * h) - target) ** 2).sum() / c ** 2
            j.backward()
            return x.grad
        return run

    def pool(c, h, rng, backward):
        x = torch.from_numpy(rng.standard_normal((1, c, h, h), np.float32))
        y, idx = f.max_pool2d_with_indices(x, 2)
        dy = torch.from_numpy(rng.standard_normal(tuple(y.shape), np.float32))
        if not backward:
            return lambda: f.max_pool2d(x, 2)
        return lambda: aten.max_pool2d_with_indices_backward(dy, x, [2, 2], [2, 2], [0, 0], [1, 1],
                                                             False, idx)

    return op_table(conv, style, pool)


def worker(library, size, repeats):
    # -> {"op label": min seconds over repeats} for every case, in this fresh process
    ops = nst_ops() if library == "nst" else torch_ops()
    rng = np.random.default_rng(0)
    times = {}
    for op, label, args in cases(size):
        run = ops[op](args, rng)
        run()
        best = float("inf")
        for _ in range(repeats):
            t = time.perf_counter()
            run()
            best = min(best, time.perf_counter() - t)
        times[f"{op} {label}"] = best
    return times


def run_worker(library, size, repeats):
    # bench_evaluation's fresh-process runner on this script; a failed worker stops the run
    res = bench_evaluation.run_worker(library, size, repeats, script=__file__)
    if "error" in res:
        raise SystemExit(f"{library} worker failed: {res['error']}")
    return res


def table(size, results):
    # results {library: [worker dicts]} -> markdown rows, ms, medians over rounds
    med = {lib: {k: float(np.median([r[k] for r in rs])) for k in rs[0]} for lib, rs in results.items()}
    lines = [f"| op at {size}² input | shape (I→O or C, side) | nst ms | torch ms | nst / torch |",
             "|---|---|---|---|---|"]
    total = {"nst": 0.0, "torch": 0.0}
    for op, label, args in cases(size):
        key = f"{op} {label}"
        n, t = med["nst"][key] * 1e3, med["torch"][key] * 1e3
        total["nst"], total["torch"] = total["nst"] + n, total["torch"] + t
        shape = f"{args[0]}→{args[1]}, {args[2]}" if len(args) == 3 else f"{args[0]}, {args[1]}"
        lines.append(f"| {key} | {shape} | {n:.2f} | {t:.2f} | {n / t:.2f} |")
    lines.append(f"| **sum** | | {total['nst']:.1f} | {total['torch']:.1f} | "
                 f"**{total['nst'] / total['torch']:.2f}** |")
    return lines


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=3, help="fresh processes per library")
    ap.add_argument("--repeats", type=int, default=5, help="timed runs of each op per process")
    ap.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        library, size, repeats = args.worker
        print(json.dumps(worker(library, int(size), int(repeats))))
        return 0
    results = {"nst": [], "torch": []}
    for r in range(args.rounds):
        for lib in (["nst", "torch"] if r % 2 == 0 else ["torch", "nst"]):
            results[lib].append(run_worker(lib, args.size, args.repeats))
            print(f"round {r + 1} {lib} done", file=sys.stderr, flush=True)
    print(f"Per layer at {args.size}², each library in its own fresh process with its default threads; "
          f"min of {args.repeats} runs per process, median of {args.rounds} processes each.\n")
    print("\n".join(table(args.size, results)))
    return 0


# ---- pytest: nst's and torch's ops compute the same thing (small input) ----

def test_layer_ops_agree_with_torch():
    import pytest
    pytest.importorskip("torch")
    from nst.tolerance import mismatch
    libraries = nst_ops(), torch_ops()
    for op, label, args in cases(24):
        got, ref = (ops[op](args, np.random.default_rng(1))() for ops in libraries)
        ref = ref.detach().numpy().reshape(np.shape(got)) if hasattr(ref, "detach") else ref
        message = mismatch(got, ref, rtol=1e-3, atol_scale=1e-4, what=f"{op} {label}")
        assert message is None, message


if __name__ == "__main__":
    sys.exit(main())
