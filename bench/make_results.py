"""Regenerates bench/RESULTS.md: the machine, the date, the exact commands and their tables.

Runs bench/bench_evaluation.py (nst vs PyTorch, each library in its own fresh processes: one
evaluation at 256², 512², 1024², peak RSS, the largest size, time to a picture at 512²),
bench/bench_layers.py (the same comparison layer by layer at the smallest size) and
bench/bench_kernels_cpu.py (per-kernel table: every version at the VGG19 layer shapes), each in its own
process, and writes their markdown under a header that records the machine (lscpu's model name),
the date, the library versions and the commands.

    python bench/make_results.py            # the full table: ≈ 13 min on a quiet 2-core machine
    python bench/make_results.py --quick    # 256² and 512², 2 rounds, 30 picture iterations: ≈ 4–5 min
    python bench/make_results.py --quick --out /tmp/RESULTS.md     # a try-out
(Estimates: evaluations ≈ 6 min, time to a picture ≈ 6 min, layers ≈ 1 min, kernel table ≈ 2 min; set
NST_IMAGES=/work/shared/images when the images are not at ../shared/images.)
Time it on a quiet machine: other load skews every number (the load average is recorded).
"""
import argparse
import datetime
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent


def cpu_model():
    # lscpu's "Model name" (with its family and model: "AMD EPYC" names several kinds) and the
    # SIMD flags that matter for sgemm (AVX-512, BF16, AMX)
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        info = {k.strip(): v.strip() for k, v in (ln.split(":", 1) for ln in out.splitlines() if ":" in ln)}
        model = info.get("Model name", "unknown")
        if "CPU family" in info and "Model" in info:
            model += f", lscpu family {info['CPU family']} model {info['Model']}"
        flags = info.get("Flags", "").split()
    except OSError:
        model, flags = platform.processor() or "unknown", []
    simd = [f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile") if f in flags]
    return f"{model} ({' '.join(simd) or 'no AVX2'})"


def mem_total_gib():
    try:
        with open("/proc/meminfo") as f:
            return f"{int(f.readline().split()[1]) / 2 ** 20:.0f} GiB"
    except OSError:
        return "unknown"


def versions():
    out = {"python": platform.python_version()}
    import numpy
    out["numpy"] = numpy.__version__
    try:
        blas = numpy.show_config(mode="dicts")["Build Dependencies"]["blas"]
        out["numpy BLAS"] = f"{blas.get('name')} {blas.get('version', '')}".strip()
    except Exception:
        pass
    for name in ("numba", "torch"):
        try:
            out[name] = __import__(name).__version__
        except ImportError:
            out[name] = "not installed"
    return out


def thread_env():
    # the variables that change thread counts or spinning (OpenBLAS, OpenMP, Numba, MKL)
    keys = sorted(k for k in os.environ if k.startswith(("OMP_", "OPENBLAS_", "NUMBA_", "MKL_", "GOMP_")))
    return ", ".join(f"{k}={os.environ[k]}" for k in keys)


def run(cmd):
    # -> stdout of cmd (progress on stderr goes to the terminal); a failure is recorded, not raised
    print("$ " + " ".join(map(shlex.quote, cmd)), file=sys.stderr, flush=True)
    p = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    if p.returncode:
        return p.stdout + f"\n(exited with status {p.returncode})\n"
    return p.stdout


def kept_sections(path):
    # sections of RESULTS.md written by other scripts or by hand (bench_pictures.py's, bench_web.py's,
    # bench_video.py's, bench_time_to_picture.py's, the measurements moved out of code comments,
    # issue #23's "Any size", the per-evaluation table of another CPU kind, the GPU check's tables;
    # each between its markers)
    # survive a rerun
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    kept = ""
    for script in ("bench_pictures", "bench_time_to_picture", "bench_web", "bench_video", "measurements",
                   "any_size", "per_kind", "gpu_check"):
        begin, end = f"<!-- {script} begin -->", f"<!-- {script} end -->"
        if begin in old and end in old:
            kept += "\n" + old[old.index(begin):old.index(end) + len(end)] + "\n"
    return kept


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--picture-iterations", type=int, default=100)
    ap.add_argument("--backends", nargs="+", default=["numba", "torch"])
    ap.add_argument("--quick", action="store_true",
                    help="256² and 512², 2 rounds, 30 picture iterations, no kernel table")
    ap.add_argument("--no-kernels", action="store_true", help="skip bench/bench_kernels_cpu.py")
    ap.add_argument("--out", default=str(BENCH / "RESULTS.md"))
    args = ap.parse_args(argv)
    if args.quick:
        args.sizes, args.rounds, args.picture_iterations, args.no_kernels = [256, 512], 2, 30, True

    py = sys.executable
    rel = lambda p: str(Path(p).relative_to(ROOT))        # noqa: E731
    eval_cmd = [py, rel(BENCH / "bench_evaluation.py"), "--sizes", *map(str, args.sizes),
                "--rounds", str(args.rounds), "--repeats", str(args.repeats),
                "--picture-iterations", str(args.picture_iterations), "--backends", *args.backends]
    kernel_cmd = None if args.no_kernels else [py, rel(BENCH / "bench_kernels_cpu.py")]
    layer_cmd = [py, rel(BENCH / "bench_layers.py"), "--size", str(min(args.sizes))]

    started = datetime.datetime.now().astimezone()
    load_before = os.getloadavg()
    sections = ["## nst vs PyTorch: one evaluation, memory, time to a picture\n", run(eval_cmd),
                "\n## nst vs PyTorch layer by layer (bench/bench_layers.py)\n", run(layer_cmd)]
    if kernel_cmd:
        sections += ["\n## Kernels (bench/bench_kernels_cpu.py)\n", run(kernel_cmd)]
    load_after = os.getloadavg()

    this = [py, rel(Path(__file__).resolve())] + list(sys.argv[1:] if argv is None else argv)
    shown = lambda cmd: " ".join(["python"] + [shlex.quote(c) for c in cmd[1:]])   # noqa: E731
    header = [
        "# Benchmark results",
        "",
        f"Regenerated by `{shown(this)}`;"
        " do not edit by hand. What each column measures: the header comment of each script.",
        "",
        f"- date: {started:%Y-%m-%d %H:%M %Z}",
        f"- machine: {cpu_model()}, {os.cpu_count()} logical CPUs, {mem_total_gib()} RAM, "
        f"{platform.system()} {platform.release()}",
        "- " + ", ".join(f"{k} {v}" for k, v in versions().items()),
        f"- load average (1 min) before / after: {load_before[0]:.2f} / {load_after[0]:.2f}",
        f"- NST_HOME: {os.environ.get('NST_HOME', '(default cache)')}; thread settings in the "
        f"environment: {thread_env() or 'none (libraries pick their defaults)'}",
        "- commands:",
        f"  - `{shown(eval_cmd)}`",
        f"  - `{shown(layer_cmd)}`",
    ]
    if kernel_cmd:
        header.append(f"  - `{shown(kernel_cmd)}`")
    text = "\n".join(header) + "\n\n" + "\n".join(s.rstrip("\n") + "\n" for s in sections)
    Path(args.out).write_text(text + kept_sections(Path(args.out)), encoding="utf-8")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
