"""One run as its pages see it, shared between the run's thread and the server's.

The run side (Publisher.on_iteration) appends each iteration's terms to `points` (the curves:
all of them, a few floats each) and puts the current image, and the panels the pages ask for,
into `snapshot`: a latest-value slot, so a page that is slower than the run skips images instead
of queueing them, and a page that comes mid-iteration gets the last one at once. Without a page
the run keeps only what makes its picture (nst.run.run.Run.output_later: x on its device, by
reference): the picture is brought to the host, made 8-bit and encoded only when a page
is sent it, on the server's thread; the panels (a forward pass) are made only while a page
watches. The page side reads them (Channel.message) and sets what it wants (watch) and the
controls (pause, resume, stop: nst.controls).
"""
import base64
import io
import resource
import threading
import time

from nst.io.image import to_uint8
from nst.run.controls import Controls
from nst.web import panels as panel_maps

JPEG_QUALITY = 85
THUMB_SIDE = 512             # px: a gallery card's picture (nst serve), at most this a side: twice the
                             # card's 160 CSS px high frame (up to 256 wide), sharp on a 2× screen
NO_PANELS = {"gram": None, "grad": False, "features": False}


def jpeg_bytes(img):
    # H×W×3 uint8 (nst.io.image.to_uint8), or a PIL image -> JPEG bytes
    from PIL import Image
    buf = io.BytesIO()
    (img if isinstance(img, Image.Image) else Image.fromarray(img, "RGB")).save(buf, "JPEG", quality=JPEG_QUALITY)
    return buf.getvalue()


def jpeg_base64(img):
    # H×W×3 uint8 (to_uint8), or a PIL image -> base64 JPEG
    return base64.b64encode(jpeg_bytes(img)).decode("ascii")


def small(picture):
    # a PIL image (a JPEG decoded at 1/2, 1/4 or 1/8 scale where that is enough) -> RGB, at most
    # THUMB_SIDE px a side, its aspect kept
    picture.draft("RGB", (THUMB_SIDE, THUMB_SIDE))
    picture = picture.convert("RGB")
    picture.thumbnail((THUMB_SIDE, THUMB_SIDE))
    return picture


def thumbnail_base64(img):
    # H×W×3 uint8 -> base64 JPEG at most THUMB_SIDE px a side
    from PIL import Image
    return jpeg_base64(small(Image.fromarray(img, "RGB")))


def peak_rss():
    # bytes: this process's peak resident memory (Linux reports KiB)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class Snapshot:
    """One iteration's picture and panels. `picture` makes the picture (Run.output_later) only when
    first asked: its 8-bit pixels are made once (pixels), encoded once by the first page that sends
    them (encode), made small once when nst serve's gallery asks (thumbnail: nst.web.link). `it`:
    the iteration it shows. A server's snapshot comes encoded (a worker's post)."""

    def __init__(self, seq, picture=None, panels=None, encoded=None, it=None):
        self.seq, self.picture, self.panels, self.it = seq, picture, panels or {}, it
        self.encoded = encoded                  # {"image": base64 JPEG, "panels": {...}} once made
        self.image = None                       # H×W×3 uint8, once made
        self.thumb = None                       # base64 JPEG, THUMB_SIDE px, once made
        self.lock = threading.RLock()

    def pixels(self):
        # -> the picture as H×W×3 uint8 (made now on the first call, the arrays it came from let go),
        # or None without one: also once the run has moved on from where it was (Adam wrote into x
        # since: Run.output_later), a newer snapshot then on its way
        with self.lock:
            if self.image is None and self.picture is not None:
                made, self.picture = self.picture(), None
                self.image = None if made is None else to_uint8(made)
            return self.image

    def thumbnail(self):
        # -> the picture's thumbnail (base64 JPEG), or None without a picture
        with self.lock:
            if self.thumb is None and self.pixels() is not None:
                self.thumb = thumbnail_base64(self.image)
            return self.thumb

    def encode(self):
        # -> {"image": base64 JPEG or None, "panels": {...}}; the pixels stay for the thumbnail
        with self.lock:
            if self.encoded is None:
                image = self.pixels()
                self.encoded = {"image": None if image is None else jpeg_base64(image),
                                "panels": panel_maps.render(self.panels)}
                self.panels = None
            return self.encoded


class Channel:
    def __init__(self, info=None, state="starting"):
        self.lock = threading.Lock()
        self.info = dict(info or {})            # sizes, iterations, total, layers, title
        self.points = []                        # [{"it", "scale", "terms", "layers"}] every iteration
        self.status = {"state": state}          # it, scale, s_per_it, eta_s, peak_bytes, state
        self.snapshot = Snapshot(0)
        self.watchers = {}                      # page id -> the panels it asked for (wanted() checks them)
        self.listeners = {}                     # page id -> callable: wakes that page's sender
        self.controls = Controls()
        self.thumb = None                       # nst serve: (iteration, JPEG bytes), its gallery card's picture
        self.closed = False                     # the run's process is ending: pages get a last message

    def close(self):
        self.closed = True
        self.notify()

    # -- the pages -------------------------------------------------------------------------------
    def watch(self, page, wanted, wake):
        with self.lock:
            self.watchers[page], self.listeners[page] = wanted if isinstance(wanted, dict) else {}, wake
        self.notify()

    def unwatch(self, page):
        with self.lock:
            self.watchers.pop(page, None)
            self.listeners.pop(page, None)

    def wanted(self):
        # the panels any watching page shows (None: no page watches); each page's request is kept as
        # sent and checked here, so one made before the run attached (no style layers yet) counts after
        with self.lock:
            pages = [clean_wanted(w, self.info) for w in self.watchers.values()]
        if not pages:
            return None
        gram = [w["gram"] for w in pages if w["gram"]]
        return {"gram": gram[-1] if gram else None, "grad": any(w["grad"] for w in pages),
                "features": any(w["features"] for w in pages)}

    def notify(self):
        for wake in list(self.listeners.values()):
            wake()

    def message(self, since_points, since_seq, images=True):
        # -> (what a page has not seen yet, points sent, snapshot sent); the image only if newer,
        # and only if `images` (a worker posts it only while the server's pages watch)
        with self.lock:
            points, snap = self.points[since_points:], self.snapshot
            status = {**self.status, "paused": self.controls.paused, "stopping": self.controls.stop_requested,
                      "viewers": len(self.watchers)}
            n = len(self.points)
        msg = {"status": status, "points": points}
        if since_points == 0:
            msg["info"] = self.info
        if not images or snap.seq == since_seq:
            return msg, n, since_seq
        msg.update(snap.encode())
        return msg, n, snap.seq

    # -- the run -----------------------------------------------------------------------------------
    def update(self, points=(), status=None, snapshot=None, info=None):
        # the run's news; the pages are woken only when there is some (an idle or paused run's
        # worker posts the same status several times a second)
        with self.lock:
            before = (dict(self.status), dict(self.info))
            self.points.extend(points)
            if status:
                self.status.update(status)
            if info:
                self.info.update(info)
            if snapshot is not None:
                snapshot.seq = self.snapshot.seq + 1
                self.snapshot = snapshot
            news = bool(points) or snapshot is not None or (self.status, self.info) != before
        if news:
            self.notify()

    def set_state(self, state, **more):
        self.update(status={"state": state, **more})

    def set_thumbnail(self, it, jpeg):
        # nst serve: a worker's thumbnail (JPEG bytes) of the run's picture at iteration `it`, for its
        # gallery card (its URL's version: a resumed run's pictures come at later iterations)
        with self.lock:
            self.thumb = (it, jpeg)


def clean_wanted(wanted, info):
    # a page's panel request -> {"gram": a style layer or None, "grad": bool, "features": bool}
    wanted = wanted if isinstance(wanted, dict) else {}
    layer = wanted.get("gram")
    return {"gram": layer if layer in info.get("style_layers", ()) else None,
            "grad": wanted.get("grad") is True, "features": wanted.get("features") is True}


class Publisher:
    """The run side: `on_iteration` after each iteration (without a page: a point and what makes
    the picture, Run.output_later), `attach` once."""

    PANEL_EVERY_S = 0.25          # panels cost a forward pass: at most this often

    def __init__(self, channel):
        self.channel = channel
        self.run = None
        self.mark = self.start_it = None  # when the run's working time was last counted; its first iteration
        self.busy = 0.0               # seconds the run has worked since attach (not those paused)
        self.panel_time = float("-inf")    # perf_counter() of the last panels: none yet (the clock starts at boot)
        self.seen = None              # the panels last captured (a request the throttle skipped is not:
                                      # a paused run's refresh makes it)

    def attach(self, run):
        # the run's shape, its history so far (a resume), and the controls
        self.run, s = run, run.settings
        total = sum(run.caps)                                  # at most (the automatic schedule may stop a scale early)
        ends = [sum(run.caps[:k + 1]) for k in range(len(run.caps))]
        past = [{"it": i + 1, "scale": min(sum(i >= e for e in ends), len(run.sizes) - 1),
                 "terms": terms, "layers": layers}
                for i, (terms, layers) in enumerate(zip(run.history, run.layer_history))]
        info = {"sizes": run.sizes, "iterations": s.iterations, "total": total,
                "style_layers": list(s.style_layers), "content_layers": list(s.content_layers)}
        self.channel.info.update(info)
        self.channel.update(points=past, status={"state": "running", "it": len(run.history), "total": total})
        run.controls = self.channel.controls
        run.controls.on_idle = lambda: self.refresh(run)
        self.mark, self.start_it = time.perf_counter(), len(run.history)

    def on_iteration(self, run, it, terms):
        layers = run.layer_history[-1] if run.layer_history else {}     # on the host already (Run.run_scale)
        now = time.perf_counter()
        self.busy, self.mark = self.busy + now - self.mark, now
        rate = self.busy / max(it - self.start_it, 1)
        total = self.channel.info["total"]
        status = {"state": "running", "it": it, "scale": run.scale, "size": run.sizes[run.scale],
                  "s_per_it": rate, "eta_s": rate * (total - it), "peak_bytes": peak_rss(), "terms": terms,
                  "stopped_early": run.early_stop_note()}
        point = {"it": it, "scale": run.scale, "terms": terms, "layers": layers}
        self.channel.update(points=[point], status=status, snapshot=self.capture(run))

    def finish(self, state, **more):
        # the run's end as its pages see it, with why L-BFGS ended scales early (the last one's stop
        # comes after the last iteration's on_iteration)
        note = self.run.early_stop_note() if self.run else ""
        self.channel.set_state(state, **({"stopped_early": note} if note else {}), **more)

    def capture(self, run, force_panels=False):
        # -> a Snapshot of the picture (made only if a page asks: Run.output_later) and of the panels
        # a watching page asks for (none without a page: one that comes later gets the picture at
        # once, its panels at the next capture)
        picture = run.output_later()
        if picture is None:
            return None
        wanted, panels, now = self.channel.wanted(), {}, time.perf_counter()
        if wanted == NO_PANELS:
            self.seen = wanted
        elif wanted is not None and (force_panels or now - self.panel_time >= self.PANEL_EVERY_S):
            panels, self.panel_time, self.seen = panel_maps.compute(run, wanted), now, wanted
        return Snapshot(0, picture, panels, it=len(run.history))

    def refresh(self, run):
        # while paused (each poll): a page that came or asked for other panels gets them now; the
        # time paused is not the run's (s/it and the ETA after a pause were those of the pause)
        self.mark = time.perf_counter()
        wanted = self.channel.wanted()
        if wanted is not None and (wanted != self.seen or self.channel.snapshot.seq == 0):
            snap = self.capture(run, force_panels=True)
            if snap is not None:
                self.channel.update(snapshot=snap)
