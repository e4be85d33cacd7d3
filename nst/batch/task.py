"""What runs on a worker: one Task, through the same nst.run.job.Job as `nst transfer`.

The task's input bytes arrive with it and are written to a scratch folder on the worker; the
--weights file is put on every worker once by a plugin (workers that join later get it too). So
the workers share no filesystem with the client; the picture goes back as an H×W×3 uint8 array.
With a --checkpoint-dir the workers can see, the run saves its state there every N iterations
and a retried task (its worker died) continues from it instead of starting over.
"""
import functools
import logging
import os
import socket
import tempfile
import time
import traceback
import warnings
from pathlib import Path

from distributed import get_worker
from distributed.diagnostics.plugin import WorkerPlugin

from nst.run.warned import task_warnings
from nst.io import checkpoint, destinations
from nst.io.assets import atomic_path
from nst.io.destinations import why_not_written
from nst.io.image import AnimationWarning, to_uint8
from nst.optim import NonFiniteLoss
from nst.run.job import Job, Outputs
from nst.run.run import Run
from nst.run.settings import Settings

LOG = logging.getLogger("nst.batch")


def weights_path(folder, sha):
    return Path(folder) / f"nst-weights-{sha[:16]}.h5"


class WeightsFile(WorkerPlugin):
    """The --weights file, written once into every worker's local folder."""

    def __init__(self, data, sha):
        self.data, self.sha = data, sha
        self.name = f"nst-weights-{sha[:16]}"

    def setup(self, worker):
        path = weights_path(worker.local_directory, self.sha)
        if not path.exists():
            with atomic_path(path) as tmp:
                tmp.write_bytes(self.data)

    def teardown(self, worker):
        weights_path(worker.local_directory, self.sha).unlink(missing_ok=True)


def checkpoint_path(folder, key, digest):
    # one checkpoint per task (its key) and digest: a changed input or setting never resumes an old state
    return Path(folder) / f"{key}.{digest[:16]}.npz" if folder else None


def run_task(task, blobs, options):
    # on a worker: {given path: bytes} -> {"status": "done", "image": H×W×3 uint8, "terms", ...}
    # or {"status": "failed", "error": one line}, with "warnings": [one line] when the run raised
    # any (a scope of its own, nst.run.warned.task_warnings: the client says them, naming the task); options:
    # checkpoint_dir, checkpoint_every, weights_sha, debug (--debug: NumPy's overflow warnings too)
    start = time.perf_counter()
    worker = get_worker()
    row = {"worker": worker.address, "host": socket.gethostname()}
    with tempfile.TemporaryDirectory(prefix="nst-task-", dir=worker.local_directory) as tmp, \
            task_warnings(options.get("debug"), unsaid=AnimationWarning) as said:  # the batch's check said it
        files = {}
        for i, (given, data) in enumerate(blobs.items()):
            files[given] = Path(tmp) / f"{i}-{Path(given).name}"
            files[given].write_bytes(data)
        try:
            row.update(transfer(task, files, options, worker.local_directory))
        except Exception as e:                  # bad input or a bug: this task fails, the batch goes on
            row.update(status="failed", error=one_line(e, files), error_type=type(e).__name__,
                       traceback=traceback.format_exc())          # shown by --debug, kept out of the manifest
        row.update(warnings_field(said, files))
    return {**row, "seconds": round(time.perf_counter() - start, 3)}


def warnings_field(said, files):
    # a task's warnings (task_warnings' Said) -> its row's {"warnings": [one line each]}, or {} for none
    warned = [one_line(m, files) for m in said.messages]
    return {"warnings": warned} if warned else {}


def transfer(task, files, options, local_dir):
    # the run itself, through the same Job as `nst transfer`, on local copies of the files
    settings = dict(task.settings)
    if task.init:
        settings["init"] = str(files[task.init])
    if options.get("weights_sha"):
        settings["weights"] = str(weights_path(local_dir, options["weights_sha"]))
    ckpt = checkpoint_path(options.get("checkpoint_dir"), task.key, task.digest)
    live = options.get("live")          # nst serve's page (nst.web.link): progress out, Stop and Pause in
    outputs = Outputs(checkpoint=ckpt, checkpoint_every=options["checkpoint_every"], progress=False,
                      web=bool(live))       # what the page holds, counted in the memory check

    def new_job():
        job = Job(files[task.content], [files[p] for p in task.styles], Settings.from_dict(settings),
                  outputs, LOG.info, identity={"digest": task.digest}, warn=warnings.warn,   # back with the result
                  run_type=functools.partial(Run, keep_weights=True))    # the weights prepared once a worker
        job.prepare()
        return job
    job = new_job()
    resumed_at = resume(job, ckpt)
    if resumed_at is None:                         # a damaged checkpoint: start over
        job, resumed_at = new_job(), 0
    if live:
        live.start(job.run)
    try:
        image, status = job.optimise(live.on_iteration if live else None)
    finally:
        if live:
            live.close("stopped" if job.run.interrupted else "done")
    if status:
        raise NonFiniteLoss(job.error)
    run = job.run
    stopped = bool(run.interrupted and run.history)    # stopped from the page: resumable from its checkpoint
    if ckpt and stopped:                           # as nst transfer's: a file of the user's there is kept
        job.write("--checkpoint", lambda: job.save_checkpoint(run))
    elif ckpt:
        remove_checkpoint(ckpt)
    early = run.early_stop_note()                  # why L-BFGS ended scales early: the gallery card says it
    return {"status": "stopped" if stopped else "done", "image": None if image is None else to_uint8(image),
            "terms": run.history[-1] if run.history else {}, "iterations": len(run.history), "resumed_at": resumed_at,
            **({"stopped_early": early} if early else {})}


def remove_checkpoint(ckpt):
    # a finished task's checkpoint removed; where its folder is no folder this worker can use (a file,
    # no permission: the run went on without checkpoints, nst.run.job.Writer) there is none to remove,
    # and a file of the user's at its name (no checkpoint: resume() started over) stays. What is not
    # removed is a warning: back with the task's result (run_task), said naming the task
    if destinations.not_nsts("--checkpoint", ckpt):
        warnings.warn(f"{ckpt}: not removed (nst did not write it)", stacklevel=2)
        return
    try:
        ckpt.unlink(missing_ok=True)
    except OSError as e:
        if os.path.exists(ckpt):
            warnings.warn(f"{ckpt}: not removed ({why_not_written(e)})", stacklevel=2)


def resume(job, ckpt):
    # continue from this task's checkpoint when an earlier try left one -> iterations done before,
    # or None for a damaged one (the run may then be half restored)
    if not (ckpt and ckpt.exists()):
        return 0
    try:                                # its identity: the task's digest and the automatic rules
        job.resume(ckpt, named=f"its checkpoint {ckpt}")
    except checkpoint.CheckpointError as e:          # a warning, as remove_checkpoint's
        warnings.warn(f"{e.reason}: starting over", stacklevel=2)
        return None
    return len(job.run.history)


def one_line(error, files):
    # the error's first line, with the worker's scratch copies named as the user gave them
    text = (str(error).strip().splitlines() or [type(error).__name__])[0]
    for given, local in files.items():
        text = text.replace(str(local), given)
    return text
