"""A run's checks. Before any pixel is read (nst.run.job.Job.preflight, nst video): the options
that must agree with the inputs (`check_options`). Then those that need the images: every scale
large enough for the deepest layer in use, and the run's memory (the net, the optimiser, the
decoded inputs) against what is free, before the first evaluation (nst.run.job.Job.prepare).
"""
import math

from nst import memory
from nst.io.destinations import RunRefused, exists
from nst.io.image import MAX_SIDE, ImageError, image_shape, longest_shape
from nst.library import counted
from nst.spec import min_side
from nst.tiled import aligned_tile, halo_for, plan_said, work_factor
from nst.run.settings import INIT_KEYWORDS, SettingsError
from nst.vgg import deepest_layer

SUGGEST_TILE = 1024      # px: the tile a refused --tile auto run's suggested --size is sized with
# an upscale above this is said (not refused: enlarging a small photo is legitimate). 4×: a 128 px
# thumbnail at the default --size 512; beyond it each content pixel covers more than 4×4 of the
# output, which then holds mostly interpolation, rarely what a user who gave a thumbnail meant
UPSCALE_WARNING = 4
# a --tile whose halos make an evaluation more than this many untiled ones' work is said (not
# refused: memory may leave no choice). --tile auto's smallest pick at 8K on 24 GiB is about 3×
TILE_WORK_WARNING = 4


def check_options(settings, n_styles):
    # --style-blend has one weight per style; --init is a keyword, an array or a file that exists
    s = settings
    if s.style_blend is not None and len(s.style_blend) != n_styles:
        raise SettingsError(f"--style-blend has {counted(len(s.style_blend), 'value')} for "
                            f"{counted(n_styles, 'style image')}; give one per STYLE")
    check_init_exists(s)


def check_init_exists(s):
    # --init is a keyword, an array or a file that exists (nst transfer, batch and video say it so)
    if s.init_file and not exists(s.init_file):
        raise SettingsError(f"--init {s.init}: no such file, and not one of {', '.join(INIT_KEYWORDS)}")


def read_init(path, read=image_shape):
    # the --init picture through `read` (image_shape: (H, W), the file decoded whole; load_image: its
    # H×W×3 pixels), refused as nst transfer, batch and video say it: nst.io.image's "PATH: why" named
    # by its option, "--init PATH: is a directory, not an image"
    try:
        return read(path)
    except ImageError as e:
        raise ImageError(f"--init {e}") from None


def check_sizes(run):
    # every scale's content and style images are large enough for the deepest layer they reach
    check_shapes(run.content.shape, [style.shape for style in run.styles], run.sizes, run.settings)


def check_shapes(content_shape, style_shapes, sizes, s):
    # check_sizes from the shapes alone: an H×W content and H×W styles at the scales' longest sides
    # `sizes` (nst.run.run.scale_sides) under settings s (nst batch checks its inputs so, unloaded)
    deepest_all = deepest_layer([*s.content_layers, *s.style_layers])
    deepest_style = deepest_layer(s.style_layers)
    side = sizes[0]
    h, w = longest_shape(content_shape, side)
    if min(h, w) < min_side(deepest_all):
        raise RunRefused(f"at {side} px (--size/--start-size) the content is {w}×{h}, smaller than the "
                         f"{min_side(deepest_all)} px per side that {deepest_all} needs; "
                         + first_side_hint(content_shape, style_shapes, s.style_scale, min_side(deepest_all),
                                           min_side(deepest_style), sizes))
    need = min_side(deepest_style)
    for side in sizes:
        style_side = round(side * s.style_scale)
        for shape in style_shapes:
            sh, sw = longest_shape(shape, style_side)
            if style_side > MAX_SIDE:
                raise RunRefused(f"--style-scale {s.style_scale:g} makes a style image {style_side} px "
                                 f"long at {side} px, above {MAX_SIDE}: use --style-scale ≤ "
                                 f"{math.floor(100 * MAX_SIDE / side) / 100:g}")
            if style_side < 16 or min(sh, sw) < need:
                raise RunRefused(f"--style-scale {s.style_scale:g} makes a style image {sw}×{sh} at {side} px, "
                                 f"smaller than the {need} px per side {deepest_style} needs: "
                                 + style_scale_hint(shape, need, side))


def upscale_warning(content_shape, side):
    # "the content is 4×3 px, upscaled 32× to 128×96 px by --size 128: …" when an H×W content's longest
    # side is enlarged more than UPSCALE_WARNING× to `side` px (the last scale's), else None
    factor = side / max(content_shape[:2])
    if factor <= UPSCALE_WARNING:
        return None
    (h, w), (H, W) = longest_shape(content_shape, side), content_shape[:2]
    return (f"the content is {W}×{H} px, upscaled {factor:.3g}× to {w}×{h} px by --size {side}: "
            "is it the picture you meant?")


def run_warnings(run, tile):
    # -> the warnings a prepared run gets ([] or upscale_warning's and tile_warning's lines): nst.run.job
    # says them, nst serve's check of a run too (nst.web.form.check_run)
    return [w for w in (upscale_warning(run.content.shape, run.sizes[-1]), tile_warning(run, tile)) if w]


def tile_warning(run, tile):
    # "--tile 16 makes an evaluation about 181× …" when the user's --tile `tile` (not auto's pick: it is
    # the largest that fits) makes the finest scale's evaluations more than TILE_WORK_WARNING× an
    # untiled one's work (its halos), else None
    h, w = longest_shape(run.content.shape, run.sizes[-1])
    if not (isinstance(tile, int) and 0 < tile < max(h, w)):
        return None
    layers = [*run.settings.content_layers, *run.settings.style_layers]
    factor = work_factor(h, w, tile, layers)
    if factor <= TILE_WORK_WARNING:
        return None
    side, halo = aligned_tile(tile, run.tile_align()), halo_for(layers, deepest_layer(layers))
    return (f"--tile {tile} makes an evaluation about {factor:.3g}× the work of an untiled one (each {side} px "
            f"tile is evaluated with a halo of {halo} px around it); a larger --tile is faster (--dry-run shows "
            "the memory it needs)")


def style_scale_hint(shape, need, side):
    # the --style-scale that makes an H×W style's shorter side `need` px at a `side` px scale, or
    # that none can within MAX_SIDE (a style too thin: a 4000×2 strip would need one 2 million px long)
    least = least_side(shape, need)
    if least is None:
        return (f"no --style-scale makes its {min(shape[:2])} px side {need} px within {MAX_SIDE} px: "
                "crop or pad the style image")
    return f"use --style-scale ≥ {math.ceil(100 * max(16, least) / side) / 100:g}"


def first_side_hint(shape, style_shapes, scale, need, style_need, sizes):
    # how large the first of the scales' longest sides `sizes` must be for an H×W content's shorter
    # side to reach `need` px and each H×W style's, at --style-scale `scale`, `style_need` px (a style
    # too thin for any scale is left to its own check), or that no size can: an extreme aspect ratio,
    # or a style then above MAX_SIDE. Several scales keep --size: a larger --start-size, else one scale
    least = least_side(shape, need)
    if least is None:
        return f"no size up to {MAX_SIDE} px makes its {min(shape[:2])} px side {need} px: crop or pad the content"
    styled = [least_side(st, style_need) for st in style_shapes]
    least = max([least, *(math.ceil((s - 0.5) / scale) for s in styled if s is not None)])
    if least > MAX_SIDE:
        return (f"no size up to {MAX_SIDE} px also makes the style image {style_need} px per side at "
                f"--style-scale {scale:g}: crop or pad the content, or use a larger --style-scale")
    if round(least * scale) > MAX_SIDE:
        return (f"at the --size {least} it needs, --style-scale {scale:g} makes a style image "
                f"{round(least * scale)} px long, above {MAX_SIDE}: crop or pad the content")
    if len(sizes) > 1 and least < sizes[-1]:
        return f"use --start-size {least} or larger"
    if len(sizes) > 1:                                   # --scales K from a --start-size ≥ --size
        return f"use --scales 1 --size {least} or larger"
    return f"use --size {least} --start-size {least} or larger"


def least_side(shape, need):
    # the least longest side at which an H×W image's shorter side is ≥ `need` px as longest_shape
    # rounds it (short·s/long ≥ need − ½), or None above MAX_SIDE
    short, long = sorted(shape[:2])
    least = math.ceil((need - 0.5) * long / short)
    least += min(longest_shape(shape, least)) < need          # float rounding at the boundary
    return least if least <= MAX_SIDE else None


def auto_tile(run, free, held=0):
    # --tile auto's choice: None while the whole picture fits in `free` bytes (with `held` beside
    # it), else the largest tile that fits (nst.memory.auto_tile), None if none does
    total = lambda tile=None: run.memory_estimate(tile=tile)[0]["total"] + held   # noqa: E731
    if total() <= free:
        return None
    return memory.auto_tile(lambda t: total(tile=t), free, max(run.memory_estimate()[1]), run.tile_align()) or None


def check_memory(run, dry_run, web=False):
    # the run's memory (the net, the optimiser, the decoded inputs; web: what a live page holds,
    # memory.web_bytes) against what is free. --tile auto picks the largest tile that fits when the
    # whole picture does not (run.settings.tile set). -> a dry run's memory table (text, for the
    # caller to print once nothing else is refused), else None; a dry run that does not fit prints
    # its table before the MemoryError: where the memory goes is that refusal's detail
    held = memory.images_bytes([run.content, *run.styles])
    backend = run.objective_backend().name
    free = memory.available(backend) + memory.held_bytes(run.prepared)   # weights a worker kept: counted in total
    if backend != "cupy":                # the file's weights, read ahead meanwhile: counted in total too
        free += run.weights_read_bytes()

    def beside(hw):
        # {part: bytes} the estimate leaves out, at an h×w picture: the decoded inputs, the live page's
        live = {"web": memory.web_bytes(*hw, run.settings.keep_colors == "luminance")}
        return {"inputs": held, **(live if web else {})}

    def total(side=None, tile=None):
        parts, hw = run.memory_estimate(side, tile)
        return parts["total"] + sum(beside(hw).values())
    h, w = run.memory_estimate()[1]
    here = beside((h, w))                                # at the run's own size
    auto = run.settings.tile == "auto"
    if auto:
        run.settings = run.settings.replace(tile=auto_tile(run, free, sum(here.values())))
    tile = run.settings.tile
    tiled = isinstance(tile, int) and 0 < tile < max(h, w)
    parts = run.memory_estimate(tile=tile if tiled else None)[0]
    parts = {**parts, **here, "total": parts["total"] + sum(here.values())}
    fits = parts["total"] <= free
    table = memory_table(run, (h, w), backend, parts, free, tile if tiled else None) if dry_run else None
    if not fits:
        if table:
            print(table)
        # the size to suggest: under --tile auto one that fits in SUGGEST_TILE px tiles (a fixed tile
        # keeps the search to one estimate a size), else as asked
        fixed = SUGGEST_TILE if auto else (tile if tiled else None)
        side = memory.largest_fitting_size(lambda s: total(s, fixed if fixed and fixed < s else None), free,
                                           hi=max(h, w) - 1)
        fitting = memory.auto_tile(lambda t: total(tile=t), free, max(h, w), run.tile_align())
        fix = f"--tile {fitting} makes this size fit" if fitting else untileable(run, here)
        sized = f"--size {side} would fit{' in tiles' if auto and side > SUGGEST_TILE else ''}" if side else \
            "no --size fits"
        raise MemoryError(f"a {w}×{h} run needs about {memory.gib(parts['total'])} on {backend} but "
                          f"{memory.gib(free)} is available; {sized}; {fix}")
    return table


def memory_table(run, hw, backend, parts, free, tile):
    # --dry-run's lines: "W×H on BACKEND, scales …: needs about …, … available (fits)", then each part
    # of `parts` ({part: bytes}, "total" among them) and, tiled (`tile` px, else None), how each
    # scale is evaluated (one scale too: the pieces it runs in, not the --tile limit)
    (h, w), fits = hw, parts["total"] <= free
    how = f", tiles of {aligned_tile(tile, run.tile_align())} px" if tile else ""
    lines = [f"{w}×{h} on {backend}, scales {run.sizes}{how}: needs about {memory.gib(parts['total'])}, "
             f"{memory.gib(free)} available ({'fits' if fits else 'does NOT fit'})"]
    lines += [f"  {k:<12}{memory.gib(v)}" for k, v in parts.items() if k != "total" and (v or k != "resizing")]
    if tile:
        lines.append(f"  {'per scale':<12}{scale_tiles(run)}")
    return "\n".join(lines)


HINTS = {"optimiser": ": a smaller --history shrinks it", "inputs": ": smaller input images shrink it",
         "resizing": ": smaller input images shrink it", "web": ": the live page's picture (--web)"}


def untileable(run, beside):
    # why no tile fits: even the smallest tile's run, its largest part named (the parts tiles do not
    # shrink: the optimiser's vectors, the image, the targets, the weights, and those beside the
    # estimate: {"inputs": the decoded inputs, "web": the live page's})
    align = run.tile_align()
    parts = {**run.memory_estimate(tile=align)[0], **beside}
    largest = max((k for k in parts if k != "total"), key=parts.get)
    need = parts["total"] + sum(beside.values())
    return (f"no tile is small enough: even {align} px tiles need {memory.gib(need)}, "
            f"the largest part {largest} ({memory.gib(parts[largest])}){HINTS.get(largest, '')}")


def scale_tiles(run, tiles=None, first=0):
    # "256–2768 px whole, 3890 px in 2×2 tiles of about 1945×1459 px, …": how each scale from `first`
    # on is evaluated, the pieces as nst.tiled's plan cuts that scale's picture; tiles: each scale's
    # tile or None (whole), default Run.scale_tile's (a checkpoint's records its run's)
    layers = [*run.settings.content_layers, *run.settings.style_layers]
    tiles = [run.scale_tile(k) for k in range(len(run.sizes))] if tiles is None else tiles
    scales = list(zip(run.sizes, tiles))[first:]
    whole = [side for side, t in scales if not t]
    span = (f"{whole[0]}–{whole[-1]} px whole" if len(whole) > 1 else f"{whole[0]} px whole") if whole else None
    tiled = [f"{side} px in {plan_said(*longest_shape(run.content.shape, side), t, layers)}"
             for side, t in scales if t]
    return ", ".join([*([span] if span else []), *tiled])
