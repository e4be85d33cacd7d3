"""Time to a picture: the default `nst transfer C S -o out.png`, every term against jcjohnson's, over time.

For each pair it runs the default run (nst.transfer.Run, DEFAULTS, 512 px) once, keeping a snapshot
of the picture every few iterations (and at the end of each scale), and where the time goes: per
scale the wall and CPU seconds, the evaluations of J (line-search ones included), the time inside
Objective.evaluate, the scale's set-up (targets) and the rest (the optimiser's vector work). After
the run each snapshot is scored like bench/bench_pictures.py does (resized to the reference's
shape, rounded to 8 bits, SPEC's terms by nst.compare.score) and divided by the reference's terms:
the curve of every term relative to jcjohnson's against wall time (docs/figures/time_to_picture_*.png),
and the wall time at which nst's picture first matches the reference on every term. Snapshots and
scoring are outside the timed path (their time is subtracted).

Pairs: "starry" and "shipwreck" (../shared/images, jcjohnson's published pictures), or any
NAME=CONTENT,STYLE,REFERENCE (e.g. a held-out pair with bench/jcjohnson_proxy.py's picture).

    NST_IMAGES=/work/shared/images python bench/bench_time_to_picture.py --pairs starry,shipwreck
    python bench/bench_time_to_picture.py --pairs starry --write --figures       # RESULTS.md + PNGs
    python bench/bench_time_to_picture.py --pairs astro=a.png,starry_night.jpg,ref.png --settings '{"iterations": 200}'
"""
import argparse
import datetime
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_pictures import PAIRS, load_image_roundtrip, machine, write_section  # noqa: E402
from jcjohnson_proxy import CALIBRATION, his_weighted_sum  # noqa: E402
from nst.compare import score  # noqa: E402
from nst.io.image import load_image, resize  # noqa: E402
from nst.objective import Objective  # noqa: E402
from nst.run.run import Run  # noqa: E402
from nst.run.settings import DEFAULTS, Settings  # noqa: E402
from shared_images import FOLDER, image  # noqa: E402

BEGIN, END = "<!-- bench_time_to_picture begin -->", "<!-- bench_time_to_picture end -->"
SHOWN = ("size", "iterations", "style_weight", "style_layer_weights", "init")


class Clock:
    """Wall and CPU seconds of a run, minus the time its observer spent (snapshots)."""

    def __init__(self):
        self.wall0, self.cpu0, self.paused = time.perf_counter(), time.process_time(), [0.0, 0.0]

    def now(self):
        return (time.perf_counter() - self.wall0 - self.paused[0], time.process_time() - self.cpu0 - self.paused[1])

    def pause(self, since):
        # since: (perf_counter, process_time) when the observer started
        self.paused[0] += time.perf_counter() - since[0]
        self.paused[1] += time.process_time() - since[1]


class Timed:
    """Adds up the seconds spent inside Objective.evaluate and Run.objective (set-up), per scale side."""

    def __init__(self):
        self.eval_s, self.setup_s, self.side = {}, {}, None
        self._evaluate, self._objective = Objective.evaluate, Run.objective
        timed = self

        def evaluate(obj, image):
            t = time.perf_counter()
            out = timed._evaluate(obj, image)
            timed.eval_s[timed.side] = timed.eval_s.get(timed.side, 0.0) + time.perf_counter() - t
            return out

        def objective(run, content, styles):
            timed.side = run.sizes[run.scale]
            t = time.perf_counter()
            out = timed._objective(run, content, styles)
            timed.setup_s[timed.side] = timed.setup_s.get(timed.side, 0.0) + time.perf_counter() - t
            return out
        Objective.evaluate, Run.objective = evaluate, objective

    def close(self):
        Objective.evaluate, Run.objective = self._evaluate, self._objective


def run_with_snapshots(content, style, settings, every):
    # -> (picture, rows [{iteration, side, wall, cpu, evaluations, J}], snapshots [(wall, cpu, image)], scales)
    run = Run(content, style, Settings.from_dict({"backend": "numba", **settings}),
              log=lambda m: print("  " + m, file=sys.stderr))
    rows, snaps, timed = [], [], Timed()
    clock = Clock()
    start = {}                                            # scale index -> its first iteration
    pending = []                                          # the newest image not yet kept

    def on_iteration(r, it, terms):
        wall, cpu = clock.now()
        t0 = (time.perf_counter(), time.process_time())
        if r.scale not in start:                          # a new scale: keep the previous one's last image
            start[r.scale] = it
            snaps.extend(pending[-1:] if r.scale else [])
        rows.append(dict(iteration=it, side=r.sizes[r.scale], wall=wall, cpu=cpu, evaluations=r.evaluations,
                         J=terms["total"]))
        pending[:] = [(wall, cpu, it, r.output().copy())]
        if (it - start[r.scale] + 1) % every == 0:
            snaps.append(pending.pop())
        clock.pause(t0)
    try:
        out = run.run(on_iteration)
    finally:
        timed.close()
    wall, cpu = clock.now()
    snaps.append((wall, cpu, len(run.history), out.copy()))
    scales = scale_table(rows, timed, run.sizes)
    return out, rows, snaps, scales, (wall, cpu)


def scale_table(rows, timed, sizes):
    # per scale: iterations, evaluations, wall s, CPU s, s in evaluate, s in set-up
    out, prev = [], dict(wall=0.0, cpu=0.0, evaluations=0, iteration=0)
    for side in sizes:
        mine = [r for r in rows if r["side"] == side]
        if not mine:
            continue
        last = mine[-1]
        out.append(dict(side=side, iterations=last["iteration"] - prev["iteration"],
                        evaluations=last["evaluations"] - prev["evaluations"],
                        wall=last["wall"] - prev["wall"], cpu=last["cpu"] - prev["cpu"],
                        evaluate=timed.eval_s.get(side, 0.0), setup=timed.setup_s.get(side, 0.0)))
        prev = last
    return out


def score_snapshots(snaps, content, style, reference, weights, side=None):
    # -> ([(wall, cpu, iteration, {term: nst / reference})], W(last snapshot) / W(reference)); each
    # snapshot resized to the reference's shape (side: the reference first resized to that longest
    # side, e.g. a 256 px proxy's); W: jcjohnson's objective less TV (bench/jcjohnson_proxy.py)
    if side and max(reference.shape[:2]) != side:
        from nst.io.image import resize_longest
        reference = load_image_roundtrip(resize_longest(reference, side))
    pictures = [load_image_roundtrip(resize(img, *reference.shape[:2])) for _, _, _, img in snaps]
    scores = score(pictures + [reference], content, style, weights=weights, backend="numba")
    ref, shape = scores[-1], reference.shape[:2]
    w_ratio = his_weighted_sum(scores[-2], *shape) / his_weighted_sum(ref, *shape)
    return [(w, c, it, {t: s[t] / ref[t] for t in ref}) for (w, c, it, _), s in zip(snaps, scores[:-1])], w_ratio


def first_match(curve):
    # the first snapshot at least as good as the reference on every term -> (wall, iteration) or None
    for wall, _, it, ratios in curve:
        if max(ratios.values()) <= 1:
            return wall, it
    return None


def plot_curve(curve, path, title, size=(720, 420)):
    # every term's nst / reference ratio (log y) against wall seconds, a line at 1
    from PIL import Image, ImageDraw
    from nst.io.report import FG, GRID, PALETTE, font
    w, h = size
    left, right, top, bottom = 60, 170, 34, 48
    im = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(im)
    terms = list(curve[0][3])
    vals = np.array([r[t] for *_, r in curve for t in terms])
    lo, hi = np.floor(np.log10(vals.min())), np.ceil(np.log10(vals.max()))
    hi = max(hi, lo + 1, 1)
    tmax = max(c[0] for c in curve) * 1.02
    px = lambda t: left + (w - left - right) * t / tmax                          # noqa: E731
    py = lambda v: top + (h - top - bottom) * (hi - np.log10(v)) / (hi - lo)     # noqa: E731
    for e in np.arange(lo, hi + 0.5, 0.5):
        d.line([(left, py(10 ** e)), (w - right, py(10 ** e))], fill=(120, 120, 120) if e == 0 else GRID)
        d.text((left - 6, py(10 ** e)), f"{10 ** e:.3g}", fill=FG, font=font(11), anchor="rm")
    for t in range(0, int(tmax) + 1, max(10, int(tmax / 8) // 10 * 10)):
        d.text((px(t), h - bottom + 6), f"{t}", fill=FG, font=font(11), anchor="mt")
    d.line([(left, top), (left, h - bottom), (w - right, h - bottom)], fill=FG)
    d.text((left + (w - left - right) / 2, h - 16), "wall seconds (snapshots excluded)", fill=FG, font=font(12),
           anchor="mm")
    d.text((left, 10), title, fill=FG, font=font(12))
    colours = [(20, 20, 20)] + PALETTE[1:] + [(230, 150, 20)]
    for k, t in enumerate(terms):
        pts = [(px(c[0]), py(c[3][t])) for c in curve]
        d.line(pts, fill=colours[k % len(colours)], width=2)
        y = top + 10 + 18 * k
        d.line([(w - right + 10, y), (w - right + 30, y)], fill=colours[k % len(colours)], width=3)
        d.text((w - right + 36, top + 3 + 18 * k), t.replace("_conv1", ""), fill=FG, font=font(11))
    im.save(path)


def pair_inputs(spec, images):
    # "starry" | "NAME=CONTENT,STYLE,REFERENCE" -> (name, content path, style path, reference path)
    if "=" in spec:
        name, paths = spec.split("=", 1)
        return (name, *(Path(p) for p in paths.split(",")))
    c, s, ref = PAIRS[spec]
    return spec, image(c, images), image(s, images), image(f"reference/{ref}", images)


def pair_report(spec, images, settings, weights, every, figures, out_dir, score_side=None):
    name, c, s, ref = pair_inputs(spec, images)
    content, style = load_image(c), load_image(s)
    out, rows, snaps, scales, (wall, cpu) = run_with_snapshots(content, style, {**settings, "weights": weights}, every)
    while not ref.exists():                               # a reference still being made (jcjohnson_proxy.py)
        time.sleep(10)
    reference = load_image(ref)
    curve, w_ratio = score_snapshots(snaps, content, style, reference, weights, score_side)
    final, match = curve[-1][3], first_match(curve)
    if out_dir:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        from nst.io.image import save_image
        save_image(load_image_roundtrip(out), Path(out_dir) / f"nst_{name}.png")
        (Path(out_dir) / f"curve_{name}.json").write_text(json.dumps(
            dict(rows=rows, scales=scales, curve=[(w_, c_, i, r) for w_, c_, i, r in curve])))
    if figures:
        plot_curve(curve, ROOT / "docs" / "figures" / f"time_to_picture_{name}.png",
                   f"{c.name} + {s.name}: each term, nst / reference (≤ 1: nst as good)")
    lines = [f"### {name}: {c.name} + {s.name} (reference: {ref.name})", "",
             "| term | " + " | ".join(t.replace("_conv1", "") for t in final) + " |",
             "|" + " --- |" * (len(final) + 1),
             "| nst / reference, final | " + " | ".join(f"{v:.3g}" for v in final.values()) + " |", "",
             "| scale | iterations | evaluations | wall s | CPU s | in evaluate s | set-up s | rest s |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for sc in scales:
        rest = sc["wall"] - sc["evaluate"] - sc["setup"]
        lines.append(f"| {sc['side']} px | {sc['iterations']} | {sc['evaluations']} | {sc['wall']:.1f} | "
                     f"{sc['cpu']:.1f} | {sc['evaluate']:.1f} | {sc['setup']:.1f} | {rest:.1f} |")
    lines += ["", f"Whole run: {wall:.1f} s wall, {cpu:.1f} s CPU; worst ratio {max(final.values()):.3g}; "
              + (f"first at least as good on every term at {match[0]:.0f} s (iteration {match[1]})."
                 if match else "never at least as good on every term."),
              f"jcjohnson's objective less TV (W, bench/jcjohnson_proxy.py), nst / reference: {w_ratio:.3g} "
              "(every term ≤ 1 needs W ≤ 1)."]
    lines += estimate_against_his(final, s.name, ref, images) + [""]
    return "\n".join(lines)


def estimate_against_his(final, painting, ref, images):
    # a stand-in's pair (not his published picture) with a calibrated painting -> the line estimating
    # nst / his picture: nst / stand-in × stand-in / his picture (jcjohnson_proxy.CALIBRATION)
    if ref.parent == images / "reference" or painting not in CALIBRATION:
        return []
    est = [r * c for r, c in zip(final.values(), CALIBRATION[painting])]
    return [f"Estimated nst / his picture (× the stand-in's calibration on his published {painting} pair, "
            f"jcjohnson_proxy.CALIBRATION): {' '.join(f'{e:.3g}' for e in est)}; worst {max(est):.3g}."]


def cache_check(images, weights_arg):
    # Numba's first compilation and its cache across processes: the same tiny transfer twice, each
    # in a fresh process, with an empty NUMBA_CACHE_DIR the first time -> markdown lines
    import subprocess
    import tempfile
    cmd = [sys.executable, "-m", "nst", "transfer", str(images / "tubingen.jpg"), str(images / "starry_night.jpg"),
           "-o", "", "--size", "64", "--scales", "1", "--iterations", "2", "--backend", "numba"]
    cmd += ["--weights", weights_arg] if weights_arg else []
    lines = ["| process | wall s | kernels compiled and saved | kernels loaded from the cache |",
             "| --- | --- | --- | --- |"]
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "NUMBA_CACHE_DIR": tmp, "NUMBA_DEBUG_CACHE": "1", "PYTHONPATH": str(ROOT)}
        for k in ("first (empty cache)", "second (fresh process)"):
            cmd[cmd.index("-o") + 1] = str(Path(tmp) / "out.png")
            t = time.perf_counter()
            out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
            text = out.stdout + out.stderr
            lines.append(f"| {k} | {time.perf_counter() - t:.1f} | {text.count('data saved to')} | "
                         f"{text.count('data loaded from')} |")
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", default=",".join(PAIRS),
                    help="names (comma-separated), or one NAME=CONTENT,STYLE,REFERENCE (';' separates several)")
    ap.add_argument("--settings", default="{}", help="JSON overriding DEFAULTS")
    ap.add_argument("--schedule", default="{}",
                    help='JSON overriding nst.run.schedule constants, e.g. {"FINEST_CAP": 40, "AUTO_TOL": 0}')
    ap.add_argument("--emphasis", default="{}", help="JSON overriding nst.objective.AUTO_EMPHASIS")
    ap.add_argument("--score-size", type=int, default=None,
                    help="score at this longest side (the reference resized to it; default: the reference's own)")
    ap.add_argument("--every", type=int, default=5, help="snapshot every N iterations of each scale")
    ap.add_argument("--weights", default=None)
    ap.add_argument("--write", action="store_true",
                    help="add this run at the top of bench/RESULTS.md's section (earlier runs and notes stay)")
    ap.add_argument("--figures", action="store_true", help="write docs/figures/time_to_picture_*.png")
    ap.add_argument("--out-dir", default=None, help="save each picture and its curve (JSON) here")
    ap.add_argument("--plot", nargs=2, metavar=("CURVE.json", "OUT.png"),
                    help="only redraw a saved curve (--out-dir's curve_NAME.json) as a PNG")
    ap.add_argument("--cache-check", action="store_true", help="only time Numba's first compilation and its cache")
    args = ap.parse_args()
    images = FOLDER
    if args.plot:
        curve = json.loads(Path(args.plot[0]).read_text())["curve"]
        plot_curve(curve, args.plot[1], f"{Path(args.plot[0]).stem[6:]}: each term, nst / reference (≤ 1: nst as good)")
        return
    if args.cache_check:
        print("\n".join(cache_check(images, args.weights)))
        return
    settings = json.loads(args.settings)
    import nst.objective
    import nst.run.schedule
    nst.objective.AUTO_EMPHASIS.update(json.loads(args.emphasis))
    for k, v in json.loads(args.schedule).items():
        assert hasattr(nst.run.schedule, k), k
        setattr(nst.run.schedule, k, v)
    from nst.weights import load
    weights = load(args.weights, lambda m: print(m, file=sys.stderr))
    specs = args.pairs.split(";") if ";" in args.pairs else [args.pairs] if "=" in args.pairs else args.pairs.split(",")
    body = []
    for spec in specs:
        text = pair_report(spec, images, settings, weights, args.every, args.figures, args.out_dir, args.score_size)
        print(text, flush=True)
        body.append(text)
    head = ["## Time to a picture (bench/bench_time_to_picture.py)", "",
            f"Machine: {machine()}. Date: {datetime.date.today()}. Command: "
            f"`python bench/bench_time_to_picture.py {' '.join(sys.argv[1:])}` (NST_IMAGES={images}).",
            f"Settings: DEFAULTS {json.dumps({k: getattr(DEFAULTS, k) for k in SHOWN})}"
            + (f", overridden by {json.dumps(settings)}" if settings else "")
            + (f", nst.schedule overridden by {args.schedule}" if args.schedule != "{}" else "")
            + (f", AUTO_EMPHASIS {args.emphasis}" if args.emphasis != "{}" else "") + ", backend numba.", ""]
    if args.write:
        write_section("\n".join(head + body), begin=BEGIN, end=END, keep_previous=True)


if __name__ == "__main__":
    main()
