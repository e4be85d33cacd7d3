"""Benchmarks of the Numba CPU kernels (kernels/*.py): every version × the real VGG19 layer shapes.

Each case is validated against the NumPy reference (nst/ops.py, nst/losses.py) before it is timed.
Throughput comes from explicit counts: conv 2·O·I·9·H·W FLOPs (direct convolution, also for
Winograd, which does fewer), Gram 2·C²·hw, style loss 4·C²·hw; bandwidth-bound kernels in GB/s of
compulsory traffic. The sgemm peak is np.matmul float32 2048×2048, measured in the same run.

  pytest bench/bench_kernels_cpu.py                      # correctness only (pytest.ini disables
                                                         # timing), at a 128² input, < 1 min
  pytest bench/bench_kernels_cpu.py --benchmark-enable   # timings, 256² VGG shapes
  NST_BENCH_FULL=1 pytest ... --benchmark-enable         # adds the 512² shapes
  python bench/bench_kernels_cpu.py [--full]             # markdown table for bench/RESULTS.md
The layer shapes come from nst.spec.CONV_LAYERS (the one layer table).
"""
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nst.kernels import NUMBA, conv3x3_forward  # noqa: E402
from nst import losses, ops  # noqa: E402
from nst.backends import numba_backend  # noqa: E402
from nst.spec import CONV_LAYERS, DEFAULT_STYLE_LAYERS, ends_block  # noqa: E402
from nst.tolerance import mismatch  # noqa: E402


def assert_close(a, ref, what, rtol, atol_scale):
    # nst.tolerance's rule (the tests' rule); a mismatch fails the validation with the worst elements
    message = mismatch(a, ref, rtol, atol_scale, what)
    assert message is None, message


def validate(got, want, what):
    # a kernel's output (an array, or a tuple: J and the gradient) against the reference's, before it is timed
    for g, r in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
        assert_close(g, r, what=what, **BENCH_TOL)


def _layer_shapes():
    # from nst.spec.CONV_LAYERS: the distinct conv shapes (I, O, downsampling d), the style layers'
    # (C, d) and the pools' inputs (C, d)
    convs, style, pools, d = [], [], [], 1
    for name, i, o in CONV_LAYERS:
        if (i, o, d) not in convs:
            convs.append((i, o, d))
        if name in DEFAULT_STYLE_LAYERS:
            style.append((o, d))
        if ends_block(name):
            if name != CONV_LAYERS[-1][0]:
                pools.append((o, d))
            d *= 2
    return convs, style, pools


CONV_SHAPES, STYLE_LAYERS, POOL_LAYERS = _layer_shapes()
TIMED_SIZES = (256, 512) if os.environ.get("NST_BENCH_FULL") == "1" else (256,)
CHECK_SIZES = (128,)        # correctness-only runs (timing disabled) validate the layers at 128²


def bench_sizes(config):
    # the input sizes for this pytest run: small when timing is disabled (pytest.ini's addopts)
    timed = config.getoption("benchmark_enable", False) or not config.getoption("benchmark_disable", False)
    return TIMED_SIZES if timed else CHECK_SIZES


_PEAK = {}


def sgemm_peak():
    # GFLOP/s of np.matmul float32 on 2048×2048 (median of 5), measured once per run
    if "gflops" not in _PEAK:
        a = np.random.default_rng(0).random((2048, 2048), dtype=np.float32)
        _PEAK["gflops"] = 2 * 2048**3 / median_time(lambda: a @ a, 5) / 1e9
    return _PEAK["gflops"]


SETTLE_S = 0.3     # OpenBLAS's threads spin ~0.1 s after a threaded call (the NumPy reference's,
                   # style v1's) and slow whatever runs next on our own threads by up to 2×


def median_time(fn, runs=5):
    time.sleep(SETTLE_S)
    fn()
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts))


# ---------------------------------------------------------------------------------------------
# cases: name -> (make inputs, reference, flops or bytes, tolerance)

def conv_case(i, o, h, backward, rng):
    x = rng.standard_normal((i, h, h)).astype(np.float32)
    w = (rng.standard_normal((o, i, 3, 3)) * np.sqrt(2 / (9 * i))).astype(np.float32)
    b = (0.1 * rng.standard_normal(o)).astype(np.float32)
    cw = conv3x3_forward.ConvWeights(w)
    flops = 2 * o * i * 9 * h * h
    if backward:
        da = rng.standard_normal((o, h, h)).astype(np.float32)
        a = np.maximum(rng.standard_normal((o, h, h)), 0).astype(np.float32)
        return (da, a, cw), (lambda: ops.conv3x3_relu_backward_input(da, a, w)), flops
    return (x, cw, b), (lambda: ops.conv3x3_relu(x, w, b)), flops


# float32 kernel vs float32 reference, sums of up to 4608 terms in different orders (and Winograd):
# validation uses rtol 1e-3, atol 1e-4·max|ref|; the tight tolerances live in tests/.
BENCH_TOL = dict(rtol=1e-3, atol_scale=1e-4)


def _conv_op(backward):
    return "conv3x3_relu_backward_input" if backward else "conv3x3_relu"


def _conv_params(sizes, backward):
    # v6 (direct, Numba) is only for the few-channel layer (3→64 and its backward); on 64+ channels it
    # is slow enough to make the correctness-only run minutes long
    return [pytest.param(version, i, o, s // d, id=f"{version}-{i}to{o}-{s // d}")
            for s in sizes for i, o, d in CONV_SHAPES
            for version in NUMBA.versions(_conv_op(backward))
            if not (version == "v6" and min(i, o) > 3)]


def pytest_generate_tests(metafunc):
    sizes = bench_sizes(metafunc.config)
    name = metafunc.function.__name__
    if name in ("test_conv3x3_relu", "test_conv3x3_relu_backward_input"):
        metafunc.parametrize("version,i,o,h", _conv_params(sizes, "backward" in name))
    elif name == "test_style_loss_and_grad":
        metafunc.parametrize("c,h", [pytest.param(c, s // d, id=f"{c}-{s // d}")
                                     for s in sizes for c, d in STYLE_LAYERS])
    elif name == "test_bandwidth_kernels":
        metafunc.parametrize("case", sorted(bandwidth_cases(np.random.default_rng(0), sizes)))


def _run_conv(benchmark, version, i, o, h, backward):
    rng = np.random.default_rng(0)
    args, ref, flops = conv_case(i, o, h, backward, rng)
    fn = NUMBA.get(_conv_op(backward), version)
    validate(fn(*args), ref(), f"{_conv_op(backward)}.{version}")
    benchmark.extra_info.update(flops=flops, sgemm_peak_gflops=round(sgemm_peak(), 1))
    benchmark(fn, *args)
    if benchmark.stats:
        gf = flops / benchmark.stats.stats.median / 1e9
        benchmark.extra_info.update(gflops=round(gf, 1), pct_of_sgemm=round(100 * gf / sgemm_peak(), 1))


def test_conv3x3_relu(benchmark, version, i, o, h):
    _run_conv(benchmark, version, i, o, h, backward=False)


def test_conv3x3_relu_backward_input(benchmark, version, i, o, h):
    _run_conv(benchmark, version, i, o, h, backward=True)


def style_case(c, h, rng):
    a = np.maximum(rng.standard_normal((c, h, h)), 0).astype(np.float32)
    t = losses.gram(np.maximum(rng.standard_normal((c, h, h)), 0).astype(np.float32))
    return (a, t), (lambda: losses.style_loss_and_grad(a, t)), 4 * c * c * h * h


@pytest.mark.parametrize("version", list(NUMBA.versions("style_loss_and_grad")))
def test_style_loss_and_grad(benchmark, version, c, h):
    args, ref, flops = style_case(c, h, np.random.default_rng(0))
    fn = NUMBA.get("style_loss_and_grad", version)
    validate(fn(*args), ref(), f"style_loss_and_grad.{version}")
    benchmark(fn, *args)
    if benchmark.stats:
        gf = flops / benchmark.stats.stats.median / 1e9
        benchmark.extra_info.update(gflops=round(gf, 1), pct_of_sgemm=round(100 * gf / sgemm_peak(), 1))


def bandwidth_cases(rng, sizes):
    # name -> (fn, args, reference, bytes of compulsory traffic)
    cases = {}
    for s in sizes:
        for c, d in POOL_LAYERS:
            h = s // d
            x = rng.standard_normal((c, h, h)).astype(np.float32)
            dy = rng.standard_normal((c, h // 2, h // 2)).astype(np.float32)
            nb = x.nbytes
            cases[f"maxpool2x2_v1-{c}-{h}"] = (NUMBA.get("maxpool2x2", "v1"), (x,), lambda x=x: ops.maxpool2x2(x),
                                               nb * 5 // 4)
            for version, fn in NUMBA.versions("maxpool2x2_backward").items():
                cases[f"maxpool2x2_backward_{version}-{c}-{h}"] = (
                    fn, (dy, x), lambda dy=dy, x=x: ops.maxpool2x2_backward(dy, x), nb * 9 // 4)
            cases[f"avgpool2x2_v1-{c}-{h}"] = (NUMBA.get("avgpool2x2", "v1"), (x,), lambda x=x: ops.avgpool2x2(x),
                                               nb * 5 // 4)
        a = rng.standard_normal((512, s // 8, s // 8)).astype(np.float32)
        t = rng.standard_normal(a.shape).astype(np.float32)
        cases[f"content_loss_and_grad_v1-512-{s // 8}"] = (
            NUMBA.get("content_loss_and_grad", "v1"), (a, t), lambda a=a, t=t: losses.content_loss_and_grad(a, t),
            3 * a.nbytes)
        img = (255 * rng.random((s, s, 3))).astype(np.float32)
        cases[f"tv_loss_and_grad_v1-{s}"] = (NUMBA.get("tv_loss_and_grad", "v1"), (img,),
                                             lambda img=img: losses.tv_loss_and_grad(img), 2 * img.nbytes)
    return cases


_BW = {}


def test_bandwidth_kernels(benchmark, case, request):
    sizes = bench_sizes(request.config)
    if sizes not in _BW:
        _BW[sizes] = bandwidth_cases(np.random.default_rng(0), sizes)
    fn, args, ref, nbytes = _BW[sizes][case]
    validate(fn(*args), ref(), case)
    benchmark(fn, *args)
    if benchmark.stats:
        benchmark.extra_info.update(gbytes_per_s=round(nbytes / benchmark.stats.stats.median / 1e9, 1))


# ---------------------------------------------------------------------------------------------
# the table for bench/RESULTS.md

def table(sizes=(256,), runs=5):
    # the markdown tables; each version is validated against the reference before it is timed
    rng = np.random.default_rng(0)
    peak = sgemm_peak()
    import numba
    lines = [f"{numba.config.NUMBA_NUM_THREADS} threads, {os.cpu_count()} cores, numpy {np.__version__}; "
             f"sgemm peak (np.matmul f32 2048²) = {peak:.0f} GFLOP/s",
             "GFLOP/s counted as direct convolution (2·O·I·9·H·W), median of "
             f"{runs} runs; ratio = NumPy reference time / best time; chosen = the version "
             "nst/backends/numba_backend.py CHOSEN runs for that layer.", ""]
    for backward in (False, True):
        op = _conv_op(backward)
        versions = NUMBA.versions(op)
        names = list(versions)
        lines += [f"### {op} (GFLOP/s, % of sgemm peak)",
                  "", "| layer | " + " | ".join(["numpy ref"] + names) + " | best | chosen | vs ref |",
                  "|" + "---|" * (len(names) + 5)]
        for s in sizes:
            for i, o, d in CONV_SHAPES:
                h = s // d
                args, ref, flops = conv_case(i, o, h, backward, rng)
                want = ref()
                for n in names:
                    if not (n == "v6" and min(i, o) > 3):
                        validate(versions[n](*args), want, f"{op}.{n}")
                tref = median_time(ref, runs)
                ts = [median_time(lambda fn=versions[n]: fn(*args), runs)
                      if not (n == "v6" and min(i, o) > 3) else np.inf for n in names]
                k = int(np.argmin(ts))
                cells = ["–" if t == np.inf else f"{flops / t / 1e9:.0f} ({100 * flops / t / 1e9 / peak:.0f}%)"
                         for t in [tref] + ts]
                pick = [n for n in names if versions[n] is numba_backend.chosen(op, i)][0]
                lines.append(f"| {i}→{o} @{h}² | " + " | ".join(cells)
                             + f" | {names[k]} | {pick} | {tref / ts[k]:.2f}× |")
        lines.append("")
    versions = NUMBA.versions("style_loss_and_grad")
    names = list(versions)
    lines += ["### style_loss_and_grad (GFLOP/s, 4·C²·hw)", "",
              "| layer | numpy ref | " + " | ".join(names) + " | vs ref |", "|" + "---|" * (len(names) + 3)]
    for s in sizes:
        for c, d in STYLE_LAYERS:
            args, ref, flops = style_case(c, s // d, rng)
            want = ref()
            for n in names:
                validate(versions[n](*args), want, f"style_loss_and_grad.{n}")
            tref = median_time(ref, runs)
            ts = [median_time(lambda fn=versions[n]: fn(*args), runs) for n in names]
            lines.append(f"| C={c} @{s // d}² | {flops / tref / 1e9:.0f} | "
                         + " | ".join(f"{flops / t / 1e9:.0f}" for t in ts) + f" | {tref / min(ts):.2f}× |")
    lines += ["", "### bandwidth-bound kernels (GB/s of compulsory traffic)", "",
              "| case | numpy ref GB/s | numba GB/s | vs ref |", "|---|---|---|---|"]
    for case, (fn, args, ref, nbytes) in sorted(bandwidth_cases(rng, sizes).items()):
        validate(fn(*args), ref(), case)
        tref, t = median_time(ref, runs), median_time(lambda: fn(*args), runs)
        lines.append(f"| {case} | {nbytes / tref / 1e9:.1f} | {nbytes / t / 1e9:.1f} | {tref / t:.2f}× |")
    return "\n".join(lines)


def test_table_validates_every_version_before_timing_it(monkeypatch):
    # the table (bench/RESULTS.md's, through make_results.py) timed each version unchecked: a kernel
    # 1 % off got a speed like any other
    monkeypatch.setitem(globals(), "SETTLE_S", 0)
    monkeypatch.setitem(_PEAK, "gflops", 1.0)
    right = NUMBA.get("conv3x3_relu", "v1")
    monkeypatch.setitem(NUMBA.versions("conv3x3_relu"), "v1", lambda x, cw, b: 1.01 * right(x, cw, b))
    with pytest.raises(AssertionError, match="conv3x3_relu.v1"):
        table(sizes=(32,), runs=1)


def main(argv=None):
    # the markdown table for bench/RESULTS.md: 256² shapes, and 512² with --full (or NST_BENCH_FULL=1)
    import argparse
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--full", action="store_true", help="also the 512² shapes (default: $NST_BENCH_FULL=1)")
    args = p.parse_args(argv)
    full = args.full or os.environ.get("NST_BENCH_FULL") == "1"
    print(table(sizes=(256, 512) if full else (256,)))


if __name__ == "__main__":
    main()

