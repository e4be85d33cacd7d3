"""Run controls from another thread: pause, resume and stop.

A Run with `controls` set asks them at every iteration boundary (Run.stopping): while paused it
waits there. A stop asked here is the same as the first Ctrl-C (Run.stop_requested), seen before
every evaluation of J (and tile of one): the unfinished iteration is dropped, so the image and the
checkpoint hold the last whole iteration. The live page
(nst.web) sets them; any other front end may.
"""
import threading

POLL_S = 0.1              # how often a paused run looks at its own stop flag (a signal sets that)


class Controls:
    def __init__(self):
        self._running = threading.Event()
        self._running.set()
        self.stop_requested = False
        self.on_idle = None         # called at every poll while paused (a page may want a picture)

    @property
    def paused(self):
        return not self._running.is_set()

    def pause(self):
        self._running.clear()

    def resume(self):
        self._running.set()

    def stop(self):
        # stop at the next evaluation (Run.abandon_if_stopped); a paused run wakes up to stop
        self.stop_requested = True
        self._running.set()

    def hold(self, stopped=lambda: False):
        # block while paused, until resumed, stop() or stopped() (a signal's flag) -> stop asked
        while not self._running.wait(POLL_S):
            if stopped():
                break
            if self.on_idle:
                self.on_idle()
        return self.stop_requested
