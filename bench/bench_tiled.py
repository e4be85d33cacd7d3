"""Tiled evaluation (nst.tiled) against the untiled one: agreement, time overhead, and big pictures.

What is measured (tubingen.jpg in the style of starry_night.jpg, longest side --size, default
layers and weights, real VGG19 weights, X = the content image):
- agreement: J (relative difference) and ∂J/∂X (relative L2 error) of TiledObjective(tile=T)
  against Objective, for each T in --tiles ("auto": the tile `nst transfer --tile auto` picks for
  --budget-gib; none when the whole picture fits, when the overhead is 1 by construction).
- the float32 floor: the untiled evaluation against itself at X moved by N(0, 1e-5) grey levels
  (below float32's resolution for most pixels): how far ∂J/∂X moves when only its ReLU masks and
  max-pool winners may flip, the agreement no other evaluation order can beat.
- overhead: wall and CPU time of one evaluation, tiled / untiled, alternating the two in one
  process after a warm-up, --repeats times; the median of the paired ratios (a shared, busy
  machine moves both alike).
- --run ARGS...: runs `nst transfer ARGS` in a fresh process and reports its peak RSS (VmHWM of the
  child, via wait4's ru_maxrss from this small parent) and wall time (big pictures, e.g. 8K).

    python bench/bench_tiled.py --size 1024 --tiles 512 auto --budget-gib 1.5
    python bench/bench_tiled.py --run CONTENT STYLE -o out.png --size 7680 --tile 1024 ...
    python bench/bench_tiled.py --size 256 --tiles 64 --floor numba numpy
    python bench/bench_tiled.py --size 2048 --tiles 512 --cluster 2
- --figure PICTURE PREFIX [FX FY]: the README's view of a big picture, PREFIX_small.jpg (1920 px wide) and
  PREFIX_crop.jpg (1024×576 px at full resolution, centred at the fractions FX, FY of its width, height).
- --cluster WORKERS: the tiles as tasks on a LocalCluster (nst.batch.tiles, `nst transfer --scheduler`)
  against the local tiled evaluation: agreement, wall time, the client's and each worker's peak RSS.
- --floor: the same J and ∂J/∂X against numpy's float64 evaluation: how far float32 rounding alone
  moves them, beside how far tiling does.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
from shared_images import image  # noqa: E402
WEIGHTS = dict(content_weight=1.0, style_weight=10.0, tv_weight=1e-3, style_layer_weights="auto")


def auto_tile(side, budget_gib, backend):
    # the tile `nst transfer --tile auto` picks at this size for this budget (None: untiled fits)
    from nst import memory
    from nst.io.image import load_image
    from nst.run.run import Run
    from nst.run.settings import Settings
    run = Run(load_image(image("tubingen.jpg")), [load_image(image("starry_night.jpg"))],
              Settings(size=side, scales=1, backend=backend), log=lambda m: None)
    budget = budget_gib * 2**30
    if run.memory_estimate()[0]["total"] <= budget:
        return None
    h, w = run.memory_estimate()[1]
    return memory.auto_tile(lambda t: run.memory_estimate(tile=t)[0]["total"], budget,
                            max(h, w), run.tile_align()) or None


def timed(obj, x):
    t, c = time.perf_counter(), time.process_time()
    r = obj(x)
    return r, time.perf_counter() - t, time.process_time() - c


def compare(side, tiles, budget_gib, repeats, backend):
    from nst.io.image import load_image, resize_longest
    from nst.objective import Objective
    from nst.tiled import TiledObjective
    content = resize_longest(load_image(image("tubingen.jpg")), side)
    style = resize_longest(load_image(image("starry_night.jpg")), side)
    kw = dict(backend=backend, log=lambda m: None, **WEIGHTS)
    whole = Objective(content, style, **kw)
    ref, _, _ = timed(whole, content)                                    # warm-up
    print(f"{content.shape[1]}×{content.shape[0]} on {backend}, {repeats} paired evaluations each")
    print("| tile | tiles | J rel. diff | ∂J/∂X rel. L2 | wall tiled / untiled | CPU tiled / untiled |")
    print("|---|---|---|---|---|---|")
    moved = (content + np.random.default_rng(0).normal(0, 1e-5, content.shape)).astype(np.float32)
    jit, _, _ = timed(whole, moved)                                      # the float32 floor
    print(f"| none: untiled at X + N(0, 1e-5) grey levels | 1 | {abs(jit.total - ref.total) / abs(ref.total):.2e} "
          f"| {np.linalg.norm(jit.grad - ref.grad) / np.linalg.norm(ref.grad):.2e} | 1 | 1 |", flush=True)
    for tile in tiles:
        t = auto_tile(side, budget_gib, backend) if tile == "auto" else int(tile)
        if t is None:
            print(f"| auto ({budget_gib} GiB): untiled | 1 | 0 | 0 | 1 | 1 |")
            continue
        tiled = TiledObjective(content, style, tile=t, **kw)
        n = len(tiled.tiles(*content.shape[:2], tiled.content_layers + tiled.style_layers))
        got, _, _ = timed(tiled, content)                                # warm-up
        walls, cpus = [], []
        for _ in range(repeats):
            _, w0, c0 = timed(whole, content)
            _, w1, c1 = timed(tiled, content)
            walls.append(w1 / w0)
            cpus.append(c1 / c0)
        j = abs(got.total - ref.total) / abs(ref.total)
        g = float(np.linalg.norm(got.grad - ref.grad) / np.linalg.norm(ref.grad))
        name = f"auto ({budget_gib} GiB): {t}" if tile == "auto" else str(t)
        print(f"| {name} | {n} | {j:.2e} | {g:.2e} | {statistics.median(walls):.2f} | "
              f"{statistics.median(cpus):.2f} |", flush=True)


def floor(side, tile, backends):
    # float32 rounding against the tiling: ∂J/∂X (relative L2) and J (relative) of each backend's
    # untiled and tiled float32 evaluations against numpy's float64 one, and tiled vs untiled in
    # float64 (X = the content plus noise, so that every term has a gradient)
    from nst.io.image import load_image, resize_longest
    from nst.objective import Objective
    from nst.tiled import TiledObjective
    c = resize_longest(load_image(image("tubingen.jpg")), side)
    s = resize_longest(load_image(image("starry_night.jpg")), side)
    x = np.clip(c + np.random.default_rng(0).normal(0, 20, c.shape), 0, 255).astype(np.float32)
    kw = dict(log=lambda m: None, **WEIGHTS)

    def rel(a, b):
        return (f"{np.linalg.norm(a.grad - b.grad) / np.linalg.norm(b.grad):.2g}, "
                f"{abs(a.total - b.total) / abs(b.total):.2g}")
    exact = Objective(c, s, backend="numpy", dtype=np.float64, **kw)(x)
    tiled = TiledObjective(c, s, tile=tile, backend="numpy", dtype=np.float64, **kw)(x)
    print(f"{c.shape[1]}×{c.shape[0]}, tiles of {tile}: (∂J/∂X rel. L2, J rel.)")
    print(f"numpy float64 tiled vs untiled: {rel(tiled, exact)}", flush=True)
    for be in backends:
        whole = Objective(c, s, backend=be, **kw)(x)
        tiled = TiledObjective(c, s, tile=tile, backend=be, **kw)(x)
        print(f"{be} float32: untiled vs float64 {rel(whole, exact)}; tiled vs float64 {rel(tiled, exact)}; "
              f"tiled vs untiled {rel(tiled, whole)}", flush=True)


def on_cluster(side, tile, workers, repeats, backend):
    # the tiles as tasks on a LocalCluster of `workers` processes (nst.batch.tiles) against the local
    # tiled evaluation: agreement, wall time, and the peak RSS of the client and of each worker
    from distributed import Client, LocalCluster
    from bench_largest import vm_hwm_mib
    from nst.batch.tiles import ClusterTiles
    from nst.io.image import load_image, resize_longest
    from nst.spec import layers_through
    from nst.tiled import TiledObjective
    from nst.weights import load
    content = resize_longest(load_image(image("tubingen.jpg")), side)
    style = resize_longest(load_image(image("starry_night.jpg")), side)
    kw = dict(backend=backend, log=lambda m: None, **WEIGHTS)
    threads = max(1, (os.cpu_count() or 1) // workers)
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                      env={"NUMBA_NUM_THREADS": str(threads), "OMP_NUM_THREADS": str(threads)}) as cluster, \
            Client(cluster) as client:
        names = layers_through("block5_conv1")
        tiles = ClusterTiles(client, load(None, lambda m: None, layers=names))
        there = tiles.objective(content, style, tile=tile, **kw)
        got, _, _ = timed(there, content)                               # warm-up
        client_mib = vm_hwm_mib()
        worker_mib = sorted(client.run(vm_hwm_mib).values())
        here = TiledObjective(content, style, tile=tile, **kw)
        ref, _, _ = timed(here, content)
        walls = []
        for _ in range(repeats):
            _, w0, _ = timed(here, content)
            _, w1, _ = timed(there, content)
            walls.append(w1 / w0)
    n = len(here.tiles(*content.shape[:2], here.content_layers + here.style_layers))
    print(f"{content.shape[1]}×{content.shape[0]}, {n} tiles of {tile} px, {workers} worker processes × {threads} "
          f"threads: J rel. diff {abs(got.total - ref.total) / abs(ref.total):.2e}, ∂J/∂X rel. L2 "
          f"{np.linalg.norm(got.grad - ref.grad) / np.linalg.norm(ref.grad):.2e} (vs the local tiled evaluation); "
          f"wall cluster / local {statistics.median(walls):.2f}; peak RSS: client {client_mib:.0f} MiB (before the "
          f"local objective), workers {', '.join(f'{m:.0f}' for m in worker_mib)} MiB")


def figure(picture, prefix, width=1920, crop=(1024, 576), at=(0.5, 0.5)):
    # the README's view of a big picture: PREFIX_small.jpg (downscaled to `width` px) and
    # PREFIX_crop.jpg (crop w×h px at full resolution, centred at the fractions `at` of the picture)
    from PIL import Image
    im = Image.open(picture).convert("RGB")
    w, h = im.size
    im.resize((width, round(h * width / w)), Image.LANCZOS).save(f"{prefix}_small.jpg", quality=88)
    cx, cy = round(at[0] * w), round(at[1] * h)
    x0, y0 = min(max(0, cx - crop[0] // 2), w - crop[0]), min(max(0, cy - crop[1] // 2), h - crop[1])
    im.crop((x0, y0, x0 + crop[0], y0 + crop[1])).save(f"{prefix}_crop.jpg", quality=92)
    print(f"{picture}: {w}×{h} -> {prefix}_small.jpg ({width} px wide), {prefix}_crop.jpg "
          f"({crop[0]}×{crop[1]} at ({x0}, {y0}))")


def run_cli(args):
    # `nst transfer ARGS` in a child: its peak RSS and wall time (the parent stays small, so the
    # child's ru_maxrss is its own) -> the child's exit status
    t = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "nst", "transfer", *args], cwd=ROOT)
    _, status, usage = os.wait4(child.pid, 0)
    print(f"exit {os.waitstatus_to_exitcode(status)}; peak RSS {usage.ru_maxrss / 2**20:.2f} GiB; "
          f"wall {time.perf_counter() - t:.0f} s; CPU {usage.ru_utime + usage.ru_stime:.0f} s")
    return os.waitstatus_to_exitcode(status)


def figure_args(argv):
    # --figure's PICTURE PREFIX [FX FY] -> (picture, prefix, (fx, fy)), or SystemExit in one line
    if len(argv) not in (2, 4):
        raise SystemExit("usage: bench_tiled.py --figure PICTURE PREFIX [FX FY]")
    if not os.path.isfile(argv[0]):
        raise SystemExit(f"bench_tiled.py --figure: {argv[0]}: no such file")
    try:
        at = tuple(float(v) for v in argv[2:]) or (0.5, 0.5)
    except ValueError:
        raise SystemExit(f"bench_tiled.py --figure: FX FY must be fractions of the width and height, got {argv[2:]}")
    return argv[0], argv[1], at


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--run"]:
        return run_cli(argv[1:])
    if argv[:1] == ["--figure"]:
        picture, prefix, at = figure_args(argv[1:])
        return figure(picture, prefix, at=at)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                epilog="instead, given first: --run ARGS... (`nst transfer ARGS` in a child: its peak "
                                       "RSS and wall time); --figure PICTURE PREFIX [FX FY] (the README's views of a "
                                       "big picture)")
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--tiles", nargs="+", default=["512", "auto"])
    p.add_argument("--budget-gib", type=float, default=1.5, help="the budget of --tiles auto")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--backend", default="numba")
    p.add_argument("--floor", nargs="+", metavar="BACKEND",
                   help="instead: float32 rounding against tiling, these backends vs float64, tiles of --tiles[0]")
    p.add_argument("--cluster", type=int, metavar="WORKERS",
                   help="instead: tiles of --tiles[0] on a LocalCluster of WORKERS processes vs the local tiled one")
    args = p.parse_args(argv)
    if args.cluster:
        return on_cluster(args.size, int(args.tiles[0]), args.cluster, args.repeats, args.backend)
    if args.floor:
        return floor(args.size, int(args.tiles[0]), args.floor)
    compare(args.size, args.tiles, args.budget_gib, args.repeats, args.backend)


def test_figure_and_run_say_what_is_wrong(tmp_path):
    # --figure with a missing picture was a FileNotFoundError traceback, with one argument a TypeError;
    # --run exited 0 whatever nst transfer's status
    import pytest
    with pytest.raises(SystemExit, match=r"^bench_tiled.py --figure: .*nope.png: no such file$"):
        main(["--figure", str(tmp_path / "nope.png"), str(tmp_path / "view")])
    with pytest.raises(SystemExit, match=r"^usage: bench_tiled.py --figure PICTURE PREFIX \[FX FY\]$"):
        main(["--figure", str(tmp_path / "nope.png")])
    assert main(["--run", str(tmp_path / "nope.jpg"), str(tmp_path / "nope.jpg"), "-o", str(tmp_path / "o.png")]) == 2


if __name__ == "__main__":
    sys.exit(main())
