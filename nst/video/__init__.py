"""`nst video`: stylise a video without flicker (Ruder, Dosovitskiy & Brox 2016), on Dask, resumable.

    clip.py   read a video file (PyAV) or a folder of frames; write the video, audio copied through
    store.py  the clip's frames in a temporary file on disk, mapped back (a long clip needs disk, not RAM)
    flow.py   optical flow (OpenCV DIS), reliability masks, warps, the warped start (worker)
    plan.py   shots, one Frame per output with a chained digest, OUTDIR's manifest (client)
    task.py   one frame's run: the first of a shot coarse to fine, later ones with J_t (worker)
    cli.py    the subcommand, and the run on nst.batch.engine's cluster

The maths (J_t, the warp, the mask) is nst/losses.py and nst/flow.py (docs/maths.md "Video").
"""


def add_parser(sub):
    from .cli import add_parser as add
    return add(sub)


def main(args):
    from .cli import main as run
    return run(args)
