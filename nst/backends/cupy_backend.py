"""The GPU backend: CuPy arrays and the hand-written CUDA kernels of kernels/cuda.

The whole optimisation stays on the device: activations, losses (0-d device arrays, read back
only when someone asks), gradients, and the Adam step; L-BFGS runs its vector ops with the array
module's own (its dot products stay 0-d device arrays). Which version of each kernel runs is
decided here, by name, in CHOSEN; the benchmark (bench/bench_gpu.py), the tests (tests/test_ops.py)
and the cuda-cpu backend (the same kernels run on the CPU, nst/backends/cuda_cpu_backend.py) use
the same registry (nst.kernels.cuda.CUDA) and table through kernel_backend().
"""
from .backend import (CONV_OPS, Backend, BackendUnavailable, ConvLayer, chosen_version, conv3x3_relu,
                      conv3x3_relu_backward_input)

# Backend field (an op of nst.kernels.CUDA) -> the version that runs it; a conv op chooses per layer,
# by its input channels (as nst/backends/numba_backend.py does). Measured on an H200, 512 px
# (bench/bench_gpu.py; bench/RESULTS.md "The GPU check"): from 256 input channels cuBLAS on im2col
# columns takes 40-70 % of our tiled kernel's time, whose column buffer (I·9 × h·w) is then at most
# 2.25× block1's activation (memory.WORKSPACE covers it); below, the tiled kernel is as fast or
# faster without one. The 3-channel first layer's backward: the naive kernel (0.55 vs 1.46 ms).
CHOSEN = {
    "conv3x3_relu": {3: "v2_tiled", 64: "v2_tiled", 128: "v2_tiled", "*": "im2col_cublas"},
    "conv3x3_relu_backward_input": {3: "v1_naive", 64: "v2_tiled", 128: "v2_tiled", "*": "im2col_cublas"},
    "maxpool2x2": "v1",
    "maxpool2x2_backward": "v1",
    "avgpool2x2": "v1",
    "avgpool2x2_backward": "v1",
    "gram": "v2_splitk",
    "content_loss_and_grad": "v1_fused",
    "style_loss_and_grad": "v2_fused",
    "tv_loss_and_grad": "v1_fused",
    "temporal_loss_and_grad": "v1_fused",
    "adam_step": "v1",
}


def _cupy_or_raise():
    try:
        import cupy
    except Exception as e:  # noqa: BLE001 - ImportError, or a broken CUDA install raising anything
        raise BackendUnavailable(f"cupy backend: cupy cannot be imported ({type(e).__name__}: {e})") from None
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:  # noqa: BLE001 - no driver, too old a driver, no device
        raise BackendUnavailable(f"cupy backend: no CUDA device answers ({type(e).__name__}: {e})") from None
    if count < 1:
        raise BackendUnavailable("cupy backend: CUDA reports no device")
    return cupy


def kernel_backend(name, xp):
    # the Backend of kernels/cuda's CHOSEN versions over arrays of module xp (cupy, or numpy for
    # cuda-cpu: the launchers run the same .cu on the device their arrays live on)
    from nst.kernels.cuda import get

    def prepare_weights(w, b):
        # (w O×I×3×3, b O) host or device -> (ConvLayer, b): float32 C-contiguous arrays of xp and
        # the layer's two chosen kernels. The kernels read w as stored (forward: O×(I·9) rows;
        # backward: transposed/flipped by index), so no repack; the im2col_cublas backward makes its
        # flipped copy on first use, kept while w lives (kernels/cuda/conv3x3_backward_input.py).
        w, b = (xp.ascontiguousarray(xp.asarray(a, dtype=xp.float32)) for a in (w, b))
        fwd, bwd = (get(op, chosen_version(CHOSEN, op, w.shape[1])) for op in CONV_OPS)
        return ConvLayer(w, fwd, bwd), b

    ops = {op: get(op, version) for op, version in CHOSEN.items() if op not in CONV_OPS}
    return Backend(name=name, xp=xp, prepare_weights=prepare_weights, conv3x3_relu=conv3x3_relu,
                   conv3x3_relu_backward_input=conv3x3_relu_backward_input, **ops)


def load():
    return kernel_backend("cupy", _cupy_or_raise())


def device_key():
    # the self-check's cache key: which GPU, which driver and CUDA runtime, which CuPy
    import cupy
    props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
    name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    return (f"{name} cc{props['major']}{props['minor']} driver {cupy.cuda.runtime.driverGetVersion()} "
            f"runtime {cupy.cuda.runtime.runtimeGetVersion()} cupy {cupy.__version__}")
