"""How much memory a run needs, estimated before anything is allocated (`nst transfer --dry-run`).

All in bytes of float32. For an output H×W (N = 3HW pixels) and layers up to `deepest`:
  weights      Σ (O·I·9 + O): the file's copy, plus the backend's prepared copy (PREPARED× that)
  activations  Σ_l C_l·h_l·w_l  of every conv layer up to the deepest (backward needs them all)
  workspace    the backward's gradients and a conv's temporaries: WORKSPACE × the largest a^l
  targets      a^l(C) of the content layers, Ĝ^l(S) of the style layers
  image        x, ∂J/∂x, TV gradient and preprocessing copies: 8 N
  optimiser    L-BFGS (2m + 3) N, Adam 4 N, GD 2 N
  runtime      the interpreter, NumPy/Numba and their libraries (host backends only)
  inputs       the decoded content and style images, kept at full size: 12 bytes a pixel
Decoding an input file costs more than it keeps (`decode_bytes`), and is checked before it starts.
"""
import os

from .spec import CONV_LAYERS, CONV_NAMES, ends_block

F32 = 4
WORKSPACE = 6
RUNTIME = 300 * 2**20
PREPARED = {"numba": 2.5}   # prepared / file weights: numba's Winograd U (36/9 × w below 512
                            # channels, 16/9 × w on the 512-channel layers that hold most weights)


def layer_shapes(h, w, deepest):
    # -> [(name, C, h_l, w_l)] for every conv layer up to deepest
    out = []
    for name, _, c in CONV_LAYERS[:CONV_NAMES.index(deepest) + 1]:
        out.append((name, c, h, w))
        if ends_block(name):
            h, w = h // 2, w // 2
    return out


def estimate(h, w, deepest, content_layers, style_layers, optimizer="lbfgs", history=20,
             style_hw=None, backend="numba"):
    # -> {part: bytes} and "total"; style_hw: the (largest) style image's size, for the setup pass
    shapes = layer_shapes(h, w, deepest)
    n = 3 * h * w
    per = {name: c * hl * wl * F32 for name, c, hl, wl in shapes}
    chans = {name: c for name, c, _, _ in shapes}
    parts = {
        "weights": int((1 + PREPARED.get(backend, 1)) * F32
                       * sum(o * i * 9 + o for _, i, o in CONV_LAYERS[:len(shapes)])),
        "activations": sum(per.values()),
        "workspace": WORKSPACE * max(per.values()),
        "targets": sum(per[l] for l in content_layers) + sum(chans[l] ** 2 * F32 for l in style_layers),
        "image": 8 * n * F32,
        "optimiser": {"lbfgs": (2 * history + 3), "adam": 4, "gd": 2}[optimizer] * n * F32,
        "runtime": 0 if backend == "cupy" else RUNTIME,
    }
    if style_hw:                                    # the style pass runs before, alone
        sh, sw = style_hw
        setup = sum(c * a * b * F32 for _, c, a, b in layer_shapes(sh, sw, deepest))
        parts["activations"] = max(parts["activations"], setup)
    parts["total"] = sum(parts.values())
    return parts


def images_bytes(images):
    # the host memory H×W×3 float32 images hold
    return sum(im.size * F32 for im in images)


def decode_bytes(w, h, mode_bytes):
    # the peak of decoding one w×h input: the decoder's pixels (mode_bytes each: nst.io.image.mode_bytes),
    # Pillow's RGB conversion (4), the uint8 array (3) and the float32 RGB image (12)
    return w * h * (mode_bytes + 4 + 3 + 3 * F32)


def available(backend):
    # bytes free now: the GPU's free memory for cupy, else the host's MemAvailable
    if backend == "cupy":
        import cupy
        free, _ = cupy.cuda.runtime.memGetInfo()
        return free + cupy.get_default_memory_pool().free_bytes()
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def largest_fitting_size(total_at, budget, lo=16, hi=16384):
    # the largest longest side s in [lo, hi] with total_at(s) <= budget (bisection), or 0
    if total_at(lo) > budget:
        return 0
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if total_at(mid) <= budget else (lo, mid - 1)
    return lo


def gib(b):
    return f"{b / 2**30:.2f} GiB"
