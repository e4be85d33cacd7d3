"""How much memory a run needs, estimated before anything is allocated (`nst transfer --dry-run`).

All in bytes of float32. For an output H×W (N = 3HW pixels) and layers up to `deepest`:
  weights      Σ (O·I·9 + O): the file's copy, plus the backend's prepared copy (PREPARED× that).
               A worker keeps one prepared copy between its tasks (nst.run.run.Run keep_weights),
               dropped before it prepares another: a task that finds it adds nothing to it, and the
               check counts the kept copy as free (nst.run.checks.check_memory), as it does the
               file's copy a run has read ahead meanwhile (nst.run.Run.read_weights_ahead)
  activations  Σ_l C_l·h_l·w_l  of every conv layer up to the deepest: the forward keeps them all
               for the backward, which frees each layer's as it passes, so this is the peak
  workspace    what the peak holds beside them (the backward's gradients, a conv's temporaries):
               WORKSPACE × the largest a^l, per backend (measured: bench/RESULTS.md "Memory"); on
               numba, whose freed blocks stay in glibc's heap (kernels/cpu_memory.py), the backward
               also finds the heap fragmented: KEPT × the largest a^l allocated there (< KEPT_LIMIT)
  targets      a^l(C) of the content layers, Ĝ^l(S) of the style layers
  image        the content and style images at the run's size, the preprocessed x: IMAGE N, plus
               the style's pixels; a tiled run also holds ∂J/∂X and TV's arrays (TILED N)
  optimiser    L-BFGS (2m + 4) N (x, g, the direction, the trial x, and m pairs s, y), Adam 4 N, GD 2 N
  runtime      the interpreter, NumPy/Numba and their libraries (host backends only)
  inputs       the decoded content and style images, kept at full size: 12 bytes a pixel
  web          with a live page (--web: web_bytes), the picture a page is sent, made on the server's
               thread as the run goes on
  resizing     resampling an input to a scale's size (nst.io.image.resize) holds two of its planes
               per channel in flight: before the evaluation's arrays exist, so only what exceeds them
               (a huge input at a small size) adds to the total. An --init image is decoded for its
               resize only, not kept: its pixels (12 bytes each) count here too
A tiled run (nst.tiled) holds activations and workspace of one tile's extent, not the picture's.
Decoding an input file costs more than it keeps (`decode_bytes`), and is checked before it starts.
"""
import os

from .spec import CONV_LAYERS, CONV_NAMES, ends_block

F32 = 4
WORKSPACE = {"numba": 0.25, "numpy": 3, "*": 6}   # numpy 3: its peak, 512–1024 px, was 2.3–3.0 × the
                                                    # largest a^l beyond the rest (2026-12-05, Zen 4)
KEPT = {"numba": 1.05}                  # × the largest a^l below KEPT_LIMIT: the peak RSS of numba runs
                                        # (1024–2048 px, 4:3 and 1:1, 2026-12-05) was acts + 1.1–1.2 ×
                                        # that beyond WORKSPACE, and matches the estimate without mallopt.
                                        # In one heap (2026-12-06) 1:1 peaks 15 % lower, 4:3 ones from
                                        # 1536 px vary by 10 %, and the Zen 3 kind's 1024 px peaks are
                                        # 9–11 % below the Zen 4 kind's: 1.05 puts the estimate within
                                        # +0.5 … +2 % over Zen 4's highest 4:3 peaks and +14 % over Zen
                                        # 3's lowest (1.25 was +16.5 % there: bench/RESULTS.md)
TILED_KEPT = {"numba": 1.75}            # KEPT of a tiled evaluation, whose extents of several sizes
                                        # fragment it more: in one heap, +2 … +14 % over the peaks of
                                        # 768–2048 px in 4–9 tiles (2.25 before, in glibc's many arenas)
KEPT_LIMIT = 1 << 30                    # kernels/cpu_memory.LIMIT: larger blocks are mmapped, returned
IMAGE = 2
TILED = 4
THREADED_PIXELS = 2**22                 # nst.io.image.resize: channels in threads up to 4 Mpx (≤ 96 MiB
                                        # in flight), one at a time above (a huge input's 2/3 of its size)
RUNTIME = {"numba": 265 * 2**20, "cupy": 0, "*": 125 * 2**20}
AUTO_TILE_SHARE = 0.95                  # --tile auto plans within 95 % of the free memory: the
                                        # estimate against measured peaks from 1024 px up is −1 … +6 %
                                        # (numba, whole and tiled, 2026-12-05; −4 % at 512 px, 30 MiB)
LUMINANCE_F64 = 5                       # --keep-colors luminance: float64 arrays of the picture's size the
                                        # YIQ transfer holds at once (nst.color.luminance_transfer)
PREPARED = {"numba": 4.0, "numpy": 0}   # prepared / file weights: numba's Winograd F(4×4) U, 36/9 × w
                            # (the 3-channel first layer keeps w itself); numpy's prepared weights
                            # are the file's arrays themselves; cupy's and cuda-cpu's (1): w, plus
                            # the im2col backward's flipped copy of the layers from 256 channels
                            # (0.96 × w through block5_conv1), which fits in the file's copy's share
                            # (cuda-cpu's w is the file's array; a GPU's file copy is on the host)


def layer_shapes(h, w, deepest):
    # -> [(name, C, h_l, w_l)] for every conv layer up to deepest
    out = []
    for name, _, c in CONV_LAYERS[:CONV_NAMES.index(deepest) + 1]:
        out.append((name, c, h, w))
        if ends_block(name):
            h, w = h // 2, w // 2
    return out


def network_bytes(h, w, deepest, backend, backward=True, tiled=False):
    # one evaluation's peak over an h×w picture (or tile extent) -> (activations, workspace): every
    # a^l up to the deepest (the forward keeps them all for the backward), WORKSPACE × the largest
    # one, and with the backward KEPT (TILED_KEPT) × the largest one in the heap (below KEPT_LIMIT)
    per = [c * hl * wl * F32 for _, c, hl, wl in layer_shapes(h, w, deepest)]
    heap = max((b for b in per if b < KEPT_LIMIT), default=0)
    kept = (TILED_KEPT if tiled else KEPT).get(backend, 0) * heap if backward else 0
    return sum(per), int(WORKSPACE.get(backend, WORKSPACE["*"]) * max(per) + kept)


def estimate(h, w, deepest, content_layers, style_layers, optimizer, history,
             style_hw=None, backend="numba", extent=None, style_extent=None):
    # -> {part: bytes} and "total"; optimizer, history: the run's (the L-BFGS pairs it holds:
    # nst.run.run.Run.stored_pairs); style_hw: the (largest) style image's size, for the setup pass;
    # extent, style_extent: (rows, columns) of the largest tile extent over the picture and over the
    # style image (nst.tiled.largest_extent) when evaluated in tiles, whose network passes run over
    # one extent at a time; None: whole
    shapes = layer_shapes(h, w, deepest)
    n = 3 * h * w
    per = {name: c * hl * wl * F32 for name, c, hl, wl in shapes}
    chans = {name: c for name, c, _, _ in shapes}
    tiled = extent is not None
    eh, ew = extent if tiled else (h, w)
    acts, work = network_bytes(eh, ew, deepest, backend, tiled=tiled)
    parts = {
        "weights": int((1 + PREPARED.get(backend, 1)) * F32
                       * sum(o * i * 9 + o for _, i, o in CONV_LAYERS[:len(shapes)])),
        "activations": acts,
        "workspace": work,
        "targets": sum(per[n] for n in content_layers) + sum(chans[n] ** 2 * F32 for n in style_layers),
        "image": ((IMAGE + TILED * tiled) * n + 3 * (style_hw[0] * style_hw[1] if style_hw else 0)) * F32,
        "optimiser": {"lbfgs": (2 * history + 4), "adam": 4, "gd": 2}[optimizer] * n * F32,
        "runtime": RUNTIME.get(backend, RUNTIME["*"]),
    }
    if style_hw:                                    # the style pass (a forward alone) runs before
        style = network_bytes(*(style_extent or style_hw), deepest, backend, backward=False)
        if sum(style) > acts + work:
            parts["activations"], parts["workspace"] = style
    parts["total"] = sum(parts.values())
    return parts


def auto_tile(total_at, free, side, align):
    # the tile --tile auto picks: the largest whose estimate is within AUTO_TILE_SHARE of the free
    # memory (a smaller tile costs only time; an estimate a few % low must not cost the run), or 0
    return largest_fitting_tile(total_at, AUTO_TILE_SHARE * free, side, align)


def largest_fitting_tile(total_at, budget, side, align):
    # the largest tile (a multiple of align, below side) with total_at(tile) <= budget, or 0
    tiles = range(align, side, align)
    if not tiles or total_at(tiles[0]) > budget:
        return 0
    lo, hi = 0, len(tiles) - 1                      # tiles[lo] fits; find the last that does
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if total_at(tiles[mid]) <= budget else (lo, mid - 1)
    return tiles[lo]


def resize_bytes(h, w, channels=3):
    # what resampling an h×w×channels input holds beside it: two h×w float32 planes per channel in
    # flight, the channels in threads up to THREADED_PIXELS, one at a time above
    return 2 * F32 * h * w * (channels if h * w <= THREADED_PIXELS else 1)


def init_bytes(h, w):
    # an h×w --init image at the first scale's start: its decoded float32 pixels and its resize
    return 3 * F32 * h * w + resize_bytes(h, w)


def add_resizing(parts, resizing):
    # parts (estimate's) with "resizing": what the inputs' resampling (resize_bytes) needs beyond
    # the evaluation's arrays, which do not exist yet while it runs; the total grows by as much
    evaluation = sum(parts[k] for k in ("activations", "workspace", "targets", "image", "optimiser"))
    extra = max(0, resizing - evaluation)
    return {**parts, "resizing": extra, "total": parts["total"] + extra}


def web_bytes(h, w, luminance=False):
    # what a live page (--web) holds beside the run for an h×w picture: the picture a page is sent
    # (nst.web.channel.Snapshot), made on the server's thread while the run evaluates: its host copy
    # and its rounding (float32), its 8-bit pixels (kept); with luminance, the content at its size
    # and the YIQ transfer's arrays. x itself is kept by reference, not copied (Run.output_later).
    # On a GPU the picture is host memory, counted as the inputs are
    n = 3 * h * w
    colours = (F32 + 8 * LUMINANCE_F64) * n if luminance else 0
    return (2 * F32 + 1) * n + colours


def images_bytes(images):
    # the host memory H×W×3 float32 images hold
    return sum(im.size * F32 for im in images)


def decode_bytes(w, h, mode_bytes):
    # the peak of decoding one w×h input: the decoder's pixels (mode_bytes each: nst.io.image.mode_bytes),
    # Pillow's RGB conversion (4), the uint8 array (3) and the float32 RGB image (12)
    return w * h * (mode_bytes + 4 + 3 + 3 * F32)


def held_bytes(value):
    # bytes of the arrays in prepared weights ({layer: (ConvLayer or w, b)}: a ConvLayer's .weights,
    # numba's ConvWeights by its nbytes), through dicts, tuples and lists; 0 for anything else
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return sum(held_bytes(v) for v in value)
    return held_bytes(value.weights) if hasattr(value, "weights") else int(getattr(value, "nbytes", 0))


def available(backend):
    # bytes free now: the GPU's free memory for cupy, else the host's MemAvailable, or less where
    # this process's memory cgroup (a container's limit) leaves less (cgroup_headroom)
    if backend == "cupy":
        import cupy
        free, _ = cupy.cuda.runtime.memGetInfo()
        return free + cupy.get_default_memory_pool().free_bytes()
    host = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    try:
        with open("/proc/meminfo") as f:
            host = next((int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:")), host)
    except OSError:
        pass
    limited = cgroup_headroom()
    return host if limited is None else min(host, limited)


# cgroup v2 (the "0::" line of /proc/self/cgroup) and v1 (the "memory" controller's line): the
# folder under CGROUP_ROOT, and its limit and usage files
CGROUP_FILES = {"v2": ("", "memory.max", "memory.current"),
                "v1": ("memory", "memory.limit_in_bytes", "memory.usage_in_bytes")}
UNLIMITED = 1 << 60                     # v1 writes "no limit" as ~2^63 rounded to a page; v2 as "max"


def cgroup_headroom(root="/sys/fs/cgroup", proc="/proc/self/cgroup"):
    # bytes this process's memory cgroup may still take: the least over it and its ancestors of
    # limit − usage + inactive_file (page cache the kernel reclaims first); None where none is limited
    from pathlib import Path
    try:
        lines = Path(proc).read_text().splitlines()
    except OSError:
        return None
    least = None
    for version, path in cgroup_paths(lines):
        sub, limit_file, usage_file = CGROUP_FILES[version]
        rel = Path(path.lstrip("/"))
        for folder in [Path(root, sub, *rel.parts[:k]) for k in range(len(rel.parts), -1, -1)]:
            room = cgroup_room(folder, limit_file, usage_file)
            least = room if least is None or (room is not None and room < least) else least
    return least


def cgroup_paths(lines):
    # /proc/self/cgroup lines -> [(version, path)]: "0::/p" is v2, "N:…memory…:/p" v1
    out = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) == 3 and parts[0] == "0" and parts[1] == "":
            out.append(("v2", parts[2]))
        elif len(parts) == 3 and "memory" in parts[1].split(","):
            out.append(("v1", parts[2]))
    return out


def cgroup_room(folder, limit_file, usage_file):
    # limit − usage + inactive_file of one cgroup folder, or None (no limit there, or unreadable)
    try:
        limit = (folder / limit_file).read_text().strip()
        if limit == "max" or int(limit) >= UNLIMITED:
            return None
        usage = int((folder / usage_file).read_text())
        stat = dict(line.split() for line in (folder / "memory.stat").read_text().splitlines() if line.count(" ") == 1)
    except (OSError, ValueError):
        return None
    return max(0, int(limit) - usage + int(stat.get("inactive_file", 0)))


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
