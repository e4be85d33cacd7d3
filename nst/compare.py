"""`nst compare PICTURE... --content C --style S`: score pictures with SPEC's terms, side by side.

Every picture is scored at one size: pictures of different sizes are each resized to the smallest
(fewest pixels; J_c sums over the pixels and each layer sees the strokes at another scale, so scores
at different sizes are not like for like), and a line says so, naming any picture (or the content)
that this stretches to another aspect ratio (more than a pixel's rounding, as another tool's resize
makes it). Stretched, they are still scored, not refused: the line says the scores change, and the
style terms (Gram matrices, sums over positions) of a crop or a reframing stay worth comparing. The
content and style are the same for every picture: C resized to that size, S resized so its longest
side is --style-size (default 512). The table holds J_c (block4_conv2) and each default style
layer's J_s^l, unweighted (α = β = λ_l = 1), for each picture, and which is best (lowest) on each
term: every picture whose value, as the table shows it (4 significant digits), equals the lowest's
ties for best, and a tie is a win for each. This is how nst's pictures are measured against other
tools' (README "Pictures").
"""
import sys

import numpy as np

from nst.io.image import ImageError, as_image, check_size, resize, resize_longest
from .objective import Objective
from .spec import DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS
from .vgg import check_fits, deepest_layer

STYLE_SIDE = 512


def scored_shape(shapes):
    # (h, w) per picture -> the one (h, w) they are all scored at: the smallest (fewest pixels, the
    # first of those), as downsizing adds no detail that was not drawn
    return min(shapes, key=lambda hw: hw[0] * hw[1])


def stretches(hw, shape):
    # does resizing an (h, w) image to `shape` change its aspect ratio by more than a pixel's rounding?
    (h, w), (sh, sw) = hw, shape
    return abs(w * sh / h - sw) > 1 or abs(h * sw / w - sh) > 1


def size_note(names, shapes, content=None):
    # one line saying what scoring resizes: pictures of different sizes (to the smallest), and a picture
    # or the content (content: (name, (h, w))) stretched to another aspect ratio; "" if neither
    shapes = [tuple(hw) for hw in shapes]
    h, w = scored_shape(shapes)
    said = []
    if len(set(shapes)) > 1:
        sizes = ", ".join(f"{name} {b}×{a}" for name, (a, b) in zip(names, shapes))
        said.append(f"the pictures differ in size ({sizes}): each is scored resized to {w}×{h}, the smallest, "
                    "as scores at different sizes are not like for like")
    resized = [*zip(names, shapes), *([content] if content else [])]
    stretched = [f"{name} (aspect ratio {b / a:.2f})" for name, (a, b) in resized if stretches((a, b), (h, w))]
    if stretched:
        said.append(f"{', '.join(stretched)} {'is' if len(stretched) == 1 else 'are'} stretched to {w}×{h}'s, "
                    f"{w / h:.2f}, which changes the scores")
    return "; ".join(said)


def score(pictures, content, style, *, style_side=STYLE_SIDE, weights=None, backend="numpy", log=None):
    # pictures: list of H×W×3 (any sizes, each resized to scored_shape); content, style H×W×3 ->
    # [{term: value}] per picture with terms "content" (J_c) and each style layer (J_s^l),
    # unweighted; ValueError naming a picture too small to reach block5_conv1 before anything is resized
    if isinstance(pictures, np.ndarray) or not isinstance(pictures, (list, tuple)):
        raise TypeError("pictures is a list of H×W×3 images: put one picture in a list, [picture]")
    if not pictures:
        raise ValueError("pictures is empty: give at least one picture to score")
    try:
        check_size(style_side)
    except ImageError as e:
        raise ValueError(f"style_side: {e}") from None
    pictures = [as_image(pic, f"picture {i}") for i, pic in enumerate(pictures, 1)]
    for i, pic in enumerate(pictures, 1):
        check_fits(*pic.shape[:2], deepest_layer([*DEFAULT_CONTENT_LAYERS, *DEFAULT_STYLE_LAYERS]), f"picture {i}")
    content, style = as_image(content, "content"), as_image(style, "style")
    style = resize_longest(style, style_side)
    if not isinstance(weights, dict):                  # read once for every picture shape
        from nst.weights import load
        weights = load(weights, log or (lambda m: None))
    shape = scored_shape([pic.shape[:2] for pic in pictures])
    objective = Objective(resize(content, *shape), style, content_weight=1.0, style_weight=1.0, tv_weight=0.0,
                          style_layer_weights=[1.0] * len(DEFAULT_STYLE_LAYERS), weights=weights,
                          backend=backend, log=log or (lambda m: None), warn_scale=False)
    out = []
    for pic in pictures:
        r = objective(pic if pic.shape[:2] == shape else resize(pic, *shape))
        out.append({"content": r.terms["content"], **r.style_layers})
    return out


def terms_of(scores):
    return list(scores[0]) if scores else ["content", *DEFAULT_STYLE_LAYERS]


def shown(value):
    # a score as the table shows it: 4 significant digits (ties are judged on this)
    return f"{value:.4g}"


def best_of(scores):
    # -> {term: [indices of the pictures whose shown value equals the lowest's]} (a tie: several)
    best = {}
    for t in terms_of(scores):
        lowest = shown(min(s[t] for s in scores))
        best[t] = [i for i, s in enumerate(scores) if shown(s[t]) == lowest]
    return best


def format_table(names, scores, ratio_to=None):
    # a Markdown table: one row per term, one column per picture, the best (lowest, ties all) in
    # bold, a column naming them; ratio_to=i adds a column "first / names[i]" (≤ 1: the first is as good)
    best = best_of(scores)
    ratio = [] if ratio_to is None else [f"{names[0]} / {names[ratio_to]}"]
    rows = ["| term | " + " | ".join(names + ratio) + " | best |", "|" + " --- |" * (len(names) + len(ratio) + 2)]
    for t in terms_of(scores):
        cells = [(f"**{shown(s[t])}**" if i in best[t] else shown(s[t])) for i, s in enumerate(scores)]
        cells += [f"{scores[0][t] / scores[ratio_to][t]:.3g}"] if ratio else []
        rows.append(f"| {t} | " + " | ".join(cells) + f" | {', '.join(names[i] for i in best[t])} |")
    wins = [sum(i in best[t] for t in best) for i in range(len(names))]
    rows.append("| terms won | " + " | ".join([f"{w}/{len(best)}" for w in wins] + [""] * len(ratio)) + " | |")
    return "\n".join(rows)


def check_scorable(pictures, style, style_side, backend):
    # pictures: {path: H×W×3}, style: (path, H×W×3), both read once (main). Every picture, and the
    # style at --style-size, reach block5_conv1 (the deepest term scored), and scoring's peak (the
    # inputs; the net over the larger of the style and the pictures' scored shape) fits in what is free
    from nst import memory
    from nst.io.image import ImageError, longest_shape
    from .spec import min_side
    deepest = deepest_layer([*DEFAULT_CONTENT_LAYERS, *DEFAULT_STYLE_LAYERS])
    need = min_side(deepest)
    style_shape = style[1].shape[:2]
    h, w = longest_shape(style_shape, style_side)
    if min(h, w) < need:
        raise ImageError(f"--style {style[0]} at --style-size {style_side} is {w}×{h}, smaller than the {need} px "
                         f"per side that {deepest} needs; use a larger --style-size")
    shapes = []
    for path, pic in pictures.items():
        shapes.append(pic.shape[:2])
        if min(shapes[-1]) < need:
            raise ImageError(f"{path} is {shapes[-1][1]}×{shapes[-1][0]}, smaller than the {need} px per side "
                             f"that {deepest} needs to score it")
    held = sum(a * b * 3 * memory.F32 for a, b in [*shapes, style_shape])
    peak = held + max(sum(memory.network_bytes(a, b, deepest, backend)) for a, b in [(h, w), scored_shape(shapes)])
    free = memory.available(backend)
    if peak > free:
        raise MemoryError(f"scoring needs about {memory.gib(peak)} ({backend}), {memory.gib(free)} is free: "
                          "use a smaller --style-size or smaller pictures")


def main(args):
    # the table on stdout; args.backend a backend's name ("auto" is resolved by nst.cli first).
    # Each file is read once (also one named twice): the checks and the scoring take the same arrays.
    from nst.io.image import load_image
    read = {p: load_image(p) for p in dict.fromkeys([*args.pictures, args.style, args.content])}
    check_scorable({p: read[p] for p in args.pictures}, (args.style, read[args.style]), args.style_size,
                   args.backend)
    note = size_note(args.pictures, [read[p].shape[:2] for p in args.pictures],
                     (f"--content {args.content}", read[args.content].shape[:2]))
    if note:
        print(f"nst: warning: {note}", file=sys.stderr)
    scores = score([read[p] for p in args.pictures], read[args.content], read[args.style], style_side=args.style_size,
                   weights=args.weights, backend=args.backend,
                   log=lambda m: print(m, file=sys.stderr))
    print(format_table([str(p) for p in args.pictures], scores))
    return 0
