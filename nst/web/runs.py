"""`nst serve`'s runs: a bounded queue in front of nst.batch's Dask engine, one Channel per run,
and OUTDIR's manifest.jsonl (nst.batch.results: `nst batch` rows show in the gallery too).

A thread holds the Dask client (a LocalCluster, or --scheduler's cluster) and the futures; the
server's handlers only hand it tasks. A run's task is nst.batch.task.run_task with a LiveLink
(nst.web.link): its worker posts progress to the server and takes Stop and Pause back. When a
run ends its row goes into the manifest and its picture (the image so far, when stopped) beside
it; a stopped run keeps its checkpoint in OUTDIR/checkpoints, so the gallery can resume it.
"""
import logging
import queue
import threading
import time
from pathlib import Path

from nst.batch import results
from nst.batch.plan import Task, digest_of
from nst.web.channel import Channel
from nst.web.server import Service
from nst.web.uploads import Refused

LOG = logging.getLogger("nst.serve")
GRACE_S = 120.0             # on shutdown: how long running runs get to stop and checkpoint
ENDED = ("done", "failed", "stopped", "cancelled")


class Runs(Service):
    def __init__(self, outdir, limit, connect, options, link):
        self.outdir, self.limit, self.connect, self.options, self.link = Path(outdir), limit, connect, options, link
        self.channels, self.active = {}, {}           # run name -> Channel; -> (Task, extra row fields)
        self.inbox, self.lock = queue.Queue(), threading.Lock()
        self.manifest = results.Manifest(self.outdir)
        self.ready, self.closing, self.error = threading.Event(), False, None
        self.thread = threading.Thread(target=self._engine, name="nst-serve-engine", daemon=True)

    # -- the server's side -------------------------------------------------------------------------
    def submit(self, task, extra):
        # queue a run -> its Channel; Refused (429) when `limit` runs are queued or running
        with self.lock:
            if self.closing:
                raise Refused(503, "the server is stopping")
            if len(self.active) >= self.limit:
                raise Refused(429, f"the queue is full: {len(self.active)} runs are queued or running "
                                   f"(nst serve --queue {self.limit}); start this one when one has finished")
            channel = self.channels[task.key] = Channel({"title": extra.get("title", task.key)}, state="queued")
            self.active[task.key] = (task, extra)
        self.inbox.put(task.key)
        return channel

    def rows(self):
        # every run: the manifest's rows, and the runs queued or running now, newest first
        rows = results.read_manifest(self.outdir)
        with self.lock:
            for key, (task, extra) in self.active.items():
                rows[task.output] = {**results.row_of(task, extra), "status": self.channels[key].status["state"]}
        for row in rows.values():
            channel = self.channels.get(Path(row["output"]).stem)
            row["live"] = channel is not None
        return sorted(rows.values(), key=lambda r: r.get("finished") or "~", reverse=True)

    def shutdown(self, grace=GRACE_S):
        # stop every run at its next iteration (checkpointed), wait for them, close the cluster
        with self.lock:
            self.closing = True
            channels = [self.channels[k] for k in self.active]
        for ch in channels:
            ch.controls.stop()
        self.grace_until = time.monotonic() + grace
        self.thread.join(grace + 30)

    # -- the engine thread ----------------------------------------------------------------------
    def _engine(self):
        try:
            with self.connect() as client:
                self.ready.set()
                self._loop(client)
        except Exception as e:  # noqa: BLE001  the cluster failed: the server says so and stops
            LOG.error("nst serve: the Dask engine stopped: %s", e)
            self.error = e
            self.ready.set()

    def _loop(self, client):
        from distributed import wait

        from nst.batch.engine import outcome
        from nst.batch.task import run_task
        futures = {}
        while True:
            while not self.inbox.empty():
                key = self.inbox.get()
                task, extra = self.active[key]
                if self.closing:
                    self._end(task, {"status": "cancelled", "error": "the server stopped before it ran"})
                    continue
                blobs = {p: Path(p).read_bytes() for p in task.files}
                options = {**self.options, "live": self.link(task.key, extra.get("title", ""))}
                futures[client.submit(run_task, task, blobs, options, key=f"nst-serve-{task.key}", pure=False)] = task
            if self.closing and not futures:
                return
            if futures:
                try:
                    wait(list(futures), timeout=0.25, return_when="FIRST_COMPLETED")
                except TimeoutError:
                    pass
            else:
                time.sleep(0.1)
            for f in [f for f in futures if f.done()]:
                task = futures.pop(f)
                self._end(task, outcome(f) if f.status != "cancelled" else
                          {"status": "cancelled", "error": "stopped before it started"})
            for f, task in list(futures.items()):      # Stop on a run still queued: cancel it
                ch = self.channels[task.key]
                late = self.closing and time.monotonic() > self.grace_until
                if ch.controls.stop_requested and (ch.status["state"] == "queued" or late):
                    f.cancel()

    def _end(self, task, result):
        # the row first, then the picture (as nst batch); the channel tells its pages
        from nst.io.image import save_image
        image, trace = result.pop("image", None), result.pop("traceback", None)
        if trace:
            LOG.info("%s failed:\n%s", task.output, trace)
        with self.lock:
            _, extra = self.active.pop(task.key)
        self.manifest.append(results.row_of(task, {**extra, **result}))
        if image is not None:
            try:
                save_image(image, self.outdir / task.output)
            except OSError as e:
                LOG.error("%s: not written (%s)", task.output, e)
        self.channels[task.key].set_state(result["status"], error=result.get("error"))


def make_task(key, content, styles, settings, shas):
    # a run (its Settings) as a nst.batch Task: the digest over its input files' hashes and settings
    settings = settings.as_dict()
    side = {"init": settings["init"], "weights": shas.get("weights")}
    digest = digest_of({"content": shas[content], "styles": [shas[s] for s in styles], **side},
                       {k: v for k, v in settings.items() if k not in side})
    return Task(key, str(content), tuple(str(s) for s in styles), dict(settings), (), digest)
