"""`nst serve`: a local app. Drop a photo and paintings, pick the options, Start: the run is queued
on Dask (nst.web.runs) and its live page opens; the gallery lists every run in OUTDIR. This module
holds the command's options, nst.web.form the form's, nst.web.app the server.

Routes (every one behind nst.web.server.guard):
    GET  /                          the app page          GET /api/options   the form's options
    POST /api/runs                  upload + start        GET /api/runs      the gallery's rows
    POST /api/runs/NAME/again       the same inputs and settings, a new run
    POST /api/runs/NAME/resume      a stopped run, from its checkpoint
    POST /api/compare               two pictures' terms (nst compare's scoring), with its warnings
    GET  /runs/NAME/image           the PNG               GET /runs/NAME/live  the live page
    GET  /runs/NAME/thumb           its picture, small (its gallery card's): a running run's latest
    GET  /runs/NAME/photo           a queued or running run's content photo, small (its card's until then)
    GET  /runs/NAME/ws, POST /runs/NAME/control/ACTION    as `nst transfer --web`
    POST /api/publish/NAME          the workers' progress (their key, not the page's)
A NAME is looked up among the runs; no name or value from a request becomes a path.
"""

import argparse

from nst.io.destinations import RunRefused
from nst.cli.options import add_checkpoint_every, add_common_options, add_run_options, examples, integer, option_type
from nst.run import settings as rules


def add_parser(sub):
    p = sub.add_parser("serve", help="a local web app: upload, run on Dask, watch live, a gallery of OUTDIR",
                       description="Serve nst as a web page: upload a photo and paintings, pick nst transfer's\n"
                                   "options and start runs from the browser (queued on a Dask cluster), watch\n"
                                   "them live, browse every run in OUTDIR (nst batch's too). It prints the\n"
                                   "page's URL; Ctrl-C stops the runs, each keeping its checkpoint.",
                       epilog=examples("nst serve                          # then open http://127.0.0.1:8765/",
                                       "nst serve --outdir my-runs --port 8080",
                                       "nst serve --host 0.0.0.0           # other machines too: the URL has a token",
                                       "nst serve --scheduler tcp://head:8786 --host 0.0.0.0"),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1",
                   help="the address (IP or name of this machine) to listen on; 0.0.0.0: every interface; "
                        "any other than a loopback one needs the printed URL's token (default: %(default)s)")
    p.add_argument("--port", type=integer(0, 65535), default=8765,
                   help="the TCP port to listen on, 0 to 65535; 0: a free one, printed (default: %(default)s)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="an existing Dask scheduler; its workers must reach this server's --host "
                        "(default: a local cluster)")
    p.add_argument("--outdir", default="nst-runs", metavar="DIR",
                   help="the folder of the runs: their pictures, manifest.jsonl, uploads/ and checkpoints/; made if "
                        "missing (default: %(default)s)")
    p.add_argument("--queue", type=integer(1, 1000), default=8, metavar="N",
                   help="runs queued or running at once; more are refused until one ends (default: %(default)s)")
    p.add_argument("--max-upload-mb", type=option_type(rules.number(lo_open=True, hi=1024)), default=20.0, metavar="MB",
                   help="largest uploaded image in MiB (2^20 bytes), above 0, at most 1024 (default: %(default)g)")
    p.add_argument("--max-pixels", type=integer(1), default=40_000_000, metavar="N",
                   help="most pixels (width × height) an uploaded image may declare; larger ones are refused "
                        "unread (default: %(default)s)")
    add_checkpoint_every(p, "iterations between a run's checkpoints, and one when it is stopped")
    add_run_options(p)
    add_common_options(p)
    return p


def main(args):
    # the app (nst.web.app needs aiohttp: the web extra)
    try:
        from nst.web.app import serve
    except ImportError as e:
        raise RunRefused(f"nst serve needs the web extra ({e.name} is missing): pip install 'nst[web]'") from None
    return serve(args)
