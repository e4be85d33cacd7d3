"""nst: neural style transfer (Gatys, Ecker & Bethge 2015) from first principles.

    r = nst.loss_and_grad(content, style, image, content_weight=1, style_weight=1e3, tv_weight=1e-3)
    out = nst.stylize(content, style)          # paths or H×W×3 RGB arrays in 0..255

Importing `nst` loads nothing else: the names below are imported on first use, so a low layer
(`nst.kernels`, `nst.weights`, the reference ops) never pulls in the layers above it
(ARCHITECTURE.md).
"""
import importlib
import os

__version__ = "0.1.0"

_PUBLIC = {"load_image": "io.image", "save_image": "io.image", "loss_and_grad": "objective",
           "LossResult": "objective", "Objective": "objective", "stylize": "run.run"}
__all__ = list(_PUBLIC)

# In a source checkout kernels/ and weights/ sit beside nst/ (setup.py installs them inside it as
# nst.kernels and nst.weights): let the checkout's root serve those two subpackages.
_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if os.path.isfile(os.path.join(_root, "setup.py")) and os.path.isdir(os.path.join(_root, "kernels")):
    __path__.append(_root)


def __getattr__(name):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'nst' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_PUBLIC[name]}", __name__), name)
