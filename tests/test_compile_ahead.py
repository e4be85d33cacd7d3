"""nst/backends/compile_ahead.py: the first run's Numba compilation, done ahead in parallel processes."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nst.backends import compile_ahead

ROOT = Path(__file__).resolve().parents[1]

# an Objective with VGG19's own widths (the kernel versions are chosen by a layer's channels), one
# evaluation at 128² (pool rows both wider and narrower than the max-pool backward packs); prints
# which cached kernels of nst.kernels it compiled or loaded, and whether the cache was cold after
EVALUATE = """
import json, sys
import numpy as np
from numba.core.registry import CPUDispatcher
from nst.backends.compile_ahead import cold
from nst.objective import Objective
from nst.testing import tiny_params
w = tiny_params(widths={"block1": 64, "block2": 128, "block3": 256, "block4": 512, "block5": 512})
c, s = (np.random.default_rng(k).random((128, 128, 3), np.float32) * 255 for k in (0, 1))
Objective(c, s, content_weight=1, style_weight=10, tv_weight=1e-3, style_layer_weights="auto", weights=w,
          backend="numba")(c)
used = sorted(f"{name[len('nst.kernels.'):]}.{k}" for name, m in list(sys.modules.items())
              if name.startswith("nst.kernels.") for k, f in vars(m).items()
              if isinstance(f, CPUDispatcher) and f.signatures and f._cache.__class__.__name__ == "FunctionCache")
print(json.dumps({"used": used, "cold": cold()}))
"""


def run_python(code, **env):
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, **env}, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_the_kernels_compiled_ahead_are_the_ones_a_run_calls():
    # KERNELS (what `cold` looks at) against the kernels an evaluation calls: one the list lacks would
    # compile in the run as before; one the run no longer calls would be cold forever, and every run
    # would compile ahead again
    answer = json.loads(run_python(EVALUATE).splitlines()[-1])
    assert answer["used"] == sorted(f"{m}.{k}" for m, names in compile_ahead.KERNELS.items() for k in names)
    assert answer["cold"] is False


def test_a_run_after_compile_ahead_compiles_nothing(tmp_path):
    # an empty cache: compile_ahead's processes compile and save every kernel; a fresh process's
    # evaluation then loads each and compiles none (the types its ops give the kernels are a run's)
    cache = str(tmp_path / "numba_cache")
    groups = run_python("from nst.backends.compile_ahead import compile_ahead; print(compile_ahead(processes=2))",
                        NUMBA_CACHE_DIR=cache)
    assert groups.split("\n")[-2] == str(list(compile_ahead.GROUPS)), groups
    out = run_python(EVALUATE, NUMBA_CACHE_DIR=cache, NUMBA_DEBUG_CACHE="1")
    assert out.count("data saved to") == 0 and out.count("data loaded from") >= len(json.loads(
        out.splitlines()[-1])["used"]), out[-3000:]
    assert json.loads(out.splitlines()[-1])["cold"] is False


def test_a_group_that_fails_is_left_to_the_run(monkeypatch):
    # a group whose process fails is not counted as compiled; one core: nothing ahead (no gain)
    monkeypatch.setattr(compile_ahead, "cold", lambda: True)
    monkeypatch.setattr(compile_ahead, "GROUPS", {"no such group": None, **compile_ahead.GROUPS})
    monkeypatch.setattr(compile_ahead, "compile_group", None)       # the children import their own
    said = []
    assert compile_ahead.compile_ahead(processes=1) == []
    assert compile_ahead.compile_ahead(processes=2, log=said.append) == list(compile_ahead.GROUPS)[1:]
    assert said == ["nst: compiling the CPU kernels for this machine, once (2 processes at a time)"]


@pytest.mark.parametrize("python", ["hangs", "missing"])
def test_a_group_whose_process_hangs_or_cannot_start_is_left_to_the_run(monkeypatch, tmp_path, python):
    # a hung process is killed after GROUP_TIMEOUT_S, one that cannot start is skipped: nothing compiled ahead
    script = tmp_path / "python"
    if python == "hangs":
        script.write_text("#!/bin/sh\nsleep 60\n")
        script.chmod(0o755)
    monkeypatch.setattr(compile_ahead, "cold", lambda: True)
    monkeypatch.setattr(compile_ahead, "GROUP_TIMEOUT_S", 0.3)
    monkeypatch.setattr(sys, "executable", str(script))
    assert compile_ahead.compile_ahead(processes=len(compile_ahead.GROUPS)) == []


def test_a_cache_it_cannot_look_at_is_taken_as_warm(monkeypatch):
    # another Numba's internals (no _cache_file): the run compiles as it goes, nothing ahead
    monkeypatch.setattr(compile_ahead, "KERNELS", {"tv_loss": ("tv_loss_and_grad_v1",)})   # a plain function
    assert compile_ahead.cold() is False


@pytest.mark.parametrize("answer", [True, False])
def test_compile_ahead_looks_once_a_process(monkeypatch, answer):
    monkeypatch.setattr(compile_ahead, "_LOOKED", [])
    looked = []
    monkeypatch.setattr(compile_ahead, "compile_ahead", lambda log=None: looked.append(log) or answer)
    compile_ahead.compile_ahead_once(print)
    compile_ahead.compile_ahead_once(print)
    assert looked == [print]
