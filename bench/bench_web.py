"""What the live page (`nst transfer --web`) costs the run: per-iteration time without --web, with
--web and no page open, and with a page watching (a websocket client that reads every message).

Each mode runs a fresh nst.run.run.Run of --iterations L-BFGS steps at --size px in this process
(tubingen × starry_night from NST_IMAGES, the real VGG19 weights, --backend), after one warm-up
run; --rounds rounds alternate the modes' order. Per mode: the median over rounds of the median
time between consecutive iterations (wall), the process CPU time per iteration (the server's
thread included), and for the watched mode the messages and images the page got; and the hook
alone (µs per iteration without a page), which is what --web adds when no browser is open, also at
each --hook-sizes size (a run stopped after its first iteration there, L-BFGS and Adam, with and
without --keep-colors luminance).
And what `nst serve`'s open gallery adds to a running run: its worker's thumbnail of the latest
picture (Snapshot.thumbnail: the picture made, one shrink + JPEG, at most every link.THUMB_EVERY_S), timed alone on
the run's picture at each --thumb-sizes size, beside that size's time per iteration without --web.

    python bench/bench_web.py --write          # ≈ 3 min on a 2-core machine (measured, shared); updates RESULTS.md
Under pytest (collected, --benchmark-disable): one tiny round of each mode runs and the page gets
its messages.
"""
import argparse
import asyncio
import os
import shlex
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from shared_images import image  # noqa: E402

BEGIN, END = "<!-- bench_web begin -->", "<!-- bench_web end -->"
MODES = ("off", "web, no page", "web, a page watching")


class Watcher:
    """A page without a browser: a websocket client on its own thread reading every message."""

    def __init__(self, url):
        self.url, self.messages, self.images = url.replace("http://", "ws://").split("?")[0] + "ws", 0, 0
        self.connected, self.done = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._read()), daemon=True)
        self.thread.start()
        self.connected.wait(10)

    async def _read(self):
        import json

        import aiohttp
        async with aiohttp.ClientSession() as s, s.ws_connect(self.url, max_msg_size=0) as ws:
            self.connected.set()
            async for msg in ws:
                data = json.loads(msg.data)
                self.messages += 1
                self.images += bool(data.get("image"))
                if self.done.is_set():
                    break

    def close(self):
        self.done.set()


def one_run(mode, content, style, settings):
    # -> (median s between iterations, CPU s per iteration, messages, images) of one fresh Run
    from nst.run.run import Run
    from nst.run.settings import Settings
    from nst.web.live import LivePage
    run = Run(content, [style], Settings(**settings), lambda m: None)
    page = watcher = None
    if mode != "off":
        page = LivePage("127.0.0.1", 0, "bench").start()
        page.attach(run)
        if mode == MODES[2]:
            watcher = Watcher(page.url)
    stamps = []

    def on_iteration(r, it, terms):
        stamps.append((time.perf_counter(), time.process_time()))
        if page:
            page.on_iteration(r, it, terms)
    run.run(on_iteration)
    if mode == MODES[1]:
        hook_us.append(hook_cost(page, run))
    if watcher:
        time.sleep(0.3)
        watcher.close()
    if page:
        page.close()
    walls = [b[0] - a[0] for a, b in zip(stamps, stamps[1:])]
    cpu = (stamps[-1][1] - stamps[0][1]) / max(len(stamps) - 1, 1)
    return statistics.median(walls), cpu, watcher.messages if watcher else 0, watcher.images if watcher else 0


hook_us = []          # the live page's per-iteration hook without a page, in µs, one entry per run


def hook_cost(page, run, calls=2000):
    # µs per call of the hook the run calls after each iteration (--web, no page), on the finished run
    terms = run.history[-1]
    start = time.perf_counter()
    for k in range(calls):
        page.on_iteration(run, len(run.history) + k, terms)
    return (time.perf_counter() - start) / calls * 1e6


def hook_by_size(content, style, settings, sizes, calls=100):
    # -> {(size, optimizer, keep_colors): µs per call of the hook with no page}, on a run of
    # `settings` at each size stopped after its first iteration
    from nst.run.run import Run
    from nst.run.settings import Settings
    from nst.web.live import LivePage
    out = {}
    for size in sizes:
        for optimizer in ("lbfgs", "adam"):
            run = Run(content, [style], Settings(**{**settings, "size": size, "optimizer": optimizer,
                                                   "iterations": 1}), lambda m: None)
            run.run()
            page = LivePage("127.0.0.1", 0, "bench").start()
            page.attach(run)
            for keep in (None, "luminance"):
                run.settings = run.settings.replace(keep_colors=keep)
                out[(size, optimizer, keep)] = hook_cost(page, run, calls)
            page.close()
    return out


def hook_table(costs):
    # {(size, optimizer, keep_colors): µs} -> the table
    rows = ["| size | optimizer | --keep-colors | µs per iteration (no page) |", "| --- | --- | --- | --- |"]
    rows += [f"| {size} px | {opt} | {keep or '–'} | {us:.0f} |" for (size, opt, keep), us in costs.items()]
    return "\n".join(rows)


def thumbnail_cost(content, style, settings, repeats=20, iterations=4):
    # -> (ms per thumbnail, median s per iteration without --web) at settings["size"]: the thumbnail
    # of the picture of a fresh run of `iterations`, made `repeats` times (median), as its worker makes it
    from nst.run.run import Run
    from nst.run.settings import Settings
    from nst.web.channel import Snapshot
    run, stamps = Run(content, [style], Settings(**{**settings, "iterations": iterations}), lambda m: None), []
    run.run(lambda r, it, terms: stamps.append(time.perf_counter()))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        Snapshot(1, run.output_later()).thumbnail()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3, statistics.median(b - a for a, b in zip(stamps, stamps[1:]))


def thumbnail_table(costs):
    # {size: (ms per thumbnail, s per iteration)} -> the table: at most one thumbnail per
    # THUMB_EVERY_S and per new picture, i.e. min(1, s per iteration / THUMB_EVERY_S) per iteration
    from nst.web.link import THUMB_EVERY_S
    rows = ["| size | ms per thumbnail | s/iteration (off) | thumbnails per iteration | ms per iteration | "
            "of an iteration |", "| --- | --- | --- | --- | --- | --- |"]
    for size, (ms, wall) in costs.items():
        per = min(1.0, wall / THUMB_EVERY_S)
        rows.append(f"| {size} px | {ms:.2f} | {wall:.3f} | {per:.3f} | {ms * per:.3f} | {ms * per / 1e3 / wall:.2e} |")
    return "\n".join(rows)


def measure(content, style, settings, rounds):
    # -> {mode: [(wall, cpu, messages, images)] per round}, modes alternating
    one_run(MODES[0], content, style, settings)                 # warm-up: Numba compiles, caches fill
    out = {m: [] for m in MODES}
    for r in range(rounds):
        order = MODES[r % 3:] + MODES[:r % 3]
        for mode in order:
            out[mode].append(one_run(mode, content, style, settings))
    return out


def base_wall(results):
    return statistics.median(w for w, *_ in results[MODES[0]])


def table(results):
    base = base_wall(results)
    rows = ["| mode | s/iteration (wall, median) | vs off | CPU s/iteration | page messages / images |",
            "| --- | --- | --- | --- | --- |"]
    for mode, runs in results.items():
        wall = statistics.median(w for w, *_ in runs)
        cpu = statistics.median(c for _, c, *_ in runs)
        seen = f"{sum(m for *_, m, _ in runs)} / {sum(i for *_, i in runs)}" if mode == MODES[2] else "–"
        rows.append(f"| {mode} | {wall:.4f} | {wall / base:.3f} | {cpu:.4f} | {seen} |")
    return "\n".join(rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=192)
    ap.add_argument("--iterations", type=int, default=25)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--backend", default="numba")
    ap.add_argument("--thumb-sizes", type=int, nargs="*", default=[128, 512],
                    help="sizes (px) at which the gallery's thumbnail is timed")
    ap.add_argument("--hook-sizes", type=int, nargs="*", default=[512, 1024],
                    help="sizes (px) at which the hook alone (no page) is timed")
    ap.add_argument("--shared", default="other jobs", help="what else ran on the machine meanwhile, as the "
                    "section says it")
    ap.add_argument("--write", action="store_true", help="update bench/RESULTS.md's section")
    args = ap.parse_args()
    from nst.io.image import load_image
    content, style = load_image(image("tubingen.jpg")), load_image(image("starry_night.jpg"))
    settings = {"size": args.size, "scales": 1, "iterations": args.iterations, "backend": args.backend}
    load_before = os.getloadavg()[0]
    results = measure(content, style, settings, args.rounds)
    costs = {size: thumbnail_cost(content, style, {**settings, "size": size}) for size in args.thumb_sizes}
    hooks = hook_by_size(content, style, settings, args.hook_sizes)
    from bench_pictures import machine, write_section
    from nst.web.channel import THUMB_SIDE
    from nst.web.link import THUMB_EVERY_S
    command = f"python bench/bench_web.py {shlex.join(sys.argv[1:])}".strip()
    text = "\n".join([
        "## The live page's cost to the run (bench/bench_web.py)", "",
        f"Machine: {machine()} (shared with {args.shared}: compare the ratios, measured side by side, "
        f"not the absolute times); load average before {load_before:.1f}. Date: {time.strftime('%Y-%m-%d')}. "
        f"Command: `{command}` ({args.size} px, {args.iterations} L-BFGS iterations, {args.backend}, "
        f"{args.rounds} rounds, modes alternating).", "", table(results), "",
        f"The hook itself (`LivePage.on_iteration` with no page: a point appended, the status updated, "
        f"what makes the picture kept: x by reference), "
        f"timed alone on a finished run: {statistics.median(hook_us):.0f} µs per iteration (median of "
        f"{len(hook_us)} runs × 2000 calls): {statistics.median(hook_us) * 1e-6 / base_wall(results):.2e} "
        "of an iteration without --web. At larger sizes (100 calls on a run stopped after its first "
        "iteration):", "", hook_table(hooks), "",
        f"`nst serve`'s gallery open, a running run's card: its worker makes the latest picture (unless a live "
        f"page had it made) and a thumbnail of it (at most {THUMB_SIDE} px, JPEG) at most every "
        f"{THUMB_EVERY_S:g} s, on its posting thread, not the run's. Timed alone on the picture of a fresh "
        "4-iteration run at each size (median of 20), beside that run's s/iteration (the run does not "
        "wait for it; the thread takes the machine's CPU time):",
        "", thumbnail_table(costs)])
    print(text)
    if args.write:
        write_section(text, begin=BEGIN, end=END)


def test_every_mode_runs_and_the_page_gets_messages():
    import numpy as np

    from nst.testing import tiny_params
    rng = np.random.default_rng(0)
    img = rng.uniform(0, 255, (40, 48, 3)).astype(np.float32)
    settings = {"size": 48, "scales": 1, "iterations": 6, "backend": "numpy", "weights": tiny_params()}
    results = {m: one_run(m, img, img[::-1].copy(), settings) for m in MODES}
    assert all(w > 0 and c > 0 for w, c, *_ in results.values())
    assert results[MODES[2]][2] >= 1 and results[MODES[1]][2] == 0
    ms, wall = thumbnail_cost(img, img[::-1].copy(), settings, repeats=2, iterations=3)
    assert ms > 0 and wall > 0 and "| 48 px |" in thumbnail_table({48: (ms, wall)})
    hooks = hook_by_size(img, img[::-1].copy(), settings, [32], calls=2)
    assert len(hooks) == 4 and all(us > 0 for us in hooks.values())
    assert "| 32 px | adam | luminance |" in hook_table(hooks)


if __name__ == "__main__":
    main()
