"""`nst serve`'s server: the routes nst.web.serve lists, on aiohttp, Ctrl-C stopping the runs with
their checkpoints. Every refusal (uploads.Refused) is a JSON {"error": one line} with a 4xx status.
"""
import asyncio
import base64
import contextlib
import functools
import hmac
import json
import os
import secrets
import signal
import socket
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

from aiohttp import web

from nst.batch import results
from nst.batch.checks import read_weights
from nst.batch.outdir import check_folder, check_manifest, not_the_picture
from nst.batch.scheduler import check_address
from nst.cli.options import checkpoint_every_of
from nst.io.destinations import RunRefused, check_writable_folder, not_nsts, why_not_written
from nst.io.hold import hold_outdir
from nst.run.progress import log
from nst.run.settings import DEFAULTS
from nst.web import uploads
from nst.web.channel import Snapshot
from nst.web.form import (MAX_STYLES, check_run, form_options, input_names, read_form, request_warnings,
                          setting_options, settings_from, shown_paths)
from nst.web.link import WORKER_HEADER, LiveLink
from nst.web.rows import inputs_of, score, settings_of_row, sha_of, unresumable
from nst.web.runs import ENDED, Runs, make_task, say_warnings
from nst.web.server import (add_static_routes, cannot_listen, control, feed, guard, is_local, new_token, static_file,
                            url_of)
from nst.web.thumbs import Thumbnails, card_answer
from nst.web.uploads import Refused

MAX_BODY = 64 * 2**20          # a worker's post (the latest image as JPEG) or a small form
PICTURE_STATES = ("done", "stopped")
SUBFOLDERS = ("uploads", "checkpoints")      # in OUTDIR: the uploaded images, the runs' checkpoints
CONTROLS_HOLD_S = 20.0         # a worker's long poll for its run's controls (nst.web.link) is answered by then
GALLERY_OPEN_S = 10.0          # a gallery asked for its rows this recently (every 2 s: app.js): it is open,
                               # the workers post thumbnails of their runs for its cards


def controls_of(channel):
    # the run's controls as its worker gets them
    return {"paused": channel.controls.paused, "stop": channel.controls.stop_requested}


class App:
    def __init__(self, args):
        # args checked (serve: check_options) before anything is made
        self.args, self.host, self.backend = args, args.host, args.backend
        self.outdir = Path(args.outdir).resolve()
        self.uploads, self.checkpoints = (self.outdir / sub for sub in SUBFOLDERS)
        self.weights = str(Path(args.weights).resolve()) if args.weights else None
        # --weights read once: checked, the workers' copy, and its sha256 for the runs' digests
        plugin = read_weights(args.weights, local=not args.scheduler)
        self.shas = {"weights": plugin.sha if plugin else None}
        self.token, self.worker_key = new_token(args.host), secrets.token_urlsafe(24)
        self.max_bytes, self.max_pixels = int(args.max_upload_mb * 2**20), args.max_pixels
        self.port, self.comparing = args.port, asyncio.Lock()
        self.arriving = Counter()                         # upload path -> requests storing it now
        self.gallery_seen = -GALLERY_OPEN_S               # time.monotonic() of the gallery's last ask
        self.thumbnails = Thumbnails()                    # the finished runs' cards' pictures
        options = {"checkpoint_dir": str(self.checkpoints), "checkpoint_every": checkpoint_every_of(args),
                   "weights_sha": plugin.sha if plugin else None,
                   "debug": args.debug}        # its runs' NumPy overflow warnings said too (nst.run.warned)
        self.runs = Runs(self.outdir, args.queue, lambda: self.connect(plugin), options, self.link)

    # -- the cluster and the workers' way back -------------------------------------------------------
    @contextlib.contextmanager
    def connect(self, plugin):
        from nst.batch import engine
        from nst.batch.checks import task_memory
        layout = None
        if not self.args.scheduler:
            default = DEFAULTS.replace(backend=self.backend, weights=self.weights).as_dict()
            need, backend, _ = task_memory([SimpleNamespace(settings=default)])
            layout = engine.local_layout(engine.cores(), need, backend)
        with engine.connect(self.args.scheduler, layout) as client:
            if plugin:
                client.register_plugin(plugin, name=plugin.name)
            log(f"nst serve: {(layout or engine.cluster_layout(client, 0)).where}")
            yield client

    def link(self, key, title):
        # the LiveLink a worker posts through: this server as the workers reach it
        host = self.host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1" if not self.args.scheduler else socket.getfqdn()
        shown = f"[{host}]" if ":" in host else host
        return LiveLink(f"http://{shown}:{self.port}", self.worker_key, self.token, key, title)

    # -- pages -------------------------------------------------------------------------------------
    async def index(self, request):
        return static_file("app.html")

    async def options(self, request):
        return web.json_response({"options": form_options(), "settings": setting_options(), "queue": self.args.queue,
                                  "max_styles": MAX_STYLES, "max_upload_mb": self.args.max_upload_mb,
                                  "max_pixels": self.max_pixels})

    async def gallery(self, request):
        self.gallery_seen = time.monotonic()
        rows = await asyncio.get_running_loop().run_in_executor(None, self.runs.rows)
        return web.json_response({"runs": rows, "queue": {"active": len(self.runs.active), "max": self.args.queue}},
                                 dumps=functools.partial(json.dumps, default=str))

    def row(self, name, states=None):
        # the manifest row of run NAME (the picture's name without .png), or 404
        row = results.read_manifest(self.outdir).get(f"{name}.png")
        if row is None:
            raise Refused(404, "no such run")
        if states and row.get("status") not in states:
            raise Refused(409, f"the run is {row.get('status')}")
        return row

    def picture(self, name):
        # the saved picture of run NAME, done or stopped, in OUTDIR; or 404, 409 (a file there that
        # is not the picture the run made: a user's saved there later, nst.batch.outdir's rule). It
        # reads the whole file (its sha256): off the event loop
        row = self.row(name, PICTURE_STATES)
        path = self.outdir / Path(row["output"]).name
        if path.resolve().parent != self.outdir or not path.is_file():
            raise Refused(404, "the picture is not there")
        why = not_the_picture(path, row)
        if why:
            raise Refused(409, f"{self.runs.shown(why)}: not served, as it is not the picture this run made")
        return path

    async def image(self, request):
        path = await asyncio.get_running_loop().run_in_executor(None, self.picture, request.match_info["name"])
        disposition = "inline" if request.query.get("inline") else "attachment"
        return web.FileResponse(path, headers={"Content-Disposition": f'{disposition}; filename="{path.name}"',
                                               "Content-Type": "image/png"})

    async def thumbnail(self, request):
        # a run's picture, small, for its gallery card: a running run's latest (its worker's
        # thumbnail; kept by the browser when ?v= names its iteration), a finished one's saved picture
        # (made here once: self.thumbnails)
        name = request.match_info["name"]
        if name in self.runs.active:
            thumb = self.channel(request).thumb
            if thumb is None:
                raise Refused(404, "no picture yet")
            return card_answer(request, thumb[1], versioned=request.query.get("v") == str(thumb[0]))
        jpeg = await asyncio.get_running_loop().run_in_executor(None, lambda: self.thumbnails.of(self.picture(name)))
        return card_answer(request, jpeg, versioned=bool(request.query.get("v")))

    async def photo(self, request):
        # a queued or running run's content photo, small, for its gallery card until it has a picture
        # (made here once: self.thumbnails); 404 for any other run
        active = self.runs.active.get(request.match_info["name"])
        if active is None:
            raise Refused(404, "no queued or running run of that name")
        jpeg = await asyncio.get_running_loop().run_in_executor(None, self.thumbnails.of, active[0].content)
        return card_answer(request, jpeg, versioned=False)

    def channel(self, request):
        ch = self.runs.channels.get(request.match_info["name"])
        if ch is None:
            raise Refused(404, "no live run of that name (the gallery has the finished ones)")
        return ch

    async def live(self, request):
        self.channel(request)
        return static_file("live.html")

    async def ws(self, request):
        return await feed(request, self.channel(request))

    async def act(self, request):
        return control(self.channel(request), request.match_info["action"])

    # -- starting runs -------------------------------------------------------------------------------
    async def start(self, request):
        content, styles, fields = await read_form(request, len(self.runs.active), self.args.queue,
                                                   self.max_bytes, self.max_pixels)
        settings = settings_from(fields, len(styles), self)
        loop = asyncio.get_running_loop()
        stored = [uploads.path_of(data, self.uploads, suffix) for data, suffix, _ in [content, *styles]]
        names = {"content": content[2], "style": [s[2] for s in styles]}
        started = False
        self.arriving.update(stored)
        try:
            for path, (data, _, shown), part in zip(stored, [content, *styles], ["content"] + ["style"] * len(styles)):
                await loop.run_in_executor(None, uploads.store, data, path, f"{part} {shown!r}")
            response = await self.queue(stored[0], stored[1:], settings, names)
            started = True
            return response
        finally:
            self.arriving.subtract(stored)
            self.arriving = +self.arriving                # only the paths still arriving
            if not started:
                await self.remove_unused(stored)

    async def remove_unused(self, stored):
        # the uploads of a run that did not start, unless another run uses them (in the manifest,
        # queued or running, or arriving with another request). The manifest is read off the event
        # loop, again if a run ended meanwhile (its row may be newer than the read); the rest, and the
        # unlinks, on the loop with no await between: no request can start using a file in between
        loop = asyncio.get_running_loop()
        _, ended = self.runs.active_files()
        while True:
            used = await loop.run_in_executor(None, self.runs.manifest_files)
            active, now = self.runs.active_files()
            if now == ended:
                break
            ended = now
        keep = used | active | {str(p) for p in self.arriving}
        for path in {p for p in stored if str(p) not in keep}:
            with contextlib.suppress(OSError):        # a read-only OUTDIR: the refusal is what the page needs
                path.unlink(missing_ok=True)

    async def queue(self, content, styles, settings, names, key=None, digest=None):
        # check the run as `nst transfer` would (sizes, memory), then hand it to the engine; its warnings
        # (check_run's, this run's own) on stderr, in its row (its gallery card) and on its live page
        loop = asyncio.get_running_loop()
        warned = await loop.run_in_executor(None, check_run, content, styles, settings, self.outdir, self.backend,
                                            input_names([content, *styles], names))
        key = key or f"web-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
        shas = {**self.shas, **{p: await loop.run_in_executor(None, sha_of, p) for p in [content, *styles]}}
        task = make_task(key, content, styles, settings, shas)
        if digest and digest != task.digest:
            raise Refused(409, "its inputs or settings changed since it stopped: use run again")
        blocked = await loop.run_in_executor(None, self.runs.blocked, task.output)
        if blocked:                                       # never over a file nst did not write
            raise Refused(409, shown_paths(blocked, {}, self.outdir))
        title = f"{names['content']} in the style of {', '.join(names['style'])}"
        self.runs.submit(task, {"names": names, "title": title, "source": "nst serve",
                                **({"warnings": warned} if warned else {})})
        say_warnings(key, warned)                         # on its card and live page too (nst.web.runs)
        return web.json_response({"name": key, "live": f"/runs/{key}/live"}, status=201)

    async def again(self, request):
        row = self.row(request.match_info["name"])
        files, names = inputs_of(row)
        settings = settings_of_row(row).replace(backend=self.backend, weights=self.weights)
        return await self.queue(files[0], files[1:], settings, names)

    async def resume(self, request):
        name = request.match_info["name"]
        row = self.row(name, ("stopped", "cancelled", "failed"))
        if name in self.runs.active:
            raise Refused(409, "it is running")
        files, names = inputs_of(row)
        if row["settings"].get("weights") != self.weights:
            raise Refused(409, "it ran with other weights (nst serve --weights)")
        from nst.batch.task import checkpoint_path
        ckpt = checkpoint_path(self.checkpoints, name, row["digest"])
        if row["status"] == "stopped" and row.get("iterations") and not ckpt.is_file():
            raise Refused(409, f"no checkpoint of it in OUTDIR/{SUBFOLDERS[1]} ({ckpt.name}): "
                               "Run again starts it over")      # a failed or cancelled one may have none
        if ckpt.is_file():            # else it starts over; a bad one would too, said only in the worker's log
            if not_nsts("--checkpoint", ckpt):                             # a file of the user's at its name
                raise Refused(409, f"OUTDIR/{SUBFOLDERS[1]}/{ckpt.name} is not nst's checkpoint: "
                                   "Run again starts it over")
            why = await asyncio.get_running_loop().run_in_executor(None, unresumable, ckpt, row)
            if why:
                raise Refused(409, f"OUTDIR/{SUBFOLDERS[1]}/{ckpt.name} {why}: Run again starts it over")
        return await self.queue(files[0], files[1:], settings_of_row(row), names, key=name, digest=row["digest"])

    # -- compare, and the workers' posts ---------------------------------------------------------------
    async def compare(self, request):
        form = await request.post()
        a, b = (str(form.get(k, "")) for k in ("a", "b"))
        pictures = [await asyncio.get_running_loop().run_in_executor(None, self.picture, n) for n in (a, b)]
        files, inputs = inputs_of(self.row(a))
        if self.comparing.locked():
            raise Refused(429, "a comparison is running; try again in a moment")
        async with self.comparing:
            names = [p.name for p in pictures]
            scores, note, warned = await asyncio.get_running_loop().run_in_executor(
                None, self.scored, pictures, names, files[:2], inputs)
        say_warnings(f"comparing {a} with {b}", warned)          # and under its table on the page (app.js)
        from nst.compare import best_of
        return web.json_response({"names": names, "scores": scores, "best": best_of(scores), "note": note,
                                  "warnings": warned})

    def scored(self, pictures, names, files, inputs):
        # the pictures scored (rows.score) against the content and style `files` named `inputs` ->
        # (scores, note, the warnings raised meanwhile: auto's failed GPU self-check, an animated
        # content read as its first frame), in a scope of this comparison's own, as each run's check is
        with request_warnings(input_names(files, inputs), self.outdir) as (_, warned):
            return (*score(pictures, names, *files, self.weights, self.backend), warned)

    def worker_only(self, request):
        if not hmac.compare_digest(request.headers.get(WORKER_HEADER, "").encode(), self.worker_key.encode()):
            raise web.HTTPForbidden(text="nst: not one of this server's workers")

    async def publish(self, request):
        self.worker_only(request)
        ch = self.channel(request)
        msg = await request.json()
        status = {k: v for k, v in dict(msg.get("status") or {}).items() if k not in ("paused", "stopping", "viewers")}
        if ch.status["state"] in ENDED or status.get("state") in ENDED:
            status.pop("state", None)                 # a run has ended when its row is written (runs._end)
        shot = None
        if msg.get("image") or msg.get("panels"):
            shot = Snapshot(0, encoded={"image": msg.get("image"), "panels": dict(msg.get("panels") or {})})
        if msg.get("thumb"):
            ch.set_thumbnail(int(msg.get("thumb_it") or 0), base64.b64decode(msg["thumb"], validate=True))
        ch.update(points=list(msg.get("points") or []), status=status, snapshot=shot, info=dict(msg.get("info") or {}))
        # the pages' panels, a stop, whether a gallery is open; no pause: that comes only by the long
        # poll (LiveLink.apply)
        return web.json_response({"wanted": ch.wanted(), "stop": ch.controls.stop_requested,
                                  "gallery": time.monotonic() - self.gallery_seen < GALLERY_OPEN_S})

    async def await_controls(self, request):
        # a worker's long poll: the run's pause and stop as soon as they differ from those it sent
        # (the run acts on them at once: Pause at the iteration's end, Stop at the next evaluation),
        # or as they are after CONTROLS_HOLD_S; "ended" once the server has ended the run
        self.worker_only(request)
        ch, known = self.channel(request), await request.json()
        loop, changed, me = asyncio.get_running_loop(), asyncio.Event(), object()
        with ch.lock:
            ch.listeners[me] = lambda: loop.call_soon_threadsafe(changed.set)
        try:
            deadline = loop.time() + CONTROLS_HOLD_S
            while controls_of(ch) == known and ch.status["state"] not in ENDED and loop.time() < deadline:
                changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), deadline - loop.time())
        finally:
            with ch.lock:
                ch.listeners.pop(me, None)
        return web.json_response({**controls_of(ch), "ended": ch.status["state"] in ENDED})

    # -- the server -----------------------------------------------------------------------------------
    def make_app(self):
        app = web.Application(middlewares=[guard(self.host, self.token)], client_max_size=MAX_BODY)
        r = app.router
        r.add_get("/", self.index)
        add_static_routes(r)
        r.add_get("/api/options", self.options)
        r.add_get("/api/runs", self.gallery)
        r.add_post("/api/runs", self.start)
        r.add_post("/api/runs/{name}/again", self.again)
        r.add_post("/api/runs/{name}/resume", self.resume)
        r.add_post("/api/compare", self.compare)
        r.add_post("/api/publish/{name}", self.publish)
        r.add_post("/api/controls/{name}", self.await_controls)
        r.add_get("/runs/{name}/image", self.image)
        r.add_get("/runs/{name}/thumb", self.thumbnail)
        r.add_get("/runs/{name}/photo", self.photo)
        r.add_get("/runs/{name}/live", self.live)
        r.add_get("/runs/{name}/ws", self.ws)
        r.add_post("/runs/{name}/control/{action}", self.act)
        return app

    async def serve(self):
        loop = asyncio.get_running_loop()
        runner = web.AppRunner(self.make_app(), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
        except OSError as e:
            await runner.cleanup()
            raise RunRefused(cannot_listen(e, f"--host {self.host}", f"--port {self.port}")) from None
        self.port = site._server.sockets[0].getsockname()[1]
        if not is_local(self.host) and self.host not in ("0.0.0.0", "::"):
            log(f"nst serve: listening on {self.host}: every request needs the URL's token")
        made = []
        try:
            made = make_outdir(self.outdir, self.args.outdir)      # once it listens: nothing made before
            await loop.run_in_executor(None, self.runs.start)
        except BaseException:
            await runner.cleanup()
            remove_made(made)
            raise
        print(f"nst serve: {url_of(self.host, self.port, self.token)}", flush=True)
        log(f"nst serve: runs in {self.outdir}; Ctrl-C stops them with their checkpoints")
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        log("nst serve: stopping: each run stops after its iteration and keeps its checkpoint (again: at once)")
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, os._exit, 130)
        await loop.run_in_executor(None, self.runs.shutdown)
        await runner.cleanup()
        log(f"nst serve: stopped; `nst serve --outdir {self.args.outdir}` shows its runs again "
            "(a stopped one resumes from the gallery)")
        return 0


def check_options(args):
    # --outdir and --scheduler checked as `nst batch` checks -o and --scheduler: one line each,
    # before the server starts or anything is made (--weights: App reads and checks it once)
    check_outdir(Path(args.outdir))
    if args.scheduler is not None:
        args.scheduler = check_address(args.scheduler)      # seconds, not Dask's minutes


def check_outdir(outdir):
    # --outdir: a folder, or none yet, that can be made and written (as nst batch's -o); its
    # manifest absent or nst's: never another's file; its uploads/ and checkpoints/ folders too,
    # or none yet (a file there made every run's start fail, after the server was up)
    check_folder(outdir, "--outdir")
    check_manifest(outdir, "--outdir")
    for sub in SUBFOLDERS:
        folder = outdir / sub
        if os.path.lexists(folder) and not folder.is_dir():
            raise RunRefused(f"--outdir {outdir}: {folder} is not a folder (nst serve keeps the runs' {sub} "
                             "there); move it away, or choose another --outdir")
        check_writable_folder("--outdir", folder)


def make_outdir(outdir, given):
    # OUTDIR, once the server listens -> the folders this made, deepest first (remove_made's)
    made = [p for p in [outdir, *outdir.parents] if not p.exists()]
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        remove_made(made)
        raise RunRefused(f"--outdir {given}: cannot make it ({why_not_written(e)})") from None
    return made


def remove_made(made):
    # the folders make_outdir made, if they are still empty: a server that did not start leaves none
    for folder in made:
        with contextlib.suppress(OSError):
            folder.rmdir()


def serve(args):
    # the options checked, then --outdir held (nst.io.hold) while this server serves: a second nst serve
    # on it is refused at its start, before the weights are read (a bad option: that option's line)
    check_options(args)
    with hold_outdir("nst serve", "--outdir", args.outdir, Path(args.outdir)):
        return asyncio.run(App(args).serve())
