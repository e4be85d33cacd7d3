"""Optical flow maths for video (docs/maths.md "Video: the temporal loss"), the NumPy reference.

Legend: H×W pixels of frame i; a flow w is H×W×2 (w[..., 0] = u along x = columns, w[..., 1] = v
along y = rows), as OpenCV returns it. `back` = the flow from frame i to frame i−1 (where each pixel
of frame i was in frame i−1), `fwd` = the flow from frame i−1 to frame i. The flows themselves come
from OpenCV (nst/video/flow.py); this module only warps with them and says where they are reliable.
"""
import numpy as np

# Ruder, Dosovitskiy & Brox (2016): a pixel is unreliable where the two flows disagree by more than
# CONSISTENCY_REL of their squared lengths plus CONSISTENCY_ABS px², or on a motion boundary.
CONSISTENCY_REL, CONSISTENCY_ABS = 0.01, 0.5
BOUNDARY_REL, BOUNDARY_ABS = 0.01, 0.002


def pixel_grid(h, w, like):
    # -> (rows H×1, columns 1×W) integer coordinates, arrays of like's kind (NumPy, or CuPy: the
    # reference also runs on the GPU as the CUDA kernels' baseline)
    return np.arange(h, like=like)[:, None], np.arange(w, like=like)[None, :]


def sample(image, fx, fy):
    # image H'×W'×K, fx, fy H×W float coordinates -> H×W×K bilinear samples; coordinates outside
    # the image are clamped to its border (replicate); the weights are computed in float64
    h, w = image.shape[:2]
    fx = np.clip(fx, 0, w - 1).astype(np.float64)
    fy = np.clip(fy, 0, h - 1).astype(np.float64)
    x0 = np.minimum(np.floor(fx).astype(np.int64), w - 2) if w > 1 else np.zeros_like(fx, np.int64)
    y0 = np.minimum(np.floor(fy).astype(np.int64), h - 2) if h > 1 else np.zeros_like(fy, np.int64)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    ax, ay = (fx - x0)[..., None], (fy - y0)[..., None]
    top = (1 - ax) * image[y0, x0] + ax * image[y0, x1]
    bottom = (1 - ax) * image[y1, x0] + ax * image[y1, x1]
    return (1 - ay) * top + ay * bottom


def warp(image, back):
    # image (frame i−1) H×W×K, back H×W×2 -> ω H×W×K with ω(x) = image(x + back(x)), bilinear
    gy, gx = pixel_grid(*back.shape[:2], like=back)
    return sample(image, gx + back[..., 0], gy + back[..., 1]).astype(image.dtype)


def flow_gradient_sq(flow):
    # flow H×W×2 -> |∇u|² + |∇v|² H×W, central differences with the index clamped at the border:
    # ∂_x u(y, x) = (u(y, min(x+1, W−1)) − u(y, max(x−1, 0))) / 2, and the same along y
    p = np.pad(flow.astype(np.float64), ((1, 1), (1, 1), (0, 0)), mode="edge")
    dx = (p[1:-1, 2:] - p[1:-1, :-2]) / 2
    dy = (p[2:, 1:-1] - p[:-2, 1:-1]) / 2
    return (dx * dx + dy * dy).sum(axis=-1)


def reliability_mask(back, fwd):
    # back, fwd H×W×2 -> c H×W float32 in {0, 1}: 1 where frame i's pixel x is seen in frame i−1:
    #   inside:      x + back(x) lies in the frame [0, W−1]×[0, H−1]
    #   consistent:  |back + ŵ|² ≤ 0.01·(|back|² + |ŵ|²) + 0.5,  ŵ = fwd(x + back(x)) (bilinear)
    #   no boundary: |∇u|² + |∇v|² ≤ 0.01·|back|² + 0.002  (u, v the components of back)
    h, w = back.shape[:2]
    gy, gx = pixel_grid(h, w, like=back)
    b = back.astype(np.float64)
    fx, fy = gx + b[..., 0], gy + b[..., 1]
    inside = (fx >= 0) & (fx <= w - 1) & (fy >= 0) & (fy <= h - 1)
    f = sample(fwd.astype(np.float64), fx, fy)
    sq = lambda a: (a * a).sum(axis=-1)                                 # noqa: E731
    consistent = sq(b + f) <= CONSISTENCY_REL * (sq(b) + sq(f)) + CONSISTENCY_ABS
    smooth = flow_gradient_sq(b) <= BOUNDARY_REL * sq(b) + BOUNDARY_ABS
    return (inside & consistent & smooth).astype(np.float32)


def long_term_masks(masks):
    # [c_{i−1}, c_{i−2}, c_{i−4}, ...] closest first -> each frame's mask minus what a closer frame
    # already covers: c'_j = max(c_j − Σ_{k<j} c_k, 0), so every pixel is pulled to its closest
    # reliable earlier frame only (Ruder et al.'s long-term weights)
    out, covered = [], np.zeros_like(masks[0])
    for c in masks:
        out.append(np.maximum(c - covered, 0).astype(np.float32))
        covered = covered + c
    return out
