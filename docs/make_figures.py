"""Draw the figures of docs/maths.md into docs/figures/ and write the numbers it quotes, with nst
itself and Pillow only. The one command (the run settings come from nst's DEFAULTS, never from here):

    python docs/make_figures.py [--images DIR] [--backend auto|numpy|numba|cupy]

feature_maps.png   a few channels of block1_conv1, block3_conv1, block5_conv1 of tubingen.jpg
gram_block2.png    Ĝ at block2_conv1 (128×128) of starry_night.jpg and shipwreck.jpg, one colour scale
loss_curves.png    α·J_c, β·J_s, γ·J_tv and J per iteration of the default run at FIGURE_SIZE px
result.jpg         that run's output beside its content and style
figures.json       the settings that run used (DEFAULTS with FIGURE_OVERRIDES; --iterations auto's
                   schedule, nst.run.schedule.auto_rule: its count depends on it), and the numbers of
                   docs/maths.md's generated tables (Gram energies, relative errors), with theirs
docs/maths.md      the tables between `<!-- make_figures NAME begin/end -->` markers, from figures.json

tests/test_docs.py fails when figures.json's settings or schedule differ from nst's (rerun this) or when a
table in maths.md differs from figures.json. Needs the real VGG19 weights (weights.load(None): the
cached file, fetched once) and the images, read from --images (default $NST_IMAGES, else
../shared/images beside the project). The images are read, never copied; tubingen.jpg is CC BY-SA
3.0 by Andreas Praefcke, so figures that show it say so.
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from nst.compare import score  # noqa: E402
from nst.io.image import load_image, resize, resize_longest  # noqa: E402
from nst.objective import Objective, preprocess  # noqa: E402
from nst.io.report import BG, FG, font, plot_losses, weighted_series  # noqa: E402
from nst.spec import CONV_NAMES  # noqa: E402
from nst.run.run import stylize  # noqa: E402
from nst.run.schedule import auto_rule  # noqa: E402
from nst.run.settings import DEFAULTS  # noqa: E402
from nst.vgg import forward  # noqa: E402
from shared_images import FOLDER, image  # noqa: E402

OUT = ROOT / "docs" / "figures"
MATHS = ROOT / "docs" / "maths.md"
RECORD = OUT / "figures.json"
# The figures' run is the default run but smaller, so that this script takes minutes: only these
# settings differ from DEFAULTS (the test allows no other), and maths.md's caption says so.
FIGURE_OVERRIDES = {"size": 256}
PAIRS = {"starry": ("starry_night.jpg", "jcjohnson_tubingen_starry.png"),
         "shipwreck": ("shipwreck.jpg", "jcjohnson_tubingen_shipwreck.png")}
CREDIT = "Tübingen photo: Andreas Praefcke, CC BY-SA 3.0"
# viridis at 9 stops, linearly interpolated: perceptually even, readable in grey
VIRIDIS = np.array([(68, 1, 84), (71, 44, 122), (59, 81, 139), (44, 113, 142), (33, 144, 141),
                    (39, 173, 129), (92, 200, 99), (170, 220, 50), (253, 231, 37)], np.float64)


def colormap(v):
    # v in [0, 1], any shape -> uint8 RGB (shape + 3)
    t = np.clip(v, 0, 1) * (len(VIRIDIS) - 1)
    i = np.minimum(t.astype(int), len(VIRIDIS) - 2)
    f = (t - i)[..., None]
    return (VIRIDIS[i] * (1 - f) + VIRIDIS[i + 1] * f).round().astype(np.uint8)


def to_pil(img):
    return Image.fromarray(np.clip(np.rint(img), 0, 255).astype(np.uint8), "RGB")


def activations(be, params, image, deepest):
    # H×W×3 RGB -> {layer: a^l C×h×w, host float32}
    acts = forward(be, params, preprocess(be.xp, be.to_device(image), np.float32), deepest)
    return {k: np.asarray(be.to_host(v)) for k, v in acts.items()}


def prepared(be, weights, deepest):
    names = CONV_NAMES[:CONV_NAMES.index(deepest) + 1]
    return {n: be.prepare_weights(*(be.to_device(np.asarray(a, np.float32)) for a in weights[n]))
            for n in names}


def feature_maps(be, weights, content, path, n_channels=6, tile=(128, 96)):
    # rows: the input, then each layer's n most active channels, each scaled to its own 0..max
    layers = ("block1_conv1", "block3_conv1", "block5_conv1")
    acts = activations(be, prepared(be, weights, layers[-1]), content, layers[-1])
    tw, th = tile
    pad, label_w, top = 6, 118, 26
    width = label_w + (n_channels + 1) * (tw + pad)
    height = top + len(layers) * (th + 18 + pad) + 22
    im = Image.new("RGB", (width, height), BG)
    d = ImageDraw.Draw(im)
    d.text((pad, 6), "a^l(x): the ReLU output of a layer, a few channels (the most active ones), "
           "each scaled 0..max", fill=FG, font=font(13))
    thumb = to_pil(content).resize(tile, Image.LANCZOS)
    for row, name in enumerate(layers):
        a = acts[name]
        y0 = top + row * (th + 18 + pad)
        d.text((pad, y0 + th // 2 - 16), name, fill=FG, font=font(14))
        d.text((pad, y0 + th // 2 + 2), f"{a.shape[0]}×{a.shape[1]}×{a.shape[2]}", fill=FG, font=font(12))
        im.paste(thumb, (label_w, y0))
        best = np.argsort(a.reshape(a.shape[0], -1).mean(axis=1))[::-1][:n_channels]
        for k, c in enumerate(best):
            m = a[c] / max(float(a[c].max()), 1e-12)
            tile_im = Image.fromarray(colormap(m)).resize(tile, Image.NEAREST)
            x0 = label_w + (k + 1) * (tw + pad)
            im.paste(tile_im, (x0, y0))
            d.text((x0, y0 + th + 2), f"channel {c}", fill=FG, font=font(11))
    d.text((pad, height - 18), CREDIT, fill=FG, font=font(11))
    im.save(path, optimize=True)


def gram_figure(be, weights, styles, path, layer="block2_conv1", size=256, cell=2):
    # Ĝ = F Fᵀ/(h·w) of each style at `layer`; one colour scale (sqrt, to 0..max of both) so the
    # two can be compared; channels ordered by the mean diagonal of the two Grams.
    params = prepared(be, weights, layer)
    grams, thumbs = [], []
    for name, img in styles:
        img = resize_longest(img, size)
        a = activations(be, params, img, layer)[layer]
        grams.append(np.asarray(be.to_host(be.gram(be.to_device(a)))))
        thumbs.append(to_pil(img))
    order = np.argsort(-(np.diag(grams[0]) + np.diag(grams[1])))
    vmax = max(float(g.max()) for g in grams)
    n = grams[0].shape[0]
    side, pad, top = n * cell, 16, 30
    th = max(t.height * (side * 3 // 4) // t.width for t in thumbs)
    im = Image.new("RGB", (pad + len(styles) * (side + pad) + 80, top + th + pad + side + 40), BG)
    d = ImageDraw.Draw(im)
    d.text((pad, 8), f"Ĝ at {layer} ({n}×{n}): Ĝ[k,k'] = mean over positions of a_k·a_k'",
           fill=FG, font=font(13))
    for k, ((name, _), g, t) in enumerate(zip(styles, grams, thumbs)):
        x0 = pad + k * (side + pad)
        tw = side * 3 // 4                                  # small thumbnails: photos make PNGs big
        im.paste(t.resize((tw, t.height * tw // t.width), Image.LANCZOS), (x0 + (side - tw) // 2, top))
        heat = colormap(np.sqrt(g[np.ix_(order, order)] / vmax))
        im.paste(Image.fromarray(heat).resize((side, side), Image.NEAREST), (x0, top + th + pad))
        d.text((x0, top + th + pad + side + 4), name, fill=FG, font=font(13))
    # colour bar: sqrt scale, 0..vmax
    bx, by = pad + len(styles) * (side + pad), top + th + pad
    bar = colormap(np.linspace(1, 0, side)[:, None].repeat(12, axis=1))
    im.paste(Image.fromarray(bar), (bx, by))
    d.text((bx + 15, by - 2), f"{vmax:.2g}", fill=FG, font=font(11))
    d.text((bx + 15, by + side // 4 - 6), f"{vmax * 0.5625:.2g}", fill=FG, font=font(11))
    d.text((bx + 15, by + side // 2 - 6), f"{vmax * 0.25:.2g}", fill=FG, font=font(11))
    d.text((bx + 15, by + side - 10), "0", fill=FG, font=font(11))
    d.text((pad, im.height - 18), "sqrt colour scale, shared; channels sorted by the two Grams' "
           "mean diagonal", fill=FG, font=font(11))
    im.save(path, optimize=True)


def jsonable(settings):
    # DEFAULTS -> what json.dumps then json.loads gives back (tuples become lists)
    return json.loads(json.dumps(settings))


def figure_settings(backend):
    # every run setting the figures use: DEFAULTS, FIGURE_OVERRIDES, and the backend (no maths)
    return {**DEFAULTS.as_dict(), **FIGURE_OVERRIDES, "backend": backend}


def default_run(content, style, settings):
    # -> (output image, [{term: value} per iteration]) of stylize with exactly these settings
    history = []

    def collect(it, x, terms):
        history.append(terms)

    out = stylize(content, style, progress=False, callback=collect, log=lambda msg: None, **settings)
    return out, history


def result_figure(content, style, out, path, caption):
    side = max(out.shape[:2])
    c, s = to_pil(resize_longest(content, side)), to_pil(resize_longest(style, side))
    pad, top = 8, 22
    im = Image.new("RGB", (c.width * 2 + s.width + 4 * pad, c.height + top + 22), BG)
    d = ImageDraw.Draw(im)
    for k, (t, name) in enumerate(((c, "content C"), (s, "style S"), (to_pil(out), caption))):
        x0 = pad + k * (c.width + pad)
        im.paste(t, (x0, top))
        d.text((x0, 4), name, fill=FG, font=font(12))
    d.text((pad, im.height - 17), CREDIT, fill=FG, font=font(11))
    im.save(path, quality=90, optimize=True)          # a photograph: JPEG keeps it small


def relative(scores, e_c, e_s):
    # {term: J} -> {term: J/E}: J_c/E_c and J_s^l/E_s^l
    return {"content": scores["content"] / e_c, **{n: scores[n] / e_s[n] for n in e_s}}


def relative_errors(vgg, backend, images, size):
    # maths.md "Default weights": per pair, E_s^l = ‖Ĝ^l(S)‖²/n_c² (S at `size`), and the relative
    # errors J_s^l/E_s^l and J_c/E_c of X = C (the photo; the default run starts from it recoloured)
    # and of jcjohnson's published picture (content at its size, as `nst compare` scores it)
    out = {}
    tubingen = load_image(image("tubingen.jpg", images))
    for pair, (style_name, ref_name) in PAIRS.items():
        style = resize_longest(load_image(image(style_name, images)), size)
        theirs = load_image(image(f"reference/{ref_name}", images))
        content = resize(tubingen, *theirs.shape[:2])
        obj = Objective(content, style, content_weight=1.0, style_weight=1.0, tv_weight=0.0,
                        weights=vgg, backend=backend, log=lambda m: None)
        e_c = sum(float((np.asarray(obj.be.to_host(t), np.float64) ** 2).sum()) for t in obj.content_targets.values())
        e_s = {n: float((np.asarray(obj.be.to_host(g), np.float64) ** 2).sum()) / g.shape[0] ** 2
               for n, g in obj.style_targets.items()}
        start, = score([content], content, style, style_side=size, weights=vgg, backend=backend)
        jcj, = score([theirs], content, style, style_side=size, weights=vgg, backend=backend)
        out[pair] = {"E_c": e_c, "E_s": e_s, "start": relative(start, e_c, e_s),
                     "jcjohnson": relative(jcj, e_c, e_s)}
    return out


def g3(v):
    return f"{v:.2g}" if abs(v) < 1e3 else f"{v:.1e}".replace("e+0", "e").replace("e+", "e")


def tables(numbers):
    # figures.json's numbers -> {marker name: Markdown table} (maths.md holds exactly these)
    pairs = numbers["relative_errors"]
    size = numbers["settings"]["numbers_size"]
    layers = list(next(iter(pairs.values()))["E_s"])
    title = {"starry": "*The Starry Night*", "shipwreck": "*The Shipwreck*"}
    head = lambda first: [f"| {first} | " + " | ".join(layers) + " |", "| --- |" + " --- |" * len(layers)]  # noqa: E731
    energy = head(f"style ({size} px)") + [
        f"| {title[p]} | " + " | ".join(g3(v["E_s"][n]) for n in layers) + " |" for p, v in pairs.items()]
    rel = ["| picture, pair | content | " + " | ".join(layers) + " |", "| --- | --- |" + " --- |" * len(layers)]
    for who, name in (("start", "X = C (the photo)"), ("jcjohnson", "jcjohnson's picture")):
        rel += [f"| {name}, {title[p]} | {g3(v[who]['content'])} | " + " | ".join(g3(v[who][n]) for n in layers)
                + " |" for p, v in pairs.items()]
    return {"gram-energy": "\n".join(energy), "relative-errors": "\n".join(rel)}


def write_tables(text, blocks):
    # replace each <!-- make_figures NAME begin --> … <!-- make_figures NAME end --> block's body
    for name, body in blocks.items():
        begin, end = f"<!-- make_figures {name} begin -->", f"<!-- make_figures {name} end -->"
        if begin not in text or end not in text:
            raise SystemExit(f"docs/maths.md has no {begin} … {end} block")
        text = text[:text.index(begin) + len(begin)] + "\n" + body + "\n" + text[text.index(end):]
    return text


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--images", default=str(FOLDER),
                   help="folder with tubingen.jpg, starry_night.jpg, shipwreck.jpg, reference/")
    p.add_argument("--backend", default="auto", choices=["auto", "numpy", "numba", "cupy"])
    args = p.parse_args(argv)
    from nst import weights
    from nst.run.selfcheck import choose_backend
    images = Path(args.images)
    load = lambda name: load_image(image(name, images))  # noqa: E731
    OUT.mkdir(parents=True, exist_ok=True)
    be = choose_backend(args.backend)
    vgg = weights.load(None)
    tubingen, starry, shipwreck = load("tubingen.jpg"), load("starry_night.jpg"), load("shipwreck.jpg")
    t0 = time.perf_counter()
    feature_maps(be, vgg, resize_longest(tubingen, 256), OUT / "feature_maps.png")
    gram_figure(be, vgg, [("The Starry Night (van Gogh)", starry), ("The Shipwreck (Turner)", shipwreck)],
                OUT / "gram_block2.png")
    s = figure_settings(be.name)
    out, history = default_run(tubingen, starry, {**s, "weights": None})
    plot_losses(weighted_series(history, s), OUT / "loss_curves.png",
                f"loss terms per iteration (log scale); α={s['content_weight']:g}, β={s['style_weight']:g}, "
                f"γ={s['tv_weight']:g}, λ {s['style_layer_weights']}, {s['size']} px",
                xlabel=f"{s['optimizer']} iteration")
    result_figure(tubingen, starry, out, OUT / "result.jpg", f"X after {len(history)} {s['optimizer']} iterations")
    numbers = {"settings": {"run": jsonable(s), "overrides": jsonable(FIGURE_OVERRIDES),
                            "schedule": jsonable(auto_rule()), "numbers_size": DEFAULTS.size},
               "run": {"iterations": len(history), "first": history[0], "last": history[-1]},
               "relative_errors": relative_errors(vgg, be, images, DEFAULTS.size)}
    RECORD.write_text(json.dumps(numbers, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    MATHS.write_text(write_tables(MATHS.read_text(encoding="utf-8"), tables(numbers)), encoding="utf-8")
    for f in [OUT / n for n in ("feature_maps.png", "gram_block2.png", "loss_curves.png", "result.jpg")] + [RECORD]:
        print(f"{f.relative_to(ROOT)}  {f.stat().st_size / 1024:.0f} KB")
    print(f"backend {be.name}: {time.perf_counter() - t0:.1f} s; docs/maths.md tables rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
