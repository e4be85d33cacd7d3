"""What `--web` and `nst serve` share: the guard, the static files, the websocket feed, a server
on its own event loop in a background thread.

Safety: a server bound to a loopback address answers only requests addressed to a localhost name or
that address (no DNS rebinding); bound to any other host it needs the token (TOKEN_QUERY in the URL,
then a cookie; X-NST-Token for scripts) on every request, else 403. A POST from another origin is
refused.
"""
import asyncio
import errno
import hmac
import html
import ipaddress
import json
import secrets
import socket
import threading
from importlib import resources

from aiohttp import WSMsgType, web
from yarl import URL

from nst.run.progress import log
from nst.web.uploads import Refused

LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")
TOKEN_QUERY, TOKEN_COOKIE, TOKEN_HEADER = "token", "nst_token", "X-NST-Token"
STATIC = {"live.html", "app.html", "common.js", "live.js", "app.js", "style.css", "favicon.svg"}
CSP = ("default-src 'self'; img-src 'self' data:; connect-src 'self'; style-src 'self'; "
       "script-src 'self'; frame-ancestors 'none'")
ICON = '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">'
MAX_WS_MESSAGE = 4096           # a page sends only small panel requests


class AddressError(ValueError):
    """A [HOST:]PORT that cannot be parsed."""


def parse_address(text, default_host="127.0.0.1"):
    # "[HOST:]PORT" -> (host, port); "[::1]:8080", "0.0.0.0:0" (0: a free port)
    host, _, port = text.rpartition(":") if ":" in text else ("", "", text)
    host = host.strip("[]") or default_host
    if not port.isdigit() or int(port) > 65535:
        raise AddressError(f"{text!r}: give [HOST:]PORT, e.g. 8080 or 127.0.0.1:8080 (0: a free port)")
    return host, int(port)


def cannot_listen(error, host_named, port_named):
    # why a server cannot listen (the bind's OSError), naming the option to change ("--host H",
    # "--port P"): only a port in use or not allowed asks for another port
    if isinstance(error, socket.gaierror):
        return f"{host_named}: no such host ({error.strerror}); give an address or name of this machine"
    if error.errno == errno.EADDRNOTAVAIL:
        return (f"{host_named}: not an address of this machine; e.g. 127.0.0.1 (this machine only) or "
                "0.0.0.0 (every interface)")
    if error.errno == errno.EADDRINUSE:
        return f"{port_named}: the port is in use (another server?); try another port (0: a free one)"
    if error.errno == errno.EACCES:
        return f"{port_named}: the port is not allowed here (below 1024 needs root); try one from 1024"
    return f"{host_named} {port_named}: cannot listen ({error.strerror or error})"


def is_local(host):
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def new_token(host):
    # None on a loopback address; else a secret every request must carry
    return None if is_local(host) else secrets.token_urlsafe(24)


def url_of(host, port, token, path="/"):
    # the URL a user opens; a server on every address (0.0.0.0, ::) is named by this machine's name
    shown = socket.gethostname() if host in ("0.0.0.0", "::", "") else host
    shown = f"[{shown}]" if ":" in shown else shown
    return f"http://{shown}:{port}{path}" + (f"?{TOKEN_QUERY}={token}" if token else "")


def host_name(request):
    # the name the request was sent to (its Host header), without the port
    try:
        return URL(f"http://{request.host}").host or ""
    except ValueError:
        return ""


def guard(host, token):
    # the middleware every route goes through (module doc); malformed requests get a 4xx
    names = (*LOCAL_NAMES, host) if is_local(host) else None    # the address it was bound to: 127.0.0.2

    @web.middleware
    async def check(request, handler):
        if names and host_name(request) not in names:
            raise web.HTTPForbidden(text="nst: this server answers only to localhost names")
        given = (request.query.get(TOKEN_QUERY) or request.cookies.get(TOKEN_COOKIE)
                 or request.headers.get(TOKEN_HEADER) or "")
        if token and not hmac.compare_digest(given.encode(), token.encode()):
            raise web.HTTPForbidden(text="nst: a token is needed: open the URL the server printed")
        origin = request.headers.get("Origin")
        if request.method not in ("GET", "HEAD") and origin and origin.split("://", 1)[-1] != request.host:
            raise web.HTTPForbidden(text="nst: a request from another site")
        try:
            response = await handler(request)
        except Refused as e:
            response = refusal(request, e)
        except (ValueError, KeyError, TypeError, UnicodeError) as e:     # a malformed request
            log(f"nst: {request.method} {request.path[:200]!r}: refused, {type(e).__name__}: {str(e)[:200]}")
            response = web.json_response({"error": f"malformed request ({type(e).__name__})"}, status=400)
        if token and request.query.get(TOKEN_QUERY) and not response.prepared:
            response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="Strict")
        if not response.prepared:
            response.headers.update({"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                                     "Referrer-Policy": "no-referrer"})
            response.headers.setdefault("Cache-Control", "no-store")     # unless the route said (thumbs)
        return response
    return check


def refusal(request, e):
    # a Refused answer: JSON for the pages' own requests, a short page with the reason and a link to
    # the gallery for a browser opening the URL (a stale /runs/NAME/live link showed raw JSON)
    if "text/html" not in request.headers.get("Accept", ""):
        return web.json_response({"error": str(e)}, status=e.status)
    body = (f'<!doctype html><meta charset="utf-8"><title>nst</title>{ICON}<p>nst: {html.escape(str(e))}</p>'
            '<p><a href="/">the gallery</a></p>')
    return web.Response(text=body, content_type="text/html", status=e.status)


def static_file(name):
    # a file of nst/web/static by its fixed name (no path from a request reaches the filesystem)
    if name not in STATIC:
        raise web.HTTPNotFound()
    kind = {"html": "text/html", "js": "text/javascript", "css": "text/css", "svg": "image/svg+xml"}
    body = resources.files("nst.web").joinpath("static", name).read_bytes()
    return web.Response(body=body, content_type=kind[name.rsplit(".", 1)[1]], charset="utf-8")


def add_static_routes(router):
    # /static/NAME, and /favicon.ico (the icon a browser asks for on its own: it logged a 404 each load)
    async def static_route(request):
        return static_file(request.match_info["name"])

    async def favicon(request):
        return static_file("favicon.svg")
    router.add_get("/static/{name}", static_route)
    router.add_get("/favicon.ico", favicon)


async def feed(request, channel):
    # the websocket of one page: the channel's news as JSON, one message at a time; a page slower
    # than the run gets the latest snapshot when it is ready again (the ones between are skipped)
    ws = web.WebSocketResponse(heartbeat=20, max_msg_size=MAX_WS_MESSAGE)
    await ws.prepare(request)
    loop, wake, page = asyncio.get_running_loop(), asyncio.Event(), object()
    notify = lambda: loop.call_soon_threadsafe(wake.set)        # noqa: E731  called from any thread
    channel.watch(page, {}, notify)
    reader = asyncio.create_task(read_page(ws, channel, page, notify))
    try:
        sent_points, sent_seq = 0, -1
        while not ws.closed:
            wake.clear()
            final = channel.closed          # read before the message: a close while it is built sends one more
            msg, sent_points, sent_seq = await loop.run_in_executor(None, channel.message, sent_points, sent_seq)
            await ws.send_str(json.dumps(msg))
            if final or reader.done():      # the run's last state is sent, or the page left
                break
            await wake.wait()
    except (ConnectionError, RuntimeError):         # the page went away mid-send
        pass
    finally:
        channel.unwatch(page)
        reader.cancel()
        await ws.close()
    return ws


async def read_page(ws, channel, page, notify):
    # a page's requests: {"panels": {"gram": layer|null, "grad": bool, "features": bool}}, or
    # {"ping": 1}, answered by a message (the status): a page that hears nothing knows its
    # connection died silently (a laptop's sleep) and opens another
    async for msg in ws:
        if msg.type != WSMsgType.TEXT:
            break
        try:
            asked = json.loads(msg.data)
        except ValueError:
            continue                                # a malformed message is ignored
        if isinstance(asked, dict) and "panels" in asked:
            channel.watch(page, asked["panels"], notify)
        elif isinstance(asked, dict) and "ping" in asked:
            notify()                                # this page's sender only
    notify()


def control(channel, action):
    # pause | resume | stop -> the run's controls (nst.controls); the page's Stop is Ctrl-C's. A run
    # still queued (nst serve) has nothing to pause: refused, its Stop takes it off the queue
    if action == "pause" and channel.status["state"] == "queued":
        raise Refused(409, "it has not started yet: Stop takes it off the queue")
    if action == "pause":
        channel.controls.pause()
    elif action == "resume":
        channel.controls.resume()
    elif action == "stop":
        channel.controls.stop()
    else:
        raise web.HTTPNotFound(text=f"nst: no control {action!r}")
    channel.notify()
    return web.json_response({"paused": channel.controls.paused, "stopping": channel.controls.stop_requested})


class Service:
    """A daemon thread (self.thread) that sets self.ready once it serves, or self.error and ready if
    it cannot; start() returns once it serves and raises its error otherwise."""

    def start(self):
        self.thread.start()
        self.ready.wait()
        if self.error:
            raise self.error
        return self


class Background(Service):
    """An aiohttp app served by an event loop on a daemon thread; start() returns once it listens."""

    def __init__(self, app, host, port):
        self.app, self.host, self.port = app, host, port
        self.loop = asyncio.new_event_loop()
        self.ready, self.error = threading.Event(), None
        self.thread = threading.Thread(target=self._serve, name="nst-web", daemon=True)


    def _serve(self):
        asyncio.set_event_loop(self.loop)
        self.runner = web.AppRunner(self.app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
        try:
            self.loop.run_until_complete(self._listen())
        except OSError as e:
            self.error = e
            self.ready.set()
            return
        self.ready.set()
        self.loop.run_forever()
        self.loop.close()

    async def _listen(self):
        await self.runner.setup()
        site = web.TCPSite(self.runner, self.host, self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    def stop(self, timeout=5.0):
        # close the pages' connections (after their last message), then the loop
        if self.thread.is_alive():
            try:
                asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(timeout)
            except (TimeoutError, RuntimeError):     # a page that does not let go: closed with the loop
                pass
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=timeout)
