"""`nst transfer --web [HOST:]PORT`: the live page of the run in this process.

The server runs on its own thread (nst.web.server.Background); the run publishes into one
Channel. Without a page watching, an iteration costs a point appended to a list and a reference to
x (read under the step's lock where the optimiser writes into x: Adam), so that a page opened
mid-iteration is sent the last picture at once, made then (nst.web.channel).
"""
import contextlib

from aiohttp import web

from nst.web.channel import Channel, Publisher
from nst.web.server import Background, add_static_routes, control, feed, guard, new_token, static_file, url_of


def make_app(channel, host, token):
    async def page(request):
        return static_file("live.html")

    async def ws(request):
        return await feed(request, channel)

    async def act(request):
        return control(channel, request.match_info["action"])

    app = web.Application(middlewares=[guard(host, token)], client_max_size=4096)
    app.router.add_get("/", page)
    add_static_routes(app.router)
    app.router.add_get("/ws", ws)
    app.router.add_post("/control/{action}", act)
    return app


class LivePage:
    """The page's server and channel; `attach(run)` once the run exists, `on_iteration` after each."""

    def __init__(self, host, port, title=""):
        self.channel = Channel({"title": title})
        self.publisher = Publisher(self.channel)
        self.token = new_token(host)
        self.server = Background(make_app(self.channel, host, self.token), host, port)
        self.host = host

    def start(self):
        self.server.start()
        self.url = url_of(self.host, self.server.port, self.token)
        return self

    def attach(self, run):
        self.publisher.attach(run)

    def on_iteration(self, run, it, terms):
        self.publisher.on_iteration(run, it, terms)

    def finish(self, state):
        self.publisher.finish(state)

    def fail(self, error):
        # the run raised `error`: its pages end on failed with its one line
        self.channel.set_state("failed", error=str(error) or type(error).__name__)

    def close(self):
        # the pages' last message carries an end: a run that raised never said finish()
        if self.channel.status["state"] in ("starting", "running"):
            self.channel.set_state("failed")
        self.channel.close()
        self.server.stop()


def web_address(address):
    # --web [HOST:]PORT -> (host, port), or RunRefused in one line ('' and ':' alike)
    from nst.io.destinations import RunRefused
    from nst.web.server import AddressError, parse_address
    try:
        return parse_address(address)
    except AddressError as e:                       # e names the address: "--web '': give [HOST:]PORT…"
        raise RunRefused(f"--web {e}") from None


def started_page(address, title=""):
    # --web [HOST:]PORT -> a started LivePage, or RunRefused in one line (no such host, not this
    # machine's, the port in use); a dry run starts one and closes it: the address checked as a run's
    from nst.io.destinations import RunRefused
    from nst.web.server import cannot_listen
    host, port = web_address(address)
    try:
        return LivePage(host, port, title).start()
    except OSError as e:
        raise RunRefused(cannot_listen(e, f"--web {address}", f"--web {address}")) from None


@contextlib.contextmanager
def live_page(address, title):
    # -> a started LivePage (its URL logged first), or None when address is None
    if address is None:
        yield None
        return
    page = started_page(address, title)
    print(f"nst: live page {page.url}", flush=True)
    try:
        yield page
    except Exception as e:                          # the run raised: its pages say why, as the terminal does
        page.fail(e)
        raise
    finally:
        page.close()
