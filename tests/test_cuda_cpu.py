"""The cuda-cpu emulator (kernels/cuda/host): the CUDA rules it enforces, its build and modes.

tests/cuda_cpu_cases.cu holds one small kernel per rule; each test launches one and checks the
one-line error (or the result). The kernels of kernels/cuda themselves are checked against the
NumPy reference in tests/test_ops.py (the video ops in tests/test_video_kernels.py); planted bugs
in tests/test_cuda_cpu_bugs.py.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

from nst.kernels.cuda import _common as K
from nst.kernels.cuda.host import build

from conftest import assert_close, no_cpp_compiler
from nst import losses, ops
from nst.kernels import cuda as kc


pytestmark = pytest.mark.skipif(no_cpp_compiler(), reason="no C++ compiler: cuda-cpu cannot build")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASES = "cuda_cpu_cases.cu"


@pytest.fixture(scope="module")
def cases():
    with open(os.path.join(ROOT, "tests", CASES), encoding="utf-8") as f:
        text = f.read()
    with build.patched({CASES: text}):
        yield build.module(CASES)


def launch(cases, kernel, grid, block, args, shared_mem=0):
    cases.get_function(kernel)(grid, block, args, shared_mem)


def test_dynamic_shared_and_barrier(cases):
    out = K.HOST.empty((2, 64))
    launch(cases, "dynamic_reverse", (2,), (64,), (out,), shared_mem=64 * 4)
    assert np.array_equal(out, np.tile(np.arange(63, -1, -1, dtype=np.float32), (2, 1)))


def test_block_sum_over_warps(cases):
    out = K.HOST.empty(3)
    launch(cases, "count_threads", (3,), (96,), (out,))
    assert np.array_equal(out, [96, 96, 96])


def test_shared_and_device_memory_start_poisoned(cases):
    out = np.zeros(256, np.float32)
    launch(cases, "read_unwritten_shared", (1,), (256,), (out,))
    assert np.isnan(out).all()
    assert np.isnan(K.HOST.empty((3, 4))).all()
    assert (K.HOST.empty(5, np.uint32) == 0xFFFFFFFF).all()


@pytest.mark.parametrize("kernel,block,words", [
    ("divergent_barrier", 32, "divergent __syncthreads"),
    ("exit_before_barrier", 64, "deadlock: 63 of 64 threads wait at __syncthreads"),
    ("shuffle_absent_lanes", 16, "absent from this 16-thread warp"),
    ("shuffle_without_self", 32, "leaves out the calling lane"),
    ("too_much_shared", 32, "over the 48 KiB"),
    ("wmma_misaligned", 32, "not 256-bit aligned"),
    ("traps", 32, "__trap() called"),
])
def test_rule_broken_is_an_error(cases, kernel, block, words):
    with pytest.raises(build.HostKernelError) as err:
        launch(cases, kernel, (1,), (block,), (np.zeros(block, np.float32),))
    msg = str(err.value)
    assert words in msg and "\n" not in msg and kernel in msg, msg


def test_launch_arguments_checked_against_the_signature(cases):
    out = np.zeros(1, np.float32)
    launch(cases, "scalars", (1,), (32,), (out, np.int32(3), np.float32(0.5)))
    assert out[0] == 3.5
    bad = [((out, 3, np.float32(0.5)), "Python int, which CuPy passes as 8 bytes"),
           ((out, np.int64(3), np.float32(0.5)), "expected np.int32"),
           ((out, np.int32(3), 0.5), "Python float"),
           ((out.astype(np.float64), np.int32(3), np.float32(0.5)), "float64 array"),
           ((out, np.int32(3)), "2 arguments, the kernel takes 3")]
    for args, words in bad:
        with pytest.raises(build.HostKernelError, match=words):
            launch(cases, "scalars", (1,), (32,), args)
    with pytest.raises(build.HostKernelError, match="1 to 1024 threads"):
        launch(cases, "scalars", (1,), (2048,), (out, np.int32(1), np.float32(0)))


@pytest.mark.parametrize("body,words", [
    ("o[0] = __ballot_sync(0xffffffffu, 1);", "__ballot_sync"),
    ("o[0] = __shfl_down_sync(0xffffffffu, o[0], 1, 16);", "passed 4 arguments"),   # width: unemulated
])
def test_unemulated_feature_is_a_compile_error(body, words):
    text = 'extern "C" __global__ void k(float* o) { ' + body + " }\n"
    with build.patched({"unemulated.cu": text}), pytest.raises(build.HostBuildError, match=words):
        build.module("unemulated.cu")


def test_missing_compiler_is_one_line(monkeypatch):
    monkeypatch.setenv("CXX", "/nonexistent/c++")
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(build.HostCompilerMissing) as err:
        build.compiler()
    assert "\n" not in str(err.value) and "no C++ compiler" in str(err.value)


def test_build_is_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("NST_CUDA_CPU_CACHE", str(tmp_path))
    path, kernels = build.compile_library("tv_loss.cu", "fast")
    assert kernels == ["tv_loss_v1"] and os.path.dirname(path) == str(tmp_path)
    mtime = os.path.getmtime(path)
    assert build.compile_library("tv_loss.cu", "fast")[0] == path and os.path.getmtime(path) == mtime
    with build.patched({"tv_loss.cu": build.file_text("tv_loss.cu") + "\n// changed\n"}):
        assert build.compile_library("tv_loss.cu", "fast")[0] != path       # the source is in the key


def test_pre_ampere_build_traps_in_wmma_versions(rng):
    # sm_75 has no TF32 tensor cores: gemm_wmma.cuh compiles nothing, v3 traps, v2 still works
    mod = build.module("conv3x3_forward.cu", extra_flags=("-D__CUDA_ARCH__=750",))
    x, w, b = (rng.standard_normal(s).astype(np.float32) for s in ((3, 5, 7), (4, 3, 3, 3), (4,)))
    y = K.HOST.empty((4, 5, 7))
    mod.get_function("conv3x3_relu_fwd_v2")((1, 1), (256,), (x, w, b, y, *K.i32(3, 4, 5, 7)))
    assert not np.isnan(y).any()
    with pytest.raises(build.HostKernelError, match="__trap"):
        mod.get_function("conv3x3_relu_fwd_v3_wmma")((1, 1), (128,), (x, w, b, y, *K.i32(3, 4, 5, 7)))


def test_wmma_version_refused_on_an_older_gpu(monkeypatch):
    monkeypatch.setattr(K.Host, "ARCH", 75)
    x, w, b = np.ones((3, 5, 7), np.float32), np.ones((4, 3, 3, 3), np.float32), np.ones(4, np.float32)
    with pytest.raises(K.KernelArgError, match="needs compute capability 8.0, this GPU has 7.5"):
        kc.get("conv3x3_relu", "v3_wmma_tf32")(x, w, b)


def test_grid_stride_loops_are_64_bit(cases):
    # every grid-stride loop goes through grid_stride.cuh, whose index does not wrap at INT32_MAX
    import glob
    import re
    for path in glob.glob(os.path.join(os.path.dirname(K.__file__), "*.cu")):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        assert not re.search(r"for \(int \w+ = blockIdx", text), f"{path}: an int grid-stride index"
    count = np.zeros(1, np.uint32)
    n = 2**31 - 1 - 100                                    # within one stride (1024·256) of INT32_MAX
    launch(cases, "grid_stride_count", (1024,), (256,), (count, np.int32(n)))
    assert int(count[0]) == n


@pytest.mark.parametrize("order", ["reverse", "shuffle"])
def test_launch_orders(cases, monkeypatch, rng, order):
    # blocks and threads in another order (the places 3×4 threads take show it: an order the
    # emulator ignored passed): the split-K Gram's ticket still picks one finisher, the tiles still
    # meet at their barriers
    monkeypatch.setenv("NST_CUDA_CPU_ORDER", order)
    monkeypatch.setenv("NST_CUDA_CPU_SEED", "7")
    counter, places = np.zeros(1, np.uint32), np.zeros(12, np.uint32)
    launch(cases, "tickets", (3,), (4,), (counter, places))
    by_block = places.reshape(3, 4).astype(int)
    assert sorted(places) == list(range(12)) and (order != "reverse" or places.tolist() == list(range(12))[::-1])
    assert (np.diff(by_block.min(1)) < 0).any() and (np.diff(by_block, axis=1) < 0).any(), by_block   # both reordered
    a = np.abs(rng.standard_normal((70, 40, 33))).astype(np.float32)
    assert_close(kc.get("gram", "v2_splitk")(a), losses.gram(a.astype(np.float64)), what=order)
    x, w, b = a[:5].copy(), rng.standard_normal((67, 5, 3, 3)).astype(np.float32), np.zeros(67, np.float32)
    ref = ops.conv3x3_relu(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64))
    assert_close(kc.get("conv3x3_relu", "v2_tiled")(x, w, b), ref, what=order)


# a few kernel tests of tests/test_ops.py per sanitizer: the first (small) shape of each op (the
# ThreadSanitizer build starts an OS thread per CUDA thread), every kind of kernel (grid-stride,
# tiled with barriers, WMMA, split-K, shuffles)
SANITIZED = {
    "asan": "cuda-cpu and (3x5x7x9 or 3x7x9 or 5x7x9 or 7x9x3 or adam_step) and not backend",
    "tsan": "cuda-cpu and (conv3x3_relu- and 3x5x7x9 or 3x7x9 and (gram or style) or content and 5x7x9 "
            "or tv_loss and 7x9x3 or adam_step and noclip) and not backend",
}

# a planted bug each sanitizer must report: a read past the last row (tv_loss) for ASan, the
# missing barrier between warps in block_sum (content_loss) for TSan
PLANTED = {
    "asan": ("tv_loss.cu", "if (i < H - 1) {", "if (i < H) {", "AddressSanitizer: heap-buffer-overflow"),
    "tsan": ("reduce.cuh", "    if (lane == 0) warp_sums[warp] = v;\n    __syncthreads();",
             "    if (lane == 0) warp_sums[warp] = v;", "ThreadSanitizer: data race"),
}
RUN_PLANTED = r"""
import sys
import numpy as np
from nst.kernels import cuda as kc
from nst.kernels.cuda.host import build
name, old, new = sys.argv[1:4]
with build.patched({name: build.file_text(name).replace(old, new)}):
    x = np.random.default_rng(0).uniform(0, 255, (9, 11, 3)).astype(np.float32)
    if name == "tv_loss.cu":
        kc.get("tv_loss_and_grad", "v1_fused")(x)
    else:
        kc.get("content_loss_and_grad", "v1_fused")(x, x + 1)
print("finished")
"""


@pytest.mark.parametrize("mode", ["asan", "tsan"])
def test_sanitizer_builds(mode):
    # kernel tests under AddressSanitizer+UBSan / ThreadSanitizer (fresh Python, runtime preloaded),
    # then a planted bug the sanitizer must report
    env = build.sanitizer_env(mode)
    build.prebuild([kc.launcher(m).CU for m in kc.MODULES], mode)
    run = subprocess.run([sys.executable, "-m", "pytest", "tests/test_ops.py", "-q", "-p",
                          "no:cacheprovider", "-k", SANITIZED[mode]], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=900)
    tail = (run.stdout + run.stderr)[-3000:]
    assert run.returncode == 0 and " passed" in run.stdout and "Sanitizer" not in tail, tail
    name, old, new, report = PLANTED[mode]
    assert build.file_text(name).count(old) == 1
    run = subprocess.run([sys.executable, "-c", RUN_PLANTED, name, old, new], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert report in run.stderr and run.returncode != 0, (run.stdout + run.stderr)[-3000:]


@pytest.mark.skipif(__import__("shutil").which("gcov") is None, reason="no gcov beside the C++ compiler")
def test_every_kernel_line_runs():
    # the cuda-cpu kernel tests under gcov (tests/test_ops.py, and the video ops' bodies in
    # tests/test_video_kernels.py): every line of every .cu/.cuh runs at least once (each version,
    # each tile edge, the split-K finishing block, the WMMA path); prints the count
    names = [kc.launcher(m).CU for m in kc.MODULES]
    build.prebuild(names, "cov")
    for name in names:
        for f in os.listdir(build.coverage_dir(name)):
            if f.endswith((".gcda", ".gcov.json.gz")):
                os.remove(os.path.join(build.coverage_dir(name), f))
    run = subprocess.run([sys.executable, "-m", "pytest", "tests/test_ops.py", "tests/test_video_kernels.py", "-q",
                          "-p", "no:cacheprovider", "-k", "cuda-cpu and not backend"], cwd=ROOT,
                         capture_output=True, text=True,
                         env=dict(os.environ, NST_CUDA_CPU_BUILD="cov"), timeout=900)
    assert run.returncode == 0, run.stdout[-3000:]
    cuda_dir = os.path.dirname(os.path.abspath(K.__file__))
    ran, unrun = 0, []
    for path, lines in build.line_counts(names).items():
        if os.path.dirname(os.path.abspath(path)) != cuda_dir:
            continue
        with open(path, encoding="utf-8") as f:
            text = f.read().splitlines()
        for line, count in sorted(lines.items()):
            if count:
                ran += 1
            else:
                unrun.append(f"{os.path.basename(path)}:{line}: {text[line - 1].strip()}")
    print(f"{ran} kernel source lines ran")
    assert ran > 300 and not unrun, "lines no kernel test runs:\n" + "\n".join(unrun)


class StandInCupyArray(np.ndarray):
    """A numpy array that says it is a cupy.ndarray (for the seam's GPU branch)."""


StandInCupyArray.__module__ = "cupy"


def stand_in_cupy():
    # a `cupy` whose RawModule builds the text it is given (what NVRTC would get) for the host
    import types
    cp = types.ModuleType("cupy")
    cp.ndarray, cp.float32, cp.uint32 = StandInCupyArray, np.float32, np.uint32
    wrap = lambda a: np.asarray(a).view(StandInCupyArray)                        # noqa: E731
    cp.asarray = lambda a, dtype=None: wrap(np.array(a, dtype=dtype, copy=True))
    cp.asnumpy = lambda a: np.asarray(a).view(np.ndarray).copy()
    cp.empty = lambda shape, dtype=np.float32: wrap(K.HOST.empty(shape, dtype))
    cp.zeros = lambda shape, dtype=np.float32: wrap(np.zeros(shape, dtype))
    cp.ones = lambda shape, dtype=np.float32: wrap(np.ones(shape, dtype))
    cp.matmul, cp.sum, cp.ascontiguousarray = np.matmul, np.sum, np.ascontiguousarray
    cp.cuda = types.SimpleNamespace(Device=lambda: types.SimpleNamespace(compute_capability="80"),
                                    get_cuda_path=lambda: None)
    cp.compiled = []

    class RawModule:
        def __init__(self, code, options=()):
            self.code, self.options = code, options

        def compile(self):
            name = f"rawmodule{len(cp.compiled)}.cu"
            cp.compiled.append((name, self.options))
            with build.patched({name: self.code}):
                self.host = build.module(name)

        def get_function(self, kernel):
            return self.host.get_function(kernel)
    cp.RawModule = RawModule
    return cp


def test_gpu_branch_of_the_seam(monkeypatch, rng):
    # cupy arrays take the Gpu branch: allocation by cupy, kernels from RawModule(source(cu)), the
    # inlined text NVRTC gets; a stand-in cupy builds that text for the host and checks the results
    import test_ops as T
    cp = stand_in_cupy()
    monkeypatch.setitem(sys.modules, "cupy", cp)
    K.module.cache_clear()
    try:
        T.test_conv3x3_relu("conv3x3_relu", T.GPU, "v3_wmma_tf32", (65, 129, 17, 9), rng)
        T.test_style_loss_and_grad("style_loss_and_grad", T.GPU, "v2_fused", (70, 9, 11), rng)
        T.test_adam_step("adam_step", T.GPU, "v1", (1001,), rng, 0.0, 255.0, 3.0)
    finally:
        K.module.cache_clear()
    assert len(cp.compiled) == 3 and all(opts[0] == "--std=c++17" for _, opts in cp.compiled)
    x = T.GPU.put(np.ones((3, 5, 7), np.float32))
    with pytest.raises(K.KernelArgError, match="different devices"):
        kc.get("conv3x3_relu", "v2_tiled")(x, np.ones((4, 3, 3, 3), np.float32), np.ones(4, np.float32))
