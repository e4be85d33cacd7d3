"""`nst batch` on the client: options, the plan, the cluster, the manifest and the summary."""
import contextlib
import signal
from pathlib import Path

from nst.batch import checks
from nst.io.destinations import why_not_written
from nst.memory import gib
from nst.library import counted
from nst.run.progress import Progress, log


def add_parser(sub):
    # the `batch` subcommand, with `nst transfer`'s run options (nst.cli.options, defined once)
    import argparse

    from nst.cli.options import (add_checkpoint_every, add_cluster_options, add_common_options, add_run_options,
                                 add_transfer_options, examples)
    from .plan import sweep_type
    p = sub.add_parser("batch", help="every CONTENT × every STYLE (× --sweep grids) on Dask, resumable",
                       description="Stylise many pictures on a local or remote Dask cluster. A rerun of\n"
                                   "the same command skips the pictures already made.",
                       epilog=examples("nst batch photos/ --style paintings/*.jpg -o styled/",
                                       "nst batch photo.jpg --style starry.jpg -o sweep/ --sweep style-weight=3,10,30",
                                       "nst batch photos/ --style starry.jpg -o styled/ --dry-run"
                                       "   # the tasks, their memory, where they run",
                                       "nst batch photos/ --style starry.jpg -o styled/ --scheduler tcp://head:8786"),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("content", nargs="+", help="content images, folders or globs")
    p.add_argument("--style", nargs="+", required=True, help="style images, folders or globs")
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR",
                   help="folder for the pictures, manifest.jsonl and contact_sheet.png")
    for add in (add_transfer_options, add_run_options, add_common_options):
        add(p)
    p.add_argument("--sweep", action="append", default=[], type=sweep_type(p), metavar="OPTION=V1,V2,...",
                   help="run every value of a numeric transfer option, e.g. style-weight=3,10,30; "
                        "several --sweep make a grid")
    add_cluster_options(p)
    p.add_argument("--checkpoint-dir", metavar="DIR",
                   help="a folder every worker can write: a retried task continues from its checkpoint "
                        "(default: none: a retried task starts over)")
    add_checkpoint_every(p, "iterations between a task's checkpoints")
    p.add_argument("--dry-run", action="store_true", help="list the tasks, the memory one needs, where they run; stop")
    return p


def main(args):
    # OUTDIR held by this batch (nst.io.hold) until it returns or raises; its workers never hold it
    with contextlib.ExitStack() as held:
        return run_batch(args, held)


def run_batch(args, held):
    # the transfer settings are built and checked as `nst transfer` does (nst.cli.options)
    from nst.cli.options import settings_of
    from nst.io.hold import hold_outdir
    from . import plan, results
    checks.check_options(args)
    settings = settings_of(args)
    checks.check_destinations(args)               # before the weights are read (fetched, if missing)
    if not args.dry_run:
        held.enter_context(hold_outdir("nst batch", "-o", args.output, Path(args.output)))
    files = plan.inputs(args.content, args.style, settings)
    weights = checks.read_weights(settings.weights, local=not args.scheduler)
    tasks = plan.plan(*files, settings, args.sweep, weights.sha if weights else None)
    outdir = plan.check_outdir(args.output, tasks)
    manifest = results.Manifest(outdir)
    todo, done_before, blocked = results.partition(tasks, manifest.previous, outdir)
    shapes = checks.check_inputs(todo)
    need, backend, one = checks.task_memory(todo or tasks, shapes)      # the tasks that run, if any
    checks.check_workers(args.workers, need, backend)
    log(f"nst batch: {counted(len(tasks), 'task')} ({describe(tasks)}): "
        f"{len(done_before)} done before, {len(todo)} to run" + (f", {len(blocked)} blocked" if blocked else ""))
    log_blocked(blocked)
    if args.dry_run:
        return dry_run(args, tasks, todo, blocked, need, backend, one, shapes)
    if not todo and not blocked:
        if not (outdir / results.SHEET).exists():
            results.contact_sheet(outdir, tasks, {t.output: "done" for t in tasks}, log)
        log(f"nst batch: nothing to do, every picture in {outdir} is up to date")
        return 0
    if todo and not args.scheduler:
        checks.check_fits(todo, need, backend, args)
    for t in tasks:
        if t.output in blocked:
            manifest.append(results.row_of(t, {"status": "failed", "error": blocked[t.output]}))
    return execute(args, weights, tasks, todo, manifest, outdir, need, backend)


def log_blocked(blocked, most=10):
    # why each blocked task cannot run (the manifest has every reason too)
    for output, reason in list(blocked.items())[:most]:
        log(f"nst batch: {output} blocked: {reason}")
    if len(blocked) > most:
        log(f"nst batch: … and {len(blocked) - most} more blocked (manifest.jsonl has each reason)")


def execute(args, weights, tasks, todo, manifest, outdir, need, backend):
    # run `todo` (weights: the --weights file for the workers, or None), then one manifest row per
    # task and the contact sheet, whatever happened
    from .engine import WriteFailed
    previous_sigterm = signal.signal(signal.SIGTERM, signal.default_int_handler)   # SIGTERM = Ctrl-C
    full = False
    try:
        interrupted = on_cluster(args, weights, todo, manifest, outdir, need, backend) if todo else False
    except KeyboardInterrupt:
        interrupted = True
    except WriteFailed as e:                        # OUTDIR takes no more: the tasks left are not run (exit 1)
        log(f"nst batch: error: {e}; the pictures made are kept in {outdir}: {e.hint} and run the "
            "same command again to go on")
        interrupted = full = True
    finally:
        signal.signal(signal.SIGTERM, previous_sigterm)
        if manifest.rows or manifest.previous:      # nothing ended and nothing before: nothing to write
            rows, sheet = write_results(manifest, tasks, outdir)
    if not (manifest.rows or manifest.previous):
        log("nst batch: stopped before any task ended")
        return 130
    if rows is None:
        return 130 if interrupted and not full else 1
    status = report(tasks, rows, interrupted, outdir, sheet)
    return 1 if full else status


def write_results(manifest, tasks, outdir):
    # the manifest and the contact sheet -> (rows, sheet path); a disk that refuses them (full) is
    # one line each, and the pictures written so far stay -> (None, None) or (rows, None)
    from . import results
    if manifest.unwritable:
        log(f"nst batch: warning: could not append to {manifest.path} ({manifest.unwritable}); writing it whole")
    try:
        rows = manifest.finish(tasks)
    except OSError as e:
        log(f"nst batch: error: cannot write {manifest.path} ({why_not_written(e)}); the pictures made are in {outdir}")
        return None, None
    try:
        return rows, results.contact_sheet(outdir, tasks, {t.output: rows[t.output]["status"] for t in tasks}, log)
    except OSError as e:
        log(f"nst batch: warning: cannot write the contact sheet in {outdir} ({why_not_written(e)})")
        return rows, None


def on_cluster(args, weights, todo, manifest, outdir, need, backend):
    # start or reach the cluster, run the tasks, a manifest row and a picture as each ends
    # -> True when Ctrl-C stopped it
    from nst.cli.options import checkpoint_every_of
    from nst.run.warned import say_returned
    from nst.io.image import ImageError, save_image
    from . import engine, results
    layout = None if args.scheduler else engine.local_layout(len(todo), need, backend, args.workers, args.threads)
    if layout and not layout.fits:
        raise MemoryError(f"one task needs about {gib(need)} but this machine has less free; "
                          "try a smaller --size (nst batch --dry-run shows the estimate)")
    with engine.connect(args.scheduler, layout) as client:
        if args.scheduler:
            engine.wait_for_workers(client, lambda m: log(f"nst batch: {m}"))
        layout = layout or engine.cluster_layout(client, need)
        log(f"nst batch: {layout.where}")
        link = engine.dashboard(client)
        if link:
            log(f"nst batch: dashboard {link}")
        if weights:
            client.register_plugin(weights, name=weights.name)
        options = {"checkpoint_dir": str(Path(args.checkpoint_dir).resolve()) if args.checkpoint_dir else None,
                   "checkpoint_every": checkpoint_every_of(args), "weights_sha": weights.sha if weights else None,
                   "debug": args.debug}                 # NumPy's overflow warnings said too, as by nst transfer's
        progress = Progress(len(todo), unit="task")

        def on_end(task, result):
            image, trace = result.pop("image", None), result.pop("traceback", None)
            manifest.append(results.row_of(task, result))           # the row first: the picture is ours
            if result.get("resumed_at"):            # its worker's log says so, which its user never sees
                progress.message(f"nst batch: {task.output}: resumed from its checkpoint at iteration "
                                 f"{result['resumed_at']}")
            for warning in result.get("warnings", []):          # raised on its worker: said once a task
                say_returned(f"{task.output}: {warning}")
            try:
                if image is not None:
                    save_image(image, outdir / task.output, warn_scale=False)
                    manifest.record_picture(task.output)
            except (OSError, ImageError) as e:  # the run stops, or this task alone fails (engine)
                result.update(status="failed", error=engine.cannot_write(outdir / task.output, e))
                manifest.append(results.row_of(task, result))
                engine.stop_if_outdir_refuses(outdir / task.output, e)
            if result["status"] != "done":
                progress.message((trace if args.debug and trace else "")
                                 + f"nst batch: {task.output} failed: {result['error']}")
        try:
            return engine.run_tasks(client, todo, read_inputs, options, on_end, progress)
        finally:
            progress.close()
            if weights and args.scheduler:
                client.unregister_worker_plugin(weights.name)


def report(tasks, rows, interrupted, outdir, sheet):
    # the summary line -> exit status: 130 interrupted, 1 a task failed, else 0
    counts = {s: sum(rows[t.output]["status"] == s for t in tasks) for s in ("done", "failed", "cancelled")}
    log(f"nst batch: {counts['done']} done, {counts['failed']} failed"
        + (f", {counts['cancelled']} not run (interrupted; run the same command again to go on)" if interrupted else "")
        + f"; {outdir / 'manifest.jsonl'}" + (f", {sheet}" if sheet else ""))
    return 130 if interrupted else 1 if counts["failed"] else 0


def read_inputs(task):
    # the task's input files as bytes: they travel with the task
    return {p: Path(p).read_bytes() for p in task.files}


def describe(tasks):
    # "2 contents × 3 styles × sw 3 values"
    axes = [t.axes() for t in tasks]
    parts = []
    for i, (name, _) in enumerate(axes[0]):
        n = len({a[i][1] for a in axes})
        parts.append(counted(n, name) if name in ("content", "style") else f"{name} {n} values")
    return " × ".join(parts)


def dry_run(args, tasks, todo, blocked, need, backend, one, shapes):
    # the tasks, one task's memory, the contact sheet's (shapes: {path: (H, W)}, the inputs'), where they run
    from . import engine, plan, results
    to_run = {t.output for t in todo}
    for t in tasks:
        state = "blocked" if t.output in blocked else "to run" if t.output in to_run else "done"
        sweep = " ".join(f"{k}={plan.fmt_value(v)}" for k, v in t.sweep)
        print(f"{state:<8} {t.output}  {t.content}  {', '.join(t.styles)}  {sweep}".rstrip())
    print(f"one task: {one}")
    print(f"contact sheet: {results.sheet_memory(tasks, shapes)} in this process")
    if args.scheduler:
        with engine.connect(args.scheduler) as client:
            print(f"at once: {engine.cluster_layout(client, need).where}")
    else:
        print(f"at once: {engine.local_layout(max(1, len(todo)), need, backend, args.workers, args.threads).where}")
    return 0
