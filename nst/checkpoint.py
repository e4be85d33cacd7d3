"""Checkpoints: everything a run needs to continue exactly where it stopped, in one .npz file.

Arrays (the image, the optimiser's state, the averaged image) are stored as they are; the settings,
the inputs and the scalars as JSON. Written atomically, so a crash mid-write keeps the old one.
"""
import json

import numpy as np

from .assets import atomic_path

FORMAT = 1


class CheckpointError(ValueError):
    """Unreadable checkpoint, or one made for another run."""


def save(path, run, inputs):
    # run: a transfer.Run; inputs: {"content": ..., "style": [...]} as the user gave them
    st = run.state()
    opt = st.pop("optimizer")
    arrays = {f"opt.{k}": v for k, v in opt.items() if isinstance(v, np.ndarray)}
    scalars = {k: v for k, v in opt.items() if not isinstance(v, np.ndarray)}
    if "ema" in st:
        arrays["ema"] = st.pop("ema")
    meta = {"format": FORMAT, "settings": run.s, "inputs": inputs, "state": st, "opt_scalars": scalars}
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, meta=np.array(json.dumps(meta, default=_jsonable)), **arrays)


def load(path):
    # -> (settings, inputs, state) where state is what Run.restore takes
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            arrays = {k: z[k] for k in z.files if k != "meta"}
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path} does not exist") from None
    except (OSError, ValueError, KeyError) as e:
        raise CheckpointError(f"checkpoint {path} is unreadable ({e.__class__.__name__})") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path} has format {meta.get('format')}, expected {FORMAT}")
    state = meta["state"]
    state["optimizer"] = {**meta["opt_scalars"],
                          **{k[4:]: v for k, v in arrays.items() if k.startswith("opt.")}}
    if "ema" in arrays:
        state["ema"] = arrays["ema"]
    return meta["settings"], meta["inputs"], state


def differences(saved, current):
    # settings that differ between a checkpoint and this invocation (JSON-normalised)
    norm = lambda d: json.loads(json.dumps(d, default=_jsonable))
    a, b = norm(saved), norm(current)
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def _jsonable(v):
    if isinstance(v, (np.integer, np.floating)):
        return v.item()
    if isinstance(v, (tuple, set)):
        return list(v)
    return str(v)
