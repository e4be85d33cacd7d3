"""Launchers for gram_style_loss.cu: the Gram matrix and one layer's style loss + gradient.

Legend: C channels, hw = h·w, a = a^l(X) C×H×W, target = Ĝ(S) C×C (cupy float32).
  gram(a) -> Ĝ = F Fᵀ / hw (C×C);  style(a, target) -> (J_s^l 0-d, ∂J_s^l/∂a C×H×W),
  J_s^l = Σ (Ĝ(S) − Ĝ(X))² / C²,  ∂J/∂F = 4 (Ĝ(X) − Ĝ(S)) F / (C² hw)   (nst/losses.py)
The loss stays on the device as a 0-d array.
"""
import numpy as np

from . import _common as K

CU = "gram_style_loss.cu"
TILE, TILE_K = 64, 16
TARGET_BLOCKS = 528             # ≈ 4 blocks per SM on an H100 (132 SMs)
MIN_SPLIT = 256                 # at least 16 k-steps of the tile loop per block


def check_gram(a):
    # -> (C, hw)
    c, h, w = K.check("a", a, ndim=3)
    return c, h * w


def check_style(a, target):
    c, hw = check_gram(a)
    K.check("target", target, shape=(c, c))
    return c, hw


def split_plan(c, hw):
    # -> (pairs, splits, split_len): upper-triangle tile pairs × hw splits of split_len (÷ TILE_K)
    nt = K.cdiv(c, TILE)
    pairs = nt * (nt + 1) // 2
    splits = max(1, min(K.cdiv(TARGET_BLOCKS, pairs), hw // MIN_SPLIT))
    split_len = K.cdiv(K.cdiv(hw, splits), TILE_K) * TILE_K
    return pairs, K.cdiv(hw, split_len), split_len


def _v2_pass(dev, a, target, c, hw):
    # one pass over F: -> (out C×C: Ĝ, or diff when target is given; loss 1-element array)
    pairs, splits, split_len = split_plan(c, hw)
    acc = dev.zeros((c, c))
    tickets = dev.zeros(pairs, np.uint32)
    out = dev.empty((c, c))
    loss = dev.zeros(1)
    with_target = target is not None
    dev.function(CU, "gram_v2_splitk")(
        (pairs, splits), (256,),
        (a, acc, tickets, target if with_target else acc, out, loss,
         *K.i32(c, hw, split_len, int(with_target)), *K.f32(1.0 / hw, 1.0 / (c * c))))
    return out, loss


def gram_v1(a):
    c, hw = check_gram(a)
    dev = K.device(a=a)
    g = dev.empty((c, c))
    dev.function(CU, "gram_v1")((c * c,), (256,), (a, g, *K.i32(c, hw), *K.f32(1.0 / hw)))
    return g


def gram_v2_splitk(a):
    c, hw = check_gram(a)
    dev = K.device(a=a)
    return _v2_pass(dev, a, None, c, hw)[0]


def gram_cublas(a):
    c, hw = check_gram(a)
    dev = K.device(a=a)
    f = a.reshape(c, hw)                                    # C×hw
    return dev.xp.matmul(f, f.T) * K.f32(1.0 / hw)[0]


def _grad(dev, kernel, grid, diff, a, c, hw):
    grad = dev.empty(a.shape)
    dev.function(CU, kernel)(grid, (256,), (diff, a, grad, *K.i32(c, hw), *K.f32(4.0 / (c * c * hw))))
    return grad


def style_v1_plain(a, target):
    c, hw = check_style(a, target)
    dev = K.device(a=a, target=target)
    g = gram_v1(a)
    diff = dev.empty((c, c))
    loss = dev.zeros(1)
    dev.function(CU, "style_diff_v1")(K.grid1d(c * c, 256, 1024), (256,),
                                    (g, target, diff, loss, *K.i32(c * c), *K.f32(1.0 / (c * c))))
    return loss.reshape(()), _grad(dev, "style_grad_v1", K.grid1d(c * hw, 256, 1 << 20), diff, a, c, hw)


def style_v2_fused(a, target):
    c, hw = check_style(a, target)
    dev = K.device(a=a, target=target)
    diff, loss = _v2_pass(dev, a, target, c, hw)
    return loss.reshape(()), _grad(dev, "style_grad_v2", (K.cdiv(hw, TILE), K.cdiv(c, TILE)), diff, a, c, hw)


def style_cublas(a, target):
    c, hw = check_style(a, target)
    dev = K.device(a=a, target=target)
    f = a.reshape(c, hw)                                    # C×hw
    diff = dev.xp.matmul(f, f.T) * K.f32(1.0 / hw)[0] - target  # Ĝ(X) − Ĝ(S)
    loss = dev.xp.sum(diff * diff) * K.f32(1.0 / (c * c))[0]
    grad = dev.xp.matmul(diff, f) * K.f32(4.0 / (c * c * hw))[0]
    return loss, grad.reshape(a.shape)


VERSIONS = {"gram": {"v1": gram_v1, "v2_splitk": gram_v2_splitk, "cublas": gram_cublas},
            "style_loss_and_grad": {"v1_plain": style_v1_plain, "v2_fused": style_v2_fused, "cublas": style_cublas}}
KERNELS = ("gram_v1", "style_diff_v1", "style_grad_v1", "gram_v2_splitk", "style_grad_v2")


def flops_style(c, hw):
    return 4.0 * c * c * hw          # F Fᵀ and diff·F, 2·C²·hw each


def flops_gram(c, hw):
    return 2.0 * c * c * hw
