"""`nst serve`'s side of a run on a Dask worker: the run's channel posted to the server.

A LiveLink travels with the task (nst.batch.task.run_task's options["live"]); on the worker it
keeps a Channel as `--web` does, and a thread posts what is new (the points, and the latest image
only while a page watches) to the server at most every POST_EVERY_S, plain HTTP with the standard
library. The server's answer carries the pages' wishes back: how many watch, the panels, pause,
stop. The run never waits on it: a slow or absent server only delays the page. A server gone for
LOST_S stops the run (it keeps its checkpoint, and the gallery can resume it).
"""
import json
import threading
import time
import urllib.error
import urllib.request

from nst.web.channel import Channel, Publisher, clean_wanted

POST_EVERY_S = 0.25
LOST_S = 60.0
WORKER_HEADER, TOKEN_HEADER = "X-NST-Worker", "X-NST-Token"


class LiveLink:
    def __init__(self, url, worker_key, token, run_id, title=""):
        self.url, self.worker_key, self.token, self.run_id, self.title = url, worker_key, token, run_id, title

    def __getstate__(self):
        return {k: getattr(self, k) for k in ("url", "worker_key", "token", "run_id", "title")}

    def start(self, run):
        self.channel = Channel({"title": self.title})
        self.publisher = Publisher(self.channel)
        self.publisher.attach(run)
        self.wake, self.closed = threading.Event(), False
        self.channel.listeners["poster"] = self.wake.set
        self.thread = threading.Thread(target=self._post_loop, name="nst-live-link", daemon=True)
        self.thread.start()

    def on_iteration(self, run, it, terms):
        self.publisher.on_iteration(run, it, terms)

    def close(self, state):
        self.channel.set_state(state)
        self.closed = True
        self.wake.set()
        self.thread.join(timeout=10)

    def _post_loop(self):
        sent_points, sent_seq, last_ok = 0, -1, time.monotonic()
        while True:
            self.wake.wait(POST_EVERY_S)
            self.wake.clear()
            final = self.closed
            msg, n, seq = self.channel.message(sent_points, sent_seq)
            try:
                self.apply(self.post(msg))
                sent_points, sent_seq, last_ok = n, seq, time.monotonic()
            except (OSError, ValueError):                    # the server is busy, restarting or gone
                if time.monotonic() - last_ok > LOST_S:
                    self.channel.controls.stop()
            if final:
                return
            time.sleep(POST_EVERY_S)

    def post(self, msg):
        headers = {"Content-Type": "application/json", WORKER_HEADER: self.worker_key}
        if self.token:
            headers[TOKEN_HEADER] = self.token
        request = urllib.request.Request(f"{self.url}/api/publish/{self.run_id}", json.dumps(msg).encode(),
                                         headers, method="POST")
        with urllib.request.urlopen(request, timeout=10) as r:
            return json.loads(r.read())

    def apply(self, reply):
        # the pages' wishes, as the server has them
        ch = self.channel
        wanted = reply.get("wanted")
        with ch.lock:
            ch.watchers = {"server": clean_wanted(wanted, ch.info)} if wanted is not None else {}
        if reply.get("stop"):
            ch.controls.stop()
        elif reply.get("paused"):
            ch.controls.pause()
        else:
            ch.controls.resume()
