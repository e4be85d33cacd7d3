"""`nst serve`: a local app. Drop a photo and paintings, pick the options, Start: the run is queued
on Dask (nst.web.runs) and its live page opens; the gallery lists every run in OUTDIR. This module
holds the command's options and the form's (the CLI's own argparse types, so the same messages);
nst.web.app the server.

Routes (every one behind nst.web.server.guard):
    GET  /                          the app page          GET /api/options   the form's options
    POST /api/runs                  upload + start        GET /api/runs      the gallery's rows
    POST /api/runs/NAME/again       the same inputs and settings, a new run
    POST /api/runs/NAME/resume      a stopped run, from its checkpoint
    POST /api/compare               two pictures' terms (nst compare's scoring)
    GET  /runs/NAME/image           the PNG               GET /runs/NAME/live  the live page
    GET  /runs/NAME/ws, POST /runs/NAME/control/ACTION    as `nst transfer --web`
    POST /api/publish/NAME          the workers' progress (their key, not the page's)
A NAME is looked up among the runs; no name or value from a request becomes a path.
"""
import argparse

from ..destinations import RunRefused
from ..options import (
    INIT_KEYWORDS,
    Parser,
    add_common_options,
    add_run_options,
    add_transfer_options,
    check_settings,
    integer,
    number,
    settings_of,
)
from .uploads import Refused


def add_parser(sub):
    p = sub.add_parser("serve", help="a local web app: upload, run on Dask, watch live, a gallery of OUTDIR",
                       description="Serve nst as a web page: start runs from the browser, watch them live, "
                                   "browse every run in OUTDIR (nst batch's too).")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on; any other than a loopback one needs the printed URL's token "
                        "(default: %(default)s)")
    p.add_argument("--port", type=integer(0, 65535), default=8765, help="0: a free port (default: %(default)s)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="an existing Dask scheduler; its workers must reach this server's --host "
                        "(default: a local cluster)")
    p.add_argument("--outdir", default="nst-runs", metavar="DIR",
                   help="pictures, manifest.jsonl, uploads/ and checkpoints/ (default: %(default)s)")
    p.add_argument("--queue", type=integer(1, 1000), default=8, metavar="N",
                   help="runs queued or running at once; more are refused until one ends (default: %(default)s)")
    p.add_argument("--max-upload-mb", type=number(lo_open=True, hi=1024), default=20.0, metavar="MB",
                   help="largest uploaded image (default: %(default)g)")
    p.add_argument("--max-pixels", type=integer(1), default=40_000_000, metavar="N",
                   help="most pixels an uploaded image may declare (default: %(default)s)")
    p.add_argument("--checkpoint-every", type=integer(1), default=20, metavar="N",
                   help="iterations between a run's checkpoints (default: %(default)s)")
    add_run_options(p)
    add_common_options(p)
    return p


# -- the form: the CLI's options, parsed by the CLI's own types -----------------------------------
class FormParser(Parser):
    def error(self, message):
        raise Refused(400, message)


def form_parser():
    p = FormParser(prog="nst serve", add_help=False)
    add_transfer_options(p)
    return p


def form_options():
    # -> [{name, default, choices, help}] of every transfer option, as `nst transfer --help` has them
    return [{"name": a.option_strings[0][2:], "default": jsonable(a.default), "choices": a.choices,
             "help": (a.help or "").replace("%(default)s", str(a.default)).replace("%(default)g", f"{a.default:g}"
                                                                                  if isinstance(a.default, float) else "")}
            for a in form_parser()._actions if a.option_strings]


def jsonable(v):
    return list(v) if isinstance(v, tuple) else v


def settings_from(fields, n_styles, server):
    # {option name: text} -> the run's settings, refused (400) with the CLI's own messages
    known = {o["name"] for o in form_options()}
    argv = []
    for name, value in fields.items():
        if name not in known:
            raise Refused(400, f"unknown option {name[:40]!r}")
        if value.strip():
            argv += [f"--{name}", value]
    s = settings_of(form_parser().parse_args(argv, argparse.Namespace(backend=server.backend, weights=server.weights)))
    if s["init"] not in INIT_KEYWORDS:
        raise Refused(400, f"argument --init: the page takes {', '.join(INIT_KEYWORDS)} (an image file only on the command line)")
    try:
        check_settings(s, n_styles)
    except RunRefused as e:
        raise Refused(400, str(e)) from None
    return s


def main(args):
    # the app (nst.web.app needs aiohttp: the web extra)
    try:
        from .app import serve
    except ImportError as e:
        raise RunRefused(f"nst serve needs the web extra ({e.name} is missing): pip install 'nst[web]'") from None
    return serve(args)
