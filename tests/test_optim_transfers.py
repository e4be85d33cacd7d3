"""The optimisers keep their vectors on the backend: count the reads to the host.

Dev stands for a device array (a numpy subclass whose every read of a value to the host is
counted: float(), bool(), .get()); the optimisers see it through a fake array module. An L-BFGS
evaluation reads one scalar (J, for the line search), an iteration two more: the direction's (gᵀg,
‖g‖∞ and the pairs against g, together) and the new pair's (yᵀs, yᵀy and y against the pairs);
Adam and GD none at all.
"""
import types

import numpy as np
import pytest

from nst import lbfgs, optim
from nst.ops import adam_step


class Dev(np.ndarray):
    reads = 0

    def _read(self):
        Dev.reads += 1
        return self.view(np.ndarray)

    def __float__(self):
        return float(self._read())

    def __bool__(self):
        return bool(self._read())

    def get(self):
        return self._read().copy()


def dev(a):
    return np.asarray(a, np.float32).view(Dev)


XP = types.SimpleNamespace(
    vdot=lambda a, b: dev(np.vdot(a.view(np.ndarray), b.view(np.ndarray))),
    max=lambda a: dev(np.max(a.view(np.ndarray))),
    abs=lambda a: dev(np.abs(a.view(np.ndarray))),
    stack=lambda arrays: dev(np.stack([a.view(np.ndarray) for a in arrays])),
    concatenate=lambda arrays: dev(np.concatenate([a.view(np.ndarray) for a in arrays])),
    zeros=lambda shape, dtype: dev(np.zeros(shape, dtype)),
    clip=lambda x, lo, hi: dev(np.clip(x.view(np.ndarray), lo, hi)),
    zeros_like=lambda x: dev(np.zeros_like(x.view(np.ndarray))),
    asarray=lambda a, dtype=None: dev(a))


@pytest.fixture
def counting(monkeypatch):
    for module in (optim, lbfgs):
        monkeypatch.setattr(module, "xp_of", lambda x: XP)
    Dev.reads = 0


def quadratic(x):
    # J = ½ Σ k·(x − 100)², k = 1 … n (an ill-conditioned bowl), as device values
    k = np.arange(1, x.size + 1, dtype=np.float32).reshape(x.shape)
    d = x.view(np.ndarray) - 100
    return dev(0.5 * np.sum(k * d * d)), dev(k * d)


def test_lbfgs_reads_one_scalar_per_evaluation(counting):
    opt = optim.LBFGS(dev(np.zeros((4, 5, 3))), history=5)
    for _ in range(12):
        opt.step(quadratic)
    assert opt.iteration == 12 and len(opt.pairs) == 5
    assert Dev.reads <= opt.evaluations + 2 * opt.iteration, (Dev.reads, opt.evaluations, opt.iteration)
    Dev.reads = 0
    opt.direction(quadratic(opt.x)[1])                    # a full history: still one read
    assert Dev.reads == 1


@pytest.mark.parametrize("name", ["adam", "gd"])
def test_adam_and_gd_read_nothing(counting, name):
    opt = optim.make_optimizer(name, dev(np.zeros((4, 5, 3))), lr=1e-3 if name == "gd" else 1.0,
                               adam_kernel=adam_step)
    for _ in range(5):
        opt.step(quadratic)
    assert Dev.reads == 0
    assert np.all(opt.x.view(np.ndarray) > 0)             # and it stepped: a step that did nothing read nothing
