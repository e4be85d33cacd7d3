"""`nst serve`'s runs: a bounded queue in front of nst.batch's Dask engine, one Channel per run,
and OUTDIR's manifest.jsonl (nst.batch.results: `nst batch` rows show in the gallery too).

A thread holds the Dask client (a LocalCluster, or --scheduler's cluster) and the futures; the
server's handlers only hand it tasks. A run's task is nst.batch.task.run_task with a LiveLink
(nst.web.link): its worker posts progress to the server and takes Stop and Pause back. When a
run ends its row goes into the manifest and its picture (the image so far, when stopped) beside
it, never over a file nst did not write (nst.batch.outdir, as for nst batch: the run fails then); a
stopped run keeps its checkpoint in OUTDIR/checkpoints, so the gallery can resume it.
"""
import contextlib
import logging
import os
import queue
import secrets
import tempfile
import threading
import time
from concurrent.futures import CancelledError
from pathlib import Path

from nst.batch import results
from nst.batch.outdir import picture_blocked, unreplaceable
from nst.batch.plan import Task, digest_of
from nst.io.destinations import why_not_written
from nst.run.progress import log
from nst.web.channel import Channel
from nst.web.form import queue_full, shown_paths
from nst.web.rows import shown_files
from nst.web.server import Service
from nst.web.uploads import Refused

LOG = logging.getLogger("nst.serve")
GRACE_S = 120.0             # on shutdown: how long running runs get to stop and checkpoint
ENDED = ("done", "failed", "stopped", "cancelled")
KEEP_ENDED = 50             # ended runs whose live page (points, last image) stays in memory; older
                            # ones keep their gallery row only (a long-running server grew with each run)


class Runs(Service):
    def __init__(self, outdir, limit, connect, options, link):
        self.outdir, self.limit, self.connect, self.options, self.link = Path(outdir), limit, connect, options, link
        self.channels, self.active = {}, {}           # run name -> Channel; -> (Task, extra row fields)
        self.ended = 0                                # runs ended (left `active`) since the start
        self.inbox, self.lock = queue.Queue(), threading.Lock()
        self.unrecorded = {}                          # output -> the row of a run whose append failed (disk full)
        self.ready, self.closing, self.error = threading.Event(), False, None
        self.thread = threading.Thread(target=self._engine, name="nst-serve-engine", daemon=True)

    # -- the server's side -------------------------------------------------------------------------
    def submit(self, task, extra):
        # queue a run -> its Channel; Refused (429) when `limit` runs are queued or running, (409)
        # when a run of that name is
        with self.lock:
            if self.closing:
                raise Refused(503, "the server is stopping")
            if task.key in self.active:
                raise Refused(409, "it is running")
            if len(self.active) >= self.limit:
                raise queue_full(len(self.active), self.limit)
            info = {"title": extra.get("title", task.key), "warnings": extra.get("warnings") or []}   # its live page's
            channel = self.channels[task.key] = Channel(info, state="queued")
            self.active[task.key] = (task, extra)
        self.inbox.put(task.key)
        return channel

    def blocked(self, output):
        # why OUTDIR/output may not be written (a file that is not nst's picture of that run, as
        # nst batch decides: nst.batch.outdir.picture_blocked; or one that cannot be replaced), or None
        path = self.outdir / output
        return picture_blocked(path, results.read_manifest(self.outdir).get(output)) or unreplaceable(path)

    def manifest_files(self):
        # the input files of the manifest's rows (reads the manifest: off the event loop)
        rows = [*results.read_manifest(self.outdir).values(), *dict(self.unrecorded).values()]
        return {f for row in rows for f in [row.get("content"), *(row.get("style") or [])]}

    def active_files(self):
        # -> (the input files of the runs queued or running, how many runs have ended so far), one
        # moment's (no I/O): a run leaves `active` only once its row is in the manifest
        with self.lock:
            return {f for task, _ in self.active.values() for f in task.files}, self.ended

    def rows(self):
        # every run, as the pages get it (no path of the server's: rows.shown_files): the runs queued
        # or running, the last queued first, not finished yet, with their iterations so far of at
        # most `total`, then the manifest's, the last finished first
        ended = results.read_manifest(self.outdir)
        with self.lock:
            ended.update(self.unrecorded)
            active = [self.active_row(key) for key in reversed(self.active)]
        for row in active:
            ended.pop(row["output"], None)
        rows = active + sorted(ended.values(), key=lambda r: r.get("finished") or "", reverse=True)
        for row in rows:
            row["live"] = Path(row["output"]).stem in self.channels
            if row.get("error"):
                row["error"] = self.shown(row["error"])
        return [shown_files(row, self.outdir) for row in rows]

    def active_row(self, key):
        # the row of a run queued or running (under self.lock), from its channel; "thumb": the
        # iteration its card's latest picture shows (None: none yet); "stopped_early": where L-BFGS
        # ended a scale before its count, and why (when it has)
        (task, extra), channel = self.active[key], self.channels[key]
        early = channel.status.get("stopped_early")
        return {**results.row_of(task, extra), "status": channel.status["state"], "finished": None,
                "iterations": channel.status.get("it"), "total": channel.info.get("total"),
                "paused": channel.controls.paused, "thumb": channel.thumb[0] if channel.thumb else None,
                **({"stopped_early": early} if early else {})}

    def shutdown(self, grace=GRACE_S):
        # stop every run at its next iteration (checkpointed), wait for them, close the cluster
        with self.lock:
            self.closing = True
            channels = [self.channels[k] for k in self.active]
        for ch in channels:
            ch.controls.stop()
            ch.notify()                   # the workers' long polls answer now (App.await_controls)
        self.grace_until = time.monotonic() + grace
        self.thread.join(grace + 30)

    # -- the engine thread ----------------------------------------------------------------------
    def _engine(self):
        try:
            with self.connect() as client:
                self.ready.set()
                self._loop(client)
        except Exception as e:  # noqa: BLE001  the cluster failed: the server says so and stops
            if self.ready.is_set():           # before, start() raises it: the command prints it once
                LOG.error("nst serve: the Dask engine stopped: %s", e)
            self.error = e
            self.ready.set()

    def _loop(self, client):
        futures = {}                # Dask future -> Task, each queued or running; none kept once ended
        while True:
            self._submit_new(client, futures)
            if self.closing and not futures:
                return
            self._wait(futures)
            self._end_finished(futures)
            self._cancel_stopped(futures)

    def _submit_new(self, client, futures):
        # the inbox's runs to Dask, each under a key of its own: a resumed run is a new computation,
        # never the cached result of its earlier one
        from nst.batch.task import run_task
        while not self.inbox.empty():
            task, extra = self.active[self.inbox.get()]
            if self.closing:
                self._end(task, {"status": "cancelled", "error": "the server stopped before it ran"})
                continue
            blobs = {p: Path(p).read_bytes() for p in task.files}
            options = {**self.options, "live": self.link(task.key, extra.get("title", ""))}
            key = f"nst-serve-{task.key}-{secrets.token_hex(6)}"
            futures[client.submit(run_task, task, blobs, options, key=key, pure=False)] = task

    @staticmethod
    def _wait(futures):
        # until a run ends, or a quarter of a second; a future cancelled elsewhere (the scheduler)
        # makes wait() raise: _end_finished ends it
        from distributed import wait
        if not futures:
            time.sleep(0.1)
            return
        with contextlib.suppress(TimeoutError, CancelledError):
            wait(list(futures), timeout=0.25, return_when="FIRST_COMPLETED")

    def _end_finished(self, futures):
        # each run Dask has finished or cancelled: its row and picture; its future let go
        from nst.batch.engine import outcome
        for future in [f for f in futures if f.done()]:
            task = futures.pop(future)
            result = (outcome(future) if not future.cancelled() else
                      {"status": "cancelled", "error": "cancelled by the Dask scheduler"})
            future.release()
            self._end(task, result)

    def _cancel_stopped(self, futures):
        # Stop on a run still queued, or on any once the shutdown's grace is over: its future
        # cancelled and let go, the run ended here (cancelled: no picture, no checkpoint)
        late = self.closing and time.monotonic() > self.grace_until
        for future, task in list(futures.items()):
            ch = self.channels[task.key]
            queued = ch.status["state"] == "queued"
            if not ch.controls.stop_requested or not (queued or late) or future.done():
                continue
            del futures[future]
            future.cancel()
            future.release()
            self._end(task, {"status": "cancelled", "error": "stopped before it started" if queued else
                             "the server stopped it: it did not stop in time"})

    def _end(self, task, result):
        # the run's row, and its picture (_save); a file that is not nst's picture of this run
        # (self.blocked) is never replaced: the run fails instead; the channel tells its pages
        image, trace = result.pop("image", None), result.pop("traceback", None)
        if trace:
            LOG.info("%s failed:\n%s", task.output, trace)
        with self.lock:
            _, extra = self.active[task.key]
        reason = self.blocked(task.output) if image is not None else None
        if reason:
            image, result = None, {**result, "status": "failed", "error": reason}
        row = results.row_of(task, {**extra, **result, **self.warned(task, extra, result)})
        if image is None:
            self.record(row)
        else:
            row = self._save(image, row)
        with self.lock:                   # only once its row is written: the gallery always shows it
            self.active.pop(task.key)
            self.ended += 1
            channel = self.channels[task.key] = self.channels.pop(task.key)      # the most recent last
        channel.set_state(row["status"], error=row.get("error") and self.shown(row["error"]))
        self.forget_old()

    def warned(self, task, extra, result):
        # -> {"warnings": the run's check's, then those its task raised on its worker} or {}; each of
        # the task's new ones said on stderr and on its live page, as the check's are (nst.web.app)
        said = extra.get("warnings") or []
        new = [self.shown(m) for m in result.get("warnings", []) if self.shown(m) not in said]
        say_warnings(task.key, new)
        if new:
            self.channels[task.key].update(info={"warnings": [*said, *new]})
        return {"warnings": [*said, *new]} if said or new else {}

    def forget_old(self):
        # the channels of ended runs beyond the KEEP_ENDED that ended last, let go (a page already
        # open keeps its own; a new one gets "no live run of that name", the gallery the row)
        with self.lock:
            ended = [k for k in self.channels if k not in self.active]
            for key in ended[:max(0, len(ended) - KEEP_ENDED)]:
                del self.channels[key]

    def shown(self, error):
        # an error as the pages show it: the server's folder as OUTDIR, as the refusals name it
        return shown_paths(str(error), {}, self.outdir)

    def _save(self, image, row):
        # the picture made under a temporary name in OUTDIR, its row appended with the picture's
        # sha256 (which tells nst's picture from a file put there later: nst.batch.outdir), then the
        # picture renamed to its name: the row first, as nst batch -> the row as written last
        from nst.io.assets import sha256_file
        from nst.io.image import save_image
        try:
            self.outdir.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(prefix=".nst-", dir=self.outdir) as tmp:
                made = save_image(image, Path(tmp) / "picture.png", warn_scale=False)
                row = {**row, "sha256": sha256_file(made)}
                results.append_row(self.outdir / results.MANIFEST, row)
                os.replace(made, self.outdir / row["output"])
        except OSError as e:
            LOG.error("%s: not written (%s)", row["output"], e)
            row = {k: v for k, v in row.items() if k != "sha256"}
            row.update(status="failed", error=f"{row['output']}: not written ({why_not_written(e)})")
            self.record(row)
        return row

    def record(self, row):
        # the row appended to OUTDIR's manifest; one the disk refuses (full, read-only) is kept for
        # the gallery meanwhile, and every later run's row tried again (a failed append stopped them all)
        try:
            results.append_row(self.outdir / results.MANIFEST, row)
            with self.lock:
                self.unrecorded.pop(row["output"], None)
        except OSError as e:
            LOG.error("%s: its row not written in %s (%s)", row["output"], results.MANIFEST, e)
            with self.lock:
                self.unrecorded[row["output"]] = row


def make_task(key, content, styles, settings, shas):
    # a run (its Settings) as a nst.batch Task: the digest over its input files' hashes and settings
    settings = settings.as_dict()
    side = {"init": settings["init"], "weights": shas.get("weights")}
    digest = digest_of({"content": shas[content], "styles": [shas[s] for s in styles], **side},
                       {k: v for k, v in settings.items() if k not in side})
    return Task(key, str(content), tuple(str(s) for s in styles), dict(settings), (), digest)


def say_warnings(key, warnings):
    # a served run's warnings on the server's stderr, a line each naming the run (its card and live
    # page show them from its row and its channel)
    for warning in warnings:
        log(f"nst: warning: {key}: {warning}")
