"""bench/gpu_check.sh and the GPU benchmarks it runs, without a GPU.

A lent GPU machine runs the check once, for minutes: a renamed function or a bad format string
after the GPU part would waste that. Here each benchmark runs end to end on a `cupy` made of
NumPy (its arrays are numpy arrays, so kernels/cuda's launchers run the .cu sources on cuda-cpu)
at tiny sizes and writes its table; the shell script runs with a one-second budget and a python
that hangs: each step is stopped at its limit, and the summary and the logs must still come out
as the lent machine can send them back (at most 8 files).
"""
import os
import subprocess
import tarfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_gpu_check_stops_each_step_and_sends_back_a_summary(tmp_path):
    # with a python that hangs and a one-second budget, every step is stopped (exit 124); $OUT
    # still gets results.md and the logs in one tarball
    hanging = tmp_path / "python"
    hanging.write_text("#!/bin/sh\nexec sleep 60\n")
    hanging.chmod(0o755)
    out = tmp_path / "out"
    env = dict(os.environ, OUT=str(out), PYTHON=str(hanging), GPU_CHECK_SECONDS="1", NST_IMAGES=str(tmp_path))
    done = subprocess.run(["bash", os.path.join(ROOT, "bench", "gpu_check.sh")], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 124, done.stdout + done.stderr
    assert sorted(os.listdir(out)) == ["logs.tgz", "results.md"]
    summary = (out / "results.md").read_text(encoding="utf-8")
    assert summary.count("exit 124 (stopped at its time limit)") == 6, summary
    for line in ("- tests (tests/test_ops.py -m gpu):", "- auto's self-check:", "- benchmark (bench/bench_gpu.py):",
                 "- nst gradcheck --backend cupy:", "- evaluation benchmark", "- host time per operation",
                 "- the default 512 px picture", "- the whole check:"):
        assert line in summary, summary
    with tarfile.open(out / "logs.tgz") as logs:
        names = {os.path.basename(n) for n in logs.getnames()}
    assert {"machine.txt", "tests.log", "selfcheck.log", "bench.log", "gradcheck.log", "bench_eval.log",
            "bench_host.log"} <= names, names
