"""VGG19's convolutional part (SPEC.md "The network"): the layer table, forward and backward.

Legend: a^l the ReLU output of conv layer l, laid out C×H×W. The same code runs on every backend:
`be` is an nst.backends.Backend, `params` maps a conv layer name to what be.prepare_weights made.
"""
import re

# (name, in channels, out channels) of the 16 conv layers, in order; a 2×2 pool ends each block.
CONV_LAYERS = [
    ("block1_conv1", 3, 64), ("block1_conv2", 64, 64),
    ("block2_conv1", 64, 128), ("block2_conv2", 128, 128),
    ("block3_conv1", 128, 256), ("block3_conv2", 256, 256),
    ("block3_conv3", 256, 256), ("block3_conv4", 256, 256),
    ("block4_conv1", 256, 512), ("block4_conv2", 512, 512),
    ("block4_conv3", 512, 512), ("block4_conv4", 512, 512),
    ("block5_conv1", 512, 512), ("block5_conv2", 512, 512),
    ("block5_conv3", 512, 512), ("block5_conv4", 512, 512),
]
CONV_NAMES = [name for name, _, _ in CONV_LAYERS]
MEAN_BGR = (103.939, 116.779, 123.68)   # Caffe's ImageNet mean, BGR order


def resolve_layer(name: str) -> str:
    # "block4_conv2", or the paper's "conv4_2" / "relu4_2" -> "block4_conv2"
    m = re.fullmatch(r"(?:conv|relu)(\d)_(\d)", name)
    resolved = f"block{m[1]}_conv{m[2]}" if m else name
    if resolved not in CONV_NAMES:
        raise ValueError(f"unknown layer {name!r}: use a name like block4_conv2 or conv4_2 "
                         f"(one of {', '.join(CONV_NAMES)})")
    return resolved


def deepest_layer(names):
    # the layer furthest down the net: forward runs only that far
    if not names:
        raise ValueError("no content or style layer given")
    return max(names, key=CONV_NAMES.index)


def ends_block(name: str) -> bool:
    # True for the last conv of a block: a pool follows it.
    i = CONV_NAMES.index(name)
    return i + 1 == len(CONV_NAMES) or CONV_NAMES[i + 1].split("_")[0] != name.split("_")[0]


def pool_ops(be, pooling):
    # -> (forward, backward) for "max" (SPEC default) or "avg"
    if pooling == "max":
        return be.maxpool2x2, be.maxpool2x2_backward
    if pooling == "avg":
        return be.avgpool2x2, be.avgpool2x2_backward
    raise ValueError(f"unknown pooling {pooling!r}: use max or avg")


def min_side(deepest):
    # the smallest image side that still has ≥ 1 pixel at `deepest` (each pool halves, floor)
    return 2 ** sum(ends_block(n) for n in CONV_NAMES[:CONV_NAMES.index(deepest)])


def forward(be, params, x, deepest, pooling="max"):
    # x 3×H×W (preprocessed) -> {layer: a^l} for every conv layer up to `deepest`.
    # These ReLU outputs are all backward needs: their >0 masks, and the pools' inputs.
    if min(x.shape[1:]) < min_side(deepest):
        raise ValueError(f"a {x.shape[2]}×{x.shape[1]} image is too small for {deepest}: "
                         f"it needs at least {min_side(deepest)} pixels per side")
    pool, _ = pool_ops(be, pooling)
    acts = {}
    for name in CONV_NAMES[:CONV_NAMES.index(deepest) + 1]:
        x = be.conv3x3_relu(x, *params[name])
        acts[name] = x
        if ends_block(name) and name != deepest:
            x = pool(x)
    return acts


def backward(be, params, acts, grads, pooling="max"):
    # grads {layer: ∂J/∂a^l} -> ∂J/∂x, 3×H×W, by the chain rule from the deepest layer down.
    _, pool_backward = pool_ops(be, pooling)
    names = list(acts)
    g = None
    for i in range(len(names) - 1, -1, -1):
        name = names[i]
        if name in grads:
            g = grads[name] if g is None else g + grads[name]
        if g is None:
            continue                                  # no loss at or above this layer yet
        g = be.conv3x3_relu_backward_input(g, acts[name], params[name][0])
        if i > 0 and ends_block(names[i - 1]):
            g = pool_backward(g, acts[names[i - 1]])
    return g
