"""bench/gpu_check.sh and the GPU benchmarks it runs, without a GPU.

A lent GPU machine runs the check once, for minutes: a renamed function or a bad format string
after the GPU part would waste that. Here each benchmark runs end to end on a `cupy` made of
NumPy (its arrays are numpy arrays, so kernels/cuda's launchers run the .cu sources on cuda-cpu)
at tiny sizes and writes its table; the shell script runs with a one-second budget and a python
that hangs: each step is stopped at its limit, and the summary and the logs must still come out
as the lent machine can send them back (at most 8 files).
"""
import os
import re
import subprocess
import sys
import tarfile
import time
import types

import numpy as np
import pytest

from nst.testing import tiny_params

from conftest import no_cpp_compiler

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def numpy_cupy():
    # a `cupy` module made of numpy: what the GPU benchmarks call, with CUDA events as host clocks
    cp = types.ModuleType("cupy")
    cp.__getattr__ = lambda name: getattr(np, name)
    cp.__version__ = "numpy stand-in"
    cp.asnumpy = np.asarray

    class Generator:
        def __init__(self, seed=None):
            self.rng = np.random.default_rng(seed)

        def standard_normal(self, size=None, dtype=np.float64):
            return self.rng.standard_normal(size, dtype=dtype)

        def random(self, size=None, dtype=np.float64):
            return self.rng.random(size, dtype=dtype)

    legacy = np.random.default_rng(0)
    cp.random = types.SimpleNamespace(
        default_rng=Generator, seed=lambda seed=None: None,
        rand=lambda *size, dtype=np.float64: legacy.random(size).astype(dtype),
        standard_normal=lambda size=None, dtype=np.float64: legacy.standard_normal(size).astype(dtype),
        uniform=lambda low=0.0, high=1.0, size=None, dtype=np.float64: legacy.uniform(low, high, size).astype(dtype))

    class Event:
        def record(self, stream=None):
            self.t = time.perf_counter()

        def synchronize(self):
            pass

    class Device:
        id, compute_capability = 0, "90"

        def __init__(self, device=0):
            pass

        def synchronize(self):
            pass

    pool = types.SimpleNamespace(free_all_blocks=lambda: None, total_bytes=lambda: 0, used_bytes=lambda: 0)
    cp.get_default_memory_pool = lambda: pool
    runtime = types.SimpleNamespace(
        getDeviceCount=lambda: 1, runtimeGetVersion=lambda: 13000, driverGetVersion=lambda: 13000,
        memGetInfo=lambda: (80 << 30, 80 << 30),
        getDeviceProperties=lambda device: {"name": b"NumPy stand-in", "multiProcessorCount": 1,
                                            "major": 9, "minor": 0, "totalGlobalMem": 80 << 30})
    cp.cuda = types.SimpleNamespace(Event=Event, Device=Device, runtime=runtime,
                                    get_elapsed_time=lambda start, end: (end.t - start.t) * 1e3)
    cp.RawKernel = lambda code, name: (lambda grid, block, args: None)
    return cp


@pytest.fixture
def bench(monkeypatch):
    # the bench/ scripts importable, with numpy standing in for cupy (restored afterwards)
    if no_cpp_compiler():
        pytest.skip("no C++ compiler: cuda-cpu cannot build")
    monkeypatch.setitem(sys.modules, "cupy", numpy_cupy())
    monkeypatch.syspath_prepend(os.path.join(ROOT, "bench"))
    monkeypatch.delenv("OUT", raising=False)


def test_bench_gpu_writes_its_table(bench, monkeypatch, tmp_path):
    # every section (style, both convs, the bandwidth kernels) runs and reaches the table
    import bench_gpu
    monkeypatch.setattr(bench_gpu, "VGG_LAYERS", [("block3_conv1", 5, 7, 4)])
    monkeypatch.setattr(bench_gpu, "STYLE_LAYERS", [("block1_conv1", 6, 1)])
    sgemm = bench_gpu.measure_sgemm
    monkeypatch.setattr(bench_gpu, "measure_sgemm", lambda: sgemm(64))
    out = tmp_path / "bench_gpu.md"
    bench_gpu.main(["--sizes", "8", "--budget", "600", "--out", str(out)])
    table = out.read_text(encoding="utf-8")
    assert "section failed" not in table and "MISMATCH" not in table and "budget spent" not in table, table
    for row in ("| style_v2_fused |", "| gram_cublas |", "| v3_wmma_tf32 |", "| adam_step.v1 |"):
        assert row in table, table
    assert table.count("| block3_conv1 | 5→7 | 2×2 |") == 2 * 4, table        # 4 versions, 2 ops


def test_bench_gpu_host_writes_its_table(bench, monkeypatch, tmp_path):
    import bench_gpu_host
    per_call = bench_gpu_host.per_call
    monkeypatch.setattr(bench_gpu_host, "SCALES", ((16, 20),))
    monkeypatch.setattr(bench_gpu_host, "per_call", lambda fn, calls: per_call(fn, 2))
    out = tmp_path / "host.md"
    bench_gpu_host.main(["--out", str(out)])
    table = out.read_text(encoding="utf-8")
    assert "| one evaluation, 20×16 |" in table and "| compact / two-loop |" in table, table
    assert "The two directions agree to" in table, table


def test_bench_gpu_evaluation_writes_its_table(bench, monkeypatch, tmp_path):
    # one size, nst FP32 and TF32 (torch's rows need CUDA), then both optimisers on the device, each
    # row labelled with the size it measured; the tiny VGG19 (few channels): the TF32 kernels are
    # slow on cuda-cpu at the real widths
    import bench_gpu_evaluation
    monkeypatch.setattr(bench_gpu_evaluation, "random_vgg", tiny_params)
    images = bench_gpu_evaluation.images
    time_gpu = bench_gpu_evaluation.time_gpu
    monkeypatch.setattr(bench_gpu_evaluation, "images", lambda size, seed=1: images(16, seed))
    monkeypatch.setattr(bench_gpu_evaluation, "time_gpu",
                        lambda fn, **kw: time_gpu(fn, min_iters=1, max_iters=1, warmup=0))
    out = tmp_path / "evaluation.md"
    bench_gpu_evaluation.main(["--sizes", "16", "--iterations", "2", "--out", str(out)])
    table = out.read_text(encoding="utf-8")
    assert "failed" not in table, table
    for row in ("| 16² | nst FP32 |", "| 16² | nst TF32 conv |", "| 16² | adam |", "| 16² | lbfgs |"):
        assert row in table, table                  # the optimisers' rows said 512² whatever the size


def test_gpu_check_stops_each_step_and_sends_back_a_summary(tmp_path):
    # with a python that hangs and a one-second budget, every step is stopped (exit 124); $OUT
    # still gets results.md and the logs in one tarball
    hanging = tmp_path / "python"
    hanging.write_text("#!/bin/sh\nexec sleep 60\n")
    hanging.chmod(0o755)
    (tmp_path / "tubingen.jpg").write_bytes(b"")          # the picture's runs start (and are stopped)
    out = tmp_path / "out"
    env = dict(os.environ, OUT=str(out), PYTHON=str(hanging), GPU_CHECK_SECONDS="1", NST_IMAGES=str(tmp_path),
               NST_WEIGHTS=str(tmp_path / "vgg19.h5"))
    done = subprocess.run(["bash", os.path.join(ROOT, "bench", "gpu_check.sh")], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 124, done.stdout + done.stderr
    assert sorted(os.listdir(out)) == ["logs.tgz", "results.md"]
    summary = (out / "results.md").read_text(encoding="utf-8")
    assert summary.count("exit 124 (stopped at its time limit)") == 7, summary
    assert re.search(r"picture .*: exit 124 .*, median \d+\.\d\d s wall of \d+\.\d\d \(", summary), summary
    for line in ("- tests (tests/test_ops.py -m gpu):", "- auto's self-check:", "- benchmark (bench/bench_gpu.py):",
                 "- nst gradcheck --backend cupy:", "- evaluation benchmark", "- host time per operation",
                 "- the default 512 px picture", "- the whole check:"):
        assert line in summary, summary
    with tarfile.open(out / "logs.tgz") as logs:
        names = {os.path.basename(n) for n in logs.getnames()}
    assert {"machine.txt", "tests.log", "selfcheck.log", "bench.log", "gradcheck.log", "bench_eval.log",
            "bench_host.log"} <= names, names
