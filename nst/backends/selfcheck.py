"""The one-time check `auto` runs before it trusts a GPU backend: a tiny objective and gradient
(the tiny random VGG19, a 33×29 image: a second or two) against the NumPy reference, cached in
$NST_HOME/selfcheck.json per device, driver and nst version, so it runs once per machine setup.
"""
import json
import os
import tempfile

import numpy as np

RTOL = 1e-3                         # float32 kernels (TF32 nowhere in the shipped table) vs float64


def _error(be):
    # -> None when the backend's J and ∂J/∂X match the reference, else what went wrong
    from nst.gradcheck import random_image, tiny_params
    from nst.objective import Objective
    r = np.random.default_rng(0)
    c, s, x = random_image(r, 33, 29), random_image(r, 21, 27), random_image(r, 33, 29)
    kw = dict(content_weight=1.0, style_weight=1e3, tv_weight=1e-3, weights=tiny_params())
    ref = Objective(c, s, backend="numpy", **kw)(x)
    got = Objective(c, s, backend=be, **kw)(x)
    err_j = abs(float(got.total) - ref.total) / abs(ref.total)
    g = np.asarray(be.to_host(got.grad), np.float64)
    err_g = float(np.max(np.abs(g - ref.grad)) / np.max(np.abs(ref.grad)))
    if not (err_j < RTOL and err_g < RTOL):               # NaN fails too
        return f"J off by {err_j:.2g}, ∂J/∂X by {err_g:.2g} (relative; limit {RTOL:g})"
    return None


def _path():
    from nst.assets import cache_dir
    return cache_dir() / "selfcheck.json"


def _load(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def passes(be, key):
    # -> (ok, message): the cached verdict for key (device, driver, nst version), else run and cache it
    import nst
    key = f"{be.name}|{key}|nst {nst.__version__}"
    path = _path()
    cached = _load(path)
    if key not in cached:
        try:
            error = _error(be)
        except Exception as e:  # noqa: BLE001 - a crashing kernel is a failed check, said in one line
            error = f"{type(e).__name__}: {(str(e).splitlines() or [''])[0][:200]}"
        cached[key] = {"ok": error is None, "error": error or ""}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".json")
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(cached, f, indent=1, sort_keys=True)
            os.replace(tmp, path)
        except OSError:
            pass                                           # unwritable cache: check again next time
    return cached[key]["ok"], cached[key]["error"]
