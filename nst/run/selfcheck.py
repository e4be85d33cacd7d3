"""`choose_backend(name)`: a backend by name, and what `auto` means — CuPy only once a one-time
self-check on that GPU passes, else Numba, else the NumPy reference.

The self-check: a tiny objective and gradient (the tiny random VGG19, a 33×29 image: a second or
two) against the NumPy reference by nst.tolerance's rule, cached in $NST_HOME/selfcheck.json per
device, driver and nst version, so it runs once per machine setup. It runs the objective, so it
lives with the runs, above the objective (ARCHITECTURE.md): nst.stylize, `nst transfer` and
`nst batch` accept "auto"; the objective itself takes a backend's name or a Backend.
"""
import json
import warnings

from nst.io.assets import atomic_path, cache_dir
from nst.backends import BackendUnavailable, get_backend


def choose_backend(name="auto", log=None):
    # "auto": cupy when a GPU answers and passes the self-check, else numba, else numpy; log: get_backend's
    if name != "auto":
        return get_backend(name, log)
    for candidate in (_checked_cupy, lambda: get_backend("numba", log)):
        try:
            return candidate()
        except BackendUnavailable:
            continue
    return get_backend("numpy")


def _checked_cupy():
    # the cupy backend if a GPU answers and passes the one-time self-check, else BackendUnavailable
    from nst.backends import cupy_backend
    be = get_backend("cupy")
    ok, error = passes(be, cupy_backend.device_key())
    if not ok:
        warnings.warn(f"auto: the GPU failed nst's self-check ({error}); using numba", stacklevel=3)
        raise BackendUnavailable(f"cupy backend: self-check failed ({error})")
    return be


def _error(be):
    # -> None when the backend's J and ∂J/∂X match the float64 reference, else what went wrong
    from nst.testing import objective_agreement
    return objective_agreement(be).message


def _path():
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
            with atomic_path(path) as tmp:
                tmp.write_text(json.dumps(cached, indent=1, sort_keys=True), encoding="utf-8")
        except OSError:
            pass                                           # unwritable cache: check again next time
    return cached[key]["ok"], cached[key]["error"]
