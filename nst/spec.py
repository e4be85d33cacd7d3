"""The constants of SPEC.md in one place: VGG19's layer table, the Caffe mean, the default layers.

The bottom layer of nst (ARCHITECTURE.md): it imports nothing of nst, and everything may import it.
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
AUTO = "auto"                  # a setting's value that asks nst to choose it (λ_l, iterations, tile)
DEFAULT_CONTENT_LAYERS = ("block4_conv2",)
DEFAULT_STYLE_LAYERS = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1")


def resolve_layer(name: str) -> str:
    # "block4_conv2", or the paper's "conv4_2" / "relu4_2" -> "block4_conv2"
    m = re.fullmatch(r"(?:conv|relu)(\d)_(\d)", name) if isinstance(name, str) else None
    resolved = f"block{m[1]}_conv{m[2]}" if m else name
    if resolved not in CONV_NAMES:
        raise ValueError(f"unknown layer {name!r}: use a name like block4_conv2 or conv4_2 "
                         f"(one of {', '.join(CONV_NAMES)})")
    return resolved


def resolve_layers(names) -> list:
    # layer names as given -> Keras names (resolve_layer), each once: a layer named twice (conv1_1,
    # block1_conv1) would count twice in J, so it is a ValueError naming it
    resolved, given = [], {}
    for n in names:
        r = resolve_layer(n)
        if r in given:
            twice = f"as {given[r]!r} and {n!r}" if given[r] != n else "twice"
            raise ValueError(f"{r} is given {twice}: give each layer once")
        resolved.append(r)
        given[r] = n
    return resolved


def ends_block(name: str) -> bool:
    # True for the last conv of a block: a pool follows it.
    i = CONV_NAMES.index(name)
    return i + 1 == len(CONV_NAMES) or CONV_NAMES[i + 1].split("_")[0] != name.split("_")[0]


def layers_through(deepest):
    # the conv layers from block1_conv1 up to and including `deepest`, in order
    return CONV_NAMES[:CONV_NAMES.index(deepest) + 1]


def pools_before(name):
    # p_l: the 2×2 pools between the image and layer `name`
    return sum(ends_block(n) for n in layers_through(name)[:-1])


def min_side(deepest):
    # the smallest image side that still has ≥ 1 pixel at `deepest` (each pool halves, floor)
    return 2 ** pools_before(deepest)
