"""`--report DIR`: the loss curves as a plot, a strip of intermediate images, the exact settings."""
import functools
import json
import subprocess

import numpy as np
from PIL import Image, ImageDraw, ImageFont, PngImagePlugin

from nst.io.assets import atomic_path
from nst.io.image import MARK, save_image, to_uint8

PALETTE = [(20, 20, 20), (200, 60, 40), (40, 100, 200), (60, 160, 60), (150, 90, 190)]
BG, FG, GRID = (255, 255, 255), (30, 30, 30), (225, 225, 225)
DEJAVU_SANS = ("DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")     # by name, then Debian's


def font(size, text=""):
    # a font at `size` px for `text`: the installed one fontconfig finds with the most of its
    # characters (東京: a CJK font), DejaVu Sans among equals or without fontconfig (it has ×, Ĝ, α,
    # β, γ, ü, Greek, Cyrillic); Pillow's own (Latin only) where none loads at that size
    for name in (*font_files(text), *DEJAVU_SANS):
        try:
            return ImageFont.truetype(name, size)
        except OSError:              # not found, or a bitmap font (colour emoji) without this size
            continue
    return ImageFont.load_default(size=size)


@functools.lru_cache(maxsize=256)
def font_files(text):
    # -> (file,): the font `fc-match` finds for text's characters, () for no text or no fontconfig
    chars = " ".join(f"{c:x}" for c in sorted({ord(c) for c in text if not c.isspace()}))
    if not chars:
        return ()
    try:
        found = subprocess.run(["fc-match", "-f", "%{file}", f"DejaVu Sans:charset={chars}"],
                               capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return ()
    return (found.stdout,) if found.returncode == 0 and found.stdout else ()


def fitted(text, font, width):
    # the longest start of text at most `width` px wide in `font`
    while text and font.getlength(text) > width:
        text = text[:-1]
    return text


def weighted_series(history, settings):
    # [{total, content, style, tv}] -> {"total J": [...], "β·J_s (style)": [...], ...}: the
    # weighted terms, which add up to the total
    keys = [("total J", "total", 1.0), ("β·J_s (style)", "style", settings["style_weight"]),
            ("α·J_c (content)", "content", settings["content_weight"]), ("γ·J_tv (tv)", "tv", settings["tv_weight"])]
    return {name: [w * row[k] for row in history] for name, k, w in keys}


def plot_losses(series, path, title, xlabel="iteration", size=(640, 400)):
    # {name: [value per iteration]} -> a log-y line plot with axes and a legend (the first series
    # is drawn last, thin, on top: the total)
    w, h = size
    left, right, top, bottom = 70, 20, 34, 48
    im = Image.new("RGB", size, BG)
    d = ImageDraw.Draw(im)
    vals = np.concatenate([np.asarray(v, np.float64) for v in series.values()] + [np.ones(0)])
    vals = vals[np.isfinite(vals) & (vals > 0)]
    if vals.size == 0:
        d.text((left, h // 2), "no positive loss values to plot", fill=FG, font=font(13))
        return _save_png(im, path)
    lo, hi = np.floor(np.log10(vals.min())), np.ceil(np.log10(vals.max()))
    hi = max(hi, lo + 1)
    n = max(len(v) for v in series.values())
    px = lambda i: left + (w - left - right) * (i - 1) / max(n - 1, 1)
    py = lambda v: top + (h - top - bottom) * (hi - np.log10(v)) / (hi - lo)
    for e in range(int(lo), int(hi) + 1):                 # decades: grid line and label
        d.line([(left, py(10.0 ** e)), (w - right, py(10.0 ** e))], fill=GRID)
        d.text((left - 8, py(10.0 ** e)), f"1e{e}", fill=FG, font=font(12), anchor="rm")
    step = max(1, 10 ** int(np.log10(max(n, 1))) // 2) if n > 20 else 5
    for i in range(0, n + 1, step):                        # x ticks
        x = px(max(i, 1))
        d.line([(x, h - bottom), (x, h - bottom + 4)], fill=FG)
        d.text((x, h - bottom + 6), str(max(i, 1)), fill=FG, font=font(12), anchor="mt")
    d.line([(left, top), (left, h - bottom), (w - right, h - bottom)], fill=FG, width=1)
    d.text((left + (w - left - right) / 2, h - 16), xlabel, fill=FG, font=font(13), anchor="mm")
    d.text((left, 10), title, fill=FG, font=font(13))
    names = list(series)
    colours = dict(zip(names, PALETTE * 2))
    for name in names[1:] + names[:1]:
        pts = [(px(i + 1), py(v)) for i, v in enumerate(series[name]) if np.isfinite(v) and v > 0]
        if len(pts) > 1:
            d.line(pts, fill=colours[name], width=1 if name == names[0] else 3)
    lx, ly = w - right - 150, top + 10                     # legend, top right
    d.rectangle([lx - 8, ly - 6, w - right - 4, ly + 18 * len(names)], fill=BG, outline=GRID)
    for k, name in enumerate(names):
        d.line([(lx, ly + 7 + 18 * k), (lx + 22, ly + 7 + 18 * k)], fill=colours[name], width=3)
        d.text((lx + 28, ly + 18 * k), name, fill=FG, font=font(12))
    return _save_png(im, path)


STRIP_HEIGHT = 160       # px: the strip's height, and the snapshots' a run keeps (and checkpoints)


def thumbnail(img, height=STRIP_HEIGHT):
    # H×W×3 (0..255) -> h×w×3 uint8 of height `height`, as the strip shows it (a thumbnail passes unchanged)
    tile = Image.fromarray(to_uint8(img))
    return np.asarray(tile.resize((max(1, round(tile.width * height / tile.height)), height)))


def strip(images, path, height=STRIP_HEIGHT):
    # [(iteration, H×W×3)] -> one PNG with the images side by side, labelled by iteration
    tiles = []
    for it, img in images:
        tile = Image.fromarray(thumbnail(img, height))
        ImageDraw.Draw(tile).text((4, 4), str(it), fill="white", stroke_width=2, stroke_fill="black")
        tiles.append(tile)
    out = Image.new("RGB", (sum(t.width for t in tiles) or 1, height), "white")
    x = 0
    for t in tiles:
        out.paste(t, (x, 0))
        x += t.width
    save_image(np.asarray(out, np.float32), path, warn_scale=False)


def write_settings(settings, path):
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(settings, indent=2, sort_keys=True) + "\n")


def write_report(folder, settings, history, snapshots):
    # folder/{losses.png, strip.png, settings.json, losses.json}
    folder.mkdir(parents=True, exist_ok=True)
    s = settings
    plot_losses(weighted_series(history, s), folder / "losses.png",
                f"loss terms per iteration (log scale); α={s['content_weight']:g}, "
                f"β={s['style_weight']:g}, γ={s['tv_weight']:g}")
    strip(snapshots, folder / "strip.png")
    write_settings(settings, folder / "settings.json")
    with atomic_path(folder / "losses.json") as tmp:
        tmp.write_text(json.dumps(history) + "\n")


def _save_png(im, path):
    # a report picture, with nst's mark (so that a rerun may replace it and nothing else)
    info = PngImagePlugin.PngInfo()
    info.add_text("Software", MARK)
    with atomic_path(path) as tmp:
        im.save(tmp, format="PNG", pnginfo=info)
    return path
