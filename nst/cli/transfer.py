"""`nst transfer` and `nst demo`: a command line -> Settings and Outputs -> one Job (nst.run.job)."""
import contextlib
import os
from pathlib import Path

from nst.cli.options import outputs_of, settings_of
from nst.io.destinations import RunRefused
from nst.run.job import Job
from nst.run.progress import log


def cmd_transfer(args):
    from nst.batch.tiles import check_scheduler, cluster_tiles
    check_output_name(args.output)
    outputs, settings = outputs_of(args), settings_of(args)
    address = check_scheduler(args.scheduler, settings.tile) if args.scheduler else None
    job = Job(args.content, args.style, settings, outputs, log)
    job.preflight()
    with live_page(args) as live:                # --web: its URL is the first line printed
        job.prepare()
        if args.dry_run:
            return 0
        with cluster_tiles(address, job.run, log, args.debug):   # --scheduler: the tiled scales' tiles run there
            if not live:
                return job.execute()
            live.attach(job.run)                 # the page's Stop and Pause reach the run: run.controls
            status = job.execute(live.on_iteration)
        live.finish("stopped" if job.run.interrupted else "failed" if status else "done")
        return status


def live_page(args):
    # --web: the run's live page (nst.web.live), else nothing; a dry run checks that it can serve there
    if getattr(args, "web", None) is None:
        return contextlib.nullcontext()
    try:
        from nst.web.live import live_page as page, started_page
    except ImportError as e:
        raise RunRefused(f"--web needs the web extra ({e.name} is missing): pip install 'nst[web]'") from None
    if args.dry_run:                             # no run: no page to serve, its server started and stopped
        started_page(args.web).close()
        return contextlib.nullcontext()
    styles = ", ".join(Path(s).name for s in args.style)
    return page(args.web, f"{Path(args.content).name} in the style of {styles}")


def check_output_name(output):
    # -o '' and -o FOLDER say so (as a Path '' is "."; either was "unknown image suffix")
    if not output.strip():
        raise RunRefused("-o is empty: give the output's file name, e.g. -o out.png")
    if os.path.isdir(output):                    # False for a name too long (Path.is_dir raises)
        raise RunRefused(f"-o {output} is a folder; give a file name, e.g. -o {Path(output) / 'out.png'}")


def cmd_demo(args):
    # the demo images (fetched once), then `nst transfer` on them with the demo's options
    from nst.cli.parser import build_parser
    from nst.cli.demo import OPTIONS, demo_images
    from nst.io.assets import AssetError, cache_dir
    from nst.io.destinations import check, why_not_written
    from nst.io.image import check_output_format
    check_output_name(args.output)                       # -o before anything is fetched
    check_output_format(args.output)
    check([("-o", Path(args.output))], [])
    try:
        paths = demo_images(log)
    except OSError as e:                                 # the cache folder cannot be written
        raise AssetError(f"cannot write the demo images under {cache_dir()} ({why_not_written(e)}); "
                         "set NST_HOME to a folder you can write") from None
    log(f"nst: demo: {paths['content'].name} in the style of {paths['style'].name}, {' '.join(OPTIONS)}")
    argv = ["transfer", str(paths["content"]), str(paths["style"]), "-o", args.output,
            "--backend", args.backend, *OPTIONS] + (["--weights", args.weights] if args.weights else [])
    return cmd_transfer(build_parser().parse_args(argv))
