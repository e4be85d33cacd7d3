"""The largest picture each library's default run completes in this machine's memory, untiled, measured.

What is measured: tubingen.jpg (4:3) in the style of starry_night.jpg at longest side S, default
settings (L-BFGS with history 20, default layers and weights), one scale (the finest scale is the
run's peak; the coarser ones come before it and are freed), `--iterations` iterations (default 12,
nst.run.schedule.FINEST_CAP: the default run's finest scale stops there, so its L-BFGS holds at most
12 of its 20 pairs; `--iterations 22` fills the history, the peak of e.g. `--iterations 200`).
- nst: `nst transfer ... --size S --scales 1 --tile 0` in a fresh process (--tile 0: never tiled).
- torch: bench/torch_reference.py's objective and torch.optim.LBFGS(history_size=20) on the same
  images, in a fresh process, without a line search (one evaluation an iteration, as
  neural-style-pt runs it; the strong-Wolfe search took 11 evaluations in one iteration at 3328 px).
A try succeeds when the process exits 0 (the kernel's OOM killer ends one that does not fit) and its
peak RSS (VmHWM) is within --budget-gib. From --start (default: nst's own estimate of its largest
fitting size) the sizes go up or down by --step until the outcome flips; the largest success is
reported with its peak RSS and wall time.

    python bench/bench_largest.py --libraries numba torch            # needs the whole machine
    python bench/bench_largest.py --libraries numba --start 3000 --step 128 --iterations 3  # quicker

It needs the machine to itself (it fills its memory): nothing else may run beside it.
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
from nst.run.schedule import FINEST_CAP  # noqa: E402

from shared_images import image  # noqa: E402


def vm_hwm_mib():
    # this process's peak RSS (VmHWM: reset at exec, unlike ru_maxrss, which a child inherits)
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024


def nst_worker(side, iterations, out):
    from nst.cli import main
    code = main(["transfer", str(image("tubingen.jpg")), str(image("starry_night.jpg")), "-o", out,
                 "--size", str(side), "--scales", "1", "--tile", "0", "--iterations", str(iterations)])
    return {"exit": code, "peak_mib": vm_hwm_mib()}


def torch_worker(side, iterations):
    import torch_reference
    from nst.io.image import load_image, resize_longest
    content = resize_longest(load_image(image("tubingen.jpg")), side)
    style = resize_longest(load_image(image("starry_night.jpg")), side)
    obj = torch_reference.TorchObjective(content, style, content_weight=1.0, style_weight=1e3, tv_weight=1e-3)
    _, evals, final = obj.lbfgs(content, iterations, line_search=None)     # neural-style-pt's L-BFGS
    return {"exit": 0, "peak_mib": vm_hwm_mib(), "evals": evals, "J": final}


def try_size(library, side, iterations, budget_mib):
    # -> (completed within the budget, {peak_mib, wall_s, ...}) from a fresh process
    cmd = [sys.executable, __file__, "--worker", library, str(side), str(iterations)]
    t = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if out.returncode:
        return False, {"wall_s": wall, "error": f"exit {out.returncode}: "
                       + (out.stderr.strip().splitlines() or ["killed (out of memory?)"])[-1]}
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["wall_s"] = wall
    return result["exit"] == 0 and result["peak_mib"] <= budget_mib, result


def estimated_largest(budget_bytes, iterations):
    # nst's own estimate (nst.memory) of the largest untiled default run within the budget
    from nst import memory
    from nst.io.image import load_image
    from nst.run.run import Run
    from nst.run.settings import Settings
    run = Run(load_image(image("tubingen.jpg")), [load_image(image("starry_night.jpg"))],
              Settings(scales=1, iterations=iterations, backend="numba"), log=lambda m: None)
    return memory.largest_fitting_size(lambda s: run.memory_estimate(s)[0]["total"], budget_bytes)


def search(library, start, step, iterations, budget_mib, log):
    # step up from a success (or down from a failure) until the outcome flips -> largest success
    side, best, seen = start, None, {}
    while 16 <= side and side not in seen:
        ok, result = try_size(library, side, iterations, budget_mib)
        seen[side] = ok
        log(f"{library} {side}px: {'ok' if ok else 'no'} {json.dumps(result)}")
        if ok:
            best = (side, result) if best is None or side > best[0] else best
        side = side + step if ok else side - step
        if ok and seen.get(side) is False or not ok and seen.get(side):
            break
    return best


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--libraries", nargs="+", default=["numba", "torch"], choices=["numba", "torch"])
    p.add_argument("--iterations", type=int, default=FINEST_CAP)
    p.add_argument("--budget-gib", type=float, default=None, help="default: MemTotal")
    p.add_argument("--start", type=int, default=None, help="first size (default: nst's estimate)")
    p.add_argument("--step", type=int, default=128)
    args = p.parse_args(argv)
    from nst import memory
    budget = args.budget_gib * 2**30 if args.budget_gib else os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    start = args.start or estimated_largest(budget, args.iterations)
    print(f"budget {memory.gib(budget)}, start {start}px, step {args.step}, {args.iterations} iterations")
    for library in args.libraries:
        best = search(library, start, args.step, args.iterations, budget / 2**20, print)
        print(f"| {library} | {best[0] if best else '< ' + str(start)} px | "
              f"{best[1]['peak_mib'] / 1024:.2f} GiB | {best[1]['wall_s']:.0f} s |" if best else
              f"| {library} | none from {start} px down |", flush=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        library, side, iterations = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
        if library == "torch":
            result = torch_worker(side, iterations)
        else:
            import tempfile
            with tempfile.TemporaryDirectory() as d:
                result = nst_worker(side, iterations, os.path.join(d, "out.png"))
        print(json.dumps(result))
    else:
        main()
