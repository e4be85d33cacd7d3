"""nst: neural style transfer (Gatys, Ecker & Bethge 2015) from first principles.

    r = nst.loss_and_grad(content, style, image, content_weight=1, style_weight=1e3, tv_weight=1e-3)
    out = nst.stylize(content, style)          # paths or H×W×3 RGB arrays in 0..255

Importing `nst` loads nothing else: the names below are imported on first use, so a low layer
(`nst.kernels`, `nst.weights`, the reference ops) never pulls in the layers above it
(ARCHITECTURE.md).
"""
import importlib
import importlib.abc
import importlib.util
import os
import sys

__version__ = "0.1.0"

_PUBLIC = {"load_image": "io.image", "save_image": "io.image", "loss_and_grad": "objective",
           "LossResult": "objective", "Objective": "objective", "stylize": "run.run"}
__all__ = list(_PUBLIC)

# In a source checkout kernels/ and weights/ sit beside nst/ (setup.py installs them inside it as
# nst.kernels and nst.weights): let the checkout's root serve those two subpackages, and only them
# (nst.setup, nst.tests, nst.bench do not exist).
_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if os.path.isfile(os.path.join(_root, "setup.py")) and os.path.isdir(os.path.join(_root, "kernels")):
    class _CheckoutFinder(importlib.abc.MetaPathFinder):
        def find_spec(self, fullname, path=None, target=None):
            name = fullname.partition(".")[2]
            if fullname.partition(".")[0] != "nst" or name not in ("kernels", "weights"):
                return None
            folder = os.path.join(_root, name)
            return importlib.util.spec_from_file_location(fullname, os.path.join(folder, "__init__.py"),
                                                          submodule_search_locations=[folder])
    sys.meta_path.insert(0, _CheckoutFinder())


def __getattr__(name):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'nst' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_PUBLIC[name]}", __name__), name)


def __dir__():
    # dir(nst), and so a shell's tab completion, lists the public names imported on first use too
    return sorted({*globals(), *_PUBLIC})
