"""The web pieces without a browser: the run controls (pause, stop), the channel's latest-value slot,
the form's messages (the CLI's own), addresses and tokens, upload checks."""
import base64
import io
import json
import threading
import time
import zipfile

import numpy as np
import pytest

from nst.run.controls import Controls
from nst.run.run import Run
from nst.run.settings import Settings
from web_client import FakeRun, bomb_png, decoded, png_bytes

pytest.importorskip("aiohttp")

from nst.web.channel import Channel, Publisher, Snapshot  # noqa: E402
from nst.web.form import settings_from  # noqa: E402
from nst.web.server import is_local, new_token, parse_address, url_of  # noqa: E402
from nst.web.uploads import Refused, check_image  # noqa: E402


def tiny_run(rng, weights, **settings):
    img = lambda: rng.uniform(0, 255, (40, 48, 3)).astype(np.float32)   # noqa: E731
    s = dict(size=48, scales=1, iterations=100000, optimizer="adam", backend="numpy", weights=weights)
    return Run(img(), [img()], Settings(**{**s, **settings}), log=lambda m: None)


def wait_until(cond, timeout=60.0):
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.02)


def start(run, on_iteration=None):
    t = threading.Thread(target=run.run, args=(on_iteration,), daemon=True)
    t.start()
    return t


def test_pause_holds_resume_moves_stop_ends_like_ctrl_c(rng, tiny_weights):
    run = tiny_run(rng, tiny_weights)
    run.controls = Controls()
    t = start(run)
    wait_until(lambda: len(run.history) >= 2)
    run.controls.pause()
    time.sleep(0.3)                                # the iteration under way ends
    held = len(run.history)
    time.sleep(0.5)
    assert len(run.history) == held and t.is_alive()
    run.controls.resume()
    wait_until(lambda: len(run.history) > held + 1)
    run.controls.stop()
    t.join(30)
    assert not t.is_alive() and run.interrupted and run.stop_requested
    assert run.output() is not None


def test_a_signal_stops_a_paused_run(rng, tiny_weights):
    run = tiny_run(rng, tiny_weights)
    run.controls = Controls()
    t = start(run)
    wait_until(lambda: len(run.history) >= 1)
    run.controls.pause()
    time.sleep(0.3)
    run.stop_requested = True                      # what nst.cli.Stopper does on the first Ctrl-C
    t.join(10)
    assert not t.is_alive() and run.interrupted


def test_without_a_page_the_run_appends_points_and_makes_no_picture(monkeypatch):
    # each iteration made the picture on the host (a device-to-host copy, a clip, to 8 bits; with
    # --keep-colors luminance a resize and a colour transfer) for no page: made only once one asks
    from nst.web import channel as channel_module
    monkeypatch.setattr(channel_module.panel_maps, "compute", lambda *a: pytest.fail("a panel made for no page"))
    ch, run = Channel(), FakeRun()
    pub = Publisher(ch)
    pub.attach(run)
    for it in range(1, 6):
        pub.on_iteration(run, it, {"total": 1.0})
    assert (run.outputs, run.made) == (5, 0) and ch.snapshot.seq == 5 and ch.snapshot.encoded is None
    assert [p["it"] for p in ch.points] == [1, 2, 3, 4, 5] and ch.points[0]["layers"] == {"block1_conv1": 2.0}
    ch.watch("page", {}, lambda: None)
    for _ in range(2):                                                  # two pages: made once
        assert decoded(ch.message(0, -1)[0]["image"]).mean() == pytest.approx(5, abs=1)
    assert run.made == 1


@pytest.mark.parametrize("optimizer, average", [("lbfgs", 0.0), ("adam", 0.0), ("gd", 0.0), ("adam", 0.9)])
def test_a_picture_asked_for_later_is_the_one_of_its_iteration_or_none(rng, tiny_weights, optimizer, average):
    # Run.output_later keeps x (or the EMA) by reference: made after more iterations it is the picture
    # of the iteration it was asked at where the optimiser replaces x, and None where it writes into x
    # (Adam): a stale picture is skipped, never another iteration's
    run = tiny_run(rng, tiny_weights, optimizer=optimizer, average=average, iterations=6,
                   keep_colors="luminance", **({"lr": 1e-3} if optimizer == "gd" else {}))
    asked = {}
    run.run(lambda r, it, terms: asked.update({it: (r.output_later(), r.output())}))
    assert len(asked) == 6
    for it, (later, then) in asked.items():
        if optimizer == "adam" and not average and it < 6:
            assert later() is None, it
        else:
            assert np.array_equal(later(), then), it
    assert not np.array_equal(asked[2][1], asked[6][1])


class CopiesOfX(np.ndarray):
    # the run's x, counting its copies (ndarray.copy on it or a view of it)
    copies = 0

    def copy(self, *a, **k):
        CopiesOfX.copies += 1
        return super().copy(*a, **k)


def test_adam_under_a_live_page_copies_no_image_an_iteration(rng, tiny_weights):
    # the live page's hook copied x at every Adam iteration (its kernel writes into x), for a page
    # that might ask for that picture later, though none watched
    run = tiny_run(rng, tiny_weights, iterations=4)
    publisher = Publisher(Channel())
    publisher.attach(run)

    def on_iteration(r, it, terms):
        if it == 1:
            r.opt.x = r.opt.x.view(CopiesOfX)
            CopiesOfX.copies = 0
        publisher.on_iteration(r, it, terms)
    run.run(on_iteration)
    assert len(run.history) == 4 and CopiesOfX.copies == 0


def test_a_page_never_sees_an_adam_step_half_written(rng, tiny_weights, monkeypatch):
    # Adam writes into x, which the page's picture now reads by reference: each write and each read
    # of x hold the step's lock (a read waits for a write under way, and the other way round), and a
    # picture asked for before a step is None once it has written: the page gets the next one
    import nst.run.run
    run = tiny_run(rng, tiny_weights, iterations=3)
    publisher, locked = Publisher(Channel()), []
    publisher.attach(run)
    real_to_host = nst.run.run.to_host

    def to_host(a):                                  # a picture read from x (not the terms)
        if a is run.opt.x:
            locked.append(("read", run.opt.x_lock.locked()))
        return real_to_host(a)

    def under_lock(kernel):
        def write(*args):
            locked.append(("write", run.opt.x_lock.locked()))
            kernel(*args)
        return write
    pictures = {}

    def on_iteration(r, it, terms):
        if it == 1:
            r.opt.kernel = under_lock(r.opt.kernel)
        publisher.on_iteration(r, it, terms)
        pictures[it] = (publisher.channel.snapshot.picture, r.output())
        if it == 2:
            assert np.array_equal(pictures[2][0](), pictures[2][1])     # asked before the next step: made
    monkeypatch.setattr(nst.run.run, "to_host", to_host)
    run.run(on_iteration)
    assert pictures[1][0]() is None                  # made after iteration 2 wrote into x: skipped
    assert set(locked) == {("read", True), ("write", True)} and ("write", True) in locked


def test_a_page_that_comes_mid_iteration_gets_the_last_iterations_picture_at_once():
    # a page opened (or reloaded) while a slow iteration ran had no picture until it ended: the
    # image was kept only while a page watched
    ch, run = Channel(), FakeRun()
    pub = Publisher(ch)
    pub.attach(run)
    for it in range(1, 4):
        pub.on_iteration(run, it, {"total": float(it)})
    ch.watch("page", {}, lambda: None)                     # the page comes; no iteration ends meanwhile
    msg, _, _ = ch.message(0, -1)
    assert [p["it"] for p in msg["points"]] == [1, 2, 3] and msg["status"]["it"] == 3
    assert decoded(msg["image"]).mean() == pytest.approx(3, abs=1)         # the third iteration's picture


def test_panels_asked_for_as_the_throttle_skips_them_come_while_paused(monkeypatch):
    # a page ticking a panel within 0.25 s of the last panels' capture, then the run pausing: the
    # skipped request was recorded as seen, so the paused run's refresh never made it (until Resume)
    import nst.web.channel as channel
    computed = []
    monkeypatch.setattr(channel.panel_maps, "compute", lambda run, wanted: computed.append(wanted) or {"grad": 1})
    ch, run = Channel(), FakeRun()
    pub = Publisher(ch)
    pub.PANEL_EVERY_S = 3600                                  # however slow this machine, the next is throttled
    monkeypatch.setattr(channel.time, "perf_counter", lambda: 60.0)   # a machine up a minute: the first is made
    pub.attach(run)
    ch.watch("page", {"grad": True}, lambda: None)
    pub.on_iteration(run, 1, {"total": 1.0})                  # the grad panel made
    ch.watch("page", {"grad": True, "features": True}, lambda: None)
    pub.on_iteration(run, 2, {"total": 2.0})                  # the throttle skips it
    assert [w["features"] for w in computed] == [False]
    pub.refresh(run)                                          # the run is paused: a poll
    assert [w["features"] for w in computed] == [False, True]
    pub.refresh(run)                                          # made once, not at every poll
    assert len(computed) == 2


def test_a_slow_page_gets_the_latest_image_not_a_queue():
    ch, run = Channel(), FakeRun()
    pub = Publisher(ch)
    pub.attach(run)
    woken = []
    ch.watch("page", {}, lambda: woken.append(1))
    msg, sent, seq = ch.message(0, -1)
    for it in range(1, 8):                          # the page reads nothing meanwhile
        pub.on_iteration(run, it, {"total": float(it)})
    assert run.outputs == 7 and woken
    msg, sent, seq = ch.message(sent, seq)
    assert [p["it"] for p in msg["points"]] == list(range(1, 8))     # every point
    assert seq == 7 and "image" in msg                                  # one image: the latest
    assert ch.message(sent, seq)[0].get("image") is None                # nothing new: no image


@pytest.mark.parametrize("option, value", [("size", "8"), ("style-weight", "-1"), ("lr", "nan"),
                                           ("style-layers", "conv9_9"), ("optimizer", "sgd"), ("seed", "x")])
def test_the_form_says_what_the_command_line_says(option, value, capsys):
    from nst.cli import main
    with pytest.raises(SystemExit):
        main(["transfer", "a.png", "b.png", "-o", "o.png", f"--{option}", value])
    cli = capsys.readouterr().err
    server = type("S", (), {"backend": "numpy", "weights": None})
    with pytest.raises(Refused) as e:
        settings_from({option: value}, 1, server)
    assert e.value.status == 400 and f"nst: error: {e.value} (see" in cli


def test_the_form_refuses_what_only_the_command_line_may_do():
    server = type("S", (), {"backend": "numpy", "weights": None})
    for fields in ({"init": "/etc/passwd"}, {"weights": "x.h5"}, {"backend": "numpy"}, {"../x": "1"}):
        with pytest.raises(Refused):
            settings_from(fields, 1, server)
    s = settings_from({"size": "64", "style-blend": "1,1"}, 2, server)
    assert s.size == 64 and s.style_blend == (1.0, 1.0) and s.weights is None
    with pytest.raises(Refused) as e:                     # nst.run.checks.check_options' own words
        settings_from({"style-blend": "1,1,2"}, 2, server)
    assert e.value.status == 400
    assert str(e.value) == "--style-blend has 3 values for 2 style images; give one per STYLE"


@pytest.mark.parametrize("theirs", ["file", "link"])
def test_serve_refuses_an_outdir_whose_manifest_nst_did_not_write(tmp_path, capsys, theirs):
    # nst serve appends its runs' rows to OUTDIR/manifest.jsonl: another's file there is refused
    # before the server starts, and stays as it was
    from nst.cli import main
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    out = tmp_path / "out"
    out.mkdir()
    if theirs == "file":
        (out / "manifest.jsonl").write_text("my notes\n")
    else:
        (out / "manifest.jsonl").symlink_to(notes)
    assert main(["serve", "--port", "0", "--outdir", str(out), "--backend", "numpy"]) == 2
    err = capsys.readouterr().err
    assert "--outdir" in err and "manifest.jsonl" in err and len(err.strip().splitlines()) == 1, err
    assert notes.read_text() == "my notes\n" and (out / "manifest.jsonl").read_text() == "my notes\n"


def test_addresses_and_tokens():
    assert parse_address("8080") == ("127.0.0.1", 8080)
    assert parse_address("0.0.0.0:0") == ("0.0.0.0", 0)
    assert parse_address("[::1]:81") == ("::1", 81)
    for bad in ("x", "1:2:3:99999", "host:"):
        with pytest.raises(ValueError):
            parse_address(bad)
    assert is_local("127.0.0.1") and is_local("::1") and is_local("localhost") and not is_local("0.0.0.0")
    assert new_token("127.0.0.1") is None and len(new_token("0.0.0.0")) > 20
    import socket                               # on every address: the name other machines reach it by
    assert url_of("0.0.0.0", 5, "t") == url_of("::", 5, "t") == f"http://{socket.gethostname()}:5/?token=t"


def test_uploads_are_checked_before_decoding(rng):
    assert check_image(png_bytes(rng), "x", 10_000) == ".png"
    cases = {413: [bomb_png(), png_bytes(rng, 200, 100)], 415: [b"GIF89a" + bytes(40), b"hello"],
             400: [png_bytes(rng)[:60]]}
    for status, blobs in cases.items():
        for data in blobs:
            with pytest.raises(Refused) as e:
                check_image(data, "x", 10_000)
            assert e.value.status == status, e.value


def animation_bytes(rng, fmt):
    # an animated PNG or WebP of 3 frames
    import io

    from PIL import Image
    frames = [Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype="uint8")) for _ in range(3)]
    buf = io.BytesIO()
    frames[0].save(buf, fmt, save_all=True, append_images=frames[1:], duration=100)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_an_animated_upload_is_refused_in_one_line_naming_nst_video(rng, fmt):
    # the page took its first frame and said nothing (nst transfer warns; the page shows no warning)
    with pytest.raises(Refused) as e:
        check_image(animation_bytes(rng, fmt), "style 'dance.x'", 10_000)
    assert (e.value.status, str(e.value)) == (415, "style 'dance.x': an animation of 3 frames; send one still "
                                                   "picture (nst video styles every frame)")


def test_the_forms_help_reads_as_nst_transfer_help_prints_it():
    # each option's help with argparse's %-expansion done: defaults filled in, "%%" a single "%"
    from nst.web.form import form_options
    helps = {o["name"]: o["help"] for o in form_options()}
    assert not [h for h in helps.values() if "%(" in h or "%%" in h]
    assert "within 95 % of the free memory" in helps["tile"] and "(default: auto)" in helps["tile"]


def test_the_forms_init_is_a_choice_of_its_keywords():
    # the page has no file of the server's to name: --init is a select of the keywords, the default among them
    from nst.run.settings import DEFAULTS, INIT_KEYWORDS
    from nst.web.form import form_options
    init = {o["name"]: o for o in form_options()}["init"]
    assert init["choices"] == list(INIT_KEYWORDS) and init["default"] == DEFAULTS.init in INIT_KEYWORDS


# -- nst serve: start-up checks, ownership of OUTDIR's files, the engine, the form's messages ----------------
def serve_args(outdir, weights, *more):
    from nst.cli.parser import build_parser
    return build_parser().parse_args(["serve", "--port", "0", "--outdir", str(outdir), "--weights", str(weights),
                                      "--backend", "numpy", *map(str, more)])


def test_serve_debug_reaches_its_runs_tasks(tmp_path, tiny_weights_h5):
    # --debug shows a task's NumPy overflow warnings (nst.batch.task.run_task's options["debug"], as
    # nst batch --debug does): nst serve did not pass it, so its runs hid them whatever it was started with
    from nst.web.app import App
    for more, debug in [((), False), (("--debug",), True)]:
        assert App(serve_args(tmp_path / f"runs{debug}", tiny_weights_h5, *more)).runs.options["debug"] is debug


def ask(app, requests):
    # [(method, path, aiohttp data)] to the App in this process (its engine not started: runs only
    # queue) -> [(status, json)]
    import asyncio

    from aiohttp.test_utils import TestClient, TestServer

    async def go():
        async with TestClient(TestServer(app.make_app())) as client:
            answers = []
            for method, path, data in requests:
                r = await client.request(method, path, data=data)
                answers.append((r.status, await r.json()))
            return answers
    return asyncio.run(go())


def test_a_stale_live_link_opened_in_a_browser_is_a_page(tmp_path, tiny_weights_h5):
    # /runs/NAME/live of a run the server no longer has (a restart, a typo) showed {"error": …} as
    # text; a browser's navigation (Accept: text/html) gets the reason and a link to the gallery,
    # the pages' own requests JSON as before
    import asyncio

    from aiohttp.test_utils import TestClient, TestServer

    from nst.web.app import App
    app = App(serve_args(tmp_path / "runs", tiny_weights_h5))

    async def go():
        async with TestClient(TestServer(app.make_app())) as client:
            page = await client.get("/runs/gone/live", headers={"Accept": "text/html,application/xhtml+xml"})
            api = await client.get("/runs/gone/live")
            return page.status, page.content_type, await page.text(), api.status, await api.json()
    status, kind, text, api_status, api = asyncio.run(go())
    assert (status, kind, api_status) == (404, "text/html", 404)
    assert "no live run of that name" in text and '<a href="/">' in text and "{" not in text
    assert api == {"error": "no live run of that name (the gallery has the finished ones)"}


def test_a_long_running_server_keeps_the_live_pages_of_recent_runs_only(tmp_path, tiny_weights_h5):
    # every run's channel (its points and last image) stayed in memory until the server stopped
    from nst.web import runs as web_runs
    from nst.web.app import App
    from nst.web.channel import Channel
    runs = App(serve_args(tmp_path / "runs", tiny_weights_h5)).runs
    keys = [f"r{i}" for i in range(web_runs.KEEP_ENDED + 7)]
    runs.channels = {k: Channel({"title": k}, state="done") for k in keys}
    runs.active = {"r0": None}                                   # the oldest, still running: kept
    runs.forget_old()
    assert list(runs.channels) == ["r0", *keys[-web_runs.KEEP_ENDED:]]


def form(fields=(), files=()):
    # a multipart form: fields [(name, text)], files [(name, file name, bytes)]
    from aiohttp import FormData
    data = FormData()
    for name, value in fields:
        data.add_field(name, value)
    for name, filename, blob in files:
        data.add_field(name, blob, filename=filename, content_type="application/octet-stream")
    return data


def jpeg_bytes(rng):
    import io

    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype="uint8")).save(buf, "JPEG")
    return buf.getvalue()


@pytest.fixture
def pictures(tmp_path, rng):
    (tmp_path / "tubingen.png").write_bytes(png_bytes(rng))
    (tmp_path / "starry_night.png").write_bytes(png_bytes(rng, 40, 56))
    return tmp_path / "tubingen.png", tmp_path / "starry_night.png"


def test_serve_never_resumes_over_a_file_nst_batch_protected(tmp_path, pictures, tiny_weights_h5, capsys):
    # the user's file under a task's name: nst batch refuses it (a failed row); nst serve's Resume is
    # refused too (409), before any run, and the file stays as it was
    from nst.cli import main
    from nst.web.app import App
    out = tmp_path / "u1"
    out.mkdir()
    precious = out / "tubingen__starry_night.png"
    precious.write_text("my precious\n")
    assert main(["batch", str(pictures[0]), "--style", str(pictures[1]), "-o", str(out), "--size", "32",
                 "--iterations", "2", "--scales", "1", "--weights", str(tiny_weights_h5), "--backend", "numpy"]) == 1
    assert "nst did not write it" in capsys.readouterr().err
    app = App(serve_args(out, tiny_weights_h5))
    (code, answer), = ask(app, [("POST", "/api/runs/tubingen__starry_night/resume", None)])
    assert code == 409 and "nst did not write it" in answer["error"] and "OUTDIR/" in answer["error"], answer
    assert not app.runs.active and precious.read_text() == "my precious\n"


def test_a_run_saves_its_picture_only_over_its_own(tmp_path, pictures, tiny_weights_h5):
    # checked again as a run ends: a file put under its name meanwhile is kept and the run fails; the
    # picture a run writes is recorded (sha256), so that its resume may replace it
    from nst.batch import results
    from nst.web.runs import Runs, make_task
    out = tmp_path / "runs"
    runs = Runs(out, 4, None, {}, None)
    shas = {p: str(p) for p in pictures}
    image = np.full((8, 8, 3), 7, np.uint8)
    for key in ("theirs", "ours"):
        task = make_task(key, pictures[0], pictures[1:], Settings(size=32, weights=str(tiny_weights_h5)), shas)
        runs.submit(task, {"title": key})
        if key == "theirs":
            out.mkdir()
            (out / "theirs.png").write_text("my precious\n")
        runs._end(task, {"status": "stopped", "image": image})
    rows = results.read_manifest(out)
    assert (out / "theirs.png").read_text() == "my precious\n"
    assert rows["theirs.png"]["status"] == "failed" and "nst did not write it" in rows["theirs.png"]["error"]
    assert rows["ours.png"]["status"] == "stopped" and (out / "ours.png").is_file()
    # the pages name the folder OUTDIR, as the refusals do (the live page and gallery showed the server's path)
    shown = {r["output"]: r for r in runs.rows()}
    assert shown["theirs.png"]["error"].startswith("OUTDIR/theirs.png exists"), shown["theirs.png"]
    assert runs.channels["theirs"].status["error"] == shown["theirs.png"]["error"]
    assert runs.blocked("ours.png") is None and runs.blocked("theirs.png")
    lines = (out / results.MANIFEST).read_text().splitlines()
    assert len(lines) == 2 and rows["ours.png"]["sha256"]                   # one row each run's end
    assert sorted(p.name for p in out.iterdir()) == ["manifest.jsonl", "ours.png", "theirs.png"]


def test_a_full_queue_of_one_says_one_run_in_one_message_wherever_refused(tmp_path, pictures, tiny_weights_h5):
    # nst serve --queue 1: "the queue is full: 1 runs are queued or running"; the form's early
    # refusal (before the uploads) said it in other words, "(1 runs queued ...)", than the submission's
    import asyncio
    from nst.web.form import read_form
    from nst.web.runs import Runs, make_task
    with pytest.raises(Refused) as early:
        asyncio.run(read_form(None, 1, 1, 0, 0))
    runs = Runs(tmp_path / "runs", 1, None, {}, None)
    settings, shas = Settings(size=32, weights=str(tiny_weights_h5)), {p: str(p) for p in pictures}
    runs.submit(make_task("first", pictures[0], pictures[1:], settings, shas), {})
    with pytest.raises(Refused, match=r"^the queue is full: 1 run is queued or running \(nst serve --queue 1\)") \
            as late:
        runs.submit(make_task("second", pictures[0], pictures[1:], settings, shas), {})
    assert (early.value.status, str(early.value)) == (late.value.status, str(late.value))


def test_resume_of_a_stopped_run_whose_checkpoint_is_gone_or_foreign_is_refused(tmp_path, pictures,
                                                                                      tiny_weights_h5):
    # Resume on a run stopped at iteration 5 whose checkpoint was removed started it again from
    # iteration 0, its stopped picture then replaced (`nst transfer --resume` refuses a missing one);
    # so did one damaged or made by an nst with other automatic rules, said only in the worker's log
    from nst.run.job import automatic_rules
    app, task, settings, ckpt = ended_run(tmp_path, pictures, tiny_weights_h5,
                                          {"status": "stopped", "image": np.full((8, 8, 3), 7, np.uint8),
                                           "iterations": 5})
    (code, answer), = ask(app, [("POST", "/api/runs/ours/resume", None)])
    assert code == 409 and answer["error"] == (f"no checkpoint of it in OUTDIR/checkpoints ({ckpt.name}): "
                                               "Run again starts it over"), answer
    assert not app.runs.active
    ckpt.parent.mkdir()
    ckpt.write_bytes(b"the user's notes")          # not nst's checkpoint: the worker started over, saying so in its log
    (code, answer), = ask(app, [("POST", "/api/runs/ours/resume", None)])
    assert code == 409 and answer["error"] == (f"OUTDIR/checkpoints/{ckpt.name} is not nst's checkpoint: "
                                               "Run again starts it over"), answer
    assert not app.runs.active and ckpt.read_bytes() == b"the user's notes"
    with zipfile.ZipFile(ckpt, "w") as z:           # nst's (an .npz holding meta.npy) but damaged: the worker
        z.writestr("meta.npy", b"")                 # started over, saying so in its log only
    (code, answer), = ask(app, [("POST", "/api/runs/ours/resume", None)])
    assert code == 409 and answer["error"] == (f"OUTDIR/checkpoints/{ckpt.name} cannot be read back (damaged or "
                                               "incomplete): Run again starts it over"), answer
    rules = automatic_rules(settings)
    write_checkpoint(ckpt, {"digest": task.digest, "automatic_rules": {**rules, "auto_schedule": "a newer one"}})
    (code, answer), = ask(app, [("POST", "/api/runs/ours/resume", None)])
    assert code == 409 and answer["error"] == (f"OUTDIR/checkpoints/{ckpt.name} was made by an nst whose automatic "
                                               "rules differ from this one's: Run again starts it over"), answer
    assert not app.runs.active
    write_checkpoint(ckpt, {"digest": task.digest, "automatic_rules": rules})    # resumed (queued; no engine)
    (code, answer), = ask(app, [("POST", "/api/runs/ours/resume", None)])
    assert code == 201 and "ours" in app.runs.active, answer


@pytest.mark.parametrize("status", ["failed", "cancelled"])
def test_resume_of_a_failed_or_cancelled_run_checks_its_checkpoint_as_a_stopped_ones(tmp_path, pictures,
                                                                                    tiny_weights_h5, status):
    # Resume of a failed or cancelled run skipped the checks of a stopped one's checkpoint: a damaged
    # one or a file of the user's at its name started the run over, said only in the worker's log
    from nst.run.job import automatic_rules
    app, task, settings, ckpt = ended_run(tmp_path, pictures, tiny_weights_h5, {"status": status, "error": "it broke"})
    ckpt.parent.mkdir()
    ckpt.write_bytes(b"the user's notes")
    (code, answer), = ask(app, [("POST", "/api/runs/ours/resume", None)])
    assert code == 409 and answer["error"] == (f"OUTDIR/checkpoints/{ckpt.name} is not nst's checkpoint: "
                                               "Run again starts it over"), answer
    with zipfile.ZipFile(ckpt, "w") as z:
        z.writestr("meta.npy", b"")
    (code, answer), = ask(app, [("POST", "/api/runs/ours/resume", None)])
    assert code == 409 and answer["error"] == (f"OUTDIR/checkpoints/{ckpt.name} cannot be read back (damaged or "
                                               "incomplete): Run again starts it over"), answer
    assert not app.runs.active
    write_checkpoint(ckpt, {"digest": task.digest, "automatic_rules": automatic_rules(settings)})
    (code, answer), = ask(app, [("POST", "/api/runs/ours/resume", None)])
    assert code == 201 and "ours" in app.runs.active, answer


def test_resume_of_a_failed_run_without_a_checkpoint_starts_it_over(tmp_path, pictures, tiny_weights_h5):
    # a run that failed before its first checkpoint has none: Resume starts it over, unrefused
    app = ended_run(tmp_path, pictures, tiny_weights_h5, {"status": "failed", "error": "it broke"})[0]
    (code, answer), = ask(app, [("POST", "/api/runs/ours/resume", None)])
    assert code == 201 and "ours" in app.runs.active, answer


def ended_run(tmp_path, pictures, weights, ending):
    # nst serve's app holding one run "ours" (32 px, 9 iterations) ended as `ending` (a worker's
    # answer to Runs._end) and out of the queue -> (app, its task, its settings, its checkpoint's path)
    from nst.batch.task import checkpoint_path
    from nst.web.app import App
    from nst.web.rows import sha_of
    from nst.web.runs import make_task
    out = tmp_path / "runs"
    app = App(serve_args(out, weights))
    shas = {**app.shas, **{p: sha_of(p) for p in pictures}}
    settings = Settings(size=32, scales=1, iterations=9, weights=app.weights, backend="numpy")
    task = make_task("ours", pictures[0], pictures[1:], settings, shas)
    app.runs.submit(task, {"title": "ours"})
    app.runs._end(task, ending)
    app.runs.active.clear()
    return app, task, settings, checkpoint_path(out / "checkpoints", task.key, task.digest)


def write_checkpoint(path, identity):
    # a checkpoint nst.io.checkpoint.load takes, of `identity`, its state a run at iteration 0
    from nst.io import checkpoint
    meta = {"format": checkpoint.FORMAT, "identity": identity, "opt_scalars": {},
            "state": {"scale": 0, "history": [], "shape": [8, 8, 3], "past_evaluations": 0}}
    with open(path, "wb") as f:
        np.savez(f, meta=np.array(json.dumps(meta)), **{"opt.x": np.ones(3, np.float32)})


def test_a_row_the_full_disk_refused_stays_in_the_gallery_and_later_runs_are_recorded(tmp_path, pictures,
                                                                                       tiny_weights_h5, monkeypatch):
    # one manifest append refused (disk full) made every later run's row silent: once the disk had
    # room again the runs still ended, their pictures written, and none came into the gallery
    import errno

    from nst.batch import results
    from nst.web import runs as web_runs
    from nst.web.runs import Runs, make_task
    out = tmp_path / "runs"
    runs = Runs(out, 4, None, {}, None)
    real, full = results.append_row, [True]

    def append_row(path, row):
        if full[0]:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, row)
    monkeypatch.setattr(web_runs.results, "append_row", append_row)
    image, shas = np.full((8, 8, 3), 7, np.uint8), {p: str(p) for p in pictures}
    for key in ("first", "second"):
        task = make_task(key, pictures[0], pictures[1:], Settings(size=32, weights=str(tiny_weights_h5)), shas)
        runs.submit(task, {"title": key})
        runs._end(task, {"status": "done", "image": image})
        full[0] = False                                          # the disk has room again
    shown = {r["output"]: r for r in runs.rows()}
    assert shown["first.png"]["status"] == "failed", shown
    assert shown["first.png"]["error"] == "first.png: not written (No space left on device)"
    rows = results.read_manifest(out)
    assert rows["second.png"]["status"] == "done" and (out / "second.png").is_file(), rows
    assert shown["second.png"]["status"] == "done"


@pytest.fixture
def engine_runs(tmp_path, shared_cluster):
    # nst serve's Runs on the tests' in-process Dask worker (one task at a time), its engine started
    import contextlib

    from distributed import Client

    from nst.web.runs import Runs

    @contextlib.contextmanager
    def connect():
        with Client(shared_cluster) as client:
            yield client
    runs = Runs(tmp_path / "runs", 4, connect, {"checkpoint_dir": None, "checkpoint_every": 0}, lambda k, t: None)
    runs.start()
    yield runs
    runs.shutdown(grace=5)


def submit_run(runs, key, pictures, weights, iterations):
    from nst.web.runs import make_task
    settings = Settings(size=32, scales=1, iterations=iterations, optimizer="adam", backend="numpy",
                        weights=str(weights))
    runs.submit(make_task(key, pictures[0], pictures[1:], settings, {p: str(p) for p in pictures}), {"title": key})


def ended(runs, key):
    # the run's last manifest row, once it has ended
    from nst.batch import results
    wait_until(lambda: key not in runs.active or runs.error)
    assert runs.error is None, runs.error
    return results.read_manifest(runs.outdir)[f"{key}.png"]


def hold_worker(started, release):
    # a Dask task that keeps the one worker busy until the test lets it go
    from distributed import Event
    Event(started).set()
    Event(release).wait(60)


def test_stop_on_a_queued_run_cancels_it_and_the_engine_goes_on(engine_runs, pictures, tiny_weights_h5,
                                                               shared_cluster):
    from distributed import Client, Event
    with Client(shared_cluster) as client:
        holder = client.submit(hold_worker, "nst-test-started", "nst-test-release", pure=False)
        assert Event("nst-test-started", client=client).wait(30)
        submit_run(engine_runs, "queued", pictures, tiny_weights_h5, 2)
        time.sleep(0.5)                                       # handed to Dask, waiting for the worker
        engine_runs.channels["queued"].controls.stop()
        row = ended(engine_runs, "queued")
        Event("nst-test-release", client=client).set()
        holder.result(30)
    assert row["status"] == "cancelled" and row["error"] == "stopped before it started"
    submit_run(engine_runs, "after", pictures, tiny_weights_h5, 2)
    assert ended(engine_runs, "after")["status"] == "done" and engine_runs.thread.is_alive()


def test_a_run_submitted_again_under_its_name_runs_again(engine_runs, pictures, tiny_weights_h5):
    # Resume submits under the run's name: Dask must not hand back the earlier run's result
    submit_run(engine_runs, "again", pictures, tiny_weights_h5, 2)
    assert ended(engine_runs, "again")["iterations"] == 2
    submit_run(engine_runs, "again", pictures, tiny_weights_h5, 3)
    assert ended(engine_runs, "again")["iterations"] == 3



def test_a_warning_a_run_raises_on_its_worker_joins_its_check_s(engine_runs, pictures, tiny_weights_h5, capsys,
                                                                  monkeypatch):
    # the run's task warns on its worker: after the check's warnings in its row and on its live page,
    # on the server's stderr as theirs ("nst: warning: NAME: ..."); it was in Python's form on the
    # worker's stderr, and the check's alone were in the row
    import warnings

    from nst.batch import task as batch_task
    from nst.web.runs import make_task

    class WarningJob(batch_task.Job):
        def prepare(self):
            warnings.warn("the run warns")
            return super().prepare()
    monkeypatch.setattr(batch_task, "Job", WarningJob)
    settings = Settings(size=32, scales=1, iterations=1, optimizer="adam", backend="numpy",
                        weights=str(tiny_weights_h5))
    engine_runs.submit(make_task("warns", pictures[0], pictures[1:], settings, {p: str(p) for p in pictures}),
                       {"title": "warns", "warnings": ["the check warns"]})
    assert ended(engine_runs, "warns")["warnings"] == ["the check warns", "the run warns"]
    assert engine_runs.channels["warns"].info["warnings"] == ["the check warns", "the run warns"]
    err = capsys.readouterr().err
    assert [line for line in err.splitlines() if "warns" in line] == ["nst: warning: warns: the run warns"], err

def one_line_error(capsys):
    err = capsys.readouterr().err
    assert err.startswith("nst: error: ") and len(err.strip().splitlines()) == 1, err
    return err


def test_serve_refuses_an_outdir_it_cannot_use_in_one_line(tmp_path, tiny_weights_h5, capsys):
    from nst.cli import main
    afile = tmp_path / "afile"
    afile.write_text("mine\n")
    for outdir in (afile, afile / "sub", "/proc/x", "/sys/x"):
        assert main(["serve", "--port", "0", "--outdir", str(outdir), "--weights", str(tiny_weights_h5)]) == 2
        assert "--outdir" in one_line_error(capsys)
    assert afile.read_text() == "mine\n"


@pytest.mark.parametrize("sub", ["uploads", "checkpoints"])
def test_serve_refuses_an_outdir_whose_uploads_or_checkpoints_it_cannot_use(tmp_path, tiny_weights_h5, capsys,
                                                                            monkeypatch, sub):
    # OUTDIR/uploads or OUTDIR/checkpoints a file: the server started, and every run's start failed
    # (a 500 and a traceback); a folder there it cannot write (simulated: tests may run as root)
    import os

    import nst.io.destinations
    from nst.cli import main

    async def served(app):                   # a server that started: it would wait for Ctrl-C
        return 0
    monkeypatch.setattr("nst.web.app.App.serve", served)
    argv = ["serve", "--port", "0", "--outdir", str(tmp_path), "--weights", str(tiny_weights_h5)]
    (tmp_path / sub).write_text("mine\n")
    assert main(argv) == 2
    assert f"{tmp_path / sub} is not a folder" in one_line_error(capsys)
    assert (tmp_path / sub).read_text() == "mine\n"
    (tmp_path / sub).unlink()
    (tmp_path / sub / sub).mkdir(parents=True)         # a folder of that name inside: nothing of nst's
    assert main(argv) == 0                             # (OUTDIR/uploads/uploads was checked as a file)
    probe = nst.io.destinations.probe_write

    def read_only(folder):
        if os.path.basename(folder) == sub:
            raise PermissionError(13, "Permission denied")
        return probe(folder)
    monkeypatch.setattr(nst.io.destinations, "probe_write", read_only)
    assert main(argv) == 2
    assert f"cannot write in {tmp_path / sub} (Permission denied)" in one_line_error(capsys)


def test_a_second_server_on_the_same_outdir_is_refused_while_the_first_serves(tmp_path, tiny_weights_h5, capsys,
                                                                              monkeypatch):
    # two nst serve on one --outdir interleaved their runs' pictures and rows; the second is now
    # refused at its start, and the same command serves once the first has stopped. A second one with
    # a bad option is refused for that option (it was told of the other server: the hold came first)
    import asyncio

    from nst.cli import main
    out = tmp_path / "runs"
    argv = ["serve", "--port", "0", "--outdir", str(out), "--weights", str(tiny_weights_h5)]
    second = []

    async def served(app):                   # the first server, serving: a second one starts meanwhile
        if not second:
            capsys.readouterr()
            second.append(None)
            run = asyncio.get_running_loop().run_in_executor
            second[0] = (await run(None, main, argv), one_line_error(capsys),
                         await run(None, main, argv + ["--scheduler", "http://x:1"]), one_line_error(capsys))
        return 0
    monkeypatch.setattr("nst.web.app.App.serve", served)
    assert main(argv) == 0
    (status, err), (bad_status, bad_err) = second[0][:2], second[0][2:]
    assert status == bad_status == 2
    assert err == (f"nst: error: --outdir {out}: another nst serve is writing {out} now; wait "
                   "for it to end, or choose another --outdir\n")
    assert bad_err.startswith("nst: error: --scheduler http://x:1: unknown scheme http://"), bad_err
    assert main(argv) == 0


def test_a_server_that_cannot_listen_makes_no_outdir(tmp_path, tiny_weights_h5, capsys):
    import socket

    from nst.cli import main
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port), "--outdir", str(tmp_path / "new" / "runs"),
                     "--weights", str(tiny_weights_h5)]) == 2
    assert f"--port {port}: the port is in use" in one_line_error(capsys) and not (tmp_path / "new").exists()


@pytest.mark.parametrize("host, says", [("bad host!", "--host bad host!: no such host"),
                                         ("192.0.2.1", "--host 192.0.2.1: not an address of this machine")])
def test_a_host_serve_cannot_listen_on_is_named_as_the_host(tmp_path, tiny_weights_h5, capsys, host, says):
    # an unknown --host or another machine's address: the one line named the port ("...; try another
    # --port"), after a line saying it was listening there
    from nst.cli import main
    assert main(["serve", "--host", host, "--port", "0", "--outdir", str(tmp_path / "runs"),
                 "--weights", str(tiny_weights_h5)]) == 2
    err = one_line_error(capsys)
    assert says in err and "port" not in err.split(": ", 2)[-1], err
    assert not (tmp_path / "runs").exists()
    from PIL import Image
    Image.new("RGB", (32, 24), "teal").save(tmp_path / "p.png")
    assert main(["transfer", str(tmp_path / "p.png"), str(tmp_path / "p.png"), "-o", str(tmp_path / "o.png"),
                 "--weights", str(tiny_weights_h5), "--size", "32", "--web", f"{host}:0"]) == 2
    assert one_line_error(capsys).startswith(f"nst: error: --web {host}:0: {says.split(': ')[-1]}")


def test_serve_checks_scheduler_as_batch_does(tmp_path, tiny_weights_h5, capsys):
    from nst.cli import main
    for address, says in (("http://x:1", "unknown scheme http://"), ("tcp://127.0.0.1:1", "nothing listens")):
        t0 = time.monotonic()
        assert main(["serve", "--port", "0", "--outdir", str(tmp_path / "runs"), "--weights", str(tiny_weights_h5),
                     "--scheduler", address]) == 2
        assert says in one_line_error(capsys) and time.monotonic() - t0 < 8
    assert not (tmp_path / "runs").exists()


def test_serve_checks_weights_before_it_starts(tmp_path):
    from web_client import Process
    bad = tmp_path / "notes.h5"
    bad.write_text("not weights\n")
    proc = Process(["serve", "--port", "0", "--outdir", tmp_path / "runs", "--weights", bad])
    assert proc.wait(60) == 2
    err = "".join(proc.err)
    assert f"{bad} is not an HDF5 file" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "runs").exists()


def test_the_forms_refusals_say_what_is_wrong_and_leave_no_uploads(tmp_path, rng, tiny_weights_h5):
    from nst.web.app import App
    app = App(serve_args(tmp_path / "runs", tiny_weights_h5))
    content, style = ("content", "photo.png", png_bytes(rng)), ("style", "painting.png", png_bytes(rng, 40, 56))
    truncated = ("content", "holiday.jpg", jpeg_bytes(rng)[:700])
    small = [("size", "32"), ("scales", "1"), ("iterations", "2")]
    answers = ask(app, [
        ("POST", "/api/runs", form(small, [("photo", "x.png", content[2]), content, style])),
        ("POST", "/api/runs", form(small, [("size", "x.png", content[2]), content, style])),
        ("POST", "/api/runs", form([("style-layers", "x" * 1001)], [content, style])),
        ("POST", "/api/runs", form(small, [truncated, style])),
        ("POST", "/api/runs", form(small, [("content", "empty.png", b""), style])),
        ("POST", "/api/runs", form(small + [("size", "64")], [content, style])),
    ])
    assert [code for code, _ in answers] == [400, 400, 413, 400, 400, 400], answers
    errors = [a["error"] for _, a in answers]
    assert errors[0] == "unknown field 'photo': send the photo as 'content' and each painting as 'style'"
    assert errors[1] == "option 'size': send it as a plain value, not a file"
    assert errors[2] == "option 'style-layers': an option's value is at most 1000 bytes"
    assert errors[3].startswith("content 'holiday.jpg': unreadable or truncated image"), errors[3]
    assert errors[4].startswith("content 'empty.png': an empty file (0 bytes)"), errors[4]     # "not an image"
    assert errors[5] == "option 'size' sent twice; send each option once"                 # the last counted
    uploads = tmp_path / "runs" / "uploads"
    assert not list(uploads.iterdir())
    answers = ask(app, [("POST", "/api/runs", form(small, [content, style])),       # queued: its uploads stay
                        ("POST", "/api/runs", form(small, [truncated, style]))])     # refused: its own one goes
    assert [code for code, _ in answers] == [201, 400], answers
    kept = {str(p) for p in uploads.iterdir()}
    assert kept == app.runs.manifest_files() | app.runs.active_files()[0] and len(kept) == 2


def test_each_served_run_gets_its_own_warnings(tmp_path, rng, tiny_weights_h5, capsys, monkeypatch):
    # nst serve is one command for many runs: a warning said once a command (nst.cli.warnings_as_lines)
    # was said for the server's first run only, on its stderr (a Python warning: auto's failed GPU
    # self-check), and a run's own (an upscaled content) nowhere (its worker's log); each run gets
    # its own now, on stderr, its gallery card (its row) and its live page (its channel's info)
    import warnings

    from nst.cli import warnings_as_lines
    from nst.run import checks
    from nst.web.app import App
    check_sizes = checks.check_sizes

    def self_check_fails(run):                            # what choose_backend("auto") warns, in check_run
        warnings.warn("auto: the GPU failed nst's self-check (a stand-in); using numba", stacklevel=2)
        check_sizes(run)
    monkeypatch.setattr(checks, "check_sizes", self_check_fails)
    app = App(serve_args(tmp_path / "runs", tiny_weights_h5))
    thumbnail, style = ("content", "thumb.png", png_bytes(rng, 3, 4)), ("style", "painting.png", png_bytes(rng))
    small = [("size", "48"), ("scales", "1"), ("iterations", "2")]
    with warnings_as_lines("serve", debug=False):
        answers = ask(app, [("POST", "/api/runs", form(small, [thumbnail, style]))] * 2 + [("GET", "/api/runs", None)])
    assert [code for code, _ in answers] == [201, 201, 200], answers
    said = ["auto: the GPU failed nst's self-check (a stand-in); using numba",
            "the content is 4×3 px, upscaled 12× to 48×36 px by --size 48: is it the picture you meant?"]
    names = [answer["name"] for _, answer in answers[:2]]
    assert {row["output"]: row["warnings"] for row in answers[2][1]["runs"]} == {f"{n}.png": said for n in names}
    assert [app.runs.channels[n].info["warnings"] for n in names] == [said, said]
    err = capsys.readouterr().err.splitlines()
    assert [line for line in err if "warning" in line] == [f"nst: warning: {n}: {w}" for n in names for w in said]


def test_each_comparison_gets_its_warnings_in_its_answer(tmp_path, pictures, tiny_weights_h5, rng, capsys,
                                                          monkeypatch):
    # a warning raised as a comparison was scored (auto's failed GPU self-check: its scores numba's)
    # went to the server's scope: said once a server on its stderr, never to the page that asked.
    # Each comparison gets its own now, in its answer (shown under its table: app.js) and on stderr
    # naming the pictures compared, as a run's are
    import warnings

    from nst.cli import warnings_as_lines
    from nst.run import selfcheck
    from nst.web.app import App
    from nst.web.runs import make_task
    said = "auto: the GPU failed nst's self-check (a stand-in); using numba"

    def self_check_fails(name, log=None):                # what choose_backend("auto") warns then
        warnings.warn(said, stacklevel=2)
        return selfcheck.get_backend("numpy")
    monkeypatch.setattr(selfcheck, "choose_backend", self_check_fails)
    app = App(serve_args(tmp_path / "runs", tiny_weights_h5))
    settings, shas = Settings(size=32, weights=app.weights), {p: "" for p in pictures}
    for key in ("one", "two"):
        task = make_task(key, pictures[0], pictures[1:], settings, shas)
        app.runs.submit(task, {"title": key})
        app.runs._end(task, {"status": "done", "image": rng.integers(0, 256, (32, 40, 3), dtype=np.uint8)})
    with warnings_as_lines("serve", debug=False):
        answers = ask(app, [("POST", "/api/compare", form([("a", "one"), ("b", "two")]))] * 2)
    assert [(code, answer.get("warnings")) for code, answer in answers] == [(200, [said])] * 2, answers
    err = capsys.readouterr().err.splitlines()
    assert [line for line in err if "warning" in line] == [f"nst: warning: comparing one with two: {said}"] * 2


@pytest.mark.parametrize("code, why", [("ENOSPC", "No space left on device"), ("EROFS", "Read-only file system")])
def test_an_upload_the_disk_refuses_is_a_one_line_refusal_and_leaves_no_file(tmp_path, rng, tiny_weights_h5,
                                                                             monkeypatch, code, why):
    # OUTDIR on a full or read-only disk: storing an upload raised OSError, a 500 "Server got
    # itself in trouble" on the page and a traceback in the server's log (read-only: removing the
    # refused run's uploads raised too, even those never written)
    import errno
    import pathlib

    from nst.web.app import App
    app = App(serve_args(tmp_path / "runs", tiny_weights_h5))
    real_write, real_unlink = pathlib.Path.write_bytes, pathlib.Path.unlink

    def write_bytes(path, data):
        if path.name.endswith(".part"):
            raise OSError(getattr(errno, code), why)
        return real_write(path, data)

    def unlink(path, missing_ok=False):
        if code == "EROFS" and path.parent.name == "uploads":      # Linux: EROFS even for no such file
            raise OSError(errno.EROFS, why)
        return real_unlink(path, missing_ok)
    monkeypatch.setattr(pathlib.Path, "write_bytes", write_bytes)
    monkeypatch.setattr(pathlib.Path, "unlink", unlink)
    small = [("size", "32"), ("scales", "1"), ("iterations", "2")]
    files = [("content", "photo.png", png_bytes(rng)), ("style", "p.png", png_bytes(rng, 40, 56))]
    [(code, answer)] = ask(app, [("POST", "/api/runs", form(small, files))])
    assert code == 507
    assert answer == {"error": f"content 'photo.png': cannot be stored in OUTDIR/uploads ({why})"}
    assert not list((tmp_path / "runs" / "uploads").iterdir())


def test_a_refused_runs_uploads_are_removed_without_reading_on_the_event_loop(tmp_path, rng, tiny_weights_h5,
                                                                              monkeypatch):
    # remove_unused read the manifest in the event loop (blocking every request meanwhile): now in
    # the executor, as every other read of the app
    import threading

    import nst.web.runs
    from nst.web.app import App
    app = App(serve_args(tmp_path / "runs", tiny_weights_h5))
    real, on_loop = nst.web.runs.results.read_manifest, []

    def reading(*a, **k):
        on_loop.append(threading.current_thread() is threading.main_thread())     # ask(): the loop's thread
        return real(*a, **k)
    monkeypatch.setattr(nst.web.runs.results, "read_manifest", reading)
    small = [("size", "32"), ("scales", "1"), ("iterations", "2")]
    truncated, style = ("content", "holiday.jpg", jpeg_bytes(rng)[:700]), ("style", "p.png", png_bytes(rng, 40, 56))
    assert [code for code, _ in ask(app, [("POST", "/api/runs", form(small, [truncated, style]))])] == [400]
    assert on_loop and not any(on_loop), on_loop
    assert not list((tmp_path / "runs" / "uploads").iterdir())


def test_an_upload_a_run_ending_during_the_manifests_read_used_is_kept(tmp_path, tiny_weights_h5):
    # the manifest is read off the loop: a run that ends meanwhile (its row newer than the read, the
    # run gone from the queue) still keeps its inputs: the manifest is read again
    import asyncio
    from types import SimpleNamespace

    from nst.web.app import App
    app = App(serve_args(tmp_path / "runs", tiny_weights_h5))
    upload = tmp_path / "upload.png"
    upload.write_bytes(b"a picture")
    app.runs.active["r"] = (SimpleNamespace(files=[str(upload)]), {})
    manifest = set()

    def read_while_the_run_ends():
        before = set(manifest)
        if app.runs.active:                     # the run ends while the manifest is read
            manifest.add(str(upload))
            with app.runs.lock:
                app.runs.active.pop("r")
                app.runs.ended += 1
        return before
    app.runs.manifest_files = read_while_the_run_ends
    asyncio.run(app.remove_unused([upload]))
    assert upload.exists()
    other = tmp_path / "other.png"
    other.write_bytes(b"another picture")
    asyncio.run(app.remove_unused([other]))                         # no run uses it: removed
    assert not other.exists() and upload.exists()


def test_serve_reads_its_weights_file_once(tmp_path, tiny_weights_h5, opened_files):
    # the server checked --weights (h5py), then read it again for the workers' copy and hashed
    # that: now the one read's bytes give the check, the copy and the sha256
    import os

    from nst.web.app import App
    app = App(serve_args(tmp_path / "runs", tiny_weights_h5))
    assert opened_files.count(os.path.realpath(tiny_weights_h5)) == 1, opened_files
    assert app.shas["weights"] == app.runs.options["weights_sha"]


# -- the live page's fixes: the last message, the Host guard, panels on a tiled run, early requests -------
def ws_states(channel, host="127.0.0.1"):
    # every status state one page of `nst transfer --web` receives until the server closes its websocket
    import asyncio
    import json

    from aiohttp import WSMsgType
    from aiohttp.test_utils import TestClient, TestServer

    from nst.web.live import make_app

    async def go():
        async with TestClient(TestServer(make_app(channel, host, None))) as client:
            ws = await client.ws_connect("/ws")
            return [json.loads(m.data)["status"]["state"] async for m in ws if m.type == WSMsgType.TEXT]
    return asyncio.run(go())


class EndsWhileBuilt(Channel):
    # the run ends (finish, then close) while the page's first message is being built
    def message(self, since_points, since_seq):
        msg = super().message(since_points, since_seq)
        if not self.closed:
            self.set_state("done")
            self.close()
        return msg


def test_the_last_message_carries_the_end_even_when_the_run_ends_while_it_is_built():
    states = ws_states(EndsWhileBuilt())
    assert states[-1] == "done", states


def test_a_run_that_raised_ends_its_pages_on_failed():
    from nst.web.live import LivePage
    page = LivePage("127.0.0.1", 0)
    page.channel.set_state("running")
    page.close()                                      # no finish(): the run raised
    assert page.channel.status["state"] == "failed" and page.channel.closed


def test_a_run_that_raised_tells_its_pages_why():
    # found failing an `nst transfer --web` run: the page said "failed" and nothing more, the reason
    # only in the terminal
    from nst.io.destinations import RunRefused
    from nst.web.live import live_page
    with pytest.raises(RunRefused):
        with live_page("127.0.0.1:0", "t") as page:
            page.channel.set_state("running")
            raise RunRefused("out.png: cannot be written")
    assert page.channel.status["state"] == "failed" and page.channel.status["error"] == "out.png: cannot be written"


def test_a_loopback_address_answers_to_its_own_name():
    # --web 127.0.0.2:P issues no token (loopback) and prints http://127.0.0.2:P/: that URL must answer
    import asyncio

    from aiohttp.test_utils import TestClient, TestServer

    from nst.web.live import make_app

    async def go():
        async with TestClient(TestServer(make_app(Channel(), "127.0.0.2", None))) as client:
            return [(await client.get("/", headers={"Host": name})).status
                    for name in ("127.0.0.2:8901", "localhost:8901", "127.0.0.3:8901", "evil.example:8901")]
    assert new_token("127.0.0.2") is None and url_of("127.0.0.2", 8901, None) == "http://127.0.0.2:8901/"
    assert asyncio.run(go()) == [200, 200, 403, 403]


def test_panels_on_a_tiled_run_keep_the_memory_bound(rng, tiny_weights, monkeypatch):
    # no whole-picture forward: Ĝ^l(X) tile by tile (the whole picture's values), the feature maps refused
    from nst.objective import Objective
    from nst.tiled import TiledObjective
    from nst.web import panels
    run = tiny_run(rng, tiny_weights, iterations=2, tile=16)
    run.run()
    obj, layer = run.current_objective, run.settings.style_layers[1]
    assert isinstance(obj, TiledObjective)
    whole = np.asarray(Objective.grams_of(obj, run.opt.x.reshape(run.shape), [layer])[layer])
    monkeypatch.setattr(panels, "forward", lambda *a, **k: pytest.fail("a whole-picture forward on a tiled run"))
    out = panels.compute(run, {"gram": layer, "grad": True, "features": True})
    lead = np.argsort(-np.diag(np.asarray(obj.style_targets[layer])))[:panels.LEADING]
    np.testing.assert_allclose(out["gram"]["x"], whole[np.ix_(lead, lead)], rtol=1e-4, atol=1e-6 * np.abs(whole).max())
    assert out["features"] == {"layer": obj.content_layers[0], "note": panels.TILED}
    assert out["grad"].shape == run.shape[:2]
    assert panels.render(out)["features"] == out["features"]


def test_a_sparse_feature_map_shows_its_pixels_and_a_silent_one_stays_black(rng):
    # a ReLU channel with a few non-zero pixels (under 0.5 % of its tile) was drawn all black, as one
    # that is all zero: its scale, the tile's 99.5th percentile, was 0
    from nst.web import panels
    h, w = 64, 48
    dense = rng.uniform(1, 5, (h, w)).astype(np.float32)
    relu = np.maximum(rng.normal(0, 1, (h, w)), 0).astype(np.float32)         # half zeros
    sparse = np.zeros((h, w), np.float32)
    spots = rng.choice(h * w, 10, replace=False)
    sparse.flat[spots] = rng.uniform(2, 4, 10)
    grid = panels.tiles(np.stack([dense, relu, sparse, np.zeros((h, w), np.float32)]))     # 2×2 tiles
    drawn = [grid[r * (h + 1): r * (h + 1) + h, c * (w + 1): c * (w + 1) + w] for r in (0, 1) for c in (0, 1)]
    for tile, m in zip(drawn[:2], (dense, relu)):                 # as before: the 99.5th percentile inside
        np.testing.assert_allclose(tile, m / np.percentile(m[1:-1, 1:-1], 99.5), rtol=1e-6)
    assert np.all(drawn[2].flat[spots] >= 0.5) and np.count_nonzero(drawn[2]) == 10, drawn[2].flat[spots]
    assert not drawn[3].any()


def test_feature_maps_leave_out_the_edge_ring_padding_lights(rng):
    # a channel that answers only along the picture's edge (zero padding's edge response) had the
    # most energy, so it was shown first, black but for one bright line; a channel with a bright
    # edge and a real inside was drawn dark inside, scaled to its edge
    from nst.web import panels
    c, h, w = 20, 12, 10
    a = rng.uniform(0, 1, (c, h, w)).astype(np.float32)
    a[3] = 0
    a[3, 0, :] = 500.0                                            # only the top edge: energy 50 a pixel's worth
    a[5, :, -1] = 80.0                                            # right edge bright, a normal inside
    a[7] *= 3                                                     # the strongest inside
    maps = panels.strongest_maps(a, "block4_conv2")["maps"]
    assert not any(np.array_equal(m, a[3]) for m in maps)
    assert np.array_equal(maps[0], a[7])
    grid = panels.tiles(a[5][None])
    np.testing.assert_allclose(grid[1:-1, 1:-1], a[5, 1:-1, 1:-1] / np.percentile(a[5, 1:-1, 1:-1], 99.5), rtol=1e-6)
    assert panels.tile_scale(np.full((2, 2), 3.0)) == 3.0         # no inside: the whole map


def test_panel_requests_before_the_run_attaches_count_after():
    ch, run = Channel(), FakeRun()
    ch.watch("page", {"gram": "block1_conv1", "grad": True}, lambda: None)      # no style layers known yet
    assert ch.wanted()["gram"] is None
    Publisher(ch).attach(run)
    assert ch.wanted() == {"gram": "block1_conv1", "grad": True, "features": False}


@pytest.mark.parametrize("address", ["", ":"])
def test_web_without_an_address_is_refused_as_bad(pictures, tiny_weights_h5, tmp_path, capsys, address):
    from nst.cli import main
    argv = ["transfer", *map(str, pictures), "-o", str(tmp_path / "o.png"), "--size", "32", "--iterations", "1",
            "--scales", "1", "--backend", "numpy", "--weights", str(tiny_weights_h5), "--web", address]
    assert main(argv) == 2
    assert one_line_error(capsys).startswith(f"nst: error: --web {address!r}: give [HOST:]PORT")
    assert not (tmp_path / "o.png").exists()


def test_a_dry_run_serves_no_page(pictures, tiny_weights_h5, tmp_path, capsys):
    from nst.cli import main
    argv = ["transfer", *map(str, pictures), "-o", str(tmp_path / "o.png"), "--size", "32", "--scales", "1",
            "--backend", "numpy", "--weights", str(tiny_weights_h5), "--dry-run", "--web", "0"]
    assert main(argv) == 0
    out = capsys.readouterr()
    assert "http://" not in out.out + out.err and "live page" not in out.out
    assert main([*argv[:-1], "x:y"]) == 2                     # the address is still checked
    assert "--web 'x:y'" in one_line_error(capsys)


def test_a_dry_run_refuses_an_address_the_run_could_not_serve_on(pictures, tiny_weights_h5, tmp_path, capsys):
    # the dry run said "fits" for a port in use, an unknown host or another machine's address,
    # which the run then refused
    import socket

    from nst.cli import main
    argv = ["transfer", *map(str, pictures), "-o", str(tmp_path / "o.png"), "--size", "32", "--scales", "1",
            "--backend", "numpy", "--weights", str(tiny_weights_h5), "--dry-run", "--web"]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main([*argv, f"127.0.0.1:{port}"]) == 2
        assert f"--web 127.0.0.1:{port}: the port is in use" in one_line_error(capsys)
    for address, says in (("bad-host!:0", "no such host"), ("192.0.2.1:0", "not an address of this machine")):
        assert main([*argv, address]) == 2
        assert f"--web {address}: {says}" in one_line_error(capsys)


def test_the_gallery_names_files_without_the_servers_folders(tmp_path, tiny_weights_h5):
    # /api/runs gave every page viewer the uploads' and weights' absolute paths (the server's layout)
    from nst.batch import results
    from nst.web.app import App
    outdir = tmp_path / "runs"
    app = App(serve_args(outdir, tiny_weights_h5))
    outdir.mkdir()
    upload, elsewhere = outdir / "uploads" / "ab12.png", tmp_path / "mine" / "painting.jpg"
    results.append_row(outdir / results.MANIFEST, {
        "output": "web-1.png", "content": str(upload), "style": [str(elsewhere)], "init": str(elsewhere),
        "settings": {"size": 64, "weights": str(tiny_weights_h5), "init": "content"}, "status": "done"})
    (code, answer), = ask(app, [("GET", "/api/runs", None)])
    assert code == 200 and str(tmp_path) not in json.dumps(answer)
    row, = answer["runs"]
    assert (row["content"], row["style"], row["init"]) == ("uploads/ab12.png", ["painting.jpg"], "painting.jpg")
    assert row["settings"] == {"size": 64, "weights": tiny_weights_h5.name, "init": "content"}


def test_both_servers_serve_the_icon_their_pages_name(tmp_path, tiny_weights_h5):
    # every page load logged a 404 for /favicon.ico in the browser's console
    import asyncio
    import re

    from aiohttp.test_utils import TestClient, TestServer

    from nst.web.app import App
    from nst.web.live import make_app

    async def icons(app, page):
        async with TestClient(TestServer(app)) as client:
            html = await (await client.get(page)).text()
            icon, = re.findall(r'<link rel="icon" href="([^"]+)"', html)
            answers = [await client.get(path) for path in (icon, "/favicon.ico")]
            return [(r.status, r.content_type, (await r.text())[:4]) for r in answers]
    serve_app = App(serve_args(tmp_path / "runs", tiny_weights_h5)).make_app()
    for app, page in ((serve_app, "/"), (make_app(Channel({}), "127.0.0.1", None), "/")):
        assert asyncio.run(icons(app, page)) == [(200, "image/svg+xml", "<svg")] * 2


def test_the_gallery_lists_the_last_queued_run_first_with_no_finish_time(tmp_path, pictures, tiny_weights_h5):
    # a running row carried the time of each read as "finished" (its card changed at every poll), and
    # the runs queued or running came in no order: a new one could show last
    from nst.batch import results
    from nst.web.runs import Runs, make_task
    out = tmp_path / "runs"
    out.mkdir()
    for name, day in (("old1", 1), ("old2", 2)):
        results.append_row(out / results.MANIFEST, {"output": f"{name}.png", "content": str(pictures[0]),
                                                    "style": [str(pictures[1])], "status": "stopped",
                                                    "finished": f"2026-01-0{day}T00:00:00Z"})
    runs = Runs(out, 4, None, {}, None)
    shas = {p: str(p) for p in pictures}
    for key in ("a", "old1", "b"):                          # old1: resumed
        runs.submit(make_task(key, pictures[0], pictures[1:], Settings(size=32), shas), {"title": key})
    runs.channels["b"].update(status={"state": "running", "it": 12}, info={"total": 300})
    rows = runs.rows()
    assert (rows[0]["iterations"], rows[0]["total"]) == (12, 300)          # its card shows how far it is
    assert [(r["output"], r["status"], r["finished"]) for r in rows] == [
        ("b.png", "running", None), ("old1.png", "queued", None), ("a.png", "queued", None),
        ("old2.png", "stopped", "2026-01-02T00:00:00Z")]


def test_the_time_paused_is_not_in_the_runs_rate_or_eta(monkeypatch):
    # s/it was the time since the start over the iterations: after a 100 s pause a 1 s/it run showed
    # 34 s/it and an ETA of minutes
    from types import SimpleNamespace

    from nst.web import channel as channel_module
    clock = [0.0]
    monkeypatch.setattr(channel_module, "time", SimpleNamespace(perf_counter=lambda: clock[0]))
    ch, run = Channel(), FakeRun()
    pub = Publisher(ch)
    pub.attach(run)
    for it in (1, 2):
        clock[0] = float(it)
        pub.on_iteration(run, it, {"total": 1.0})
    for clock[0] in np.arange(2.1, 100.0, 0.1):           # paused: the run polls its controls
        run.controls.on_idle()
    clock[0] = 101.0
    pub.on_iteration(run, 3, {"total": 1.0})
    assert ch.status["s_per_it"] == pytest.approx(1.0, abs=0.05) and ch.status["eta_s"] == pytest.approx(7.0, abs=0.5)


def test_a_pages_ping_is_answered_and_keeps_its_panels():
    # the live page pings a quiet connection to learn whether it still lives: its own sender is
    # woken to answer, and the panels it asked for stay asked (any other message reset them)
    import asyncio
    from types import SimpleNamespace

    from aiohttp import WSMsgType

    from nst.web.server import read_page

    class Socket:                                   # what read_page reads of a page's websocket
        def __init__(self, *texts):
            self.messages = [SimpleNamespace(type=WSMsgType.TEXT, data=json.dumps(t)) for t in texts]

        async def __aiter__(self):
            for m in self.messages:
                yield m
    channel, woken = Channel({"style_layers": ["block1_conv1"]}), []
    channel.watch("other page", {}, lambda: woken.append("other"))
    woken.clear()
    panels = {"gram": "block1_conv1", "grad": True}
    asyncio.run(read_page(Socket({"panels": panels}, {"ping": 1}), channel, "page", lambda: woken.append("page")))
    assert channel.watchers["page"] == panels
    assert woken.count("other") == 1                # by the panels (a page more watches), not by the ping


def test_pages_are_woken_by_a_runs_news_only():
    # an idle or paused run's worker posts the same status several times a second: each post woke
    # every page, which sent it the same message again
    channel, woken = Channel({"total": 10}), []
    channel.watch("page", {}, lambda: woken.append(1))
    woken.clear()
    channel.update(status={"state": "running", "it": 3})
    channel.update(status={"state": "running", "it": 3}, info={"total": 10})     # nothing new
    channel.update(points=[{"it": 3}])
    channel.update(status={"it": 4})
    channel.update(snapshot=Snapshot(0, encoded={"image": "x", "panels": {}}))
    assert len(woken) == 4


def test_a_resumed_runs_page_has_the_per_layer_values_of_its_earlier_iterations(rng, tiny_weights, tmp_path):
    # a checkpoint kept only the terms: a resumed run's per-layer plot began at the resume point
    from nst.io import checkpoint
    run = tiny_run(rng, tiny_weights, iterations=3)
    run.run()
    path = tmp_path / "ck.npz"
    checkpoint.save(path, run, {})

    def resumed_points(state):
        resumed = tiny_run(rng, tiny_weights, iterations=3)
        checkpoint.check_fits(path, state, resumed)
        resumed.restore(state)
        channel = Channel()
        Publisher(channel).attach(resumed)
        return [p["layers"] for p in channel.points]
    state = checkpoint.load(path)[1]
    assert resumed_points(state) == run.layer_history and all(len(ls) == 5 for ls in run.layer_history)
    state.pop("layer_history")                       # a checkpoint from before: it resumes, with no layers
    assert resumed_points(state) == [{}, {}, {}]
    with pytest.raises(checkpoint.CheckpointError, match="per-layer loss history is malformed"):
        resumed_points({**state, "layer_history": [{}]})


def test_pause_on_a_queued_run_is_refused_and_stop_takes_it_off(tmp_path, tiny_weights_h5):
    # Pause on a queued run was taken: its page said paused, its card queued, and the run paused an
    # iteration after it started
    from nst.web.app import App
    app = App(serve_args(tmp_path / "runs", tiny_weights_h5))
    channel = app.runs.channels["q"] = Channel({"title": "q"}, state="queued")
    answers = ask(app, [("POST", "/runs/q/control/pause", None), ("POST", "/runs/q/control/stop", None)])
    assert answers == [(409, {"error": "it has not started yet: Stop takes it off the queue"}),
                       (200, {"paused": False, "stopping": True})]
    assert not channel.controls.paused


def test_a_workers_run_gets_pause_and_stop_without_waiting_for_its_next_post(tmp_path, tiny_weights_h5,
                                                                               monkeypatch):
    # under nst serve the worker learnt of a Pause only from the answer to its next post, so a run
    # paused an iteration late; here the worker posts nothing after starting, and still gets them
    from urllib.request import Request, urlopen

    from nst.web import link
    from nst.web.app import App
    from nst.web.server import Background
    monkeypatch.setattr(link, "POST_EVERY_S", 1000.0)              # no post of the run's own
    app = App(serve_args(tmp_path / "runs", tiny_weights_h5))
    server_side = app.runs.channels["r"] = Channel({"title": "r"}, state="running")
    server = Background(app.make_app(), "127.0.0.1", 0).start()
    worker = link.LiveLink(f"http://127.0.0.1:{server.port}", app.worker_key, app.token, "r", "r")
    worker.start(FakeRun())
    controls = worker.channel.controls
    page = lambda action: urlopen(Request(f"http://127.0.0.1:{server.port}/runs/r/control/{action}",  # noqa: E731
                                          method="POST"), timeout=10).read()
    try:
        page("pause")
        wait_until(lambda: controls.paused, timeout=10)
        page("resume")
        wait_until(lambda: not controls.paused, timeout=10)
        page("stop")
        wait_until(lambda: controls.stop_requested, timeout=10)
    finally:
        server_side.set_state("stopped")
        worker.close("stopped")
        server.stop()


def test_a_workers_iteration_reaches_the_server_at_once_and_its_answer_says_only_what_the_worker_uses(
        tmp_path, tiny_weights_h5, monkeypatch):
    # under nst serve the worker waited POST_EVERY_S after every post, an empty one too, so an
    # iteration reached the page up to a post late (the page showed the one before); and the answer
    # to a post carried "paused", which the worker must not use (pause comes by the long poll only)
    from urllib.request import Request, urlopen

    from nst.web import link
    from nst.web.app import App
    from nst.web.server import Background
    monkeypatch.setattr(link, "POST_EVERY_S", 1000.0)              # a post with news: the next one waits
    app = App(serve_args(tmp_path / "runs", tiny_weights_h5))
    server_side = app.runs.channels["r"] = Channel({"title": "r"}, state="running")
    server_side.watch("page", {}, lambda: None)                    # a page watches: images are posted
    server = Background(app.make_app(), "127.0.0.1", 0).start()
    worker, run = link.LiveLink(f"http://127.0.0.1:{server.port}", app.worker_key, app.token, "r", "r"), FakeRun()
    try:
        worker.start(run)
        wait_until(lambda: worker.channel.wanted() is not None, timeout=10)     # its first post answered
        run.history.append({"total": 1.0})
        worker.on_iteration(run, 1, {"total": 1.0})
        wait_until(lambda: [p["it"] for p in server_side.points] == [1], timeout=10)
        assert server_side.status["it"] == 1 and server_side.snapshot.encode()["image"]
        answer = json.loads(urlopen(Request(f"http://127.0.0.1:{server.port}/api/publish/r", b"{}",
                                            {link.WORKER_HEADER: app.worker_key}, method="POST"), timeout=10).read())
        assert answer == {"wanted": {"gram": None, "grad": False, "features": False}, "stop": False, "gallery": False}
    finally:
        server_side.set_state("done")
        worker.close("done")
        server.stop()


def test_a_serve_page_that_comes_mid_iteration_gets_the_workers_last_picture(tmp_path, tiny_weights_h5):
    # under nst serve a page opened (the gallery's Live) while a slow iteration ran had no picture
    # until it ended; the worker posts the image only while the server's pages watch
    from nst.web import link
    from nst.web.app import App
    from nst.web.server import Background
    app = App(serve_args(tmp_path / "runs", tiny_weights_h5))
    server_side = app.runs.channels["r"] = Channel({"title": "r"}, state="running")
    server = Background(app.make_app(), "127.0.0.1", 0).start()
    worker, run = link.LiveLink(f"http://127.0.0.1:{server.port}", app.worker_key, app.token, "r", "r"), FakeRun()
    try:
        worker.start(run)
        for it in range(1, 4):
            run.history.append({"total": float(it)})
            worker.on_iteration(run, it, {"total": float(it)})
        wait_until(lambda: [p["it"] for p in server_side.points] == [1, 2, 3], timeout=10)
        assert server_side.snapshot.seq == 0                       # no page: the points came without an image
        server_side.watch("page", {}, lambda: None)                # a page comes; no iteration ends meanwhile
        wait_until(lambda: server_side.snapshot.seq > 0, timeout=10)
        assert decoded(server_side.snapshot.encode()["image"]).mean() == pytest.approx(3, abs=1)
    finally:
        server_side.set_state("done")
        worker.close("done")
        server.stop()


def test_a_thumbnail_is_made_once_from_the_picture_itself_even_once_a_page_was_sent_it():
    # once a page had been sent the picture, a gallery card's thumbnail was made from that JPEG
    # decoded again (compressed twice); it is made from the picture's pixels, at most its side
    from nst.web.channel import THUMB_SIDE, thumbnail_base64
    image = np.random.default_rng(3).integers(0, 256, (400, 600, 3), np.uint8)
    sent = Snapshot(1, lambda: image.astype(np.float32))
    sent.encode()                                                        # a page was sent it first
    for snap in (Snapshot(1, lambda: image.astype(np.float32)), sent):
        assert decoded(snap.thumbnail()).shape == (round(THUMB_SIDE * 2 / 3), THUMB_SIDE, 3)
        assert snap.thumbnail() is snap.thumbnail() == thumbnail_base64(image)      # made once, from the pixels
    assert Snapshot(0).thumbnail() is None
    assert Snapshot(0, encoded={"image": sent.encode()["image"], "panels": {}}).thumbnail() is None   # a server's


def test_a_running_runs_card_gets_its_latest_picture_small_while_a_gallery_is_open(tmp_path, pictures,
                                                                                    tiny_weights_h5, monkeypatch):
    # a running run's gallery card was a grey box while its live page had the picture: the worker
    # posted images only while a live page watched. It posts a thumbnail once the gallery asks for
    # its rows, at most every THUMB_EVERY_S; none while no gallery is open
    from urllib.request import urlopen

    from nst.web import link
    from nst.web.app import App
    from nst.web.runs import make_task
    from nst.web.server import Background
    monkeypatch.setattr(link, "THUMB_EVERY_S", 1000.0)             # one thumbnail in this test
    app = App(serve_args(tmp_path / "runs", tiny_weights_h5))
    app.runs.submit(make_task("r", pictures[0], pictures[1:], Settings(size=32), {p: str(p) for p in pictures}),
                    {"title": "r"})
    server_side = app.runs.channels["r"]
    server_side.set_state("running")
    server = Background(app.make_app(), "127.0.0.1", 0).start()
    base = f"http://127.0.0.1:{server.port}"
    worker, run = link.LiveLink(base, app.worker_key, app.token, "r", "r"), FakeRun()

    def iterate(its):
        for it in its:
            run.history.append({"total": float(it)})
            worker.on_iteration(run, it, {"total": float(it)})
        wait_until(lambda: len(server_side.points) == its[-1], timeout=10)
    try:
        worker.start(run)
        iterate([1, 2, 3])
        assert server_side.thumb is None                          # no gallery: no thumbnail
        gallery = json.loads(urlopen(base + "/api/runs", timeout=10).read())["runs"]
        assert gallery[0]["thumb"] is None
        wait_until(lambda: server_side.thumb is not None, timeout=10)
        with urlopen(base + "/runs/r/thumb", timeout=10) as r:
            assert r.headers["Content-Type"] == "image/jpeg"
            assert decoded(base64.b64encode(r.read())).mean() == pytest.approx(3, abs=1)
        assert json.loads(urlopen(base + "/api/runs", timeout=10).read())["runs"][0]["thumb"] == 3   # its iteration
        iterate([4, 5])
        assert server_side.thumb[0] == 3                          # the next one after THUMB_EVERY_S only
    finally:
        server_side.set_state("done")
        worker.close("done")
        server.stop()


def fetch(app, paths, headers=None):
    # GET each path of the App in this process, with `headers` -> [(status, content type, body bytes, headers)]
    import asyncio

    from aiohttp.test_utils import TestClient, TestServer

    async def go():
        async with TestClient(TestServer(app.make_app())) as client:
            answers = [await client.get(p, headers=headers) for p in paths]
            return [(r.status, r.content_type, await r.read(), r.headers) for r in answers]
    return asyncio.run(go())


def test_a_finished_runs_card_gets_its_picture_small_made_once_and_again_when_it_changes(tmp_path, tiny_weights_h5,
                                                                                         monkeypatch):
    # a done or stopped run's card loaded its whole PNG (megabytes at 2000 px, for each card): the
    # server makes a JPEG at most THUMB_SIDE a side from it, once, and again once the file changes
    from PIL import Image

    from nst.batch import results
    from nst.io.image import save_image
    from nst.web import thumbs
    from nst.web.app import App
    from nst.web.channel import THUMB_SIDE, small
    outdir = tmp_path / "runs"
    app = App(serve_args(outdir, tiny_weights_h5))
    outdir.mkdir()
    for name, status in (("big", "done"), ("gone", "stopped"), ("bad", "failed")):
        results.append_row(outdir / results.MANIFEST, {"output": f"{name}.png", "status": status})
    save_image(np.asarray(Image.new("RGB", (1200, 800), (200, 40, 10))), outdir / "big.png")
    made = []
    monkeypatch.setattr(thumbs, "small", lambda picture: made.append(picture.size) or small(picture))
    answers = fetch(app, ["/runs/big/thumb", "/runs/big/thumb", "/runs/gone/thumb", "/runs/bad/thumb"])
    (code, kind, first, _), (_, _, again, _), gone, bad = answers
    assert (code, kind) == (200, "image/jpeg") and first[:2] == b"\xff\xd8" and again == first
    assert Image.open(io.BytesIO(first)).size == (THUMB_SIDE, round(THUMB_SIDE * 2 / 3))
    assert made == [(1200, 800)]                                           # made once
    assert (gone[0], bad[0]) == (404, 409)
    save_image(np.asarray(Image.new("RGB", (600, 1000), (10, 40, 200))), outdir / "big.png")   # resumed, ended again
    (code, _, changed, _), = fetch(app, ["/runs/big/thumb"])
    picture = Image.open(io.BytesIO(changed))
    assert code == 200 and picture.size == (round(THUMB_SIDE * 3 / 5), THUMB_SIDE)
    assert picture.getpixel((10, 10))[2] > 150 and (outdir / "big.png").stat().st_size > 0
    assert sorted(p.name for p in outdir.iterdir()) == ["big.png", "manifest.jsonl"]   # nothing written there


def test_a_cards_picture_is_kept_by_the_browser_by_its_version_and_answered_304_while_the_same(
        tmp_path, pictures, tiny_weights_h5, rng):
    # the thumbnails came with Cache-Control: no-store: the gallery fetched every card's picture again
    # at each load. A versioned URL is kept: a finished run's (?v=its finish time), a running run's
    # (?v=the iteration its picture shows: it was asked again, ignoring its v=); one of another
    # version, or without one, is asked again with its ETag and answered 304 while the picture is the same
    from PIL import Image

    from nst.batch import results
    from nst.io.image import save_image
    from nst.web.app import App
    from nst.web.runs import make_task
    outdir = tmp_path / "runs"
    app = App(serve_args(outdir, tiny_weights_h5))
    outdir.mkdir()
    results.append_row(outdir / results.MANIFEST, {"output": "fin.png", "status": "done",
                                                   "finished": "2026-12-05T17:00:00Z"})
    save_image(np.asarray(Image.new("RGB", (60, 40), (200, 40, 10))), outdir / "fin.png")
    app.runs.submit(make_task("run", pictures[0], pictures[1:], Settings(size=32), {p: str(p) for p in pictures}),
                    {"title": "run"})
    app.runs.channels["run"].set_thumbnail(7, jpeg_bytes(rng))
    paths = ["/runs/fin/thumb?v=2026-12-05T17%3A00%3A00Z", "/runs/fin/thumb", "/runs/run/thumb?v=7",
             "/runs/run/thumb?v=6"]
    first = fetch(app, paths)
    assert [(code, kind, h["Cache-Control"]) for code, kind, _, h in first] == [
        (200, "image/jpeg", "private, max-age=31536000, immutable"), (200, "image/jpeg", "private, no-cache"),
        (200, "image/jpeg", "private, max-age=31536000, immutable"), (200, "image/jpeg", "private, no-cache")]
    for path, (_, _, body, h) in zip(paths, first):
        (code, _, again, h_again), = fetch(app, [path], {"If-None-Match": h["ETag"]})
        assert (code, again, h_again["ETag"], h_again["Cache-Control"]) == (304, b"", h["ETag"], h["Cache-Control"])
    app.runs.channels["run"].set_thumbnail(9, jpeg_bytes(rng))              # the worker's next picture
    (code, _, newer, h), = fetch(app, [paths[2]], {"If-None-Match": first[2][3]["ETag"]})
    assert code == 200 and newer not in (b"", first[2][2]) and h["Cache-Control"] == "private, no-cache"
    (code, _, _, h), = fetch(app, ["/runs/none/thumb?v=1"])
    assert (code, h["Cache-Control"]) == (404, "no-store")                  # a refusal is not kept


def test_the_servers_thumbnails_are_bounded_the_least_recently_asked_for_let_go(tmp_path):
    from PIL import Image

    from nst.web.thumbs import Thumbnails
    paths = [tmp_path / f"{i}.png" for i in range(3)]
    for i, path in enumerate(paths):
        Image.new("RGB", (40, 30), (i * 100, 0, 0)).save(path)
    kept = Thumbnails(keep=2)
    for path in (paths[0], paths[1], paths[0], paths[2]):
        kept.of(path)
    assert list(kept.made) == [paths[0], paths[2]]


@pytest.mark.parametrize("optimizer, colors", [("lbfgs", None), ("adam", "luminance")])
def test_the_memory_check_counts_what_the_live_page_holds(pictures, tiny_weights_h5, tmp_path, monkeypatch, capsys,
                                                          optimizer, colors):
    # --dry-run and the memory check left out the picture --web keeps (8 bits a value: 48 MB at 4000 px,
    # and the picture made for a page as the run goes on): a run that fits only without it was started
    from PIL import Image

    from nst import memory
    from nst.cli import main
    from nst.run.checks import check_memory
    command = ["transfer", str(pictures[0]), str(pictures[1]), "-o", str(tmp_path / "o.png"), "--weights",
               str(tiny_weights_h5), "--backend", "numpy", "--size", "64", "--optimizer", optimizer,
               *(["--keep-colors", colors] if colors else []), "--dry-run"]
    web = memory.web_bytes(48, 64, colors == "luminance")
    assert main(command) == 0 and "web" not in capsys.readouterr().out
    assert main([*command, "--web", "127.0.0.1:0"]) == 0
    assert f"  web         {memory.gib(web)}" in capsys.readouterr().out
    run = Run(np.asarray(Image.open(pictures[0]), np.float32), [np.asarray(Image.open(pictures[1]), np.float32)],
              Settings(size=64, weights=str(tiny_weights_h5), backend="numpy", optimizer=optimizer,
                       keep_colors=colors), log=lambda m: None)
    need = run.memory_estimate()[0]["total"] + memory.images_bytes([run.content, *run.styles])
    monkeypatch.setattr(memory, "available", lambda backend: need + web // 2)
    check_memory(run, dry_run=False)
    with pytest.raises(MemoryError, match="needs about"):
        check_memory(run, dry_run=False, web=True)


@pytest.mark.parametrize("live", [None, object()])
def test_a_served_runs_memory_check_counts_its_live_page(pictures, tiny_weights_h5, tmp_path, monkeypatch, live):
    # nst serve's run (a batch task with a live page) left the page's picture out of its memory check
    from nst.batch import task as batch_task
    from nst.batch.plan import Task
    from nst.run import job

    class Checked(Exception):
        pass

    def check_memory(run, dry_run, web=False):
        raise Checked(web)
    monkeypatch.setattr(job, "check_memory", check_memory)
    settings = Settings(size=32, weights=str(tiny_weights_h5), backend="numpy").as_dict()
    task = Task("t", str(pictures[0]), (str(pictures[1]),), settings, (), "0" * 64)
    files = {str(p): p for p in pictures}
    with pytest.raises(Checked) as checked:
        batch_task.transfer(task, files, {"checkpoint_every": 50, "live": live}, tmp_path)
    assert checked.value.args == (live is not None,)


def test_a_queued_runs_card_gets_its_content_photo_small(tmp_path, pictures, tiny_weights_h5):
    # a queued run's card showed only a label: it shows its content photo (made small once, as the
    # finished runs' pictures are), until it has a picture of its own; only a queued or running run's
    from PIL import Image

    from nst.web.app import App
    from nst.web.runs import make_task
    outdir = tmp_path / "runs"
    app = App(serve_args(outdir, tiny_weights_h5))
    big = tmp_path / "big.png"
    Image.new("RGB", (1200, 900), (20, 160, 40)).save(big)
    app.runs.submit(make_task("q", big, pictures[1:], Settings(size=32), {p: str(p) for p in [big, *pictures[1:]]}),
                    {"title": "q"})
    (code, kind, photo, h), (gone, *_) = fetch(app, ["/runs/q/photo", "/runs/none/photo"])
    picture = Image.open(io.BytesIO(photo))
    assert (code, kind, picture.size, gone) == (200, "image/jpeg", (512, 384), 404)
    assert picture.getpixel((5, 5))[1] > 120 and h["Cache-Control"] == "private, no-cache"
    (code, _, again, _), = fetch(app, ["/runs/q/photo"], {"If-None-Match": h["ETag"]})
    assert (code, again) == (304, b"")


def test_serves_comparison_of_two_sizes_says_what_it_scored_them_at(tmp_path, tiny_weights_h5):
    # nst serve's Compare scored a 256 px and a 512 px run each at its own size, without a word
    from nst.web.rows import score
    rng = np.random.default_rng(3)
    paths = {}
    for name, (w, h) in {"a.png": (48, 40), "b.png": (24, 20), "photo.png": (24, 20)}.items():
        paths[name] = tmp_path / name
        paths[name].write_bytes(png_bytes(rng, h, w))
    scores, note = score([paths["a.png"], paths["b.png"]], ["a.png", "b.png"], paths["photo.png"],
                         paths["photo.png"], str(tiny_weights_h5), "numpy")
    assert len(scores) == 2 and set(scores[0]) == set(scores[1])
    assert note == ("the pictures differ in size (a.png 48×40, b.png 24×20): each is scored resized to 24×20, "
                    "the smallest, as scores at different sizes are not like for like")
    assert score([paths["b.png"], paths["photo.png"]], ["b.png", "photo.png"], paths["photo.png"],
                 paths["photo.png"], str(tiny_weights_h5), "numpy")[1] == ""


@pytest.mark.parametrize("put_there", ["a user's picture", "another nst picture", "nst's, rows before sha256"])
def test_download_serves_only_the_picture_the_run_made(tmp_path, tiny_weights_h5, rng, put_there):
    # Download (and the card's picture) served whatever file sat at a run's output name: a user's
    # picture saved there later was served as the run's. Only nst's picture of that run is served
    # (its row's sha256, nst.batch.outdir's rule), else a one-line refusal naming OUTDIR, not the server's folder
    from PIL import Image

    from nst.batch import results
    from nst.io.assets import sha256_file
    from nst.io.image import save_image
    from nst.web.app import App
    outdir = tmp_path / "runs"
    app = App(serve_args(outdir, tiny_weights_h5))
    outdir.mkdir()
    made = save_image(rng.uniform(0, 255, (30, 40, 3)), outdir / "web-1.png")
    row = {"output": "web-1.png", "status": "done"}
    if put_there != "nst's, rows before sha256":
        row["sha256"] = sha256_file(made)
    results.append_row(outdir / results.MANIFEST, row)
    ours = made.read_bytes()
    (code, kind, body, _), = fetch(app, ["/runs/web-1/image"])
    assert (code, kind, body) == (200, "image/png", ours)
    if put_there == "a user's picture":
        Image.new("RGB", (40, 30), (9, 9, 9)).save(made)
        why = "exists and nst did not write it"
    else:
        save_image(rng.uniform(0, 255, (30, 40, 3)), made)      # nst's mark, not this run's bytes
        why = "changed since nst wrote it"
    answers = fetch(app, ["/runs/web-1/image", "/runs/web-1/thumb"])
    if put_there == "nst's, rows before sha256":      # nst's mark and a done row: all that tells it
        assert [a[0] for a in answers] == [200, 200]
        return
    for code, kind, body, _ in answers:
        error = json.loads(body)["error"]
        assert code == 409 and error == f"OUTDIR/web-1.png {why}: not served, as it is not the picture this run made"


def test_the_options_name_every_setting_as_the_command_line_spells_it(tmp_path, tiny_weights_h5):
    # a gallery card showed a run's settings by their field names (style_weight), in JSON
    from nst.run.settings import DEFAULTS
    from nst.web.app import App
    (code, answer), = ask(App(serve_args(tmp_path / "runs", tiny_weights_h5)), [("GET", "/api/options", None)])
    assert code == 200 and list(answer["settings"]) == list(DEFAULTS.as_dict())
    assert answer["settings"]["style_weight"] == {"option": "--style-weight", "default": 10.0}
    assert answer["settings"]["style_layers"]["default"] == list(DEFAULTS.style_layers)


def early_stopping_settings(weights, **more):
    # L-BFGS on the tiny net with a heavy J_tv: it ends at 32 px well before 300 iterations, J no
    # longer decreasing measurably (ftol)
    return Settings(size=32, scales=1, iterations=300, tv_weight=1e3, backend="numpy", weights=weights, **more)


def test_the_pages_say_why_lbfgs_stopped_before_its_iterations(rng):
    # --iterations 300 ended at 83 with the reason in the terminal's log only: the live page said
    # done, 83 / 83, and nothing of why
    from nst.testing import tiny_params
    logs = []
    img = lambda: rng.uniform(0, 255, (24, 32, 3)).astype(np.float32)   # noqa: E731
    run = Run(img(), [img()], early_stopping_settings(tiny_params()), log=logs.append)
    channel = Channel({})
    publisher = Publisher(channel)
    publisher.attach(run)
    run.run(publisher.on_iteration)
    assert channel.status["stopped_early"] == ""                        # the last stop follows the last iteration
    publisher.finish("done")
    logged, = [m for m in logs if m.startswith("L-BFGS stopped after ")]
    it, why = int(logged.split()[3]), logged.split(": ", 1)[1]
    assert it == len(run.history) < 300
    assert channel.status == {**channel.status, "state": "done",
                              "stopped_early": f"L-BFGS stopped early, 32 px after {it} of 300 iterations: {why}"}


def test_a_served_run_lbfgs_ended_early_says_why_on_its_card(engine_runs, pictures, tiny_weights_h5):
    from nst.web.runs import make_task
    settings = early_stopping_settings(str(tiny_weights_h5))
    engine_runs.submit(make_task("early", pictures[0], pictures[1:], settings, {p: str(p) for p in pictures}),
                       {"title": "early"})
    row = ended(engine_runs, "early")
    assert row["status"] == "done" and row["iterations"] < 300
    assert row["stopped_early"].startswith(f"L-BFGS stopped early, 32 px after {row['iterations']} of 300 iterations: ")
    shown, = [r for r in engine_runs.rows() if r["output"] == "early.png"]
    assert shown["stopped_early"] == row["stopped_early"]
