"""The objective J(X) = α·J_content + β·J_style + γ·J_tv and its gradient (SPEC.md "Losses"),
plus τ·Σ_k J_t(X; ω_k, c_k) for a video frame when `temporal` is set (docs/maths.md "Video: the temporal loss").

Legend: X the generated image H×W×3 RGB 0..255; a^l(X) the ReLU output of layer l (C×h×w).
An Objective holds what does not change during a run (weights on the backend, a^l(C), Ĝ^l(S))
and evaluates J and ∂J/∂X for any X. `loss_and_grad` is the one-shot public form.
"""
import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from .library import counted, finite_number, log_to_logger
from .backends import NAMES, Backend, get_backend
from nst.io.image import as_image
from .spec import (AUTO, DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS, MEAN_BGR, layers_through, resolve_layer,
                   resolve_layers)
from .vgg import add_into, backward, check_fits, deepest_layer, forward


@dataclass
class LossResult:
    total: float                     # J
    terms: dict                      # {"content": J_c, "style": J_s, "tv": J_tv}, unweighted
    grad: np.ndarray                 # ∂J/∂X, H×W×3 float32, RGB pixel space
    style_layers: dict = field(default_factory=dict)   # {layer: J_s^l}, unweighted


def preprocess(xp, x, dtype):
    # x H×W×3 RGB 0..255 -> p(x) 3×H×W: RGB→BGR, minus the Caffe mean
    bgr = x[..., ::-1].astype(dtype) - xp.asarray(MEAN_BGR, dtype=dtype)
    return xp.ascontiguousarray(bgr.transpose(2, 0, 1))


def grad_to_image(xp, g):
    # ∂J/∂p(x) 3×H×W -> ∂J/∂x H×W×3 RGB (the mean is a constant; BGR flips back)
    return xp.ascontiguousarray(g.transpose(1, 2, 0)[..., ::-1])


# {style layer: m_l} of "auto" (1 for a layer not named): block4_conv1, the style layer beside the
# content layer, where the two pull against each other, gets 2 shares of β; block1_conv1, the
# painting's fine brush texture, 1.5; block5_conv1, which the default run won by 4–12× on every
# pair while losing the content term, 0.05 (docs/maths.md, "The default schedule and the block4 emphasis")
AUTO_EMPHASIS = {"block1_conv1": 1.5, "block4_conv1": 2.0, "block5_conv1": 0.05}


# How far "auto" moves β towards the balance jcjohnson/neural-style's fixed weights give the pair,
# in log (0: not at all, 1: all the way): β·(R/R₀)^AUTO_PULL, R his style weight relative to the
# relative-error rule (pair_balance), R₀ the geometric mean of R over the six pairs bench/ scores
# (docs/maths.md "The pair's balance").
AUTO_PULL, AUTO_R0 = 0.25, 1.74


def pair_balance(e_c, n_c, e_s, n_s):
    # R = Σ_l (N_c/C_l²)·E_s^l / E_c: jcjohnson's weights (5·MSE content, 100·MSE style of G/(C·hw),
    # i.e. λ_l = N_c/C_l² at α = 1, β = 10) in the relative-error units of auto_layer_weights.
    # N_c content elements, C_l = n_s[l] channels; R₀ (no pull) without content layers or style energy.
    r = sum(n_c / c ** 2 * e for c, e in zip(n_s, e_s)) / e_c
    return r if n_c > 0 and r > 0 else AUTO_R0


def content_energy(content_targets):
    # E_c = Σ_c Σ a^c(C)² over the content layers (1 without any): the scale of J_c
    return sum(float((t.astype(np.float64) ** 2).sum()) for t in content_targets.values()) or 1.0


def auto_layer_weights(content_targets, style_targets):
    # λ_l = f·m_l·E_c / (Σ_k m_k · E_s^l): E_c = Σ_c Σ a^c(C)² over the content layers (1 without any),
    # E_s^l = ‖Ĝ^l(S)‖²_F / n_c², m_l = AUTO_EMPHASIS (1 each: λ_l = E_c/(|L|·E_s^l)). Then
    # J = E_c·(α·J_c/E_c + β·f·Σ_l w_l J_s^l/E_s^l) + γ·J_tv with Σ w_l = 1: every term a relative
    # error, so no layer outweighs another by its activations' scale (docs/maths.md "Default
    # weights"), and style keeps its weight against content and TV at any image size; f =
    # (R/R₀)^AUTO_PULL leans towards the balance jcjohnson's weights give this pair (pair_balance).
    e_c = content_energy(content_targets)
    n_c = sum(int(t.size) for t in content_targets.values())
    e_s = [float((g.astype(np.float64) ** 2).sum()) / g.shape[0] ** 2 for g in style_targets.values()]
    f = (pair_balance(e_c, n_c, e_s, [g.shape[0] for g in style_targets.values()]) / AUTO_R0) ** AUTO_PULL
    m = [AUTO_EMPHASIS.get(n, 1.0) for n in style_targets]
    return [f * e_c * m_l / (sum(m) * max(e, 1e-30)) for m_l, e in zip(m, e_s)]


def prepare(be, weights, dtype):
    # {layer: (W O×I×3×3, b O)} -> {layer: the backend's prepared weights} (on its device, in dtype)
    return {n: be.prepare_weights(*(be.to_device(np.asarray(a, dtype)) for a in wb)) for n, wb in weights.items()}


# One worker process's prepared weights, kept between its tasks: {key: value}, the latest key only
# (kept_prepared, keep_prepared). A key says what makes prepared weights differ: the weights (a
# file's identity, or a run's), the layers, the backend and its device, the dtype.
_KEPT = {}


def kept_prepared(key):
    # what keep_prepared kept under `key`, or None; a miss drops whatever is kept first, so a caller
    # that now prepares another set never holds two (nor a GPU's arrays after a device change)
    if key not in _KEPT:
        _KEPT.clear()
    return _KEPT.get(key)


def keep_prepared(key, value):
    # -> value, kept for the next kept_prepared(key) in this process, in place of what was kept
    _KEPT.clear()
    _KEPT[key] = value
    return value


NO_STYLE = "no style image: give one image, or a list of them"


class EvaluationFailed(RuntimeError):
    """J could not be evaluated for a reason outside the maths (a cluster's worker failed): the run
    stops, keeping its last good image, as for a non-finite J."""


def layer_weights(style_layers, style_layer_weights):
    # None -> λ_l = 1/|L|; "auto" -> None (Objective derives λ from the targets: auto_layer_weights);
    # else a sequence aligned with style_layers or a {layer: λ} dict (its layers among style_layers,
    # a missing one λ = 0); each λ finite and ≥ 0, else ValueError
    if style_layer_weights is None:
        return [1.0 / len(style_layers)] * len(style_layers) if style_layers else []
    if isinstance(style_layer_weights, str) and style_layer_weights == AUTO:
        return None
    if isinstance(style_layer_weights, str):
        raise ValueError(f"style_layer_weights is a list of numbers, one per style layer, or {AUTO!r}, not the "
                         f"string {style_layer_weights!r}")
    if isinstance(style_layer_weights, dict):
        given = {resolve_layer(k): v for k, v in style_layer_weights.items()}
        stray = [k for k in style_layer_weights if resolve_layer(k) not in style_layers]
        if stray:
            raise ValueError(f"style_layer_weights names {', '.join(map(str, stray))}, not among the style layers "
                             f"({', '.join(style_layers) or 'none'}); add it to style_layers or drop its weight")
        return [finite_number(f"style_layer_weights[{n!r}]", given.get(n, 0.0)) for n in style_layers]
    kinds = "a list of numbers, one per style layer, {layer: number}, None or 'auto'"
    lam = [finite_number("style_layer_weights", v) for v in sequence("style_layer_weights", style_layer_weights, kinds)]
    if len(lam) != len(style_layers):
        raise ValueError(f"{counted(len(lam), 'style layer weight')} for {counted(len(style_layers), 'style layer')}")
    return lam


def blend_weights(blend, n):
    # style_blend for n style images -> [w_i / Σ w] (None: equal); each finite and ≥ 0, not all 0
    if isinstance(blend, str):                 # else read character by character: "12" as [1, 2]
        raise TypeError(f"style_blend is a list of numbers, one per style image, not the string {blend!r}")
    blend = [1.0] * n if blend is None else [finite_number("style_blend", b) for b in sequence(
        "style_blend", blend, "a list of numbers, one per style image")]
    if len(blend) != n:
        raise ValueError(f"{counted(len(blend), 'blend weight')} for {counted(n, 'style image')}")
    if not sum(blend) > 0:
        raise ValueError("style_blend weights are all 0: give at least one style image a weight > 0")
    if math.isinf(sum(blend)):                 # finite weights whose sum overflows (1e308,1e308): w_i / max first
        blend = [b / max(blend) for b in blend]
    return [b / sum(blend) for b in blend]


def named_styles(style):
    # one style image, or a list of them -> [(name, image)]: "style", or "style 1", "style 2", …
    styles = style if isinstance(style, (list, tuple)) else [style]
    if not styles:
        raise ValueError(NO_STYLE)
    return [("style" if len(styles) == 1 else f"style {i}", s) for i, s in enumerate(styles, 1)]


def check_dtype(dtype, be):
    # float32 on every backend, float64 on the NumPy reference only (the kernels compute in float32)
    dt = np.dtype(dtype)
    if dt not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dt}")
    if dt == np.float64 and be.name != "numpy":
        raise ValueError(f"dtype float64 needs backend='numpy': the {be.name} backend computes in float32")
    return dt


def check_weights(weights, names):
    # a {layer: (W O×I×3×3, b O)} dict given as weights: every layer in `names` there, each W's I the
    # previous layer's O (3 for the first), numbers, finite -> ValueError naming the layer
    cin = 3
    for n in names:
        if n not in weights:
            raise ValueError(f"weights has no layer {n} (a dict {{layer: (W, b)}} needs block1_conv1 "
                             f"through {names[-1]})")
        w, b = (np.shape(a) for a in weights[n])
        if len(w) != 4 or w[1:] != (cin, 3, 3) or b != w[:1]:
            raise ValueError(f"weights[{n!r}]: W {w} and b {b}, expected W (O, {cin}, 3, 3) and b (O,)")
        for a in map(np.asarray, weights[n]):
            if a.dtype.kind not in "fiu":
                raise ValueError(f"weights[{n!r}] must hold numbers, got dtype {a.dtype}")
            if not np.isfinite(a).all():
                raise ValueError(f"weights[{n!r}] holds NaN or inf")
        cin = w[0]


def add_scaled(g, gk, weight):
    # g + weight·gk, in place (gk is a fresh array; g None: nothing yet): a loss term's weighted
    # gradient added into the sum (nst.tiled's too), no array allocated
    gk *= weight
    return add_into(g, gk)


def sequence(name, value, what):
    # list(value), or TypeError "name is what, not <type>" when it is no sequence (None, a number)
    if not isinstance(value, Iterable):
        raise TypeError(f"{name} is {what}, not {type(value).__name__}")
    return list(value)


def layer_list(name, layers):
    # the layer names as given, resolved (conv4_2 -> block4_conv2); refused when one string was
    # passed for the list (it would be read letter by letter), none at all, or a layer twice
    if isinstance(layers, str):
        names = [n.strip() for n in layers.split(",")]
        raise TypeError(f"{name} is a list of layer names, e.g. {names!r}, not the string {layers!r}")
    try:
        return resolve_layers(sequence(name, layers, "a list of layer names, e.g. ['block4_conv2']"))
    except ValueError as e:
        raise ValueError(f"{name}: {e}") from None


class Objective:
    """J and ∂J/∂X for fixed content C and style S (one image, or several blended)."""

    def __init__(self, content, style, *, content_weight, style_weight, tv_weight,
                 content_layers=DEFAULT_CONTENT_LAYERS, style_layers=DEFAULT_STYLE_LAYERS,
                 style_layer_weights=None, style_blend=None, weights=None, backend="numpy",
                 pooling="max", dtype=np.float32, log=log_to_logger, prepared=None, warn_scale=True):
        # warn_scale=False: content, style and the images evaluated are the caller's own arrays (a
        # Run's resized copies), derived from arguments it checked: no warning of an image in 0..1
        if not isinstance(backend, (str, Backend)):
            raise TypeError(f"backend must be a backend's name ({', '.join(NAMES)}), not {type(backend).__name__}")
        self.be = get_backend(backend) if isinstance(backend, str) else backend
        self.dtype = check_dtype(dtype, self.be)
        self.alpha, self.beta, self.gamma = (finite_number(k, v) for k, v in (
            ("content_weight", content_weight), ("style_weight", style_weight), ("tv_weight", tv_weight)))
        self.content_layers = layer_list("content_layers", content_layers)
        self.style_layers = layer_list("style_layers", style_layers)
        self.lam = layer_weights(self.style_layers, style_layer_weights)
        self.pooling = pooling
        self.deepest = deepest_layer(self.content_layers + self.style_layers)
        self.params = prepared if prepared is not None else self._prepare(weights, log)
        self.warn_scale = warn_scale
        content = as_image(content, "content", dtype=None, warn_scale=warn_scale)
        self.shape = content.shape                       # every X evaluated has the content's shape
        check_fits(*self.shape[:2], self.deepest, "content image")
        self.content_targets = self._content_targets(content)
        self.style_targets = self._style_targets(style, style_blend)
        if self.lam is None:
            self.lam = auto_layer_weights(self.content_targets, self.style_targets)
        self.temporal_weight, self.temporal = 0.0, []    # τ and [(ω_k, c_k) on the backend]: video only

    def _prepare(self, weights, log):
        # -> {layer: prepared weights} up to the deepest layer; the raw arrays are dropped here
        names = layers_through(self.deepest)
        if not isinstance(weights, dict):
            from nst.weights import load
            weights = load(weights, log, layers=names)
        check_weights(weights, names)
        return prepare(self.be, {n: weights[n] for n in names}, self.dtype)

    def _activations(self, image, deepest, what="image"):
        # {layer: a^l} of an H×W×3 image up to `deepest`; `what` names it in a too-small error
        xp = self.be.xp
        x = preprocess(xp, self.be.to_device(np.asarray(image)), self.dtype)
        return forward(self.be, self.params, x, deepest, self.pooling, what)

    def _content_targets(self, content):
        if not self.content_layers:
            return {}
        acts = self._activations(content, deepest_layer(self.content_layers), "content image")
        return {n: acts[n] for n in self.content_layers}

    def _style_targets(self, style, blend):
        # Ĝ^l(S), or Σ_i w_i Ĝ^l(S_i) for several style images with blend weights w (sum to 1)
        if not self.style_layers:
            return {}
        styles = named_styles(style)
        blend = blend_weights(blend, len(styles))
        targets = {}
        for (what, s), w in zip(styles, blend):
            image = as_image(s, what, dtype=None, warn_scale=self.warn_scale)
            grams = self.grams_of(image, self.style_layers, f"{what} image")
            for n in self.style_layers:
                g = w * grams[n]                  # scalar first: cupy sends array·scalar through numpy
                targets[n] = g if n not in targets else targets[n] + g
        return targets

    def grams_of(self, image, layers, what="image"):
        # {layer: Ĝ^l(image)} (nst.tiled computes the same tile by tile)
        acts = self._activations(image, deepest_layer(layers), what)
        return {n: self.be.gram(acts[n]) for n in layers}

    def evaluate(self, image):
        # image H×W×3 on the backend -> (J, {term: J_term}, {layer: J_s^l}, ∂J/∂X H×W×3), all on
        # the backend: nothing is copied to the host, so a GPU run need not synchronise.
        be, xp = self.be, self.be.xp
        acts = forward(be, self.params, preprocess(xp, image, self.dtype), self.deepest, self.pooling)
        js = {}                                           # ("content" | "style", k) -> J of that term
        g = backward(be, self.params, acts, lambda n, a: self._layer_losses(n, a, js), self.pooling)
        j_tv, g_tv = be.tv_loss_and_grad(image.astype(self.dtype, copy=False))
        f64 = lambda j: xp.asarray(j, dtype=xp.float64)     # noqa: E731  totals accumulate in float64
        j_content = sum((f64(js["content", k]) for k in range(len(self.content_layers))), 0.0)
        style = [(n, lam, f64(js["style", k]))
                 for k, (n, lam) in enumerate(zip(self.style_layers, self.lam))]
        per_layer = {n: j for n, _, j in style}
        j_style = sum((lam * j for _, lam, j in style), 0.0)
        j_tv = f64(j_tv)
        grad = self.gamma * g_tv if g is None else grad_to_image(xp, g) + self.gamma * g_tv
        total = self.alpha * j_content + self.beta * j_style + self.gamma * j_tv
        terms = {"content": j_content, "style": j_style, "tv": j_tv}
        if self.temporal:                                 # J += τ Σ_k J_t(X; ω_k, c_k)
            terms["temporal"] = 0.0
            for target, mask in self.temporal:
                j_t, g_t = be.temporal_loss_and_grad(image.astype(self.dtype, copy=False), target, mask)
                terms["temporal"] = terms["temporal"] + f64(j_t)
                grad = add_scaled(grad, g_t, self.temporal_weight)
            total = total + self.temporal_weight * terms["temporal"]
        return total, terms, per_layer, grad

    def _layer_losses(self, n, a, js):
        # the losses at layer n (a = a^n): records each term's J in js and returns
        # α·∂J_c/∂a + Σ β·λ_l·∂J_s^l/∂a (None: no loss at n); gradients weighted, summed in place
        g = None
        for k, m in enumerate(self.content_layers):
            if m == n:
                js["content", k], gk = self.be.content_loss_and_grad(a, self.content_targets[n])
                g = add_scaled(g, gk, self.alpha)
        for k, (m, lam) in enumerate(zip(self.style_layers, self.lam)):
            if m == n:
                js["style", k], gk = self.be.style_loss_and_grad(a, self.style_targets[n])
                g = add_scaled(g, gk, self.beta * lam)
        return g

    def __call__(self, image) -> LossResult:
        # host image (H×W×3 as the content, finite; a path too) -> host LossResult (floats, float32
        # gradient); ValueError naming what is wrong with the image, NonFiniteLoss when J overflows
        from .optim import NonFiniteLoss, overflow_unwarned
        be, image = self.be, as_image(image, "image", dtype=self.dtype, warn_scale=self.warn_scale)
        if image.shape != self.shape:
            raise ValueError(f"image {image.shape} must have the content's shape {self.shape}: an Objective "
                             "evaluates images of its content's size (make one per size)")
        with overflow_unwarned():
            total, terms, per_layer, grad = self.evaluate(be.to_device(image))
            r = LossResult(float(total), {k: float(v) for k, v in terms.items()},
                           np.asarray(be.to_host(grad), dtype=np.float32),
                           {k: float(v) for k, v in per_layer.items()})
            if not (np.isfinite(r.total) and np.isfinite(r.grad).all()):
                raise NonFiniteLoss(f"J or ∂J/∂X is NaN or inf: the sums overflowed (the image's largest value is "
                                    f"{float(np.abs(image).max()):.3g}; pixels are 0..255; else use smaller weights)")
        return r


def loss_and_grad(content, style, image, *, content_weight, style_weight, tv_weight,
                  content_layers=DEFAULT_CONTENT_LAYERS, style_layers=DEFAULT_STYLE_LAYERS,
                  style_layer_weights=None, style_blend=None, weights=None, backend="numpy") -> LossResult:
    # J(image) and ∂J/∂image for content C, style S (H×W×3 RGB 0..255 arrays; S any size, or a
    # list of such blended by style_blend, as Objective takes them)
    content, image = (as_image(a, what) for a, what in ((content, "content"), (image, "image")))
    if content.shape != image.shape:
        raise ValueError(f"image {image.shape} and content {content.shape} must have the same shape")
    styles = [as_image(s, what) for what, s in named_styles(style)]
    objective = Objective(content, styles, content_weight=content_weight,
                          style_weight=style_weight, tv_weight=tv_weight,
                          content_layers=content_layers, style_layers=style_layers,
                          style_layer_weights=style_layer_weights, style_blend=style_blend,
                          weights=weights, backend=backend, warn_scale=False)
    return objective(image)
