"""`nst batch`'s checks before the first task: options that disagree, --checkpoint-dir, --weights,
every input picture (readable, large enough at every setting) and one task's memory
(nst.memory's estimate, over every setting of the batch)."""
import contextlib
import json
import os
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image

from nst import memory
from nst.io.image import SAVE_FORMATS
from nst.memory import gib
from nst.library import counted
from nst.run.progress import Progress, log

DECODING_THREADS = 8      # input pictures decoded at once by the checks (each holds its decoded pixels)


def check_options(args):
    # options that disagree, each refused in one line before any work
    from nst.io.destinations import RunRefused
    from nst.batch.plan import check_sweeps
    from nst.cli.options import checkpoint_every_of
    checkpoint_every_of(args, "--checkpoint-dir")
    if args.style_blend:
        raise RunRefused("--style-blend: nst batch runs each style on its own (blend with nst transfer)")
    if not args.output.strip():
        raise RunRefused("-o is empty: give the folder for the pictures, e.g. -o styled/")
    if Path(args.output).suffix.lower() in SAVE_FORMATS and not os.path.lexists(args.output):
        raise RunRefused(f"-o {args.output} names a picture; nst batch writes a folder of them: give a folder, "
                         f"e.g. -o {Path(args.output).with_suffix('')}/")
    check_sweeps(args.sweep)
    check_cluster_options(args)


def check_cluster_options(args):
    # --scheduler (reached and answering as a Dask scheduler, in seconds, not Dask's minutes:
    # nst.batch.scheduler) and the local cluster's --workers/--threads, not both (nst batch, video)
    from nst.io.destinations import RunRefused
    from nst.batch.scheduler import check_address
    if args.scheduler is not None and (args.workers or args.threads):
        raise RunRefused("--workers and --threads size the local cluster; with --scheduler its workers decide")
    if args.scheduler is not None:
        args.scheduler = check_address(args.scheduler)


def check_workers(workers, need, backend, unit="task"):
    # --workers W: up to W tasks (a unit: "task", nst video's "frame") run at once, `need` bytes each:
    # W·need must fit in the free memory (--workers 100000 started 100000 processes); on cupy one
    # worker runs (local_layout)
    from nst.io.destinations import RunRefused
    free = memory.available(backend)
    fit = free // max(need, 1)
    if workers and backend != "cupy" and workers > max(fit, 1):
        raise RunRefused(f"--workers {workers}: each runs a {unit} of about {gib(need)} at once, and "
                         f"{gib(free)} is free: at most --workers {max(fit, 1)}")


def check_destinations(args):
    # OUTDIR (a folder this machine can write, its manifest and contact sheet nst's) and
    # --checkpoint-dir, before anything is read or fetched; plan.check_outdir adds the tasks' names
    from nst.batch.outdir import check_folder, check_own_files
    check_folder(args.output)
    check_own_files(args.output)
    check_checkpoint_dir(args)


def check_checkpoint_dir(args):
    # --checkpoint-dir: a folder (or none yet) this machine can write, checked before the first task
    # (an existing cluster's workers may see another filesystem: a task that cannot write goes on
    # without checkpoints)
    from nst.io.destinations import RunRefused, check_writable_folder
    if args.checkpoint_dir is not None:
        if not args.checkpoint_dir.strip():
            raise RunRefused("--checkpoint-dir is empty: give a folder every worker can write")
        if not args.scheduler:
            check_writable_folder("--checkpoint-dir", args.checkpoint_dir)


def read_weights(path, local):
    # -> the --weights file for the workers (nst.batch.task.WeightsFile: its bytes and their sha256,
    # the tasks' digests count it), read once and checked from those bytes to be a readable VGG19
    # before any task, its errors naming the file as the user gave it; None for the default, which a
    # local cluster's workers read from this machine's cache (fetched if missing, checked here) and
    # a remote cluster's from their own (nst batch, nst video, nst serve)
    from nst import weights
    from nst.io.assets import sha256_bytes
    from nst.batch.task import WeightsFile
    if not path:
        if local:
            weights.read(None, log, layers=())
        return None
    data = weights.read_bytes(path, log)
    weights.read(path, log, layers=(), data=data)
    return WeightsFile(data, sha256_bytes(data))


def check_inputs(todo):
    # -> {path: (H, W)} of every content and style the tasks to run read (the --init picture is read
    # before: nst.batch.plan.inputs), each checked to be one nst can read (decoded here, not
    # converted: nst.io.image.image_shape, an ImageError naming the file) and
    # large enough at each task's settings for the deepest layer (nst.run.checks.check_shapes,
    # `nst transfer`'s check); `nst transfer`'s warnings before a run said as it says them, before
    # any work (the tasks' runs then only log them on their workers): a content upscaled a lot once
    # per content and size, a --tile that multiplies the work once per line it says (warn_tile)
    from nst.batch.plan import fmt_value
    from nst.io.destinations import RunRefused
    from nst.run.checks import check_shapes, upscale_warning
    from nst.run.run import scale_sides
    from nst.run.settings import Settings
    shapes = input_shapes(list(dict.fromkeys(p for t in todo for p in [t.content, *t.styles])))
    checked, warned = set(), set()
    for t in todo:
        key = (shapes[t.content], tuple(shapes[s] for s in t.styles), json.dumps(t.settings, sort_keys=True))
        if key in checked:
            continue
        checked.add(key)
        settings = Settings.from_dict(t.settings)
        sides = scale_sides(shapes[t.content], settings)
        upscaled = upscale_warning(shapes[t.content], sides[-1])
        if upscaled and (t.content, sides[-1]) not in warned:
            warned.add((t.content, sides[-1]))
            log(f"nst batch: warning: {t.content}: {upscaled}")
        try:
            check_shapes(shapes[t.content], key[1], sides, settings)
        except RunRefused as e:
            sweep = " ".join(f"{k.replace('_', '-')}={fmt_value(v)}" for k, v in t.sweep)
            raise RunRefused(f"{t.content} with {', '.join(t.styles)}{f' at --sweep {sweep}' if sweep else ''}: "
                             f"{e}") from None
        warn_tile(t, shapes, settings, warned)
    return shapes


def warn_tile(task, shapes, settings, warned):
    # a --tile whose halos make the task's evaluations many times an untiled one's work said, naming its
    # content (nst.run.checks.tile_warning: its rule and words), each line once, checked once per setting
    # and content shape (the factor follows the content's shape: one Run for many contents of one shape)
    # (`warned`: the lines said and the settings and shapes checked)
    from nst.run.checks import tile_warning
    from nst.run.run import Run
    checked = (json.dumps(task.settings, sort_keys=True), shapes[task.content])
    if checked in warned:
        return
    warned.add(checked)
    tiled = tile_warning(Run(blank(shapes[task.content]), [blank(shapes[s]) for s in task.styles], settings, log),
                         settings.tile)
    if tiled and tiled not in warned:
        warned.add(tiled)
        log(f"nst batch: warning: {task.content}: {tiled}")


class DecodeBudget:
    """The bytes the decodes in flight hold together, kept within `free` (the free memory when the
    checks began, before any of them allocated): a decode that would pass it waits for others to end;
    one that needs more than `free` alone runs by itself (nst.io.image then refuses it)."""

    def __init__(self, free):
        self.free, self.held, self.changed = free, 0, threading.Condition()

    @contextlib.contextmanager
    def holding(self, need):
        with self.changed:
            self.changed.wait_for(lambda: not self.held or self.held + need <= self.free)
            self.held += need
        try:
            yield
        finally:
            with self.changed:
                self.held -= need
                self.changed.notify_all()


def input_shapes(paths):
    # [path] -> {path: (H, W)} (nst.io.image.image_shape: each file decoded whole, its header read
    # once), up to DECODING_THREADS at a time (Pillow lets go of the GIL while it decodes) and as many
    # as fit in the free memory together (DecodeBudget: each checked alone, several big ones would not), with a
    # progress line: hundreds of photos take a while. The error is that of the first bad file in
    # `paths`' order
    from nst.batch.engine import cores
    from nst.io import image
    if not paths:
        return {}
    log(f"nst batch: reading {counted(len(paths), 'input picture')} to check them")
    progress, shapes, budget = Progress(len(paths), unit="picture"), {}, DecodeBudget(memory.available("numpy"))

    pool = ThreadPoolExecutor(min(len(paths), cores(), DECODING_THREADS), thread_name_prefix="nst-check")
    # the threads' own catch_warnings (nst.io.image.opened) interleave: each may restore a list
    # without another's filter. Every list they restore descends from this one, which restores all
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            decoded = pool.map(lambda p: image.image_shape(p, budget.holding), paths)
            for path, shape in zip(paths, decoded):                 # in order: the first error
                shapes[path] = shape
                progress.update(len(shapes))
        finally:
            pool.shutdown(cancel_futures=True)
            progress.close()
    return shapes


def check_fits(todo, need, backend, args):
    # one task fits in this machine's free memory (nst.memory's estimate), before anything is written
    from nst.batch import engine
    if not engine.local_layout(len(todo), need, backend, args.workers, args.threads).fits:
        raise MemoryError(f"one task needs about {gib(need)} but {gib(memory.available(backend))} is free; "
                          "try a smaller --size (nst batch --dry-run shows the estimate)")


def task_memory(tasks, shapes=None):
    # -> (bytes, backend, text): the largest estimate (nst.memory) over the tasks, each at its own
    # settings and its pictures' shapes (shapes: {path: (H, W)}, input_shapes'; a task without them,
    # as nst serve's default: a square content at --size, the most pixels a longest side allows), in
    # tiles where --tile says (auto: those the worker's run picks when the whole picture does not
    # fit); validates every setting
    from nst.run.checks import auto_tile
    from nst.run.run import Run
    from nst.run.settings import Settings
    shapes = shapes or {}
    square = (16, 16)                                # only the aspect counts: --size sets the side
    worst, seen = (0, "numpy", ""), set()
    for t in tasks:
        content = shapes.get(getattr(t, "content", None), square)
        styles = tuple(shapes.get(p, square) for p in getattr(t, "styles", [None]))
        key = (json.dumps(t.settings, sort_keys=True), content, styles)
        if key in seen:
            continue
        seen.add(key)
        run = Run(blank(content), [blank(hw) for hw in styles], Settings.from_dict(t.settings), log)
        backend = run.objective_backend().name
        tile = auto_tile(run, memory.available(backend)) if run.settings.tile == "auto" else run.settings.tile
        parts, (h, w) = run.memory_estimate(tile=tile)
        tiles = f", tiles of {tile} px" if tile and tile < max(h, w) else ""
        if parts["total"] >= worst[0]:
            worst = (parts["total"], backend, f"up to {gib(parts['total'])} ({w}×{h} on {backend}{tiles}, "
                                               f"scales {' → '.join(map(str, run.sizes))})")
    return worst


def blank(hw):
    # an H×W×3 picture of zeros that holds no memory (one value, broadcast): its shape is what counts
    import numpy as np
    return np.broadcast_to(np.zeros((), np.float32), (*hw, 3))
