"""`nst video` end to end: a 6-frame 48 px clip through a real LocalCluster (frames, manifest,
Ctrl-C then the same command does only the missing frames, a killed worker), flicker lower with
the temporal term than without, bad inputs refused in one line with nothing written, and the
planning pieces (frame selection, shots, chained digests). Tiny random-weight VGG19, the NumPy
backend (no Numba compilation in fresh worker processes)."""
import collections
import contextlib
import fractions
import functools
import json
import os
import signal
import socket
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest
import video_clip
from PIL import Image
from test_batch import RUN_NST, env_with_nst, left_in_group, start_nst, stop, wait_for, workers_of

from nst.cli import main
from nst.io.image import load_image
from nst.library import fps_text
from nst.video import clip as clips
from nst.video import clip_checks
from nst.run.settings import Settings
from nst.video import flow, plan, writing
from conftest import assert_pipe_refused, second_run_during

FAST = ["--size", "48", "--scales", "1", "--backend", "numpy"]


@pytest.fixture
def inputs(tmp_path, tiny_weights_h5):
    # the 6-frame clip as a folder, a style picture, the tiny weights
    folder = video_clip.write_folder(tmp_path / "in", video_clip.frames(6))
    style = tmp_path / "style.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(style)
    return folder, style, tiny_weights_h5


def command(inputs, out, *extra):
    folder, style, weights = inputs
    return ["video", str(folder), "-o", str(out), "--style", str(style), "--weights", str(weights), *FAST, *extra]


def rows(out):
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


def frame_files(out):
    return sorted(p.name for p in out.glob("frame_*.png"))


# -- planning (no cluster) -------------------------------------------------------------------------

def test_select_frames_and_fps():
    assert clips.select(10, 30.0) == (list(range(10)), 30.0)
    assert clips.select(10, 30.0, (2, 6)) == ([2, 3, 4, 5], 30.0)
    assert clips.select(12, 30.0, None, 10.0) == ([0, 3, 6, 9], 10.0)
    assert clips.select(12, 30.0, None, 60.0) == (list(range(12)), 30.0)


def test_fps_as_the_source_rate_is_written_keeps_every_frame_at_that_rate():
    # --fps 29.97 for a 30000/1001 source (the summary line says "29.97 fps") was below its rate:
    # frame 1 dropped, the others written at 29.97 fps, off the sound's 30000/1001
    for written, rate in ((29.97, 30000 / 1001), (23.976, 24000 / 1001), (59.94, 60000 / 1001)):
        assert clips.select(12, rate, None, written) == (list(range(12)), rate), written
    assert clips.select(12, 30000 / 1001, None, 29.9)[0] != list(range(12))          # below it: thinned


def test_fps_spacing_counts_from_the_first_selected_frame():
    # every 3rd frame from A, not from source frame 0
    assert clips.select(12, 30.0, (1, 12), 10.0) == ([1, 4, 7, 10], 10.0)
    assert clips.select(12, 30.0, (2, 9), 15.0) == ([2, 4, 6, 8], 15.0)


def test_folder_frames_in_number_order(tmp_path):
    # frame1, frame2, ..., frame11 by value (as ffmpeg's frame%d.png writes them), not as text
    images = video_clip.frames(11)
    folder = tmp_path / "fr"
    folder.mkdir()
    for i, f in enumerate(images, 1):
        Image.fromarray(f).save(folder / f"frame{i}.png")
    clip = clips.read(folder, 48, None, None)
    assert [int(np.argmin([np.abs(f.astype(int) - g).sum() for g in images])) for f in clip.frames] == list(range(11))


def test_init_file_counts_by_its_content():
    frames = video_clip.frames(3)
    make = lambda sha: plan.plan(clips.Clip("x", frames, [0, 1, 2], 25.0, False),  # noqa: E731
                                 Settings(size=48, init="i.png"), {"independent_shots": None, "long_term": False},
                                 ["sha"], None, sha)
    assert [f.digest for f in make("a")] == [f.digest for f in make("a")]
    assert not {f.digest for f in make("a")} & {f.digest for f in make("b")}


def test_shots_at_cuts_and_every_n():
    a, b = video_clip.frames(4, seed=0), video_clip.frames(3, seed=5)
    b = [255 - f for f in b]                                      # another scene
    assert plan.shot_starts(a + b) == [0, 4]
    assert plan.shot_starts(a + b, independent=2) == [0, 2, 4, 6]


def test_digests_chain_within_a_shot():
    frames = video_clip.frames(5)
    make = lambda fr, s: plan.plan(clips.Clip("x", fr, list(range(len(fr))), 25.0, False), s,  # noqa: E731
                                   {"independent_shots": None, "long_term": False}, ["sha"], None)
    one = make(frames, Settings(size=48))
    changed = frames[:2] + [frames[2] // 2 + 1] + frames[3:]
    two = make(changed, Settings(size=48))
    assert [f.digest == g.digest for f, g in zip(one, two)] == [True, True, False, False, False]
    assert [f.earlier for f in one] == [(), (0,), (1,), (2,), (3,)]
    long = plan.plan(clips.Clip("x", frames, list(range(5)), 25.0, False), Settings(), {"independent_shots": None,
                     "long_term": True}, [], None)
    assert [f.earlier for f in long] == [(), (0,), (1, 0), (2, 1), (3, 2, 0)]


def test_a_frame_to_make_again_that_cannot_be_replaced_is_refused_before_any_work(tmp_path, unreplaceable):
    # it was found only at the frame's rename, after its shot's work
    from nst.io.destinations import RunRefused
    from nst.io.image import save_image
    frames = video_clip.frames(3)
    planned = plan.plan(clips.Clip("x", frames, [0, 1, 2], 25.0, False), Settings(size=48),
                        {"independent_shots": None, "long_term": False}, ["sha"], None)
    first = save_image(frames[0], tmp_path / planned[0].output)        # nst's, from an earlier plan
    assert plan.partition(planned, {}, tmp_path)[0] == planned
    unreplaceable(first)
    with pytest.raises(RunRefused, match=f"^{first} cannot be replaced \\(.*\\): make it writable"):
        plan.partition(planned, {}, tmp_path)


def test_a_shots_first_frame_kept_when_only_later_frames_change():
    # the first frame (a full coarse-to-fine run) does not use --temporal-weight, --later-iterations
    # or --long-term: another value redoes the later frames only; another --size redoes all
    frames = video_clip.frames(5)
    video = {"independent_shots": None, "long_term": False, "temporal_weight": 10.0, "later_iterations": 50}
    make = lambda v, s=Settings(size=48): plan.plan(clips.Clip("x", frames, list(range(5)), 25.0, False), s,  # noqa: E731
                                                    {**video, **v}, ["sha"], None)
    base = make({})
    for change in ({"temporal_weight": 5.0}, {"later_iterations": 20}):
        assert [f.digest == g.digest for f, g in zip(base, make(change))] == [True] + [False] * 4, change
    long = make({"long_term": True})                           # frame 1 is tied to frame 0 alone either way
    assert [f.digest == g.digest for f, g in zip(base, long)] == [True, True, False, False, False]
    cut = make({"independent_shots": 3})                       # frames 0–2 as before, frame 3 a first frame
    assert [f.digest == g.digest for f, g in zip(base, cut)] == [True, True, True, False, False]
    assert not any(f.digest == g.digest for f, g in zip(base, make({}, Settings(size=40))))



class FakeFuture:
    # a finished task's future: its result, and whether the engine let it go
    status = "finished"

    def __init__(self, result, on_release=lambda: None):
        self._result, self.on_release = result, on_release

    def done(self):
        return True

    def result(self):
        return self._result

    def release(self):
        self.on_release()


def test_flows_are_asked_for_a_few_frames_ahead_not_the_whole_clip(tmp_path, monkeypatch):
    # every flow pair was submitted at the start and held until used: 1.8 MB a pair at 512×288,
    # the whole clip's worth (3× with --long-term)
    import distributed

    from nst.video import engine
    from nst.video.task import flows_task
    monkeypatch.setattr(distributed, "wait", lambda *a, **k: None)
    frames = video_clip.frames(9)
    clip = clips.Clip("x", frames, list(range(9)), 25.0, False)
    planned = plan.plan(clip, Settings(size=48), {"independent_shots": None, "long_term": False}, ["sha"], None)
    held, most = [0], [0]

    class Client:
        def submit(self, fn, *args, **kwargs):
            if fn is flows_task:
                held[0] += 1
                most[0] = max(most[0], held[0])
                return FakeFuture((None, None, 0.0), lambda: held.__setitem__(0, held[0] - 1))
            return FakeFuture({"status": "done", "image": np.asarray(args[0], np.uint8)})

    style = tmp_path / "s.png"
    Image.fromarray(frames[0]).save(style)
    rows = []
    monkeypatch.setattr(engine, "keep", lambda manifest, f, result, image, outdir: rows.append(f.number)
                        or result["status"])
    counts = engine.on_cluster(Client(), clip, planned, planned, Settings(size=48), {}, [style], None, tmp_path)
    assert counts == {"done": 9, "failed": 0} and rows == list(range(9))
    assert most[0] == engine.FLOWS_AHEAD and held[0] == 0


# -- bad input: one line, exit 2, nothing written --------------------------------------------------

def bad_folder(tmp_path, kind):
    folder = tmp_path / "bad"
    folder.mkdir()
    if kind == "not a video":
        (tmp_path / "notes.mp4").write_text("this is not a video")
        return tmp_path / "notes.mp4", "notes.mp4: not a video nst can read (Invalid data found when processing input)"
    if kind == "one frame":
        video_clip.write_folder(folder, video_clip.frames(1))
        return folder, "only one frame"
    if kind == "unreadable frame":
        video_clip.write_folder(folder, video_clip.frames(3))
        (folder / "f001.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
        return folder, "f001.png cannot be read"
    if kind == "mixed sizes":
        video_clip.write_folder(folder, video_clip.frames(4))
        Image.fromarray(video_clip.frames(1, h=30, w=48)[0]).save(folder / "f002.png")
        return folder, "frame f002.png is 48×30 but f000.png is 48×36"
    if kind.startswith("cut"):                     # cut short, cut in its header (an MP4's index at its end), …
        suffix, keep, options = {"cut short": (".mkv", 0.8, {}), "cut in its header": (".mp4", 0.8, {}),
                                 "cut in its last frame": (".mp4", 0.99, {"movflags": "faststart"})}[kind]
        data = write_video(tmp_path / f"whole{suffix}", video_clip.frames(30), fps=30, options=options).read_bytes()
        (tmp_path / f"whole{suffix}").unlink()
        (tmp_path / f"cut{suffix}").write_bytes(data[: int(len(data) * keep)])
        return tmp_path / f"cut{suffix}", f"cut{suffix}: the file is cut short ({int(len(data) * keep):,} bytes"
    if kind == "empty file":
        (tmp_path / "empty.mov").write_bytes(b"")
        return tmp_path / "empty.mov", "empty.mov: the file is empty"
    if kind == "only sound":
        import av
        with av.open(str(tmp_path / "sound.mp4"), "w") as c:
            a = c.add_stream("aac", rate=16000)
            tone = av.AudioFrame.from_ndarray(np.full((1, 8000), 0.3, np.float32), format="fltp", layout="mono")
            tone.sample_rate = 16000
            c.mux([*a.encode(tone), *a.encode()])
        return tmp_path / "sound.mp4", "sound.mp4: has no video stream"
    if kind == "sound with a cover":                # a song's picture (was: "decodes to 1 frames … cut short")
        import av
        with av.open(str(tmp_path / "song.m4a"), "w", format="mp4") as c:
            a, v = c.add_stream("aac", rate=16000), c.add_stream("mjpeg", rate=1)
            v.width, v.height, v.pix_fmt, v.disposition = 32, 32, "yuvj420p", av.stream.Disposition.attached_pic
            c.mux([*v.encode(av.VideoFrame.from_ndarray(video_clip.frames(1, 32, 32)[0], format="rgb24")), *v.encode()])
            tone = av.AudioFrame.from_ndarray(np.full((1, 8000), 0.3, np.float32), format="fltp", layout="mono")
            tone.sample_rate = 16000
            c.mux([*a.encode(tone), *a.encode()])
        return tmp_path / "song.m4a", "song.m4a: has no video stream (only a cover picture for its sound)"
    if kind == "a stray picture":                                  # it became frame 0 (the same size)
        video_clip.write_folder(folder, video_clip.frames(4))
        Image.fromarray(video_clip.frames(1)[0]).save(folder / "cover.png")
        return folder, "bad: cover.png not named like the other 4 frames (fN.png): move it out"
    if kind == "a video in a folder":
        write_video(folder / "clip.mov", video_clip.frames(3))
        return folder, "bad: no frames in it (.png .jpg .jpeg .bmp .tif .tiff .webp) but a video, clip.mov: give"
    return folder, "no frames in it"                              # an empty folder


@pytest.mark.parametrize("kind", ["not a video", "zero frames", "one frame", "unreadable frame", "mixed sizes",
                                  "cut short", "cut in its header", "cut in its last frame", "empty file",
                                  "only sound", "sound with a cover", "a video in a folder", "a stray picture"])
def test_bad_input_one_line_nothing_lost(inputs, tmp_path, capsys, kind):
    source, needle = bad_folder(tmp_path, kind)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    folder, style, weights = inputs
    status = main(["video", str(source), "-o", str(tmp_path / "out"), "--style", str(style),
                   "--weights", str(weights), *FAST])
    err = capsys.readouterr().err
    assert status == 2 and needle in err and len(err.strip().splitlines()) == 1, err
    assert sorted(p.name for p in tmp_path.rglob("*")) == before              # nothing written


def test_a_mistyped_in_is_refused_before_the_default_weights_are_fetched(inputs, tmp_path, capsys, monkeypatch):
    # the default weights, not cached yet, were downloaded (18 MB) before a mistyped IN was named
    def fetched(*a, **k):
        raise AssertionError("the weights were read")
    monkeypatch.setattr("nst.weights.read", fetched)
    _, style, _ = inputs
    typo = tmp_path / "typo.mp4"
    assert main(["video", str(typo), "-o", str(tmp_path / "out.mp4"), "--style", str(style), *FAST]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"nst: error: IN {typo}: no such file or folder"
    assert not (tmp_path / "out.mp4").exists()


@pytest.mark.parametrize("target", ["gone.mp4", "link.mp4"])
def test_a_link_to_nothing_as_in_is_said_as_nst_batch_says_it(inputs, tmp_path, capsys, target):
    # IN a symbolic link to a missing file or to itself (a loop) was "no such file or folder"; now
    # nst batch's words for its CONTENT, through the same check
    link = tmp_path / "link.mp4"
    link.symlink_to(tmp_path / target)
    _, style, _ = inputs
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(["video", str(link), "-o", str(tmp_path / "out.mp4"), "--style", str(style), *FAST]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == \
        f"nst: error: IN {link}: a symbolic link that leads nowhere (a loop, or a missing target)"
    assert sorted(p.name for p in tmp_path.iterdir()) == before                   # nothing written


@pytest.mark.parametrize("what", ["IN", "style", "--init", "--weights"])
def test_a_pipe_as_an_input_is_refused_not_waited_on(inputs, tmp_path, tmp_path_factory, capsys, what):
    # a FIFO (`<(curl …)`) as an input waited for a writer forever; now one line before any work, as
    # nst batch and nst transfer say it (the command runs in a thread the test stops waiting for
    # after 60 s, so that it fails instead of hanging)
    pipe = tmp_path_factory.mktemp("pipe") / ("clip.mp4" if what == "IN" else "picture.png")
    os.mkfifo(pipe)
    argv = command(inputs, tmp_path / "out", *([] if what in ("IN", "style") else [what, str(pipe)]))
    if what in ("IN", "style"):
        argv[argv.index(str(inputs[1])) if what == "style" else 1] = str(pipe)
    assert_pipe_refused(main, argv, what, pipe, capsys)
    assert not (tmp_path / "out").exists()


def test_refuses_to_overwrite(inputs, tmp_path, capsys):
    folder, style, weights = inputs
    assert main(command(inputs, folder)) == 2                                 # OUTDIR = the input folder
    assert "input" in capsys.readouterr().err
    (tmp_path / "theirs.mp4").write_bytes(b"someone's video")
    assert main(command(inputs, tmp_path / "theirs.mp4")) == 2
    assert "nst did not write it" in capsys.readouterr().err
    assert (tmp_path / "theirs.mp4").read_bytes() == b"someone's video"


def test_a_link_to_nothing_as_the_video_is_refused_before_any_work(inputs, tmp_path, capsys):
    # -o onto a symbolic link to nothing (the user's) made every frame, then wrote the video in the
    # link's place; nst transfer's -o refuses one
    out, gone = tmp_path / "styled.mp4", tmp_path / "gone" / "theirs.mp4"
    out.symlink_to(gone)
    assert main(command(inputs, out)) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"nst: error: -o {out}: a symbolic link that leads nowhere (a loop, or a missing target); " \
                  "move it or choose another name", err
    assert os.readlink(out) == str(gone) and not (tmp_path / "styled.mp4.frames").exists()


def test_a_video_nst_wrote_is_known_as_nsts_with_its_frames_folder_gone(inputs, tmp_path, capsys):
    # styled.mp4.frames/ removed (a cache, large): the same command was refused, "-o styled.mp4 exists
    # and nst did not write it"; the video carries nst's mark and is made again. A video of someone
    # else's, with no mark, is still refused
    import shutil
    out = tmp_path / "styled.mp4"
    argv = command(inputs, out, "--iterations", "2", "--later-iterations", "2", "--workers", "1", "--frames", "0:2")
    assert main(argv) == 0
    shutil.rmtree(tmp_path / "styled.mp4.frames")
    assert main(argv) == 0, capsys.readouterr().err
    assert "wrote" in capsys.readouterr().err
    theirs = write_video(tmp_path / "theirs.mp4", video_clip.frames(2))
    before = theirs.read_bytes()
    assert main(command(inputs, theirs)) == 2 and theirs.read_bytes() == before
    assert "nst did not write it" in capsys.readouterr().err


@pytest.mark.parametrize("option, needle", [
    (["--init", "nothere.png"], "--init nothere.png: no such file"),
    (["--init", "{tmp}/fake.mp4"], "--init {tmp}/fake.mp4: not an image Pillow can read"),
    (["--style-blend", "1,2"], "--style-blend has 2 values for 1 style"),
    (["--size", "16"], "smaller than the"),
    (["--weights", "{tmp}/fake.mp4"], "fake.mp4"),
    (["--fps", "60"], "--fps 60 is above"),
    (["--scheduler", "bogus"], "--scheduler bogus: unknown host"),
    (["--scheduler", "{http}"], "not a Dask scheduler"),
    (["-o", ""], "-o is empty"),
    (["-o", "{tmp}/o8.xyz"], ".xyz is not a video format nst writes (.mp4 .mov .mkv .webm .avi)"),
    (["-o", "{tmp}/anim.gif"], ".gif is not a video format"),
    (["-o", "{tmp}/fake.mp4/"], "error: -o {tmp}/fake.mp4/ exists and is not a folder (nst video keeps the frames "
                                "there): move it away or choose another -o\n"),   # named it twice, less its /
    (["-o", "{tmp}/in/out"], "inside the input folder"),
    (["-o", "{tmp}/in/x.mp4"], "inside the input folder"),
    (["--init", "{tmp}/out/mine.png"], "beside the input {tmp}/out/mine.png (--init)"),
])
def test_bad_options_refused_before_anything_is_written(inputs, tmp_path, capsys, monkeypatch, option, needle):
    # what a worker would refuse is refused here: one line, exit 2, no OUTDIR, no manifest
    monkeypatch.chdir(tmp_path)                                   # -o "" would write here
    (tmp_path / "fake.mp4").write_text("not a picture, not weights")
    source = tmp_path / "clip.mkv"
    write_video(source, video_clip.frames(4), fps=12)
    (tmp_path / "out").mkdir()                                    # OUTDIR holding a picture of the user's
    Image.fromarray(video_clip.frames(1)[0]).save(tmp_path / "out" / "mine.png")
    with http_answer() as http:
        option = [o.format(tmp=tmp_path, http=http) for o in option]
        before = sorted(p.name for p in tmp_path.rglob("*"))
        given = command(inputs, tmp_path / "out", *option)
        if option[0] == "--fps":
            given[1] = str(source)
        if option[0] == "-o":
            given[given.index("-o") + 1] = option[1]
        status = main(given)
    err = capsys.readouterr().err
    assert status == 2 and needle.format(tmp=tmp_path) in err and len(err.strip().splitlines()) == 1, err
    assert sorted(p.name for p in tmp_path.rglob("*")) == before              # nothing written


@pytest.mark.parametrize("out, where", [
    ("/proc/styled.mp4", "/proc"), ("/proc/frames", "/proc"),               # no files made there, even as root
    ("{tmp}/ro/styled.mp4", "{tmp}/ro"), ("{tmp}/ro/frames", "{tmp}/ro"),     # a read-only folder
    ("{tmp}/styled.mp4", "{tmp}/styled.mp4.frames"),                        # its frames' folder read-only
])
def test_an_unwritable_o_is_refused_naming_o_as_typed(inputs, tmp_path, capsys, monkeypatch, out, where):
    # the refusal named OUT.frames/manifest.jsonl (OUT/manifest.jsonl for a folder), a name the user
    # never gave; it names -o, the folder that takes no files and why. Read-only simulated (tests may
    # run as root, who writes anywhere): no file can be made in `where`
    import tempfile
    out, where = out.format(tmp=tmp_path), where.format(tmp=tmp_path)
    (tmp_path / "styled.mp4.frames").mkdir()
    real = tempfile.mkstemp

    def denied(*args, dir=None, **kwargs):
        if str(dir) == where:
            raise PermissionError(13, "Permission denied")
        return real(*args, dir=dir, **kwargs)
    if not where.startswith("/proc"):
        monkeypatch.setattr(tempfile, "mkstemp", denied)
    (tmp_path / "ro").mkdir()
    before = sorted(tmp_path.rglob("*"))
    assert main(command(inputs, out)) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"nst: error: -o {out}: cannot write in {where} (") and len(err.splitlines()) == 1, err
    assert "manifest" not in err and sorted(tmp_path.rglob("*")) == before, err


def test_a_thin_clip_is_refused_before_anything_is_written(inputs, tmp_path, capsys):
    # 48×10 frames: at --size 48 too thin for block5_conv1; refused here, not by every worker
    folder, style, weights = inputs
    thin = video_clip.write_folder(tmp_path / "thin", video_clip.frames(3, h=10, w=48))
    status = main(["video", str(thin), "-o", str(tmp_path / "out"), "--style", str(style), "--weights",
                   str(weights), *FAST])
    err = capsys.readouterr().err
    assert status == 2 and "smaller than the" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out").exists()


@contextlib.contextmanager
def http_answer():
    # a TCP server on 127.0.0.1 answering as a web server does -> its address
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def serve():
        with contextlib.suppress(OSError):
            while True:
                conn, _ = server.accept()
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
                conn.close()
    threading.Thread(target=serve, daemon=True).start()
    try:
        yield f"tcp://127.0.0.1:{server.getsockname()[1]}"
    finally:
        server.close()


def test_scheduler_without_workers_fails_in_one_line(inputs, tmp_path, capsys, monkeypatch):
    # a scheduler no worker joins: a bounded wait, one line, no frame written
    from distributed import LocalCluster

    from nst.batch import engine
    monkeypatch.setattr(engine, "WORKER_WAIT", 1.0)
    with LocalCluster(n_workers=0, processes=False, protocol="tcp://", dashboard_address=":0") as cluster:
        status = main(command(inputs, tmp_path / "out", "--scheduler", cluster.scheduler_address))
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and err[-1].startswith("nst: error: --scheduler ") and "has no workers" in err[-1], err
    assert not frame_files(tmp_path / "out")


@pytest.mark.parametrize("what", ["a folder", "a link to nothing", "a link to nst's picture"])
def test_a_folder_or_a_link_at_a_frame_s_name_is_refused_before_any_work(inputs, tmp_path, capsys, what):
    # a folder at a name nst makes (OUTDIR/frame_000001.png) was "exists and nst did not write it"; a
    # symbolic link there (the user's) is never followed nor replaced: one to nothing made the frame,
    # then failed it as "exists and nst did not write it" (then was said "a symbolic link", as one to
    # a file); one to a picture nst wrote was replaced
    from nst.io.image import save_image
    from nst.video.clip import frame_name
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere" / "mine.png"
    at = out / frame_name(1)
    out.mkdir()
    if what == "a folder":
        at.mkdir()
    else:
        at.symlink_to(elsewhere)
        if what == "a link to nst's picture":
            save_image(video_clip.frames(1)[0], elsewhere.parent.mkdir() or elsewhere)
    assert main(command(inputs, out)) == 2
    err = capsys.readouterr().err.strip()
    noun = {"a folder": "a folder", "a link to nst's picture": "a symbolic link",
            "a link to nothing": "a symbolic link that leads nowhere (a loop, or a missing target)"}[what]
    assert err == f"nst: error: {at} is {noun}: not replaced; move it away", err
    assert at.is_dir() if what == "a folder" else at.is_symlink() and os.readlink(at) == str(elsewhere)
    assert os.listdir(out) == [at.name] and os.path.exists(elsewhere) == (what == "a link to nst's picture")


@pytest.mark.parametrize("theirs", ["a file of theirs", "a link to a file of theirs"])
def test_refuses_a_manifest_nst_did_not_write(inputs, tmp_path, capsys, theirs):
    # OUTDIR/manifest.jsonl that is not nst's is refused before any work, and stays as it was
    out, notes = tmp_path / "out", tmp_path / "notes.txt"
    out.mkdir()
    notes.write_text("my notes\n")
    if theirs == "a file of theirs":
        (out / "manifest.jsonl").write_text("my notes\n")
    else:
        (out / "manifest.jsonl").symlink_to(notes)
    assert main(command(inputs, out)) == 2
    err = capsys.readouterr().err
    assert "manifest.jsonl" in err and ("nst did not write it" in err or "symbolic link" in err), err
    assert len(err.strip().splitlines()) == 1, err
    assert notes.read_text() == "my notes\n" and (out / "manifest.jsonl").read_text() == "my notes\n"
    assert sorted(p.name for p in out.iterdir()) == ["manifest.jsonl"]


def test_dry_run(inputs, tmp_path, capsys):
    assert main(command(inputs, tmp_path / "out", "--independent-shots", "5", "--dry-run")) == 0
    out = capsys.readouterr().out
    assert "shot 0: frames 0–4 (5 frames, 5 to run)" in out and "shot 1: frame 5 (1 frame, 1 to run)" in out
    assert "time: about" in out and "measured on this machine now" in out and "one frame: up to" in out
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("source", ["folder", "in.mp4"])
def test_frames_upscaled_a_lot_are_said_once_before_the_run(inputs, tmp_path, capsys, source):
    # a 10×8 clip at --size 48 (4.8×): said once on the client, in nst transfer's words, before any
    # frame runs; it was said nowhere (the workers get the frames already at --size). The 48×36
    # clip at --size 48 is not said
    small = video_clip.frames(6, h=8, w=10)
    clip_in = (video_clip.write_folder(tmp_path / "small", small) if source == "folder"
               else writing.write_video(small, tmp_path / source, 12.0))
    assert main(command((clip_in, *inputs[1:]), tmp_path / "out.mp4", "--dry-run")) == 0
    said = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert said == [f"nst video: warning: {clip_in}: the content is 10×8 px, upscaled 4.8× to 48×38 px by "
                    "--size 48: is it the picture you meant?"], said
    assert main(command(inputs, tmp_path / "out.mp4", "--dry-run")) == 0
    assert "warning" not in capsys.readouterr().err


def test_more_workers_than_frames_fit_in_memory_are_refused(inputs, tmp_path, capsys):
    # --workers 1000000 was taken (a real run started that many worker processes, each with a frame)
    assert main(command(inputs, tmp_path / "out", "--workers", "1000000", "--dry-run")) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("nst: error: --workers 1000000: each runs a frame of about ") and "\n" not in err, err
    assert "at most --workers " in err and not (tmp_path / "out").exists()


def test_dry_run_time_is_the_frames_measured_costs_one_after_another(inputs, tmp_path, capsys, monkeypatch):
    # each side set up in 1 s and evaluated in 0.5 s, the first set-up (the weights prepared) in 3 s:
    # a worker's set-up 2 s, a first frame (2 iterations) 1 + (1.05·2 + 1)·0.5 = 2.55 s, a later one
    # (3) 1 + (1.05·3 + 1)·0.5 = 3.075 s; 3 shots of 2 frames share the cores, 2 workers setting up
    # once each: 2·2 + 3·2.55 + 3·3.075 = 20.9 s. Each shot's first frame was charged the weights:
    # 16.9 s, their 2 s a shot. Before, it was a model from one idle machine (6.3 s per megapixel per
    # evaluation: 0.04 s here), divided among the shots as if each worker had the whole machine
    from nst.video import estimate
    monkeypatch.setattr(estimate, "side_cost", lambda run, side, warm_up=False: (1.0, 0.5))
    monkeypatch.setattr(estimate, "set_up", lambda run, side: (None, None, 3.0), raising=False)
    assert main(command(inputs, tmp_path / "out", "--independent-shots", "2", "--iterations", "2",
                        "--later-iterations", "3", "--workers", "2", "--dry-run")) == 0
    out = capsys.readouterr().out
    assert "time: about 0m21s for 6 frames, measured on this machine now: a worker's set-up 2 s (the weights, " \
           "once a worker), a first frame 0m03s, a later one 0m03s (1 s set-up, 0.5 s an evaluation of J" in out, out


def test_dry_run_times_a_later_frame_with_the_weights_a_worker_kept(tiny_weights_h5, monkeypatch):
    # the later frame's measured set-up is its targets only: a worker prepared the weights for its first
    import nst.objective
    from nst.run.run import Run
    from nst.video import estimate
    prepares = counting(monkeypatch, nst.objective, "prepare")
    frames = video_clip.frames(2)
    settings = Settings(size=48, scales=1, iterations=2, backend="numpy", weights=str(tiny_weights_h5))
    estimate.measure(*(Run(f, [frames[0]], settings) for f in frames))
    assert len(prepares) == 1


# -- on a real LocalCluster ------------------------------------------------------------------------

def test_ctrl_c_then_the_same_command_does_only_the_missing_frames(inputs, tmp_path):
    out = tmp_path / "out"
    args = command(inputs, out, "--iterations", "30", "--later-iterations", "30", "--workers", "1")
    proc = start_nst(args)
    try:
        wait_for(proc, lambda: len(frame_files(out)) >= 2, 120, "no two frames were ever written")
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        alive = left_in_group(proc.pid)
    finally:
        stop(proc)
    assert not alive, alive
    assert proc.returncode == 130 and "run the same command again" in err and "Traceback" not in err, err
    kept = {name: (out / name).stat().st_mtime_ns for name in frame_files(out)}
    assert 2 <= len(kept) < 6 and not [p for p in out.iterdir() if p.name.startswith(".")]
    again = subprocess.run([*RUN_NST, *args], env=env_with_nst(), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert f"{len(kept)} done before, {6 - len(kept)} to run" in again.stderr
    assert frame_files(out) == [clips.frame_name(i) for i in range(6)]
    assert all((out / n).stat().st_mtime_ns == t for n, t in kept.items())           # not redone
    done = collections.Counter(r["output"] for r in rows(out) if r["status"] == "done")
    assert sorted(done) == frame_files(out) and all(done[n] == 1 for n in kept)   # kept: ran once
    # a frame not kept ran at most twice: Ctrl-C may land after its row, before its file (row first)
    assert sum(done[n] - 1 for n in done if n not in kept) <= 1, done
    assert load_image(out / clips.frame_name(5)).shape == (36, 48, 3)
    r = {row["output"]: row for row in rows(out)}
    assert r[clips.frame_name(0)]["first"] and not r[clips.frame_name(3)]["first"]
    assert "temporal" in r[clips.frame_name(3)]["terms"] and r[clips.frame_name(3)]["iterations"] == 30


def test_a_killed_worker_loses_only_its_frame(inputs, tmp_path):
    out = tmp_path / "out"
    proc = start_nst(command(inputs, out, "--iterations", "30", "--later-iterations", "30", "--workers", "1"))
    try:
        wait_for(proc, lambda: frame_files(out), 120, "no frame was ever written")
        workers = workers_of(proc)
        assert len(workers) == 1
        workers[0].kill()
        _, err = proc.communicate(timeout=240)
    finally:
        stop(proc)
    assert proc.returncode == 0, err
    assert frame_files(out) == [clips.frame_name(i) for i in range(6)]
    done = [r["output"] for r in rows(out) if r["status"] == "done"]
    assert sorted(done) == frame_files(out)                        # no frame ran twice to the end
    assert len({r["worker"] for r in rows(out)}) == 2              # the rest ran on the new worker


def test_flicker_lower_with_the_temporal_term(inputs, tmp_path):
    # the same settings, random start: each frame on its own (a shot per frame) against frames
    # tied by the temporal term; E measured over the content's reliable pixels
    common = ["--init", "random", "--iterations", "40", "--later-iterations", "40", "--workers", "1"]
    alone, tied = tmp_path / "alone", tmp_path / "tied"
    assert main(command(inputs, alone, *common, "--independent-shots", "1")) == 0
    assert main(command(inputs, tied, *common)) == 0                        # the default weight
    frames = [np.asarray(load_image(p), np.uint8) for p in sorted((inputs[0]).glob("*.png"))]
    flows = [flow.flow_and_mask(frames[t], frames[t - 1]) for t in range(1, 6)]
    e = {name: flow.flicker([load_image(d / clips.frame_name(i)) for i in range(6)], flows)
         for name, d in (("alone", alone), ("tied", tied))}
    assert e["tied"] < 0.2 * e["alone"], e                       # measured: 20× lower


def write_mp4_with_audio(path, images, fps=12):
    import av
    with av.open(str(path), "w") as c:
        v = c.add_stream("mpeg4", rate=fps)
        v.width, v.height, v.pix_fmt = images[0].shape[1], images[0].shape[0], "yuv420p"
        a = c.add_stream("aac", rate=16000)
        for f in images:
            for p in v.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in v.encode():
            c.mux(p)
        t = np.arange(16000 * len(images) // fps) / 16000
        frame = av.AudioFrame.from_ndarray((0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None],
                                           format="fltp", layout="mono")
        frame.sample_rate = 16000
        for p in [*a.encode(frame), *a.encode()]:
            c.mux(p)


def test_video_file_in_and_out_keeps_rate_and_audio(inputs, tmp_path, capsys, monkeypatch):
    # ... the finished frames read one at a time as the video is written (they were all loaded first)
    import av
    source, out = tmp_path / "clip.mp4", tmp_path / "styled.mp4"
    write_mp4_with_audio(source, video_clip.frames(6, h=36, w=48))
    _, style, weights = inputs
    argv = ["video", str(source), "-o", str(out), "--style", str(style), "--weights", str(weights), *FAST,
            "--iterations", "5", "--later-iterations", "3", "--workers", "1"]
    real, given = writing.write_video, []
    monkeypatch.setattr(writing, "write_video", lambda frames, *a, **k: given.append(frames) or real(frames, *a, **k))
    assert main(argv) == 0
    assert len(given) == 1 and len(given[0]) == 6 and not isinstance(given[0], list), given
    with av.open(str(out)) as c:
        assert c.streams.video[0].average_rate == 12 and c.streams.audio
        assert sum(1 for _ in c.decode(video=0)) == 6
    assert frame_files(tmp_path / "styled.mp4.frames") == [clips.frame_name(i) for i in range(6)]
    written = out.stat().st_mtime_ns
    err = capsys.readouterr().err
    assert "6/6 frames" in err and " s/frame |" in err                # the unit once: was "s/frames"
    assert main(argv) == 0                                         # nothing to do, nothing rewritten
    assert "up to date" in capsys.readouterr().err and out.stat().st_mtime_ns == written


def styled_mp4(inputs, tmp_path):
    # a 4-frame clip styled into styled.mp4 (and its styled.mp4.frames/) -> (argv(out, *extra): the
    # same command into another -o, styled.mp4, styled.mkv)
    source, mp4, mkv = tmp_path / "clip.mp4", tmp_path / "styled.mp4", tmp_path / "styled.mkv"
    write_mp4_with_audio(source, video_clip.frames(4, h=36, w=48))
    _, style, weights = inputs
    argv = lambda out, *extra: ["video", str(source), "-o", str(out), "--style", str(style),  # noqa: E731
                                "--weights", str(weights), *FAST, "--iterations", "2", "--later-iterations", "2",
                                "--workers", "1", *extra]
    assert main(argv(mp4)) == 0
    return argv, mp4, mkv


@pytest.mark.parametrize("how", ["removed", "changed"])
def test_a_source_removed_or_changed_during_the_run_is_said_its_sound_not_copied(inputs, tmp_path, capsys,
                                                                                 monkeypatch, how):
    # clip.mp4 removed while its frames were made: a traceback (its sha256 for the video's key);
    # replaced by another file: that file's sound under these frames. One line, no video, the frames kept
    import nst.video.cli
    source, out = tmp_path / "clip.mp4", tmp_path / "styled.mp4"
    write_mp4_with_audio(source, video_clip.frames(4, h=36, w=48))
    make_frames = nst.video.cli.execute

    def execute_then_change(*args, **kwargs):
        status = make_frames(*args, **kwargs)
        source.unlink()
        if how == "changed":
            write_mp4_with_audio(source, video_clip.frames(4, h=36, w=48, seed=1))
        return status
    monkeypatch.setattr(nst.video.cli, "execute", execute_then_change)
    _, style, weights = inputs
    assert main(["video", str(source), "-o", str(out), "--style", str(style), "--weights", str(weights), *FAST,
                 "--iterations", "1", "--later-iterations", "1", "--workers", "1"]) == 1
    what = "was removed" if how == "removed" else "changed"
    assert (f"nst video: error: {source} {what} after its frames were read, so its sound cannot be copied; the "
            f"frames are in {tmp_path / 'styled.mp4.frames'}: run the same command again with it in place"
            ) in capsys.readouterr().err
    assert not out.exists() and len(frame_files(tmp_path / "styled.mp4.frames")) == 4


def test_another_container_takes_the_frames_made_for_the_same_video(inputs, tmp_path, capsys, monkeypatch):
    # -o styled.mp4, then -o styled.mkv with the same source, frames and settings: the frames in
    # styled.mp4.frames are taken (linked, said in one line; --dry-run says it would), none made again,
    # that folder unchanged; other settings (--iterations 3) take none. Each -o styled every frame again
    import nst.video.cli
    argv, mp4, mkv = styled_mp4(inputs, tmp_path)
    cache = tmp_path / "styled.mp4.frames"
    before = {p.name: p.read_bytes() for p in cache.iterdir()}
    capsys.readouterr()
    assert main(argv(mkv, "--dry-run")) == 0 and not (tmp_path / "styled.mkv.frames").exists()
    said, err = f"4 frames made for the same source, frames and settings in {cache} would be taken", \
        capsys.readouterr().err
    assert said in err and "4 done before, 0 to run" in err, err
    assert main(argv(mkv, "--iterations", "3", "--dry-run")) == 0
    err = capsys.readouterr().err
    assert "taken" not in err and "0 done before, 4 to run" in err, err
    monkeypatch.setattr(nst.video.cli, "execute", lambda *a, **k: pytest.fail("a frame made again"))
    assert main(argv(mkv)) == 0 and mkv.exists()
    err = capsys.readouterr().err
    assert f"nst video: took 4 frames made for the same source, frames and settings from {cache}" in err, err
    assert "4 done before, 0 to run" in err, err
    assert {p.name: p.read_bytes() for p in cache.iterdir()} == before
    taken = tmp_path / "styled.mkv.frames"
    assert all((taken / name).read_bytes() == before[name] for name in frame_files(cache))
    assert [r["digest"] for r in rows(taken)[:4]] == [r["digest"] for r in rows(cache)[:4]]
    assert main(argv(tmp_path / "styled.mov", "--fps", "5", "--dry-run")) == 0     # frame 0 only: was "1 frames"
    assert f"1 frame made for the same source, frames and settings in {cache} would" in capsys.readouterr().err


def test_another_container_takes_the_frames_it_lacks_into_frames_it_has(inputs, tmp_path, capsys, monkeypatch):
    # -o styled.mkv --frames 0:2 after -o styled.mp4 took frames 0 and 1; -o styled.mkv with every
    # frame then made frames 2 and 3 again, styled.mkv.frames being no longer empty. It takes them,
    # frame 2 replacing the frame an earlier run with other settings left there (nst's, in one rename)
    import nst.video.cli
    from nst.io.image import save_image
    argv, mp4, mkv = styled_mp4(inputs, tmp_path)
    cache, taken = tmp_path / "styled.mp4.frames", tmp_path / "styled.mkv.frames"
    before = {p.name: p.read_bytes() for p in cache.iterdir()}
    monkeypatch.setattr(nst.video.cli, "execute", lambda *a, **k: pytest.fail("a frame made again"))
    assert main(argv(mkv, "--frames", "0:2")) == 0 and frame_files(taken) == [clips.frame_name(i) for i in (0, 1)]
    save_image(np.full((36, 48, 3), 9.0), taken / clips.frame_name(2))           # an earlier run's, other settings
    plan.Manifest(taken).append({"output": clips.frame_name(2), "digest": "0" * 64, "status": "done"})
    capsys.readouterr()
    assert main(argv(mkv, "--dry-run")) == 0
    err = capsys.readouterr().err
    assert f"2 frames made for the same source, frames and settings in {cache} would be taken" in err, err
    assert "4 done before, 0 to run" in err, err
    assert main(argv(mkv)) == 0 and mkv.exists()
    err = capsys.readouterr().err
    assert f"took 2 frames made for the same source, frames and settings from {cache}" in err, err
    assert "4 done before, 0 to run" in err, err
    assert {p.name: p.read_bytes() for p in cache.iterdir()} == before
    assert all((taken / name).read_bytes() == before[name] for name in frame_files(cache))
    assert not [p.name for p in taken.iterdir() if p.name.startswith(".")]          # no temporary file left


def test_a_later_frame_with_long_term_targets(tiny_weights):
    # frame_task as a worker runs it, in this process: frame 2 tied to frames 1 and 0 (closest first)
    from nst.video.task import flows_task, frame_task
    frames = video_clip.frames(3)
    settings = Settings(size=48, scales=1, iterations=3, backend="numpy", weights=tiny_weights)
    video = {"temporal_weight": 1.0, "later_iterations": 4, "long_term": True}
    earlier = [frame_task(f, [frames[0]], settings, video, [], [])["image"] for f in frames[:2]][::-1]
    flows = [flows_task(frames[2], frames[k]) for k in (1, 0)]
    r = frame_task(frames[2], [frames[0]], settings, video, earlier, flows)
    assert r["status"] == "done", r
    assert r["iterations"] == 4 and r["terms"]["temporal"] > 0 and 0 < r["reliable"] <= 1
    assert r["image"].shape == (36, 48, 3) and r["image"].dtype == np.uint8


def test_a_dark_frame_warped_to_start_from_is_not_warned_of_as_0_to_1(tiny_weights):
    # a later frame of a fade to black starts from the previous output moved half a pixel: values in
    # 0..1 with some between, which an init array given by a user is warned of (0..255 taken for
    # 0..1); video's own start, and --init FILE's pixels on a shot's first frame, are not
    import warnings

    from nst.video.task import frame_task
    dark = [(f > 128).astype(np.uint8) for f in video_clip.frames(2)]
    settings = Settings(size=48, scales=1, iterations=2, backend="numpy", weights=tiny_weights,
                        init=dark[0].astype(np.float32))
    video = {"temporal_weight": 1.0, "later_iterations": 2, "long_term": False}
    half_pixel = (np.full((36, 48, 2), 0.5, np.float32), np.ones((36, 48), np.float32), 0.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = frame_task(dark[0], [dark[0]], settings, video, [], [])
        later = frame_task(dark[1], [dark[0]], settings, video, [dark[0]], [half_pixel])
    assert first["status"] == later["status"] == "done", (first, later)
    assert not [w for w in caught if "0..1" in str(w.message)], [str(w.message) for w in caught]


def write_video(path, images, fps=12, options=None, codec="mpeg4"):
    # frames -> a video file (mpeg4: in every FFmpeg build); options: the muxer's
    import av
    with av.open(str(path), "w", options=options or {}) as c:
        v = c.add_stream(codec, rate=fps)
        v.width, v.height, v.pix_fmt = images[0].shape[1], images[0].shape[0], "yuv420p"
        for f in images:
            for p in v.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in v.encode():
            c.mux(p)
    return path


def test_a_frame_rate_as_a_fraction_is_said_as_its_float():
    # PyAV's rates are Fractions: fps_text raised TypeError for one (no "g" format before Python 3.12)
    assert [fps_text(fractions.Fraction(n, d)) for n, d in ((60000, 1001), (24000, 1001), (25, 1), (1, 3))] == \
        ["59.94 fps", "23.976 fps", "25 fps", "0.333 fps"]


def test_frame_rates_are_said_as_people_write_them(inputs, tmp_path, capsys):
    # a 60000/1001 source was said as "59.9401 fps" in the summary and in --fps's refusal
    import fractions

    from nst.library import fps_text
    assert [fps_text(r) for r in (60000 / 1001, 30000 / 1001, 24000 / 1001, 25.0, 12.5, 1 / 3)] == \
        ["59.94 fps", "29.97 fps", "23.976 fps", "25 fps", "12.5 fps", "0.333 fps"]
    source = write_video(tmp_path / "ntsc.mkv", video_clip.frames(4), fps=fractions.Fraction(60000, 1001))
    given = command(inputs, tmp_path / "out", "--dry-run")
    given[1] = str(source)
    assert main(given) == 0
    assert ", 59.94 fps, 1 shot:" in capsys.readouterr().err
    assert main(given + ["--fps", "70"]) == 2
    assert f"--fps 70 is above {source}'s 59.94 fps: nst video" in capsys.readouterr().err


def test_a_cut_short_file_is_known_by_its_container(tmp_path):
    # every container nst writes, cut anywhere (in its header, its middle, its last frame): shorter
    # than it declares; whole, or with bytes after its end: not; a Matroska streamed with no size
    # and a format that declares none: nothing said
    import av

    from nst.video import header
    for suffix, options in [(".mp4", {}), (".mp4", {"movflags": "faststart"}), (".mov", {}), (".mkv", {}),
                            (".avi", {}), (".mp4", {"movflags": "frag_keyframe+empty_moov"})]:
        data = write_video(tmp_path / f"whole{suffix}", video_clip.frames(12), options=options).read_bytes()
        assert header.cut_short(tmp_path / f"whole{suffix}") is None, (suffix, options)
        (tmp_path / f"long{suffix}").write_bytes(data + b"trailing bytes")
        assert header.cut_short(tmp_path / f"long{suffix}") is None
        for keep in (0.02, 0.3, 0.7, 0.99):
            cut = tmp_path / f"cut{suffix}"
            cut.write_bytes(data[: int(len(data) * keep)])
            size, declared = header.cut_short(cut)
            assert size == int(len(data) * keep) < declared <= len(data), (suffix, options, keep)
    with av.open(str(tmp_path / "streamed.mkv"), "w", options={"live": "1"}) as c:   # no sizes: not seekable
        v = c.add_stream("mpeg4", rate=12)
        v.width, v.height, v.pix_fmt = 48, 36, "yuv420p"
        c.mux([p for f in video_clip.frames(3) for p in v.encode(av.VideoFrame.from_ndarray(f, format="rgb24"))])
        c.mux(v.encode())
    data = (tmp_path / "streamed.mkv").read_bytes()
    (tmp_path / "streamed.mkv").write_bytes(data[: len(data) // 2])
    assert header.cut_short(tmp_path / "streamed.mkv") is None
    assert header.cut_short(tmp_path / "style.png") is None and header.cut_short(tmp_path / "nothere") is None


@pytest.mark.parametrize("kind", ["video", "folder"])
def test_a_clip_too_long_for_the_disk_is_refused_before_its_frames_are_decoded(tmp_path, monkeypatch, kind):
    # 30 frames at 48×36 take 155 KB in the frames' file: with 120 KB free on its disk, one line naming
    # the ways out, nothing decoded; 20 of them (--frames, or --fps 8 of the video's 12) are read
    import shutil
    images = video_clip.frames(30)
    source = write_video(tmp_path / "clip.mkv", images) if kind == "video" else \
        video_clip.write_folder(tmp_path / "frames", images)
    resized = []
    monkeypatch.setattr(clips, "resize_longest", lambda img, size: resized.append(1) or img)
    monkeypatch.setattr(shutil, "disk_usage", lambda folder: shutil._ntuple_diskusage(10**9, 10**9 - 120_000, 120_000))
    with pytest.raises(clips.RunRefused, match=rf"30 frames at 48 px need 0.00 GiB on the disk of {tmp_path}, "
                                              r"which has 0.00 GiB free: free some space, or stylise a part "
                                              r"\(--frames A:B\)"):
        clips.read(source, 48, keep_in=tmp_path)
    assert not resized
    assert len(clips.read(source, 48, (0, 20), None, tmp_path).frames) == 20                   # 104 KB: read
    assert kind == "folder" or len(clips.read(source, 48, None, 8.0, tmp_path).frames) == 20


def test_a_disk_that_fills_while_the_frames_are_kept_is_one_line(tmp_path, monkeypatch):
    # a clip whose header declares no length passes the check before decoding: the disk filling up
    # as its frames are kept says so (it said "not a video nst can read (No space left on device)")
    import errno

    from nst.video import store
    source = write_video(tmp_path / "clip.mkv", video_clip.frames(12))

    class FullDisk:
        def __init__(self, real):
            self.real, self.written = real, 0

        def write(self, data):
            self.written += 1
            if self.written > 3:
                raise OSError(errno.ENOSPC, "No space left on device")
            return self.real.write(data)

        def __getattr__(self, name):
            return getattr(self.real, name)
    real_file = store.tempfile.TemporaryFile
    monkeypatch.setattr(store.tempfile, "TemporaryFile", lambda dir=None: FullDisk(real_file(dir=dir)))
    with pytest.raises(clips.RunRefused, match=rf"^the clip's frames cannot be kept on the disk of {tmp_path} \(No "
                                              r"space left on device\) after 3: free some space"):
        clips.read(source, 48, keep_in=tmp_path)


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="reads Linux's /proc/self/maps")
@pytest.mark.parametrize("kind", ["video", "folder"])
def test_a_clip_is_kept_on_disk_not_in_memory(tmp_path, monkeypatch, kind):
    # the frames are mapped from an unnamed file in the folder given (the outputs' disk), not held in
    # memory: a clip needing over half the free memory is read (it was refused), nothing is left behind
    import nst.memory
    images = video_clip.frames(30)
    source = write_video(tmp_path / "clip.mkv", images) if kind == "video" else \
        video_clip.write_folder(tmp_path / "frames", images)
    keep_in = tmp_path / "out"
    keep_in.mkdir()
    monkeypatch.setattr(nst.memory, "available", lambda backend: 250_000)
    clip = clips.read(source, 48, keep_in=keep_in)
    assert clip.frames.shape == (30, 36, 48, 3) and not clip.frames.flags.owndata and not any(keep_in.iterdir())
    assert any(f" {keep_in}/" in line for line in open("/proc/self/maps")), "the frames are not mapped from keep_in"
    assert np.abs(clip.frames[29].astype(int) - images[29]).mean() < (20 if kind == "video" else 1e-9)   # MPEG-4


def test_a_video_that_cannot_be_read_says_so(tmp_path, monkeypatch):
    # a file the system will not let nst read is not "not a video"
    import av
    (tmp_path / "locked.mp4").write_bytes(b"\x00" * 64)
    monkeypatch.setattr(av, "open", lambda *a, **k: (_ for _ in ()).throw(PermissionError(13, "Permission denied")))
    with pytest.raises(clips.RunRefused, match=r"locked.mp4: cannot be read \(Permission denied\)$"):
        clips.read(tmp_path / "locked.mp4", 48)


def test_frames_a_b_decodes_only_to_b_and_keeps_only_the_selection(tmp_path, monkeypatch):
    # a file cut short after frame ~20: --frames 2:5 never decodes that far; 3 frames resized, kept
    whole = write_video(tmp_path / "whole.mkv", video_clip.frames(30), fps=30).read_bytes()
    (tmp_path / "cut.mkv").write_bytes(whole[: len(whole) * 4 // 5])
    resized = []
    monkeypatch.setattr(clips, "resize_longest", lambda img, size: resized.append(img.shape) or img)
    clip = clips.read(tmp_path / "cut.mkv", 48, (2, 5), None)
    assert clip.numbers == [2, 3, 4] and len(clip.frames) == 3 and len(resized) == 3
    assert len(clips.read(tmp_path / "whole.mkv", 48).frames) == 30                 # the whole file: all of it


def test_a_frames_folder_keeps_only_this_runs_frames(inputs, tmp_path, capsys):
    # -o a folder, --frames 0:6 then 0:3: frames 3–5 (nst's, from the first run) are removed and
    # said so; a file of the user's in it stays
    out = tmp_path / "out"
    common = ["--iterations", "2", "--later-iterations", "2", "--workers", "1"]
    assert main(command(inputs, out, *common, "--frames", "0:6")) == 0
    (out / "notes.txt").write_text("mine")
    capsys.readouterr()
    assert main(command(inputs, out, *common, "--frames", "0:3")) == 0
    err = capsys.readouterr().err
    assert "3 done before, 0 to run" in err and "removed 3 frames of an earlier run" in err, err
    assert frame_files(out) == [clips.frame_name(i) for i in range(3)]
    assert (out / "notes.txt").read_text() == "mine"
    assert {r["output"]: r["status"] for r in rows(out)}[clips.frame_name(4)] == "removed"


def test_a_videos_frames_of_an_earlier_wider_run_stay_for_the_next(inputs, tmp_path, capsys):
    # -o a video file, --frames 0:5 then a preview of 0:2 then 0:5 again: the preview removed frames
    # 2–4 (hours of work on a real clip), which the third run made again; they now stay in
    # OUT.frames, the preview's video holds its 2 frames, and the third run finds all 5 done
    import av
    out = tmp_path / "styled.mp4"
    common = ["--iterations", "2", "--later-iterations", "2", "--workers", "1"]
    assert main(command(inputs, out, *common, "--frames", "0:5")) == 0
    assert main(command(inputs, out, *common, "--frames", "0:2")) == 0
    with av.open(str(out)) as c:
        assert sum(1 for _ in c.decode(video=0)) == 2
    assert frame_files(tmp_path / "styled.mp4.frames") == [clips.frame_name(i) for i in range(5)]
    capsys.readouterr()
    assert main(command(inputs, out, *common, "--frames", "0:5")) == 0
    assert "5 done before, 0 to run" in capsys.readouterr().err
    with av.open(str(out)) as c:
        assert sum(1 for _ in c.decode(video=0)) == 5


def test_a_new_fps_rewrites_the_video(inputs, tmp_path, capsys):
    # a folder's rate changed by --fps alone: the frames stay, the video is written again at that rate
    import av
    out = tmp_path / "styled.mp4"
    common = ["--iterations", "2", "--later-iterations", "2", "--workers", "1", "--frames", "0:3"]
    assert main(command(inputs, out, *common, "--fps", "7")) == 0
    capsys.readouterr()
    assert main(command(inputs, out, *common, "--fps", "20")) == 0
    err = capsys.readouterr().err
    assert "3 done before, 0 to run" in err and "up to date" not in err, err
    with av.open(str(out)) as c:
        assert c.streams.video[0].average_rate == 20


def test_a_phone_video_turned_by_its_display_matrix(tmp_path):
    # a portrait phone clip is stored landscape with a rotation in its header: nst reads it as a
    # player shows it (stored 48×24, dark left and bright right; turned 90° counterclockwise: 24×48,
    # bright on top), so the styled video is not sideways
    import av
    if not hasattr(av.video.stream.VideoStream, "set_display_rotation"):
        pytest.skip("this PyAV cannot write a display matrix")
    image = np.zeros((24, 48, 3), np.uint8)
    image[:, 24:] = 220
    with av.open(str(tmp_path / "phone.mp4"), "w") as c:
        v = c.add_stream("mpeg4", rate=12)
        v.width, v.height, v.pix_fmt = 48, 24, "yuv420p"
        v.set_display_rotation(90)
        for _ in range(3):
            for p in v.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                c.mux(p)
        for p in v.encode():
            c.mux(p)
    clip = clips.read(tmp_path / "phone.mp4", 48)
    top, bottom = clip.frames[0][:20].mean(), clip.frames[0][28:].mean()
    assert clip.frames[0].shape == (48, 24, 3) and top > 180 > 40 > bottom, (clip.frames[0].shape, top, bottom)


@pytest.mark.parametrize("turn, hflip, vflip", [(0, True, False), (0, False, True), (90, True, False),
                                               (270, False, True), (180, True, False), (90, False, False)])
def test_a_mirrored_video_is_read_as_a_player_shows_it(tmp_path, turn, hflip, vflip):
    # a display matrix that mirrors (a selfie camera's, an editor's flip), with or without a turn: the
    # frame is turned, then mirrored, as FFmpeg's players show it; a mirror was ignored (or, alone,
    # taken for half a turn: upside down)
    import av
    image = np.zeros((24, 48, 3), np.uint8)
    image[:12, :24], image[:12, 24:], image[12:, :24] = (250, 0, 0), (0, 250, 0), (0, 0, 250)
    with av.open(str(tmp_path / "mirrored.mp4"), "w") as c:
        v = c.add_stream("mpeg4", rate=12)
        v.width, v.height, v.pix_fmt = 48, 24, "yuv420p"
        v.set_display_rotation(turn, hflip=hflip, vflip=vflip)
        c.mux([p for _ in range(2) for p in v.encode(av.VideoFrame.from_ndarray(image, format="rgb24"))] + v.encode())
    seen = np.rot90(image, turn // 90)
    seen = seen[::-1 if vflip else 1, ::-1 if hflip else 1]
    frame = clips.read(tmp_path / "mirrored.mp4", 48).frames[0]
    assert frame.shape == seen.shape and np.abs(frame.astype(int) - seen).mean() < 15


def test_display_transform_reads_ffmpegs_matrices():
    # the matrices av_display_rotation_set(−θ) then av_display_matrix_flip(h, v) write (16.16 fixed
    # point, [a b u; c d v; x y w]) -> θ/90 counterclockwise quarter turns, then a left-right mirror
    # (a vertical flip: a mirror and half a turn)
    def matrix(ccw, hflip=False, vflip=False):
        c, s = (round(65536 * f(np.radians(ccw))) for f in (np.cos, np.sin))
        flip = np.tile([-1 if hflip else 1, -1 if vflip else 1, 1], 3)          # matrix[i] *= flip[i % 3]
        return np.array([c, -s, 0, s, c, 0, 0, 0, 1 << 30], np.int64) * flip
    assert clips.display_transform(None) == (0, False)
    assert [clips.display_transform(matrix(a)) for a in (0, 90, 180, 270, -90)] == \
        [(0, False), (1, False), (2, False), (3, False), (3, False)]
    assert clips.display_transform(matrix(0, hflip=True)) == (0, True)
    assert clips.display_transform(matrix(0, vflip=True)) == (2, True)
    assert clips.display_transform(matrix(90, hflip=True)) == (1, True)
    assert clips.display_transform(matrix(90, vflip=True)) == (3, True)


def test_a_full_disk_is_one_line_and_the_frames_made_stay(inputs, tmp_path, capsys, monkeypatch):
    # ENOSPC on frame 2, then on the video file: each one line (exit 1), no traceback, the frames
    # made stay and -o is never half-written; with space again the same command goes on
    import nst.io.image
    out = tmp_path / "styled.mp4"
    argv = command(inputs, out, "--iterations", "2", "--later-iterations", "2", "--workers", "1", "--frames", "0:3")
    save = nst.io.image.save_image

    def full_at_frame_2(image, path, *a, **k):
        if path.name == clips.frame_name(2):
            raise OSError(28, "No space left on device")
        return save(image, path, *a, **k)
    monkeypatch.setattr(nst.io.image, "save_image", full_at_frame_2)
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "cannot write" in err and "No space left on device" in err and "Traceback" not in err, err
    assert frame_files(tmp_path / "styled.mp4.frames") == [clips.frame_name(i) for i in range(2)]
    monkeypatch.setattr(nst.io.image, "save_image", save)
    monkeypatch.setattr(writing, "write_video", lambda *a, **k: (_ for _ in ()).throw(OSError(28, "No space left")))
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert f"cannot write {out} (No space left)" in err and "2 done before, 1 to run" in err, err
    assert not out.exists() and len(frame_files(tmp_path / "styled.mp4.frames")) == 3
    monkeypatch.undo()
    assert main(argv) == 0 and out.exists()
    assert "3 done before, 0 to run" in capsys.readouterr().err


def test_a_frame_gone_when_the_video_is_written_says_the_same_command_makes_it_again(inputs, tmp_path, capsys,
                                                                                   monkeypatch):
    # a frame (or the hard link to another folder's frame) removed after it was made was one line,
    # "nst: error: …/frame_000001.png: no such file", not saying that the same command makes it again
    from nst.video import output
    out, frames = tmp_path / "styled.mp4", tmp_path / "styled.mp4.frames"
    argv = command(inputs, out, "--iterations", "2", "--later-iterations", "2", "--workers", "1", "--frames", "0:3")
    write_out = output.write_out

    def remove_frame_1(images, *a, **k):
        (frames / clips.frame_name(1)).unlink()
        return write_out(images, *a, **k)
    monkeypatch.setattr(output, "write_out", remove_frame_1)
    assert main(argv) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == (f"nst video: error: {frames / clips.frame_name(1)}: no such file; run the same command "
                       f"again: it makes the missing frames again and writes {out}"), err
    assert not out.exists()
    monkeypatch.undo()
    assert main(argv) == 0 and out.exists()
    assert "1 done before, 2 to run" in capsys.readouterr().err


def test_a_second_run_on_the_same_o_is_refused_while_the_first_lives(inputs, tmp_path, capsys, monkeypatch):
    # two nst video runs on one -o at once interleaved their frames and rows; the second is now
    # refused at its start (before any work), its --dry-run not, and the same command runs once the
    # first has ended
    from nst.video import output
    out = tmp_path / "styled.mp4"
    argv = command(inputs, out, "--iterations", "2", "--later-iterations", "2", "--workers", "1", "--frames", "0:2")
    second = second_run_during(monkeypatch, capsys, output, "write_out", main, argv)
    assert main(argv) == 0
    status, dry_status, err = second[0]
    assert (status, dry_status) == (2, 0), err
    assert err.splitlines()[0] == (f"nst: error: -o {out}: another nst video is writing {out}.frames now; wait for "
                                   "it to end, or choose another -o"), err
    monkeypatch.undo()
    out.unlink()
    assert main(argv) == 0 and out.exists()


VFR_MS = [0, 33, 66, 300, 333, 366, 700, 733]      # bursts at 30 fps and pauses: a variable rate


def write_vfr(path, images, ms=VFR_MS, sound=False, rate=30):
    # frames at the times `ms` (milliseconds; Matroska's clock) in a file whose header says `rate` (its
    # first frames' rate), with 0.8 s of sound if asked: silence, then a tone from 0.7 s, when frame 6
    # comes on screen (sound_onset)
    import fractions

    import av
    with av.open(str(path), "w") as c:
        v = c.add_stream("mpeg4", rate=rate)
        v.width, v.height, v.pix_fmt = images[0].shape[1], images[0].shape[0], "yuv420p"
        v.codec_context.time_base = fractions.Fraction(1, 1000)
        a = c.add_stream("aac", rate=16000) if sound else None
        for t, image in zip(ms, images):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = t, fractions.Fraction(1, 1000)
            c.mux(v.encode(frame))
        c.mux(v.encode())
        if a:
            step = np.where(np.arange(12800) >= 0.7 * 16000, 0.3, 0.0).astype(np.float32)[None]
            tone = av.AudioFrame.from_ndarray(step, format="fltp", layout="mono")
            tone.sample_rate, tone.pts = 16000, 0                   # its first sample with the first frame
            c.mux([*a.encode(tone), *a.encode()])
    return path


def test_the_weights_file_is_read_once(inputs, tmp_path, opened_files):
    # its sha256 (the digests), its check (a VGG19) and the workers' copy come from one read
    weights = os.path.realpath(inputs[2])
    assert main(command(inputs, tmp_path / "out", "--iterations", "2", "--later-iterations", "2",
                        "--workers", "1", "--frames", "0:2")) == 0
    assert opened_files.count(weights) == 1, opened_files


def test_a_frame_the_disk_refuses_alone_fails_and_the_other_shots_go_on(inputs, tmp_path, capsys, monkeypatch,
                                                                        failing_save):
    # EIO on frame 1 while OUTDIR still takes files: that frame fails (its row says why) and its
    # shot stops, the other shot is made; exit 1, and the same command goes on from frame 1
    import errno
    out = tmp_path / "out"
    argv = command(inputs, out, "--iterations", "2", "--later-iterations", "2", "--workers", "1",
                   "--frames", "0:4", "--independent-shots", "2")
    failing_save(clips.frame_name(1), errno.EIO)
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert f"frame 1 failed: cannot write {out / clips.frame_name(1)} (Input/output error)" in err, err
    assert "nst video: error" not in err and "1 failed" in err, err
    assert frame_files(out) == [clips.frame_name(i) for i in (0, 2, 3)]
    last = {r["output"]: r for r in rows(out)}
    assert last[clips.frame_name(1)]["status"] == "failed", last
    monkeypatch.undo()
    assert main(argv) == 0 and "3 done before, 1 to run" in capsys.readouterr().err


def test_an_outdir_that_takes_no_more_files_stops_the_video_in_one_line(inputs, tmp_path, capsys, failing_save):
    # OUTDIR read-only (remounted, its permissions changed) at frame 1: nothing after could be
    # written, so the run stops; one line says what to do (exit 1), the frame made stays
    import errno
    out = tmp_path / "out"
    failing_save(clips.frame_name(1), errno.EROFS, outdir_refuses=True)
    assert main(command(inputs, out, "--iterations", "2", "--later-iterations", "2", "--workers", "1",
                        "--frames", "0:3")) == 1
    err = capsys.readouterr().err
    assert [line for line in err.splitlines() if line.startswith("nst video: error: ")] == [
        f"nst video: error: cannot write {out / clips.frame_name(1)} (Read-only file system); the frames made are "
        f"kept in {out}: make {out} writable and run the same command again to go on"], err
    assert frame_files(out) == [clips.frame_name(0)]


def test_a_file_cut_short_to_one_frame_says_one_frame():
    # "decodes to 1 frame but its header declares 30" (was "1 frames")
    with pytest.raises(clips.RunRefused, match=r"clip.mp4: decodes to 1 frame but its header declares 30 \(1 s\)"):
        clip_checks.check_complete("clip.mp4", clips.Decoded([], [], [], [], count=1), 30, 30.0)


def test_a_variable_rate_file_is_not_taken_for_one_cut_short(tmp_path):
    # 8 frames over 0.77 s whose header rate (its first frames': 30 fps) would make 23: read whole,
    # not refused as cut short, each frame keeping its time, so the styled video lasts as long as the
    # source (its last frame on screen for one frame of 30 fps)
    clip = clips.read(write_vfr(tmp_path / "vfr.mkv", video_clip.frames(len(VFR_MS))), 48)
    assert len(clip.frames) == 8 and clip.repeats is None and clip.fps == 30, clip.fps
    assert np.allclose(clip.times, np.array(VFR_MS) / 1000) and np.allclose(clip.span, (0, 0.766)), clip


def test_frames_a_b_of_a_variable_rate_mkv_says_its_source_count_is_an_estimate(tmp_path):
    # 36 frames over 2.1 s, paused twice, in a .mkv (no frame count in its header): --frames 0:3 reads 3
    # frames only, so the count is the header's length × its 30 fps, 63; it was said as "63 in the
    # source". Said as an estimate now; read to its end (--frames 30:40), the count is the real 36
    ms = [33 * k + 400 * (k >= 12) + 500 * (k >= 24) for k in range(36)]
    source = write_vfr(tmp_path / "vfr.mkv", video_clip.frames(len(ms)), ms)
    from nst.video.cli import in_source_text
    part, to_end = clips.read(source, 48, (0, 3)), clips.read(source, 48, (30, 40))
    assert in_source_text(part) == "about 63 in the source, estimated from its header's length and rate"
    assert in_source_text(to_end) == "36 in the source", in_source_text(to_end)


def test_a_mov_on_apple_s_clock_keeps_its_rate_not_the_clock_s_average(inputs, tmp_path, capsys):
    # 30000/1001 fps at a 1/600 s clock (iPhone's): 48 frames last 961 ticks, not 960.96, and FFmpeg's
    # average_rate, 28800/961, was taken for the clip's: "29.969 fps", the video written at that rate
    import fractions

    import av
    ntsc, out = fractions.Fraction(30000, 1001), tmp_path / "styled.mp4"
    source = write_video(tmp_path / "phone.mov", video_clip.frames(48), ntsc, {"video_track_timescale": "600"})
    with av.open(str(source)) as c:
        assert c.streams.video[0].average_rate == fractions.Fraction(28800, 961)
    given = command(inputs, out, "--frames", "0:6", "--iterations", "3", "--later-iterations", "2", "--workers", "1")
    given[1] = str(source)
    assert main(given) == 0
    err = capsys.readouterr().err
    assert ", 29.97 fps, 1 shot:" in err and "(6 frames, 29.97 fps)" in err, err
    with av.open(str(out)) as c:
        assert c.streams.video[0].average_rate == ntsc and c.streams.video[0].frames == 6


@pytest.mark.parametrize("suffix, codec", [(".mkv", "mpeg4"), (".webm", "libvpx")])
@pytest.mark.parametrize("ntsc", [fractions.Fraction(30000, 1001), fractions.Fraction(60000, 1001)])
def test_a_matroska_file_keeps_its_ntsc_rate_not_the_clock_s_average(inputs, tmp_path, capsys, suffix, codec, ntsc):
    # 60000/1001 fps at Matroska's 1 ms clock: FFmpeg keeps the frame length, 16683333 ns, as 19001/317
    # fps (terms under 30000), taken for the clip's: the video written at 19001/317 fps
    import av
    source = write_video(tmp_path / f"ntsc{suffix}", video_clip.frames(12), ntsc, codec=codec)
    with av.open(str(source)) as c:
        assert c.streams.video[0].average_rate == (ntsc if ntsc.numerator <= 30000 else fractions.Fraction(19001, 317))
    out = tmp_path / "styled.mp4"
    given = command(inputs, out, "--frames", "0:6", "--iterations", "3", "--later-iterations", "2", "--workers", "1")
    given[1] = str(source)
    assert main(given) == 0
    err, said = capsys.readouterr().err, fps_text(float(ntsc))
    assert f", {said}, 1 shot:" in err and f"(6 frames, {said})" in err, err
    with av.open(str(out)) as c:
        assert c.streams.video[0].average_rate == ntsc and c.streams.video[0].frames == 6


@pytest.mark.parametrize("suffix, codec", [(".mkv", "mpeg4"), (".webm", "libvpx")])
def test_a_matroska_file_at_a_rate_of_its_own_is_not_taken_for_ntsc(tmp_path, suffix, codec):
    # the NTSC rate nearest a Matroska's average is taken only where the clock's rounding explains it:
    # 60 fps stays 60, 59.5 (12 frames last 6 ms longer than at 59.94) stays 59.5
    for rate in (60, fractions.Fraction(119, 2), fractions.Fraction(25, 2)):
        source = write_video(tmp_path / f"own{suffix}", video_clip.frames(12), rate, codec=codec)
        assert clips.read(source, 48, (0, 2)).fps == float(rate)


def write_ticks(path, images, ticks, time_base):
    # frames at `ticks` of `time_base` (a gap: dropped frames) in an AVI, whose header counts ticks
    import av
    with av.open(str(path), "w") as c:
        v = c.add_stream("mpeg4", rate=round(1 / time_base))
        v.width, v.height, v.pix_fmt = images[0].shape[1], images[0].shape[0], "yuv420p"
        v.codec_context.time_base = time_base
        for t, image in zip(ticks, images):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = t, time_base
            c.mux(v.encode(frame))
        c.mux(v.encode())
    return path


def without_index(path):
    # an AVI -> the same with its idx1 chunk taken out (a capture stopped before writing its index)
    data = path.read_bytes()
    at = data.rfind(b"idx1")
    n = int.from_bytes(data[at + 4:at + 8], "little")
    data = data[:at] + data[at + 8 + n + (n & 1):]
    path.write_bytes(data[:4] + (len(data) - 8).to_bytes(4, "little") + data[8:])
    return path


@pytest.mark.parametrize("indexed", [True, False])
@pytest.mark.parametrize("kind", ["1/1000", "dropped"])
def test_an_avi_counts_its_frames_not_its_empty_ticks(tmp_path, kind, indexed):
    # an AVI counts time in ticks of its header's rate, a frame or an empty chunk each: at a 1/1000
    # time base 8 frames over 0.77 s were "766 in the source" (--frames 0:3) and --fps 100 was
    # taken as within its "1000 fps"; 9 frames at 30 fps with 3 dropped, "12 in the source". Its
    # index counts the frames it holds; its rate is theirs (30 fps), as a Matroska file's is. With
    # no index, FFmpeg's entries are the key frames read so far: "1 in the source"; it is its header's
    # length (0.766 s, 0.4 s) × its frames' rate, estimated
    import fractions
    from nst.video.cli import in_source_text
    if kind == "1/1000":
        source, count = write_vfr(tmp_path / "vfr.avi", video_clip.frames(len(VFR_MS)), VFR_MS), len(VFR_MS)
    else:
        ticks = [0, 1, 2, 3, 4, 7, 8, 9, 11]
        source = write_ticks(tmp_path / "dropped.avi", video_clip.frames(len(ticks)), ticks, fractions.Fraction(1, 30))
        count = len(ticks)
    estimate = None if indexed else {"1/1000": 23, "dropped": 12}[kind]
    source = source if indexed else without_index(source)
    for frames in ((0, 3), None):
        clip = clips.read(source, 48, frames)
        said = f"{count} in the source" if estimate is None or frames is None else \
            f"about {estimate} in the source, estimated from its header's length and rate"
        assert in_source_text(clip) == said, in_source_text(clip)
    with pytest.raises(clips.RunRefused, match=rf"--fps 100 is above .*{source.name}'s 30 fps"):
        clips.read(source, 48, (0, 3), 100)
    clip = clips.read(source, 48, None, 10)                 # the frame on screen every 0.1 s
    assert clip.fps == 10 and sum(clip.repeats or [1] * len(clip.frames)) == (8 if kind == "1/1000" else 4), clip


def test_an_mp4_trimmed_by_its_edit_list_counts_the_frames_it_plays(tmp_path):
    # a clip trimmed without encoding keeps the frames before its start (to decode from), left out by
    # its edit list: 24 frames, 12 played, was refused as "cut short" (it decodes to 12 of the 24 its
    # header counts), and "24 in the source" with --frames
    import fractions

    import av
    from nst.video.cli import in_source_text
    source, images = tmp_path / "trimmed.mp4", video_clip.frames(24)
    with av.open(str(source), "w") as c:
        v = c.add_stream("mpeg4", rate=12)
        v.width, v.height, v.pix_fmt = images[0].shape[1], images[0].shape[0], "yuv420p"
        for k, image in enumerate(images):                       # frames -12..-1 before the edit's start
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = k - 12, fractions.Fraction(1, 12)
            c.mux(v.encode(frame))
        c.mux(v.encode())
    clip = clips.read(source, 48)
    assert clip.numbers == list(range(12)) and clip.fps == 12 and in_source_text(clip) == "12 in the source"
    off = [np.abs(clip.frames[0].astype(int) - image).mean() for image in images]
    assert np.argmin(off) == 12, off                                     # the edit's first frame first
    assert in_source_text(clips.read(source, 48, (0, 3))) == "12 in the source"


def write_raw(path, fmt, codec, images, fps=12, pix_fmt="yuv420p"):
    # frames -> a raw elementary stream (no container: no timing but what the codec's own headers say)
    import av
    with av.open(str(path), "w", format=fmt) as c:
        v = c.add_stream(codec, rate=fps)
        v.width, v.height, v.pix_fmt = images[0].shape[1], images[0].shape[0], pix_fmt
        c.mux([p for f in images for p in v.encode(av.VideoFrame.from_ndarray(f, format="rgb24"))] + v.encode())
    return path


def test_a_raw_streams_rate_is_its_own_or_said_to_be_unknown(tmp_path):
    # a raw stream's container has no timing, and FFmpeg gives it a guessed 25 fps: a 12 fps .m4v was
    # read at 25 fps (--fps 20 taken as below it), a .mjpeg (no rate anywhere) was claimed to be 25
    # fps and --fps 50 refused as above it. The .m4v's rate is its stream's own (its VOL header's);
    # the .mjpeg's is said to be unknown, --fps the rate its every frame is written at, as for a folder
    from nst.video.cli import in_source_text
    m4v = write_raw(tmp_path / "clip.m4v", "m4v", "mpeg4", video_clip.frames(12))
    clip = clips.read(m4v, 48)
    said = (clip.fps, clip.times, clips.rate_text(clip), in_source_text(clip))
    assert said == (12, None, "12 fps", "12 in the source"), said
    with pytest.raises(clips.RunRefused, match=r"--fps 20 is above .*clip.m4v's 12 fps"):
        clips.read(m4v, 48, None, 20)
    mjpeg = write_raw(tmp_path / "clip.mjpeg", "mjpeg", "mjpeg", video_clip.frames(12), pix_fmt="yuvj420p")
    for fps, said in [(None, "25 fps, assumed: clip.mjpeg has no frame rate of its own (--fps sets it)"),
                      (50, "50 fps, --fps's: clip.mjpeg has no frame rate of its own")]:
        clip = clips.read(mjpeg, 48, None, fps)
        assert (clip.fps, len(clip.frames), clip.repeats, clip.times) == (fps or 25, 12, None, None), clip
        assert clips.rate_text(clip) == said and np.allclose(clip.span, (0, 12 / (fps or 25))), clip.span


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_frames_a_b_at_an_even_rate_after_a_pause_keep_the_header_s_rate_and_their_own_sound(tmp_path, suffix):
    # --frames 3:10 of a file paused before frame 3, then at its header's 30 fps: the 7 frames are
    # written at 30 fps with the sound of their own 0.233 s (from 0.3 s, the tone at 0.7 s past
    # frame B−1's end). They were written at 18 fps, the mean rate of frames 0 to 9 (the pause
    # before A counted): the picture slowed to 0.389 s, its sound run on 0.156 s past frame B−1
    ms = [0, 33, 66, 300, 333, 367, 400, 433, 467, 500]
    clip = clips.read(write_vfr(tmp_path / "paused.mkv", video_clip.frames(len(ms)), ms, sound=True), 48, (3, 10))
    assert clip.fps == 30 and clip.times is None and np.allclose(clip.span, (0.3, 0.3 + 7 / 30)), (clip.fps, clip.span)
    out = writing.write_video(clip.frames, tmp_path / f"styled{suffix}", clip.fps, clip.source, clip.span, print)
    shown, end = shown_frames(out)
    assert len(shown) == 7 and abs(end - 7 / 30) < 0.002 and abs(sound_end(out) - 7 / 30) < 0.002, (end, sound_end(out))


def sound_onset(path):
    # -> when the first audio sample over half write_vfr's tone plays (seconds), as a player times it
    import av
    with av.open(str(path)) as c:
        for frame in c.decode(audio=0):
            samples = frame.to_ndarray()[0]               # the first channel, or all interleaved (packed)
            samples = samples if frame.format.is_planar else samples[::len(frame.layout.channels)]
            scale = np.iinfo(samples.dtype).max if samples.dtype.kind == "i" else 1.0     # PCM: full scale
            loud = np.nonzero(np.abs(samples) > 0.15 * scale)[0]
            if len(loud):
                return frame.time + loud[0] / frame.sample_rate
    return None


def sound_span(path):
    # -> when a video file's sound starts and ends (seconds), as a player times it
    import av
    with av.open(str(path)) as c:
        frames = list(c.decode(audio=0))
    assert frames, f"{path}: no sound"
    return frames[0].time, frames[-1].time + frames[-1].samples / frames[-1].sample_rate


def shown_frames(path):
    # -> [(time, which grey frame of write_vfr)] of a video file as a player decodes it, and when its
    # last frame leaves the screen (its time plus its duration)
    import av
    with av.open(str(path)) as c:
        frames = list(c.decode(video=0))
    shown = [(f.time, round((f.to_ndarray(format="rgb24").mean() - 20) / 30)) for f in frames]
    return shown, frames[-1].time + float(frames[-1].duration * frames[-1].time_base)


@pytest.mark.parametrize("suffix", [".mp4", ".mov", ".mkv", ".webm"])
def test_a_variable_rate_file_keeps_its_frames_times_and_its_sound_in_step(tmp_path, suffix):
    # frames at 0, 33, 66, 300, 333, 366, 700, 733 ms, the sound's tone from 0.7 s: each frame is
    # written at its source time, the video lasts to 0.766 s, and the tone starts with frame 6. At the
    # mean rate (~9.5 fps, as before) frame 6 came at 0.63 s, 70 ms before its sound. --frames 0:6:
    # frame 5 stays on screen until frame 6's time, 0.7 s, as long as the sound. The sound starts with
    # frame 0 (in .mkv it began 64 ms late: the copied codec delay skipped its first packet, its
    # priming dropped) and ends with the last frame, within a packet (64 ms)
    import av

    from nst.video import output
    grey = [np.full((36, 48, 3), 20 + 30 * k, np.uint8) for k in range(len(VFR_MS))]
    source = write_vfr(tmp_path / "vfr.mkv", grey, sound=True)
    assert abs(sound_onset(source) - 0.7) < 0.01
    for frames, n, until in [(None, 8, 0.766), ((0, 6), 6, 0.7)]:
        clip = clips.read(source, 48, frames)
        out = output.write_video(clip.frames, tmp_path / f"styled{suffix}", clip)
        shown, end = shown_frames(out)
        assert [k for _, k in shown] == list(range(n)), shown
        assert np.allclose([t for t, _ in shown], np.array(VFR_MS[:n]) / 1000, atol=0.0011), shown
        assert abs(end - until) < 0.0011, (frames, end)
        with av.open(str(out)) as c:                      # an MP4 track's length (by dts): was 0.465 s with B-frames
            v = c.streams.video[0]
            assert suffix not in (".mp4", ".mov") or abs(float(v.duration * v.time_base) - until) < 0.002, v.duration
        first, last = sound_span(out)
        assert abs(first) < 0.002 and -0.002 < last - until < 0.064, (frames, first, last)
        assert frames or abs(sound_onset(out) - 0.7) < 0.01                               # with frame 6, in step
        out.unlink()


def test_an_avi_of_a_variable_rate_file_shows_the_frame_on_screen_at_each_tick(tmp_path, capsys):
    # AVI keeps one rate: the header's 30 fps, each tick showing the frame on screen then (as --fps),
    # said in one line; the sound still starts with frame 6
    from nst.video import output
    grey = [np.full((36, 48, 3), 20 + 30 * k, np.uint8) for k in range(len(VFR_MS))]
    clip = output.fitted(clips.read(write_vfr(tmp_path / "vfr.mkv", grey, sound=True), 48), tmp_path / "s.avi")
    assert ".avi keeps one frame rate: the source's variable rate is written at 30 fps" in capsys.readouterr().err
    assert (clip.times, clip.numbers, clip.repeats) == (None, list(range(8)), [1, 1, 7, 1, 1, 10, 1, 1]), clip
    shown, end = shown_frames(output.write_video(clip.frames, tmp_path / "styled.avi", clip))
    assert [k for _, k in shown] == [0, 1] + [2] * 7 + [3, 4] + [5] * 10 + [6, 7], shown
    assert abs(end - 0.766) < 0.0011 and abs(sound_onset(tmp_path / "styled.avi") - shown[21][0]) < 0.01


def test_a_variable_rate_mkv_of_an_ntsc_source_keeps_the_ntsc_rate_as_its_base_rate(tmp_path, capsys):
    # bursts at 60000/1001 fps with pauses, at Matroska's 1 ms: FFmpeg's guess of the base rate is the
    # clock's 19001/317 fps, and an AVI of it was written at that; now at 60000/1001, the rule a
    # constant-rate clip's rate follows (exact_rate)
    import av

    from nst.video import output
    ntsc = fractions.Fraction(60000, 1001)
    ms = [round(1000 * k / ntsc) for k in (0, 1, 2, 3, 20, 21, 22, 23)]
    grey = [np.full((36, 48, 3), 20 + 30 * k, np.uint8) for k in range(len(ms))]
    source = write_vfr(tmp_path / "vfr.mkv", grey, ms, rate=ntsc)
    with av.open(str(source)) as c:
        assert c.streams.video[0].guessed_rate == fractions.Fraction(19001, 317)
    clip = output.fitted(clips.read(source, 48), tmp_path / "s.avi")
    assert ".avi keeps one frame rate: the source's variable rate is written at 59.94 fps" in capsys.readouterr().err
    with av.open(str(output.write_video(clip.frames, tmp_path / "styled.avi", clip))) as c:
        assert c.streams.video[0].average_rate == ntsc


def test_fps_on_a_variable_rate_file_shows_the_frame_on_screen_at_each_tick(tmp_path):
    # --fps 10 of frames at 0, 33, 66, 300, 333, 366, 700, 733 ms: at 0, 0.1, …, 0.7 s the frames on
    # screen are 0, 2, 2, 3, 5, 5, 5, 6: frames 0, 2, 3, 5, 6 stylised, 2 and 5 held (written 2 and 3
    # times), the video 0.8 s long like its sound. By frame numbers at the header's 30 fps it was
    # frames 0, 3, 6 in 0.3 s, the sound running on for half a second after the picture
    import av

    from nst.video import output
    grey = [np.full((36, 48, 3), 20 + 30 * k, np.uint8) for k in range(len(VFR_MS))]
    source = write_vfr(tmp_path / "vfr.mkv", grey, sound=True)
    clip = clips.read(source, 48, None, 10)
    assert (clip.numbers, clip.repeats, clip.fps) == ([0, 2, 3, 5, 6], [1, 2, 1, 3, 1], 10), clip
    assert clip.span == (0.0, 0.8)
    out = output.write_video(clip.frames, tmp_path / "styled.mkv", clip)
    with av.open(str(out)) as c:
        shown = [round((f.to_ndarray(format="rgb24").mean() - 20) / 30) for f in c.decode(video=0)]
    with av.open(str(out)) as c:
        seconds = sum(f.samples for f in c.decode(audio=0)) / c.streams.audio[0].rate
    assert shown == [0, 2, 2, 3, 5, 5, 5, 6] and abs(seconds - 0.8) < 0.07, (shown, seconds)


def test_nst_video_fps_on_a_variable_rate_file(inputs, tmp_path, capsys):
    # the command: 5 frames stylised, 8 written at 10 fps, said so; again: up to date
    import av
    source = write_vfr(tmp_path / "vfr.mkv", video_clip.frames(len(VFR_MS)), sound=True)
    _, style, weights = inputs
    argv = ["video", str(source), "-o", str(tmp_path / "styled.mp4"), "--style", str(style), "--weights",
            str(weights), *FAST, "--iterations", "2", "--later-iterations", "2", "--workers", "1", "--fps", "10"]
    assert main(argv) == 0
    assert "(5 frames, 8 shown, some held over the source's pauses, 10 fps)" in capsys.readouterr().err
    with av.open(str(tmp_path / "styled.mp4")) as c:
        assert sum(1 for _ in c.decode(video=0)) == 8 and c.streams.video[0].average_rate == 10
    assert main(argv) == 0 and "up to date" in capsys.readouterr().err


def test_nst_video_on_a_variable_rate_file_keeps_its_timing(inputs, tmp_path, capsys):
    # the command without --fps: 8 frames stylised and written at their source times, said so; again:
    # up to date
    import av
    source = write_vfr(tmp_path / "vfr.mkv", video_clip.frames(len(VFR_MS)), sound=True)
    _, style, weights = inputs
    argv = ["video", str(source), "-o", str(tmp_path / "styled.mp4"), "--style", str(style), "--weights",
            str(weights), *FAST, "--iterations", "2", "--later-iterations", "2", "--workers", "1"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "at 48×36, the source's variable rate, 1 shot" in err, err
    assert "(8 frames, the source's variable rate)" in err, err
    with av.open(str(tmp_path / "styled.mp4")) as c:
        assert np.allclose([f.time for f in c.decode(video=0)], np.array(VFR_MS) / 1000, atol=0.0011)
    assert main(argv) == 0 and "up to date" in capsys.readouterr().err


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".avi"])
def test_fps_on_a_constant_rate_file_keeps_the_frames_it_kept(tmp_path, suffix):
    # frames chosen by their timestamps are the frames chosen by their numbers (clips.select, as
    # before): Matroska's millisecond clock, AVI's frame clock, MP4's and a 29.97 fps rate included;
    # without --fps, written at the header's rate as before (not at their own times)
    import fractions

    import av
    for rate in (25, fractions.Fraction(30000, 1001)):
        path = tmp_path / f"clip{suffix}"
        with av.open(str(path), "w") as c:
            v = c.add_stream("mpeg4", rate=rate)
            v.width, v.height, v.pix_fmt = 32, 32, "yuv420p"
            c.mux([p for k in range(40) for p in v.encode(av.VideoFrame.from_ndarray(
                np.full((32, 32, 3), 5 * k, np.uint8), format="rgb24"))] + v.encode())
        for fps in (None, 7, 10, 12, 15, 23.976, 24.5):         # None: every frame at the rate, no times of its own
            for frames in (None, (3, 37)):
                clip = clips.read(path, 32, frames, fps)
                assert clip.numbers == clips.select(40, float(rate), frames, fps)[0] and clip.repeats is None
                assert clip.times is None and clip.fps == float(fps or rate)


def test_a_clip_named_with_a_colon_is_read_and_written_as_a_file(tmp_path, monkeypatch):
    # "a:b.mp4" given relative (a recording named for its time, "rec 12:30.mp4", alike): FFmpeg took
    # "a:" for a protocol: "not a video nst can read (Protocol not found)"; so too a folder "c:d" of -o
    import av
    monkeypatch.chdir(tmp_path)
    write_with_tone(tmp_path / "a:b.mp4", video_clip.frames(12, h=36, w=48), 0.5)
    clip = clips.read("a:b.mp4", 48)
    out = writing.write_video(clip.frames, "c:d/styled.mkv", clip.fps, clip.source, clip.span, print)
    with av.open(str(tmp_path / out)) as c:
        assert sorted(s.type for s in c.streams) == ["audio", "video"] and len(list(c.decode(video=0))) == 12


def test_the_bench_clips_tone_is_written_under_a_name_with_a_colon(tmp_path, monkeypatch):
    # bench/bench_video.py's write_tone (--make-clip --sound) opens its file as nst video does
    # (clip.ffmpeg_name): a relative "a:tone.wav" was taken by FFmpeg for a protocol's URL
    import importlib.util

    import av
    script = Path(__file__).parent.parent / "bench" / "bench_video.py"
    spec = importlib.util.spec_from_file_location("bench_video", script)
    bench_video = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_video)
    monkeypatch.chdir(tmp_path)
    bench_video.write_tone("a:tone.wav", 1.5)
    with av.open(str(tmp_path / "a:tone.wav")) as c:
        assert sum(f.samples for f in c.decode(audio=0)) == 72000


def test_audio_a_container_will_not_take_is_encoded_again(tmp_path):
    # AAC cannot go into WebM as it is: the audio is decoded and encoded in Opus, not dropped
    import av
    source = tmp_path / "clip.mp4"
    images = video_clip.frames(6, h=36, w=48)
    write_mp4_with_audio(source, images)
    out = writing.write_video(images, tmp_path / "styled.webm", 12, str(source), (0.0, 0.5), print)
    with av.open(str(out)) as c:
        assert [s.type for s in c.streams] == ["video", "audio"] and c.streams.audio[0].codec_context.name == "opus"
        seconds = sum(f.samples for f in c.decode(audio=0)) / c.streams.audio[0].rate
    assert 0.4 < seconds < 0.6, seconds


def test_pcm_audio_into_an_mp4_is_encoded_as_aac(tmp_path):
    # a camera's or an editor's PCM audio copied into .mp4 played in no browser: it is encoded in AAC
    import av
    source, images = tmp_path / "clip.mkv", video_clip.frames(6, h=36, w=48)
    with av.open(str(source), "w") as c:
        v, a = c.add_stream("mpeg4", rate=12), c.add_stream("pcm_s16le", rate=16000)
        v.width, v.height, v.pix_fmt = 48, 36, "yuv420p"
        for f in images:
            c.mux(v.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        c.mux(v.encode())
        samples = (3000 * np.sin(np.arange(8000) / 5)).astype(np.int16)[None]
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = 16000
        c.mux([*a.encode(frame), *a.encode()])
    out = writing.write_video(images, tmp_path / "styled.mp4", 12, str(source), (0.0, 0.5), print)
    with av.open(str(out)) as c:
        assert c.streams.audio[0].codec_context.name == "aac"
        seconds = sum(f.samples for f in c.decode(audio=0)) / c.streams.audio[0].rate
    assert 0.4 < seconds < 0.65, seconds



def write_with_sound(path, codec, frames=12, rate=48000):
    # a 12 fps clip of `frames` frames with as long a 440 Hz tone in `codec` (`rate` Hz mono)
    import av
    images = video_clip.frames(frames, h=36, w=48)
    with av.open(str(path), "w") as c:
        v, a = c.add_stream("mpeg4", rate=12), c.add_stream(codec, rate=rate, layout="mono")
        v.width, v.height, v.pix_fmt = 48, 36, "yuv420p"
        c.mux([p for f in images for p in v.encode(av.VideoFrame.from_ndarray(f, format="rgb24"))] + v.encode())
        t = np.arange(rate * frames // 12) / rate
        tone = (0.3 * 32767 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)              # s16: Opus, FLAC
        sound = av.AudioFrame.from_ndarray(tone[None], format="s16", layout="mono")      # (MP3: resampled)
        sound.sample_rate, sound.pts = rate, 0
        c.mux([*a.encode(sound), *a.encode()])
    return path


@pytest.mark.parametrize("codec", ["libopus", "flac"])
def test_opus_or_flac_audio_into_a_mov_is_encoded_as_aac(tmp_path, codec):
    # FFmpeg's MOV muxer takes Opus and FLAC in MP4 only: copied, the file was refused as it started
    # and the video written without sound; the sound is encoded in AAC, as long as the video (the
    # decoded Opus went to the encoder as it was, keeping its .mkv clock, 1/1000 s: its samples were
    # taken for milliseconds, 1 s of sound lasting 47 s)
    import av

    from nst.video import output
    clip = clips.read(write_with_sound(tmp_path / "clip.mkv", codec), 48)
    out = output.write_video(clip.frames, tmp_path / "styled.mov", clip)
    with av.open(str(out)) as c:
        assert c.streams.audio and c.streams.audio[0].codec_context.name == "aac"
    assert abs(sound_end(out) - 1.0) < 0.002, sound_end(out)


def test_audio_the_muxer_refuses_copied_is_encoded_again(tmp_path, capsys):
    # MP3 under 16 kHz copied into .mp4: FFmpeg's muxer refuses it only as the file starts ("muxing
    # mp3 at 11025hz is not standard"), a pair plays_as_is does not foresee: the video was written
    # without sound; the sound is encoded again in AAC, as long as the video
    import av

    from nst.video import output
    clip = clips.read(write_with_sound(tmp_path / "clip.mkv", "libmp3lame", rate=11025), 48)
    out = output.write_video(clip.frames, tmp_path / "styled.mp4", clip)
    with av.open(str(out)) as c:
        assert c.streams.audio and c.streams.audio[0].codec_context.name == "aac"
    assert abs(sound_end(out) - 1.0) < 0.002, sound_end(out)
    assert "not copied" not in capsys.readouterr().err


def test_audio_the_muxer_refuses_leaves_the_video_without_it(tmp_path, monkeypatch, capsys):
    # audio a muxer refuses only at its header (PCM copied into MP4 before 14f94cc) failed the whole
    # video; refused copied and encoded again (MP3 under 16 kHz into MP4, encoded in MP3 here, which
    # the muxer refuses likewise: it takes AAC), it is written without the audio, said in one line that
    # names -o and FFmpeg's reason (was FFmpeg's "Invalid argument" naming the temporary .nst-….part)
    import av

    from nst.video import output
    clip = clips.read(write_with_sound(tmp_path / "clip.mkv", "libmp3lame", rate=11025), 48)
    monkeypatch.setattr(writing, "AUDIO_DEFAULT", "libmp3lame")
    out = output.write_video(clip.frames, tmp_path / "silent.mp4", clip)
    with av.open(str(out)) as c:
        assert [s.type for s in c.streams] == ["video"] and c.streams.video[0].frames == 12
    err = capsys.readouterr().err
    assert err.count(f"the audio is not copied into {out} nor encoded again") == 1, err
    assert "muxing mp3 at 11025hz is not standard)" in err and "written without it" in err, err
    assert ".part" not in err and len(err.splitlines()) == 1, err
    assert "strict" not in err and f"(Matroska takes any sound: -o {tmp_path / 'silent.mkv'})" in err, err
    clip = clips.read(write_with_sound(tmp_path / "clip.mkv", "libmp3lame", rate=11025), 48)
    out = output.write_video(clip.frames, tmp_path / "silent.mkv", clip)             # as it says
    with av.open(str(out)) as c:
        assert [s.type for s in c.streams] == ["video", "audio"]


@pytest.mark.parametrize("logged, said", [
    ("track 1: muxing mp3 at 11025hz is not standard, to mux anyway set strict to -1",
     "track 1: muxing mp3 at 11025hz is not standard"),
    ("Opus in MP4 support is experimental, add '-strict -2' if you want to use it.",
     "Opus in MP4 support is experimental"),
    ("The encoder 'vorbis' is experimental but experimental codecs are not enabled, add '-strict -2' if you want "
     "to use it.", "The encoder 'vorbis' is experimental but experimental codecs are not enabled"),
    ("use -strict experimental", "Invalid argument"),
    ("Could not find tag for codec pcm_s16le in stream #1, codec not currently supported in container",
     "Could not find tag for codec pcm_s16le in stream #1, codec not currently supported in container"),
])
def test_ffmpegs_reason_without_its_advice_to_set_strict(logged, said):
    # FFmpeg's advice to its own tools' users ("set strict to -1") cannot be taken in nst: left out
    import av
    assert writing.reason(av.error.FFmpegError(22, "Invalid argument", None, (16, "mp4", logged))) == said


class TimelessSound:
    # an opened source whose audio packets (so its decoded frames) carry no times, as a demuxer may
    # give; only its k-th packet's, given `only`
    def __init__(self, container, only=None):
        self.container, self.streams, self.only = container, container.streams, only

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.container.close()

    def seek(self, *args, **kwargs):
        self.container.seek(*args, **kwargs)

    def demux(self, *streams):
        for k, packet in enumerate(self.container.demux(*streams)):
            if self.only in (None, k):
                packet.pts = packet.dts = None
            yield packet

    def decode(self, stream):
        for packet in self.demux(stream):
            yield from stream.codec_context.decode(packet)


@pytest.mark.parametrize("suffix", [".mp4", ".avi"])
def test_audio_whose_packets_carry_no_times_is_said_not_copied(tmp_path, monkeypatch, capsys, suffix):
    # sound with no times to put it at (copied into .mp4; encoded again into .avi: decoding gives it no
    # times either) was left out in silence (.avi: an empty audio track): the video is written without
    # sound, said in one line with why
    import av

    from nst.video import output
    clip = clips.read(write_with_sound(tmp_path / "clip.mkv", "aac"), 48)
    opened = av.open
    monkeypatch.setattr(av, "open", lambda path, mode="r", **kw: opened(path, mode, **kw) if mode == "w"
                        else TimelessSound(opened(path, mode, **kw)))
    out = output.write_video(clip.frames, tmp_path / f"styled{suffix}", clip)
    monkeypatch.setattr(av, "open", opened)
    with av.open(str(out)) as c:
        assert [s.type for s in c.streams] == ["video"] and c.streams.video[0].frames == 12
    err = capsys.readouterr().err
    assert err.count("nst video: the audio is not copied (its packets carry no times)") == 1, err


def test_one_reading_of_the_sound_within_a_span_decides_and_encodes(tmp_path):
    # writing.sound_within both decides that a span has sound (an audio track or none) and gives the
    # frames encoded again (it had a twin reading packets for the first): its frames lie within the
    # span; none where the span has no sound; TIMELESS where the sound has no times, not nothing
    import av
    source = clip_with_sound_between(tmp_path / "middle.mkv", 1.0, 1.5)
    with av.open(str(source)) as src:
        frames = list(writing.sound_within(src, src.streams.audio[0], 1.25, 2.0))
    assert frames and frames[0].time < 1.25 and all(f.time < 1.5 + 0.1 for f in frames), [f.time for f in frames]
    for span in ((2.0, 3.0), (0.0, 0.8)):
        with av.open(str(source)) as src:
            assert next(writing.sound_within(src, src.streams.audio[0], *span), None) is None, span
    with TimelessSound(av.open(str(source))) as src, pytest.raises(ValueError, match=writing.TIMELESS):
        next(writing.sound_within(src, src.streams.audio[0], 1.25, 2.0))


def test_sound_that_fails_as_it_is_copied_is_said_without_the_temporary_file(tmp_path, monkeypatch, capsys):
    # FFmpeg's error while the packets were muxed named the temporary .part file the user never sees
    import av

    from nst.video import output, writing
    clip = clips.read(write_with_sound(tmp_path / "clip.mkv", "aac"), 48)

    def refused(container, *args):
        raise av.error.FFmpegError(22, "Invalid argument", str(tmp_path / ".nst-1234.part"))
    monkeypatch.setattr(writing, "copy_packets", refused)
    output.write_video(clip.frames, tmp_path / "styled.mp4", clip)
    err = capsys.readouterr().err
    assert "nst video: the audio is not copied (Invalid argument)" in err and ".part" not in err, err


@pytest.mark.parametrize("level", [None, "INFO"])
def test_pyav_logging_stays_as_the_caller_set_it(tmp_path, monkeypatch, caplog, level):
    # writing a video with sound turned PyAV's logging on at ERROR for the whole process: with it off
    # (None, PyAV's default) another thread's FFmpeg error reached Python's logging meanwhile; on at
    # INFO, the write's own lines were kept from the caller's logging. Now, during and after a write
    # (one that fails too), it is as the caller set it
    import threading

    import av.logging

    from nst.video import output
    clip = clips.read(write_with_sound(tmp_path / "clip.mkv", "aac"), 48)
    real, before = writing.write_video, av.logging.get_level()

    def write_logging(*args, fail, **kwargs):
        theirs = threading.Thread(target=av.logging.log, args=(av.logging.ERROR, "theirs", f"their line {level}"))
        theirs.start()
        theirs.join()
        av.logging.log(av.logging.ERROR, "ours", f"our line {level}")
        if fail:
            raise OSError(28, "No space left on device")
        return real(*args, **kwargs)
    try:
        av.logging.set_level(level and getattr(av.logging, level))
        for fail in (False, True):
            caplog.clear()
            monkeypatch.setattr(writing, "write_video", functools.partial(write_logging, fail=fail))
            with pytest.raises(OSError) if fail else contextlib.nullcontext():
                output.write_video(clip.frames, tmp_path / "styled.mp4", clip)
            assert av.logging.get_level() == (level and getattr(av.logging, level))
            lines = [r.getMessage() for r in caplog.records if r.name.startswith("libav")]
            wanted = [f"their line {level}", f"our line {level}"] if level else []
            assert [line for line in lines if "line" in line] == wanted, (fail, lines)
            assert level or not lines, lines
    finally:
        av.logging.set_level(before)


def test_one_timeless_packet_among_timed_ones_is_skipped_and_the_rest_copied(tmp_path, monkeypatch, capsys):
    # a demuxer may give one packet no time: it is left out, as before; the sound is not dropped whole
    import av

    from nst.video import output
    clip = clips.read(write_with_sound(tmp_path / "clip.mkv", "aac"), 48)
    opened = av.open
    monkeypatch.setattr(av, "open", lambda path, mode="r", **kw: opened(path, mode, **kw) if mode == "w"
                        else TimelessSound(opened(path, mode, **kw), only=5))
    out = output.write_video(clip.frames, tmp_path / "styled.mp4", clip)
    monkeypatch.setattr(av, "open", opened)
    with av.open(str(out)) as c:
        assert sorted(s.type for s in c.streams) == ["audio", "video"]
    assert "not copied" not in capsys.readouterr().err


def test_an_init_file_travels_with_the_frames(inputs, tmp_path, monkeypatch):
    # the workers never open --init FILE (on another machine it is not there): its pixels travel in
    # the tasks, so the file gone once the run starts changes nothing; it is decoded once (was twice:
    # by the checks, then again for the tasks)
    import nst.io.image
    import nst.video.engine
    init = tmp_path / "start.png"
    Image.fromarray(video_clip.frames(1)[0]).save(init)
    real, decode, decoded = nst.video.engine.on_cluster, nst.io.image.load_image, []
    monkeypatch.setattr(nst.io.image, "load_image", lambda path: decoded.append(str(path)) or decode(path))

    def init_gone(*args, **kwargs):
        init.unlink()
        return real(*args, **kwargs)
    monkeypatch.setattr(nst.video.engine, "on_cluster", init_gone)
    out = tmp_path / "out"
    argv = command(inputs, out, "--init", str(init), "--iterations", "2", "--later-iterations", "2",
                   "--workers", "1", "--frames", "0:2")
    assert main(argv) == 0 and not init.exists()
    assert [r["status"] for r in rows(out)] == ["done", "done"] and decoded.count(str(init)) == 1, decoded


def test_o_a_video_name_ending_in_a_slash_is_a_folder(inputs, tmp_path):
    # -o styled.mp4/ : a folder of frames, as -o's help says of a name ending in / (was a video file
    # named "styled.mp4/" with its frames in styled.mp4/.frames, failing after every frame was made)
    out = f"{tmp_path / 'styled.mp4'}/"
    assert plan.outdir_for(out) == tmp_path / "styled.mp4" and not clips.is_video_path(out)
    argv = command(inputs, out, "--iterations", "2", "--later-iterations", "2", "--workers", "1", "--frames", "0:2")
    assert main(argv) == 0
    assert frame_files(tmp_path / "styled.mp4") == [clips.frame_name(i) for i in range(2)]


def test_a_video_of_frames_with_odd_sides_says_the_row_and_column_it_leaves_out(inputs, tmp_path, capsys):
    # --size 47 makes 47×35 frames; a video file's sides are even (yuv420p): it is 46×34, said as it is
    # written (it was said "at 47×35", then written smaller without a word)
    import av
    out = tmp_path / "odd.mp4"
    assert main(command(inputs, out, "--size", "47", "--iterations", "2", "--later-iterations", "2",
                        "--workers", "1", "--frames", "0:2")) == 0
    with av.open(str(out)) as c:
        assert (c.streams.video[0].width, c.streams.video[0].height) == (46, 34)
    err = capsys.readouterr().err
    assert "at 47×35" in err and "at 46×34: a video's sides are even" in err, err


@pytest.mark.parametrize("suffix", [".mkv", ".webm"])
def test_audio_that_starts_late_stays_in_step(tmp_path, suffix):
    # the source's sound begins 0.25 s after its picture: so it does in the output, copied (.mkv) or
    # encoded again (.webm); it was moved to 0, a quarter second early all through
    import av
    source, images = tmp_path / "late.mkv", video_clip.frames(12, h=36, w=48)
    with av.open(str(source), "w") as c:
        v, a = c.add_stream("mpeg4", rate=12), c.add_stream("aac", rate=16000)
        v.width, v.height, v.pix_fmt = 48, 36, "yuv420p"
        for p in [p for f in images for p in v.encode(av.VideoFrame.from_ndarray(f, format="rgb24"))] + v.encode():
            c.mux(p)
        sound = av.AudioFrame.from_ndarray(np.full((1, 12000), 0.3, np.float32), format="fltp", layout="mono")
        sound.sample_rate, sound.pts = 16000, 4000                   # 0.25 s
        for p in [*a.encode(sound), *a.encode()]:
            c.mux(p)
    clip = clips.read(source, 48)
    out = writing.write_video(clip.frames, tmp_path / f"styled{suffix}", clip.fps, str(source), clip.span, print)
    with av.open(str(out)) as c:
        first = next(f for f in c.decode(audio=0)).time - (c.streams.video[0].start_time or 0) * float(
            c.streams.video[0].time_base)
    assert abs(first - 0.25) < 0.07, first


def clip_with_sound_between(path, start, end):
    # a 48-frame 12 fps .mkv (4 s) at `path` whose only sound, a 16 kHz mono tone, lies from `start`
    # to `end` seconds -> path
    import av
    with av.open(str(path), "w") as c:
        v, a = c.add_stream("mpeg4", rate=12), c.add_stream("aac", rate=16000)
        v.width, v.height, v.pix_fmt = 48, 36, "yuv420p"
        images = video_clip.frames(48, h=36, w=48)
        c.mux([p for f in images for p in v.encode(av.VideoFrame.from_ndarray(f, format="rgb24"))] + v.encode())
        n = round((end - start) * 16000)
        sound = av.AudioFrame.from_ndarray(np.full((1, n), 0.3, np.float32), format="fltp", layout="mono")
        sound.sample_rate, sound.pts = 16000, round(start * 16000)
        c.mux([*a.encode(sound), *a.encode()])
    return path


@pytest.mark.parametrize("suffix", [".mp4", ".mov", ".mkv", ".webm", ".avi"])
def test_sound_that_starts_after_frame_a_starts_in_step(tmp_path, suffix):
    # --frames 12:40 and 30:40 of a clip whose sound starts at 2 s: the sound starts 1 s after frame 12
    # (the seek near frame A, which lands after it, read the sound from its start less its encoder's
    # priming packet: 64 ms late) and with frame 30. AVI times its sound from its first sample: it
    # started with frame 12, 1 s early; it now follows 1 s of silence
    source = clip_with_sound_between(tmp_path / "late.mkv", 2.0, 3.0)
    for frames, starts in (((12, 40), 1.0), ((30, 40), 0.0)):
        clip = clips.read(source, 48, frames)
        out = writing.write_video(clip.frames, tmp_path / f"styled{suffix}", clip.fps, str(source), clip.span, print)
        assert abs(sound_onset(out) - starts) < 0.002, (frames, sound_onset(out))
        if suffix in (".mkv", ".webm"):                               # no packet before the sound's
            assert abs(sound_span(out)[0] - starts) < 0.002, (frames, sound_span(out))
        out.unlink()


@pytest.mark.parametrize("suffix", [".mp4", ".mov", ".mkv"])
def test_copied_sound_that_starts_with_frame_a_plays_from_frame_a(tmp_path, suffix):
    # --frames 24:40 of a clip whose AAC sound starts at 2 s, frame 24's time: copied, the tone plays
    # from frame A within 2 ms. Into .mp4 and .mov it began 47 ms late: the packet playing at A was
    # copied without the one before it that the decoder overlaps it with (half silent alone); that
    # one is now copied too, before A, for the edit list to trim
    import av
    source = clip_with_sound_between(tmp_path / "at_a.mkv", 2.0, 3.0)
    clip = clips.read(source, 48, (24, 40))
    out = writing.write_video(clip.frames, tmp_path / f"styled{suffix}", clip.fps, str(source), clip.span, print)
    with av.open(str(out)) as c:
        assert c.streams.audio[0].codec_context.name == "aac"                     # copied
    assert abs(sound_span(out)[0]) < 0.002 and abs(sound_onset(out)) < 0.002, (sound_span(out), sound_onset(out))


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".avi", ".webm"])
def test_frames_a_b_without_sound_get_no_audio_track(tmp_path, suffix):
    # a source whose sound lies between 1 s and 1.5 s: --frames 24:40 (2 s to 3.33 s: the sound
    # ended before frame A) and 0:10 (it starts after frame B−1) get no audio track, said in one line;
    # they got an empty one (copied: the packet that ended before frame A; encoded: no samples)
    import av
    source = clip_with_sound_between(tmp_path / "middle.mkv", 1.0, 1.5)
    for frames, said in (((24, 40), "from 2.00 s to 3.33 s"), ((0, 10), "from 0.00 s to 0.83 s")):
        clip, lines = clips.read(source, 48, frames), []
        out = writing.write_video(clip.frames, tmp_path / f"styled{suffix}", clip.fps, str(source), clip.span,
                                  lines.append)
        with av.open(str(out)) as c:
            assert [s.type for s in c.streams] == ["video"] and len(list(c.decode(video=0))) == len(clip.frames)
        assert lines == [f"nst video: the audio is not copied (the source has no sound {said}, the frames' "
                         "span); the video is written without it"], lines
        out.unlink()
    clip = clips.read(source, 48, (6, 18))                            # 0.5 s to 1.5 s: its second half has sound
    out = writing.write_video(clip.frames, tmp_path / f"styled{suffix}", clip.fps, str(source), clip.span, print)
    assert sound_onset(out) is not None


def write_with_tone(path, images, tone_at, fps=12, rate=16000, codec="aac", first_frame=0):
    # frames at `fps` from frame time `first_frame` (the sound starting that many frames earlier) and
    # sound as long (AAC; PCM: one packet, as some muxers store it), silent until `tone_at` seconds,
    # then a tone (sound_onset)
    import fractions

    import av
    with av.open(str(path), "w") as c:
        v, a = c.add_stream("mpeg4", rate=fps), c.add_stream(codec, rate=rate)
        v.width, v.height, v.pix_fmt = images[0].shape[1], images[0].shape[0], "yuv420p"
        for k, image in enumerate(images):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = first_frame + k, fractions.Fraction(1, fps)
            c.mux(v.encode(frame))
        c.mux(v.encode())
        n = rate * (first_frame + len(images)) // fps
        tone = np.where(np.arange(n) >= tone_at * rate, 0.3, 0.0).astype(np.float32)[None]
        sound = (av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono") if codec == "aac" else
                 av.AudioFrame.from_ndarray((tone * 32767).astype(np.int16), format="s16", layout="mono"))
        sound.sample_rate, sound.pts = rate, 0
        c.mux([*a.encode(sound), *a.encode()])
    return path


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_audio_that_starts_before_the_picture_starts_with_its_first_frame(tmp_path, suffix):
    # the source's sound begins one frame (83 ms) before its picture: the output's sound starts with
    # its first frame, the tone (1 s into the sound) 0.917 s after it; it began 45 ms (.mp4) and
    # 109 ms (.mkv) late: the packet on air at the first frame was dropped
    source = write_with_tone(tmp_path / "early.mkv", video_clip.frames(24, h=36, w=48), 1.0, first_frame=1)
    clip = clips.read(source, 48)
    out = writing.write_video(clip.frames, tmp_path / f"styled{suffix}", clip.fps, str(source), clip.span, print)
    assert abs(clip.span[0] - 1 / 12) < 0.001 and abs(sound_span(out)[0]) < 0.002, (clip.span, sound_span(out))
    assert abs(sound_onset(out) - (1 - clip.span[0])) < 0.002, sound_onset(out)


@pytest.mark.parametrize("source", [".mkv", ".avi", "one packet"])
def test_the_sound_of_frames_a_b_starts_with_frame_a(tmp_path, source):
    # --frames 5:36, 7:36, 7:30 and 0:20 of a clip whose tone starts at 1 s: in each output the sound
    # starts with frame A (within 2 ms) and the tone at (its time in the source) − (frame A's time),
    # within 2 ms; it ends with frame B−1 or the source's sound (within a packet: 64 ms). AVI times its
    # sound from its first sample: the packets copied there started at a packet's edge, up to one
    # packet (64 ms here) early, and an AVI source's AAC, copied with its sample size, 0.5 s early: it
    # is now cut at frame A to the sample, in PCM. An AVI source's AAC counts its times in packets:
    # copied into .mkv they were rounded to a whole packet, up to 32 ms off. Copied into .mp4 and .mkv
    # the packet on air at frame A was dropped: the sound began up to a packet late (31 and 95 ms
    # here), and PCM stored as one packet (one packet: a .mkv with the whole sound in one) not at all,
    # or from frame 0 whole, to the source's end; .mp4's edit list now trims that packet, .mkv's sound
    # is cut at frame A (and B) in FLAC
    import av
    codec, suffix = ("pcm_s16le", ".mkv") if source == "one packet" else ("aac", source)
    clip_path = write_with_tone(tmp_path / f"clip{suffix}", video_clip.frames(36, h=36, w=48), 1.0, codec=codec)
    for frames in ((5, 36), (7, 36), (7, 30), (0, 20)):
        clip = clips.read(clip_path, 48, frames)
        want, until = sound_onset(clip_path) - clip.span[0], min(clip.span[1], sound_span(clip_path)[1]) - clip.span[0]
        for suffix in (".avi", ".mkv", ".mp4"):
            out = writing.write_video(clip.frames, tmp_path / f"styled{suffix}", clip.fps, str(clip_path), clip.span,
                                      print)
            with av.open(str(out)) as c:
                assert c.streams.audio and next(c.decode(video=0)).time == 0
            first, last = sound_span(out)
            assert abs(first) < 0.002 and -0.002 < last - until < 0.064, (frames, suffix, first, last, until)
            assert abs(sound_onset(out) - want) < 0.002, (frames, suffix, sound_onset(out), want)
            out.unlink()



def sound_end(path):
    # -> when a video file's sound ends (seconds) as players read it: its track's length where the
    # container keeps one (an MP4's edit list, as ffprobe reports it: FFmpeg decodes the last packet
    # whole), else where its decoded sound ends (Matroska's DiscardPadding is applied in decoding)
    import av
    with av.open(str(path)) as c:
        a = c.streams.audio[0]
        if a.duration:
            return float((a.duration + (a.start_time or 0)) * a.time_base)
    return sound_span(path)[1]


@pytest.mark.parametrize("suffix", [".mp4", ".mov", ".mkv"])
def test_copied_sound_ends_with_the_last_frame(tmp_path, suffix):
    # --frames 0:20 (and 7:30 where the container trims a packet's start) of a 12 fps clip whose AAC
    # sound runs on (16 kHz: 64 ms packets): copied, it ends with frame B−1's end within 2 ms, the
    # packet on air then trimmed by the edit list (.mp4 .mov) or its DiscardPadding (.mkv). It played
    # whole: 60 ms past the last frame (61 ms at 0:20, as long as the source's sound at 30 fps)
    import av
    clip_path = write_with_tone(tmp_path / "clip.mkv", video_clip.frames(36, h=36, w=48), 1.0)
    for frames in ((0, 20), (7, 30)) if suffix != ".mkv" else ((0, 20),):
        clip = clips.read(clip_path, 48, frames)
        out = writing.write_video(clip.frames, tmp_path / f"styled{suffix}", clip.fps, str(clip_path), clip.span,
                                  print)
        with av.open(str(out)) as c:
            assert c.streams.audio[0].codec_context.name == "aac"                     # copied
        end = clip.span[1] - clip.span[0]
        assert abs(shown_frames(out)[1] - end) < 0.002 and abs(sound_end(out) - end) < 0.002, (frames, sound_end(out))
        assert abs(sound_span(out)[0]) < 0.002 and abs(sound_onset(out) - (1 - clip.span[0])) < 0.002
        out.unlink()


@pytest.mark.parametrize("suffix, frames, codec", [(".mkv", (0, 20), "aac"), (".mkv", (5, 36), "flac"),
                                                  (".webm", (0, 20), "opus")])
def test_a_matroska_file_lasts_as_long_as_its_frames(tmp_path, suffix, frames, codec):
    # FFmpeg's Matroska muxer counted the sound to its last packet's untrimmed end and from before its
    # codec delay: 1.79 s for 1.67 s of frames and sound (copied AAC), 1.67 s + 8 ms (Opus encoded).
    # The file's duration and each track's DURATION tag now end with the last frame, as in .mp4; the
    # Info and Tags elements' CRC-32 (FFmpeg's, in .mkv) made again
    import struct
    import zlib

    import av

    from nst.video import matroska
    clip = clips.read(write_with_tone(tmp_path / "clip.mkv", video_clip.frames(36, h=36, w=48), 1.0), 48, frames)
    out = writing.write_video(clip.frames, tmp_path / f"styled{suffix}", clip.fps, clip.source, clip.span, print)
    end = clip.span[1] - clip.span[0]
    with av.open(str(out)) as c:
        assert c.streams.audio[0].codec_context.name == codec
        assert abs(c.duration / 1e6 - end) < 0.001, (c.duration, end)
        tags = [matroska.tag_seconds(s.metadata["DURATION"]) for s in c.streams]
    assert all(abs(t - end) < 0.001 for t in tags), (tags, end)
    assert abs(sound_span(out)[1] - end) < 0.002 and abs(shown_frames(out)[1] - end) < 0.002
    with open(out, "rb") as f:
        segment = next(e for e in matroska.elements(f, 0, None) if e[0] == matroska.SEGMENT)
        for ident, at, size in matroska.elements(f, segment[1], segment[1] + segment[2]):
            f.seek(at)
            data = f.read(size) if ident in (matroska.INFO, matroska.TAGS) else b""
            if data[:2] == b"\xbf\x84":                                          # a CRC-32 of 4 bytes
                assert struct.unpack("<I", data[2:6])[0] == zlib.crc32(data[6:]), hex(ident)


@pytest.mark.parametrize("frames, codec", [((16, 40), "aac"), ((15, 40), "flac")])
def test_frames_a_b_into_mkv_copy_the_sound_where_a_packet_starts_with_frame_a(tmp_path, frames, codec):
    # Matroska's muxer cannot trim a packet's start (the copied codec delay is the source's): the sound
    # is copied where frame A starts a packet (at 30 fps and 48 kHz, 1024-sample packets, every 16th
    # frame: not a question of rounding to its milliseconds), else cut there in FLAC; either starts
    # with frame A and ends with frame B−1 within 2 ms, the tone 1 s into the source in step (the
    # copy ran 11 ms on)
    import av
    clip_path = write_with_tone(tmp_path / "clip.mkv", video_clip.frames(64, h=36, w=48), 1.0, fps=30, rate=48000)
    clip = clips.read(clip_path, 48, frames)
    out = writing.write_video(clip.frames, tmp_path / "styled.mkv", clip.fps, str(clip_path), clip.span, print)
    with av.open(str(out)) as c:
        assert c.streams.audio[0].codec_context.name == codec
    first, last = sound_span(out)
    assert abs(first) < 0.002 and abs(last - (clip.span[1] - clip.span[0])) < 0.002, (first, last, clip.span)
    assert abs(sound_onset(out) - (1 - clip.span[0])) < 0.002, sound_onset(out)


def test_copied_sound_is_read_from_the_source_once(tmp_path, monkeypatch):
    # the packets read to decide that the sound can be copied are the ones copied: the source is
    # opened (and its sound read) once, not again to copy them (to the file's end)
    import av
    clip_path = write_with_tone(tmp_path / "clip.mkv", video_clip.frames(36, h=36, w=48), 1.0)
    clip = clips.read(clip_path, 48, (0, 20))
    opened = counting(monkeypatch, av, "open")
    out = writing.write_video(clip.frames, tmp_path / "styled.mp4", clip.fps, str(clip_path), clip.span, print)
    assert out.exists() and [a[0] for a in opened].count(str(clip_path)) == 1, opened


class CountedReads:
    """An av.open()ed container whose demux() counts the packets it yields."""

    def __init__(self, container):
        self.container, self.packets = container, 0

    def __getattr__(self, name):
        return getattr(self.container, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self.container.__exit__(*exc)

    def demux(self, *args, **kwargs):
        for packet in self.container.demux(*args, **kwargs):
            self.packets += 1
            yield packet


def opened_counted(monkeypatch):
    # -> the list of the sources av.open() opens to read from now on, each a CountedReads
    import av
    real, opened = av.open, []
    monkeypatch.setattr(av, "open", lambda path, *a, **k: real(path, *a, **k) if a or k else opened.append(
        CountedReads(real(path))) or opened[-1])
    return opened


def test_sound_that_cannot_be_copied_is_read_only_until_that_is_known(tmp_path, monkeypatch):
    # --frames 5:36 into .mkv: frame 5 starts inside a 64 ms packet, so the sound is cut in FLAC;
    # deciding it reads the packets to the first after frame 5's (8 of the 49), not all of
    # them to frame B's end (then to be read again to be encoded)
    import av
    clip = clips.read(write_with_tone(tmp_path / "clip.mkv", video_clip.frames(36, h=36, w=48), 1.0), 48, (5, 36))
    opened = opened_counted(monkeypatch)
    out = writing.write_video(clip.frames, tmp_path / "styled.mkv", clip.fps, clip.source, clip.span, print)
    monkeypatch.undo()
    with av.open(str(out)) as c:
        assert c.streams.audio[0].codec_context.name == "flac"
    assert opened[0].packets < 10, opened[0].packets


@pytest.mark.parametrize("suffix, codec", [(".mp4", "aac"), (".mkv", "flac")])
def test_the_sound_of_a_late_frames_a_b_is_read_from_a_seek_near_a(tmp_path, monkeypatch, suffix, codec):
    # --frames 100:110 of a 10 s clip (157 packets of 64 ms): the sound is sought near frame A
    # (8.33 s), then read: copied (.mp4) or, starting inside a packet, cut there in FLAC (.mkv: from
    # 0.5 s before A, for the decoder to settle); either starts with frame A and the tone (9 s into
    # the source) plays at 9 s − A's time. Both read it from 0 to A first
    import av
    clip_path = write_with_tone(tmp_path / "clip.mkv", video_clip.frames(120, h=36, w=48), 9.0)
    clip = clips.read(clip_path, 48, (100, 110))
    opened = opened_counted(monkeypatch)
    out = writing.write_video(clip.frames, tmp_path / f"styled{suffix}", clip.fps, clip.source, clip.span, print)
    monkeypatch.undo()
    with av.open(str(out)) as c:
        assert c.streams.audio[0].codec_context.name == codec
    assert opened and all(c.packets < 30 for c in opened), [c.packets for c in opened]
    assert abs(sound_span(out)[0]) < 0.002 and abs(sound_onset(out) - (9 - clip.span[0])) < 0.002, sound_onset(out)


class LateSeek(CountedReads):
    """A source whose first seek lands 2 s after the time asked (an index too coarse)."""

    def seek(self, offset, stream=None, **kwargs):
        late = 0 if getattr(self, "sought", False) else round(2 / stream.time_base)
        self.sought = True
        self.container.seek(offset + late, stream=stream, **kwargs)


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_a_seek_that_lands_after_frame_a_reads_the_sound_from_the_start(tmp_path, monkeypatch, suffix):
    # the sound of --frames 100:110 still starts with frame A, the tone in step, where the seek near
    # A lands 2 s after it
    import av
    clip_path = write_with_tone(tmp_path / "clip.mkv", video_clip.frames(120, h=36, w=48), 9.0)
    clip = clips.read(clip_path, 48, (100, 110))
    real = av.open
    monkeypatch.setattr(av, "open", lambda path, *a, **k: real(path, *a, **k) if a or k else LateSeek(real(path)))
    out = writing.write_video(clip.frames, tmp_path / f"styled{suffix}", clip.fps, clip.source, clip.span, print)
    monkeypatch.undo()
    assert abs(sound_span(out)[0]) < 0.002 and abs(sound_onset(out) - (9 - clip.span[0])) < 0.002, sound_onset(out)


def counting(monkeypatch, module, name):
    # -> the list that module.name's calls are appended to (the function still runs)
    real, calls = getattr(module, name), []
    monkeypatch.setattr(module, name, lambda *a, **k: calls.append(a) or real(*a, **k))
    return calls


def test_a_worker_prepares_the_weights_once_for_its_frames(tiny_weights_h5, tmp_path, monkeypatch):
    # frame tasks in one worker process: the weights read and prepared for the first, reused by the
    # next (a first and a later frame), the pictures those of freshly prepared weights; another file
    # is prepared anew and the process keeps that one only
    import nst.objective
    import nst.weights
    from nst.video.task import flows_task, frame_task
    monkeypatch.setattr(nst.objective, "_KEPT", {})
    reads = counting(monkeypatch, nst.weights.keras_h5, "read")
    prepares = counting(monkeypatch, nst.objective, "prepare")
    frames = video_clip.frames(2)
    settings = Settings(size=48, scales=1, iterations=3, backend="numpy", weights=str(tiny_weights_h5))
    video = {"temporal_weight": 1.0, "later_iterations": 3, "long_term": False}
    flows = [flows_task(frames[1], frames[0])]
    later = lambda first: frame_task(frames[1], [frames[0]], settings, video, [first], flows)  # noqa: E731
    first = frame_task(frames[0], [frames[0]], settings, video, [], [])["image"]
    second = later(first)["image"]
    assert len(reads) == 1 and len(prepares) == 1
    nst.objective._KEPT.clear()
    assert np.array_equal(frame_task(frames[0], [frames[0]], settings, video, [], [])["image"], first)
    nst.objective._KEPT.clear()
    assert np.array_equal(later(first)["image"], second)
    assert len(prepares) == 3
    other = tmp_path / "other.h5"
    other.write_bytes(tiny_weights_h5.read_bytes())
    frame_task(frames[0], [frames[0]], settings.replace(weights=str(other)), video, [], [])
    assert len(prepares) == 4 and len(nst.objective._KEPT) == 1
    assert next(iter(nst.objective._KEPT))[0][0] == str(other.resolve())


def test_weights_kept_or_read_ahead_count_as_free_memory(tiny_weights_h5, monkeypatch):
    # a worker's run that finds its weights kept holds them already: the memory check counts them as
    # free, as the estimate counts them in the run's total; a run that did not find them does not
    import nst.objective
    from nst import memory
    from nst.run.checks import check_memory
    from nst.run.run import Run
    monkeypatch.setattr(nst.objective, "_KEPT", {})
    frame = video_clip.frames(1)[0]
    settings = Settings(size=48, scales=1, iterations=2, backend="numpy", weights=str(tiny_weights_h5))
    first = Run(frame, [frame], settings, keep_weights=True)
    first.objective(*first.images_at(first.sizes[0]))
    run, fresh = (Run(frame, [frame], settings, keep_weights=keep) for keep in (True, False))
    run.read_weights_ahead()                     # reads nothing: its weights are kept
    kept = memory.held_bytes(first.prepared)
    assert run.prepared is first.prepared and fresh.prepared is None and kept > 0
    need = run.memory_estimate()[0]["total"] + memory.images_bytes([frame, frame])
    monkeypatch.setattr(memory, "available", lambda backend: need - kept)
    check_memory(run, dry_run=False)
    with pytest.raises(MemoryError):
        check_memory(fresh, dry_run=False)
    # the weights a run reads ahead (nst.run.Run.read_weights_ahead) while its memory is checked are
    # counted as free too, once read (MemAvailable taken meanwhile no longer has them)
    fresh.read_weights_ahead()
    assert fresh.weights_read_bytes() == kept
    check_memory(fresh, dry_run=False)


def test_a_file_of_the_users_put_at_a_frames_name_meanwhile_is_kept(tmp_path):
    # a user's file saved at a frame's name while the video runs: it was an ImageError out of
    # engine.keep (a traceback, the run stopped); now that frame fails with its row saying why, the
    # file is kept and the run goes on
    from nst.batch.results import Manifest
    from nst.video import engine
    frame = plan.Frame(0, 0, 0, True, (), "d" * 64, "frame_000000.png")
    (tmp_path / frame.output).write_bytes(b"the user's own bytes")
    manifest = Manifest(tmp_path)
    status = engine.keep(manifest, frame, {"status": "done"}, np.zeros((4, 6, 3), np.float32), tmp_path)
    assert status == "failed" and "nst did not write it" in manifest.rows[frame.output]["error"]
    assert (tmp_path / frame.output).read_bytes() == b"the user's own bytes"


def test_a_frame_taken_from_another_container_keeps_its_mode(tmp_path):
    # -o styled.mkv taking styled.mp4.frames' frames by hard links: a frame the user made private
    # (0600) there was made 0644 (world-readable) by the rename's chmod, the link sharing its mode
    from nst.video.reuse import link_or_copy
    name = clips.frame_name(0)
    source, target = tmp_path / "styled.mp4.frames" / name, tmp_path / "styled.mkv.frames" / name
    source.parent.mkdir()
    source.write_bytes(b"frame")
    source.chmod(0o600)
    link_or_copy(source, target)
    assert target.read_bytes() == b"frame" and oct(source.stat().st_mode & 0o777) == "0o600"
    assert not [p.name for p in target.parent.iterdir() if p.name != target.name]      # no temporary file left


def test_a_warning_each_frame_raises_on_its_worker_is_said_once_and_kept_in_the_rows(inputs, tmp_path, capsys,
                                                                                      monkeypatch, shared_cluster):
    # each frame's run warns on its (in-process) worker: one line for the clip, every frame's row keeps it
    import warnings

    from nst.video import task as video_task

    class WarningJob(video_task.Job):
        def prepare(self):
            warnings.warn("each frame warns")
            return super().prepare()
    monkeypatch.setattr(video_task, "Job", WarningJob)
    out = tmp_path / "out"
    assert main(command(inputs, out, "--iterations", "1", "--later-iterations", "1",
                        "--scheduler", shared_cluster)) == 0
    assert [r.get("warnings") for r in rows(out)] == [["each frame warns"]] * 6
    err = capsys.readouterr().err
    assert [line for line in err.splitlines() if "each frame warns" in line] == ["nst video: warning: each frame warns"]


def test_a_tile_that_multiplies_the_work_is_said_once_before_any_frame(inputs, tmp_path, capsys, shared_cluster):
    # --tile 8 at the frames' 48 px (6 px halos: about 9× an untiled evaluation's work): said once for
    # the clip, as nst transfer says it (nst.run.checks.tile_warning); it was in each frame's worker log only
    out = tmp_path / "out"
    assert main(command(inputs, out, "--content-layers", "conv2_2", "--style-layers", "conv1_1,conv2_1",
                        "--tile", "8", "--iterations", "1", "--later-iterations", "1", "--frames", "0:2",
                        "--scheduler", shared_cluster)) == 0
    err = capsys.readouterr().err
    said = [line for line in err.splitlines() if "the work of an untiled one" in line]
    assert len(said) == 1 and said[0].startswith("nst video: warning: --tile 8 makes an evaluation about "), err


@pytest.mark.parametrize("debug", [False, True])
def test_numpy_s_overflow_in_a_frame_is_said_as_nst_transfer_says_it(inputs, tmp_path, capsys, monkeypatch,
                                                                     shared_cluster, debug):
    # as nst batch's tasks (test_batch): a frame's NumPy overflow is not said nor kept in its row; the
    # CLI's filter, process-wide, left out as on a worker in a process of its own. Under --debug it is
    # (it was hidden on the worker whatever the command's --debug): kept in each row, said in Python's form
    import warnings

    import nst.cli
    from nst.video import task as video_task

    class OverflowingJob(video_task.Job):
        def prepare(self):
            np.full(2, 3e38, np.float32) * np.float32(10)
            return super().prepare()
    monkeypatch.setattr(video_task, "Job", OverflowingJob)
    monkeypatch.setattr(nst.cli, "overflow_unwarned", contextlib.nullcontext)
    out = tmp_path / "out"
    with warnings.catch_warnings(record=True) as said:          # --debug's Python form
        warnings.simplefilter("default")
        assert main(command(inputs, out, "--iterations", "1", "--later-iterations", "1", "--frames", "0:2",
                            "--scheduler", shared_cluster, *(["--debug"] if debug else []))) == 0
    overflow = ["overflow encountered in multiply"] if debug else None
    assert [r.get("warnings") for r in rows(out)] == [overflow, overflow]
    assert {str(w.message) for w in said if "encountered" in str(w.message)} == set(overflow or [])
    assert "encountered" not in capsys.readouterr().err
