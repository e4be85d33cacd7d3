"""Optical flow between frames (OpenCV's DIS, Farnebäck where DIS is missing) and what the video
run makes of it: the reliability mask, the warped earlier outputs, the warped start image.

Legend: frames H×W×3 uint8; flows H×W×2 float32 (nst/flow.py has the conventions and the NumPy
reference of the warp and the mask). The warp and the mask run as kernels of the run's backend's
family: the CUDA ones (kernels/cuda/flow_warp.cu, flow_mask.cu) for cupy and cuda-cpu, the Numba
ones (kernels/flow_warp.py, flow_mask.py) otherwise; host arrays in and out either way (the flows
come from OpenCV on the host). `back` maps frame i to an earlier frame, `fwd` the reverse.
"""
import numpy as np

from nst.flow import long_term_masks

# the versions used: family -> op -> version, of nst.kernels.NUMBA or nst.kernels.cuda.CUDA
CHOSEN = {"numba": {"warp": "v1", "reliability_mask": "v1"},
          "cuda": {"warp": "v1", "reliability_mask": "v1"}}
CUDA_BACKENDS = ("cupy", "cuda-cpu")


def resolve(backend):
    # a Settings.backend -> the backend name the kernels follow ("auto": the one a run picks here)
    if backend != "auto":
        return backend
    from nst.run.selfcheck import choose_backend
    return choose_backend(backend).name


def kernel(op, backend="numba"):
    # op of nst.kernels.VIDEO_OPS, a backend name -> its kernel as a function of host arrays: the
    # CUDA version for cupy and cuda-cpu, the Numba one for the others
    if backend not in CUDA_BACKENDS:
        from nst.kernels import NUMBA
        return NUMBA.get(op, CHOSEN["numba"][op])
    from nst.backends import get_backend
    from nst.kernels.cuda import CUDA
    launcher, be = CUDA.get(op, CHOSEN["cuda"][op]), get_backend(backend)

    def run(*arrays):
        # float32 C-contiguous, as the launchers take them; on the backend's device and back
        return be.to_host(launcher(*(be.to_device(np.ascontiguousarray(a, np.float32)) for a in arrays)))
    return run


def gray(frame):
    import cv2
    return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)


def dense_flow(a, b):
    # frames a, b -> flow H×W×2 float32 with a(x) ≈ b(x + flow(x)): DIS (medium preset), or
    # Farnebäck when this OpenCV has no DIS
    import cv2
    ga, gb = gray(a), gray(b)
    if hasattr(cv2, "DISOpticalFlow_create"):
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        return dis.calc(ga, gb, None).astype(np.float32)
    return cv2.calcOpticalFlowFarneback(ga, gb, None, 0.5, 4, 15, 3, 5, 1.2, 0).astype(np.float32)


def flow_and_mask(frame, earlier, backend="numba"):
    # frame i, an earlier frame -> (back H×W×2, c H×W): where frame i's pixels were, and where
    # that is reliable (forward–backward consistency, motion boundaries, inside the frame)
    back, fwd = dense_flow(frame, earlier), dense_flow(earlier, frame)
    return back, kernel("reliability_mask", backend)(back, fwd)


def warp(image, back, backend="numba"):
    # image (an earlier output) H×W×3, back -> ω H×W×3 float32, ω(x) = image(x + back(x))
    return kernel("warp", backend)(np.asarray(image, np.float32), back)


def temporal_targets(earlier_outputs, flows, backend="numba"):
    # earlier outputs (closest first) and their (back, c) -> [(ω_k, c'_k)]: each warped into this
    # frame, its mask reduced to the pixels no closer frame covers (nst.flow.long_term_masks)
    masks = long_term_masks([c for _, c in flows])
    return [(warp(o, back, backend), m) for o, (back, _), m in zip(earlier_outputs, flows, masks)]


def start_image(previous_output, flow, content, backend="numba"):
    # the previous output warped into this frame where reliable, the content frame elsewhere
    back, c = flow
    c3 = c[..., None]
    return c3 * warp(previous_output, back, backend) + (1 - c3) * np.asarray(content, np.float32)


def flicker(outputs, flows):
    # outputs [H×W×3] in clip order, flows [(back_t, c_t)] for t = 1.. (frame t against t−1) ->
    # E = mean_t Σ_x c_t·‖o_t − ω_t‖² / Σ_x c_t, ω_t = o_{t−1} warped into frame t: the temporal
    # warping error over reliable pixels (bench/bench_video.py, tests)
    errors = []
    for t, (back, c) in enumerate(flows, start=1):
        d = np.asarray(outputs[t], np.float64) - warp(outputs[t - 1], back)
        errors.append(float((c * (d * d).sum(axis=-1)).sum() / max(c.sum(), 1.0)))
    return float(np.mean(errors))
