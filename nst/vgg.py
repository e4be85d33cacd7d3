"""VGG19's convolutional part (SPEC.md "The network"): forward and backward over nst.spec's layer table.

Legend: a^l the ReLU output of conv layer l, laid out C×H×W. The same code runs on every backend:
`be` is an nst.backends.Backend, `params` maps a conv layer name to what be.prepare_weights made.
"""
from .spec import CONV_NAMES, ends_block, layers_through, min_side


def deepest_layer(names):
    # the layer furthest down the net: forward runs only that far
    if not names:
        raise ValueError("no content or style layer given")
    return max(names, key=CONV_NAMES.index)


def pool_ops(be, pooling):
    # -> (forward, backward) for "max" (SPEC default) or "avg"
    if pooling == "max":
        return be.maxpool2x2, be.maxpool2x2_backward
    if pooling == "avg":
        return be.avgpool2x2, be.avgpool2x2_backward
    raise ValueError(f"unknown pooling {pooling!r}: use max or avg")


def check_fits(h, w, deepest, what="image"):
    # an H×W `what` reaches `deepest` (min(H, W) ≥ 2^pools before it), else ValueError saying so
    if min(h, w) < min_side(deepest):
        raise ValueError(f"{what} ({w}×{h}) is too small for {deepest}: "
                         f"it needs at least {min_side(deepest)} pixels per side")


def forward(be, params, x, deepest, pooling="max", what="image"):
    # x 3×H×W (preprocessed) -> {layer: a^l} for every conv layer up to `deepest`.
    # These ReLU outputs are all backward needs: their >0 masks, and the pools' inputs.
    check_fits(*x.shape[1:], deepest, what)
    pool, _ = pool_ops(be, pooling)
    acts = {}
    for name in layers_through(deepest):
        x = be.conv3x3_relu(x, *params[name])
        acts[name] = x
        if ends_block(name) and name != deepest:
            x = pool(x)
    return acts


def add_into(g, h):
    # g + h, summed into g in place (g a fresh array we own); None stands for zero
    if g is None or h is None:
        return h if g is None else g
    g += h
    return g


def backward(be, params, acts, loss_grad, pooling="max"):
    # -> ∂J/∂x, 3×H×W, by the chain rule from the deepest layer down; loss_grad(layer, a^l) gives
    # ∂J/∂a^l of the losses at that layer (None: none there) when the chain reaches it. Consumes
    # acts: each a^l is dropped once used, and a loss gradient exists only while its layer is
    # being passed, so block 1's large arrays never meet the deeper layers'.
    _, pool_backward = pool_ops(be, pooling)
    names = list(acts)
    g = None
    for i in range(len(names) - 1, -1, -1):
        name = names[i]
        a = acts.pop(name)
        g = add_into(g, loss_grad(name, a))          # g is the fresh output of a backward op
        if g is None:
            continue                                  # no loss at or above this layer yet
        g = be.conv3x3_relu_backward_input(g, a, params[name][0])
        del a
        if i > 0 and ends_block(names[i - 1]):
            g = pool_backward(g, acts[names[i - 1]])
    return g
