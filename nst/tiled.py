"""Exact tiled evaluation of J and ∂J/∂X in memory bounded by a tile (docs/maths.md "Tiled evaluation").

Legend: X the image H×W×3; a tile's interior [y0, y1)×[x0, x1) in pixels, its extent the interior
plus a halo of `halo` pixels each side (clipped at the picture's edges); p_l the pools before layer
l, so the tile's positions at layer l are its pixels divided by 2^p_l. Ĝ^l(X) = Σ_tiles F_t F_tᵀ / M_l
(F_t the interior columns), so pass 1 sums Gram matrices tile by tile; pass 2 runs each tile's
backward with ∂J/∂a^l set at its interior positions only and adds the extent's ∂J/∂X into the
picture's gradient. Interior boundaries lie at multiples of 2^P (P the pools before the deepest
layer), so every tile's pools see the picture's own 2×2 windows.
"""
from dataclasses import dataclass

import numpy as np

from .objective import Objective, add_scaled, grad_to_image, preprocess
from .library import whole_number
from .spec import ends_block, layers_through, min_side, pools_before
from .vgg import backward, check_fits, deepest_layer, forward


def halo_per_layer(deepest):
    # -> {layer: pixels}: how far a tile's zero padding spoils a^l, in image pixels. d_l, the
    # spoiled positions at layer l, grows by 1 per 3×3 conv and becomes ⌈d/2⌉ through a pool.
    out, d, p = {}, 0, 0
    for name in layers_through(deepest):
        d += 1
        out[name] = d * 2 ** p
        if ends_block(name) and name != deepest:
            d, p = -(-d // 2), p + 1
    return out


def halo_for(layers, deepest):
    # the halo a tile needs so every loss layer is exact at its interior: the largest d_l·2^p_l,
    # rounded up to the alignment 2^P so the extent's origin keeps the pools' windows
    align = min_side(deepest)                # the deepest layer's stride: 2^P
    h = max(halo_per_layer(deepest)[n] for n in layers)
    return -(-h // align) * align


def splits(n, tile, align):
    # interior boundaries along one side of n pixels: as few pieces as keep each ≤ tile px (tile a
    # multiple of align), equal to within align where cuts at multiples of align allow, else tile-long
    k = max(1, -(-n // tile))
    cuts = sorted({min(n, round(i * n / k / align) * align) for i in range(1, k)} - {0, n})
    bounds = [0, *cuts, n]
    if max(b - a for a, b in zip(bounds, bounds[1:])) <= tile:
        return bounds
    return [*range(0, n, tile), n]


def side_extents(n, tile, layers):
    # the lengths of the extents along one side of n pixels, as tile_plan cuts it (rows and columns
    # are split independently)
    deepest = deepest_layer(layers)
    align = min_side(deepest)
    tile, halo = aligned_tile(tile, align), halo_for(layers, deepest)
    b = splits(n, tile, align)
    return [min(n, e + halo) - max(0, s - halo) for s, e in zip(b, b[1:])]


def largest_extent(h, w, tile, layers):
    # (rows, columns) of the largest extent a TiledObjective with this tile runs over an h×w
    # picture: so a small tile on a large picture costs its splits, not its tiles
    return max(side_extents(h, tile, layers)), max(side_extents(w, tile, layers))


def plan_said(h, w, tile, layers):
    # "2×2 tiles of about 1945×1459 px": the pieces tile_plan cuts an h×w picture into, columns×rows
    # and the largest interior's width×height ("about" when the pieces differ)
    tiles = tile_plan(h, w, tile, layers)
    widths, heights = {t.x1 - t.x0 for t in tiles}, {t.y1 - t.y0 for t in tiles}
    cols, rows = len({t.x0 for t in tiles}), len({t.y0 for t in tiles})
    about = "about " if len(widths) > 1 or len(heights) > 1 else ""
    return f"{cols}×{rows} tiles of {about}{max(widths)}×{max(heights)} px"


def work_factor(h, w, tile, layers):
    # about how many untiled evaluations' work one tiled evaluation of an h×w picture is: pass 1's
    # forward and pass 2's forward and backward run over every extent, 3 passes against 2 over h×w
    return 1.5 * sum(side_extents(h, tile, layers)) * sum(side_extents(w, tile, layers)) / (h * w)


def aligned_tile(tile, align):
    # the interior side tile_plan uses for --tile N: N rounded down to the alignment, at least one
    return max(align, tile // align * align)


@dataclass(frozen=True)
class Tile:
    y0: int        # interior rows [y0, y1), columns [x0, x1), in pixels
    y1: int
    x0: int
    x1: int
    ey0: int       # extent (interior + halo, clipped): rows [ey0, ey1), columns [ex0, ex1)
    ey1: int
    ex0: int
    ex1: int
    H: int         # the picture's height and width
    W: int

    def extent(self, image):
        # the extent's pixels of an H×W×… array
        return image[self.ey0:self.ey1, self.ex0:self.ex1]

    def interior_at(self, p, shape):
        # the interior at a layer with p pools, as slices into the tile's own C×h×w activation
        # (an interior reaching the picture's edge runs to the activation's end: the same floor)
        def side(a0, a1, e0, n_px, n_l):
            return slice((a0 - e0) >> p, n_l if a1 == n_px else (a1 - e0) >> p)
        return side(self.y0, self.y1, self.ey0, self.H, shape[1]), side(self.x0, self.x1, self.ex0, self.W, shape[2])

    def global_at(self, p):
        # the interior at a layer with p pools, as slices into the picture's C×h_l×w_l arrays
        end = lambda a1, n: None if a1 == n else a1 >> p     # noqa: E731  the edge: to the end
        return slice(self.y0 >> p, end(self.y1, self.H)), slice(self.x0 >> p, end(self.x1, self.W))


def tile_plan(h, w, tile, layers):
    # -> [Tile] of a tiled evaluation of `layers` over an h×w picture: interiors ≤ tile px (rounded
    # down to the alignment), halos as the deepest layer needs
    deepest = deepest_layer(layers)
    align = min_side(deepest)                # the deepest layer's stride: 2^P
    return plan(h, w, aligned_tile(tile, align), halo_for(layers, deepest), align)


def plan(h, w, tile, halo, align):
    # -> [Tile] covering an h×w picture: interiors about tile×tile px, each extended by the halo
    rows, cols = splits(h, tile, align), splits(w, tile, align)
    tiles = []
    for y0, y1 in zip(rows, rows[1:]):
        for x0, x1 in zip(cols, cols[1:]):
            tiles.append(Tile(y0, y1, x0, x1, max(0, y0 - halo), min(h, y1 + halo),
                              max(0, x0 - halo), min(w, x1 + halo), h, w))
    return tiles


def style_grad(a, gram_diff, positions):
    # a C×h×w, gram_diff Ĝ(X) − Ĝ(S) C×C of the whole picture, positions M_l the picture's h_l·w_l:
    # ∂J_s^l/∂a = 4 (Ĝ(X) − Ĝ(S)) F / (C² M_l), F = a as C×(h·w)  (nst.losses.style_loss_and_grad's,
    # with the picture's Gram difference and count in place of the tile's own)
    c = a.shape[0]
    f = a.reshape(c, -1)                                              # C×(h·w)
    return ((4.0 / (c * c * positions)) * (gram_diff @ f)).astype(a.dtype, copy=False).reshape(a.shape)


def tile_forward(net, t, pixels, deepest):
    # the tile's activations {layer: a^l} over its extent; pixels: the extent's H×W×3 pixels.
    # net: the Objective, or a worker's copy of its network (nst.batch.tiles): be, params, pooling, dtype
    x = preprocess(net.be.xp, net.be.to_device(np.asarray(pixels)), net.dtype)
    return forward(net.be, net.params, x, deepest, net.pooling)


def interior(net, t, name, a):
    # a^l at the tile's interior, contiguous
    rows, cols = t.interior_at(pools_before(name), a.shape)
    return net.be.xp.ascontiguousarray(a[:, rows, cols])


def content_interior(net, t, pixels, layers):
    # {layer: a^l at the tile's interior} for the content layers (their targets a^l(C))
    acts = tile_forward(net, t, pixels, deepest_layer(layers))
    return {n: interior(net, t, n, acts[n]) for n in layers}


def tile_grams(net, t, pixels, layers):
    # pass 1 for one tile -> ({layer: F_t F_tᵀ} float64, {layer: positions}, the extent's activations)
    acts = tile_forward(net, t, pixels, deepest_layer(layers))
    sums, counts = {}, {}
    for n in layers:
        a = interior(net, t, n, acts[n])
        if a.size:                                            # else a sliver the layer's floor drops
            sums[n] = net.be.gram(a).astype(np.float64) * (a.shape[1] * a.shape[2])
            counts[n] = a.shape[1] * a.shape[2]
    return sums, counts, acts


def tile_gradient(net, t, pixels, acts, diffs, counts, targets):
    # pass 2 for one tile -> (∂J/∂X over its extent H×W×3, or None; {k: J_c of content layer k} at
    # its interior). acts: its activations if pass 1 kept them, else None; diffs {layer: Ĝ(X) − Ĝ(S)}
    # and counts {layer: M_l} of the whole picture; targets {layer: a^l(C) at the tile's interior}
    acts = tile_forward(net, t, pixels, net.deepest) if acts is None else acts
    js = {}
    g = backward(net.be, net.params, acts, lambda n, a: tile_losses(net, t, n, a, diffs, counts, targets, js),
                 net.pooling)
    return (None if g is None else grad_to_image(net.be.xp, g)), js


def tile_losses(net, t, n, a, diffs, counts, targets, js):
    # ∂J/∂a^n at the tile's interior positions (zero over the halo); the content terms' J into js
    if n not in net.content_layers and n not in net.style_layers:
        return None
    inner = interior(net, t, n, a)
    if inner.size == 0:
        return None                                           # a sliver the layer's floor drops
    g = None
    for k, m in enumerate(net.content_layers):
        if m == n:
            js[k], gk = net.be.content_loss_and_grad(inner, targets[n])
            g = add_scaled(g, gk, net.alpha)
    for m, lam in zip(net.style_layers, net.lam):
        if m == n:
            g = add_scaled(g, style_grad(inner, diffs[n], counts[n]), net.beta * lam)
    full = net.be.xp.zeros_like(a)
    full[(slice(None), *t.interior_at(pools_before(n), a.shape))] = g
    return full


class TiledObjective(Objective):
    """Objective evaluated tile by tile: the same J and ∂J/∂X, memory bounded by one tile's extent.
    pass1 and pass2 run the tiles here, one after another; nst.batch.tiles runs them on a cluster."""

    def __init__(self, content, style, *, tile, **kw):
        self.tile = whole_number("tile", tile)           # the interior's side in pixels (tile_plan aligns it)
        self.before_tile = lambda: None          # called before each tile (a Run's stop check: it may raise)
        super().__init__(content, style, **kw)

    def tiles(self, h, w, layers):
        return tile_plan(h, w, self.tile, layers)

    def pass1(self, image, tiles, layers):
        # -> ({layer: Σ_tiles F_t F_tᵀ} float64, {layer: M_l}, the last tile's activations)
        sums, counts, acts = {}, {}, None
        for t in tiles:
            self.before_tile()
            acts = None                                       # one tile's activations at a time
            s, c, acts = tile_grams(self, t, t.extent(image), layers)
            for n in s:
                sums[n] = s[n] if n not in sums else sums[n] + s[n]
                counts[n] = counts.get(n, 0) + c[n]
        return sums, counts, acts

    def pass2(self, image, tiles, diffs, counts, kept):
        # -> (tile, ∂J/∂X over its extent or None, {k: J_c}) for each tile, last first (the last
        # tile's pass-1 forward, `kept`, is reused when it reached every layer pass 2 needs)
        kept = kept if kept is not None and self.deepest == deepest_layer(self.style_layers) else None
        for t in reversed(tiles):
            self.before_tile()
            acts, kept = kept, None
            yield (t, *tile_gradient(self, t, t.extent(image), acts, diffs, counts, self.tile_targets(t)))

    def tile_targets(self, t):
        # {content layer: a^l(C) at the tile's interior}
        rows_cols = lambda n: (slice(None), *t.global_at(pools_before(n)))     # noqa: E731
        return {n: self.be.xp.ascontiguousarray(self.content_targets[n][rows_cols(n)]) for n in self.content_layers}

    def grams_of(self, image, layers, what="image"):
        # Ĝ^l of an image, tile by tile (Objective.grams_of untiled)
        check_fits(*image.shape[:2], deepest_layer(layers), what)
        sums, counts, _ = self.pass1(image, self.tiles(*image.shape[:2], layers), layers)
        return {n: (sums[n] / counts[n]).astype(self.dtype) for n in layers}

    def _content_targets(self, content):
        # a^l(C) of the content layers, the picture's whole arrays assembled from tile interiors
        if not self.content_layers:
            return {}
        xp, out = self.be.xp, {}
        for t, inner in self.content_interiors(content, self.tiles(*content.shape[:2], self.content_layers)):
            for n, a in inner.items():
                if n not in out:
                    h, w = content.shape[0] >> pools_before(n), content.shape[1] >> pools_before(n)
                    out[n] = xp.empty((a.shape[0], h, w), dtype=a.dtype)
                out[n][(slice(None), *t.global_at(pools_before(n)))] = a
        return out

    def content_interiors(self, content, tiles):
        # -> (tile, {content layer: a^l(C) at its interior}) for each tile
        for t in tiles:
            yield t, content_interior(self, t, t.extent(content), self.content_layers)

    def evaluate(self, image):
        # image H×W×3 on the backend -> (J, terms, per-layer J_s^l, ∂J/∂X), as Objective.evaluate
        xp = self.be.xp
        tiles = self.tiles(*image.shape[:2], self.content_layers + self.style_layers)
        sums, counts, kept = self.pass1(image, tiles, self.style_layers) if self.style_layers else ({}, {}, None)
        diffs = {n: (sums[n] / counts[n]).astype(self.dtype) - self.style_targets[n] for n in self.style_layers}
        js = {("style", k): xp.sum(diffs[n].astype(xp.float64) ** 2) / diffs[n].shape[0] ** 2
              for k, n in enumerate(self.style_layers)}
        grad = xp.zeros(image.shape, dtype=self.dtype)
        per_tile, kept = self.pass2(image, tiles, diffs, counts, kept), None   # pass2 alone holds kept
        for t, g, content_js in per_tile:
            if g is not None:
                t.extent(grad)[...] += g
            for k, j in content_js.items():
                js["content", k] = js.get(("content", k), 0.0) + j
        return self._totals(image, js, grad)

    def _totals(self, image, js, grad):
        # J and its terms from the summed pieces, TV over the whole picture (Objective.evaluate's)
        xp = self.be.xp
        f64 = lambda j: xp.asarray(j, dtype=xp.float64)     # noqa: E731
        j_content = sum((f64(js.get(("content", k), 0.0)) for k in range(len(self.content_layers))), 0.0)
        per_layer = {n: f64(js["style", k]) for k, n in enumerate(self.style_layers)}
        j_style = sum((lam * per_layer[n] for n, lam in zip(self.style_layers, self.lam)), 0.0)
        j_tv, g_tv = self.be.tv_loss_and_grad(image.astype(self.dtype, copy=False))
        j_tv = f64(j_tv)
        grad += self.gamma * g_tv
        total = self.alpha * j_content + self.beta * j_style + self.gamma * j_tv
        return total, {"content": j_content, "style": j_style, "tv": j_tv}, per_layer, grad
