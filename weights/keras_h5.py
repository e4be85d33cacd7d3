"""VGG19 weights in the Keras "notop" HDF5 layout (SPEC.md): read with checks, write atomically.

Layout: group /L per conv layer L, datasets `L_W_1:0` (3,3,in,out) and `L_b_1:0` (out,). Keras 2
files that name them `kernel:0` / `bias:0` (optionally one group deeper) are read too.
In memory nst holds {L: (W O×I×3×3 float32, b O float32)}.
"""
import hashlib
import re
import traceback

import h5py
import numpy as np

from nst.io.assets import atomic_path
from nst.spec import CONV_NAMES

FORMAT_VERSION = 1


class WeightsError(ValueError):
    """The weights file is missing, unreadable or not a VGG19 in the Keras layout."""

    def __init__(self, reason, advice=None):
        # "reason; advice": what is wrong, then what to do with a file the user gave (nst's cached
        # copy gets its own advice: weights.read)
        super().__init__(f"{reason}; {advice}" if advice else reason)
        self.reason = reason


def _hash_layer(h, w, b):
    # feeds one layer's W then b to the sha256 `h`, as float32 little-endian bytes
    for a in (w, b):
        h.update(np.ascontiguousarray(a, dtype="<f4"))     # the buffer itself: no copy


def arrays_sha256(params) -> str:
    # sha256 over every layer's W then b, in layer order
    h = hashlib.sha256()
    for name in CONV_NAMES:
        _hash_layer(h, *params[name])
    return h.hexdigest()


def write(path, params, **attrs):
    # {L: (W O×I×3×3, b)} -> Keras-layout HDF5 at path (atomic), attrs + format version + sha256
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            for name in CONV_NAMES:
                w, b = params[name]
                g = f.create_group(name)
                g.create_dataset(f"{name}_W_1:0", data=np.asarray(w, np.float32).transpose(2, 3, 1, 0))
                g.create_dataset(f"{name}_b_1:0", data=np.asarray(b, np.float32))
            f.attrs.update(attrs)
            f.attrs["nst_format_version"] = FORMAT_VERSION
            f.attrs["nst_sha256"] = arrays_sha256(params)


def _datasets(group):
    # {basename: dataset} for every dataset under group (Keras 2 files nest one group deeper)
    found = {}
    group.visititems(lambda key, obj: found.update({key.rsplit("/", 1)[-1]: obj})
                     if isinstance(obj, h5py.Dataset) else None)
    return found


def read(path, keep=CONV_NAMES, data=None):
    # Keras-layout HDF5 -> ({L: (W O×I×3×3 float32, b O float32)} for L in keep, attrs); raises
    # WeightsError. Every layer is read and checked (shape, finite, the recorded sha256); only
    # those in `keep` are held, so a caller that needs a few layers never holds them all. data:
    # the file's bytes, already read (they are checked, the file is not opened again)
    # No h5py object outlives a failed read in the error's frames (forget): freed later by another
    # thread's cycle collection, it would wait for h5py's global lock (a deadlock: h5py's docs)
    try:
        f = h5py.File(path, "r") if data is None else _file_image(data)
    except (OSError, RuntimeError) as e:
        forget(e)
        if isinstance(e, FileNotFoundError):
            raise WeightsError(f"weights file {path} does not exist") from None
        if isinstance(e, IsADirectoryError):
            raise WeightsError(f"weights file {path} is a folder, not an HDF5 file") from None
        cut = re.search(r"truncated file: eof = (\d+).*stored_eof = (\d+)", str(e))
        if cut:                                      # HDF5's superblock records the file's full length
            raise WeightsError(f"weights file {path} is cut short ({int(cut[1]):,} of its {int(cut[2]):,} bytes: "
                               "an interrupted download or copy?)") from None
        raise WeightsError(f"weights file {path} is not an HDF5 file", "give VGG19 weights in the Keras HDF5 "
                           "layout (.h5), or leave out --weights for nst's own") from None
    try:
        return _read(path, f, keep)
    except (OSError, RuntimeError, KeyError, ValueError, TypeError) as e:   # HDF5 damaged inside
        forget(e)
        f = None                                     # this frame's own reference
        if isinstance(e, WeightsError):              # (truncated; RuntimeError: damaged metadata)
            raise
        raise WeightsError(f"weights file {path} is damaged ({e.__class__.__name__}: {e})",
                           "`nst weights fetch` gets nst's default weights") from None


def forget(error):
    # clears the locals of the finished frames in an error's traceback (the h5py objects they hold)
    traceback.clear_frames(error.__traceback__)


def _file_image(data):
    # an HDF5 file held in memory as bytes, opened by HDF5's core driver: not as a Python file-like
    # object, whose reads HDF5 would call back into Python while holding h5py's global lock (a
    # thread collecting an h5py object meanwhile deadlocks: h5py's docs, "file-like objects")
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    fapl.set_fapl_core(backing_store=False)
    fapl.set_file_image(data)
    return h5py.File(h5py.h5f.open(b"weights.h5", h5py.h5f.ACC_RDONLY, fapl=fapl))


def _read(path, f, keep):
    with f:
        attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
        params, prev_out, h = {}, 3, hashlib.sha256()
        for name in CONV_NAMES:
            w, b = _read_layer(path, f, name, prev_out)
            _hash_layer(h, w, b)
            if name in keep:
                params[name] = (w, b)
            prev_out = w.shape[0]
    if "nst_sha256" in attrs and h.hexdigest() != attrs["nst_sha256"]:
        raise WeightsError(f"{path}: weights do not match their recorded sha256 (file corrupted?)")
    return params, attrs


def _read_layer(path, f, name, prev_out):
    # group /name -> (W O×I×3×3 float32, b O float32), checked: present, I = prev_out, finite
    if name not in f:
        raise WeightsError(f"{path}: layer {name} is missing (not a VGG19 in the Keras layout)")
    ds = _datasets(f[name])
    w = ds.get(f"{name}_W_1:0", ds.get("kernel:0"))
    b = ds.get(f"{name}_b_1:0", ds.get("bias:0"))
    if w is None or b is None:
        raise WeightsError(f"{path}: layer {name} lacks its kernel or bias dataset")
    if w.ndim != 4 or w.shape[:3] != (3, 3, prev_out) or b.shape != (w.shape[3],):
        raise WeightsError(f"{path}: layer {name} has kernel {w.shape} and bias {b.shape}, "
                           f"expected (3, 3, {prev_out}, O) and (O,)")
    w = _oihw(np.asarray(w, np.float32))
    b = np.asarray(b, np.float32)
    if not (np.all(np.isfinite(w)) and np.all(np.isfinite(b))):
        raise WeightsError(f"{path}: layer {name} holds NaN or inf")
    return w, b


def _oihw(w):
    # Keras kernel 3×3×I×O -> O×I×3×3 C-contiguous: (9, I·O)ᵀ, then I and O swapped over rows of 9
    # floats; two cache-friendly copies take half the time of one 4-d transposing copy
    _, _, i, o = w.shape
    taps_last = np.ascontiguousarray(w.reshape(9, i * o).T).reshape(i, o, 9)
    return np.ascontiguousarray(taps_last.transpose(1, 0, 2)).reshape(o, i, 3, 3)
