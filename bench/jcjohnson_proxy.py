"""A stand-in for jcjohnson/neural-style's picture on pairs he never published: his method, run by nst.

jcjohnson/neural-style (neural_style.lua, its defaults) minimises, with the same VGG19 layers:
  5·mean((a−a_C)²) at relu4_2  +  Σ_l 100·mean((G/(C·h·w) − G_S/(C·h·w))²)  +  TV (strength 1e-3)
from X0 = the Caffe mean colour (randn·0.001 in preprocessed space) with 1000 L-BFGS iterations
(history 100) at 512 px, the style resized to the same longest side. In SPEC's units (nst.objective):
  α = 10/N_c (N_c = a^{relu4_2}'s element count; SPEC's J_c is ½Σ), β·λ_l = 100/C_l² (SPEC's
  J_s^l = ‖Ĝ−Ĝ_S‖²/C², his G/(C·hw) is Ĝ/C, and MSE divides by C² again), γ = 5e-4 (his TV
  gradient is strength × the gradient of ½Σ(Δx)²).
Differences that remain: nst's L-BFGS has an Armijo line search (his takes the unit step), nst
stops a scale early once J stops moving (ftol), and these runs are at --size (256 px by default,
to fit a 2-core machine; his are 512 px). `--calibrate HIS.png`, on a pair he did publish, scores
the stand-in against his real picture (SPEC's terms, nst.compare), to see how close it lands.

    python bench/jcjohnson_proxy.py CONTENT STYLE -o ref.png [--size 256 --iterations 1000] [--calibrate HIS.png]
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nst.compare import format_table, score  # noqa: E402
from nst.io.image import load_image, longest_shape, resize, save_image  # noqa: E402
from nst.spec import CONV_LAYERS, DEFAULT_STYLE_LAYERS, MEAN_BGR  # noqa: E402
from nst.run.run import Run  # noqa: E402
from nst.run.settings import Settings  # noqa: E402


def channels(layer):
    # a conv layer's output channel count, from SPEC's layer table
    return dict((name, out) for name, _, out in CONV_LAYERS)[layer]


# The stand-in / his published picture, per term (content, block1…5), on the two pairs he published
# with ../shared's paintings: `python bench/jcjohnson_proxy.py tubingen.jpg PAINTING -o … --size 512
# --iterations 400 --calibrate jcjohnson_tubingen_{starry,shipwreck}.png` (2026-12-04, bench/RESULTS.md
# "What the stand-ins ask"). nst / stand-in × these estimates nst / his picture on a held-out pair
# with the same painting: an estimate from one calibration pair per painting, not a measurement.
CALIBRATION = {"starry_night.jpg": (0.798, 1.7, 0.115, 0.0889, 0.0909, 1.2),
               "shipwreck.jpg": (0.703, 2.04, 0.254, 0.521, 0.247, 1.85)}


def his_weights(h, w):
    # -> (α, [β·λ_l]): his objective's weights on SPEC's J_c and each J_s^l at an h×w picture
    n_c = channels("block4_conv2") * (h // 8) * (w // 8)
    return 10.0 / n_c, [100.0 / channels(n) ** 2 for n in DEFAULT_STYLE_LAYERS]


def his_weighted_sum(terms, h, w):
    # terms {content: J_c, layer: J_s^l} of an h×w picture (nst.compare.score) -> W = α·J_c + Σ β·λ_l·J_s^l,
    # his objective less its TV term. A picture no worse than another on every term has no larger W,
    # so W(X) ≤ W(ref) is necessary for X to be at least as good as ref on every term.
    alpha, lams = his_weights(h, w)
    return alpha * terms["content"] + sum(lam * terms[n] for lam, n in zip(lams, DEFAULT_STYLE_LAYERS))


def jcjohnson_settings(h, w, size, iterations, seed=0):
    # nst settings that compute jcjohnson's default objective at an h×w picture (see the docstring)
    alpha, lams = his_weights(h, w)
    mean_rgb = np.asarray(MEAN_BGR[::-1], np.float32)
    noise = np.random.default_rng(seed).standard_normal((h, w, 3)).astype(np.float32) * 0.001
    return dict(size=size, scales=1, iterations=iterations, history=100, content_weight=alpha,
                style_weight=1.0, style_layer_weights=lams, tv_weight=5e-4, init=mean_rgb + noise, backend="numba")


def stand_in(content, style, output, size, iterations):
    # content, style H×W×3 -> his objective's picture at `size` px saved to output -> a summary dict
    h, w = longest_shape(content.shape, size)
    run = Run(content, style, Settings.from_dict(jcjohnson_settings(h, w, size, iterations)),
              log=lambda m: print(m, file=sys.stderr))
    t = time.perf_counter()
    out = run.run()
    save_image(out, output)
    return {"output": str(output), "iterations": len(run.history), "evaluations": run.evaluations,
            "seconds": round(time.perf_counter() - t, 1), "final": run.history[-1]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("content")
    ap.add_argument("style")
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--iterations", type=int, default=1000)
    ap.add_argument("--calibrate", metavar="HIS.png", help="his published picture of this pair: score against it")
    args = ap.parse_args()
    content, style = load_image(args.content), load_image(args.style)
    print(json.dumps(stand_in(content, style, args.output, args.size, args.iterations)))
    if args.calibrate:
        his = load_image(args.calibrate)
        mine = resize(load_image(args.output), *his.shape[:2])     # scored at his picture's shape
        scores = score([mine, his], content, style, backend="numba")
        print(format_table(["stand-in", "his"], scores, ratio_to=1))
        w = [his_weighted_sum(t, *his.shape[:2]) for t in scores]
        print(f"his objective less TV, W = α·J_c + Σ β·λ_l·J_s^l: stand-in {w[0]:.4g}, his {w[1]:.4g}, "
              f"stand-in / his {w[0] / w[1]:.3g}")


if __name__ == "__main__":
    main()
