"""`nst serve`'s side of a run on a Dask worker: the run's channel posted to the server.

A LiveLink travels with the task (nst.batch.task.run_task's options["live"]); on the worker it
keeps a Channel as `--web` does, and a thread posts what is new (the points, and the latest image
only while a page watches: a page that comes mid-iteration gets the last iteration's image a
post or two later; and a small thumbnail of it, at most every THUMB_EVERY_S, only while the
server's gallery is open) to the server as it comes, at most every POST_EVERY_S (a quick run's
iterations go together), plain HTTP with the standard library; with nothing new it posts every
POST_EVERY_S all the same. The server's answer carries the pages' wishes back: the panels, and
whether a gallery is open. Pause and
stop come by a second thread's long poll, which the server answers as soon as a page asks them
(nst.web.app.App.await_controls): the run acts on them at its next iteration boundary (or
evaluation), not after its next post. The run never waits on either: a slow or absent server
only delays the page. A server gone for LOST_S stops the run (it keeps its checkpoint, and the
gallery can resume it).
"""
import json
import threading
import time
import urllib.error
import urllib.request

from nst.web.channel import Channel, Publisher, clean_wanted

POST_EVERY_S = 0.25
THUMB_EVERY_S = 2.0           # a gallery card's picture: the gallery asks for its rows every 2 s (app.js)
LOST_S = 60.0
CONTROLS_WAIT_S = 40.0        # the long poll's own timeout: the server answers within CONTROLS_HOLD_S (20)
WORKER_HEADER, TOKEN_HEADER = "X-NST-Worker", "X-NST-Token"


class LiveLink:
    def __init__(self, url, worker_key, token, run_id, title=""):
        self.url, self.worker_key, self.token, self.run_id, self.title = url, worker_key, token, run_id, title

    def __getstate__(self):
        return {k: getattr(self, k) for k in ("url", "worker_key", "token", "run_id", "title")}

    def start(self, run):
        self.channel = Channel({"title": self.title})
        self.publisher = Publisher(self.channel)
        self.wake, self.closed = threading.Event(), threading.Event()
        self.gallery, self.thumb_sent = False, (-1, float("-inf"))     # a gallery is open; (snapshot, when) sent
        self.channel.listeners["poster"] = self.wake.set     # before attach: its state is posted at once
        self.publisher.attach(run)
        self.thread = threading.Thread(target=self._post_loop, name="nst-live-link", daemon=True)
        self.thread.start()
        threading.Thread(target=self._controls_loop, name="nst-live-controls", daemon=True).start()

    def on_iteration(self, run, it, terms):
        self.publisher.on_iteration(run, it, terms)

    def close(self, state):
        self.publisher.finish(state)
        self.closed.set()
        self.wake.set()
        self.thread.join(timeout=10)

    def _post_loop(self):
        # what is new, posted as soon as the run says so; the next post waits POST_EVERY_S only after
        # one that carried news (points or an image): a wait after every post, the empty ones too,
        # held an iteration back by up to POST_EVERY_S, so the page showed the one before
        sent_points, sent_seq, last_ok = 0, -1, time.monotonic()
        while True:
            self.wake.wait(POST_EVERY_S)
            self.wake.clear()
            final = self.closed.is_set()
            msg, n, seq = self.channel.message(sent_points, sent_seq, images=self.channel.wanted() is not None)
            thumb = self.thumbnail()
            if thumb:
                msg["thumb"], msg["thumb_it"] = thumb[1], thumb[2]
            try:
                self.apply(self.post(msg))
                sent_points, sent_seq, last_ok = n, seq, time.monotonic()
                self.thumb_sent = (thumb[0], last_ok) if thumb else self.thumb_sent
            except (OSError, ValueError):                    # the server is busy, restarting or gone
                if time.monotonic() - last_ok > LOST_S:
                    self.channel.controls.stop()
            if final:
                return
            if msg["points"] or msg.get("image"):
                self.closed.wait(POST_EVERY_S)               # the run's end is posted at once

    def thumbnail(self):
        # -> (snapshot seq, base64 JPEG, the iteration it shows) of the latest image for the gallery's
        # card, or None: only while a gallery is open, at most every THUMB_EVERY_S, once per image
        snap, (seq, when) = self.channel.snapshot, self.thumb_sent
        if not self.gallery or snap.seq == seq or time.monotonic() - when < THUMB_EVERY_S:
            return None
        thumb = snap.thumbnail()
        return (snap.seq, thumb, snap.it) if thumb else None

    def _controls_loop(self):
        # the run's pause and stop, each as soon as the server has it: the server answers when they
        # differ from its last answer; asked again at once, or after a second when the server does
        # not answer (the post loop counts LOST_S); over once the run, or the server's, has ended
        known = {"paused": False, "stop": False}
        while not self.closed.is_set():
            try:
                reply = self.post(known, "controls", CONTROLS_WAIT_S)
            except (OSError, ValueError):
                time.sleep(1.0)
                continue
            if reply.pop("ended", False):
                return
            self.apply_controls(reply)
            known = reply

    def post(self, msg, route="publish", timeout=10):
        # msg as JSON to the server's /api/ROUTE/<run> -> its JSON answer
        headers = {"Content-Type": "application/json", WORKER_HEADER: self.worker_key}
        if self.token:
            headers[TOKEN_HEADER] = self.token
        request = urllib.request.Request(f"{self.url}/api/{route}/{self.run_id}", json.dumps(msg).encode(),
                                         headers, method="POST")
        with urllib.request.urlopen(request, timeout=timeout) as r:
            return json.loads(r.read())

    def apply(self, reply):
        # a post's answer {"wanted", "stop", "gallery"}: the pages' panels as the server has them,
        # whether its gallery is open (thumbnails wanted), and a stop (a
        # long poll under way may have asked before it); no pause: pause and resume come only by the
        # long poll, as an answer to an older post would undo a newer Pause
        ch = self.channel
        wanted = reply.get("wanted")
        with ch.lock:
            ch.watchers = {"server": clean_wanted(wanted, ch.info)} if wanted is not None else {}
        self.gallery = reply.get("gallery") is True
        if reply.get("stop"):
            ch.controls.stop()

    def apply_controls(self, reply):
        # the long poll's answer: {"paused", "stop"} as the server has them
        controls = self.channel.controls
        if reply.get("stop"):
            controls.stop()
        elif reply.get("paused"):
            controls.pause()
        else:
            controls.resume()
