"""The study panels of the live page, computed on the run's thread only while a page shows them.

Legend: X the current image H×W×3; a^l(X) the ReLU output of layer l, C×h×w; Ĝ^l the Gram
matrix C×C (SPEC.md "Losses"). Panels, each drawn as a heat map:
    gram      Ĝ^l(X) beside Ĝ^l(S) for one style layer, the LEADING channels with the largest
              Ĝ^l(S)_cc (the style's strongest), both on one colour scale
    grad      |∂J/∂X| summed over the colour channels, from the run's latest evaluation
    features  a^l(X) of the first content layer: the MAPS channels with the most energy inside the
              picture (not on a tiled run: its whole picture's a^l(X) would break the run's memory
              bound). "Inside": without the 1-px ring along the edges, where the convolutions' zero
              padding makes edge responses; a channel that answers only there would be ranked first
              and drawn black but for one bright line.
"""
import base64
import io

import numpy as np

from nst.objective import preprocess
from nst.tiled import TiledObjective
from nst.vgg import deepest_layer, forward

LEADING = 32
MAPS = 16
TILED = "feature maps: not shown on a tiled run: it would need the whole picture in memory"
# a dark-to-bright colour map (black, purple, orange, pale yellow): value 0..1 -> RGB
ANCHORS = np.array([[0, 0, 4], [81, 18, 124], [183, 55, 121], [252, 137, 97], [252, 253, 191]], np.float32)


def compute(run, wanted):
    # -> {"gram": {"layer", "x": k×k, "s": k×k}, "grad": H×W, "features": {"layer", "maps": n×h×w}}
    # (host arrays) for the panels `wanted` asks ({"gram": layer|None, "grad": bool, "features": bool}).
    # A tiled run keeps its memory bound: Ĝ^l(X) tile by tile, no feature maps (TILED says why)
    obj, out = run.current_objective, {}
    be = obj.be
    host = lambda a: np.asarray(be.to_host(a), np.float32)        # noqa: E731
    tiled = isinstance(obj, TiledObjective)
    content = obj.content_layers[0] if wanted["features"] and obj.content_layers else None
    layers = [n for n in (wanted["gram"], content) if n]
    x = run.opt.x.reshape(run.shape)
    acts = forward(be, obj.params, preprocess(be.xp, x, obj.dtype), deepest_layer(layers), obj.pooling) \
        if layers and not tiled else None
    if wanted["gram"]:
        layer = wanted["gram"]
        gx = be.gram(acts[layer]) if acts is not None else obj.grams_of(x, [layer])[layer]
        gx, gs = host(gx), host(obj.style_targets[layer])
        lead = np.argsort(-np.diag(gs))[:LEADING]
        out["gram"] = {"layer": layer, "x": gx[np.ix_(lead, lead)], "s": gs[np.ix_(lead, lead)]}
    if content:
        out["features"] = {"layer": content, "note": TILED} if tiled else strongest_maps(host(acts[content]), content)
    grad = run.last_evaluation.get("grad")
    if wanted["grad"] and grad is not None:
        out["grad"] = np.abs(host(grad).reshape(run.shape)).sum(axis=2)
    return out


def inside(a):
    # (…×)h×w -> the same without its 1-px edge ring (zero padding's edge responses), if it has an inside
    return a[..., 1:-1, 1:-1] if min(a.shape[-2:]) > 2 else a


def strongest_maps(a, layer):
    # a^l(X) C×h×w -> {"layer", "maps": the MAPS channels with the most energy Σ a² inside, MAPS×h×w}
    strongest = np.argsort(-(inside(a) ** 2).sum((1, 2)))[:MAPS]
    return {"layer": layer, "maps": a[strongest]}


def colour(v):
    # h×w in 0..1 -> h×w×3 uint8 through ANCHORS
    t = np.clip(v, 0, 1) * (len(ANCHORS) - 1)
    i = np.minimum(t.astype(int), len(ANCHORS) - 2)
    f = (t - i)[..., None]
    return np.rint(ANCHORS[i] * (1 - f) + ANCHORS[i + 1] * f).astype(np.uint8)


def png_base64(rgb, scale=1):
    from PIL import Image
    im = Image.fromarray(rgb, "RGB")
    if scale > 1:
        im = im.resize((im.width * scale, im.height * scale), Image.NEAREST)
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def normalised(a, top):
    return a / top if top > 0 else np.zeros_like(a)


def tile_scale(m):
    # an h×w map -> the value its tile draws brightest: the 99.5th percentile of its inside (a lone
    # bright pixel, or the edge ring's responses, would make the rest black); a sparse map, under
    # 0.5 % of it non-zero, has 0 there (it was drawn all black, as a silent one): the 99.5th
    # percentile of its non-zero values; all zero: 0
    m = inside(m)
    top = float(np.percentile(m, 99.5))
    if top > 0:
        return top
    active = m[m > 0]
    return float(np.percentile(active, 99.5)) if active.size else top


def tiles(maps):
    # n×h×w -> one grid image, each map on its own scale (tile_scale), a 1 px gap
    n, h, w = maps.shape
    cols = int(np.ceil(np.sqrt(n)))
    rows = -(-n // cols)
    grid = np.zeros((rows * (h + 1) - 1, cols * (w + 1) - 1), np.float32)
    for k, m in enumerate(maps):
        r, c = divmod(k, cols)
        grid[r * (h + 1): r * (h + 1) + h, c * (w + 1): c * (w + 1) + w] = normalised(m, tile_scale(m))
    return grid


def render(panels):
    # compute()'s arrays -> {"gram": {"layer", "x", "s"}, "grad", "features": {"layer", "image"}},
    # images as base64 PNG
    out = {}
    if "gram" in panels:
        g = panels["gram"]
        top = max(float(np.abs(g["s"]).max()), float(np.abs(g["x"]).max()))
        scale = max(1, 256 // max(g["s"].shape[0], 1))
        out["gram"] = {"layer": g["layer"], "x": png_base64(colour(normalised(np.abs(g["x"]), top)), scale),
                       "s": png_base64(colour(normalised(np.abs(g["s"]), top)), scale)}
    if "grad" in panels:
        g = panels["grad"]
        out["grad"] = png_base64(colour(normalised(g, float(np.percentile(g, 99.5)))), max(1, 256 // max(g.shape)))
    if "features" in panels and "note" in panels["features"]:
        out["features"] = panels["features"]
    elif "features" in panels:
        f = panels["features"]
        grid = tiles(f["maps"])
        out["features"] = {"layer": f["layer"], "image": png_base64(colour(grid), max(1, 256 // max(grid.shape)))}
    return out
