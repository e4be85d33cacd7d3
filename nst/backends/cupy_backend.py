"""The GPU backend: CuPy arrays and the hand-written CUDA kernels of kernels/cuda.

The whole optimisation stays on the device: activations, losses (0-d device arrays, never read
back until someone asks), gradients, and the Adam step (ADAM_STEP). L-BFGS runs its vector ops
with CuPy's own; the fused kernels in EXTRAS are tested but not wired in yet. Which version of each kernel runs is decided here, by name, in CHOSEN; the benchmark
(bench/bench_gpu.py) and the tests (tests/test_kernels_cuda.py) use the same names.
"""
from .backend import Backend, BackendUnavailable

# Backend field -> "kernels/cuda op module . version"
CHOSEN = {
    "conv3x3_relu": "conv3x3_forward.v2_tiled",
    "conv3x3_relu_backward_input": "conv3x3_backward_input.v2_tiled",
    "maxpool2x2": "maxpool2x2.forward_v1",
    "maxpool2x2_backward": "maxpool2x2.backward_v1",
    "avgpool2x2": "avgpool2x2.forward_v1",
    "avgpool2x2_backward": "avgpool2x2.backward_v1",
    "gram": "gram_style_loss.gram_v2_splitk",
    "content_loss_and_grad": "content_loss.v1_fused",
    "style_loss_and_grad": "gram_style_loss.style_v2_fused",
    "tv_loss_and_grad": "tv_loss.v1_fused",
}

ADAM_STEP = "adam_step.v1"

# L-BFGS vector ops (nst's L-BFGS uses cupy's own vdot and axpy-like expressions for now):
# dot(x, y) -> 0-d, axpy(alpha, x, y, num=None, den=None, beta=1.0) in place
EXTRAS = {
    "dot": "lbfgs_ops.dot_v1",
    "axpy": "lbfgs_ops.axpy_v1",
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


def load():
    cupy = _cupy_or_raise()
    from nst.kernels.cuda import get

    def prepare_weights(w, b):
        # (w O×I×3×3, b O) host or device -> float32 C-contiguous device arrays. The kernels read
        # w as stored (forward: O×(I·9) rows; backward: transposed/flipped by index), so no repack.
        return (cupy.ascontiguousarray(cupy.asarray(w, dtype=cupy.float32)),
                cupy.ascontiguousarray(cupy.asarray(b, dtype=cupy.float32)))

    adam = get(ADAM_STEP)

    def adam_step(x, g, m, v, t, lr, beta1, beta2, eps, lo, hi):
        # nst.ops.adam_step's argument order -> the launcher's
        adam(x, m, v, g, t, lr, beta1, beta2, eps, (lo, hi))

    return Backend(name="cupy", xp=cupy, prepare_weights=prepare_weights, adam_step=adam_step,
                   **{field: get(q) for field, q in CHOSEN.items()})
