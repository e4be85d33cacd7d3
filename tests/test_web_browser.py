"""The live page (`nst transfer --web`) and `nst serve` in a real headless Chromium, at 64 px with
the tiny random-weight VGG19: what a user sees and clicks, and a hostile client's requests."""
import hashlib
import json
import signal
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest

from nst.io import checkpoint
from web_client import (CHROMIUM, CHROMIUM_ARGS, FakeRun, Process, base_of, bomb_png, browser_missing, files_under,
                        png_bytes, post_form, request)


@pytest.fixture(scope="module")
def browser():
    reason = browser_missing()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()



RUN = ["--size", "64", "--scales", "1", "--backend", "numpy"]
LONG = [*RUN, "--optimizer", "adam", "--iterations", "100000"]      # runs until stopped


@pytest.fixture
def images(tmp_path, tiny_weights_h5):
    rng = np.random.default_rng(7)
    (tmp_path / "photo.png").write_bytes(png_bytes(rng))
    (tmp_path / "painting.png").write_bytes(png_bytes(rng, 64, 56))
    return tmp_path / "photo.png", tmp_path / "painting.png", tiny_weights_h5


# Our pages' Content-Security-Policy forbids eval; Playwright's wait_for_function polls with it,
# so the test pages bypass it (new_page(bypass_csp=True)).
def status(page, key):
    return page.evaluate(f"nst.live.status.{key}")


def wait_for_requests(page, requests, quiet_ms):
    # the first request the route holds (an upload under load took longer than a fixed wait), then
    # quiet_ms more for a second one that should not come -> how many came
    for _ in range(600):
        if requests:
            break
        page.wait_for_timeout(50)
    page.wait_for_timeout(quiet_ms)
    return len(requests)


# -- nst transfer --web ------------------------------------------------------------------------------
def test_live_page_shows_the_run_pauses_and_stops_it(browser, images, tmp_path):
    content, style, weights = images
    out, ckpt = tmp_path / "out.png", tmp_path / "run.npz"
    proc = Process(["transfer", content, style, "-o", out, *LONG, "--weights", weights, "--checkpoint", ckpt,
                    "--checkpoint-every", "1000", "--web"])
    url = proc.url()
    assert url.startswith("http://127.0.0.1:")
    try:
        page = browser.new_page(bypass_csp=True)
        page.goto(url)
        page.wait_for_function("nst.live.images >= 2 && nst.live.status.it >= 3", timeout=60_000)
        first, shown = page.get_attribute("#image", "src"), int(page.text_content("#it").split("/")[0])
        changed = f"document.getElementById('image').src !== {json.dumps(first)}"
        page.wait_for_function(f"nst.live.status.it > {shown} + 2 && {changed}")
        assert int(page.text_content("#it").split("/")[0]) > shown          # the counter on the page rises

        panels = ("#gram-panel", "#grad-panel", "#features-panel")
        assert not [p for p in panels if page.is_visible(p)]              # unticked: no panel, no broken image
        page.click("#pause")
        page.wait_for_function("nst.live.status.paused === true")
        # the iteration under way when Pause came still ends (its count may come later than 0.5 s
        # under load: a sleep read it too early). A panel ticked now is drawn by that iteration's
        # end or by the held run (Controls.on_idle), in the message with the last count: wait for it
        for box, img in (("#show-gram", "#gram-x"), ("#show-grad", "#grad"), ("#show-features", "#features")):
            page.check(box)
            page.wait_for_function(f"(document.querySelector('{img}').src || '').startsWith('data:image/png')")
        held = status(page, "it")
        time.sleep(1.5)
        assert status(page, "it") == held, "Pause did not hold the iteration count"
        # the curves: one point per iteration, every term drawn where it is > 0 on the log scale
        # (Adam's first J is at the content image itself: J_content = 0 there)
        positive = "nst.live.points.reduce((n, p) => n + Object.values(p.terms).filter(v => v > 0).length, 0)"
        page.wait_for_function(f"nst.live.plotted === {positive}")
        its = page.evaluate("nst.live.points.map(p => p.it)")
        assert its == list(range(1, held + 1))
        assert page.evaluate(positive) >= 4 * held - 1
        assert len(page.evaluate("Object.keys(nst.live.points.at(-1).layers)")) == 5      # each style layer

        assert all(page.is_visible(p) for p in panels)
        page.uncheck("#show-grad")
        assert not page.is_visible("#grad-panel") and page.is_visible("#features-panel")
        page.click("#pause")                                        # Resume
        page.wait_for_function(f"nst.live.status.it > {held} + 2")

        page.click("#stop")
        assert proc.wait(60) == 130
        page.wait_for_function("document.getElementById('state').textContent === 'stopped'")
        assert page.text_content("#state") == "stopped" and page.get_attribute("#state", "class") == "state stopped"
    finally:
        proc.kill()
    assert out.exists() and ckpt.exists()
    _, state = checkpoint.load(ckpt)
    assert len(state["history"]) > held


def test_live_page_opened_mid_iteration_shows_the_last_picture_at_once(browser):
    # a page opened (or reloaded) while a slow iteration ran (seconds at 800 px) had the curves and
    # no picture until the iteration ended: the image was kept only while a page watched
    from nst.web.live import LivePage
    live, run = LivePage("127.0.0.1", 0, "t").start(), FakeRun()
    try:
        live.attach(run)
        for it in range(1, 4):                            # no page watches these
            live.on_iteration(run, it, {"total": 10.0 / it})
        page = browser.new_page(bypass_csp=True)
        page.goto(live.url)                               # the run is in its fourth iteration, for long
        page.wait_for_function("nst.live.points.length === 3")
        assert page.evaluate("nst.live.images") == 1 and page.text_content("#it") == "3 / 10"
        assert page.get_attribute("#image", "src").startswith("data:image/jpeg;base64,")
        page.close()
    finally:
        live.close()


def test_live_page_on_another_host_needs_the_token(images, tmp_path):
    content, style, weights = images
    proc = Process(["transfer", content, style, "-o", tmp_path / "o.png", *LONG, "--weights", weights,
                    "--web", "0.0.0.0:0"])
    try:
        url = proc.url()
        assert "?token=" in url
        base = base_of(url)
        for path, method in (("/", "GET"), ("/ws", "GET"), ("/static/live.js", "GET"), ("/control/stop", "POST")):
            code, _ = request(base + path, data=b"" if method == "POST" else None, method=method)
            assert code == 403, path
        assert proc.p.poll() is None                     # the stop without the token did nothing
        assert request(url)[0] == 200
        token = url.split("token=")[1]
        assert request(base + "/control/stop", b"", {"X-NST-Token": token}, "POST")[0] == 200
        assert proc.wait(60) == 130
    finally:
        proc.kill()


# -- nst serve ---------------------------------------------------------------------------------------------
def serve(outdir, weights, *more, cwd=None):
    return Process(["serve", "--port", "0", "--outdir", outdir, "--weights", weights, "--backend", "numpy",
                    "--queue", "2", "--max-upload-mb", "1", "--max-pixels", "1000000", *more], cwd=cwd)


def manifest(outdir):
    return [json.loads(line) for line in (outdir / "manifest.jsonl").read_text().splitlines()]


def start_adam_run(base, content, style, size, iterations):
    # -> nst serve's answer to a new one-scale Adam run of the content file in the style file's
    code, started = post_form(base + "/api/runs", [("size", str(size)), ("scales", "1"), ("optimizer", "adam"),
                                                   ("iterations", str(iterations))],
                              [("content", "photo.png", content.read_bytes()), ("style", "p.png", style.read_bytes())])
    assert code == 201, started
    return started


def test_serve_upload_watch_gallery_download_run_again(browser, images, tmp_path):
    content, style, weights = images
    outdir = tmp_path / "runs"
    proc = serve(outdir, weights)
    try:
        url = proc.url()
        page = browser.new_page(bypass_csp=True)
        page.goto(url)
        page.wait_for_selector("#opt-size")
        page.set_input_files("#content", str(content))
        page.set_input_files("#style", [str(style), str(content)])          # two paintings: a blend
        page.fill("#opt-size", "64")
        page.fill("#opt-scales", "1")
        page.fill("#opt-iterations", "40")
        page.click("#go")
        page.wait_for_url("**/runs/*/live")
        name = page.url.split("/runs/")[1].split("/")[0]
        other = browser.new_page(bypass_csp=True)                                          # a second watcher
        other.goto(page.url)
        page.wait_for_function("nst.live.status.state === 'done'", timeout=120_000)
        other.wait_for_function("nst.live.status.state === 'done'", timeout=30_000)
        assert page.evaluate("nst.live.points.length") == other.evaluate("nst.live.points.length") == 40

        page.goto(url)
        card = f".run[data-name='{name}'][data-status='done']"
        page.wait_for_selector(card)
        with page.expect_download() as download:
            page.click(f"{card} a.download")
        assert open(download.value.path(), "rb").read() == (outdir / f"{name}.png").read_bytes()

        page.click(f"{card} button.again")
        page.wait_for_url("**/runs/*/live")
        again = page.url.split("/runs/")[1].split("/")[0]
        assert again != name
        page.wait_for_function("nst.live.status.state === 'done'", timeout=120_000)
        rows = {r["output"]: r for r in manifest(outdir)}
        first, second = rows[f"{name}.png"], rows[f"{again}.png"]
        assert first["settings"] == second["settings"] and first["settings"]["size"] == 64
        assert first["settings"]["style_blend"] is None and len(first["style"]) == 2
        same = ("content", "style", "digest")
        assert [first[k] for k in same] == [second[k] for k in same]
        assert (outdir / f"{again}.png").exists()

        # compare the two pictures' terms, as nst compare scores them: the same run twice, the same terms
        code, compared = post_form(base_of(url) + "/api/compare", [("a", name), ("b", again)])
        assert code == 200, compared
        assert compared["names"] == [f"{name}.png", f"{again}.png"] and len(compared["scores"][0]) == 6
        assert compared["note"] == ""                                                   # of one size
        np.testing.assert_allclose(list(compared["scores"][0].values()), list(compared["scores"][1].values()),
                                   rtol=1e-5)
    finally:
        proc.kill()


def test_serve_ctrl_c_stops_runs_with_checkpoints_and_a_restart_resumes(browser, images, tmp_path):
    content, style, weights = images
    outdir = tmp_path / "runs"
    proc = serve(outdir, weights)
    try:
        base = base_of(proc.url())
        started = start_adam_run(base, content, style, size=64, iterations=100000)
        name = started["name"]
        page = browser.new_page(bypass_csp=True)
        page.goto(base + started["live"])
        page.wait_for_function("nst.live.status.it >= 5", timeout=120_000)
        proc.p.send_signal(signal.SIGINT)
        assert proc.wait(120) == 0
    finally:
        proc.kill()
    row, = [r for r in manifest(outdir) if r["output"] == f"{name}.png"]
    assert row["status"] == "stopped" and row["iterations"] >= 5
    assert len(list((outdir / "checkpoints").glob(f"{name}.*.npz"))) == 1
    assert (outdir / f"{name}.png").exists()

    proc = serve(outdir, weights)
    try:
        page.goto(proc.url())
        card = f".run[data-name='{name}'][data-status='stopped']"
        page.wait_for_selector(card)
        page.click(f"{card} button.resume")
        page.wait_for_url(f"**/runs/{name}/live")
        page.wait_for_function(f"nst.live.status.it > {row['iterations']} + 2", timeout=120_000)
        assert page.evaluate("nst.live.points[0].it") == 1            # the history came with the checkpoint
        page.click("#stop")
        page.wait_for_function("nst.live.status.state === 'stopped'", timeout=60_000)
    finally:
        proc.kill()
    resumed = [r for r in manifest(outdir) if r["output"] == f"{name}.png"][-1]
    assert resumed["resumed_at"] >= row["iterations"] and resumed["iterations"] > row["iterations"]


# -- a hostile client ---------------------------------------------------------------------------------------
TRAVERSALS = ["../../etc/passwd", "..%2F..%2Fetc%2Fpasswd", "%2e%2e", "..\\..\\x", "/etc/passwd", "~root"]


def test_serve_refuses_hostile_requests_and_keeps_serving(images, tmp_path):
    content, style, weights = images
    outdir, cwd = tmp_path / "runs", tmp_path / "cwd"
    cwd.mkdir()
    before = files_under(tmp_path)
    proc = serve(outdir, weights, cwd=cwd)
    try:
        base = base_of(proc.url())
        good = [("content", "photo.png", content.read_bytes()), ("style", "painting.png", style.read_bytes())]
        codes = []
        for t in TRAVERSALS:                             # every parameter a path could hide in
            for path in (f"/runs/{t}/image", f"/runs/{t}/live", f"/runs/{t}/ws", f"/static/{t}",
                         "/static/..%2F..%2Fsetup.py", f"/runs/x/control/{t}"):
                codes.append((path, request(base + path)[0]))
            for path in (f"/api/runs/{t}/again", f"/api/runs/{t}/resume", f"/runs/{t}/control/stop",
                         f"/api/publish/{t}"):
                codes.append((path, request(base + path, b"", method="POST")[0]))
            codes.append(("compare", post_form(base + "/api/compare", [("a", t), ("b", t)])[0]))
            codes.append(("field name", post_form(base + "/api/runs", [(t, "1")], good)[0]))
            for option in ("init", "style-layers", "size", "keep-colors", "optimizer"):
                codes.append((option, post_form(base + "/api/runs", [(option, t)], good)[0]))
            codes.append(("file name", post_form(base + "/api/runs", [("size", "1")],
                                                 [("content", t, good[0][2]), ("style", t + ".png", good[1][2])])[0]))
        bad = [(p, c) for p, c in codes if not 400 <= c < 500]
        assert not bad, bad

        rng = np.random.default_rng(3)
        refusals = {
            "oversized": post_form(base + "/api/runs", [], [("content", "big.png", b"\x89PNG" + bytes(2 * 2**20)),
                                                            good[1]]),
            "not an image": post_form(base + "/api/runs", [], [("content", "x.png", b"#!/bin/sh\necho hi\n"), good[1]]),
            "bomb": post_form(base + "/api/runs", [], [("content", "bomb.png", bomb_png()), good[1]]),
            "too many pixels": post_form(base + "/api/runs", [], [("content", "wide.png", png_bytes(rng, 1100, 1000)),
                                                                  good[1]]),
            "gif": post_form(base + "/api/runs", [], [("content", "a.gif", gif_bytes()), good[1]]),
            "no style": post_form(base + "/api/runs", [], good[:1]),
            "not multipart": (request(base + "/api/runs", b"{]", {"Content-Type": "application/json"}, "POST")[0], {}),
            "bad json to a worker route": (request(base + "/api/publish/x", b"{]", {"X-NST-Worker": "guess"},
                                                   "POST")[0], {}),
            "message": post_form(base + "/api/runs", [("style-weight", "-1")], good),
        }
        assert {k: v[0] for k, v in refusals.items()} == {
            "oversized": 413, "not an image": 415, "bomb": 413, "too many pixels": 413, "gif": 415, "no style": 400,
            "not multipart": 400, "bad json to a worker route": 403, "message": 400}
        assert refusals["message"][1]["error"] == "argument --style-weight: must be a finite number ≥ 0, got '-1'"
        assert "decompression bomb" in refusals["bomb"][1]["error"]

        # a traversal in the uploaded files' names is only shown, never used as a path
        code, started = post_form(base + "/api/runs", [("size", "64"), ("scales", "1"), ("iterations", "2")],
                                  [("content", "../../../evil.png", good[0][2]),
                                   ("style", "/tmp/evil2.png", good[1][2])])
        assert code == 201, started
        for _ in range(600):
            rows = json.loads(request(base + "/api/runs")[1])["runs"]
            if rows and rows[0]["status"] == "done":
                break
            time.sleep(0.1)
        assert rows[0]["names"]["content"] == "../../../evil.png" and rows[0]["names"]["style"][0].endswith("evil2.png")
        assert sorted(p.name for p in (outdir / "uploads").iterdir()) == sorted(
            f"{hashlib.sha256(d).hexdigest()[:32]}.png" for _, _, d in good)

        # a flood: two long runs fill the queue (--queue 2), then 40 more starts at once are refused
        long = [("size", "64"), ("scales", "1"), ("optimizer", "adam"), ("iterations", "100000")]
        names = [post_form(base + "/api/runs", long, good)[1]["name"] for _ in range(2)]
        flood = []
        threads = [threading.Thread(target=lambda: flood.append(post_form(base + "/api/runs", long, good)))
                   for _ in range(40)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert [c for c, _ in flood] == [429] * 40
        assert "the queue is full" in flood[0][1]["error"]
        for n in names:
            assert request(f"{base}/runs/{n}/control/stop", b"", method="POST")[0] == 200
        assert request(base + "/")[0] == 200 and request(base + "/api/runs")[0] == 200
    finally:
        proc.kill()
    written = files_under(tmp_path) - before
    outside = [p for p in written if outdir not in p.parents]
    assert not outside, outside
    assert all(p.parent.name in ("runs", "uploads", "checkpoints") for p in written)


def gif_bytes():
    import io

    from PIL import Image
    buf = io.BytesIO()
    Image.new("RGB", (32, 32)).save(buf, "GIF")
    return buf.getvalue()


# -- the pages' own code against a server that answers as told (Playwright routes, no run) -------------
SITE = "http://nst.test"
STATIC = Path(__file__).resolve().parents[1] / "nst" / "web" / "static"
INFO = {"title": "photo in the style of painting", "total": 1000, "sizes": [64], "style_layers": ["block1_conv1"]}


def fake_site(page, answers):
    # the pages' static files at SITE, each other path answered by answers[(method, path)]: (status,
    # JSON), or a callable given the route; a page's path not listed: the page; another: the
    # connection refused
    def handle(route):
        req, path = route.request, urlparse(route.request.url).path
        if path.startswith("/static/"):
            return route.fulfill(path=STATIC / path.rsplit("/", 1)[1])
        answer = answers.get((req.method, path))
        if answer is None and (path == "/" or path.endswith("/live")):
            return route.fulfill(path=STATIC / ("app.html" if path == "/" else "live.html"))
        if answer is None:
            return route.abort("connectionrefused")
        if callable(answer):
            return answer(route)
        return route.fulfill(status=answer[0], json=answer[1])
    page.route(SITE + "/**", handle)


def live_feed(page, messages):
    # the live page's websocket: `messages` sent when it connects, then it stays open
    page.route_web_socket("**/ws", lambda ws: [ws.send(json.dumps(m)) for m in messages])


def message(state, it, **status):
    return {"info": INFO, "points": [{"it": it, "scale": 0, "terms": {"total": 1e4 / it}, "layers": {}}],
            "status": {"state": state, "it": it, "total": 1000, "scale": 0, "eta_s": 400.0, **status}}


def test_live_page_at_a_runs_end_shows_why_it_failed_without_an_eta(browser):
    # found driving nst serve: a run that failed showed "failed" and nothing more, an ETA of minutes,
    # and its 159 iterations squeezed into the left edge of a 100000-iteration axis
    page = browser.new_page(bypass_csp=True)
    fake_site(page, {})
    live_feed(page, [message("running", it) for it in range(1, 50)]
              + [message("failed", 50, error="OUTDIR/x.png exists and nst did not write it")])
    page.goto(SITE + "/runs/x/live")
    page.wait_for_function("nst.live.status.state === 'failed'")
    assert page.text_content("#error") == "OUTDIR/x.png exists and nst did not write it"
    assert page.title() == "photo in the style of painting · nst"          # every run's tab was "nst · live"
    assert page.text_content("#eta") == "–" and page.text_content("#state") == "failed"
    page.wait_for_function("nst.live.xmax === 50")
    page.close()


def opened_live(browser, messages, state):
    # a run's live page fed `messages` (live_feed's), opened and waited on until its state is `state`
    page = browser.new_page(bypass_csp=True)
    fake_site(page, {})
    live_feed(page, messages)
    page.goto(SITE + "/runs/x/live")
    page.wait_for_function(f"nst.live.status.state === '{state}'")
    return page


def test_a_run_done_without_an_iteration_says_why_and_how_many_it_was_to_make(browser):
    # found driving nst serve (content = style: L-BFGS finds nothing to improve): the page said
    # "done", "0 / 0", empty curves and terms, and nothing of what the terminal says
    stopped_at_start = {"info": INFO, "points": [], "status": {"state": "done", "it": 0, "total": 1000}}
    page = opened_live(browser, [stopped_at_start], "done")
    assert page.text_content("#it") == "0 / 1000"
    assert page.text_content("#note") == ("the optimiser stopped at its start (nothing to improve): "
                                          "the picture is the starting image")
    assert page.text_content("#error") == ""
    page.close()


def test_a_run_done_with_iterations_has_no_such_note(browser):
    page = opened_live(browser, [message("done", 80)], "done")
    assert page.text_content("#it") == "80 / 80" and page.text_content("#note") == ""
    page.close()


def test_a_panel_ticked_on_an_ended_run_says_why_it_stays_empty(browser):
    # found driving nst serve: a finished run's page, a panel ticked, showed its caption over nothing
    page = opened_live(browser, [message("done", 80)], "done")
    assert not page.is_visible("#study-note")
    page.check("#show-grad")
    assert page.text_content("#study-note") == "the panels are computed while the run runs: this one has ended"
    assert page.is_visible("#study-note")
    page.uncheck("#show-grad")
    assert not page.is_visible("#study-note")
    page.close()


def test_a_panel_ticked_on_a_running_run_has_no_such_note(browser):
    page = opened_live(browser, [message("running", 3)], "running")
    page.check("#show-grad")
    assert not page.is_visible("#study-note")
    page.close()


def test_the_plots_last_iteration_is_drawn_inside_the_canvas(browser):
    # found on the live page: the x axis's right label (100000) was centred on the edge, its last digit cut
    page = browser.new_page(bypass_csp=True)
    fake_site(page, {})
    page.goto(SITE + "/runs/x/live")
    right_edge, labels = page.evaluate("""() => {
        const c = document.createElement("canvas"); c.width = 300; c.height = 100;
        const ctx = c.getContext("2d"), labels = [], fillText = ctx.fillText;
        ctx.fillText = function (t, x, y) {
            const w = this.measureText(t).width, align = this.textAlign;
            labels.push([String(t), align === "center" ? x + w / 2 : ["right", "end"].includes(align) ? x : x + w]);
            return fillText.apply(this, arguments); };
        nst.plot(c, [{name: "t", xs: [1, 100000], ys: [1, 10]}], {xmax: 100000});
        const px = ctx.getImageData(c.width - 6, c.height - 22, 6, 22).data;
        return [px.filter((v, i) => i % 4 === 3 && v > 0).length, labels]; }""")
    # the label is drawn, its right end inside the canvas (a plot that drew no label passed)
    last = [right for text, right in labels if text.replace(",", "").replace(" ", "") == "100000"]
    assert right_edge == 0 and len(last) == 1 and last[0] <= 300, labels
    page.close()


@pytest.mark.parametrize("width", [760, 330])                  # a laptop's column, a phone's
def test_the_plots_legend_and_scale_labels_sit_above_its_frame(browser, width):
    # found on a screenshot: the legend's names and the scales' sizes were written inside the plot,
    # over the curves that start at its top
    page = browser.new_page(bypass_csp=True)
    fake_site(page, {})
    page.goto(SITE + "/runs/x/live")
    texts, frame = page.evaluate("""(width) => {
        const c = document.createElement("canvas"); c.width = width; c.height = 250;
        const ctx = c.getContext("2d"), texts = [], frames = [];
        const fillText = ctx.fillText, strokeRect = ctx.strokeRect;
        ctx.fillText = function (t, x, y) {
            texts.push([t, x, y, this.textBaseline]); return fillText.apply(this, arguments); };
        ctx.strokeRect = function (x, y, w, h) { frames.push([x, y, w, h]); return strokeRect.apply(this, arguments); };
        const names = ["block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1"];
        nst.plot(c, names.map((name) => ({name, xs: [1, 2, 3], ys: [1e9, 1e8, 1e5]})),
                 {xmax: 114, marks: [{x: 1, label: "256 px"}, {x: 71, label: "362 px"}]});
        return [texts, frames[0]]; }""", width)
    above = [t for t in texts if t[0].startswith("block") or t[0].endswith(" px")]
    assert len(above) == 7 and all(baseline == "top" for *_, baseline in above)
    assert all(y + 11 <= frame[1] for _, _, y, _ in above), (above, frame)        # 11 px text over the frame's top
    assert all(0 <= x <= width for _, x, _, _ in above)
    page.close()


def test_live_page_shows_a_refused_control_and_stop_stays_usable(browser):
    # a Stop the server refuses (the run ended meanwhile, the server restarted) was an unhandled
    # promise: nothing shown, Stop greyed out for good
    page = browser.new_page(bypass_csp=True)
    fake_site(page, {("POST", "/runs/x/control/stop"): (404, {"error": "no live run of that name"})})
    live_feed(page, [message("running", 3)])
    page.goto(SITE + "/runs/x/live")
    page.wait_for_function("nst.live.status.state === 'running'")
    page.click("#stop")
    page.wait_for_function("document.getElementById('error').textContent !== ''")
    assert page.text_content("#error") == "stop: no live run of that name"
    assert page.is_enabled("#stop")
    page.close()


def gallery_row(status):
    return {"output": "web-1.png", "status": status, "settings": {"size": 64}, "names": {"content": "p.png",
                                                                                       "style": ["s.png"]}}


def test_an_empty_gallery_says_how_to_make_a_picture(browser):
    # a new server's gallery was an empty box under its title
    runs = []
    page = browser.new_page(bypass_csp=True)
    fake_site(page, {("GET", "/api/options"): (200, {"options": []}),
                     ("GET", "/api/runs"): lambda r: r.fulfill(json={"runs": runs, "queue": {"active": 0, "max": 3}})})
    page.goto(SITE + "/")
    page.wait_for_selector("#no-runs", state="visible")
    assert page.text_content("#no-runs").split() == (
        "No pictures yet: choose a photo and one or more paintings under “A new picture”, then Start. "
        "Each run’s picture comes here.").split()
    runs.append(gallery_row("queued"))                                  # the first run: the line goes
    page.wait_for_selector("#no-runs", state="hidden")
    assert page.is_visible(".run[data-name='web-1']")
    page.close()


def test_gallery_says_when_the_server_stops_answering(browser):
    # found by stopping nst serve under an open gallery: it went on saying "1 of 3 running or queued",
    # and every poll threw "Failed to fetch" into the console
    page = browser.new_page(bypass_csp=True)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    answers = {("GET", "/api/options"): (200, {"options": []}),
               ("GET", "/api/runs"): (200, {"runs": [gallery_row("running")], "queue": {"active": 1, "max": 3}})}
    fake_site(page, answers)
    page.goto(SITE + "/")
    page.wait_for_function("document.getElementById('queue').textContent.startsWith('1 running')")
    del answers[("GET", "/api/runs")]                                   # the server went away
    page.wait_for_function("document.getElementById('queue').textContent === 'the server is not answering'",
                           timeout=10_000)
    assert not errors, errors
    page.close()


def test_the_gallery_header_says_how_many_runs_there_are_then_the_queues_limit(browser):
    # "1 of 8 running or queued" read as eight runs running or queued (8 is nst serve --queue)
    page = browser.new_page(bypass_csp=True)
    fake_site(page, {("GET", "/api/options"): (200, {"options": []}),
                     ("GET", "/api/runs"): (200, {"runs": [gallery_row("running")], "queue": {"active": 1, "max": 8}})})
    page.goto(SITE + "/")
    page.wait_for_selector(".run[data-name='web-1']")
    assert page.text_content("#queue") == "1 running or queued (at most 8)"
    page.close()


def test_gallery_shows_a_refused_resume_on_its_card_and_a_failed_options_load(browser):
    # Resume's refusal went to the form's line at the top of the page, out of sight of the card; a
    # form whose options did not load (a 403 in text) threw, and Start sent an empty form
    page = browser.new_page(bypass_csp=True)
    fake_site(page, {("GET", "/api/options"): lambda r: r.fulfill(status=403, body="nst: a token is needed"),
                     ("GET", "/api/runs"): (200, {"runs": [gallery_row("stopped")], "queue": {"active": 0, "max": 3}}),
                     ("POST", "/api/runs/web-1/resume"): (409, {"error": "the run is done"})})
    page.goto(SITE + "/")
    page.click(".run[data-name='web-1'] button.resume")
    page.wait_for_function("document.querySelector('.run .card-error').textContent !== ''")
    assert page.text_content(".run .card-error") == "Resume: the run is done"
    assert page.text_content("#start-error") == "the options did not load: nst: a token is needed"
    assert page.is_disabled("#go")
    page.close()


def test_start_clicked_twice_starts_one_run(browser, images):
    # a second click on Start while the uploads went started a second run of the same pictures
    content, style, _ = images
    posts = []
    page = browser.new_page(bypass_csp=True)
    fake_site(page, {("GET", "/api/options"): (200, {"options": []}),
                     ("GET", "/api/runs"): (200, {"runs": [], "queue": {"active": 0, "max": 3}}),
                     ("POST", "/api/runs"): posts.append})               # held: the upload still going
    page.goto(SITE + "/")
    page.set_input_files("#content", str(content))
    page.set_input_files("#style", str(style))
    page.evaluate("() => { const f = document.getElementById('start'); f.requestSubmit(); f.requestSubmit(); }")
    assert wait_for_requests(page, posts, 500) == 1
    posts[0].fulfill(status=400, json={"error": "refused"})
    page.wait_for_function("document.getElementById('start-error').textContent === 'refused'")
    assert page.is_enabled("#go")
    page.close()


def test_gallery_updates_cards_in_place_keeping_focus_and_open_details(browser):
    # each progress of a run drew every card again: the focused button, an open "settings and terms"
    # and a ticked compare box were lost every two seconds
    def row(name, status, **more):
        return {**gallery_row(status), "output": f"{name}.png", **more}
    runs = [row("web-1", "running", live=True), row("web-2", "done", finished="2026-01-01T00:00:00Z")]
    page = browser.new_page(bypass_csp=True)
    fake_site(page, {("GET", "/api/options"): (200, {"options": []}),
                     ("GET", "/api/runs"): lambda r: r.fulfill(json={"runs": runs, "queue": {"active": 1, "max": 3}})})
    page.goto(SITE + "/")
    card = ".run[data-name='web-2']"
    page.wait_for_selector(card)
    page.evaluate("() => document.querySelectorAll('.run').forEach((el) => { el.kept = true; })")
    page.click(f"{card} summary")
    page.check(f"{card} input.pick")
    page.focus(f"{card} button.again")
    assert page.text_content(".run[data-name='web-1'] .state") == "running"
    runs[0].update(iterations=12, total=300)                                 # how far it is, on its card
    page.wait_for_function("document.querySelector(\".run[data-name='web-1'] .state\").textContent "
                           "=== 'running 12 / 300'")
    runs[:] = [row("web-3", "queued", live=True), row("web-1", "done", live=True, finished="2026-01-02T00:00:00Z",
                                                      seconds=3.5), runs[1]]
    page.wait_for_selector(".run[data-name='web-1'][data-status='done'] a.download")
    kept = "() => [...document.querySelectorAll('.run')].map((el) => [el.dataset.name, !!el.kept])"
    assert page.evaluate(kept) == [["web-3", False], ["web-1", True], ["web-2", True]]
    focused = "() => { const el = document.activeElement; return [el.closest('.run').dataset.name, el.className]; }"
    assert page.evaluate(focused) == ["web-2", "again"]
    assert page.evaluate(f"document.querySelector(\"{card} details\").open")
    assert page.is_checked(f"{card} input.pick")
    runs[:] = [runs[0], runs[2]]                                            # web-1 gone
    page.wait_for_function("!document.querySelector(\".run[data-name='web-1']\")")
    assert page.evaluate(kept) == [["web-3", False], ["web-2", True]]
    assert page.evaluate(focused) == ["web-2", "again"]
    page.close()


def test_a_cards_settings_read_as_options_and_values_the_defaults_greyed(browser):
    # the card's "settings and terms" was the row's JSON, pretty-printed: 45 lines of braces, quotes
    # and field names the command line does not know (style_weight for --style-weight)
    from nst.run.settings import DEFAULTS
    from nst.web.form import setting_options
    row = {**gallery_row("done"), "settings": {**DEFAULTS.as_dict(), "size": 384, "style_weight": 30.0},
           "terms": {"total": 1234567.8, "content": 98765.4321}, "iterations": 60, "finished": "2026-12-05T13:18:02Z"}
    answer = {"options": [], "settings": setting_options()}          # as the server's /api/options has them
    page = browser.new_page(bypass_csp=True)
    fake_site(page, {("GET", "/api/options"): (200, answer),
                     ("GET", "/api/runs"): (200, {"runs": [row], "queue": {"active": 0, "max": 3}})})
    page.goto(SITE + "/")
    page.wait_for_function("document.querySelectorAll('.run dl.settings dt').length > 20")
    page.click(".run summary")
    lines = page.evaluate("[...document.querySelectorAll('.run details dt')].map((dt) => "
                          "[dt.textContent, dt.nextElementSibling.textContent, dt.nextElementSibling.className])")
    assert lines[:5] == [["J", "1.235e+6", ""], ["J_content", "9.877e+4", ""], ["iterations", "60", ""],
                         ["finished", "2026-12-05 13:18:02Z", ""], ["source", "nst batch", ""]]
    shown = {option: (value, greyed == "default") for option, value, greyed in lines[5:]}
    assert len(shown) == len(DEFAULTS.as_dict()) and all(o.startswith("--") and "_" not in o for o in shown)
    assert shown["--size"] == ("384", False) and shown["--style-weight"] == ("30", False)
    assert shown["--tv-weight"] == ("0.001", True) and shown["--lr"] == ("default", True)
    assert shown["--style-layers"] == (", ".join(DEFAULTS.style_layers), True)
    assert "{" not in page.text_content(".run details")
    page.close()


EARLY = "L-BFGS stopped early, 64 px after 83 of 300 iterations: J decreased by 7.1e-07 (relative), ≤ ftol = 1e-06"


def test_live_page_and_card_say_why_lbfgs_stopped_before_its_iterations(browser):
    # --iterations 300 ended at 83: the terminal said why, the live page and the card did not
    page = browser.new_page(bypass_csp=True)
    fake_site(page, {})
    live_feed(page, [message("running", 82), message("done", 83, stopped_early=EARLY)])
    page.goto(SITE + "/runs/x/live")
    page.wait_for_function("nst.live.status.state === 'done'")
    assert page.text_content("#note") == EARLY and page.text_content("#error") == ""
    page.close()
    page = browser.new_page(bypass_csp=True)
    row = {**gallery_row("done"), "iterations": 83, "stopped_early": EARLY}
    fake_site(page, {("GET", "/api/options"): (200, {"options": []}),
                     ("GET", "/api/runs"): (200, {"runs": [row], "queue": {"active": 0, "max": 3}})})
    page.goto(SITE + "/")
    page.wait_for_selector(".run .note.early")
    assert page.text_content(".run .note.early") == EARLY
    page.close()


def test_download_refused_says_why_on_the_card_and_saves_nothing(browser):
    # the server serves only the picture the run made; a refusal's JSON was the link's target, so a
    # click would have saved the error as web-1.png
    refused = "OUTDIR/web-1.png exists and nst did not write it: not served, as it is not the picture this run made"
    downloads = []
    page = browser.new_page(bypass_csp=True)
    page.on("download", lambda d: downloads.append(d))
    fake_site(page, {("GET", "/api/options"): (200, {"options": []}),
                     ("GET", "/api/runs"): (200, {"runs": [gallery_row("done")], "queue": {"active": 0, "max": 3}}),
                     ("GET", "/runs/web-1/image"): (409, {"error": refused})})
    page.goto(SITE + "/")
    page.click(".run[data-name='web-1'] a.download")
    page.wait_for_function("document.querySelector('.run .card-error').textContent !== ''")
    assert page.text_content(".run .card-error") == f"Download PNG: {refused}"
    page.wait_for_timeout(500)
    assert downloads == []
    page.close()


def test_live_page_reconnects_when_its_connection_drops_and_shows_the_run_again(browser):
    # a dropped connection (a server restart, a laptop's sleep, a proxy's timeout) left the page on
    # "disconnected" for good, its buttons off, until reloaded by hand
    connections = []

    def connected(ws):
        connections.append(ws)
        last = 3 if len(connections) == 1 else 5
        for it in range(1, last + 1):
            ws.send(json.dumps(message("running", it)))
        if len(connections) == 1:
            ws.close()
    page = browser.new_page(bypass_csp=True)
    fake_site(page, {})
    page.route_web_socket("**/ws", connected)
    page.goto(SITE + "/runs/x/live")
    page.wait_for_function("document.getElementById('state').textContent === 'reconnecting…'")
    assert page.is_disabled("#pause")
    page.wait_for_function("nst.live.status.it === 5 && nst.live.status.state === 'running'", timeout=10_000)
    assert page.evaluate("nst.live.points.map(p => p.it)") == [1, 2, 3, 4, 5]   # the run's points, once each
    assert page.text_content("#state") == "running" and page.is_enabled("#pause") and len(connections) == 2
    page.close()


def test_live_page_says_the_run_is_gone_when_the_server_answers_without_it(browser):
    # a server restarted without the run: the page says so, and stops trying
    gone = {"error": "no live run of that name (the gallery has the finished ones)"}

    def live_path(route):
        if "application/json" in route.request.headers.get("accept", ""):
            return route.fulfill(status=404, json=gone)
        return route.fulfill(path=STATIC / "live.html")
    page = browser.new_page(bypass_csp=True)
    fake_site(page, {("GET", "/runs/x/live"): live_path})
    page.route_web_socket("**/ws", lambda ws: [ws.send(json.dumps(message("running", 3))), ws.close()])
    page.goto(SITE + "/runs/x/live")
    page.wait_for_function("document.getElementById('state').textContent === 'gone'", timeout=10_000)
    assert page.text_content("#error") == gone["error"] and page.is_disabled("#stop")
    page.close()


def test_pages_show_no_broken_image_before_there_is_a_picture(browser):
    # a queued run's live page and a running run's card showed a broken-image icon and its alt text
    page = browser.new_page(bypass_csp=True)
    fake_site(page, {("GET", "/api/options"): (200, {"options": []}),
                     ("GET", "/api/runs"): (200, {"runs": [gallery_row("running")], "queue": {"active": 1, "max": 3}})})
    live_feed(page, [{"info": INFO, "points": [], "status": {"state": "queued"}}])
    visibility = "(selector) => getComputedStyle(document.querySelector(selector)).visibility"
    page.goto(SITE + "/runs/x/live")
    page.wait_for_function("nst.live.status.state === 'queued'")
    assert page.evaluate(visibility, "#image") == "hidden"
    page.evaluate("document.getElementById('image').src = 'data:image/png;base64,iVBORw0KGgo='")
    assert page.evaluate(visibility, "#image") == "visible"
    page.goto(SITE + "/")
    page.wait_for_selector(".run[data-status='running']")
    assert page.evaluate(visibility, ".run img") == "hidden"
    page.close()


def test_run_again_clicked_twice_starts_one_run(browser):
    # Run again (and Resume) posted once per click: a double click started the same run twice
    posts = []
    page = browser.new_page(bypass_csp=True)
    fake_site(page, {("GET", "/api/options"): (200, {"options": []}),
                     ("GET", "/api/runs"): (200, {"runs": [gallery_row("stopped")], "queue": {"active": 0, "max": 3}}),
                     ("POST", "/api/runs/web-1/again"): posts.append})          # held: the server still checking
    page.goto(SITE + "/")
    again = ".run[data-name='web-1'] button.again"
    page.dblclick(again)
    assert wait_for_requests(page, posts, 500) == 1
    posts[0].fulfill(status=429, json={"error": "the queue is full"})
    page.wait_for_function("document.querySelector('.run .card-error').textContent !== ''")
    assert page.text_content(".run .card-error") == "Run again: the queue is full" and page.is_enabled(again)
    page.close()


def test_compare_clicked_twice_scores_once(browser):
    # a second click while the first comparison was scored was refused (429) and its error stayed
    # beside the first one's table
    posts = []
    pictures = [{**gallery_row("done"), "output": f"web-{i}.png"} for i in (1, 2)]
    page = browser.new_page(bypass_csp=True)
    fake_site(page, {("GET", "/api/options"): (200, {"options": []}),
                     ("GET", "/api/runs"): (200, {"runs": pictures, "queue": {"active": 0, "max": 3}}),
                     ("POST", "/api/compare"): posts.append})
    page.goto(SITE + "/")
    for i in (1, 2):
        page.check(f".run[data-name='web-{i}'] input.pick")
    page.dblclick("#compare")
    assert wait_for_requests(page, posts, 2500) == 1 and page.is_disabled("#compare")   # a gallery poll meanwhile
    posts[0].fulfill(json={"names": ["web-1.png", "web-2.png"], "scores": [{"content": 1.0}, {"content": 2.0}],
                           "best": {"content": [0]}, "note": "the pictures differ in size (…)"})
    page.wait_for_function("document.getElementById('compare-table').rows.length === 2")
    assert page.text_content("#compare-error") == "" and page.is_enabled("#compare")
    assert page.text_content("#compare-note") == "the pictures differ in size (…)"      # under the table
    page.close()


def test_a_comparisons_warnings_show_under_its_table_until_the_next(browser):
    # a warning raised as the comparison was scored (auto's failed GPU self-check) comes back in its
    # answer (nst.web.app): shown a line each, as a run's live page shows its own; the next comparison's
    # answer, without one, clears them
    said = ["auto: the GPU failed nst's self-check (a stand-in); using numba", "a second warning"]
    answers = iter([said, []])
    pictures = [{**gallery_row("done"), "output": f"web-{i}.png"} for i in (1, 2)]
    page = browser.new_page(bypass_csp=True)
    fake_site(page, {("GET", "/api/options"): (200, {"options": []}),
                     ("GET", "/api/runs"): (200, {"runs": pictures, "queue": {"active": 0, "max": 3}}),
                     ("POST", "/api/compare"): lambda route: route.fulfill(json={
                         "names": ["web-1.png", "web-2.png"], "scores": [{"content": 1.0}, {"content": 2.0}],
                         "best": {"content": [0]}, "note": "", "warnings": next(answers)})})
    page.goto(SITE + "/")
    for i in (1, 2):
        page.check(f".run[data-name='web-{i}'] input.pick")
    page.click("#compare")
    page.wait_for_function("document.getElementById('compare-warnings').textContent !== ''")
    assert page.inner_text("#compare-warnings").splitlines() == said
    page.click("#compare")
    page.wait_for_function("document.getElementById('compare-warnings').textContent === ''")
    assert page.text_content("#compare-error") == ""
    page.close()


def test_gram_ticked_before_the_run_names_its_layers_is_asked_once_it_does(browser):
    # Ĝ ticked on a queued run's page (no style layers yet to pick) asked for nothing, and the panel
    # stayed hidden once the run started, until the box was ticked again
    asked, sockets = [], []

    def connected(ws):
        sockets.append(ws)
        ws.on_message(lambda m: asked.append(json.loads(m)["panels"]))
        ws.send(json.dumps({"info": {"title": "t"}, "points": [], "status": {"state": "queued"}}))
    page = browser.new_page(bypass_csp=True)
    fake_site(page, {})
    page.route_web_socket("**/ws", connected)
    page.goto(SITE + "/runs/x/live")
    page.wait_for_function("nst.live.status.state === 'queued'")
    page.check("#show-gram")
    sockets[0].send(json.dumps(message("running", 1)))
    page.wait_for_function("!document.getElementById('gram-panel').hidden")
    for _ in range(300):                                    # the page's message on its way to the route
        if asked and asked[-1]["gram"]:
            break
        page.wait_for_timeout(100)
    assert asked[-1] == {"gram": "block1_conv1", "grad": False, "features": False}
    page.close()


def test_gallery_asks_again_only_once_answered(browser):
    # it polled every 2 s whether or not the last answer had come: a slow server got requests piling
    # up, and an older answer arriving last drew the gallery as it had been
    held = []
    page = browser.new_page(bypass_csp=True)
    fake_site(page, {("GET", "/api/options"): (200, {"options": []}), ("GET", "/api/runs"): held.append})
    page.goto(SITE + "/")
    page.wait_for_timeout(4500)                                        # two polls' time
    assert len(held) == 1
    held[0].fulfill(json={"runs": [], "queue": {"active": 0, "max": 3}})
    page.wait_for_function("document.getElementById('queue').textContent === '0 running or queued (at most 3)'")
    page.close()


def test_live_page_of_an_ended_run_shows_its_picture(browser, images):
    # a run's page opened after the run had ended (no page watched it: no image was sent) showed
    # no picture at all
    content, _, _ = images
    page = browser.new_page(bypass_csp=True)
    fake_site(page, {("GET", "/runs/x/image"): lambda r: r.fulfill(path=content, content_type="image/png")})
    live_feed(page, [message("done", 40)])
    page.goto(SITE + "/runs/x/live")
    page.wait_for_function("document.getElementById('image').complete && "
                           "document.getElementById('image').naturalWidth > 0")
    assert page.get_attribute("#image", "src") == "/runs/x/image?inline=1"
    page.close()


def test_live_page_on_a_narrow_screen_keeps_its_curves_readable(browser):
    # on a phone the two columns squeezed the curves into a strip 60 px wide
    page = browser.new_page(bypass_csp=True, viewport={"width": 400, "height": 800})
    fake_site(page, {})
    live_feed(page, [message("running", 3)])
    page.goto(SITE + "/runs/x/live")
    page.wait_for_function("nst.live.status.state === 'running'")
    assert page.evaluate("document.getElementById('terms-plot').getBoundingClientRect().width") > 300
    assert page.evaluate("document.documentElement.scrollWidth") <= 400                 # nothing off the side
    page.close()


def test_live_page_opens_another_connection_when_its_own_died_silently(browser):
    # a connection that died without a close (a laptop's sleep, a network gone) never said so: the
    # page waited on it for good. It pings a quiet connection; unanswered, it opens another
    connections, pings = [], []

    def connected(ws):
        connections.append(ws)
        ws.on_message(lambda m: pings.append(json.loads(m)) if "ping" in m else None)   # never answered
        ws.send(json.dumps(message("running", len(connections))))
    page = browser.new_page(bypass_csp=True)
    page.clock.install()
    fake_site(page, {})
    page.route_web_socket("**/ws", connected)
    page.goto(SITE + "/runs/x/live")
    page.wait_for_function("nst.live.status.it === 1")
    # every state the page shows, kept: the second connection may answer (and the page say
    # "running" again) before a poll of the state itself saw "reconnecting…"
    page.evaluate("""() => { const el = document.getElementById('state'); window.shown = [];
        new MutationObserver(() => window.shown.push(el.textContent))
            .observe(el, {childList: true, characterData: true, subtree: true}); }""")
    page.clock.run_for(20_000)
    page.wait_for_function("document.getElementById('state').textContent === 'running'")
    assert len(connections) == 1
    page.clock.run_for(25_000)                          # two pings unanswered
    page.wait_for_function("window.shown.includes('reconnecting…')")
    page.clock.run_for(2_000)
    page.wait_for_function("nst.live.status.it === 2")
    assert len(connections) == 2 and pings and page.is_enabled("#pause")
    page.close()


def test_start_refuses_a_file_over_the_upload_limit_before_sending_it(browser, images, tmp_path):
    # a file over --max-upload-mb went up to the limit before the server refused it (or the
    # connection dropped meanwhile and the page said only "the server is not answering")
    content, style, _ = images
    big = tmp_path / "huge.png"
    big.write_bytes(bytes(600 * 1024))
    posts = []
    page = browser.new_page(bypass_csp=True)
    fake_site(page, {("GET", "/api/options"): (200, {"options": [], "max_upload_mb": 0.5}),
                     ("GET", "/api/runs"): (200, {"runs": [], "queue": {"active": 0, "max": 3}}),
                     ("POST", "/api/runs"): posts.append})
    page.goto(SITE + "/")
    page.set_input_files("#content", str(content))
    page.set_input_files("#style", [str(style), str(big)])
    page.wait_for_selector("#fields details", state="attached")          # the options have come
    page.click("#go")
    page.wait_for_function("document.getElementById('start-error').textContent !== ''")
    assert page.text_content("#start-error") == "style 'huge.png': larger than the 0.5 MiB an upload may be"
    assert not posts and page.is_enabled("#go")
    page.close()


def test_a_paused_runs_eta_says_paused_and_comes_back_on_resume(browser):
    # the ETA stayed frozen at its last value while the run was paused
    sockets = []
    page = browser.new_page(bypass_csp=True)
    fake_site(page, {})
    page.route_web_socket("**/ws", lambda ws: (sockets.append(ws), ws.send(json.dumps(message("running", 3)))))
    page.goto(SITE + "/runs/x/live")
    page.wait_for_function("nst.live.status.it === 3")
    assert page.text_content("#eta") == "6m40s"
    sockets[0].send(json.dumps({"points": [], "status": {**message("running", 3)["status"], "paused": True}}))
    page.wait_for_function("nst.live.status.paused === true")
    assert page.text_content("#eta") == "paused" and page.text_content("#state") == "paused"
    sockets[0].send(json.dumps({"points": [], "status": {**message("running", 3)["status"], "paused": False}}))
    page.wait_for_function("nst.live.status.paused === false")
    assert page.text_content("#eta") == "6m40s" and page.text_content("#state") == "running"
    page.close()


def test_a_queued_run_has_no_pause_and_a_paused_runs_card_says_paused(browser):
    # Pause on a queued run showed "paused" on its live page while its card said "queued", and the run,
    # once started, paused an iteration in; a paused run's card said "running"; a stopped one's said
    # "stopped", not how far it got (is it worth a Resume?)
    page = browser.new_page(bypass_csp=True)
    fake_site(page, {})
    live_feed(page, [{"info": INFO, "points": [], "status": {"state": "queued", "paused": False}}])
    page.goto(SITE + "/runs/x/live")
    page.wait_for_function("nst.live.status.state === 'queued'")
    assert page.is_disabled("#pause") and page.is_enabled("#stop") and page.text_content("#state") == "queued"
    runs = [{**gallery_row("running"), "live": True, "iterations": 12, "total": 300, "paused": True},
            {**gallery_row("stopped"), "output": "web-2.png", "iterations": 38}]       # a stopped one: how far
    fake_site(page, {("GET", "/api/options"): (200, {"options": []}),
                     ("GET", "/api/runs"): (200, {"runs": runs, "queue": {"active": 1, "max": 3}})})
    page.goto(SITE + "/")
    page.wait_for_selector(".run[data-name='web-1'] .state.paused")
    assert page.text_content(".run[data-name='web-1'] .state") == "paused 12 / 300"
    assert page.text_content(".run[data-name='web-2'] .state") == "stopped at 38"
    page.close()


@pytest.mark.parametrize("again", ["the Try again button", "the network back"])
def test_live_page_stops_retrying_a_run_whose_process_is_gone_and_can_try_again(browser, again):
    # a --web page whose process had ended tried again every 15 s for ever, each try a
    # connection-refused error in the console; once it gave up, the browser's `online` event (the
    # network back) did nothing: only the button tried again
    connections, answering = [], [False]

    def connected(ws):
        connections.append(ws)
        ws.send(json.dumps(message("running", len(connections) * 3)))
        if len(connections) == 1:
            ws.close()

    def live_path(route):
        if "application/json" not in route.request.headers.get("accept", ""):
            return route.fulfill(path=STATIC / "live.html")
        return route.fulfill(status=200, json={}) if answering[0] else route.abort("connectionrefused")
    page = browser.new_page(bypass_csp=True)
    page.clock.install()
    fake_site(page, {("GET", "/runs/x/live"): live_path})
    page.route_web_socket("**/ws", connected)
    page.goto(SITE + "/runs/x/live")
    page.wait_for_function("() => nst.live.retries === 1")         # dropped: a try is due
    for _ in range(20):                                            # each try's wait, on the page's clock
        if page.text_content("#state") == "not answering":
            break
        tries = page.evaluate("nst.live.retries")
        page.clock.run_for(15_000)
        page.wait_for_function(f"() => nst.live.retries > {tries} || "
                               "document.getElementById('state').textContent === 'not answering'")
    assert page.text_content("#state") == "not answering" and page.is_visible("#retry")
    assert "no answer for 2 minutes" in page.text_content("#error")
    tries = page.evaluate("nst.live.retries")
    page.clock.run_for(60_000)
    assert page.evaluate("nst.live.retries") == tries                # no more tries
    answering[0] = True
    if again == "the network back":
        page.evaluate("window.dispatchEvent(new Event('online'))")
    else:
        page.click("#retry")
    page.wait_for_function("() => nst.live.status.it === 6 && nst.live.status.state === 'running'")
    assert page.is_hidden("#retry") and page.text_content("#error") == "" and page.is_enabled("#pause")
    page.close()


def phone_page(browser):
    # a phone's browser: 390 CSS px wide, twice as dense, laying out a page without a viewport
    # <meta> at 980 px and shrinking it
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                                  has_touch=True, bypass_csp=True)
    return context.new_page()


def test_the_live_page_on_a_phone_is_laid_out_at_its_width_with_readable_curves(browser):
    # a phone laid the page out at 980 px and shrank it (no viewport <meta>): the one-column layout
    # never applied; the curves, a 760 px canvas shrunk to the column, had 4 px labels; a study
    # choice split over two lines
    page = phone_page(browser)
    fake_site(page, {})
    live_feed(page, [message("running", it) for it in range(1, 4)])
    page.goto(SITE + "/runs/x/live")
    page.wait_for_function("nst.live.plotted === 3")
    assert page.evaluate("document.documentElement.scrollWidth") == 390
    canvas = page.evaluate("(() => { const c = document.getElementById('terms-plot'); "
                           "return [c.width, c.clientWidth, c.height, c.clientHeight]; })()")
    assert canvas[0] == 2 * canvas[1] and canvas[2] == 2 * canvas[3] and canvas[1] > 300     # drawn as shown
    assert page.evaluate("[...document.querySelectorAll('.choices label')].map((l) => l.getClientRects().length)") \
        == [1, 1, 1]
    page.context.close()


def test_the_app_on_a_phone_fits_its_width_and_beside_the_form_on_a_laptop(browser):
    # a phone laid the app out at 980 px and shrank it; its comparison, once fixed, was wider than the
    # phone (a column repeating the pictures' long names); on a laptop the gallery sat under the form,
    # below the fold, beside an empty column
    from nst.web.form import form_options
    names = ["web-20261205-131755-740fd8.png", "web-20261205-131623-7b28a2.png"]
    pictures = [{**gallery_row("done"), "output": n} for n in names]
    scores = [{"content": 2e10, "block1_conv1": 1e5, "block2_conv1": 3.0},
              {"content": 1e10, "block1_conv1": 2e5, "block2_conv1": 3.0}]
    answers = {("GET", "/api/options"): (200, {"options": form_options()}),
               ("GET", "/api/runs"): (200, {"runs": pictures, "queue": {"active": 0, "max": 3}}),
               ("POST", "/api/compare"): (200, {"names": names, "scores": scores,
                                                "best": {"content": [1], "block1_conv1": [0], "block2_conv1": [0, 1]}})}
    page = phone_page(browser)
    fake_site(page, answers)
    page.goto(SITE + "/")
    for name in names:
        page.check(f".run[data-name='{name[:-4]}'] input.pick")
    page.click("#compare")
    page.wait_for_function("document.getElementById('compare-table').rows.length === 4")
    assert page.evaluate("document.documentElement.scrollWidth") == 390
    rows = page.evaluate("[...document.getElementById('compare-table').rows]"
                         ".map((r) => [...r.cells].map((c) => c.textContent))")
    assert rows == [["term", f"A: {names[0][:-4]}", f"B: {names[1][:-4]}", "best"],
                    ["content", "2.000e+10", "1.000e+10", "B"], ["block1_conv1", "1.000e+5", "2.000e+5", "A"],
                    ["block2_conv1", "3.000", "3.000", "A, B"]]             # a tie: both best, both bold
    bold = page.evaluate("[...document.getElementById('compare-table').rows].slice(1)"
                         ".map((r) => [...r.cells].slice(1, 3).map((c) => c.className === 'best'))")
    assert bold == [[False, True], [True, False], [True, True]]
    page.context.close()
    page = browser.new_page(bypass_csp=True, viewport={"width": 1280, "height": 1000})
    fake_site(page, answers)
    page.goto(SITE + "/")
    page.wait_for_selector(".run")
    box = ("(s) => { const r = document.querySelector(s).getBoundingClientRect(); "
           "return [r.left, r.right, r.top, r.bottom]; }")
    form, compare, gallery = (page.evaluate(box, s) for s in ("section.new", "section.compare", "section.gallery"))
    assert gallery[0] > form[1] and gallery[2] < 1000                 # beside the form, on the screen
    assert gallery[2] - compare[3] == 16                              # under the comparison, no gap but the grid's
    page.close()


def test_a_run_with_iterations_auto_says_its_total_and_eta_are_at_most_and_ends_on_what_it_made(browser):
    # --iterations auto ends a scale once J's progress no longer pays: the page said 37 / 114 with
    # the ETA of all 114, and a run done after 80 said 80 / 114, as if it had stopped short; its
    # curves' x axis ended on a plain "114"
    sockets = []
    info = {**INFO, "iterations": "auto", "total": 114}
    page = browser.new_page(bypass_csp=True)
    fake_site(page, {})
    page.add_init_script("""window.drawnTexts = []; const fillText = CanvasRenderingContext2D.prototype.fillText;
        CanvasRenderingContext2D.prototype.fillText = function (t) {
            window.drawnTexts.push(String(t)); return fillText.apply(this, arguments); };""")
    axis_end = "() => { const t = window.drawnTexts.filter((t) => /^(at most )?\\d+$/.test(t) && t !== '1'); " \
               "window.drawnTexts = []; return t; }"
    page.route_web_socket("**/ws", lambda ws: (sockets.append(ws), ws.send(json.dumps({**message("running", 37),
                                                                                        "info": info}))))
    page.goto(SITE + "/runs/x/live")
    page.wait_for_function("nst.live.status.it === 37")
    assert (page.text_content("#it"), page.text_content("#eta")) == ("37 / at most 114", "at most 6m40s")
    page.wait_for_function("nst.live.plotted === 1")
    assert set(page.evaluate(axis_end)) == {"at most 114"}                 # the x axis ends on a cap
    done = message("done", 80)
    sockets[0].send(json.dumps({"points": done["points"], "status": {**done["status"], "total": 114}}))
    page.wait_for_function("nst.live.status.state === 'done' && nst.live.xmax === 80")
    assert (page.text_content("#it"), page.text_content("#eta")) == ("80 / 80", "–")
    page.wait_for_function("window.drawnTexts.includes('80')")
    assert set(page.evaluate(axis_end)) == {"80"}                           # what it made, no cap
    page.close()


def test_a_gallery_card_under_iterations_auto_says_its_total_is_at_most(browser):
    # the live page said "37 / at most 114", the run's gallery card "running 37 / 114"
    def row(name, iterations, paused=False):
        return {**gallery_row("running"), "output": f"{name}.png", "settings": {"size": 64, "iterations": iterations},
                "iterations": 37, "total": 114, "paused": paused}
    runs = [row("web-1", "auto"), row("web-2", "auto", paused=True), row("web-3", 114)]
    page = browser.new_page(bypass_csp=True)
    fake_site(page, {("GET", "/api/options"): (200, {"options": []}),
                     ("GET", "/api/runs"): (200, {"runs": runs, "queue": {"active": 3, "max": 3}})})
    page.goto(SITE + "/")
    page.wait_for_selector(".run[data-name='web-3']")
    states = page.evaluate("[...document.querySelectorAll('.run .state')].map((s) => s.textContent)")
    assert states == ["running 37 / at most 114", "paused 37 / at most 114", "running 37 / 114"]
    page.close()


@pytest.mark.parametrize("phone", [False, True])
def test_the_gram_panels_note_sits_under_its_two_matrices(browser, phone):
    # found on a screenshot: at 1280 px the note sat beside Ĝ(X) and Ĝ(S), a wide gap between it
    # and them; on a phone each matrix took a row of its own, the note far below Ĝ(X)
    from nst.web import panels
    gram = np.random.default_rng(0).random((32, 32), np.float32) + 1
    shown = panels.render({"gram": {"layer": "block1_conv1", "x": gram, "s": 2 * gram}})
    page = phone_page(browser) if phone else browser.new_page(bypass_csp=True, viewport={"width": 1280, "height": 900})
    fake_site(page, {})
    live_feed(page, [{**message("running", 3), "panels": shown}])
    page.goto(SITE + "/runs/x/live")
    page.wait_for_function("nst.live.status.state === 'running'")
    page.check("#show-gram")
    page.wait_for_function("document.getElementById('gram-s').complete && document.getElementById('gram-s').width > 0")
    box = ("(s) => { const r = document.querySelector(s).getBoundingClientRect(); "
           "return {left: r.left, right: r.right, top: r.top, bottom: r.bottom}; }")
    x, s, note = (page.evaluate(box, sel) for sel in ("#gram-x", "#gram-s", "#gram-panel .note"))
    caption = page.evaluate(box, "#gram-x + figcaption")
    assert s["top"] == x["top"] and s["left"] > x["right"]               # side by side, a phone's too
    assert 0 <= note["top"] - caption["bottom"] <= 12 and note["left"] == x["left"]    # right under them
    assert page.evaluate("document.documentElement.scrollWidth") == (390 if phone else 1280)
    page.context.close()                                               # the phone's, or new_page's own


def test_a_gallery_card_without_a_picture_says_why_and_a_running_one_shows_its_thumbnail(browser):
    # a queued or running run's card was a blank grey box (the live page had the picture), then a
    # label only: it shows its content photo under the label until the run has a picture
    runs = [{**gallery_row("queued"), "output": "web-q.png"}, {**gallery_row("running"), "output": "web-r.png"},
            {**gallery_row("failed"), "output": "web-f.png"}]
    photo = lambda r: r.fulfill(body=jpeg_bytes((30, 20)), content_type="image/jpeg")     # noqa: E731
    page = browser.new_page(bypass_csp=True)
    fake_site(page, {("GET", "/api/options"): (200, {"options": []}),
                     ("GET", "/api/runs"): lambda r: r.fulfill(json={"runs": runs, "queue": {"active": 2, "max": 3}}),
                     ("GET", "/runs/web-q/photo"): photo, ("GET", "/runs/web-r/photo"): photo,
                     ("GET", "/runs/web-r/thumb"): lambda r: r.fulfill(body=jpeg_bytes(), content_type="image/jpeg")})
    page.goto(SITE + "/")
    page.wait_for_selector(".run[data-name='web-f']")
    said = "(name) => { const p = document.querySelector(`.run[data-name='${name}'] .placeholder`); " \
           "return p.checkVisibility() ? p.textContent : null; }"
    assert [page.evaluate(said, n) for n in ("web-q", "web-r", "web-f")] == [
        "queued: it starts when a worker is free", "its first picture is on its way", "no picture"]
    for name in ("web-q", "web-r"):                                    # the photo, the label on a band under it
        image = f".run[data-name='{name}'] img"
        page.wait_for_function(f"document.querySelector(\"{image}\").naturalWidth === 30")
        band = page.evaluate("(n) => { const f = document.querySelector(`.run[data-name='${n}'] .frame`), "
                             "b = f.querySelector('.placeholder'); return [f.getBoundingClientRect().bottom, "
                             "b.getBoundingClientRect().bottom, b.getBoundingClientRect().height]; }", name)
        assert page.get_attribute(image, "src") == f"/runs/{name}/photo" and band[0] == band[1] and band[2] < 40
    assert page.get_attribute(".run[data-name='web-f'] img", "src") is None
    runs[1] = {**runs[1], "thumb": 2}                                  # the worker's picture of iteration 2 came
    image = ".run[data-name='web-r'] img"
    page.wait_for_function(f"document.querySelector(\"{image}\").naturalWidth === 40")
    assert page.get_attribute(image, "src") == "/runs/web-r/thumb?v=2" and page.evaluate(said, "web-r") is None
    page.close()


@pytest.mark.parametrize("width", [1280, 390])
def test_a_cards_picture_is_sharp_on_a_2x_screen(browser, tmp_path, width):
    # the cards' 256 px pictures were soft on a 2× screen (a laptop's, a phone's): the server's
    # thumbnail has at least two pixels for each CSS px the card shows it at
    from PIL import Image

    from nst.web.thumbs import Thumbnails
    Image.new("RGB", (1600, 1200), (200, 90, 30)).save(tmp_path / "big.png")
    jpeg = Thumbnails().of(tmp_path / "big.png")                       # as the server makes it
    runs = [{**gallery_row("done"), "finished": "2026-12-05T17:00:00Z"}]
    context = browser.new_context(viewport={"width": width, "height": 900}, device_scale_factor=2, bypass_csp=True)
    page = context.new_page()
    fake_site(page, {("GET", "/api/options"): (200, {"options": []}),
                     ("GET", "/api/runs"): lambda r: r.fulfill(json={"runs": runs, "queue": {"active": 0, "max": 3}}),
                     ("GET", "/runs/web-1/thumb"): lambda r: r.fulfill(body=jpeg, content_type="image/jpeg")})
    page.goto(SITE + "/")
    image = ".run[data-name='web-1'] img"
    page.wait_for_function(f"(document.querySelector(\"{image}\") || {{}}).naturalWidth > 0")
    shown, natural, ratio = page.evaluate("""(s) => {
        const i = document.querySelector(s), r = i.getBoundingClientRect();
        const k = Math.min(r.width / i.naturalWidth, r.height / i.naturalHeight);      // object-fit: contain
        return [i.naturalWidth * k, i.naturalWidth, devicePixelRatio]; }""", image)
    assert ratio == 2 and natural >= ratio * shown > 200, (natural, shown)
    context.close()


def jpeg_bytes(size=(40, 30)):
    import io

    from PIL import Image
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 90, 30)).save(buf, "JPEG")
    return buf.getvalue()


def test_serve_gallery_shows_a_running_runs_latest_picture(browser, images, tmp_path):
    # a running run's card on nst serve's gallery was a grey box while its live page had the picture
    content, style, weights = images
    proc = serve(tmp_path / "runs", weights)
    try:
        base = base_of(proc.url())
        started = start_adam_run(base, content, style, size=64, iterations=100000)
        page = browser.new_page(bypass_csp=True)
        page.goto(base + "/")
        image = f".run[data-name='{started['name']}'][data-status='running'] img"
        thumb = f"(document.querySelector(\"{image}\") || {{}}).src || ''"
        page.wait_for_function(f"{thumb}.includes('/thumb?v=') && document.querySelector(\"{image}\").naturalWidth "
                               "=== 64", timeout=120_000)
        first = page.evaluate(thumb)
        page.wait_for_function(f"{thumb} !== {json.dumps(first)}", timeout=30_000)       # a later picture
        assert request(base + f"/runs/{started['name']}/control/stop", b"", method="POST")[0] == 200
    finally:
        proc.kill()


def test_serve_gallery_cards_of_finished_runs_load_a_thumbnail_and_download_the_png(browser, images, tmp_path):
    # a done run's card loaded its whole PNG as its picture: megabytes for a 2000 px run, for each
    # card of the gallery. It loads a JPEG at most THUMB_SIDE a side; Download PNG is the picture
    import io

    from PIL import Image

    from nst.web.channel import THUMB_SIDE
    content, style, weights = images
    outdir = tmp_path / "runs"
    proc = serve(outdir, weights)
    try:
        base = base_of(proc.url())
        started = start_adam_run(base, content, style, size=600, iterations=2)
        name = started["name"]
        page = browser.new_page(bypass_csp=True)
        loaded = {}
        page.on("response", lambda r: loaded.setdefault(urlparse(r.url).path, r))
        page.goto(base + "/")
        card = f".run[data-name='{name}'][data-status='done']"
        page.wait_for_function(f"(document.querySelector(\"{card} img\") || {{}}).naturalWidth > 0", timeout=120_000)
        assert page.get_attribute(f"{card} img", "src").startswith(f"/runs/{name}/thumb?v=")
        picture = Image.open(io.BytesIO(loaded[f"/runs/{name}/thumb"].body()))
        assert picture.format == "JPEG" and max(picture.size) == THUMB_SIDE
        assert page.evaluate(f"document.querySelector(\"{card} img\").naturalWidth") == picture.width
        assert f"/runs/{name}/image" not in loaded
        with page.expect_download() as download:
            page.click(f"{card} a.download")
        saved = (outdir / f"{name}.png").read_bytes()
        assert open(download.value.path(), "rb").read() == saved and Image.open(io.BytesIO(saved)).width == 600
        page.close()
    finally:
        proc.kill()


def test_a_card_whose_picture_was_replaced_says_why_where_the_picture_would_be(browser):
    # a file of the user's put at a run's name: its card showed a blank box and nothing else (only
    # Download PNG said why); the server's one-line reason now stands where the picture would be
    refused = "OUTDIR/web-1.png exists and nst did not write it: not served, as it is not the picture this run made"
    runs = [{**gallery_row("done"), "finished": "2026-12-06T01:00:00"}]
    page = browser.new_page(bypass_csp=True)
    fake_site(page, {("GET", "/api/options"): (200, {"options": []}),
                     ("GET", "/api/runs"): lambda r: r.fulfill(json={"runs": runs, "queue": {"active": 0, "max": 3}}),
                     ("GET", "/runs/web-1/thumb"): (409, {"error": refused})})
    page.goto(SITE + "/")
    said = "document.querySelector('.run .placeholder')"
    page.wait_for_function(f"{said}.checkVisibility() && {said}.textContent !== 'no picture'")
    assert page.text_content(".run .placeholder") == refused
    runs[0] = {**runs[0], "seconds": 3.0}                              # the card filled again: the reason stays
    page.wait_for_function("document.querySelector('.run').textContent.includes('3.0 s')")
    assert page.evaluate(f"{said}.checkVisibility()") and page.text_content(".run .placeholder") == refused
    page.close()
