"""Checkpoints: everything a run needs to continue exactly where it stopped, in one .npz file.

Arrays (the image, the optimiser's state, the averaged image) are stored as they are; the run's
identity (settings, each input file by its sha256 and the automatic rules: nst.run.job), the settings and the
scalars as JSON. Written atomically and synced to the disk, so a crash or a power cut mid-write
keeps the old one. A checkpoint is untrusted input: `load` and `check_fits` refuse a damaged or
crafted one with one line.
"""
import json
import zipfile

import numpy as np

from nst.io.assets import atomic_path
from nst.io.image import longest_shape

# the optimiser's arrays with one entry per L-BFGS pair, not per pixel (nst.lbfgs PairHistory.state;
# pairs_rho: checkpoints from before it)
PER_PAIR = ("pairs_rho", "pairs_rows", "pairs_sy", "pairs_yy")

FORMAT = 2
STATE_KEYS = {"scale": int, "history": list, "shape": list, "past_evaluations": int}


START_AGAIN = "start the run again without --resume"


class CheckpointError(ValueError):
    """Unreadable checkpoint, or one made for another run: `reason` says what is wrong with it, the
    message adds what a user of nst transfer does about it (nst batch starts the task over itself)."""

    def __init__(self, reason, advice=START_AGAIN):
        super().__init__(f"{reason}; {advice}" if advice else reason)
        self.reason, self.advice = reason, advice

    def __reduce__(self):                   # pickled (a Dask task's error) as made, not from its message
        return type(self), (self.reason, self.advice)


def save(path, run, identity, snapshots=(), finished=False):
    # run: a nst.run.run.Run; identity: what a resume must match (nst.run.job.Job.ident);
    # snapshots: [(iteration, h×w×3 uint8)] the --report strip's so far, kept across a resume;
    # finished: the run ended on its own (nothing left to continue: `stopped_at` tells them apart)
    st = run.state()
    opt = st.pop("optimizer")
    arrays = {f"opt.{k}": v for k, v in opt.items() if isinstance(v, np.ndarray)}
    scalars = {k: v for k, v in opt.items() if not isinstance(v, np.ndarray)}
    if "ema" in st:
        arrays["ema"] = st.pop("ema")
    arrays.update({f"snap.{it}": thumb for it, thumb in snapshots})
    meta = {"format": FORMAT, "finished": bool(finished), "identity": identity,
            "backend": run.objective_backend().name, "tiles": [run.scale_tile(k) for k in range(len(run.sizes))],
            "settings": run.settings.as_record(), "state": st, "opt_scalars": scalars}
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, meta=np.array(json.dumps(meta, default=_jsonable)), **arrays)


def stopped_at(path):
    # -> the iterations done by the stopped (unfinished) run this checkpoint holds, or None: a finished
    # run's, or no readable checkpoint. Reads the metadata only. Before "finished" was recorded, every
    # checkpoint counts as a stopped run's.
    meta = read_meta(path)
    try:
        return len(meta["state"]["history"]) if isinstance(meta, dict) and not meta.get("finished") else None
    except (KeyError, TypeError):
        return None


def saved_identity(path):
    # -> the identity a checkpoint was saved with (nst.run.job.Job.ident), None where its metadata
    # cannot be read or holds none (a damaged file). Reads the metadata only, not the run's arrays
    meta = read_meta(path)
    identity = meta.get("identity") if isinstance(meta, dict) and meta.get("format") == FORMAT else None
    return identity if isinstance(identity, dict) else None


def read_meta(path):
    # -> a checkpoint's metadata (JSON), not its arrays; None where it cannot be read
    try:
        with np.load(path, allow_pickle=False) as z:
            return json.loads(str(z["meta"]))
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile):
        return None


def load(path):
    # -> (identity, state) where state is what Run.restore takes; CheckpointError if damaged
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            arrays = {k: z[k] for k in z.files if k != "meta"}
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path} does not exist", None) from None
    except IsADirectoryError:
        raise CheckpointError(f"checkpoint {path} is a folder, not a file", None) from None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        if isinstance(e, OSError) and e.errno and e.strerror:     # no permission, a name too long
            raise CheckpointError(f"checkpoint {path} cannot be read ({e.strerror})", None) from None
        raise CheckpointError(f"checkpoint {path} is unreadable or truncated (no .npz nst wrote whole)") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        got = meta.get("format") if isinstance(meta, dict) else None
        raise CheckpointError(f"checkpoint {path} has format {got}, expected {FORMAT}")
    state, scalars = meta.get("state"), meta.get("opt_scalars")
    if not (isinstance(meta.get("identity"), dict) and isinstance(state, dict) and isinstance(scalars, dict)
            and all(isinstance(state.get(k), t) for k, t in STATE_KEYS.items()) and "opt.x" in arrays):
        raise CheckpointError(f"checkpoint {path} lacks part of a run's state")
    state["optimizer"] = {**scalars, **{k[4:]: v for k, v in arrays.items() if k.startswith("opt.")}}
    if "ema" in arrays:
        state["ema"] = arrays["ema"]
    state["snapshots"] = snapshots_of(path, arrays)
    state["backend"] = meta.get("backend") if isinstance(meta.get("backend"), str) else None
    state["tiles"] = meta.get("tiles") if is_tiles(meta.get("tiles")) else None
    return meta["identity"], state


def is_tiles(tiles):
    # a checkpoint's record of each scale's tile: a list of whole numbers ≥ 1, or None (whole)
    return isinstance(tiles, list) and all(t is None or (type(t) is int and t >= 1) for t in tiles)


def snapshots_of(path, arrays):
    # the "snap.<iteration>" arrays -> [(iteration, h×w×3 uint8)] in order; CheckpointError if malformed
    found = []
    for k, a in arrays.items():
        if k.startswith("snap."):
            if not (k[5:].isdigit() and a.dtype == np.uint8 and a.ndim == 3 and a.shape[2] == 3 and a.size):
                raise CheckpointError(f"checkpoint {path}: its report snapshot {k} is malformed")
            found.append((int(k[5:]), a))
    return sorted(found, key=lambda s: s[0])


def check_fits(path, state, run):
    # the state's scale, image shape and arrays fit `run` (a checkpoint of the same settings)
    bad = lambda what: CheckpointError(f"checkpoint {path}: {what}")
    if not 0 <= state["scale"] < len(run.sizes):
        raise bad(f"scale {state['scale']} is not one of this run's {len(run.sizes)}")
    shape, opt = state["shape"], state["optimizer"]
    if len(shape) != 3 or not all(isinstance(d, int) and d > 0 for d in shape) or shape[2] != 3:
        raise bad(f"image shape {shape} is not H×W×3")
    expected = list(longest_shape(run.content.shape, run.sizes[state["scale"]]))
    if shape[:2] != expected:
        raise bad(f"image shape {shape} is not this run's {expected + [3]} at scale {state['scale'] + 1}")
    n = shape[0] * shape[1] * 3
    arrays = {k: v for k, v in opt.items() if isinstance(v, np.ndarray)}
    if "ema" in state:
        arrays["ema"] = state["ema"]
    for k, a in arrays.items():
        if a.dtype.kind not in "fiu" or (k not in PER_PAIR and (a.ndim not in (1, 2) or a.shape[-1] != n)):
            raise bad(f"array {k} of shape {a.shape} does not fit a {shape} image")
    cap = run.caps[state["scale"]]
    if not isinstance(opt.get("iteration"), int) or not 0 <= opt["iteration"] <= cap:
        raise bad(f"iteration {opt.get('iteration')!r} is outside 0..{cap}")
    if not all(isinstance(row, dict) for row in state["history"]):
        raise bad("its loss history is malformed")
    layers = state.get("layer_history", [])               # absent from checkpoints made before it
    if not (isinstance(layers, list) and len(layers) in (0, len(state["history"]))
            and all(isinstance(row, dict) and all(isinstance(v, (int, float)) for v in row.values())
                    for row in layers)):
        raise bad("its per-layer loss history is malformed")
    stops = state.get("early_stops", [])                  # [side, iterations, cap, why]; absent before them
    if not (isinstance(stops, list) and all(isinstance(s, list) and len(s) == 4 and isinstance(s[3], str)
                                            and all(isinstance(n, int) for n in s[:3]) for s in stops)):
        raise bad("its early-stop notes are malformed")


def differences(saved, current):
    # the keys whose values differ between a checkpoint's identity and this invocation's
    norm = lambda d: json.loads(json.dumps(d, default=_jsonable))
    a, b = norm(saved), norm(current)
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def older_record(saved):
    # -> what in a checkpoint's identity an older nst recorded that no run of this one matches (its
    # resume then says to start again, not to repeat the command), else None
    for key in ("content_layers", "style_layers"):
        layers = saved.get(key)
        twice = isinstance(layers, list) and [n for n in layers if layers.count(n) > 1]
        if twice:
            return f"with {twice[0]} twice in --{key.replace('_', '-')}, which this one refuses"
    if isinstance(saved.get("init"), str) and saved["init"].startswith("["):       # str(array), before its sha256
        return "that recorded its --init array by numpy's summary, not its sha256"
    return None


def _jsonable(v):
    if isinstance(v, (np.integer, np.floating)):
        return v.item()
    if isinstance(v, (tuple, set)):
        return list(v)
    return str(v)
