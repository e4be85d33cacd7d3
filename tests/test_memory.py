"""The memory estimate (nst.memory, `--dry-run`) against the peak RSS of real runs, in fresh processes.

Each run is `nst transfer` on the paper's pair with the real weights, L-BFGS with its history full
(--history 1, 3 iterations), in a child process that reports its own peak RSS (VmHWM: reset at exec,
unlike ru_maxrss, which a child inherits from a large parent such as pytest).
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nst.cli import main

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from bench_memory_estimate import CHILD, needs_about  # noqa: E402  (the child reporting its VmHWM)

IMAGES = Path(os.environ.get("NST_IMAGES") or Path(__file__).resolve().parents[2] / "shared" / "images")
ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.integration
TOLERANCE = 0.15                       # issue #23: within ±15 % of the measured peak, and never more
UNDER = 0.05                           # than 5 % below it: --tile auto plans within 95 % of the free
                                       # memory (memory.AUTO_TILE_SHARE), so a lower estimate overruns


def args(backend, size, out, *extra):
    return ["transfer", str(IMAGES / "tubingen.jpg"), str(IMAGES / "starry_night.jpg"), "-o", str(out),
            "--backend", backend, "--size", str(size), "--scales", "1", "--iterations", "3",
            "--history", "1", *extra]


def estimate(capsys, argv):
    assert main([*argv, "--dry-run"]) == 0
    return needs_about(capsys.readouterr().out)


def measure(argv, backend):
    # numba: the second of two runs (the first fills Numba's cache, so LLVM's compile-time memory,
    # a one-off per machine and not the run's, is not counted)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for _ in range(2 if backend == "numba" else 1):
        out = subprocess.run([sys.executable, "-c", CHILD, *argv], capture_output=True, text=True, env=env)
        assert out.returncode == 0, out.stderr[-2000:]
        result = json.loads(out.stdout.strip().splitlines()[-1])
        assert result["exit"] == 0, out.stderr[-2000:]
    return result["peak"]


@pytest.mark.parametrize("backend, size, tile", [("numba", 512, "0"), ("numpy", 512, "0"),
                                                 ("numba", 768, "256"), ("numba", 1024, "0")])
def test_estimate_within_15_percent_of_the_peak(backend, size, tile, tmp_path, capsys):
    # numba 1024 px: the heap its freed blocks stay in (kernels/cpu_memory.py) is fragmented by the
    # backward, 12 % above an estimate that did not count it (memory.KEPT)
    if not (IMAGES / "tubingen.jpg").exists():
        pytest.skip(f"test images not found in {IMAGES}")
    argv = args(backend, size, tmp_path / "out.png", "--tile", tile)
    want, got = estimate(capsys, argv), measure(argv, backend)
    assert -UNDER * got <= want - got <= TOLERANCE * got, \
        f"{backend} {size}px tile {tile}: estimate {want / 2**30:.3f} GiB, peak RSS {got / 2**30:.3f} GiB"


HEAVY = ("distributed", "dask", "cv2", "av", "torch")


def test_a_transfer_loads_no_batch_video_or_torch_libraries(tmp_path):
    # an nst transfer's peak RSS is what the estimate counts: Dask's distributed alone is 24 MB more
    # (an import of nst.batch.engine in nst batch's command module made numpy 512 px 9 % over it)
    if not (IMAGES / "tubingen.jpg").exists():
        pytest.skip(f"test images not found in {IMAGES}")
    argv = args("numpy", 64, tmp_path / "out.png")
    child = ("import sys; from nst.cli import main; code = main(sys.argv[1:]); "
             f"print([m for m in {HEAVY!r} if m in sys.modules], code)")
    out = subprocess.run([sys.executable, "-c", child, *argv], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.stdout.strip().splitlines()[-1] == "[] 0", out.stderr[-2000:]
