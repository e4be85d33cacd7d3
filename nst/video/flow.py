"""Optical flow between frames (OpenCV's DIS, Farnebäck where DIS is missing) and what the video
run makes of it: the reliability mask, the warped earlier outputs, the warped start image.

Legend: frames H×W×3 uint8; flows H×W×2 float32 (nst/flow.py has the conventions and the NumPy
reference of the warp and the mask; the Numba kernels in kernels/flow_warp.py and
kernels/flow_mask.py compute them here). `back` maps frame i to an earlier frame, `fwd` the reverse.
"""
import numpy as np

from nst.flow import long_term_masks

# the Numba kernels used: (module in kernels/, op, version) of its VERSIONS
WARP, MASK = ("flow_warp", "warp", "v1"), ("flow_mask", "reliability_mask", "v1")


def kernel(choice):
    import importlib
    module, op, version = choice
    return importlib.import_module(f"nst.kernels.{module}").VERSIONS[op][version]


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


def flow_and_mask(frame, earlier):
    # frame i, an earlier frame -> (back H×W×2, c H×W): where frame i's pixels were, and where
    # that is reliable (forward–backward consistency, motion boundaries, inside the frame)
    back, fwd = dense_flow(frame, earlier), dense_flow(earlier, frame)
    return back, kernel(MASK)(back, fwd)


def warp(image, back):
    # image (an earlier output) H×W×3, back -> ω H×W×3 float32, ω(x) = image(x + back(x))
    return kernel(WARP)(np.asarray(image, np.float32), back)


def temporal_targets(earlier_outputs, flows):
    # earlier outputs (closest first) and their (back, c) -> [(ω_k, c'_k)]: each warped into this
    # frame, its mask reduced to the pixels no closer frame covers (nst.flow.long_term_masks)
    masks = long_term_masks([c for _, c in flows])
    return [(warp(o, back), m) for o, (back, _), m in zip(earlier_outputs, flows, masks)]


def start_image(previous_output, flow, content):
    # the previous output warped into this frame where reliable, the content frame elsewhere
    back, c = flow
    c3 = c[..., None]
    return c3 * warp(previous_output, back) + (1 - c3) * np.asarray(content, np.float32)


def flicker(outputs, flows):
    # outputs [H×W×3] in clip order, flows [(back_t, c_t)] for t = 1.. (frame t against t−1) ->
    # E = mean_t Σ_x c_t·‖o_t − ω_t‖² / Σ_x c_t, ω_t = o_{t−1} warped into frame t: the temporal
    # warping error over reliable pixels (bench/bench_video.py, tests)
    errors = []
    for t, (back, c) in enumerate(flows, start=1):
        d = np.asarray(outputs[t], np.float64) - warp(outputs[t - 1], back)
        errors.append(float((c * (d * d).sum(axis=-1)).sum() / max(c.sum(), 1.0)))
    return float(np.mean(errors))
