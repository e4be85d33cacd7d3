"""`--report DIR`: the loss curves as a plot, a strip of intermediate images, the exact settings."""
import json
import math

import numpy as np
from PIL import Image, ImageDraw

from .assets import atomic_path
from .image import save_image, to_uint8

COLORS = {"total": (0, 0, 0), "content": (31, 119, 180), "style": (214, 39, 40), "tv": (44, 160, 44)}


def plot_losses(history, path, size=(640, 400), margin=56):
    # history: [{term: value}] per iteration -> PNG of each term against the iteration, log y
    w, h = size
    im = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(im)
    terms = [k for k in COLORS if history and k in history[0]]
    values = [v for row in history for k, v in row.items() if k in terms and v > 0]
    if not values:
        d.text((margin, h // 2), "no loss values yet", fill="black")
        return _save_png(im, path)
    lo, hi = math.floor(math.log10(min(values))), math.ceil(math.log10(max(values)))
    hi = max(hi, lo + 1)
    x0, y0, x1, y1 = margin, 12, w - 12, h - margin // 2 - 12
    px = lambda i: x0 + (x1 - x0) * i / max(len(history) - 1, 1)
    py = lambda v: y1 - (y1 - y0) * (math.log10(v) - lo) / (hi - lo)
    d.rectangle((x0, y0, x1, y1), outline="black")
    for e in range(lo, hi + 1):                                   # decades on the y axis
        d.line((x0 - 4, py(10.0 ** e), x0, py(10.0 ** e)), fill="black")
        d.text((4, py(10.0 ** e) - 6), f"1e{e}", fill="black")
    d.text((x1 - 120, y1 + 6), f"iteration (0..{len(history)})", fill="black")
    for n, k in enumerate(terms):
        pts = [(px(i), py(row[k])) for i, row in enumerate(history) if row.get(k, 0) > 0]
        if len(pts) > 1:
            d.line(pts, fill=COLORS[k], width=2)
        d.text((x0 + 10 + 80 * n, y0 + 6), k, fill=COLORS[k])
    return _save_png(im, path)


def strip(images, path, height=160):
    # [(iteration, H×W×3)] -> one PNG with the images side by side, labelled by iteration
    tiles = []
    for it, img in images:
        tile = Image.fromarray(to_uint8(img))
        tile = tile.resize((max(1, round(tile.width * height / tile.height)), height))
        ImageDraw.Draw(tile).text((4, 4), str(it), fill="white", stroke_width=2, stroke_fill="black")
        tiles.append(tile)
    out = Image.new("RGB", (sum(t.width for t in tiles) or 1, height), "white")
    x = 0
    for t in tiles:
        out.paste(t, (x, 0))
        x += t.width
    save_image(np.asarray(out, np.float32), path)


def write_settings(settings, path):
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(settings, indent=2, sort_keys=True) + "\n")


def write_report(folder, settings, history, snapshots):
    # folder/{losses.png, strip.png, settings.json, losses.json}
    folder.mkdir(parents=True, exist_ok=True)
    plot_losses(history, folder / "losses.png")
    strip(snapshots, folder / "strip.png")
    write_settings(settings, folder / "settings.json")
    with atomic_path(folder / "losses.json") as tmp:
        tmp.write_text(json.dumps(history) + "\n")


def _save_png(im, path):
    with atomic_path(path) as tmp:
        im.save(tmp, format="PNG")
    return path
