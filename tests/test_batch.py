"""`nst batch` with real Dask processes: a LocalCluster of 2 workers, a worker killed mid-batch, a bad
input refused before any task and one spoiled mid-batch among good ones, Ctrl-C, and a separately
started `dask scheduler` + `dask worker` with no shared folder. Tiny random-weight VGG19, 48 px, one
scale, the NumPy backend (no Numba compilation in fresh worker processes)."""
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
from distributed import Client
from PIL import Image

from nst.batch import engine, plan, results
from nst.batch.outdir import locked
from nst.cli import main
from nst.io.assets import atomic_path
from nst.io.image import load_image, save_image

from conftest import second_run_during

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--size", "48", "--scales", "1", "--backend", "numpy"]
RUN_NST = [sys.executable, "-m", "nst"]


@pytest.fixture
def images(tmp_path, rng):
    # 2 contents and 2 styles (40×56 random pictures) in tmp_path/in
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("c1", "c2", "s1", "s2"):
        Image.fromarray(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)).save(folder / f"{name}.png")
    return folder


def manifest(outdir):
    return [json.loads(line) for line in (outdir / "manifest.jsonl").read_text().splitlines()]


def env_with_nst():
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


def stop(proc):
    # end a process started in its own session, and everything it started
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if proc.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)
    with contextlib.suppress(ProcessLookupError):              # what it started and left behind
        os.killpg(proc.pid, signal.SIGKILL)


def start_nst(args):
    # `nst ARGS` in a child of its own session (a SIGINT to its group is a terminal's Ctrl-C), stderr piped
    return subprocess.Popen([*RUN_NST, *args], env=env_with_nst(), start_new_session=True,
                            stderr=subprocess.PIPE, text=True)


def wait_for(proc, ready, seconds, failure):
    # poll ready() every 20 ms while proc runs; fail with `failure` if proc ends or time runs out first
    deadline = time.monotonic() + seconds
    while not ready():
        assert proc.poll() is None and time.monotonic() < deadline, failure
        time.sleep(0.02)


def left_in_group(pgid, wait=10):
    # the live processes of a process group, after giving them `wait` seconds to end
    deadline = time.monotonic() + wait
    while True:
        alive = []
        for p in psutil.process_iter(["status"]):
            with contextlib.suppress(psutil.Error, ProcessLookupError):
                if os.getpgid(p.pid) == pgid and p.info["status"] != psutil.STATUS_ZOMBIE:
                    alive.append(" ".join(p.cmdline()))
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)


# -- planning: names, sweeps, refusals (no cluster) ----------------------------------------------

@pytest.mark.parametrize("value, text", [(512, "512"), (1000.0, "1e3"), (1e-3, "1e-3"), (2500.0, "2.5e3"),
                                         (0.5, "0.5"), (0.0, "0"), (10.0, "10")])
def test_sweep_values_in_names(value, text):
    assert plan.fmt_value(value) == text


def test_dry_run_lists_the_grid(images, tiny_weights_h5, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["batch", str(images / "c*.png"), "--style", str(images / "s1.png"), "-o", str(out),
                 "--weights", str(tiny_weights_h5), *FAST, "--sweep", "style-weight=1e2,1e4",
                 "--sweep", "iterations=3,5", "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    names = [line.split()[2] for line in lines if line.startswith("to run")]
    assert names == [f"{c}__s1__sw{w}__it{i}.png" for c in ("c1", "c2") for w in ("1e2", "1e4") for i in (3, 5)]
    assert any(line.startswith("one task: up to") for line in lines)
    assert any(line.startswith("at once: ") and "worker process" in line for line in lines)
    assert not out.exists()                                     # a dry run writes nothing


def test_a_tiny_content_upscaled_a_lot_is_said_once_per_content(images, tiny_weights_h5, tmp_path, capsys):
    # as nst transfer says it (nst.run.checks.upscale_warning); two styles, one line
    Image.fromarray(np.full((3, 4, 3), 90, np.uint8)).save(images / "c1.png")
    assert main(["batch", str(images / "c*.png"), "--style", str(images / "s*.png"), "-o", str(tmp_path / "o"),
                 "--weights", str(tiny_weights_h5), *FAST, "--dry-run"]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if "upscaled" in line]
    assert lines == [f"nst batch: warning: {images / 'c1.png'}: the content is 4×3 px, upscaled 12× to 48×36 px "
                     "by --size 48: is it the picture you meant?"]


@pytest.mark.parametrize("sweep, needle", [("init=1,2", "sweep one of"), ("content-layers=1", "sweep one of"),
                                           ("style-weight=a,b", "style-weight must be"),   # the option's own check
                                           ("iterations=5,0", "got '0'"), ("size=", "give the values"),
                                           ("style-weight=1,,2", "style-weight item 2 is empty"),  # was 1,2
                                           ("style-weight=1,2,", "style-weight item 3 is empty"),
                                           ("style-weight=,", "give the values")])             # none given
def test_bad_sweeps(images, tmp_path, capsys, sweep, needle):
    with pytest.raises(SystemExit) as e:
        main(["batch", str(images / "c1.png"), "--style", str(images / "s1.png"), "-o", str(tmp_path / "o"),
              "--sweep", sweep])
    assert e.value.code == 2 and needle in capsys.readouterr().err


@pytest.mark.parametrize("outdir, needle", [(lambda i: i, "holds the input"),
                                            (lambda i: i / "c1.png", "not a folder")])
def test_refuses_an_outdir_that_is_an_input(images, tiny_weights_h5, capsys, outdir, needle):
    before = {p.name: p.read_bytes() for p in images.iterdir()}
    assert main(["batch", str(images), "--style", str(images / "s1.png"), "-o", str(outdir(images)),
                 "--weights", str(tiny_weights_h5), *FAST]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("nst: error: ") and needle in err, err
    assert {p.name: p.read_bytes() for p in images.iterdir()} == before


def test_never_overwrites_a_file_it_did_not_make(images, tiny_weights_h5, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "c1__s1.png").write_bytes(b"the user's own file")
    assert main(["batch", str(images / "c1.png"), "--style", str(images / "s1.png"), "-o", str(out),
                 "--weights", str(tiny_weights_h5), *FAST]) == 1
    assert (out / "c1__s1.png").read_bytes() == b"the user's own file"
    [row] = manifest(out)
    assert row["status"] == "failed" and "nst did not write it" in row["error"]


# -- one OUTDIR, several processes ---------------------------------------------------------------

def a_task(name):
    return plan.Task(name, "in/c.png", ("in/s.png",), {"size": 32}, (), "d" * 64)


def test_a_second_batch_on_the_same_o_is_refused_while_the_first_lives(images, tiny_weights_h5, tmp_path, capsys,
                                                                       monkeypatch):
    # two nst batch on one -o at once interleaved their pictures and rows; the second is now refused
    # at its start (its --dry-run not), while the first's own workers run its task under the hold;
    # the hold ends with the first
    from nst.io.hold import hold_outdir
    out = tmp_path / "out"
    argv = ["batch", str(images / "c1.png"), "--style", str(images / "s1.png"), "-o", str(out),
            "--weights", str(tiny_weights_h5), *FAST]
    second = second_run_during(monkeypatch, capsys, engine, "connect", main, argv)
    assert main(argv) == 0
    status, dry_status, err = second[0]
    assert (status, dry_status) == (2, 0), err
    assert err.splitlines()[0] == (f"nst: error: -o {out}: another nst batch is writing {out} now; wait for it "
                                   "to end, or choose another -o"), err
    assert [r["status"] for r in manifest(out)] == ["done"]
    with hold_outdir("nst batch", "-o", out, out):
        pass


def test_a_process_forked_from_a_holder_never_holds_its_outdir(tmp_path):
    # a worker forked from the batch (a Dask set to fork) closes its copy of the hold: once the batch
    # has ended, a worker still alive keeps nothing held and a new batch on that -o starts
    from nst.io.hold import hold_outdir
    out = tmp_path / "out"
    held = hold_outdir("nst batch", "-o", out, out)
    (end_r, end_w), (ready_r, ready_w) = os.pipe(), os.pipe()
    child = os.fork()
    if child == 0:                                  # the worker: says it runs, lives until told to end
        os.write(ready_w, b"r")
        os.read(end_r, 1)
        os._exit(0)
    try:
        assert os.read(ready_r, 1) == b"r"
        held.close()
        with hold_outdir("nst batch", "-o", out, out):
            pass
    finally:
        os.write(end_w, b"x")
        os.waitpid(child, 0)


def test_two_batches_keep_each_others_rows(tmp_path):
    # two batches (or `nst serve` and a batch) on one OUTDIR, both started before either ended:
    # each one's final rewrite keeps the other's rows, so neither's picture is blocked on a rerun
    out = tmp_path / "out"
    first, second = results.Manifest(out), results.Manifest(out)
    for m, t in ((first, a_task("a")), (second, a_task("b"))):
        m.append(results.row_of(t, {"status": "done"}))
        save_image(np.full((4, 4, 3), 9, np.uint8), out / t.output)          # nst's picture, marked
        m.record_picture(t.output)
    first.finish([a_task("a")])
    second.finish([a_task("b")])
    rows = results.read_manifest(out)
    assert {o: (r["status"], "sha256" in r) for o, r in rows.items()} == {"a.png": ("done", True),
                                                                          "b.png": ("done", True)}
    assert results.partition([a_task("a"), a_task("b")], rows, out)[1] == [a_task("a"), a_task("b")]


def test_an_append_waits_for_a_rewrite(tmp_path):
    # another process's append waits while this one holds the manifest's lock (as a rewrite does),
    # then lands in the file that rewrite left
    out = tmp_path / "out"
    first = results.Manifest(out)
    first.append(results.row_of(a_task("a"), {"status": "failed"}))
    # The child says when it is about to append: a fixed wait from its start could end before its
    # imports did (under load), and the append then came after the rewrite even with no lock at all
    append = ("import sys; from pathlib import Path; from nst.batch import results; print('appending', flush=True); "
              "results.append_row(Path(sys.argv[1]), {'output': 'b.png', 'digest': 'd', 'status': 'failed'})")
    with locked(out):
        proc = subprocess.Popen([sys.executable, "-c", append, str(out / "manifest.jsonl")], env=env_with_nst(),
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline() == "appending\n"
        time.sleep(0.5)                                            # an unlocked append is done by now
        waited = proc.poll() is None
        with atomic_path(out / "manifest.jsonl") as tmp:          # a rewrite, as Manifest.finish makes it
            tmp.write_text(json.dumps(results.row_of(a_task("a"), {"status": "failed"})) + "\n")
    assert proc.wait(30) == 0 and waited
    assert set(results.read_manifest(out)) == {"a.png", "b.png"}


# -- real clusters -------------------------------------------------------------------------------

def test_local_workers_get_the_kernel_threads():
    # W·K ≤ cores, and K reaches each worker before Numba and BLAS start; our own environment is
    # untouched while the cluster lives (Numba rereads it at every compile: `nst serve` compares in
    # this process) and exactly as it was after
    import numba

    from nst.kernels import cpu_threads  # noqa: F401  Numba's pool started here, as in `nst serve`
    layout = engine.local_layout(n_tasks=100, task_bytes=2**20, backend="numba")
    assert layout.workers * layout.threads <= engine.cores()
    assert engine.local_layout(1, 2**20, "numba").workers == 1                  # no more workers than tasks
    before, threads = dict(os.environ), numba.config.NUMBA_NUM_THREADS
    with engine.connect(None, engine.Layout(1, 1, "")) as client:
        during = {v: os.environ.get(v) for v in engine.THREAD_VARIABLES}
        numba.core.config.reload_config()              # what each compile does: raised with the bug
        [seen] = client.run(lambda: ({v: os.environ.get(v) for v in engine.WORKER_VARIABLES},
                                     __import__("numba").config.NUMBA_NUM_THREADS,
                                     {i["num_threads"] for i in __import__("threadpoolctl").threadpool_info()
                                      if i["user_api"] == "blas"})).values()
    assert seen == ({v: "1" for v in engine.WORKER_VARIABLES}, 1, {1})
    assert during == {v: before.get(v) for v in engine.THREAD_VARIABLES}
    assert numba.config.NUMBA_NUM_THREADS == threads
    assert dict(os.environ) == before


CTRL_C_AS_THE_CLUSTER_STARTS = """
import os, signal
from distributed import Nanny
from nst.batch import engine
start = Nanny.start_unsafe
async def ctrl_c_then_start(self):
    os.kill(os.getpid(), signal.SIGINT)
    return await start(self)
Nanny.start_unsafe = ctrl_c_then_start
try:
    with engine.connect(None, engine.Layout(1, 1, "")):
        print("connected")
except KeyboardInterrupt:
    print("interrupted")
"""


def test_ctrl_c_as_the_local_cluster_starts():
    # Ctrl-C while a LocalCluster starts its workers: it is closed whole, then KeyboardInterrupt
    # (Dask's exit hook finds nothing half started to choke on: nothing is printed)
    proc = subprocess.run([sys.executable, "-c", CTRL_C_AS_THE_CLUSTER_STARTS], env=env_with_nst(),
                          capture_output=True, text=True, timeout=120)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "interrupted\n", "")


def test_local_cluster_every_pair_then_nothing(images, tiny_weights_h5, tmp_path, capsys):
    out = tmp_path / "out"
    command = ["batch", str(images / "c1.png"), str(images / "c2.png"), "--style", str(images / "s*.png"),
               "-o", str(out), "--weights", str(tiny_weights_h5), *FAST, "--iterations", "5", "--workers", "2"]
    assert main(command) == 0
    names = [f"c{i}__s{j}.png" for i in (1, 2) for j in (1, 2)]
    for name in names:
        assert load_image(out / name).shape == (34, 48, 3)
    rows = manifest(out)
    assert sorted(r["output"] for r in rows) == names
    for r in rows:
        assert r["status"] == "done" and r["iterations"] == 5 and r["seconds"] > 0, r
        assert set(r["terms"]) == {"total", "content", "style", "tv"} and r["worker"].startswith("tcp://")
    sheet = load_image(out / "contact_sheet.png")
    assert sheet.shape[:2] == (24 + 2 * 38, 160 + 2 * 88)         # 2 × 2 cells, 48×34 pictures in a label's 88
    err = capsys.readouterr().err
    assert "2 worker processes" in err and "4/4 tasks: 4 done, 0 failed" in err
    assert "s/task |" in err                                     # the unit once: was "s/tasks"

    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert main(command) == 0                                   # the same command again: nothing to do
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    assert "nothing to do" in capsys.readouterr().err

    Image.fromarray(np.zeros((40, 56, 3), np.uint8) + 90).save(images / "c2.png")   # one input changed
    assert main(command) == 0
    assert "2 done before, 2 to run" in capsys.readouterr().err
    assert len(manifest(out)) == 4
    assert {p.name for p in out.iterdir() if p.stat().st_mtime_ns != before[p.name]} == \
        {"c2__s1.png", "c2__s2.png", "manifest.jsonl", "contact_sheet.png"}


def test_bad_input_refused_before_any_task(images, tiny_weights_h5, tmp_path, capsys):
    # a content that is no picture: one line naming it, exit 2, nothing written, no task run
    (images / "broken.png").write_text("not a picture")
    out = tmp_path / "out"
    assert main(["batch", str(images / "c1.png"), str(images / "broken.png"), "--style", str(images / "s1.png"),
                 "-o", str(out), "--weights", str(tiny_weights_h5), *FAST, "--workers", "2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nst batch: reading 3 input pictures to check them\n")        # what it does meanwhile
    assert err.endswith(f"\nnst: error: {images / 'broken.png'}: not an image Pillow can read\n")
    assert not out.exists()


def test_input_pictures_are_decoded_in_threads_and_say_so(images, monkeypatch, capsys):
    # several pictures decode at once (each waits for another to be decoding beside it), a
    # progress line counts them, and each gets its own shape
    import threading
    from nst.batch import checks
    from nst.io import image
    together, decode = threading.Barrier(2, timeout=30), image.image_shape
    monkeypatch.setattr(engine, "cores", lambda: 4)
    monkeypatch.setattr(image, "image_shape", lambda path, reserve: (together.wait(), decode(path, reserve))[1])
    paths = [str(images / f"{name}.png") for name in ("c1", "c2", "s1", "s2")]
    assert checks.input_shapes(paths) == {p: (40, 56) for p in paths}
    err = capsys.readouterr().err
    assert err.startswith("nst batch: reading 4 input pictures to check them\n") and "4/4 pictures" in err


def test_decodes_in_flight_together_fit_in_the_free_memory(tmp_path, rng, monkeypatch):
    # two pictures each fit the free memory alone, not together: their decodes never overlap (the
    # free memory is measured before either allocates, as when both start at once); each waits a
    # while for the other to decode beside it, as threads that all start together would
    import threading
    from nst import memory
    from nst.batch import checks
    from nst.io import image
    paths = []
    for name in ("big1", "big2"):
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(tmp_path / f"{name}.png")
        paths.append(str(tmp_path / f"{name}.png"))
    need = memory.decode_bytes(64, 64, 4)
    monkeypatch.setattr(memory, "available", lambda backend: need * 3 // 2)
    monkeypatch.setattr(engine, "cores", lambda: 4)
    beside, decode, in_flight, peak = threading.Barrier(2, timeout=2), image.image_shape, [], []

    def image_shape(path, reserve):
        # the decode with what it holds counted while it decodes
        @contextlib.contextmanager
        def counted(n):
            with reserve(n):
                in_flight.append(n)
                peak.append(sum(in_flight))
                with contextlib.suppress(threading.BrokenBarrierError):
                    beside.wait()
                yield
                in_flight.remove(n)
        return decode(path, counted)
    monkeypatch.setattr(image, "image_shape", image_shape)
    assert checks.input_shapes(paths) == {p: (64, 64) for p in paths}
    assert max(peak) == need


def test_each_input_header_is_read_once(images, monkeypatch):
    # the check opens each picture once: its header gives the decode's bytes, then it decodes (it
    # opened each twice, the header read for the budget and again to decode)
    from nst.batch import checks
    opened, open_image = [], Image.open
    monkeypatch.setattr(Image, "open", lambda path, *a, **k: (opened.append(str(path)), open_image(path, *a, **k))[1])
    paths = [str(images / f"{name}.png") for name in ("c1", "c2", "s1")]
    assert checks.input_shapes(paths) == {p: (40, 56) for p in paths}
    assert sorted(opened) == sorted(paths)


def test_a_small_decode_runs_beside_a_big_one():
    # the budget keeps what the decodes in flight hold within the free memory, not one at a time:
    # a small one goes beside a big one, a second big one waits for the first to end
    import threading
    from nst.batch.checks import DecodeBudget
    budget, held, asked = DecodeBudget(10), [], threading.Event()
    wait_for = budget.changed.wait_for

    def second_big():
        with budget.holding(6):
            held.append(budget.held)
    with budget.holding(6):
        with budget.holding(3):                                  # 9 ≤ 10: beside the big one
            held.append(budget.held)
        # the second big one asks under the budget's lock and keeps it until it waits, so the first
        # cannot end before: once it has asked, the first may end
        budget.changed.wait_for = lambda predicate: (asked.set(), wait_for(predicate))[1]
        waiting = threading.Thread(target=second_big)
        waiting.start()
        assert asked.wait(30)                                    # 12 > 10: it waits, under the lock
    waiting.join(30)
    assert held == [9, 6] and budget.held == 0


def test_the_first_bad_input_in_order_is_the_one_named(images, monkeypatch):
    # b.png fails first in time, a.png (before it in the command) is named, whatever the threads did
    import threading
    from nst.batch import checks
    from nst.io import image
    b_failed = threading.Event()

    def image_shape(path, reserve):
        if path.endswith("b.png"):
            b_failed.set()
            raise image.ImageError(f"{path}: not an image Pillow can read")
        if path.endswith("a.png"):
            assert b_failed.wait(30)
            raise image.ImageError(f"{path}: unreadable or truncated image")
        return (40, 56)
    monkeypatch.setattr(engine, "cores", lambda: 4)
    monkeypatch.setattr(image, "image_shape", image_shape)
    with pytest.raises(image.ImageError, match="^a.png: unreadable or truncated image$"):
        checks.input_shapes(["c.png", "a.png", "b.png", "d.png"])


def test_an_input_spoiled_during_the_batch_fails_alone(images, tiny_weights_h5, tmp_path, capsys, monkeypatch):
    # c2.png is no picture when its task's bytes are read (after the checks): that task fails, the
    # others are made
    from nst.batch import command
    (images / "c3.png").write_bytes((images / "c1.png").read_bytes())
    read, spoiled = command.read_inputs, str(images / "c2.png")
    monkeypatch.setattr(command, "read_inputs",
                        lambda task: {**read(task), **({spoiled: b"not a picture"} if spoiled in task.files else {})})
    out = tmp_path / "out"
    assert main(["batch", str(images / "c1.png"), spoiled, str(images / "c3.png"),
                 "--style", str(images / "s1.png"), "-o", str(out), "--weights", str(tiny_weights_h5),
                 *FAST, "--iterations", "3", "--workers", "2"]) == 1
    rows = {r["output"]: r for r in manifest(out)}
    assert [r["status"] for r in rows.values()].count("done") == 2
    bad = rows["c2__s1.png"]
    assert bad["status"] == "failed" and bad["error"] == f"{spoiled}: not an image Pillow can read"
    assert not (out / "c2__s1.png").exists()
    assert load_image(out / "c1__s1.png").shape == load_image(out / "c3__s1.png").shape == (34, 48, 3)
    assert "c2__s1.png failed: " in capsys.readouterr().err


def test_a_full_disk_stops_the_batch_in_one_line(images, tiny_weights_h5, tmp_path, capsys, monkeypatch):
    # ENOSPC writing the first picture: every later task still ran, each failing the same way at
    # its end; now the rest are not run, one line says why (exit 1), and the same command goes on
    import nst.io.image
    out, save = tmp_path / "out", nst.io.image.save_image
    command = ["batch", *(str(images / f"c{i}.png") for i in (1, 2)), str(images / "c1.png"), "--style",
               str(images / "s1.png"), str(images / "s2.png"), "-o", str(out), "--weights", str(tiny_weights_h5),
               *FAST, "--iterations", "2", "--workers", "1", "--threads", "1"]

    def full(image, path, *a, **k):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(nst.io.image, "save_image", full)
    assert main(command) == 1
    err = capsys.readouterr().err
    assert "nst batch: error: cannot write" in err and "No space left on device" in err and "Traceback" not in err
    statuses = [r["status"] for r in manifest(out)]
    assert statuses.count("failed") == 1 and statuses.count("done") == 0, statuses
    monkeypatch.setattr(nst.io.image, "save_image", save)
    assert main(command) == 0 and len(list(out.glob("c*__s*.png"))) == 4


def workers_of(proc):
    return [p for p in psutil.Process(proc.pid).children(recursive=True) if "spawn_main" in " ".join(p.cmdline())]


def test_worker_killed_mid_batch(images, tiny_weights_h5, tmp_path):
    # Kill the workers while a task that has a checkpoint is unfinished: the batch completes, and that
    # task continues from its checkpoint on a new worker. Deterministic on any machine: the workers
    # are stopped (SIGSTOP) first, and a checkpoint that still exists then belongs to a task that has
    # not finished (a finished task deletes its checkpoint).
    out, ckpt = tmp_path / "out", tmp_path / "ckpt"
    proc = subprocess.Popen([*RUN_NST, "batch", str(images / "c1.png"), str(images / "c2.png"), "--style",
                             str(images / "s1.png"), "-o", str(out), "--weights", str(tiny_weights_h5), *FAST,
                             "--optimizer", "adam", "--iterations", "400", "--workers", "2",
                             "--checkpoint-dir", str(ckpt), "--checkpoint-every", "10"],
                            env=env_with_nst(), start_new_session=True, stderr=subprocess.PIPE, text=True)
    try:
        deadline, unfinished = time.monotonic() + 90, []
        while not unfinished:
            assert proc.poll() is None and time.monotonic() < deadline, "no task was ever caught with a checkpoint"
            if list(ckpt.glob("*.npz")):
                workers = workers_of(proc)
                for w in workers:
                    w.suspend()
                unfinished = list(ckpt.glob("*.npz"))
                if not unfinished:
                    for w in workers:
                        w.resume()
            time.sleep(0.02)
        for w in workers:
            w.kill()
        _, err = proc.communicate(timeout=120)
    finally:
        stop(proc)
    assert proc.returncode == 0, err
    rows = manifest(out)
    assert [r["status"] for r in rows] == ["done", "done"] and all(r["iterations"] == 400 for r in rows)
    assert max(r["resumed_at"] for r in rows) >= 10, rows       # the killed one went on from its checkpoint
    for name in ("c1__s1.png", "c2__s1.png"):
        assert load_image(out / name).shape == (34, 48, 3)
    assert not list(ckpt.glob("*.npz"))                          # checkpoints go when their task is done


def test_ctrl_c_keeps_what_finished(images, tiny_weights_h5, tmp_path):
    # Ctrl-C (SIGINT to the whole process group, as a terminal sends it) once a picture is written:
    # exit status 130, finished pictures kept, the rest recorded as cancelled, no process left over.
    # Deterministic: of the two tasks one runs 2 iterations, the other 100000 (minutes), so when the
    # first picture appears the other task is still running, on any machine.
    out = tmp_path / "out"
    command = ["batch", str(images / "c1.png"), "--style", str(images / "s1.png"), "-o", str(out),
               "--weights", str(tiny_weights_h5), *FAST, "--optimizer", "adam", "--sweep", "iterations=2,100000",
               "--workers", "2"]
    proc = start_nst(command)
    try:
        wait_for(proc, (out / "c1__s1__it2.png").exists, 90, "no picture was ever written")
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        alive = left_in_group(proc.pid)
    finally:
        stop(proc)
    assert not alive, alive                                     # no worker left running
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "not run (interrupted" in err, err
    rows = {r["output"]: r for r in manifest(out)}
    assert {n: r["status"] for n, r in rows.items()} == {"c1__s1__it2.png": "done", "c1__s1__it100000.png": "cancelled"}
    assert load_image(out / "c1__s1__it2.png").shape == (34, 48, 3) and not (out / "c1__s1__it100000.png").exists()
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]           # no partial files
    dry = subprocess.run([*RUN_NST, *command, "--dry-run"], env=env_with_nst(), capture_output=True, text=True)
    assert "1 done before, 1 to run" in dry.stderr


def test_scheduler_without_workers_fails_in_one_line(images, tiny_weights_h5, tmp_path, capsys, monkeypatch):
    # a scheduler no worker ever joins: a bounded wait, then one line saying so and how to start one
    from distributed import LocalCluster
    monkeypatch.setattr(engine, "WORKER_WAIT", 1.0)
    with LocalCluster(n_workers=0, processes=False, protocol="tcp://", dashboard_address=":0") as cluster:
        address = cluster.scheduler_address
        status = main(["batch", str(images / "c1.png"), "--style", str(images / "s1.png"), "-o", str(tmp_path / "out"),
                       "--weights", str(tiny_weights_h5), *FAST, "--scheduler", address])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and err[-1].startswith("nst: error: --scheduler ") and "has no workers" in err[-1], err
    assert f"dask worker {address}" in err[-1] and "Traceback" not in "\n".join(err)


@pytest.fixture
def dask_cluster(tmp_path):
    # `dask scheduler` + `dask worker` on localhost, random ports; the worker runs in its own folder
    scheduler_file, worker_dir = tmp_path / "scheduler.json", tmp_path / "worker-home"
    worker_dir.mkdir()
    procs = []
    try:
        procs.append(subprocess.Popen([sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port", "0",
                                       "--dashboard-address", ":0", "--scheduler-file", str(scheduler_file)],
                                      env=env_with_nst(), start_new_session=True,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + 60
        while not scheduler_file.exists():
            assert procs[0].poll() is None and time.monotonic() < deadline, "dask scheduler did not start"
            time.sleep(0.1)
        address = json.loads(scheduler_file.read_text())["address"]
        procs.append(subprocess.Popen([sys.executable, "-m", "dask", "worker", address, "--nthreads", "1",
                                       "--nworkers", "1", "--no-dashboard", "--local-directory", str(worker_dir)],
                                      cwd=worker_dir, env=env_with_nst(), start_new_session=True,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        with Client(address, timeout="30s") as client:
            client.wait_for_workers(1, timeout=60)
        yield address, worker_dir
    finally:
        for p in reversed(procs):
            stop(p)


def test_existing_scheduler_no_shared_folder(images, tiny_weights_h5, tmp_path, monkeypatch, capsys, dask_cluster):
    address, worker_dir = dask_cluster
    (images / "tiny.h5").write_bytes(tiny_weights_h5.read_bytes())
    monkeypatch.chdir(images)                 # relative paths: they mean nothing in the worker's folder
    command = ["batch", "c1.png", "c2.png", "--style", "s1.png", "-o", str(tmp_path / "out"), "--weights", "tiny.h5",
               "--init", "s2.png", *FAST, "--iterations", "3", "--scheduler", address]
    assert main([*command, "--dry-run"]) == 0
    assert f"1 worker, 1 task at once, at {address}" in capsys.readouterr().out
    assert main(command) == 0
    rows = manifest(tmp_path / "out")
    assert [r["status"] for r in rows] == ["done", "done"] and rows[0]["init"] == str(images / "s2.png"), rows
    assert all(r["worker"] != address and r["worker"].startswith("tcp://127.0.0.1:") for r in rows)
    assert load_image(tmp_path / "out" / "c2__s1.png").shape == (34, 48, 3)
    assert not list(worker_dir.glob("*.png"))


def test_a_worker_prepares_the_weights_once_for_its_tasks(images, tiny_weights_h5, tmp_path, shared_cluster,
                                                          monkeypatch):
    # two contents on one (in-process) worker: the weights prepared for the first task, reused by the second
    import nst.objective
    connect, prepares = engine.connect, []
    monkeypatch.setattr(engine, "connect", lambda scheduler, layout=None: connect(scheduler or shared_cluster))
    monkeypatch.setattr(nst.objective, "_KEPT", {})
    real = nst.objective.prepare
    monkeypatch.setattr(nst.objective, "prepare", lambda *a: prepares.append(a) or real(*a))
    assert main(["batch", str(images / "c1.png"), str(images / "c2.png"), "--style", str(images / "s1.png"),
                 "-o", str(tmp_path / "out"), "--weights", str(tiny_weights_h5), *FAST, "--iterations", "2"]) == 0
    assert [r["status"] for r in manifest(tmp_path / "out")] == ["done", "done"]
    assert len(prepares) == 1


@pytest.mark.parametrize("tile", ["auto", 256])
def test_a_task_too_large_whole_is_counted_in_its_tiles(tiny_weights_h5, monkeypatch, tile):
    # --tile auto (or N) runs a picture too large for the memory in tiles, as nst transfer does: the
    # batch counts a task so (it counted the whole picture, and refused a batch transfer would run)
    from types import SimpleNamespace

    from nst import memory
    from nst.batch import checks
    from nst.run.settings import Settings
    task = lambda tile: SimpleNamespace(settings=Settings(size=2048, scales=1, backend="numpy", tile=tile,  # noqa: E731
                                                          weights=str(tiny_weights_h5)).as_dict())
    whole, _, _ = checks.task_memory([task(0)])
    monkeypatch.setattr(memory, "available", lambda backend: whole // 2)
    need, backend, text = checks.task_memory([task(tile)])
    assert need <= whole // 2 and "tiles of" in text, text


@pytest.mark.parametrize("shape", [(16, 64, 3), (64, 16, 3)])           # a wide and a tall content
def test_a_task_s_memory_is_counted_at_its_pictures_shapes(tiny_weights_h5, tmp_path, rng, capsys, shape):
    # the estimate took every content for a square at --size: a 4:1 panorama was counted 4× its pixels
    from types import SimpleNamespace

    from nst.batch import checks
    from nst.io.image import load_image
    from nst.run.run import Run
    from nst.run.settings import Settings
    content, style = tmp_path / "c.png", tmp_path / "s.png"
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(content)
    Image.fromarray(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)).save(style)
    options = ["--weights", str(tiny_weights_h5), "--size", "64", "--scales", "1", "--backend", "numpy", "--dry-run"]
    assert main(["transfer", str(content), str(style), "-o", str(tmp_path / "o.png"), *options]) == 0
    picture = capsys.readouterr().out.split(" on numpy")[0]                  # "64×16", as nst transfer runs it
    assert main(["batch", str(content), "--style", str(style), "-o", str(tmp_path / "out"), *options]) == 0
    assert f"({picture} on numpy, scales 64)" in capsys.readouterr().out
    settings = Settings(size=64, scales=1, backend="numpy", weights=str(tiny_weights_h5))
    task = SimpleNamespace(settings=settings.as_dict(), content=str(content), styles=[str(style)])
    run = Run(load_image(content), [load_image(style)], settings)            # the run a worker makes
    need, _, _ = checks.task_memory([task], checks.input_shapes([str(content), str(style)]))
    assert need == run.memory_estimate()[0]["total"]


@pytest.mark.parametrize("fit, words", [(1, "1 such task fits)"), (3, "3 such tasks fit)")])
def test_the_layout_counts_the_tasks_that_fit_in_words(monkeypatch, fit, words):
    # "1 such tasks fit" was the line for one
    monkeypatch.setattr(engine, "available", lambda backend: fit * 2**30)
    assert engine.local_layout(1, 2**30, "numba").where.endswith(words)


def test_a_task_whose_checkpoint_folder_is_a_file_on_its_worker_still_makes_its_picture(images, tiny_weights_h5,
                                                                                         tmp_path):
    # --checkpoint-dir is checked on the workers' own disks only as they run (--scheduler): where it is
    # a file there, the run went on without checkpoints, then failed removing the one it never wrote
    # ("Not a directory"), its picture lost. It is made; there was no checkpoint to remove
    from nst.batch import task as batch_task
    from nst.run.settings import Settings
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("mine")
    settings = Settings(size=32, scales=1, iterations=2, weights=str(tiny_weights_h5), backend="numpy").as_dict()
    content, style = images / "c1.png", images / "s1.png"
    task = plan.Task("c1__s1", str(content), (str(style),), settings, (), "0" * 64)
    options = {"checkpoint_dir": str(blocker), "checkpoint_every": 1}
    with pytest.warns(UserWarning, match="cannot write --checkpoint"):         # back with the task's result
        row = batch_task.transfer(task, {str(content): content, str(style): style}, options, tmp_path)
    assert row["status"] == "done" and row["image"].shape[2] == 3 and blocker.read_text() == "mine"


class StopAt:
    """A live page (nst.web.link.LiveLink's part a run calls) whose Stop is pressed after iteration
    `at`, a file of the user's put at `path` just before."""

    def __init__(self, at, path):
        self.at, self.path = at, path

    def start(self, run):
        pass

    def on_iteration(self, run, it, terms):
        if it == self.at:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text("mine")
        return it == self.at

    def close(self, state):
        pass


@pytest.mark.parametrize("again", [False, True])
def test_a_users_file_at_a_stopped_runs_checkpoint_is_kept(images, tiny_weights_h5, tmp_path, again):
    # nst serve's Stop on a worker's run wrote its checkpoint over whatever was at its path (nst
    # transfer keeps a file of the user's put there during the run: nst.run.job.still_replaceable),
    # and a run over such a file (again: taken for a damaged checkpoint, started over) removed it
    # as it finished. The file is kept each time, said (warnings, back with the task's result: the
    # finished one's was in the worker's log only, as was its start over); the run keeps its picture
    from nst.batch import task as batch_task
    from nst.run.settings import Settings
    settings = Settings(size=32, scales=1, iterations=4, weights=str(tiny_weights_h5), backend="numpy").as_dict()
    content, style = images / "c1.png", images / "s1.png"
    task = plan.Task("c1__s1", str(content), (str(style),), settings, (), "0" * 64)
    folder = tmp_path / "checkpoints"
    ckpt = batch_task.checkpoint_path(folder, task.key, task.digest)
    options = {"checkpoint_dir": str(folder), "checkpoint_every": 50, "live": StopAt(2, ckpt)}
    if again:
        ckpt.parent.mkdir()
        ckpt.write_text("mine")
        options["live"] = None
    with pytest.warns(UserWarning) as said:
        row = batch_task.transfer(task, {str(content): content, str(style): style}, options, tmp_path)
    started_over = [str(w.message) == f"checkpoint {ckpt} is unreadable or truncated (no .npz nst wrote whole): "
                    "starting over" for w in said]                 # not nst transfer's "without --resume"
    assert started_over == ([True, False] if again else [False]), [str(w.message) for w in said]
    assert "nst did not write it" in str(said[-1].message)
    assert row["status"] == ("done" if again else "stopped") and row["image"].shape[2] == 3, row
    assert ckpt.read_text() == "mine"


def test_an_animated_content_is_said_once_by_the_check_naming_the_user_s_file(images, tiny_weights_h5, tmp_path,
                                                                                capfd):
    # the warning came from the worker, naming its scratch copy ('/tmp/dask-scratch-space/…/0-c1.gif'),
    # in Python's form; the check of the inputs says it now, and the workers keep quiet
    rng = np.random.default_rng(1)
    frames = [Image.fromarray(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)) for _ in range(2)]
    frames[0].save(images / "c1.gif", save_all=True, append_images=frames[1:], duration=100)
    assert main(["batch", str(images / "c1.gif"), "--style", str(images / "s1.png"), "-o", str(tmp_path / "o"),
                 "--weights", str(tiny_weights_h5), *FAST, "--iterations", "1", "--workers", "1"]) == 0
    said = [line for line in capfd.readouterr().err.splitlines() if "animation" in line]
    assert said == [f"nst batch: warning: {images / 'c1.gif'} is an animation of 2 frames: nst reads its first "
                    "frame only (nst video styles every frame)"]


def a_jpeg_with_broken_exif(path, rng):
    # a JPEG whose EXIF names 100 bytes past its end: Pillow warns as nst reads it whole (each task
    # on its worker; the check of the inputs too) -> that warning's message, as this Pillow words it
    import struct
    import warnings
    ifd = struct.pack("<IH", 8, 1) + struct.pack("<HHII", 0x010E, 2, 100, 1000) + struct.pack("<I", 0)
    Image.fromarray(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)).save(path, exif=b"Exif\0\0II*\0" + ifd)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_image(path)
    assert caught, "this Pillow reads the broken EXIF without a warning"
    return str(caught[0].message)


@pytest.mark.parametrize("cluster", ["local", "scheduler"])
def test_a_warning_raised_in_each_task_is_said_once_per_task_and_kept_in_its_row(images, tiny_weights_h5, tmp_path,
                                                                                 rng, capfd, request, cluster):
    # each task's worker process warns (Python's two lines on the worker's stderr, which a remote
    # cluster's user never sees, and in no row): the warning comes back with the task's result
    message = a_jpeg_with_broken_exif(images / "c.jpg", rng)
    where = ["--workers", "2"] if cluster == "local" else ["--scheduler", request.getfixturevalue("dask_cluster")[0]]
    assert main(["batch", str(images / "c.jpg"), "--style", str(images / "s1.png"), str(images / "s2.png"),
                 "-o", str(tmp_path / "out"), "--weights", str(tiny_weights_h5), *FAST, "--iterations", "1",
                 *where]) == 0
    rows = manifest(tmp_path / "out")
    assert sorted(r["output"] for r in rows) == ["c__s1.png", "c__s2.png"]
    assert all(r["warnings"] == [message] for r in rows), rows
    err = capfd.readouterr().err
    said = sorted(line for line in err.splitlines() if message in line)
    assert said == sorted([f"nst batch: warning: {message}",            # the check of the inputs'
                           *(f"nst batch: warning: c__s{i}.png: {message}" for i in (1, 2))]), err
    assert "Warning:" not in err and "warnings.warn" not in err, err


TILED_LAYERS = ["--content-layers", "conv2_2", "--style-layers", "conv1_1,conv2_1"]    # 6 px halos


def test_a_tile_that_multiplies_the_work_is_said_once_before_any_task(images, tiny_weights_h5, tmp_path, capfd,
                                                                     shared_cluster):
    # --tile 8 at 48×34 (6 px halos: about 9× an untiled evaluation's work): said once, naming the
    # content, as nst transfer says it (nst.run.checks.tile_warning), though 2 styles × 2 sweep points
    # make 4 tasks; it was in each task's worker log only
    assert main(["batch", str(images / "c1.png"), "--style", str(images / "s1.png"), str(images / "s2.png"),
                 "-o", str(tmp_path / "out"), "--weights", str(tiny_weights_h5), *FAST, *TILED_LAYERS,
                 "--tile", "8", "--iterations", "1", "--sweep", "style-weight=3,10",
                 "--scheduler", shared_cluster]) == 0
    assert [r["status"] for r in manifest(tmp_path / "out")] == ["done"] * 4
    err = capfd.readouterr().err
    said = [line for line in err.splitlines() if "the work of an untiled one" in line]
    assert len(said) == 1 and said[0].startswith(f"nst batch: warning: {images / 'c1.png'}: --tile 8 makes an "
                                                 "evaluation about "), err
    assert main(["batch", str(images / "c1.png"), "--style", str(images / "s1.png"), "-o", str(tmp_path / "whole"),
                 "--weights", str(tiny_weights_h5), *FAST, *TILED_LAYERS, "--tile", "32", "--dry-run"]) == 0
    assert "untiled one" not in capfd.readouterr().err          # 32 px tiles: under 4× the work


def test_a_tile_that_multiplies_the_work_is_said_for_each_content_shape_it_differs_for(images, tiny_weights_h5,
                                                                                       tmp_path, capfd, monkeypatch,
                                                                                       rng):
    # --tile 8 at 48×34 (c1, c2) is about 8.14× the work, at 48×48 (a square content) 7.59×: only the
    # first content's line was said, once per setting. Each line is said once now, naming the first
    # content it applies to, and the factor worked out once per content shape (not once a task)
    from nst.run import checks
    square, thin = images / "square.png", images / "thin.png"
    Image.fromarray(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)).save(square)
    Image.fromarray(rng.integers(0, 256, (30, 60, 3), dtype=np.uint8)).save(thin)        # a style of its own shape
    calls = []
    monkeypatch.setattr(checks, "tile_warning", lambda *a, tile_warning=checks.tile_warning:
                        calls.append(a) or tile_warning(*a))
    assert main(["batch", *(str(images / c) for c in ("c1.png", "c2.png", "square.png")),
                 "--style", str(images / "s1.png"), str(thin), "-o", str(tmp_path / "out"),
                 "--weights", str(tiny_weights_h5), *FAST, *TILED_LAYERS, "--tile", "8", "--dry-run"]) == 0
    err = capfd.readouterr().err
    said = [line for line in err.splitlines() if "the work of an untiled one" in line]
    assert [line.split(" (each")[0] for line in said] == [
        f"nst batch: warning: {images / 'c1.png'}: --tile 8 makes an evaluation about 8.14× the work of an untiled one",
        f"nst batch: warning: {square}: --tile 8 makes an evaluation about 7.59× the work of an untiled one"], err
    assert len(calls) == 2                                           # 6 tasks, 2 content shapes


def test_a_checkpoint_a_task_cannot_write_is_said_once_per_task_and_kept_in_its_row(images, tiny_weights_h5,
                                                                                   tmp_path, capfd, monkeypatch,
                                                                                   shared_cluster):
    # --checkpoint-dir on a full disk (each save fails, on the in-process worker): the task goes on
    # without it, and says so once, naming itself, as nst transfer does; it was in the worker's log only
    import nst.io.checkpoint

    def full(*a, **k):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(nst.io.checkpoint, "save", full)
    assert main(["batch", str(images / "c1.png"), "--style", str(images / "s1.png"), str(images / "s2.png"),
                 "-o", str(tmp_path / "out"), "--weights", str(tiny_weights_h5), *FAST, "--iterations", "3",
                 "--checkpoint-dir", str(tmp_path / "ck"), "--checkpoint-every", "1",
                 "--scheduler", shared_cluster]) == 0
    message = "cannot write --checkpoint (No space left on device); going on without it"
    rows = manifest(tmp_path / "out")
    assert [(r["status"], r.get("warnings")) for r in rows] == [("done", [message])] * 2, rows
    err = capfd.readouterr().err
    assert sorted(line for line in err.splitlines() if message in line) == [
        f"nst batch: warning: c1__s{i}.png: {message}" for i in (1, 2)], err


def test_a_checkpoint_a_task_leaves_is_said_once_per_task_and_kept_in_its_row(images, tiny_weights_h5, tmp_path,
                                                                              capfd, monkeypatch, shared_cluster):
    # a file at a finished task's checkpoint name that nst did not write is kept, and that was said in
    # the worker's log only; it is a warning now, back with the task's result (as "starting over")
    from nst.batch import task as batch_task
    monkeypatch.setattr(batch_task.destinations, "not_nsts", lambda option, path: "another's file")
    assert main(["batch", str(images / "c1.png"), "--style", str(images / "s1.png"), str(images / "s2.png"),
                 "-o", str(tmp_path / "out"), "--weights", str(tiny_weights_h5), *FAST, "--iterations", "2",
                 "--checkpoint-dir", str(tmp_path / "ck"), "--scheduler", shared_cluster]) == 0
    rows = manifest(tmp_path / "out")
    said = [(r["output"], w) for r in rows for w in r.get("warnings", [])]
    assert [(o, w.endswith(": not removed (nst did not write it)")) for o, w in said] == \
        [("c1__s1.png", True), ("c1__s2.png", True)], rows
    err = capfd.readouterr().err
    assert sorted(line for line in err.splitlines() if "not removed" in line) == \
        sorted(f"nst batch: warning: {o}: {w}" for o, w in said), err


@pytest.mark.parametrize("debug", [False, True])
def test_numpy_s_overflow_in_a_task_is_said_as_nst_transfer_says_it(images, tiny_weights_h5, tmp_path, capfd,
                                                                    monkeypatch, shared_cluster, debug):
    # a task's NumPy overflow (its run finds non-finite values itself) is not said, as the CLI keeps
    # it from `nst transfer` (nst.optim.overflow_unwarned); it was said once per task, kept in its row.
    # Another warning still comes back. The CLI's filter holds for its whole process: here it is left
    # out, as it is on a worker in a process of its own. --debug shows it from nst transfer: from a
    # task too (it was hidden on the worker whatever the batch's --debug), back with its result, kept
    # in its row and said in Python's form, as --debug says every warning
    import warnings

    import nst.cli
    from nst.batch import task as batch_task

    class OverflowingJob(batch_task.Job):
        def prepare(self):
            np.full(2, 3e38, np.float32) * np.float32(10)
            warnings.warn("the run warns")
            return super().prepare()
    monkeypatch.setattr(batch_task, "Job", OverflowingJob)
    monkeypatch.setattr(nst.cli, "overflow_unwarned", contextlib.nullcontext)
    with warnings.catch_warnings(record=True) as said:          # --debug's Python form
        warnings.simplefilter("always")
        assert main(["batch", str(images / "c1.png"), "--style", str(images / "s1.png"), "-o", str(tmp_path / "out"),
                     "--weights", str(tiny_weights_h5), *FAST, "--iterations", "1", "--scheduler", shared_cluster,
                     *(["--debug"] if debug else [])]) == 0
    overflow = ["overflow encountered in multiply"] if debug else []
    assert [r.get("warnings") for r in manifest(tmp_path / "out")] == [[*overflow, "the run warns"]]
    if debug:
        assert [str(w.message) for w in said if "c1__s1.png" in str(w.message)] == \
            [f"c1__s1.png: {m}" for m in [*overflow, "the run warns"]]
    else:
        err = capfd.readouterr().err
        assert "encountered" not in err and "nst batch: warning: c1__s1.png: the run warns" in err, err


def test_a_task_resumed_on_another_backend_says_its_picture_may_differ(images, tiny_weights_h5, tmp_path, capfd,
                                                                      monkeypatch, shared_cluster):
    # --backend auto on a worker that picked numpy, then (its try failed at iteration 2, its checkpoint
    # kept) on one that picks numba: the task resumes, and its run's warning that the picture may differ
    # from an uninterrupted run's went to the worker's log only, as did where it resumed. The warning
    # comes back with its result (said naming the task, kept in its row); the resume is said from the
    # row's resumed_at
    import nst.io.checkpoint
    import nst.run.run
    from nst.backends import get_backend
    save, picked = nst.io.checkpoint.save, {"auto": "numpy"}

    def save_then_fail(path, run, *args, **kwargs):
        save(path, run, *args, **kwargs)
        if len(run.history) == 2 and run.objective_backend().name == "numpy":
            raise RuntimeError("the worker died")
    monkeypatch.setattr(nst.io.checkpoint, "save", save_then_fail)
    monkeypatch.setattr(nst.run.run, "choose_backend", lambda name, log=None: get_backend(picked.get(name, name)))
    ckpt_dir = (tmp_path / "ck").resolve()
    args = ["batch", str(images / "c1.png"), "--style", str(images / "s1.png"), "-o", str(tmp_path / "out"),
            "--weights", str(tiny_weights_h5), "--size", "48", "--scales", "1", "--backend", "auto",
            "--iterations", "4", "--checkpoint-dir", str(ckpt_dir), "--checkpoint-every", "1",
            "--scheduler", shared_cluster]
    assert main(args) == 1
    [ckpt] = ckpt_dir.glob("*.npz")
    capfd.readouterr()
    picked["auto"] = "numba"
    assert main(args) == 0
    message = (f"its checkpoint {ckpt} was made on the numpy backend and goes on on numba: the picture may differ "
               "from an uninterrupted run's by float rounding")          # its user gave no --resume
    [row] = manifest(tmp_path / "out")
    assert (row["status"], row["resumed_at"], row.get("warnings")) == ("done", 2, [message]), row
    err = capfd.readouterr().err
    assert [line for line in err.splitlines() if "c1__s1.png: " in line] == [
        "nst batch: c1__s1.png: resumed from its checkpoint at iteration 2",
        f"nst batch: warning: c1__s1.png: {message}"], err
