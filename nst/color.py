"""Keeping the content's colours (Gatys et al., "Preserving Color in Neural Artistic Style Transfer", 2016).

Two ways: `luminance` keeps the output's luminance and takes the colour (YIQ's I and Q) from the
content; `match` recolours the style image before the run so that its pixel mean and covariance
equal the content's (a linear map x ↦ A(x − μ_S) + μ_C with A = Σ_C^½ Σ_S^−½).
"""
import numpy as np

# RGB -> YIQ (NTSC 1953); rows give Y, I, Q
RGB_TO_YIQ = np.array([[0.299, 0.587, 0.114],
                       [0.595716, -0.274453, -0.321263],
                       [0.211456, -0.522591, 0.311135]])
YIQ_TO_RGB = np.linalg.inv(RGB_TO_YIQ)
MODES = ("luminance", "match")


def luminance_transfer(output, content):
    # output, content H×W×3 -> RGB with output's Y and content's I, Q
    yiq_out = output @ RGB_TO_YIQ.T
    yiq_content = content @ RGB_TO_YIQ.T
    yiq = np.concatenate([yiq_out[..., :1], yiq_content[..., 1:]], axis=2)
    return np.clip(yiq @ YIQ_TO_RGB.T, 0, 255).astype(np.float32)


def _sqrtm(cov, inverse=False):
    # symmetric (inverse) square root of a 3×3 covariance by eigendecomposition
    vals, vecs = np.linalg.eigh(cov)
    vals = np.maximum(vals, 1e-6)
    return (vecs * (vals ** (-0.5 if inverse else 0.5))) @ vecs.T


def match_color(style, content):
    # style H'×W'×3 recoloured so that its mean and covariance equal content's
    s = style.reshape(-1, 3).astype(np.float64)
    c = content.reshape(-1, 3).astype(np.float64)
    mu_s, mu_c = s.mean(0), c.mean(0)
    a = _sqrtm(np.cov(c, rowvar=False)) @ _sqrtm(np.cov(s, rowvar=False), inverse=True)
    out = (s - mu_s) @ a.T + mu_c
    return np.clip(out, 0, 255).reshape(style.shape).astype(np.float32)
