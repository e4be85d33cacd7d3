"""Style transfer: resize, initialise X, run an optimiser on the Objective (SPEC.md "Optimisation")."""
import numpy as np

from .image import check_size, load_image, resize, resize_longest
from .objective import DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS, Objective
from .optim import make_optimizer
from .progress import Progress

# Defaults, measured on tubingen.jpg + starry_night.jpg at 256 and 512 px (see README "Weights of
# the three terms"): with SPEC's normalisation the style term needs ~1e3 times the content weight.
CONTENT_WEIGHT, STYLE_WEIGHT, TV_WEIGHT = 1.0, 1e3, 1e-3


def as_image(x, what):
    # path or H×W×3 array -> H×W×3 float32 RGB 0..255 (finite)
    img = load_image(x) if isinstance(x, (str, bytes)) or hasattr(x, "__fspath__") else np.asarray(x, np.float32)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"{what} image must be H×W×3 RGB, got shape {img.shape}")
    if not np.all(np.isfinite(img)):
        raise ValueError(f"{what} image holds NaN or inf")
    return img


def initial_image(init, content, style, seed):
    # "content" | "random" | "style" | a path or array (resized to the content's size) -> H×W×3
    if isinstance(init, str) and init == "content":
        return content.copy()
    if isinstance(init, str) and init == "random":
        return np.random.default_rng(seed).uniform(0, 255, content.shape).astype(np.float32)
    image = style if isinstance(init, str) and init == "style" else as_image(init, "init")
    return resize(image, *content.shape[:2])


def stylize(content, style, *, size=512, iterations=300, optimizer="lbfgs", lr=None, history=20,
            content_weight=CONTENT_WEIGHT, style_weight=STYLE_WEIGHT, tv_weight=TV_WEIGHT,
            content_layers=DEFAULT_CONTENT_LAYERS, style_layers=DEFAULT_STYLE_LAYERS,
            style_layer_weights=None, style_scale=1.0, init="content", seed=0, backend="auto",
            weights=None, pooling="max", progress=True, callback=None, log=print):
    """content, style: paths or H×W×3 RGB arrays -> the stylised H×W×3 float32 image (0..255).

    size: longest side of the output (None keeps the content's size). callback(it, x, terms) is
    called after every iteration with x on the host; returning True stops the run. Ctrl-C stops
    the run too and returns the image so far.
    """
    content = as_image(content, "content")
    if size is not None:
        content = resize_longest(content, size)
    style = as_image(style, "style")
    style_side = int(round(max(content.shape[:2]) * style_scale))
    check_size(style_side)
    style = resize_longest(style, style_side)
    x0 = initial_image(init, content, style, seed)
    if iterations < 0:
        raise ValueError(f"iterations must be ≥ 0, got {iterations}")
    objective = Objective(content, style, content_weight=content_weight, style_weight=style_weight,
                          tv_weight=tv_weight, content_layers=content_layers,
                          style_layers=style_layers, style_layer_weights=style_layer_weights,
                          weights=weights, backend=backend, pooling=pooling, log=log)
    return run(objective, x0, iterations, optimizer, lr, history, progress, callback, log)


def run(objective, x0, iterations, optimizer, lr, history, progress, callback, log):
    # Optimise J from x0 for `iterations` steps -> H×W×3 float32 clipped to 0..255
    be = objective.be
    shape = x0.shape
    last = {}

    def fun(x_flat):
        total, terms, _, grad = objective.evaluate(x_flat.reshape(shape))
        last.update(terms=terms, total=total)
        return total, grad.reshape(-1)

    opt = make_optimizer(optimizer, be.to_device(x0.reshape(-1).astype(np.float32)), lr, history, log)
    bar = Progress(iterations) if progress else None
    try:
        for it in range(1, iterations + 1):
            opt.step(fun)
            terms = {"total": float(last["total"]), **{k: float(v) for k, v in last["terms"].items()}}
            if not np.isfinite(terms["total"]):
                raise FloatingPointError(f"the loss became {terms['total']} at iteration {it}: "
                                         "lower --lr or the loss weights")
            if bar:
                bar.update(it, terms, opt.evaluations)
            if callback and callback(it, image_of(be, opt.x, shape), terms):
                break
    except KeyboardInterrupt:
        log(f"\nnst: interrupted at iteration {opt.iteration}; keeping the image so far")
    finally:
        if bar:
            bar.close()
    return image_of(be, opt.x, shape)


def image_of(be, x, shape):
    return np.clip(np.asarray(be.to_host(x), np.float32).reshape(shape), 0, 255)
