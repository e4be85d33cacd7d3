"""Pictures against jcjohnson/neural-style: nst's default run scored with SPEC's terms.

For each pair (tubingen + starry_night, tubingen + shipwreck) it runs the default
`nst transfer C S -o out.png` (DEFAULTS: 512 px, coarse to fine) and scores the result and
jcjohnson's published picture for the same inputs with `nst compare`'s terms (content at the
picture's size, style resized so its longest side is 512). Lower is better on every term; the
ratio row is nst / jcjohnson (≤ 1: nst at least as good). It also counts the evaluations of J
per scale, the cost that does not depend on how busy the machine is.

    NST_IMAGES=/work/shared/images python bench/bench_pictures.py                  # print the tables
    python bench/bench_pictures.py --write --figures     # + bench/RESULTS.md section, docs/figures/*.jpg
    python bench/bench_pictures.py --settings '{"style_layer_weights": null, "style_weight": 1e3}'
"""
import argparse
import datetime
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from nst.compare import format_table, score  # noqa: E402
from nst.io.image import load_image, resize, save_image  # noqa: E402
from nst.run.run import Run  # noqa: E402
from nst.run.settings import DEFAULTS, Settings  # noqa: E402
from shared_images import FOLDER, image  # noqa: E402

PAIRS = {  # name: (content, style, jcjohnson's picture under reference/)
    "starry": ("tubingen.jpg", "starry_night.jpg", "jcjohnson_tubingen_starry.png"),
    "shipwreck": ("tubingen.jpg", "shipwreck.jpg", "jcjohnson_tubingen_shipwreck.png"),
}
BEGIN, END = "<!-- bench_pictures begin -->", "<!-- bench_pictures end -->"


def run_default(content, style, settings, backend):
    # -> (picture H×W×3 0..255, {scale side: evaluations}, iterations, seconds)
    run = Run(content, style, Settings.from_dict({"backend": backend, **settings}),
              log=lambda m: print("  " + m, file=sys.stderr))
    per_scale, seen = {}, [0]

    def on_iteration(r, it, terms):
        side = r.sizes[r.scale]
        per_scale[side] = r.evaluations - seen[0] + per_scale.get(side, 0)
        seen[0] = r.evaluations
    t = time.perf_counter()
    out = run.run(on_iteration)
    return out, per_scale, len(run.history), time.perf_counter() - t


def pair_section(name, images, settings, backend, weights, figures, picture=None, out_dir=None):
    # picture: a saved default run's output to score instead of running (its counts then unknown)
    c, s, ref = PAIRS[name]
    content, style = load_image(image(c, images)), load_image(image(s, images))
    theirs = load_image(image(f"reference/{ref}", images))
    if picture:
        ours, per_scale, iterations, seconds = load_image(picture), {}, "?", float("nan")
    else:
        ours, per_scale, iterations, seconds = run_default(content, style, {**settings, "weights": weights}, backend)
    ours = resize(ours, *theirs.shape[:2]) if ours.shape != theirs.shape else ours
    ours8 = load_image_roundtrip(ours)
    scores = score([ours8, theirs], content, style, weights=weights, backend=backend)
    ratios = {t: scores[0][t] / scores[1][t] for t in scores[0]}
    big = max(per_scale, default=1)
    equiv = sum(n * (side / big) ** 2 for side, n in per_scale.items())
    cost = (f"nst: {iterations} iterations, evaluations per scale "
            + ", ".join(f"{side} px: {n}" for side, n in per_scale.items())
            + f" ({equiv:.0f} {big}-px-equivalent evaluations), {seconds:.0f} s wall") if per_scale else \
        f"nst: the saved picture {picture} (made by the default run; not timed here)"
    lines = [f"### {c} + {s}", "",
             format_table(["nst (default)", "jcjohnson"], scores, ratio_to=1), "",
             cost + f"; worst ratio {max(ratios.values()):.3g}", ""]
    if out_dir:
        save_image(ours8, Path(out_dir) / f"nst_{name}.png")
    if figures:
        save_image(ours8, ROOT / "docs" / "figures" / f"pictures_{name}_nst.jpg")
        save_image(theirs, ROOT / "docs" / "figures" / f"pictures_{name}_jcjohnson.jpg")
    return "\n".join(lines), max(ratios.values())


def load_image_roundtrip(img):
    # what a saved 8-bit picture holds: rounded to integers in 0..255
    import numpy as np
    return np.clip(np.rint(img), 0, 255).astype(np.float32)


def machine():
    sys.path.insert(0, str(ROOT / "bench"))
    from make_results import cpu_model
    return f"{cpu_model()}, {os.cpu_count()} cores, load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}"


def write_section(text, path=ROOT / "bench" / "RESULTS.md", begin=BEGIN, end=END, keep_previous=False):
    # replace (or append) a script's own section of RESULTS.md, between its markers. text starts
    # with the section's heading; keep_previous: what the section held stays below the new text
    # (its heading dropped), for sections that also keep earlier runs and notes written by hand
    old = path.read_text() if path.exists() else ""
    if begin in old and end in old:
        inner = old[old.index(begin) + len(begin):old.index(end)].strip("\n")
        kept = inner.split("\n", 1)[1].strip("\n") if keep_previous and "\n" in inner else ""
        block = f"{begin}\n{text.rstrip()}\n" + (f"\n{kept}\n" if kept else "") + end
        new = old[:old.index(begin)] + block + old[old.index(end) + len(end):]
    else:
        new = old.rstrip("\n") + "\n\n" + f"{begin}\n{text}\n{end}" + "\n"
    path.write_text(new)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", default=",".join(PAIRS))
    ap.add_argument("--backend", default="numba")
    ap.add_argument("--settings", default="{}", help="JSON overriding DEFAULTS (e.g. the old defaults)")
    ap.add_argument("--weights", default=None)
    ap.add_argument("--write", action="store_true", help="update bench/RESULTS.md's section")
    ap.add_argument("--figures", action="store_true", help="write docs/figures/pictures_*.jpg")
    ap.add_argument("--out-dir", default=None, help="also save each nst picture here as nst_PAIR.png")
    ap.add_argument("--picture", action="append", default=[], metavar="PAIR=FILE",
                    help="score this saved default-run output for PAIR instead of running it")
    args = ap.parse_args()
    images = FOLDER
    settings = json.loads(args.settings)
    from nst.weights import load
    weights = load(args.weights, lambda m: print(m, file=sys.stderr))
    shown = {k: getattr(DEFAULTS, k) for k in ("size", "iterations", "content_weight", "style_weight", "tv_weight",
                                      "style_layer_weights", "init")}
    head = ["## Pictures: nst's default run vs jcjohnson/neural-style (bench/bench_pictures.py)", "",
            f"Machine: {machine()}. Date: {datetime.date.today()}. Command: "
            f"`python bench/bench_pictures.py {' '.join(sys.argv[1:])}` (NST_IMAGES={images}).",
            f"Settings: DEFAULTS {json.dumps(shown)}" + (f", overridden by {json.dumps(settings)}" if settings else "")
            + f", backend {args.backend}. SPEC terms, unweighted; lower is better; bold: the best.", ""]
    body, worst = [], 0.0
    given = dict(p.split("=", 1) for p in args.picture)
    for name in args.pairs.split(","):
        text, w = pair_section(name, images, settings, args.backend, weights, args.figures, given.get(name),
                               args.out_dir)
        print(text, flush=True)
        body.append(text)
        worst = max(worst, w)
    verdict = (f"Worst nst / jcjohnson ratio over every term of every pair: {worst:.3g} "
               f"({'nst at least as good everywhere' if worst <= 1 else 'nst worse somewhere'}).")
    print(verdict)
    if args.write:
        write_section("\n".join(head + body + [verdict]))


if __name__ == "__main__":
    main()
