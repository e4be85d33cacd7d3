"""The memory estimate (`nst transfer --dry-run`, nst.memory) against the peak RSS of real runs.

What is measured: `nst transfer C starry_night.jpg -o out.png --scales 1 --iterations 2 --size S
[--backend B] [--tile T]` in fresh child processes, each reporting its own peak RSS (VmHWM: reset
at exec); the estimate is `--dry-run`'s total with the same options. C is tubingen.jpg (T, 4:3), a
square crop of it (S, 1:1) or a 3:1 crop (W). Each case runs --rounds times (the peak of a numba
run moves with how its threads' allocations fall in glibc's heap), and the table gives the
smallest and largest peak, and the estimate's error against each: tests/test_memory.py allows
−5 % … +15 %, and `--tile auto` plans within memory.AUTO_TILE_SHARE (95 %) of the free memory.

    python bench/bench_memory_estimate.py                       # the default cases, 3 rounds
    python bench/bench_memory_estimate.py --cases numba:T:768:256 numpy:T:512 --rounds 5
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
from shared_images import image  # noqa: E402

CASES = ["numba:T:512", "numba:T:1024", "numba:T:1536", "numba:S:1024", "numba:W:2048",
         "numba:T:768:256", "numba:T:1536:512", "numpy:T:512", "numpy:T:1024"]
# the child: an nst command, then its own peak RSS (VmHWM: reset at exec); tests/test_memory.py's too
CHILD = """
import json, sys
from nst.cli import main
code = main(sys.argv[1:])
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")) * 1024
print(json.dumps({"exit": code, "peak": hwm}))
"""


def contents(folder):
    # {T, S, W: path}: tubingen.jpg, its centred square crop and a 3:1 crop of its middle
    t = np.asarray(Image.open(image("tubingen.jpg")).convert("RGB"))
    h, w = t.shape[:2]
    square, strip = t[:, (w - h) // 2:(w + h) // 2], t[h // 2 - w // 6:h // 2 + w // 6]
    paths = {"T": image("tubingen.jpg")}
    for name, a in (("S", square), ("W", strip)):
        paths[name] = Path(folder) / f"{name}.png"
        Image.fromarray(a).save(paths[name])
    return paths


def argv(case, paths, out):
    # "backend:content:size[:tile]" -> nst transfer's arguments
    backend, content, size, *tile = case.split(":")
    return ["transfer", str(paths[content]), str(image("starry_night.jpg")), "-o", str(out),
            "--backend", backend, "--size", size, "--scales", "1", "--iterations", "2",
            "--tile", tile[0] if tile else "0"]


def run(args, *extra):
    # the child's stdout, and its {exit, peak} (a dry run's are its last line too)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", CHILD, *args, *extra], capture_output=True, text=True, env=env)
    if out.returncode:
        raise SystemExit(f"{' '.join(args)}: {out.stderr.strip()[-500:]}")
    return out.stdout, json.loads(out.stdout.strip().splitlines()[-1])


def needs_about(text):
    # --dry-run's printed total ("… needs about 0.84 GiB, …"), bytes
    return float(text.split("needs about ")[1].split(" GiB")[0]) * 2**30


def estimate(args):
    # --dry-run's total, bytes
    return needs_about(run(args, "--dry-run")[0])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", nargs="+", default=CASES, help="backend:content:size[:tile], content T, S or W")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    print("| backend | picture | tile | estimate | peak, smallest–largest (runs) | error |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        paths = contents(folder)
        for case in a.cases:
            args = argv(case, paths, Path(folder) / "out.png")
            run(args)                                   # a first run fills Numba's cache, not counted
            want = estimate(args)
            peaks = sorted(run(args)[1]["peak"] for _ in range(a.rounds))
            backend, content, size, *tile = case.split(":")
            gib = [f"{p / 2**30:.3f}" for p in (want, peaks[0], peaks[-1])]
            error = f"{want / peaks[-1] - 1:+.1%} … {want / peaks[0] - 1:+.1%}"
            print(f"| {backend} | {content} {size} px | {tile[0] if tile else '—'} | {gib[0]} | "
                  f"{gib[1]}–{gib[2]} ({a.rounds}) | {error} |", flush=True)


if __name__ == "__main__":
    main()
