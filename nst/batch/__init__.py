"""`nst batch`: every content × every style (× a sweep grid) on Dask distributed, resumable.

    command.py  the subcommand: options, the plan, the run, the summary (client)
    plan.py     inputs, sweeps -> Tasks with stable output names and digests (client)
    task.py     one Task through nst.run.job.Job, as `nst transfer` runs it (worker)
    engine.py   LocalCluster sizing or an existing scheduler; submit, retry, progress, Ctrl-C
    results.py  OUTDIR/manifest.jsonl and OUTDIR/contact_sheet.png
    outdir.py   which files in OUTDIR are nst's (the only ones it replaces); links never followed
    scheduler.py  --scheduler ADDRESS checked in seconds (scheme, host, port, Dask's handshake)
    tiles.py    one picture's tiles as tasks: `nst transfer --tile N --scheduler ADDRESS`

A rerun of the same command skips every task whose picture exists with an unchanged digest.
"""
from nst.batch.command import add_parser, main

__all__ = ["add_parser", "main"]
