"""Running tasks on Dask distributed: an embedded LocalCluster, or an existing cluster's scheduler.

LocalCluster sizing: W worker processes of one task each, K kernel threads per worker, with
W = min(cores, tasks, tasks of the estimated size that fit in the free memory) and K = ⌊cores / W⌋,
so W·K ≤ cores. K reaches the kernels through NUMBA_NUM_THREADS (Numba's pool and nst's sgemm
threads) and OMP_NUM_THREADS, set in each worker process before it imports Numba (Dask's
nanny.environ), and through a BLAS limit the worker plugin sets (NumPy's BLAS is loaded before
that). Never through nanny.pre-spawn-environ: the nanny runs in our process and would set them in
our own environment while the cluster lives, and Numba rereads NUMBA_NUM_THREADS at every compile
("Cannot set NUMBA_NUM_THREADS ... once the threads have been launched" in `nst serve`). One
GPU (the cupy backend) gets one worker; several GPUs: start dask-cuda's LocalCUDACluster and use
--scheduler. Processes, not threads: one task per process keeps each run's thread pools apart,
and a worker that dies (out of memory, killed) takes only its own task down: the scheduler
retries it elsewhere, up to ALLOWED_FAILURES times, then the task is recorded as failed.
"""
import contextlib
import errno
import logging
import os
import signal
import threading
from dataclasses import dataclass
from pathlib import Path

from distributed.diagnostics.plugin import WorkerPlugin

from nst.io.destinations import RunRefused, why_not_written
from nst.library import counted
from ..memory import available, gib

ALLOWED_FAILURES = 3           # worker deaths a task may be part of before it counts as failed
WORKER_WAIT = 30.0             # seconds --scheduler's cluster gets to show a worker before the batch gives up
WORKER_VARIABLES = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS")     # set in a worker before it imports Numba
BLAS_VARIABLES = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")     # read as NumPy loads: a worker plugin sets K
THREAD_VARIABLES = WORKER_VARIABLES + BLAS_VARIABLES
NANNY_SETS = ("PYTHONHASHSEED", "__DASK_PARENT_PID")   # the nanny sets these in our process too: put back at close


class WriteFailed(Exception):
    """OUTDIR can take no more outputs (full, or it takes no file): the run stops, what was written
    stays. str: the file and why; hint: what to do before the same command goes on."""

    def __init__(self, path, error):
        super().__init__(cannot_write(path, error))
        self.hint = "free some space" if error.errno in FULL else f"make {Path(path).parent} writable"


FULL = (errno.ENOSPC, errno.EDQUOT)     # no output after this one could be written either


def cannot_write(path, error):
    # "cannot write out/a.png (No space left on device)": the one line of an output not written
    # (an FFmpeg error's first line, its name where it says nothing)
    return f"cannot write {path} ({why_not_written(error)})"


def stop_if_outdir_refuses(path, error):
    # an error writing `path` in OUTDIR (nst batch's pictures, nst video's frames) -> WriteFailed
    # when no output after it could be written either: the disk or quota is full, or OUTDIR takes no
    # file any more (read-only, its permissions changed: assets.probe_write); else the error was
    # this file's alone (an I/O error on it, a folder or a file of the user's made at its name: an
    # ImageError): its task or frame fails and the run goes on
    from nst.io import assets
    if getattr(error, "errno", None) in FULL:
        raise WriteFailed(path, error) from None
    try:
        assets.probe_write(Path(path).parent)
    except OSError:
        raise WriteFailed(path, error) from None


@dataclass
class Layout:
    workers: int               # worker processes, one task at a time each
    threads: int               # kernel threads per worker
    where: str                 # what runs at once, where
    fits: bool = True          # one task fits in the free memory


def cores():
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def local_layout(n_tasks, task_bytes, backend, workers=None, threads=None):
    # -> Layout of the LocalCluster: W·K ≤ cores and W tasks fit in the free memory (module doc)
    n, free = cores(), available(backend)
    fit = free // max(task_bytes, 1)
    w = 1 if backend == "cupy" else workers or max(1, min(n, fit, n_tasks))
    k = threads or max(1, n // w)
    where = (f"{counted(w, 'worker process', 'worker processes')} × 1 task, {counted(k, 'kernel thread')} "
             f"each, on this machine ({counted(n, 'core')}, {gib(free)} free"
             f"{' on the GPU' if backend == 'cupy' else ''}: "
             + (f"{counted(fit, 'such task')} {'fits' if fit == 1 else 'fit'})" if fit else "one task does NOT fit)"))
    if w * k > n:
        where += f"; {w}×{k} threads oversubscribe the {counted(n, 'core')}"
    return Layout(w, k, where, fit >= 1)


def cluster_layout(client, task_bytes):
    # -> Layout of an existing cluster, as its scheduler reports it
    workers = client.scheduler_info()["workers"]
    threads = sum(w["nthreads"] for w in workers.values())
    short = lambda w: w.get("memory_limit") and w["memory_limit"] < task_bytes * w["nthreads"]
    lines = [f"  {addr}: {counted(w['nthreads'], 'task')} at once, memory limit "
             f"{gib(w['memory_limit']) if w.get('memory_limit') else 'none'}"
             + ("  (less than its tasks need)" if short(w) else "") for addr, w in workers.items()]
    where = (f"{counted(len(workers), 'worker')}, {counted(threads, 'task')} "
             f"at once, at {client.scheduler.address}")
    return Layout(len(workers), threads, "\n".join([where, *lines]))


def wait_for_workers(client, log, seconds=None):
    # returns once the cluster has a worker; RunRefused after `seconds` (WORKER_WAIT) without one
    seconds = WORKER_WAIT if seconds is None else seconds
    if client.scheduler_info()["workers"]:
        return
    address = client.scheduler.address
    log(f"the scheduler at {address} has no workers; waiting up to {seconds:g} s for one")
    try:
        client.wait_for_workers(1, timeout=seconds)
    except TimeoutError:
        raise RunRefused(f"--scheduler {address}: the scheduler has no workers (none joined in {seconds:g} s); "
                         f"start one where the tasks should run: dask worker {address}") from None


@contextlib.contextmanager
def connect(scheduler, layout=None):
    # -> a dask Client: to the scheduler at `scheduler`, or to a new LocalCluster sized by layout
    import dask
    from distributed import Client, LocalCluster
    logging.getLogger("distributed").setLevel(logging.CRITICAL)   # nst reports each task's end itself
    if scheduler:
        try:
            client = Client(scheduler, timeout="10s")     # the address was checked (nst.batch.scheduler)
        except OSError as e:                      # refused, timed out, no such host
            raise RunRefused(f"--scheduler {scheduler}: {e}; is the scheduler running there?") from None
        with client:
            yield client
        return
    config = {"distributed.nanny.pre-spawn-environ": spawn_environ(),
              "distributed.nanny.environ": {**dask.config.get("distributed.nanny.environ"),
                                            **{v: str(layout.threads) for v in WORKER_VARIABLES}},
              "distributed.scheduler.allowed-failures": ALLOWED_FAILURES,
              "distributed.scheduler.worker-saturation": 1.0}
    saved = {k: os.environ.get(k) for k in [*config["distributed.nanny.pre-spawn-environ"], *NANNY_SETS]}
    try:
        with dask.config.set(config), contextlib.ExitStack() as stack:
            with interrupts_after():                  # a cluster half started cannot be closed cleanly
                cluster = stack.enter_context(LocalCluster(n_workers=layout.workers, threads_per_worker=1,
                                                           processes=True, dashboard_address=":0",
                                                           silence_logs=logging.CRITICAL))
                client = stack.enter_context(Client(cluster))
                client.register_plugin(LocalWorker(layout.threads), name="nst-local-worker")
            yield client
    finally:
        restore(saved)


@contextlib.contextmanager
def interrupts_after():
    # a context: Ctrl-C (or SIGTERM) while it runs is raised as KeyboardInterrupt when it ends, so
    # whatever it started is whole and can be closed (or, when a Ctrl-C to the process group
    # stopped a worker starting, the cluster has closed itself: that error gives way to the
    # interrupt); a second one is raised at once. Only in the
    # main thread (where signals land; `nst serve` connects from another, whose Ctrl-C is its own)
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []

    def hold(signum, frame):
        # the first signal waits for the context's end, a second one interrupts at once
        if caught:
            raise KeyboardInterrupt
        caught.append(signum)
    previous, error = {s: signal.signal(s, hold) for s in (signal.SIGINT, signal.SIGTERM)}, None
    try:
        yield
    except Exception as e:        # after a Ctrl-C: a worker's start it stopped (a terminal's reaches them too)
        error = e
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if caught:
        signal.raise_signal(caught[0])          # as it came: the previous handler decides (Ctrl-C raises)
    if error:
        raise error


def spawn_environ():
    # -> Dask's pre-spawn variables less the thread counts: the nanny sets these in our own process
    # too (whatever we give it), so only Dask's own (MALLOC_TRIM_THRESHOLD_) stay
    import dask
    return {k: v for k, v in dask.config.get("distributed.nanny.pre-spawn-environ").items()
            if k not in THREAD_VARIABLES}


def restore(saved):
    # put the variables `saved` ({name: value or None}) back into os.environ as they were
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


class LocalWorker(WorkerPlugin):
    """A local worker: Ctrl-C left to the client (which stops the batch, then closes the workers),
    BLAS at the layout's K threads unless the user's environment sets its own count."""

    def __init__(self, threads):
        self.threads = threads

    def setup(self, worker):
        from threadpoolctl import OpenBLASController, threadpool_limits
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if not any(v in os.environ for v in BLAS_VARIABLES):
            threadpool_limits(self.threads, user_api="blas")
            OpenBLASController.clear_controlling_thread()      # the tasks' threads may limit it again


def dashboard(client):
    # Dask's dashboard link, or None when the scheduler serves none (it needs bokeh there)
    has_bokeh = client.run_on_scheduler(lambda: __import__("importlib.util").util.find_spec("bokeh") is not None)
    return client.dashboard_link if has_bokeh and "dashboard" in client.scheduler_info().get("services", {}) else None


def task_detail(done, failed, running):
    # " tasks: 2 done, 1 failed, 1 running" for the batch's progress line (nst.run.progress)
    return f": {done} done, {failed} failed, {running} running"


def run_tasks(client, tasks, read, options, on_end, progress):
    # Submit tasks keeping one per worker thread in flight (input bytes are read as they go);
    # on_end(task, result) as each ends. Ctrl-C cancels the rest -> True when interrupted.
    from distributed import wait

    from .task import run_task
    queue, flying, counts = list(reversed(tasks)), {}, {"done": 0, "failed": 0}
    try:
        while queue or flying:
            slots = max(1, sum(w["nthreads"] for w in client.scheduler_info()["workers"].values()))
            while queue and len(flying) < slots:
                t = queue.pop()
                flying[client.submit(run_task, t, read(t), options, key=f"nst-{t.key}-{t.digest[:12]}",
                                     pure=False)] = t
            with contextlib.suppress(TimeoutError):
                wait(list(flying), timeout=1.0, return_when="FIRST_COMPLETED")
            for f in [f for f in flying if f.done()]:
                result = outcome(f)
                counts["done" if result["status"] == "done" else "failed"] += 1
                on_end(flying.pop(f), result)
                f.release()
            busy = {k for keys in client.processing().values() for k in keys}
            progress.update(counts["done"] + counts["failed"],
                            task_detail(counts["done"], counts["failed"], sum(f.key in busy for f in flying)))
    except KeyboardInterrupt:
        client.cancel(list(flying))
        return True
    except WriteFailed:
        client.cancel(list(flying))
        raise
    return False


def outcome(future):
    # a finished future -> what run_task returned; an errored one (its worker died too often, or
    # the scheduler gave up on it) -> a failed result with a one-line reason
    from distributed import KilledWorker
    if future.status == "finished":
        return future.result()
    try:
        error = future.exception()
    except Exception as e:                       # cancelled by the scheduler
        error = e
    if isinstance(error, KilledWorker):
        reason = (f"its worker died each time it ran ({ALLOWED_FAILURES + 1} tries on a LocalCluster); "
                  "see the worker logs")
    else:
        from .task import one_line
        reason = one_line(error, {})
    return {"status": "failed", "error": reason, "error_type": type(error).__name__}
