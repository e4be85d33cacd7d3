"""The GPU backend: CuPy arrays and the hand-written CUDA kernels of kernels/cuda.

The whole optimisation stays on the device: activations, losses (0-d device arrays, read back
only when someone asks), gradients, and the Adam step; L-BFGS runs its vector ops with the array
module's own (its dot products stay 0-d device arrays). Which version of each kernel runs is
decided here, by name, in CHOSEN; the benchmark (bench/bench_gpu.py), the tests (tests/test_ops.py)
and the cuda-cpu backend (the same kernels run on the CPU, nst/backends/cuda_cpu_backend.py) use
the same registry (nst.kernels.cuda.CUDA) and table through kernel_backend().
"""
from .backend import Backend, BackendUnavailable

# Backend field (an op of nst.kernels.cuda.CUDA) -> the version that runs it
CHOSEN = {
    "conv3x3_relu": "v2_tiled",
    "conv3x3_relu_backward_input": "v2_tiled",
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
        # (w O×I×3×3, b O) host or device -> float32 C-contiguous arrays of xp. The kernels read
        # w as stored (forward: O×(I·9) rows; backward: transposed/flipped by index), so no repack.
        return (xp.ascontiguousarray(xp.asarray(w, dtype=xp.float32)),
                xp.ascontiguousarray(xp.asarray(b, dtype=xp.float32)))

    return Backend(name=name, xp=xp, prepare_weights=prepare_weights,
                   **{op: get(op, version) for op, version in CHOSEN.items()})


def load():
    return kernel_backend("cupy", _cupy_or_raise())


def device_key():
    # the self-check's cache key: which GPU, which driver and CUDA runtime, which CuPy
    import cupy
    props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
    name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    return (f"{name} cc{props['major']}{props['minor']} driver {cupy.cuda.runtime.driverGetVersion()} "
            f"runtime {cupy.cuda.runtime.runtimeGetVersion()} cupy {cupy.__version__}")
