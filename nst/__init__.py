"""nst: neural style transfer (Gatys, Ecker & Bethge 2015) from first principles.

    r = nst.loss_and_grad(content, style, image, content_weight=1, style_weight=1e3, tv_weight=1e-3)
    out = nst.stylize(content, style)          # paths or H×W×3 RGB arrays in 0..255
"""
from .image import load_image, save_image
from .objective import LossResult, Objective, loss_and_grad
from .transfer import stylize

__all__ = ["loss_and_grad", "LossResult", "Objective", "stylize", "load_image", "save_image"]
__version__ = "0.1.0"
