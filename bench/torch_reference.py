"""The nst objective (SPEC.md "Losses") written in PyTorch: the baseline the benchmarks compare to.

Same weights (nst's own, via weights.load), same preprocessing (RGB→BGR minus the Caffe mean, as
nst.objective.preprocess), same default layers and loss weights (α=1, β=1e3, γ=1e-3):
    J = α·½Σ(a−a_C)² at block4_conv2 + β·Σ_l (1/5)·Σ(Ĝ(S)−Ĝ(X))²/C² + γ·TV(X),  Ĝ = FFᵀ/(hw).
The net runs only up to block5_conv1; conv parameters are frozen (no weight gradients).
torch is optional: `available()` says whether it imports; nothing here imports it at module load.

    obj = TorchObjective(content, style)      # H×W×3 RGB 0..255 numpy arrays
    J, grad = obj(x)                          # float, H×W×3 float32 ∂J/∂x in RGB pixel space
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from nst.spec import DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS  # noqa: E402
from nst.spec import MEAN_BGR, ends_block, layers_through  # noqa: E402
from nst.vgg import deepest_layer  # noqa: E402


def available():
    try:
        import torch  # noqa: F401
        return True
    except ImportError:
        return False


def version():
    import torch
    return torch.__version__


class TorchObjective:
    def __init__(self, content, style, *, content_weight=1.0, style_weight=1e3, tv_weight=1e-3,
                 content_layers=DEFAULT_CONTENT_LAYERS, style_layers=DEFAULT_STYLE_LAYERS,
                 weights=None, threads=None, device="cpu"):
        import torch
        from torch import nn
        if device == "cpu" and threads:           # None: torch's default, as a user has it
            torch.set_num_threads(threads)
        self.torch, self.device = torch, torch.device(device)
        if not isinstance(weights, dict):
            from nst.weights import load
            weights = load(weights, lambda msg: None)
        self.alpha, self.beta, self.gamma = content_weight, style_weight, tv_weight
        self.content_layers, self.style_layers = list(content_layers), list(style_layers)
        self.lam = 1.0 / len(self.style_layers)
        self.deepest = deepest_layer(self.content_layers + self.style_layers)
        self.convs = {}
        for name in layers_through(self.deepest):
            w, b = (np.asarray(a, np.float32) for a in weights[name])   # w O×I×3×3
            conv = nn.Conv2d(w.shape[1], w.shape[0], 3, padding=1)
            with torch.no_grad():
                conv.weight.copy_(torch.from_numpy(w))
                conv.bias.copy_(torch.from_numpy(b))
            conv.requires_grad_(False)
            self.convs[name] = conv.to(self.device)
        self.mean = torch.tensor(MEAN_BGR, dtype=torch.float32, device=self.device)
        with torch.no_grad():
            acts = self.features(self._tensor(content))
            self.content_targets = {n: acts[n] for n in self.content_layers}
            acts = self.features(self._tensor(style))
            self.style_targets = {n: self.gram(acts[n]) for n in self.style_layers}

    def _tensor(self, image):
        return self.torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).to(self.device)

    def features(self, x):
        # x H×W×3 RGB 0..255 tensor -> {layer: ReLU output 1×C×h×w} up to the deepest layer
        f = self.torch.nn.functional
        h = (x.flip(-1) - self.mean).permute(2, 0, 1).unsqueeze(0)   # p(x): BGR − mean, 1×3×H×W
        acts = {}
        for name, conv in self.convs.items():
            h = f.relu(conv(h))
            acts[name] = h
            if ends_block(name) and name != self.deepest:
                h = f.max_pool2d(h, 2)
        return acts

    @staticmethod
    def gram(a):
        c, hw = a.shape[1], a.shape[2] * a.shape[3]
        feats = a.reshape(c, hw)
        return feats @ feats.T / hw

    def loss(self, x):
        # x H×W×3 tensor -> (J, {"content", "style", "tv"}) as 0-d tensors (unweighted terms)
        acts = self.features(x)
        j_c = sum(0.5 * ((acts[n] - self.content_targets[n]) ** 2).sum() for n in self.content_layers)
        j_s = sum(self.lam * ((self.gram(acts[n]) - self.style_targets[n]) ** 2).sum() / acts[n].shape[1] ** 2
                  for n in self.style_layers)
        j_tv = ((x[1:] - x[:-1]) ** 2).sum() + ((x[:, 1:] - x[:, :-1]) ** 2).sum()
        total = self.alpha * j_c + self.beta * j_s + self.gamma * j_tv
        return total, {"content": j_c, "style": j_s, "tv": j_tv}

    def loss_and_grad(self, x):
        # x H×W×3 tensor -> (J 0-d tensor, ∂J/∂x H×W×3 tensor)
        x = x.detach().requires_grad_(True)
        total, _ = self.loss(x)
        (grad,) = self.torch.autograd.grad(total, x)
        return total.detach(), grad

    def __call__(self, image):
        # H×W×3 RGB numpy -> (J float, ∂J/∂x H×W×3 float32 numpy)
        total, grad = self.loss_and_grad(self._tensor(image))
        return float(total), grad.cpu().numpy()

    def lbfgs(self, x0, iterations, history=20, line_search="strong_wolfe"):
        # torch.optim.LBFGS, never stopping early -> (x, evaluations, J); line_search None: the
        # unit step, one evaluation an iteration (neural-style-pt's way, jcjohnson's optim.lbfgs)
        torch = self.torch
        x = self._tensor(x0).clone().requires_grad_(True)
        opt = torch.optim.LBFGS([x], lr=1.0, max_iter=iterations, max_eval=10 ** 9,
                                history_size=history, tolerance_grad=0.0, tolerance_change=0.0,
                                line_search_fn=line_search)
        count = [0]

        def closure():
            opt.zero_grad()
            total, _ = self.loss(x)
            total.backward()
            count[0] += 1
            return total

        opt.step(closure)
        with torch.no_grad():
            final = float(self.loss(x)[0])
        return x.detach().cpu().numpy(), count[0], final
